//! Durations as people write them: a whole number and a unit, `500ms`,
//! `10s`, `15m`, `2h`, `1d`. One grammar for the pattern language
//! (`within 15m`), the command line (`--max-delay 10s`) and messages that
//! show a duration back (`15m`).
//!
//! ```
//! use cepheid_core::time::{format_duration, parse_duration, TimeUnit};
//! assert_eq!(parse_duration("15m"), Ok(900_000));
//! assert_eq!(format_duration(900_000), "15m");
//! assert_eq!(TimeUnit::split_prefix("ms rest"), Some((TimeUnit::Millis, " rest")));
//! ```

/// Units of a duration, each written as its suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// `ms`.
    Millis,
    /// `s`.
    Seconds,
    /// `m`.
    Minutes,
    /// `h`.
    Hours,
    /// `d`.
    Days,
}

impl TimeUnit {
    /// Every unit, `ms` first (so that `ms` is tried before `m`).
    pub const ALL: [TimeUnit; 5] = [
        TimeUnit::Millis,
        TimeUnit::Seconds,
        TimeUnit::Minutes,
        TimeUnit::Hours,
        TimeUnit::Days,
    ];

    /// The suffix as written.
    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Millis => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "m",
            TimeUnit::Hours => "h",
            TimeUnit::Days => "d",
        }
    }

    /// Milliseconds in one unit.
    pub fn millis(self) -> i64 {
        match self {
            TimeUnit::Millis => 1,
            TimeUnit::Seconds => 1000,
            TimeUnit::Minutes => 60_000,
            TimeUnit::Hours => 3_600_000,
            TimeUnit::Days => 86_400_000,
        }
    }

    /// The unit whose suffix is exactly `text`.
    pub fn from_suffix(text: &str) -> Option<TimeUnit> {
        TimeUnit::ALL.into_iter().find(|u| u.suffix() == text)
    }

    /// The unit `text` starts with (the longest suffix that fits: `ms`
    /// rather than `m`) and the text after it.
    pub fn split_prefix(text: &str) -> Option<(TimeUnit, &str)> {
        TimeUnit::ALL
            .into_iter()
            .find_map(|u| text.strip_prefix(u.suffix()).map(|rest| (u, rest)))
    }
}

/// A duration in milliseconds: a whole number followed by `ms`, `s`, `m`,
/// `h` or `d`, nothing else (no sign, no space, no fraction).
///
/// ```
/// use cepheid_core::time::parse_duration;
/// assert_eq!(parse_duration("15m"), Ok(900_000));
/// assert_eq!(parse_duration("0ms"), Ok(0));
/// assert!(parse_duration("15").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let error = |problem| DurationError {
        text: text.to_string(),
        problem,
    };
    let Some(unit) = TimeUnit::from_suffix(unit) else {
        return Err(error(Problem::NotADuration));
    };
    if number.is_empty() {
        return Err(error(Problem::NotADuration));
    }
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit.millis()))
        .ok_or_else(|| error(Problem::TooLarge))
}

/// A duration greater than zero, in milliseconds (an interval, a timeout:
/// `cepheid run --idle-timeout`, `--stats-every`); `0ms` is an error
/// ([`DurationError::is_zero`]).
///
/// ```
/// use cepheid_core::time::parse_positive_duration;
/// assert_eq!(parse_positive_duration("10s"), Ok(10_000));
/// let zero = parse_positive_duration("0s").unwrap_err();
/// assert!(zero.is_zero());
/// assert_eq!(zero.to_string(), "the duration must be greater than zero");
/// ```
pub fn parse_positive_duration(text: &str) -> Result<i64, DurationError> {
    match parse_duration(text)? {
        0 => Err(DurationError {
            text: text.to_string(),
            problem: Problem::Zero,
        }),
        ms => Ok(ms),
    }
}

/// A text that is not a duration ([`parse_duration`]): the text, and
/// whether it is one but too long for milliseconds in an `i64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    problem: Problem,
}

/// What is wrong with a [`DurationError`]'s text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// Not a whole number and a unit.
    NotADuration,
    /// Too long to count in milliseconds.
    TooLarge,
    /// Zero, where a duration greater than zero is needed
    /// ([`parse_positive_duration`]).
    Zero,
}

impl DurationError {
    /// The text that was read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Is it a duration, too long to count in milliseconds?
    pub fn is_too_large(&self) -> bool {
        self.problem == Problem::TooLarge
    }

    /// Is it a duration of zero, where one greater than zero is needed?
    pub fn is_zero(&self) -> bool {
        self.problem == Problem::Zero
    }
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problem {
            Problem::TooLarge => write!(
                f,
                "`{}` is too long a duration (at most about 292 million years)",
                self.text
            ),
            Problem::NotADuration => write!(
                f,
                "`{}` is not a duration: write a whole number and a unit (ms, s, m, h, d), like 500ms or 10s",
                self.text
            ),
            Problem::Zero => f.write_str("the duration must be greater than zero"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Milliseconds in the largest unit that divides them exactly (`15m`,
/// `1500ms`, `0ms`): what [`parse_duration`] reads back to the same value.
///
/// ```
/// use cepheid_core::time::format_duration;
/// assert_eq!(format_duration(86_400_000), "1d");
/// assert_eq!(format_duration(1500), "1500ms");
/// ```
pub fn format_duration(ms: i64) -> String {
    if ms != 0 {
        for unit in TimeUnit::ALL.into_iter().skip(1).rev() {
            if ms % unit.millis() == 0 {
                return format!("{}{}", ms / unit.millis(), unit.suffix());
            }
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("1099511627776ms"), Ok(1_099_511_627_776));
        for text in [
            "",
            "ms",
            "10",
            "10 s",
            "-1s",
            "1.5s",
            "10sec",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn units_round_trip() {
        for unit in TimeUnit::ALL {
            assert_eq!(TimeUnit::from_suffix(unit.suffix()), Some(unit));
            let text = format!("7{}", unit.suffix());
            assert_eq!(parse_duration(&text), Ok(7 * unit.millis()));
            assert_eq!(format_duration(7 * unit.millis()), text);
        }
        assert_eq!(TimeUnit::split_prefix("m2"), Some((TimeUnit::Minutes, "2")));
        assert_eq!(TimeUnit::split_prefix("x"), None);
        assert_eq!(format_duration(-60_000), "-1m");
    }

    #[test]
    fn positive_durations_refuse_zero_and_what_is_no_duration() {
        assert_eq!(parse_positive_duration("1ms"), Ok(1));
        assert_eq!(parse_positive_duration("15m"), Ok(900_000));
        for text in ["0ms", "0s", "0d"] {
            let e = parse_positive_duration(text).unwrap_err();
            assert!(e.is_zero() && !e.is_too_large(), "{text}");
            assert_eq!(e.text(), text);
            assert_eq!(e.to_string(), "the duration must be greater than zero");
        }
        let e = parse_positive_duration("soon").unwrap_err();
        assert!(!e.is_zero());
        assert_eq!(e, parse_duration("soon").unwrap_err());
        let e = parse_positive_duration("99999999999999999999d").unwrap_err();
        assert!(e.is_too_large() && !e.is_zero());
    }
}
