//! The answers of the middleware itself: a preempted route's, a shed request's.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use underscore_core::settings::{Preempt, SettingsSlot};
use underscore_core::stats::{Outcome, RouteStats};

/// Counts a preempted request on the route with `stats`, and builds its response.
pub(crate) fn answer(stats: &RouteStats, preempt: &Preempt) -> HttpResponse {
    stats.answered(Outcome::Preempted);
    response(preempt)
}

/// The reason phrase and body of a shed request.
pub(crate) const SHED: &str = "Too many requests in flight";

/// Counts a request shed by `limits.max_in_flight` on the route with `stats`, and builds its
/// response: `limits.status` (default 503), `Retry-After` when `limits.retry_after` is set.
#[cold]
pub(crate) fn shed(stats: &RouteStats, settings: &SettingsSlot) -> HttpResponse {
    stats.answered(Outcome::Shed);
    let (status, retry_after) = settings.shed_answer();
    // Validation keeps the status within 200..=599.
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut res = text_response(status, "Too many requests in flight\n");
    res.head_mut().reason = Some(SHED);
    if let Some(seconds) = retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    res
}

/// A `text/plain` answer, without a body where `status` allows none (204, 304).
pub(crate) fn text_response(status: StatusCode, text: &'static str) -> HttpResponse {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return HttpResponse::new(status);
    }
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ))
        .body(text)
}

/// Builds the response of `preempt`: its status, reason phrase, `Retry-After` and body.
pub(crate) fn response(preempt: &Preempt) -> HttpResponse {
    // Validation keeps the status within 200..=599.
    let status = StatusCode::from_u16(preempt.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    // 204 and 304 never carry a body.
    let body_allowed = status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED;
    let mut res = match &preempt.text {
        Some(text) if body_allowed => HttpResponse::build(status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ))
            .body(text.clone()),
        _ => HttpResponse::new(status),
    };
    if let Some(reason) = preempt.reason {
        res.head_mut().reason = Some(reason);
    }
    if let Some(seconds) = preempt.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    res
}
