//! `cepheid backtest --html FILE`: the report as one self-contained page
//! (`docs/rule-lab.md`): the run's header, the terminal's table, the
//! labels no pattern caught, and per pattern a plot of its alerts (and
//! timeouts) over event time, with its first alerts as records.
//!
//! The alerts are binned here, not in the page: a plot has at most
//! [`MAX_BINS`] bins of one "nice" width (the least of 1, 2, 5 × a power
//! of ten milliseconds up to 500 ms; 1, 2, 5, 10, 15, 30 s; 1, 2, 5, 10,
//! 15, 30 min; 1, 2, 3, 6, 12 h; 1, 2, 7 d; then 1, 2, 5 × a power of ten
//! days that gives at most that many), aligned on multiples of it in UTC,
//! over the events' time span and the times of the records. An alert is
//! in the bin of its last event (the one that raised it), a timeout in
//! that of the time its window closed. Only the bins' counts are in the
//! page, as JSON, so that its size does not grow with the alerts: a
//! million alerts are as quick to draw as ten. The page's script draws
//! the plots from them as SVG (the browser test reads what it drew).
//!
//! Everything the user gave (file names, keys, records) is escaped: in
//! the HTML as entities, in the JSON with `<`, `>` and `&` as `\u` escapes
//! (no `</script>` can end the data), and the script sets only text and
//! numbers.

use std::fmt::Write;

use serde::Serialize;

use super::{Header, Raised, Report};

/// At most this many bins per plot.
const MAX_BINS: i128 = 200;

/// Alerts of each pattern shown as records.
const FIRST_ALERTS: usize = 3;

/// The bins of the plots: `count` bins of `width` milliseconds from
/// `from`.
#[derive(Debug, PartialEq)]
struct Bins {
    from: i128,
    width: i128,
    count: usize,
}

/// The widths a plot's bins may have, in milliseconds, in order.
fn nice_widths() -> impl Iterator<Item = i128> {
    const DAY: i128 = 86_400_000;
    const FIXED: &[i128] = &[
        1,
        2,
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        DAY,
        2 * DAY,
        7 * DAY,
    ];
    (FIXED.iter().copied()).chain((1..).flat_map(|k| [1, 2, 5].map(|m| m * 10_i128.pow(k) * DAY)))
}

impl Bins {
    /// The bins over the times `lo` to `hi` (`lo <= hi`): the least nice
    /// width that needs at most [`MAX_BINS`].
    fn over(lo: i64, hi: i64) -> Bins {
        let (lo, hi) = (i128::from(lo), i128::from(hi));
        let count = |width: i128| hi.div_euclid(width) - lo.div_euclid(width) + 1;
        // (a width past the span needs at most 2: always found)
        let width = nice_widths()
            .find(|&w| count(w) <= MAX_BINS)
            .unwrap_or(i128::MAX);
        Bins {
            from: lo.div_euclid(width) * width,
            width,
            count: usize::try_from(count(width)).unwrap_or(1),
        }
    }

    /// The bin of time `t` (within the bins).
    fn of(&self, t: i64) -> usize {
        usize::try_from((i128::from(t) - self.from) / self.width)
            .unwrap_or(0)
            .min(self.count - 1)
    }
}

/// A duration as the page says it: `5 s`, `2 h`.
fn duration_text(ms: i128) -> String {
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    for (unit, name) in units {
        if ms >= unit && ms % unit == 0 {
            return format!("{} {name}", ms / unit);
        }
    }
    format!("{ms} ms")
}

/// A time in UTC: `2024-05-01 10:00:00 UTC` (milliseconds when not whole
/// seconds).
fn utc(ms: i64) -> String {
    let text = cepheid_engine::io::format_rfc3339(ms).replacen('T', " ", 1);
    let text = text.strip_suffix('Z').unwrap_or(&text);
    let text = text.strip_suffix(".000").unwrap_or(text);
    format!("{text} UTC")
}

/// `text` escaped for HTML, in text and in attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The plots' data, embedded as JSON.
#[derive(Serialize)]
struct Data<'a> {
    /// The first bin's start, milliseconds.
    from: i128,
    /// The bins' width, milliseconds, and as said.
    width: i128,
    width_text: String,
    count: usize,
    patterns: Vec<Series<'a>>,
}

/// One pattern's counts per bin.
#[derive(Serialize)]
struct Series<'a> {
    name: &'a str,
    alerts: Vec<u64>,
    timeouts: Vec<u64>,
}

/// The plots' data: `None` when nothing has a time.
fn data<'a>(report: &'a Report, raised: &[Raised]) -> Option<Data<'a>> {
    let times = (raised.iter())
        .map(|r| r.end)
        .chain(report.span.into_iter().flat_map(|(from, to)| [from, to]));
    let (lo, hi) = times.fold(None, |range: Option<(i64, i64)>, t| match range {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })?;
    let bins = Bins::over(lo, hi);
    let mut patterns: Vec<Series> = (report.patterns.iter())
        .map(|f| Series {
            name: &f.pattern,
            alerts: vec![0; bins.count],
            timeouts: vec![0; bins.count],
        })
        .collect();
    for r in raised {
        let Some(series) = patterns.get_mut(r.pattern) else {
            continue;
        };
        let counts = match r.timeout {
            true => &mut series.timeouts,
            false => &mut series.alerts,
        };
        counts[bins.of(r.end)] += 1;
    }
    Some(Data {
        from: bins.from,
        width: bins.width,
        width_text: duration_text(bins.width),
        count: bins.count,
        patterns,
    })
}

/// The first alerts of each pattern, as their records (without the
/// events' values with `--no-events`).
#[derive(Default)]
pub(super) struct FirstAlerts(std::collections::HashMap<String, Vec<String>>);

impl FirstAlerts {
    /// `line`, an alert of `pattern`, kept if one of its first. Are all
    /// of the pattern's first alerts kept now (none is wanted any more)?
    pub(super) fn offer(&mut self, pattern: &str, line: &str, no_events: bool) -> bool {
        let kept = self.0.get(pattern).map_or(0, Vec::len);
        if kept >= FIRST_ALERTS {
            return true;
        }
        let shown = match no_events {
            true => crate::without_events(line),
            false => Some(line.to_string()),
        };
        match shown {
            Some(shown) => {
                let kept = self.0.entry(pattern.to_string()).or_default();
                kept.push(shown);
                kept.len() >= FIRST_ALERTS
            }
            None => false,
        }
    }
}

/// The page of `report`: `raised` its alerts and timeouts, `first` the
/// first alerts of each pattern.
pub(super) fn page(
    report: &Report,
    args: &Header,
    raised: &[Raised],
    first: &FirstAlerts,
) -> String {
    let data = data(report, raised);
    let mut out = String::new();
    let rules = escape(&args.rules.display().to_string());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>cepheid backtest: {rules}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Backtest of {rules}</h1>\n<dl id=\"run\">\n<dt>Rules</dt><dd id=\"run-rules\">{rules}</dd>\n\
         <dt>Events</dt><dd id=\"run-events\">{}</dd>\n",
        escape(&args.events.display().to_string())
    );
    let span = match (report.span, report.days()) {
        (Some((from, to)), Some(days)) => {
            format!("{} to {} ({days:.3} days)", utc(from), utc(to))
        }
        _ => "none (no event had a time)".to_string(),
    };
    let _ = writeln!(out, "<dt>Event time</dt><dd id=\"run-span\">{span}</dd>");
    if let Some(data) = &data {
        let _ = writeln!(
            out,
            "<dt>Plots</dt><dd id=\"run-bins\">alerts per {} of event time ({} bins from {}), \
             each in the bin of the event that raised it; timeouts in that of the time their \
             window closed</dd>",
            data.width_text,
            data.count,
            utc(i64::try_from(data.from).unwrap_or(i64::MIN)),
        );
    }
    if args.no_events {
        let _ = writeln!(
            out,
            "<dt>Events' values</dt><dd id=\"run-no-events\">left out (--no-events)</dd>"
        );
    }
    out.push_str("</dl>\n");
    table(&mut out, report);
    labels(&mut out, report);
    out.push_str("<h2>Alerts over event time</h2>\n");
    if data.is_none() {
        out.push_str("<p id=\"no-plots\">No event had a time: nothing to plot.</p>\n");
    }
    for (i, f) in report.patterns.iter().enumerate() {
        plot(&mut out, i, f, data.as_ref(), first);
    }
    // (`<`, `>`, `&` inside JSON strings as escapes: the data cannot end
    // its element)
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "null".to_string())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let _ = write!(
        out,
        "<p class=\"note\">Drawn in <span id=\"drawn\">-</span> ms after the page's start.</p>\n\
         <script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// The table of the terminal, a row per pattern.
fn table(out: &mut String, report: &Report) {
    out.push_str("<h2>Patterns</h2>\n<table id=\"patterns\">\n<thead><tr>");
    for column in report.header() {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    // (the live patterns, then the shadow ones apart, as the terminal's)
    let row = |out: &mut String, f: &super::Figures| {
        let class = if f.shadow { " class=\"shadow\"" } else { "" };
        let _ = write!(out, "<tr data-pattern=\"{}\"{class}>", escape(&f.pattern));
        for cell in report.row(f) {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    };
    for f in report.patterns.iter().filter(|f| !f.shadow) {
        row(out, f);
    }
    if report.has_shadows() {
        let _ = writeln!(
            out,
            "<tr class=\"shadow-heading\"><th colspan=\"{}\">{}</th></tr>",
            report.header().len(),
            escape(super::SHADOWS)
        );
        for f in report.patterns.iter().filter(|f| f.shadow) {
            row(out, f);
        }
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The labels' figures and those no pattern caught.
fn labels(out: &mut String, report: &Report) {
    let Some((total, missed)) = &report.labels else {
        return;
    };
    let _ = writeln!(
        out,
        "<h2>Labels</h2>\n<p id=\"labels\">labels: {total}, caught by a pattern: {}, caught by none: {}</p>",
        total - missed.len(),
        missed.len()
    );
    if missed.is_empty() {
        return;
    }
    out.push_str(
        "<table id=\"missed\">\n<thead><tr><th>line</th><th>key</th><th>time</th><th>ms</th></tr></thead>\n<tbody>\n",
    );
    for label in missed {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            label.line,
            escape(&label.key.to_string()),
            utc(label.ts),
            label.ts
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Pattern `i`'s section: its plot (an empty SVG the script draws in),
/// and its first alerts.
fn plot(out: &mut String, i: usize, f: &super::Figures, data: Option<&Data>, first: &FirstAlerts) {
    let name = escape(&f.pattern);
    let _ = writeln!(
        out,
        "<section class=\"pattern\" data-pattern=\"{name}\">\n<h3>{name}{}</h3>\n<p>{} {}, {} timeouts</p>",
        if f.shadow { " (shadow)" } else { "" },
        f.alerts,
        if f.shadow { "matches to the shadow output (not alerts)" } else { "alerts" },
        f.timeouts
    );
    if let Some(data) = data {
        let _ = writeln!(
            out,
            "<figure><svg id=\"plot-{i}\" class=\"plot\" viewBox=\"0 0 760 172\" role=\"img\" \
             aria-label=\"alerts of {name} per {} of event time\"></svg>\n\
             <figcaption>Alerts (bars) and timeouts (narrow bars) per {} of event time, UTC.</figcaption></figure>",
            data.width_text, data.width_text
        );
    }
    if let Some(kept) = first.0.get(&f.pattern) {
        let _ = writeln!(
            out,
            "<details><summary>First alerts ({} of {})</summary><pre class=\"records\">{}</pre></details>",
            kept.len(),
            f.alerts,
            escape(&kept.join("\n"))
        );
    }
    out.push_str("</section>\n");
}

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 800px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1.05em; margin-bottom: 0.2em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section.pattern { margin-top: 1.2em; } section.pattern p { margin: 0; color: #555; }
figure { margin: 0.4em 0; } svg.plot { width: 100%; max-width: 760px; height: auto; }
figcaption, .note { color: #555; font-size: 0.9em; }
svg .bar { fill: #0072b2; } svg .timeout { fill: #e69f00; }
svg .axis { stroke: #444; } svg .grid { stroke: #ddd; } svg text { font-size: 10px; fill: #333; }
pre.records { overflow-x: auto; font-size: 12px; background: #f6f6f6; padding: 0.5em; }
"#;

/// The page's script: the plots drawn as SVG from the data, each bar with
/// its count (`data-count`), then the time it took written in `#drawn`.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var W = 760, L = 48, R = 12, T = 12, PH = 120;
  var PW = W - L - R, BASE = T + PH;
  function el(parent, name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function utc(ms) {
    if (!(Math.abs(ms) <= 8.64e15)) return ms + " ms";
    var s = new Date(ms).toISOString().replace("T", " ").replace("Z", "");
    return s.replace(/\.000$/, "");
  }
  function draw(series, i) {
    var svg = document.getElementById("plot-" + i);
    var n = data.count, bw = PW / n, max = 1;
    for (var b = 0; b < n; b++) max = Math.max(max, series.alerts[b], series.timeouts[b]);
    svg.setAttribute("data-max", max);
    [0, Math.round(max / 2), max].forEach(function (y) {
      var at = BASE - y / max * PH;
      el(svg, "line", { "class": "grid", x1: L, y1: at, x2: L + PW, y2: at });
      el(svg, "text", { x: L - 4, y: at + 3, "text-anchor": "end" }, String(y));
    });
    function bars(counts, cls, share, what) {
      for (var b = 0; b < n; b++) {
        var c = counts[b];
        if (!c) continue;
        var h = c / max * PH, w = Math.max(bw * share, 0.5);
        var r = el(svg, "rect", { "class": cls, "data-bin": b, "data-count": c,
          x: (L + b * bw + (bw - w) / 2).toFixed(2), y: (BASE - h).toFixed(2),
          width: w.toFixed(2), height: h.toFixed(2) });
        el(r, "title", {}, utc(data.from + b * data.width) + " + " + data.width_text + ": " + c + " " + what);
      }
    }
    bars(series.alerts, "bar", bw > 3 ? 0.85 : 1, "alerts");
    bars(series.timeouts, "timeout", 0.4, "timeouts");
    el(svg, "line", { "class": "axis", x1: L, y1: BASE, x2: L + PW, y2: BASE });
    el(svg, "line", { "class": "axis", x1: L, y1: T, x2: L, y2: BASE });
    // (ticks at the bins' edges: the first, about every quarter, the last)
    var ticks = n < 4 ? n : 4;
    for (var k = 0; k <= ticks; k++) {
      var t = Math.round(k * n / ticks), x = L + t * bw;
      el(svg, "line", { "class": "axis", x1: x, y1: BASE, x2: x, y2: BASE + 4 });
      el(svg, "text", { "class": "tick", x: x, y: BASE + 16,
        "text-anchor": k === 0 ? "start" : (k === ticks ? "end" : "middle") },
        utc(data.from + t * data.width));
    }
    el(svg, "text", { x: L + PW / 2, y: BASE + 34, "text-anchor": "middle" },
      "event time (UTC), bins of " + data.width_text);
    svg.setAttribute("data-drawn", "true");
  }
  if (data) data.patterns.forEach(draw);
  document.getElementById("drawn").textContent = performance.now().toFixed(1);
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_the_least_nice_width_within_200() {
        // 10 minutes: 5 s bins (2 s would need 301).
        let base = 1_714_557_600_000;
        assert_eq!(
            Bins::over(base, base + 600_000),
            Bins {
                from: i128::from(base),
                width: 5_000,
                count: 121
            }
        );
        // Aligned on the width: 1 ms to 30 s is 200 ms bins from 0.
        assert_eq!(
            Bins::over(1_000, 31_000),
            Bins {
                from: 1_000,
                width: 200,
                count: 151
            }
        );
        assert_eq!(Bins::over(7, 7).count, 1);
        // 30 days: 6 h bins (120); the extremes of time: days.
        assert_eq!(Bins::over(0, 30 * 86_400_000).width, 21_600_000);
        let all = Bins::over(i64::MIN, i64::MAX);
        assert!(all.count <= 200 && all.count >= 2, "{all:?}");
        assert_eq!(all.of(i64::MAX), all.count - 1);
        assert_eq!(all.of(i64::MIN), 0);
    }

    #[test]
    fn durations_and_escapes() {
        assert_eq!(duration_text(5_000), "5 s");
        assert_eq!(duration_text(900_000), "15 min");
        assert_eq!(duration_text(604_800_000), "7 d");
        assert_eq!(duration_text(500), "500 ms");
        assert_eq!(
            escape("</script><b a='1'>&"),
            "&lt;/script&gt;&lt;b a=&#39;1&#39;&gt;&amp;"
        );
        assert_eq!(utc(1_714_557_600_000), "2024-05-01 10:00:00 UTC");
        assert_eq!(utc(1_714_557_600_123), "2024-05-01 10:00:00.123 UTC");
    }
}
