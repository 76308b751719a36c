//! The live page in a real browser: Debian's `chromium`, headless, loads
//! the page from a running server (the repository's rules over the sample
//! stream) and the test reads the DOM the page's scripts built: the rules
//! table's rows and counts, the automaton drawn as SVG with its start
//! node, the two plots, the latest matches. Then a screenshot (written to
//! `docs/monitor.png` for the README when `CEPHEID_SCREENSHOT=update`).
//!
//! No browser is a failure, not a skip: the test installs it with
//! `.ci/install-browser` (apt) when `/usr/bin/chromium` is missing. The
//! browser's driving is `support/browser.rs`, shared with the command's
//! test of the page against a real run (`tests/cli_page.rs`).

use std::time::Duration;

use crate::support::browser::{
    cells, dump_dom, element, fact, page_bytes, page_time, png_size, screenshot, strip_tags,
    swatches,
};
use crate::support::{root, sample_run};
use cepheid_monitor::{Monitor, WaitingStatus};

/// The screenshot's window: the README's page, tall enough for every
/// panel (the chosen rule's automaton and its latest matches).
const SCREENSHOT: &str = "1280,1180";

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
        // A rules record waiting for event time, far beyond what a
        // `Date` holds (shown in milliseconds).
        s.run.reloads.waiting = Some(WaitingStatus::new(2, 100_000_000_000_000_000));
    });
    let state = monitor
        .read(|s| s.run.state_bytes)
        .expect("the state measured");
    // A few samples of the series after the run.
    std::thread::sleep(Duration::from_millis(2500));
    let url = format!("http://{}/#unpaid_order", server.addr());

    let dom = dump_dom(&url);

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
    let facts = |id: &str| fact(&dom, id);
    // Each rule its own colour (10 rules: more than Okabe-Ito's 9).
    let colours = swatches(&dom);
    assert_eq!(colours.len(), names.len(), "{rules}");
    let mut distinct = colours.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), colours.len(), "{colours:?}");
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
    assert_eq!(
        facts("rl-waiting"),
        "2, the first at event time 100000000000000000 ms"
    );

    // The screenshot for the README: every panel in it (the window's
    // size, another to look at more of the page).
    let size = std::env::var("CEPHEID_SCREENSHOT_SIZE").unwrap_or_else(|_| SCREENSHOT.to_string());
    let bytes = screenshot(&url, &size);
    let (width, height) = png_size(&bytes);
    assert_eq!(format!("{width},{height}"), size);
    assert!(bytes.len() < 400 * 1024, "{} bytes", bytes.len());
    if std::env::var("CEPHEID_SCREENSHOT").as_deref() == Ok("update") {
        std::fs::write(root().join("docs/monitor.png"), &bytes).unwrap();
    }
    server.stop().unwrap();
}

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn an_empty_run_shows_an_empty_page_without_errors() {
    // Before the first update: no patterns, no watermark, no samples.
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").expect("serves");
    let dom = dump_dom(&format!("http://{}/", server.addr()));
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
    assert_eq!(strip_tags(element(&dom, "dd", "rl-waiting")), "none");
    server.stop().unwrap();
}
