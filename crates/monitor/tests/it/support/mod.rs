//! A real run for the tests: the repository's rules (`patterns/`) over the
//! sample stream (`examples/data/sample.jsonl`) in a real
//! `cepheid_engine::Engine<Record>`, reported to a `Monitor` the way the
//! runtime will: once per batch of lines, never per event.

#![allow(dead_code)]

pub mod browser;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_automata::nfa::Nfa;
use cepheid_core::record::FieldTable;
use cepheid_engine::engine::Pushed;
use cepheid_engine::{Arrival, Engine, Output, Record, Rules};
use cepheid_monitor::{Graph, Monitor, Status};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the run saw, counted from the engine's outputs.
#[derive(Debug, Default)]
pub struct Seen {
    /// Matches per pattern.
    pub matches: BTreeMap<String, u64>,
    /// Timeouts per pattern.
    pub timeouts: BTreeMap<String, u64>,
    /// Late events.
    pub late: u64,
    /// Lines read.
    pub lines: u64,
}

/// Lines per batch: the monitor is updated once per batch.
const BATCH: usize = 16;

/// Runs the sample stream through the engine, reporting to `monitor`.
pub fn sample_run(monitor: &Monitor) -> Seen {
    let rules = Rules::load(root().join("patterns")).expect("the repository's rules load");
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules).expect("the rules compile");
    let partition_fields: Vec<(String, Vec<String>)> = engine
        .patterns()
        .map(|p| {
            let fields = p.partition_by.iter().map(ToString::to_string).collect();
            (p.name.clone(), fields)
        })
        .collect();
    monitor.update(|s| {
        s.set_patterns(engine.patterns().map(|p| p.name.as_str()));
        for p in engine.patterns() {
            s.pattern_mut(&p.name).graph = Some(graph(p));
        }
    });

    let text = std::fs::read_to_string(root().join("examples/data/sample.jsonl")).unwrap();
    let mut seen = Seen::default();
    let mut out: Vec<Output<Record>> = Vec::new();
    let mut malformed = 0;
    // Events that reached each pattern: accepted (not late) and carrying
    // its `partition by` fields (what the engine's `PatternStats::events`
    // counts).
    let mut reached: BTreeMap<String, u64> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        seen.lines += 1;
        match engine.push_json(line, "ts", &mut out) {
            Ok(Pushed::Event(_, Arrival::Accepted)) => {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                for (name, fields) in &partition_fields {
                    if fields.iter().all(|f| !event[f.as_str()].is_null()) {
                        *reached.entry(name.clone()).or_default() += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => malformed += 1,
        }
        if (i + 1) % BATCH == 0 {
            report(monitor, &engine, &mut out, &mut seen, malformed, &reached);
        }
    }
    engine.finish(&mut out);
    report(monitor, &engine, &mut out, &mut seen, malformed, &reached);
    monitor.update(|s| s.run.finished = true);
    seen
}

/// One batch's report: the engine's totals and levels, and the outputs of
/// the batch per pattern (counts and latest records).
fn report(
    monitor: &Monitor,
    engine: &Engine<Record>,
    out: &mut Vec<Output<Record>>,
    seen: &mut Seen,
    malformed: u64,
    reached: &BTreeMap<String, u64>,
) {
    let lines = seen.lines;
    monitor.update(|s: &mut Status| {
        s.run.events_read = lines;
        s.run.malformed = malformed;
        s.apply_stats(&engine.stats());
        s.run.watermark_ms = engine.current_watermark();
        s.run.live_runs = engine.live_runs() as u64;
        s.run.waiting_events = engine.waiting_events() as u64;
        s.run.stored_events = engine.stored_events() as u64;
        s.run.state_bytes = Some(engine.state_bytes());
        for (name, n) in reached {
            s.pattern_mut(name).events = *n;
        }
        for output in out.drain(..) {
            let record = serde_json::to_string(&output).unwrap();
            match &output {
                Output::Match(m) => {
                    s.pattern_mut(&m.pattern).matches += 1;
                    *seen.matches.entry(m.pattern.clone()).or_default() += 1;
                    s.push_recent(&m.pattern, &record).unwrap();
                }
                Output::Timeout { partial, .. } => {
                    s.pattern_mut(&partial.pattern).timeouts += 1;
                    *seen.timeouts.entry(partial.pattern.clone()).or_default() += 1;
                    s.push_recent(&partial.pattern, &record).unwrap();
                }
                Output::Late { .. } => seen.late += 1,
                Output::Dropped { partial } => s.pattern_mut(&partial.pattern).dropped_runs += 1,
                _ => {}
            }
        }
    });
}

/// A pattern's automaton as the monitor draws it: the compiled NFA's
/// graph, through its JSON (what a run's observer sends the page, and
/// `explain --graph json` prints).
pub fn graph(pattern: &cepheid_core::pattern::Pattern) -> Graph {
    let nfa = Nfa::<Record>::compile(pattern, &mut FieldTable::new()).expect("compiles");
    let json = serde_json::to_string(&nfa.graph()).expect("a graph's JSON");
    Graph::from_json(&json).expect("the monitor reads it")
}

/// One HTTP request over TCP, as written: the status code, headers and
/// body of the answer.
pub fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stream.write_all(request).unwrap();
    // Until the server closes the connection, or keeps it open (an
    // HTTP/1.1 connection) and says nothing more for a while.
    let mut answer = Vec::new();
    let mut buf = [0; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reads the answer: {e}"),
        }
    }
    let answer = String::from_utf8(answer).expect("UTF-8");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

/// `GET path` over HTTP/1.0 (the server closes the connection after it).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes(),
    )
}
