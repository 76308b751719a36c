//! The shared buffer stores each event once, however many runs hold it, and
//! its memory returns to zero when the runs are gone.

use crate::matcher_support;

use cepheid_automata::matcher::{Cache, Executor, Output, Partition, SharedBuffer};
use cepheid_automata::nfa::Nfa;
use cepheid_core::event::NoFields;
use matcher_support::*;

fn loop_pattern(within: Option<i64>) -> cepheid_core::pattern::Pattern {
    let mut p = pattern(
        vec![
            ("a", letters("a")),
            ("b", letters("b")),
            ("c", letters("c")),
        ],
        vec![el(0), el(1).any().plus(), el(2).any()],
    );
    p.within = within;
    p
}

fn name(i: usize) -> &'static str {
    ["a", "b", "b", "c", "b", "x"][i % 6]
}

#[test]
fn forked_runs_share_events_and_memory_returns_to_zero() {
    let nfa = Nfa::<Ev>::compile(&loop_pattern(Some(40)), &mut NoFields).unwrap();
    let mut part = Partition::new();
    let mut buf = SharedBuffer::new();
    let mut cache = Cache::new();
    let mut exec = Executor::new(&nfa, &mut cache);
    let mut sink: Vec<Output<_>> = Vec::new();
    let mut max_runs = 0;
    for i in 0..300usize {
        let ts = i as i64;
        exec.advance_time(&mut part, &mut buf, ts, &mut sink);
        let ev = buf.insert(
            ts,
            Ev {
                name: name(i).into(),
                value: i as i64,
            },
        );
        exec.process(&mut part, &mut buf, ev, &mut sink);
        buf.release_if_unused(ev);
        sink.clear();
        // every event is stored at most once, and only while a run holds it
        assert!(
            buf.live_events() <= 40,
            "{} events at {i}",
            buf.live_events()
        );
        // one node per take: never a copy of a run's prefix per run
        assert!(buf.live_nodes() <= part.live_runs() + buf.live_events() * 40);
        max_runs = max_runs.max(part.live_runs());
    }
    // many more runs than stored events: the runs share them
    assert!(max_runs > 10 * 40, "only {max_runs} runs");
    assert!(buf.live_nodes() < max_runs);
    exec.advance_time(&mut part, &mut buf, i64::MAX, &mut sink);
    assert_eq!(part.live_runs(), 0);
    assert!(part.is_empty());
    assert_eq!((buf.live_events(), buf.live_nodes()), (0, 0));
}

#[test]
fn clear_releases_everything() {
    let nfa = Nfa::<Ev>::compile(&loop_pattern(None), &mut NoFields).unwrap();
    let mut part = Partition::new();
    let mut buf = SharedBuffer::new();
    let mut cache = Cache::new();
    let mut exec = Executor::new(&nfa, &mut cache);
    let mut sink: Vec<Output<_>> = Vec::new();
    for i in 0..60usize {
        let ev = buf.insert(
            i as i64,
            Ev {
                name: name(i).into(),
                value: 0,
            },
        );
        exec.process(&mut part, &mut buf, ev, &mut sink);
        buf.release_if_unused(ev);
    }
    assert!(part.live_runs() > 0 && buf.live_events() > 0);
    assert!(!sink.is_empty());
    part.clear(&mut buf);
    assert!(part.is_empty());
    assert_eq!((buf.live_events(), buf.live_nodes()), (0, 0));
}
