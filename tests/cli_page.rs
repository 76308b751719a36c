//! The live page of `cepheid run --metrics` in a real browser, against
//! the real binary: the repository's rules over the sample stream,
//! followed (with an idle timeout, so that every window closes), and
//! Debian's `chromium` headless loading `/` (the browser driven by
//! `crates/monitor/tests/it/support/browser.rs`, shared with the monitor's
//! own test). What the page's scripts built is read from the DOM: the
//! run's counts (14 matches, 2 timeouts, 3 late), each rule's row against
//! what the run wrote, each rule its own colour, the chosen rule's
//! automaton and its latest matches, the plots, the checkpoints with
//! `--checkpoint`; and on `--workers 2` the same page with a row per
//! worker.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::browser_support::{
    cells, dump_dom, element, fact, page_bytes, page_number, rows, strip_tags, swatches,
};
use crate::cli_metrics::{address, get, value};
use crate::common::{cepheid, scratch, Live, PATIENCE};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The records of `out` (matches and timeouts), each as JSON.
fn records(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

/// Records of `kind` per pattern.
fn per_pattern(records: &[serde_json::Value], kind: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for r in records.iter().filter(|r| r["kind"] == kind) {
        *counts
            .entry(r["pattern"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// The sample stream followed by `cepheid run` with `--metrics :0`, an
/// output file and `extra`; its address once its records (14 matches, 2
/// timeouts) are written and counted in the metrics.
fn start(dir: &Path, extra: &[&str]) -> (Live, SocketAddr, Vec<serde_json::Value>) {
    let live = Live::spawn(
        cepheid()
            .current_dir(root())
            .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
            .args(["--follow", "--idle-timeout", "100ms", "--no-progress"])
            .args(["--metrics", "127.0.0.1:0", "--output"])
            .arg(dir.join("out.jsonl"))
            .args(extra),
    );
    let addr = address(&live.stderr_line("cepheid: metrics on http://"));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let written = records(&dir.join("out.jsonl"));
        let (_, text) = get(addr, "/metrics");
        let counted = |name: &str| -> f64 {
            (text.lines())
                .filter(|l| l.starts_with(&format!("{name}{{pattern=")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        if written.len() == 16
            && counted("cepheid_matches_total") == 14.0
            && counted("cepheid_timeouts_total") == 2.0
        {
            // (the server samples every second: a few samples for the
            // plots)
            std::thread::sleep(Duration::from_millis(2_100));
            return (live, addr, written);
        }
        assert!(
            Instant::now() < deadline,
            "the records never came ({} written): {text}",
            written.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the page shows of the run and its rules against what it wrote
/// (`written`) and what `/status.json` says; the DOM.
fn check_page(addr: SocketAddr, written: &[serde_json::Value]) -> String {
    let (_, json) = get(addr, "/status.json");
    let status: serde_json::Value = serde_json::from_str(&json).expect("the status");
    let names: Vec<String> = (status["patterns"].as_array().unwrap().iter())
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 10, "{json}");
    let dom = dump_dom(&format!("http://{addr}/#unpaid_order"));
    assert!(
        dom.contains("<span id=\"conn\" class=\"\">updated "),
        "{dom}"
    );

    // The run's counts: the sample's.
    assert_eq!(fact(&dom, "run-events"), "102");
    assert_eq!(fact(&dom, "run-matches"), "14");
    assert_eq!(fact(&dom, "run-timeouts"), "2");
    assert_eq!(fact(&dom, "run-late"), "3");
    assert_eq!(fact(&dom, "run-malformed"), "0");

    // The rules table: a row per rule in the run's order, with what the
    // run wrote of each, each rule its own colour.
    let matches = per_pattern(written, "match");
    let timeouts = per_pattern(written, "timeout");
    let rules = rows(&dom, "rules");
    assert_eq!(
        rules.len(),
        names.len(),
        "{}",
        element(&dom, "table", "rules")
    );
    for ((row, name), p) in rules
        .iter()
        .zip(&names)
        .zip(status["patterns"].as_array().unwrap())
    {
        assert_eq!(&row[0], name);
        assert_eq!(row[1], "1", "{name}: version");
        assert_eq!(
            row[2],
            page_number(p["events"].as_u64().unwrap()),
            "{name}: events"
        );
        let m = matches.get(name).copied().unwrap_or(0);
        let t = timeouts.get(name).copied().unwrap_or(0);
        assert_eq!(row[3], m.to_string(), "{name}: matches");
        assert_eq!(row[5], t.to_string(), "{name}: timeouts");
    }
    let colours = swatches(&dom);
    let mut distinct = colours.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((colours.len(), distinct.len()), (10, 10), "{colours:?}");

    // The chosen rule (the URL's): its automaton, drawn from the run's
    // compiled pattern, and its latest matches, the records it wrote.
    assert!(strip_tags(&dom).contains("Rule unpaid_order (version 1)"));
    let graph = element(&dom, "svg", "graph");
    assert!(graph.contains("class=\"node start\""), "{graph}");
    assert!(graph.contains("class=\"edge take\""), "{graph}");
    assert!(graph.contains("<path d=\"M"), "{graph}");
    assert!(
        cells(graph, "text").iter().any(|t| t == "created"),
        "{graph}"
    );
    let recent: Vec<(String, String)> = rows(&dom, "recent")
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let wrote: Vec<(String, String)> = (written.iter())
        .filter(|r| r["pattern"] == "unpaid_order")
        .map(|r| {
            let key = r["key"]["order_id"].as_str().unwrap_or_default();
            (
                r["kind"].as_str().unwrap().to_string(),
                format!("order_id={key}"),
            )
        })
        .collect();
    assert_eq!(wrote.len(), 5, "{written:?}");
    // (on workers the blocks of records interleave: compared as sets here)
    let (mut shown, mut sorted) = (recent.clone(), wrote);
    shown.sort();
    sorted.sort();
    assert_eq!(shown, sorted, "{recent:?}");

    // Lists and indicators: account_takeover's indicator, one row, as
    // the status says (the sample's successful logins without an
    // account_id are left out of it: no group).
    let memory = &status["run"]["memory"];
    assert_eq!(memory["indicators"], 1, "{json}");
    let count = |name: &str| memory[name].as_u64().unwrap();
    assert!(count("unkeyed") > 0, "{json}");
    let left_out = count("non_numeric") + count("unkeyed") + count("refused_events");
    let shown = rows(&dom, "memory");
    assert_eq!(
        shown,
        [vec![
            "indicators (1)".to_string(),
            "indicators".to_string(),
            page_number(memory["indicator_entries"].as_u64().unwrap()),
            page_number(memory["indicator_groups"].as_u64().unwrap()),
            "–".to_string(),
            page_number(left_out),
        ]],
        "{}",
        element(&dom, "table", "memory")
    );

    // The changes of rules: /status.json's audit records, newest first;
    // the run's start, its first, lists every rule as added.
    let history = status["run"]["reloads"]["history"]
        .as_array()
        .expect("the audit history");
    assert!(!history.is_empty(), "{json}");
    let changes = rows(&dom, "changes");
    assert_eq!(
        changes.len(),
        history.len().min(20),
        "{}",
        element(&dom, "table", "changes")
    );
    let start = changes.last().expect("the start");
    assert_eq!(start[1], "–", "{start:?}");
    assert!(start[2].contains("patterns"), "{start:?}");
    assert_eq!(start[3], "applied", "{start:?}");
    for name in &names {
        assert!(start[4].contains(&format!("{name}: added v1")), "{start:?}");
    }

    // The plots: a line (or point) per rule, one for the lag.
    let plot = element(&dom, "svg", "plot-matches");
    assert!(
        plot.matches("class=\"series\"").count() >= names.len(),
        "{plot}"
    );
    assert!(element(&dom, "svg", "plot-lag").contains("class=\"series\""));
    dom
}

#[test]
fn the_page_of_a_run_shows_its_rules_automaton_plots_and_checkpoints() {
    let dir = scratch("page_single");
    let state = dir.join("state");
    // A checkpoint after 10 lines (checked at each batch: the sample's
    // 102 lines come in one), none on time.
    let (live, addr, written) = start(
        &dir,
        &[
            "--checkpoint",
            state.to_str().unwrap(),
            "--checkpoint-every",
            "1h,10",
        ],
    );
    // The chosen rule's latest matches, newest first: the run's output
    // in reverse.
    let order: Vec<(String, String)> =
        rows(&dump_dom(&format!("http://{addr}/#unpaid_order")), "recent")
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
    let unpaid: Vec<(String, String)> = (written.iter().rev())
        .filter(|r| r["pattern"] == "unpaid_order")
        .map(|r| {
            let key = r["key"]["order_id"].as_str().unwrap_or_default();
            (
                r["kind"].as_str().unwrap().to_string(),
                format!("order_id={key}"),
            )
        })
        .collect();
    assert_eq!(order, unpaid);
    let dom = check_page(addr, &written);

    // The checkpoints: as many as written, the last one's size the file's.
    let (_, text) = get(addr, "/metrics");
    let written_cps = value(&text, "cepheid_checkpoints_total").expect("checkpoints counted");
    assert!(written_cps >= 1.0, "{text}");
    assert_eq!(fact(&dom, "cp-completed"), page_number(written_cps as u64));
    assert_eq!(fact(&dom, "cp-failures"), "0");
    let newest = crate::common::newest_checkpoint(&state).expect("a checkpoint");
    let size: u64 = std::fs::read_dir(newest)
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(fact(&dom, "cp-size"), page_bytes(size));
    assert_ne!(fact(&dom, "cp-last"), "–");
    assert_ne!(fact(&dom, "cp-duration"), "–");
    // One engine: no workers' table.
    assert!(
        dom.contains("id=\"workers-section\" hidden"),
        "{}",
        element(&dom, "section", "workers-section")
    );

    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}

#[cfg(feature = "workers")]
#[test]
fn the_page_of_a_run_on_workers_shows_each_worker() {
    let dir = scratch("page_workers");
    let state = dir.join("state");
    let (live, addr, written) = start(
        &dir,
        &[
            "--workers",
            "2",
            "--checkpoint",
            state.to_str().unwrap(),
            "--checkpoint-every",
            "200ms",
        ],
    );
    let dom = check_page(addr, &written);

    // A row per worker, whose matches add up to the run's.
    let workers = rows(&dom, "workers");
    assert!(!dom.contains("id=\"workers-section\" hidden"));
    let ids: Vec<&str> = workers.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(ids, ["0", "1"], "{workers:?}");
    let matches: u64 = workers
        .iter()
        .map(|row| row[2].parse::<u64>().unwrap())
        .sum();
    assert_eq!(matches, 14, "{workers:?}");
    assert!(workers.iter().all(|row| row[4] != "–"), "{workers:?}");
    // The workers' cuts (taken on and on: the watermark follows the wall
    // clock while the file is idle).
    let completed: u64 = fact(&dom, "cp-completed").replace(',', "").parse().unwrap();
    assert!(completed >= 1, "{}", fact(&dom, "cp-completed"));
    assert_eq!(fact(&dom, "cp-failures"), "0");
    assert_ne!(fact(&dom, "cp-last"), "–");

    live.signal("TERM");
    let (status, _, stderr) = live.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
}
