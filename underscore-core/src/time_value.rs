//! Elasticsearch's time values (`500ms`, `2s`, `1m`): the one grammar of every duration the
//! admin APIs read (`limits.timeout`) and the `underscore` CLI takes (`--timeout`,
//! `top --interval`), so that what one accepts the other accepts too.
//!
//! The grammar is Elasticsearch's `TimeValue.parseTimeValue`: a whole number, optional
//! spaces, then a unit: `d`, `h`, `m`, `s`, `ms`, `micros` or `nanos`, in any case but `M`
//! (Elasticsearch keeps minutes case-sensitive, as `M` means months elsewhere). Like
//! Elasticsearch since 7.0, fractions (`1.5s`) are refused, with the whole value to write
//! instead (`1500ms`), and so are negative values and bare numbers; Elasticsearch's two
//! unit-less special cases, `0` and `-1`, have no use here. Each caller adds its own bounds
//! (a timeout must be more than zero, `top`'s interval at least 100ms).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use underscore_core::time_value;
//!
//! assert_eq!(time_value::parse("500ms"), Ok(Duration::from_millis(500)));
//! assert_eq!(time_value::parse("2 S"), Ok(Duration::from_secs(2)));
//! let err = time_value::parse("1.5s").unwrap_err();
//! assert_eq!(err.to_string(), "fractional time values are not supported: write 1500ms");
//! ```

use std::time::Duration;

/// The units, largest first, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("micros", 1_000),
    ("nanos", 1),
];

/// The longest time value, in days: a [`Duration`] of `u64::MAX` nanoseconds, rounded down.
pub const MAX_DAYS: u64 = u64::MAX / 86_400_000_000_000;

/// Why a text is not a time value. The messages complete a sentence that names the value
/// (`failed to parse setting [limits.timeout] with value [1.5s]: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeValueError {
    /// Nothing but spaces.
    #[error("is empty: write a time value such as 500ms, 2s or 1m")]
    Empty,
    /// A number without a unit (`2`).
    #[error("has no unit: write it as 500ms, 2s or 1m (units d, h, m, s, ms, micros, nanos)")]
    NoUnit,
    /// A unit Elasticsearch does not know (`5 parsecs`, `1sec`, `1M`).
    #[error("{}", unknown_unit(.unit))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// A fraction (`1.5s`); `whole` is the same time in a smaller unit, when there is one.
    #[error("fractional time values are not supported{}", .whole.as_ref().map(|w| format!(": write {w}")).unwrap_or_default())]
    Fractional {
        /// The same time as a whole number of a smaller unit (`1500ms`).
        whole: Option<String>,
    },
    /// A negative value (`-1s`).
    #[error("negative durations are not supported")]
    Negative,
    /// Anything else before the unit (`1e3s`, `s`, `x1s`).
    #[error("must be a whole number followed by a unit, such as 500ms, 2s or 1m")]
    NotANumber,
    /// More than a [`Duration`] of `u64::MAX` nanoseconds holds.
    #[error("is too long: at most {MAX_DAYS}d")]
    TooLong,
}

fn unknown_unit(unit: &str) -> String {
    let hint = if unit == "M" {
        " (minutes are m: M would be months)"
    } else {
        ""
    };
    format!("unit [{unit}] is not one of d, h, m, s, ms, micros, nanos{hint}")
}

/// Parses an Elasticsearch time value (see the [module docs](self)); zero is a value here.
///
/// # Errors
///
/// [`TimeValueError`] says what is wrong, in words that follow the value in a message.
pub fn parse(text: &str) -> Result<Duration, TimeValueError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TimeValueError::Empty);
    }
    let number_len = text
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
    let (number, unit) = text.split_at(number_len);
    let number = number.trim_end();
    if number.starts_with('-') {
        return Err(TimeValueError::Negative);
    }
    let is_decimal = |s: &str| {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        !(int.is_empty() && frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    if unit.is_empty() {
        return Err(if is_decimal(number) {
            TimeValueError::NoUnit
        } else {
            TimeValueError::NotANumber
        });
    }
    let nanos_per = match UNITS.iter().find(|(u, _)| unit.eq_ignore_ascii_case(u)) {
        // Minutes only in lowercase, as Elasticsearch reads them.
        Some((_, per)) if unit != "M" => *per,
        _ => {
            return Err(TimeValueError::UnknownUnit {
                unit: unit.to_owned(),
            })
        }
    };
    if number.is_empty() || !is_decimal(number) || number.starts_with('.') {
        return Err(TimeValueError::NotANumber);
    }
    if number.contains('.') {
        return Err(TimeValueError::Fractional {
            whole: whole_form(number, nanos_per),
        });
    }
    let nanos = number
        .parse::<u128>()
        .ok()
        .and_then(|n| n.checked_mul(nanos_per))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(TimeValueError::TooLong)?;
    Ok(Duration::from_nanos(nanos))
}

/// Writes `d` as a time value [`parse`] reads back exactly: a whole number of the largest unit
/// that holds it (`1500ms`, `2m`, `0s`).
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    // `nanos` divides every length: the search always ends.
    let (unit, per) = UNITS
        .iter()
        .find(|(_, per)| nanos.is_multiple_of(*per))
        .unwrap_or(&UNITS[UNITS.len() - 1]);
    format!("{}{unit}", nanos / per)
}

/// Elasticsearch's human time: `44.1micros`, `1.2ms`, `3.4s`, `2.1m`.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns}nanos")
    } else if ns < 1e6 {
        format!("{:.1}micros", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns < 60e9 {
        format!("{:.1}s", ns / 1e9)
    } else if ns < 3600e9 {
        format!("{:.1}m", ns / 60e9)
    } else {
        format!("{:.1}h", ns / 3600e9)
    }
}

/// `number` (a decimal such as `1.5`) of a unit of `nanos_per` nanoseconds, as a whole number
/// of the largest unit that holds it exactly (`1500ms`); `None` when no unit does (below a
/// nanosecond) or when it is zero.
fn whole_form(number: &str, nanos_per: u128) -> Option<String> {
    let (int, frac) = number.split_once('.')?;
    let frac = frac.trim_end_matches('0');
    // Past 30 digits the arithmetic below could overflow; such a value has no tidy form anyway.
    if int.len() + frac.len() > 30 {
        return None;
    }
    let scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let scaled = digits.checked_mul(nanos_per)?;
    if scaled == 0 || !scaled.is_multiple_of(scale) {
        return None;
    }
    let nanos = scaled / scale;
    let (unit, per) = UNITS.iter().find(|(_, per)| nanos.is_multiple_of(*per))?;
    Some(format!("{}{unit}", nanos / per))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_elasticsearch_unit_in_any_case_but_minutes() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("750micros"), Ok(Duration::from_micros(750)));
        assert_eq!(parse("10nanos"), Ok(Duration::from_nanos(10)));
        assert_eq!(parse(" 3S "), Ok(Duration::from_secs(3)));
        assert_eq!(parse("5 MS"), Ok(Duration::from_millis(5)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse("1M"),
            Err(TimeValueError::UnknownUnit { unit: "M".into() })
        );
        assert!(parse("1M").unwrap_err().to_string().contains("months"));
    }

    #[test]
    fn a_duration_is_written_in_its_largest_whole_unit() {
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_secs(86400)), "1d");
        assert_eq!(format(Duration::from_nanos(1_000_001)), "1000001nanos");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn fractions_are_refused_with_the_whole_value_to_write() {
        let whole = |s: &str| match parse(s) {
            Err(TimeValueError::Fractional { whole }) => whole,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(whole("1.5s").as_deref(), Some("1500ms"));
        assert_eq!(whole("1.0s").as_deref(), Some("1s"));
        assert_eq!(whole("0.25m").as_deref(), Some("15s"));
        assert_eq!(whole("1.5d").as_deref(), Some("36h"));
        assert_eq!(whole("2.5nanos"), None);
        assert_eq!(whole("0.0s"), None);
        assert_eq!(
            parse("2.5nanos").unwrap_err().to_string(),
            "fractional time values are not supported"
        );
    }

    #[test]
    fn anything_else_says_what_is_wrong() {
        assert_eq!(parse(""), Err(TimeValueError::Empty));
        assert_eq!(parse("2"), Err(TimeValueError::NoUnit));
        assert_eq!(parse("1.5"), Err(TimeValueError::NoUnit));
        assert_eq!(parse("-1s"), Err(TimeValueError::Negative));
        assert_eq!(parse("-1"), Err(TimeValueError::Negative));
        for bad in ["s", "1e3s", "x1s", ".5s", "1.s.", "5%", "+5s", "1 2s"] {
            assert_eq!(parse(bad), Err(TimeValueError::NotANumber), "{bad}");
        }
        assert_eq!(
            parse("5 parsecs").unwrap_err().to_string(),
            "unit [parsecs] is not one of d, h, m, s, ms, micros, nanos"
        );
        assert_eq!(parse("99999999999999999999d"), Err(TimeValueError::TooLong));
        assert_eq!(
            parse(&format!("{MAX_DAYS}d")),
            Ok(Duration::from_secs(MAX_DAYS * 86_400))
        );
        assert_eq!(
            parse(&format!("{}d", MAX_DAYS + 1)),
            Err(TimeValueError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn a_whole_number_and_a_unit_read_back_exactly(n in 0..=MAX_DAYS, unit in 0usize..7) {
            let (name, per) = UNITS[unit];
            let expected = Duration::from_nanos(u64::try_from(u128::from(n) * per).unwrap());
            prop_assert_eq!(parse(&format!("{n}{name}")), Ok(expected));
            prop_assert_eq!(parse(&format!(" {n} {} ", name.to_uppercase())).is_ok(), name != "m");
        }

        #[test]
        fn the_suggested_whole_value_is_the_same_time(
            int in 0u64..100_000, frac in "[0-9]{1,6}", unit in 0usize..7,
        ) {
            let (name, per) = UNITS[unit];
            if let Err(TimeValueError::Fractional { whole: Some(whole) }) =
                parse(&format!("{int}.{frac}{name}"))
            {
                let exact = (u128::from(int) * 10u128.pow(frac.len() as u32)
                    + frac.parse::<u128>().unwrap())
                    * per;
                let got = parse(&whole).unwrap().as_nanos() * 10u128.pow(frac.len() as u32);
                prop_assert_eq!(got, exact, "{} for {}.{}{}", whole, int, frac, name);
            }
        }

        #[test]
        fn a_formatted_duration_reads_back_exactly(nanos in 0..=u64::MAX) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn no_text_panics(text in "\\PC{0,16}") {
            let _ = parse(&text);
        }
    }
}
