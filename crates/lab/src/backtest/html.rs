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
//! the plots from them as SVG (the browser test reads what it drew):
//! alerts above and timeouts below, each on its own scale (a few alerts
//! beside many timeouts are not flattened), with a legend, and the time
//! axis's ticks at even times (multiples of one nice step, at most
//! [`MAX_TICKS`], computed here). The table is the terminal's with its
//! delays in human units (`15 min 30 s`), and a rate per day from less
//! than a day of events says the span it is from.
//!
//! Everything the user gave (file names, keys, records) is escaped: in
//! the HTML as entities, in the JSON with `<`, `>` and `&` as `\u` escapes
//! (no `</script>` can end the data), and the script sets only text and
//! numbers.

use std::fmt::Write;

use serde::Serialize;

use super::{Header, Label, Raised, Report};

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

/// The table's column of delays (`min/median/p95/max`, milliseconds in
/// the terminal's).
const DELAY_COLUMN: usize = 5;

/// The terminal's delays `0/930000/...` as the page says them, in human
/// units (`0 s/15 min 30 s/...`); `-` as it is.
fn human_delays(cell: &str) -> String {
    (cell.split('/'))
        .map(|ms| match ms.parse::<i128>() {
            Ok(ms) => human_duration(ms),
            Err(_) => ms.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A duration in the two largest units it has: `0 s`, `250 ms`, `1.5 s`,
/// `15 min 30 s`, `2 h 5 min`, `3 d 4 h`; negative with a `-`.
fn human_duration(ms: i128) -> String {
    if ms < 0 {
        return format!("-{}", human_duration(-ms));
    }
    if ms == 0 {
        return "0 s".to_string();
    }
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        return match tenths % 10 {
            0 => format!("{} s", tenths / 10),
            t => format!("{}.{t} s", tenths / 10),
        };
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    let at = units.iter().position(|(u, _)| ms >= *u).unwrap_or(3);
    let (big, big_name) = units[at];
    let (small, small_name) = units[(at + 1).min(3)];
    let (whole, rest) = (ms / big, ms % big / small);
    match rest {
        0 => format!("{whole} {big_name}"),
        rest => format!("{whole} {big_name} {rest} {small_name}"),
    }
}

/// `n` things: `1 alert`, `2 alerts` (`one`, `many`).
fn counted(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
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
    let text = cepheid_decode::format_rfc3339(ms).replacen('T', " ", 1);
    let text = text.strip_suffix('Z').unwrap_or(&text);
    let text = text.strip_suffix(".000").unwrap_or(text);
    format!("{text} UTC")
}

/// `text` escaped for HTML, in text and in attribute values.
pub(super) fn escape(text: &str) -> String {
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
    /// The time axis's ticks: milliseconds, each a multiple of one nice
    /// step (at most [`MAX_TICKS`] over the bins), in UTC.
    ticks: Vec<i128>,
    patterns: Vec<Series<'a>>,
}

/// At most this many ticks on a plot's time axis.
const MAX_TICKS: i128 = 6;

impl Bins {
    /// The axis's ticks: the multiples of the least nice width (a
    /// multiple of the bins' width) that gives at most [`MAX_TICKS`] of
    /// them over the bins, from their start to their end, both included.
    fn ticks(&self) -> Vec<i128> {
        let end = self.from + self.width * self.count as i128;
        let count = |step: i128| end.div_euclid(step) - (self.from + step - 1).div_euclid(step) + 1;
        let step = nice_widths()
            .filter(|w| w % self.width == 0)
            .find(|&w| count(w) <= MAX_TICKS)
            .unwrap_or(end - self.from);
        let first = (self.from + step - 1).div_euclid(step) * step;
        (0..count(step).max(0)).map(|k| first + k * step).collect()
    }
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
        ticks: bins.ticks(),
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
    // (a rate per day from less than a day of events is an estimate: said)
    if let Some((from, to)) = report.span {
        let ms = i128::from(to) - i128::from(from);
        if ms < 86_400_000 {
            let _ = writeln!(
                out,
                "<dt>Per day</dt><dd id=\"run-per-day\">an estimate: the alerts of {} of \
                 event time, scaled to a day</dd>",
                human_duration(ms.max(1))
            );
        }
    }
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
    let left_out = report.left_out.lines();
    if !left_out.is_empty() {
        // (the figures count only what the lists and indicators took in)
        let lines: Vec<String> = left_out.iter().map(|l| escape(l)).collect();
        let _ = writeln!(
            out,
            "<dt>Left out</dt><dd id=\"run-left-out\">{}</dd>",
            lines.join("<br>")
        );
    }
    out.push_str("</dl>\n");
    table(&mut out, report);
    labels(&mut out, report);
    if let Some(outcomes) = &report.outcomes {
        outcomes.html(&mut out);
    }
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
        "<script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// The table of the terminal, a row per pattern.
fn table(out: &mut String, report: &Report) {
    out.push_str("<h2>Patterns</h2>\n<table id=\"patterns\">\n<thead><tr>");
    // (the terminal's columns, but delays in human units, and per day
    // said of the span it is from when that is less than a day)
    let short = (report.span)
        .map(|(from, to)| i128::from(to) - i128::from(from))
        .filter(|ms| *ms < 86_400_000);
    for column in report.header() {
        let column = match column {
            "delay ms min/median/p95/max" => "delay min/median/p95/max".to_string(),
            "per day" if short.is_some() => {
                format!(
                    "per day (from {})",
                    human_duration(short.unwrap_or(1).max(1))
                )
            }
            other => other.to_string(),
        };
        let _ = write!(out, "<th>{}</th>", escape(&column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    // (the live patterns, then the shadow ones apart, as the terminal's)
    let row = |out: &mut String, f: &super::Figures| {
        let class = if f.shadow { " class=\"shadow\"" } else { "" };
        let _ = write!(out, "<tr data-pattern=\"{}\"{class}>", escape(&f.pattern));
        for (c, cell) in report.row(f).iter().enumerate() {
            let cell = match c {
                DELAY_COLUMN => human_delays(cell),
                _ => cell.clone(),
            };
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

/// The labels' figures, those no pattern caught and, with shadow
/// patterns, those only they caught (no alert).
fn labels(out: &mut String, report: &Report) {
    let Some(labels) = &report.labels else {
        return;
    };
    let said = labels.said(report.has_shadows());
    let _ = writeln!(
        out,
        "<h2>Labels</h2>\n<p id=\"labels\">{}</p>",
        escape(&said)
    );
    missed(out, ("missed", None), &labels.missed);
    let heading = "Caught by shadow patterns only (no alert)";
    missed(out, ("shadow-only", Some(heading)), &labels.shadow_only);
}

/// The table `id` of `list`'s labels, under `heading` if any (none when
/// the list is empty).
fn missed(out: &mut String, (id, heading): (&str, Option<&str>), list: &[Label]) {
    if list.is_empty() {
        return;
    }
    if let Some(heading) = heading {
        let _ = writeln!(out, "<h3>{heading}</h3>");
    }
    let _ = writeln!(
        out,
        "<table id=\"{id}\">\n<thead><tr><th>line</th><th>key</th><th>time</th><th>ms</th></tr></thead>\n<tbody>",
    );
    for label in list {
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
        "<section class=\"pattern\" data-pattern=\"{name}\">\n<h3>{name}{}</h3>\n<p>{}, {}</p>",
        if f.shadow { " (shadow)" } else { "" },
        match f.shadow {
            true => format!(
                "{} to the shadow output (not alerts)",
                counted(f.alerts, "match", "matches")
            ),
            false => counted(f.alerts, "alert", "alerts"),
        },
        counted(f.timeouts, "timeout", "timeouts"),
    );
    if let Some(data) = data {
        let _ = writeln!(
            out,
            "<figure><svg id=\"plot-{i}\" class=\"plot\" viewBox=\"0 0 760 236\" role=\"img\" \
             aria-label=\"alerts of {name} per {} of event time\"></svg>\n\
             <figcaption>Alerts (above) and timeouts (below), each on its own scale, per {} of event time, UTC.</figcaption></figure>",
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
tr.shadow-heading th { text-align: left; font-weight: 600; color: #555; }
svg .axis { stroke: #444; } svg .grid { stroke: #ddd; } svg text { font-size: 10px; fill: #333; }
pre.records { overflow-x: auto; font-size: 12px; background: #f6f6f6; padding: 0.5em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; vertical-align: middle; }
svg.outcome-days { display: block; width: 100%; max-width: 640px; height: auto; margin: 0.4em 0 1em; }
"#;

/// The page's script: the plots drawn as SVG from the data, each bar with
/// its count (`data-count`): alerts above and timeouts below, each on its
/// own scale (`data-max`, `data-timeouts-max`), a legend, and the time
/// axis's ticks at the data's even times (`data-time`).
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  // Alerts above on their own scale (PH px), timeouts below on theirs
  // (TH px): 5 alerts beside 120 timeouts both show.
  var W = 760, L = 48, R = 12, T = 24, PH = 120, GAP = 14, TH = 40;
  var PW = W - L - R, BASE = T + PH, TTOP = BASE + GAP, TBASE = TTOP + TH;
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
  function counted(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function draw(series, i) {
    var svg = document.getElementById("plot-" + i);
    var n = data.count, bw = PW / n, max = 1, tmax = 1;
    for (var b = 0; b < n; b++) {
      max = Math.max(max, series.alerts[b]);
      tmax = Math.max(tmax, series.timeouts[b]);
    }
    svg.setAttribute("data-max", max);
    svg.setAttribute("data-timeouts-max", tmax);
    function scale(top, base, m, what) {
      [0, Math.round(m / 2), m].forEach(function (y, k) {
        if (k === 1 && (y === 0 || y === m)) return;
        var at = base - y / m * (base - top);
        el(svg, "line", { "class": "grid", x1: L, y1: at, x2: L + PW, y2: at });
        el(svg, "text", { "class": "scale " + what, x: L - 4, y: at + 3, "text-anchor": "end" }, String(y));
      });
      el(svg, "line", { "class": "axis", x1: L, y1: top, x2: L, y2: base });
    }
    function bars(counts, cls, top, base, m, one, many) {
      for (var b = 0; b < n; b++) {
        var c = counts[b];
        if (!c) continue;
        var h = c / m * (base - top), w = Math.max(bw * (bw > 3 ? 0.85 : 1), 0.5);
        var r = el(svg, "rect", { "class": cls, "data-bin": b, "data-count": c,
          x: (L + b * bw + (bw - w) / 2).toFixed(2), y: (base - h).toFixed(2),
          width: w.toFixed(2), height: h.toFixed(2) });
        el(r, "title", {}, utc(data.from + b * data.width) + " + " + data.width_text + ": " + counted(c, one, many));
      }
    }
    scale(T, BASE, max, "alerts");
    scale(TTOP, TBASE, tmax, "timeouts");
    bars(series.alerts, "bar", T, BASE, max, "alert", "alerts");
    bars(series.timeouts, "timeout", TTOP, TBASE, tmax, "timeout", "timeouts");
    el(svg, "line", { "class": "axis", x1: L, y1: BASE, x2: L + PW, y2: BASE });
    el(svg, "line", { "class": "axis", x1: L, y1: TBASE, x2: L + PW, y2: TBASE });
    // The legend: what each color is, and each scale's largest bin.
    var legend = el(svg, "g", { "class": "legend" });
    function most(counts, m, one, many, where) {
      for (var b = 0; b < n; b++) if (counts[b]) return counted(m, one, many) + " per bin at most (" + where + ")";
      return "no " + many + " (" + where + ")";
    }
    [["bar", most(series.alerts, max, "alert", "alerts", "above"), L],
     ["timeout", most(series.timeouts, tmax, "timeout", "timeouts", "below"), L + PW / 2]]
      .forEach(function (item) {
        el(legend, "rect", { "class": item[0], x: item[2], y: 4, width: 10, height: 10 });
        el(legend, "text", { "class": "legend-text", x: item[2] + 14, y: 13 }, item[1]);
      });
    // Ticks at even times: multiples of one step, in UTC; the date said
    // at the first tick and where it changes, the time of day elsewhere.
    var end = data.from + n * data.width, day = null;
    data.ticks.forEach(function (t) {
      var x = L + (t - data.from) / (end - data.from) * PW;
      el(svg, "line", { "class": "axis", x1: x, y1: TBASE, x2: x, y2: TBASE + 4 });
      var anchor = x - L < 60 ? "start" : (L + PW - x < 40 ? "end" : "middle");
      var text = utc(t), date = text.split(" ")[0];
      if (date === day && text.indexOf(" ") > 0) text = text.slice(date.length + 1);
      day = date;
      el(svg, "text", { "class": "tick", "data-time": t, x: x, y: TBASE + 16, "text-anchor": anchor }, text);
    });
    el(svg, "text", { x: L + PW / 2, y: TBASE + 32, "text-anchor": "middle" },
      "event time (UTC), bins of " + data.width_text);
    svg.setAttribute("data-drawn", "true");
  }
  if (data) data.patterns.forEach(draw);
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

    /// Ticks at multiples of one nice step, at most 6, within the bins.
    #[test]
    fn ticks_are_at_even_times() {
        let base = 1_714_557_600_000;
        // 121 bins of 5 s: every 2 minutes, 10:00 to 10:10.
        let bins = Bins::over(base, base + 600_000);
        let ticks = bins.ticks();
        assert_eq!(
            ticks,
            (0..6)
                .map(|k| i128::from(base) + k * 120_000)
                .collect::<Vec<_>>()
        );
        // Bins that start off a step: the first tick is the next multiple.
        let bins = Bins::over(base + 7_000, base + 3_600_000);
        let ticks = bins.ticks();
        assert!(ticks.len() <= 6 && ticks.len() >= 2, "{ticks:?}");
        let step = ticks[1] - ticks[0];
        assert!(ticks.iter().all(|t| t % step == 0), "{ticks:?}");
        assert!(ticks[0] >= bins.from, "{ticks:?} {bins:?}");
        let end = bins.from + bins.width * bins.count as i128;
        assert!(*ticks.last().unwrap() <= end);
        // The extremes of time still have ticks, as many as allowed.
        let all = Bins::over(i64::MIN, i64::MAX);
        assert!((1..=6).contains(&all.ticks().len()), "{:?}", all.ticks());
    }

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0 s"),
            (250, "250 ms"),
            (1_000, "1 s"),
            (1_500, "1.5 s"),
            (59_940, "59.9 s"),
            (60_000, "1 min"),
            (930_000, "15 min 30 s"),
            (7_500_000, "2 h 5 min"),
            (273_600_000, "3 d 4 h"),
            (-2_000, "-2 s"),
        ];
        for (ms, text) in cases {
            assert_eq!(human_duration(ms), text, "{ms}");
        }
        assert_eq!(human_delays("0/1000/930000/-"), "0 s/1 s/15 min 30 s/-");
        assert_eq!(counted(1, "alert", "alerts"), "1 alert");
        assert_eq!(counted(0, "alert", "alerts"), "0 alerts");
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
