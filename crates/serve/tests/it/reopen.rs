//! Reopening continues the seqs and stamps; stamps never go backwards;
//! the queue's bound refuses at once; a closed log refuses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

use cepheid_serve::wal::{Clock, Entry, Wal, WalError, WalOptions};

use crate::support::{append_async, append_wait, decide, read_all, scratch};

/// A clock the test sets.
fn clock(at: &Arc<AtomicI64>) -> Option<Clock> {
    let at = at.clone();
    Some(Arc::new(move || at.load(Ordering::SeqCst)))
}

#[test]
fn reopening_continues_the_seqs_and_stamps() {
    let dir = scratch("reopen");
    let now = Arc::new(AtomicI64::new(1_000));
    for round in 0..3u64 {
        let (wal, recovered) = Wal::open(
            &*dir,
            WalOptions {
                clock: clock(&now),
                ..WalOptions::default()
            },
        )
        .unwrap();
        assert_eq!(recovered.next_seq, round * 4 + 1);
        assert_eq!(recovered.entries, round * 4);
        let appender = wal.appender();
        for i in 0..4u64 {
            let logged = append_wait(&appender, Entry::Tick { time: i as i64 }).unwrap();
            assert_eq!(logged.seq, round * 4 + i + 1);
            if round == 0 {
                assert_eq!(logged.stamp, 1_000 + i as i64);
            } else {
                // The clock went back before the reopen: the stamps stay
                // at the log's last one.
                assert_eq!(logged.stamp, 1_003);
            }
            now.fetch_add(1, Ordering::SeqCst);
        }
        wal.close().unwrap();
        now.store(500, Ordering::SeqCst);
    }
    let read = read_all(&dir);
    assert_eq!(
        read.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let (_wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
    assert_eq!(recovered.last_stamp, Some(1_003));
}

#[test]
fn stamps_never_go_backwards_whatever_the_clock_says() {
    let dir = scratch("stamps");
    let now = Arc::new(AtomicI64::new(10_000));
    let (wal, _) = Wal::open(
        &*dir,
        WalOptions {
            clock: clock(&now),
            ..WalOptions::default()
        },
    )
    .unwrap();
    let appender = wal.appender();
    let times = [10_000, 10_005, 9_000, 10_005, 10_004, 20_000, 0, 20_001];
    let mut rxs = Vec::new();
    for t in times {
        now.store(t, Ordering::SeqCst);
        rxs.push(append_async(&appender, Entry::Tick { time: t }));
    }
    let stamps: Vec<i64> = rxs
        .into_iter()
        .map(|rx| rx.recv().unwrap().unwrap().stamp)
        .collect();
    assert_eq!(
        stamps,
        [10_000, 10_005, 10_005, 10_005, 10_005, 20_000, 20_000, 20_001]
    );
    wal.close().unwrap();
    let read: Vec<i64> = read_all(&dir).iter().map(|e| e.stamp).collect();
    assert_eq!(read, stamps);
}

#[test]
fn a_full_queue_refuses_at_once_and_a_closed_log_refuses() {
    let dir = scratch("queue-full");
    let options = WalOptions {
        queue_entries: 2,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&*dir, options).unwrap();
    let appender = wal.appender();
    // The first completion holds the writer thread (which calls it) until
    // the test lets it go: nothing more is written, and the queue fills.
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    appender
        .append(
            decide("pay", "hold", "{}"),
            Box::new(move |r| {
                r.unwrap();
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            }),
        )
        .unwrap();
    entered.recv().unwrap();
    let mut accepted = Vec::new();
    let refused = loop {
        let (tx, rx) = mpsc::channel();
        let entry = decide("pay", &format!("e{}", accepted.len()), "{}");
        match appender.append(entry, Box::new(move |r| tx.send(r).unwrap())) {
            Ok(()) => accepted.push(rx),
            Err(e) => break e,
        }
    };
    assert!(matches!(refused, WalError::QueueFull), "{refused:?}");
    assert!(accepted.len() >= 2);
    assert_eq!(wal.stats().refused, 1);
    assert!(wal.stats().queued <= 2);
    release.send(()).unwrap();
    for (i, rx) in accepted.iter().enumerate() {
        assert_eq!(rx.recv().unwrap().unwrap().seq, i as u64 + 2);
    }
    let stats = wal.close().unwrap();
    let n = accepted.len() as u64 + 1;
    assert_eq!(
        (stats.appended, stats.refused, stats.callback_panics),
        (n, 1, 0)
    );
    let closed = appender.append(Entry::Tick { time: 0 }, Box::new(|_| ()));
    assert!(matches!(closed, Err(WalError::Closed)), "{closed:?}");
    assert_eq!(read_all(&dir).len() as u64, n);
}

#[test]
fn a_panicking_completion_is_caught_and_counted() {
    let dir = scratch("panicking-done");
    let (wal, _) = Wal::open(&*dir, WalOptions::default()).unwrap();
    let appender = wal.appender();
    let (tx, rx) = mpsc::channel();
    appender
        .append(
            Entry::Tick { time: 1 },
            Box::new(|_| panic!("a caller's bug")),
        )
        .unwrap();
    appender
        .append(
            Entry::Tick { time: 2 },
            Box::new(move |r| tx.send(r).unwrap()),
        )
        .unwrap();
    assert_eq!(rx.recv().unwrap().unwrap().seq, 2);
    assert_eq!(
        append_wait(&appender, Entry::Tick { time: 3 }).unwrap().seq,
        3
    );
    assert_eq!(wal.close().unwrap().callback_panics, 1);
}
