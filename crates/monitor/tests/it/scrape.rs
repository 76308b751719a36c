//! A real run (the repository's rules over the sample stream) reported to
//! a monitor, served, and scraped over TCP: the Prometheus text and the
//! JSON status give the run's known counts (14 matches, 2 timeouts, 3
//! late), per pattern as the engine's outputs say; a malformed request
//! gets an error answer and the server goes on.

use std::collections::BTreeMap;

use crate::support::{get, http, sample_run};
use cepheid_monitor::{metrics, Monitor, Status};

/// The value of the sample `name` (with its labels, as written) in a
/// Prometheus text.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn metrics_over_http_give_the_sample_runs_counts() {
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").expect("serves");
    assert_ne!(server.addr().port(), 0, "the bound port is reported");
    let seen = sample_run(&monitor);
    assert_eq!(seen.matches.values().sum::<u64>(), 14, "{seen:?}");
    assert_eq!(seen.timeouts.values().sum::<u64>(), 2, "{seen:?}");
    assert_eq!(seen.late, 3);

    let (code, head, text) = get(server.addr(), "/metrics");
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {}", metrics::CONTENT_TYPE)),
        "{head}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        value(&text, "cepheid_events_read_total"),
        Some(seen.lines as f64)
    );
    assert_eq!(value(&text, "cepheid_events_malformed_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_events_late_total"), Some(3.0));
    assert!(
        text.contains("# HELP cepheid_matches Complete matches of the pattern."),
        "{text}"
    );
    assert!(text.contains("# TYPE cepheid_matches counter"), "{text}");

    let mut matches = BTreeMap::new();
    let mut timeouts = BTreeMap::new();
    let names: Vec<String> = monitor.read(|s| s.patterns.iter().map(|p| p.name.clone()).collect());
    assert_eq!(names.len(), 10, "{names:?}");
    for name in &names {
        let label = format!("{{pattern=\"{name}\"}}");
        let m = value(&text, &format!("cepheid_matches_total{label}")).expect(name);
        let t = value(&text, &format!("cepheid_timeouts_total{label}")).expect(name);
        assert_eq!(
            m as u64,
            seen.matches.get(name).copied().unwrap_or(0),
            "{name}"
        );
        assert_eq!(
            t as u64,
            seen.timeouts.get(name).copied().unwrap_or(0),
            "{name}"
        );
        matches.insert(name.clone(), m);
        timeouts.insert(name.clone(), t);
        assert_eq!(
            value(&text, &format!("cepheid_rule_version{label}")),
            Some(1.0)
        );
        assert!(value(&text, &format!("cepheid_pattern_events_total{label}")).unwrap() > 0.0);
        assert!(value(&text, &format!("cepheid_live_partial_matches{label}")).is_some());
        assert!(value(&text, &format!("cepheid_runs_dropped_total{label}")).is_some());
    }
    assert_eq!(matches.values().sum::<f64>(), 14.0);
    assert_eq!(timeouts.values().sum::<f64>(), 2.0);
    // The sample's watermark is in 2024: years behind the wall clock.
    let watermark = value(&text, "cepheid_watermark_timestamp_seconds").unwrap();
    assert!((1.7e9..1.8e9).contains(&watermark), "{watermark}");
    let lag = value(&text, "cepheid_watermark_lag_seconds").unwrap();
    assert!(lag > 3.0e7, "{lag}");
    assert_eq!(value(&text, "cepheid_checkpoint_failures_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_reloads_total"), Some(0.0));
    assert_eq!(value(&text, "cepheid_reloads_refused_total"), Some(0.0));
    // Unknown levels are left out, not given as 0.
    assert!(!text.contains("cepheid_source_lag_bytes"), "{text}");
    assert!(!text.contains("cepheid_checkpoint_age_seconds"), "{text}");

    // The JSON status: the same counts, the latest records per pattern.
    let (code, head, json) = get(server.addr(), "/status.json");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status: Status = serde_json::from_str(&json).expect("a Status");
    assert_eq!(status.run.matches, 14);
    assert_eq!(status.run.timeouts, 2);
    assert_eq!(status.run.late, 3);
    assert!(status.run.finished);
    for p in &status.patterns {
        let expected = seen.matches.get(&p.name).copied().unwrap_or(0)
            + seen.timeouts.get(&p.name).copied().unwrap_or(0);
        assert_eq!(p.recent.len() as u64, expected.min(20), "{}", p.name);
        for record in &p.recent {
            let record: serde_json::Value = serde_json::from_str(record.get()).unwrap();
            assert_eq!(record["pattern"], p.name.as_str());
        }
        let graph = p.graph.as_ref().expect("a graph");
        assert!(graph.nodes.iter().any(|n| n.id == graph.start));
    }

    // One pattern's graph; a missing one is 404.
    let name = &names[0];
    let (code, _, json) = get(server.addr(), &format!("/graph/{name}.json"));
    assert_eq!(code, 200);
    let graph: cepheid_monitor::Graph = serde_json::from_str(&json).unwrap();
    assert_eq!(&graph.pattern, name);
    assert_eq!(get(server.addr(), "/graph/nope.json").0, 404);
    assert_eq!(get(server.addr(), "/nope").0, 404);

    // The page.
    let (code, head, page) = get(server.addr(), "/");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    assert!(page.contains("<table id=\"rules\">"));
    // Everything embedded: nothing fetched from elsewhere.
    assert_eq!(page, cepheid_monitor::PAGE);
    for outside in ["https:", "//cdn", "src=\"http", "href=\"http", "@import"] {
        assert!(!page.contains(outside), "the page reaches out: {outside}");
    }

    server.stop().expect("stops cleanly");
}

#[test]
fn malformed_requests_never_stop_the_server() {
    let monitor = Monitor::new();
    monitor.update(|s| s.pattern_mut("p").matches = 7);
    let server = monitor.serve("127.0.0.1:0").unwrap();
    let addr = server.addr();
    for garbage in [
        &b"\x00\xff\xfe garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /graph/%ZZ%00.json HTTP/1.0\r\n\r\n",
        b"",
    ] {
        // An error, no answer, or (a GET with a bad length) the metrics:
        // never a server that stops answering.
        let (code, head, _) = http(addr, garbage);
        assert!(matches!(code, 0 | 200 | 400..=599), "{garbage:?}: {head}");
        if garbage.starts_with(b"POST") {
            assert_eq!(code, 405, "{head}");
        }
    }
    // A client that connects and goes away without a word.
    drop(std::net::TcpStream::connect(addr).unwrap());
    let (code, _, text) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains("cepheid_matches_total{pattern=\"p\"} 7"),
        "{text}"
    );
    monitor.update(|s| s.pattern_mut("p").matches += 1);
    let (_, _, text) = get(addr, "/metrics");
    assert!(
        text.contains("cepheid_matches_total{pattern=\"p\"} 8"),
        "{text}"
    );
    server.stop().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err() || get(addr, "/").0 == 0);
}

#[test]
fn a_busy_address_is_an_error_naming_it() {
    let monitor = Monitor::new();
    let server = monitor.serve("127.0.0.1:0").unwrap();
    let err = monitor.serve(server.addr()).unwrap_err();
    assert!(
        err.to_string().contains(&server.addr().to_string()),
        "{err}"
    );
}

/// A `shadow` pattern's samples carry `shadow="true"` (a live one's
/// labels are as before), and its status says `"shadow": true`
/// (`docs/rule-lab.md`, "Shadow rules").
#[test]
fn a_shadow_patterns_samples_carry_the_shadow_label() {
    let monitor = Monitor::new();
    monitor.update(|s| {
        s.pattern_mut("live").matches = 2;
        let p = s.pattern_mut("candidate");
        p.matches = 3;
        p.shadow = true;
    });
    let text = monitor.prometheus().unwrap();
    assert!(
        text.contains("cepheid_matches_total{pattern=\"live\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("cepheid_matches_total{pattern=\"candidate\",shadow=\"true\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("cepheid_rule_version{pattern=\"candidate\",shadow=\"true\"} "),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&monitor.status_json().unwrap()).unwrap();
    let patterns = json["patterns"].as_array().unwrap();
    let of = |name: &str| patterns.iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(of("candidate")["shadow"], true);
    assert!(of("live").get("shadow").is_none(), "{json}");
}
