//! A run's reports in text, as `cepheid run` writes them on standard
//! error: [`Periodic`] (`--stats-every DURATION`, one line per interval),
//! [`bar_message`] (the counts on the progress bar), and [`pattern_line`]
//! (the summary's line per pattern). All from what an observing
//! [`Report`](crate::Report) sees at its [`tick`](crate::Report::tick)
//! (a [`RunView`]: once per batch of lines, once per idle second, once at
//! the end; on workers a few times a second), never per event.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cepheid_engine::PatternStats;

use crate::{count, RunView};

/// The counts a stats line tells the change of.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Counts {
    events: u64,
    matches: u64,
    timeouts: u64,
    late: u64,
    malformed: u64,
}

impl Counts {
    fn of(view: &RunView<'_>) -> Counts {
        let stats = view.stats();
        Counts {
            events: view.events_read,
            matches: stats.matches,
            timeouts: stats.timeouts,
            late: view.late,
            malformed: view.malformed,
        }
    }
}

/// `--stats-every`: a line per interval, each with what changed in it, so
/// that the lines add up to the summary at the end (the last line is
/// written at the tick that ends the run, [`RunView::finished`]).
///
/// ```
/// use std::time::Duration;
/// use cepheid_engine::Engine;
/// use cepheid_runtime::{stats::Periodic, RunView};
///
/// let engine = Engine::new();
/// let mut stats = Periodic::new(Duration::from_secs(10));
/// let mut view = RunView::of_engine(&engine);
/// view.events_read = 3;
/// assert_eq!(stats.tick(&view), None); // not due yet
/// view.finished = true;
/// let line = stats.tick(&view).expect("the last line");
/// assert!(line.contains("3 events"), "{line}");
/// assert!(line.ends_with("no watermark yet; 0 live partial matches"), "{line}");
/// ```
#[derive(Debug)]
pub struct Periodic {
    every: Duration,
    started: Instant,
    /// When the last line was written (or the run started).
    last_at: Instant,
    /// The counts at the last line.
    last: Counts,
}

impl Periodic {
    /// A line every `every` from now.
    pub fn new(every: Duration) -> Periodic {
        let now = Instant::now();
        Periodic {
            every,
            started: now,
            last_at: now,
            last: Counts::default(),
        }
    }

    /// The line due at this tick, if one is: once `every` passed since the
    /// last, and at the end (the last part of an interval).
    pub fn tick(&mut self, view: &RunView<'_>) -> Option<String> {
        let now = Instant::now();
        let span = now.duration_since(self.last_at);
        if span < self.every && !view.finished {
            return None;
        }
        let counts = Counts::of(view);
        let last = std::mem::replace(&mut self.last, counts);
        self.last_at = now;
        let seconds = span.as_secs_f64();
        let events = counts.events.saturating_sub(last.events);
        let rate = if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        };
        let watermark = match view.watermark() {
            // (`--flush-at-end`: time ran to its end)
            Some(i64::MAX) => "watermark at the end of time".to_string(),
            Some(w) => format!("watermark {} (lag {})", rfc3339(w), lag(w)),
            None => "no watermark yet".to_string(),
        };
        Some(format!(
            "cepheid: stats at {:.1}s (last {seconds:.1}s): {} ({rate:.0}/s), {}, {}, {} late, {} malformed; {watermark}; {}",
            now.duration_since(self.started).as_secs_f64(),
            count(events, "event", "events"),
            count(counts.matches.saturating_sub(last.matches), "match", "matches"),
            count(counts.timeouts.saturating_sub(last.timeouts), "timeout", "timeouts"),
            counts.late.saturating_sub(last.late),
            counts.malformed.saturating_sub(last.malformed),
            count(
                view.live_runs(),
                "live partial match",
                "live partial matches"
            ),
        ))
    }
}

/// The progress bar's message: the run's counts so far.
pub fn bar_message(view: &RunView<'_>) -> String {
    let stats = view.stats();
    format!(
        "{}, {}, {}",
        count(view.events_read, "event", "events"),
        count(stats.matches, "match", "matches"),
        count(stats.timeouts, "timeout", "timeouts"),
    )
}

/// The summary's line for one pattern (after the first line, `--summary
/// text`): `cepheid: pattern `NAME`: 12 events reached it, 1 match, 0
/// timeouts, 2 live partial matches, 0 partial matches cut by the limits`,
/// then the partial matches discarded by reloads and the version when
/// there are some.
pub fn pattern_line(p: &PatternStats) -> String {
    let mut line = format!(
        "cepheid: pattern `{}`{}: {} reached it, {}, {}, {}, {} cut by the limits",
        p.name,
        if p.shadow { " (shadow)" } else { "" },
        count(p.events, "event", "events"),
        count(p.matches, "match", "matches"),
        count(p.timeouts, "timeout", "timeouts"),
        count(p.live_runs, "live partial match", "live partial matches"),
        count(p.dropped_runs, "partial match", "partial matches"),
    );
    if p.discarded_runs > 0 {
        line += &format!(
            ", {} discarded by reloads",
            count(p.discarded_runs, "partial match", "partial matches")
        );
    }
    if p.version > 1 {
        line += &format!(" (version {})", p.version);
    }
    line
}

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How far event time `ms` is behind the wall clock, for people: `850ms`,
/// `12.3s`, `4.5m`, `3.2h`, `936d` (negative when ahead).
fn lag(ms: i64) -> String {
    let lag = now_ms().saturating_sub(ms);
    let (sign, lag) = (if lag < 0 { "-" } else { "" }, lag.unsigned_abs());
    let s = lag as f64 / 1000.0;
    match lag {
        0..=999 => format!("{sign}{lag}ms"),
        1_000..=59_999 => format!("{sign}{s:.1}s"),
        60_000..=3_599_999 => format!("{sign}{:.1}m", s / 60.0),
        3_600_000..=172_799_999 => format!("{sign}{:.1}h", s / 3600.0),
        _ => format!("{sign}{:.0}d", s / 86_400.0),
    }
}

/// Event time `ms` in RFC 3339, UTC, to the millisecond.
fn rfc3339(ms: i64) -> String {
    cepheid_decode::format_rfc3339(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_line_says_its_counts_in_the_plural_when_not_one() {
        let mut p = PatternStats::default();
        p.name = "p".to_string();
        p.version = 1;
        p.events = 1;
        p.matches = 2;
        assert_eq!(
            pattern_line(&p),
            "cepheid: pattern `p`: 1 event reached it, 2 matches, 0 timeouts, 0 live partial matches, 0 partial matches cut by the limits"
        );
        p.discarded_runs = 1;
        p.version = 3;
        assert!(
            pattern_line(&p).ends_with(", 1 partial match discarded by reloads (version 3)"),
            "{}",
            pattern_line(&p)
        );
    }

    #[test]
    fn lags_print_for_people() {
        let now = now_ms();
        assert!(lag(now - 100).ends_with("ms"));
        assert!(lag(now - 12_300).ends_with('s'));
        assert!(lag(now - 3 * 86_400_000).ends_with('d'));
        assert!(lag(now + 5_000).starts_with('-'));
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_557_600_123), "2024-05-01T10:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
