//! The benchmark workloads (`bench-workloads.md`) through the compiled
//! patterns, per key, compared with the independent reference counts of
//! `cepheid_bench::reference`, at a size that keeps the suite fast.

use cepheid_automata::matcher::{Cache, Executor, MatchSink, MatchView, Partition, SharedBuffer};
use cepheid_automata::nfa::Nfa;
use cepheid_bench::{reference, BenchEvent, Counts, Params, Workload};
use cepheid_engine::Timestamp;
use hashbrown::HashMap;

#[derive(Default)]
struct Count(Counts);

impl<E> MatchSink<E> for Count {
    fn on_match(&mut self, _m: &MatchView<'_, E>) {
        self.0.matches += 1;
    }
    fn on_timeout(&mut self, _m: &MatchView<'_, E>, _expired_at: Timestamp) {
        self.0.timeouts += 1;
    }
}

/// Runs every pattern of the workload over the events (dropping idle
/// partitions); returns the counts.
fn run(workload: Workload, events: &[BenchEvent]) -> Counts {
    let loaded = cepheid_engine::rules::load_str("workload.cep", &workload.pattern_text());
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let mut fields = cepheid_bench::fields();
    let nfas: Vec<Nfa<BenchEvent>> = loaded
        .patterns
        .iter()
        .map(|p| Nfa::compile(p, &mut fields).expect("compiles"))
        .collect();
    let mut parts: Vec<HashMap<i64, Partition>> = nfas.iter().map(|_| HashMap::new()).collect();
    let mut buf = SharedBuffer::new();
    // One cache for every pattern, as the engine keeps it.
    let mut cache = Cache::new();
    let mut sink = Count::default();
    for event in events {
        let ev = buf.insert(event.ts, *event);
        for (nfa, parts) in nfas.iter().zip(parts.iter_mut()) {
            let part = parts.entry(event.key).or_default();
            let mut exec = Executor::new(nfa, &mut cache);
            exec.advance_time(part, &mut buf, event.ts, &mut sink);
            exec.process(part, &mut buf, ev, &mut sink);
            if part.is_empty() {
                parts.remove(&event.key);
            }
        }
        buf.release_if_unused(ev);
    }
    for (nfa, parts) in nfas.iter().zip(parts.iter_mut()) {
        let mut exec = Executor::new(nfa, &mut cache);
        for part in parts.values_mut() {
            exec.advance_time(part, &mut buf, Timestamp::MAX, &mut sink);
            assert!(part.is_empty());
        }
    }
    assert_eq!((buf.live_events(), buf.live_nodes()), (0, 0));
    sink.0
}

fn check(workload: Workload, events: u64, keys: u64) {
    let params = Params {
        events,
        keys,
        ..workload.default_params()
    };
    let stream: Vec<BenchEvent> = workload.events(&params).collect();
    let got = run(workload, &stream);
    assert_eq!(
        got,
        reference::counts(workload, &stream),
        "{}",
        workload.name()
    );
}

#[test]
fn ab_matches_the_reference() {
    check(Workload::Ab, 30_000, 100);
}

#[test]
fn login_matches_the_reference() {
    check(Workload::Login, 30_000, 100);
}

#[test]
fn unpaid_matches_the_reference() {
    check(Workload::Unpaid, 20_000, 200);
}

#[test]
fn loop_matches_the_reference() {
    check(Workload::Loop, 20_000, 1_000);
}

#[test]
fn many_matches_the_reference() {
    check(Workload::many(cepheid_bench::MANY_RULES), 10_000, 100);
}
