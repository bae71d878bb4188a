//! `GET /_operator/settings`: the operator settings file, what of it is in effect, and why the
//! file read last was not applied.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::settings::shape;
use crate::params::Query;
use crate::render::{DocParams, Rendered};
use crate::settings::logging;
use crate::{ApiError, Registry};

pub(crate) fn get(reg: &Registry, mut query: Query, path: &str) -> Result<Rendered, ApiError> {
    let doc = DocParams::take_from(&mut query)?;
    let flat = query.take_bool("flat_settings")?;
    query.finish(path)?;
    let state = reg.settings().lock();
    let Some(operator) = &state.operator else {
        return doc.render(json!({
            "file": null,
            "status": "disabled",
            "version": null,
            "applied_at": null,
            "applied_at_in_millis": null,
            "last_error": null,
            "routes": {},
            "logging": {},
            "node": {},
        }));
    };
    let routes: Map<String, Value> = state
        .tiers
        .operator
        .iter()
        .map(|entry| (entry.ids.clone(), shape(&entry.settings, flat)))
        .collect();
    let last_error = operator.last_error.as_ref().map(
        |(reason, at)| json!({"reason": reason, "at": rfc3339(*at), "at_in_millis": millis(*at)}),
    );
    let body = json!({
        "file": operator.file.display().to_string(),
        "status": if last_error.is_none() { "ok" } else { "error" },
        "version": operator.applied.as_ref().map(|f| f.version),
        "applied_at": operator.applied_at.map(rfc3339),
        "applied_at_in_millis": operator.applied_at.map(millis),
        "last_error": last_error,
        "routes": routes,
        "logging": logging::shape(&state.logging.operator, flat),
        "node": shape(&state.node.operator, flat),
    });
    drop(state);
    doc.render(body)
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `t` in UTC, to the millisecond: `2026-12-04T14:03:07.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let ms = millis(t);
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day number.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_in_utc_to_the_millisecond() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1796393587.123 +%FT%T.%3NZ`
        assert_eq!(at(1_796_393_587_123), "2026-12-04T14:13:07.123Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}
