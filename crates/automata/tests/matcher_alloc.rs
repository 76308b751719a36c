//! The steady state allocates nothing: after a warm-up, offering events to
//! a pattern without loops (and without stage references) performs no heap
//! allocation at all, thanks to the slab buffer and reused scratch space.

mod matcher_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use cepheid_automata::matcher::{Cache, Executor, MatchSink, MatchView, Partition, SharedBuffer};
use cepheid_automata::nfa::Nfa;
use cepheid_core::event::NoFields;
use cepheid_core::Timestamp;
use matcher_support::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Count only this thread's allocations: the test harness's own threads
    /// may allocate while the test runs (seen under load), and they are not
    /// the matcher's.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct Count(usize);

impl<E> MatchSink<E> for Count {
    fn on_match(&mut self, _m: &MatchView<'_, E>) {
        self.0 += 1;
    }
    fn on_timeout(&mut self, _m: &MatchView<'_, E>, _expired_at: Timestamp) {
        self.0 += 1;
    }
}

#[test]
fn steady_state_does_not_allocate() {
    let mut p = pattern(
        vec![("a", letters("a")), ("b", letters("b"))],
        vec![el(0), el(1)],
    );
    p.within = Some(5);
    p.emit_timeouts = true;
    let nfa = Nfa::<Ev>::compile(&p, &mut NoFields).unwrap();
    let names = ["a", "x", "a", "b", "x", "x", "x", "x", "a", "x"];
    let events: Vec<Ev> = (0..4000)
        .map(|i| Ev {
            name: names[i % names.len()].into(),
            value: 0,
        })
        .collect();
    let mut part = Partition::new();
    let mut buf = SharedBuffer::new();
    let mut cache = Cache::new();
    let mut sink = Count::default();
    let mut before = 0;
    for (i, event) in events.into_iter().enumerate() {
        if i == 2000 {
            before = ALLOCATIONS.load(Ordering::Relaxed);
            COUNTED.with(|c| c.set(true));
        }
        let ts = i as i64;
        let mut exec = Executor::new(&nfa, &mut cache);
        exec.advance_time(&mut part, &mut buf, ts, &mut sink);
        let ev = buf.insert(ts, event);
        exec.process(&mut part, &mut buf, ev, &mut sink);
        buf.release_if_unused(ev);
    }
    COUNTED.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(sink.0 > 500, "{} outputs", sink.0);
    assert_eq!(allocations, 0);
}
