//! RFC 3339 timestamps (event times in input).
//!
//! The RFC 3339 parser is strict: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`,
//! with `t`/space accepted for `T` and `z` for `Z` (RFC 3339 §5.6 note);
//! the date must exist (leap years checked); a leap second `:60` (only at
//! 23:59 UTC) counts as the next second; fractions beyond milliseconds are truncated.

use cepheid_core::primitives::Timestamp;

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp.
///
/// ```
/// use cepheid_decode::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Ok(1500));
/// assert_eq!(parse_rfc3339("2024-02-29T01:00:00+01:00"), Ok(1_709_164_800_000));
/// assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_err());
/// ```
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimeError> {
    let b = text.as_bytes();
    let fail = |problem| TimeError {
        text: text.to_string(),
        problem,
    };
    let bad = || fail(TimeProblem::Form);
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits(&b[range]).ok_or_else(bad);
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(fail(TimeProblem::Date));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(fail(TimeProblem::TimeOfDay));
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if rest.first() == Some(&b'.') {
        let len = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return Err(bad());
        }
        for i in 0..3 {
            millis = millis * 10
                + rest
                    .get(1 + i)
                    .filter(|_| i < len)
                    .map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &rest[1 + len..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (
                digits(&[*h1, *h2]).ok_or_else(bad)?,
                digits(&[*m1, *m2]).ok_or_else(bad)?,
            );
            if h > 23 || m > 59 {
                return Err(fail(TimeProblem::Offset));
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return Err(bad()),
    };
    // A leap second is the last second of a UTC day: `:60` only at
    // 23:59 UTC (local time minus the offset).
    if second == 60 && (hour * 60 + minute - offset_minutes).rem_euclid(1_440) != 23 * 60 + 59 {
        return Err(fail(TimeProblem::LeapSecond));
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// A text that is not an RFC 3339 time ([`parse_rfc3339`]): the text and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    text: String,
    problem: TimeProblem,
}

/// What is wrong with a text that is not an RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeProblem {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    Form,
    /// No such date (`2023-02-29`, month 13).
    Date,
    /// No such time of day (hour 24, minute 60).
    TimeOfDay,
    /// No such time zone offset (`+24:00`).
    Offset,
    /// Second 60 other than at 23:59:60 UTC.
    LeapSecond,
}

impl TimeError {
    /// The text that was read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong with it.
    pub fn problem(&self) -> TimeProblem {
        self.problem
    }
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = &self.text;
        match self.problem {
            TimeProblem::Form => write!(
                f,
                "`{text}` is not an RFC 3339 time (like 2024-05-01T12:00:00Z)"
            ),
            TimeProblem::Date => write!(f, "`{text}`: no such date"),
            TimeProblem::TimeOfDay => write!(f, "`{text}`: no such time of day"),
            TimeProblem::Offset => write!(f, "`{text}`: no such time zone offset"),
            TimeProblem::LeapSecond => write!(
                f,
                "`{text}`: second 60 exists only as a leap second, at 23:59:60 UTC"
            ),
        }
    }
}

impl std::error::Error for TimeError {}

/// The value of ASCII decimal digits, `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A time (milliseconds since the Unix epoch) in RFC 3339, UTC, to the
/// millisecond; [`parse_rfc3339`] reads it back.
///
/// ```
/// use cepheid_decode::{format_rfc3339, parse_rfc3339};
/// assert_eq!(format_rfc3339(1_714_557_600_123), "2024-05-01T10:00:00.123Z");
/// assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
/// assert_eq!(parse_rfc3339(&format_rfc3339(951_782_400_000)), Ok(951_782_400_000));
/// ```
pub fn format_rfc3339(ms: Timestamp) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // H. Hinnant's `civil_from_days`, the inverse of `days_from_civil`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Ok(-1));
        assert_eq!(parse_rfc3339("2000-03-01t00:00:00z"), Ok(951_868_800_000));
        assert_eq!(
            parse_rfc3339("2024-05-01 12:00:00.123456-02:30"),
            Ok(1_714_573_800_123)
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("0000-01-01T00:00:00Z"),
            Ok(-62_167_219_200_000)
        );
    }

    #[test]
    fn invalid_times() {
        for text in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0100",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01X12:00:00Z",
            "+2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00Zjunk",
            "２０２４-05-01T12:00:00Z",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text}");
        }
    }
}
