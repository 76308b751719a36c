//! The live page in a real browser: Debian's `chromium`, headless, loads
//! the page from a running server (the repository's rules over the sample
//! stream) and the test reads the DOM the page's scripts built: the rules
//! table's rows and counts, the automaton drawn as SVG with its start
//! node, the two plots, the latest matches. Then a screenshot (written to
//! `docs/monitor.png` for the README when `CEPHEID_SCREENSHOT=update`).
//!
//! No browser is a failure, not a skip: the test installs it with
//! `.ci/install-browser` (apt) when `/usr/bin/chromium` is missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cepheid_monitor::Monitor;
use support::{root, sample_run};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser, installed by `.ci/install-browser` if missing.
fn chromium() -> PathBuf {
    if !Path::new(CHROMIUM).exists() {
        let script = root().join(".ci/install-browser");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): the page's test needs Debian's chromium \
             (`apt-get install chromium`)",
            script.display(),
            out.status
        );
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "no browser at {CHROMIUM} after .ci/install-browser: the page's test \
         needs Debian's chromium (`apt-get install chromium`)"
    );
    PathBuf::from(CHROMIUM)
}

/// A fresh, empty folder (a browser profile, a screenshot).
fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "cepheid-monitor-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless chromium with `args` after the common flags (a fresh
/// profile, no network of its own, 5 s of virtual time for the page's
/// scripts), killed after a minute.
fn headless(args: &[String]) -> Output {
    let profile = temp_dir("profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts chromium");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium ran for more than a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The text inside `<tag ...>` ... `</tag>` of each element of `tag`
/// found in `html`, tags inside removed.
fn cells(html: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i..];
        // `<th` is not `<thead`.
        if !matches!(after.as_bytes().get(open.len()), Some(b'>' | b' ')) {
            rest = &after[open.len()..];
            continue;
        }
        let Some(start) = after.find('>') else { break };
        let Some(end) = after.find(&close) else { break };
        out.push(strip_tags(&after[start + 1..end]));
        rest = &after[end + close.len()..];
    }
    out
}

fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => text.push(c),
            _ => {}
        }
    }
    text.replace("&amp;", "&")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
}

/// The element with `id="id"` up to its closing `</tag>`.
fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in the page:\n{html}"));
    let rest = &html[start..];
    let end = rest.find(&format!("</{tag}>")).expect("closed");
    &rest[..end]
}

#[test]
fn the_page_shows_the_rules_plots_and_automaton_in_chromium() {
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").expect("serves");
    let seen = sample_run(&monitor);
    // What the runtime's events say of checkpoints and reloads
    // (`RunEvent`): one checkpoint written, one change applied, then one
    // refused.
    let checkpoint_at = now_ms() - 4_000;
    monitor.update(|s| {
        s.run.checkpoint.completed(checkpoint_at, 0.25, 48_213);
        s.run.reloads.applied(checkpoint_at + 1_000);
        s.run
            .reloads
            .refused(checkpoint_at + 2_000, "pattern `x`: no such stage");
    });
    let state = monitor
        .read(|s| s.run.state_bytes)
        .expect("the state measured");
    // A few samples of the series after the run.
    std::thread::sleep(Duration::from_millis(2500));
    let url = format!("http://{}/#unpaid_order", server.addr());

    let out = headless(&["--dump-dom".to_string(), url.clone()]);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed ({}): {}\n{dom}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // The connection line: the page fetched the status.
    assert!(
        dom.contains("<span id=\"conn\" class=\"\">updated "),
        "{dom}"
    );

    // The rules table: one row per pattern, in the engine's order, with
    // its counts.
    let rules = element(&dom, "table", "rules");
    let header = cells(rules, "th");
    assert_eq!(
        header,
        [
            "Rule",
            "Version",
            "Events",
            "Matches",
            "Matches/s",
            "Timeouts",
            "Live partial matches",
            "Dropped"
        ]
    );
    let body = &rules[rules.find("<tbody>").expect("a tbody")..];
    let rows: Vec<Vec<String>> = body
        .split("<tr")
        .skip(1)
        .map(|row| cells(row, "td"))
        .collect();
    let names: Vec<String> = monitor.read(|s| s.patterns.iter().map(|p| p.name.clone()).collect());
    assert_eq!(rows.len(), names.len(), "{rules}");
    for (row, name) in rows.iter().zip(&names) {
        assert_eq!(&row[0], name);
        assert_eq!(row[1], "1", "{name}: version");
        let matches = seen.matches.get(name).copied().unwrap_or(0);
        let timeouts = seen.timeouts.get(name).copied().unwrap_or(0);
        assert_eq!(row[3], matches.to_string(), "{name}: matches");
        assert_eq!(row[5], timeouts.to_string(), "{name}: timeouts");
        assert_ne!(row[2], "0", "{name}: events");
    }
    assert!(
        body.contains("<tr data-pattern=\"unpaid_order\" class=\"chosen\">"),
        "the rule of the URL is chosen: {body}"
    );
    let facts = |id: &str| {
        let start = dom.find(&format!("id=\"{id}\"")).expect(id);
        let rest = &dom[start..];
        strip_tags(&rest[rest.find('>').unwrap() + 1..rest.find("</dd>").unwrap()])
    };
    assert_eq!(facts("run-events"), seen.lines.to_string());
    assert_eq!(facts("run-matches"), "14");
    assert_eq!(facts("run-timeouts"), "2");
    assert_eq!(facts("run-late"), "3");
    assert!(facts("run-lag").ends_with(" d"), "{}", facts("run-lag"));

    // The chosen rule's automaton: nodes (the start one among them) and
    // edges with labels.
    let graph = element(&dom, "svg", "graph");
    assert!(graph.contains("class=\"node start\""), "{graph}");
    assert!(graph.contains("class=\"node final\""), "{graph}");
    assert!(graph.contains("class=\"edge take\""), "{graph}");
    assert!(graph.contains("<path d=\"M"), "{graph}");
    assert!(
        cells(graph, "text").iter().any(|t| t == "created"),
        "{graph}"
    );
    assert!(strip_tags(&dom).contains("Rule unpaid_order (version 1)"));

    // The plots: a line (or point) per rule, one for the lag.
    let plot = element(&dom, "svg", "plot-matches");
    assert!(
        plot.matches("class=\"series\"").count() >= names.len(),
        "{plot}"
    );
    let lag = element(&dom, "svg", "plot-lag");
    assert!(lag.contains("class=\"series\""), "{lag}");

    // The latest matches of the chosen rule (its match and timeouts).
    let recent = element(&dom, "table", "recent");
    let kinds: Vec<String> = recent
        .split("<tr")
        .skip(2)
        .filter_map(|row| cells(row, "td").into_iter().next())
        .collect();
    let expected = seen.matches.get("unpaid_order").copied().unwrap_or(0)
        + seen.timeouts.get("unpaid_order").copied().unwrap_or(0);
    assert_eq!(kinds.len() as u64, expected, "{recent}");
    assert!(
        kinds.iter().all(|k| k == "match" || k == "timeout"),
        "{kinds:?}"
    );

    // The state held, as the page writes bytes.
    assert_eq!(facts("run-state"), page_bytes(state));

    // Checkpoints and reloads.
    assert_eq!(facts("cp-completed"), "1");
    assert_eq!(facts("cp-failures"), "0");
    assert_eq!(facts("cp-last"), page_time(checkpoint_at));
    assert_eq!(facts("cp-duration"), "250 ms");
    assert_eq!(facts("cp-size"), "47.1 KiB");
    let age = facts("cp-age");
    let age: f64 = age
        .strip_suffix(" s")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an age in seconds: {age}"));
    assert!((4.0..60.0).contains(&age), "{age}");
    assert_eq!(facts("rl-applied"), "1");
    assert_eq!(facts("rl-refused"), "1");
    assert_eq!(facts("rl-last"), page_time(checkpoint_at + 2_000));
    let errors = element(&dom, "p", "ops-error");
    assert_eq!(
        strip_tags(&errors[errors.find('>').unwrap() + 1..]),
        "Last reload refused: pattern `x`: no such stage"
    );

    // The screenshot for the README.
    let dir = temp_dir("shot");
    let png = dir.join("monitor.png");
    let out = headless(&[
        format!("--screenshot={}", png.display()),
        // The README's size; another to look at more of the page.
        format!(
            "--window-size={}",
            std::env::var("CEPHEID_SCREENSHOT_SIZE").unwrap_or_else(|_| "1280,900".to_string())
        ),
        url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() < 300 * 1024, "{} bytes", bytes.len());
    if std::env::var("CEPHEID_SCREENSHOT").as_deref() == Ok("update") {
        std::fs::copy(&png, root().join("docs/monitor.png")).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().unwrap();
}

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Bytes as the page writes them (`bytes()` in page.html).
fn page_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (b as f64, 0);
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// A wall-clock time as the page writes it (`time()` in page.html: ISO
/// 8601 in UTC, a space for the `T`).
fn page_time(ms: i64) -> String {
    let text = cepheid_engine::io::format_rfc3339(ms).replacen('T', " ", 1);
    match text.strip_suffix(".000Z") {
        Some(whole) => format!("{whole}Z"),
        None => text,
    }
}

#[test]
fn an_empty_run_shows_an_empty_page_without_errors() {
    // Before the first update: no patterns, no watermark, no samples.
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").expect("serves");
    let out = headless(&[
        "--dump-dom".to_string(),
        format!("http://{}/", server.addr()),
    ]);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("<span id=\"conn\" class=\"\">updated "),
        "{dom}"
    );
    let rules = element(&dom, "table", "rules");
    assert!(!rules.contains("<td"), "{rules}");
    assert!(element(&dom, "svg", "graph").contains("no automaton for this rule"));
    assert!(element(&dom, "table", "recent").contains("no match yet"));
    assert_eq!(strip_tags(element(&dom, "dd", "run-watermark")), "–");
    assert_eq!(strip_tags(element(&dom, "dd", "run-state")), "–");
    // No checkpoint nor reload yet.
    assert_eq!(strip_tags(element(&dom, "dd", "cp-completed")), "0");
    assert_eq!(strip_tags(element(&dom, "dd", "cp-last")), "–");
    assert_eq!(strip_tags(element(&dom, "dd", "rl-refused")), "0");
    server.stop().unwrap();
}
