//! The response a preempted route answers with.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use underscore_core::settings::Preempt;
use underscore_core::stats::{Outcome, RouteStats};

/// Counts a preempted request on the route with `stats`, and builds its response.
pub(crate) fn answer(stats: &RouteStats, preempt: &Preempt) -> HttpResponse {
    stats.begin();
    stats.end(Outcome::Preempted);
    response(preempt)
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
