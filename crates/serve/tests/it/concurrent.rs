//! Many threads appending at once: dense seqs, file order, each
//! completion once, the consumer after the completions, in seq order.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use cepheid_serve::wal::{FsyncPolicy, LoggedEntry, Wal, WalOptions};

use crate::support::{decide, frames, read_all, scratch, segments};

const THREADS: usize = 8;
const PER_THREAD: usize = 500;

fn run(policy: FsyncPolicy, name: &str) {
    let dir = scratch(name);
    let total = THREADS * PER_THREAD;
    // Per seq: 1 once its completion was called with Ok.
    let done: Arc<Vec<AtomicU8>> = Arc::new((0..=total).map(|_| AtomicU8::new(0)).collect());
    let consumed: Arc<Mutex<Vec<Arc<LoggedEntry>>>> = Arc::default();
    let late = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let (done, consumed, late) = (done.clone(), consumed.clone(), late.clone());
        Box::new(move |group: &[Arc<LoggedEntry>]| {
            for e in group {
                if done[e.seq as usize].load(Ordering::SeqCst) != 1 {
                    late.lock().unwrap().push(e.seq);
                }
            }
            consumed.lock().unwrap().extend(group.iter().cloned());
        })
    };
    let options = WalOptions {
        fsync: policy,
        segment_size: 64 << 10,
        consumer: Some(consumer),
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&dir, options).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let appender = wal.appender();
            let (done, tx) = (done.clone(), tx.clone());
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let (done, tx) = (done.clone(), tx.clone());
                    let entry = decide(
                        "pay",
                        &format!("t{t}-{i:05}"),
                        &format!(r#"{{"thread":{t},"i":{i}}}"#),
                    );
                    appender
                        .append(
                            entry,
                            Box::new(move |r| {
                                let logged = r.expect("logged");
                                let was = done[logged.seq as usize].fetch_add(1, Ordering::SeqCst);
                                tx.send((logged.seq, was)).unwrap();
                            }),
                        )
                        .expect("queued");
                }
            });
        }
    });
    drop(tx);
    let mut seen: Vec<(u64, u8)> = rx.iter().take(total).collect();
    let stats = wal.close().unwrap();
    // Every completion called once, with the seqs 1..=total.
    assert!(
        seen.iter().all(|&(_, was)| was == 0),
        "a completion called twice"
    );
    seen.sort_unstable();
    assert_eq!(
        seen.iter().map(|&(s, _)| s).collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>()
    );
    assert!(done[1..].iter().all(|d| d.load(Ordering::SeqCst) == 1));
    // The consumer saw each entry once, in seq order, after its completion.
    assert!(
        late.lock().unwrap().is_empty(),
        "handed to the consumer before its completion"
    );
    let consumed = consumed.lock().unwrap();
    assert_eq!(
        consumed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>()
    );
    // The files hold the seqs in order; each thread's entries in its order.
    let read = read_all(&dir);
    assert_eq!(read.len(), total);
    let mut next_i = [0usize; THREADS];
    for (k, e) in read.iter().enumerate() {
        assert_eq!(e.seq, k as u64 + 1);
        assert_eq!(*consumed[k], *e);
        let id = &e.entry.input().unwrap().event_id;
        let (t, i) = id[1..].split_once('-').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next_i[t], "thread {t}'s appends out of order");
        next_i[t] += 1;
        if k > 0 {
            assert!(e.stamp >= read[k - 1].stamp, "a stamp went backwards");
        }
    }
    let mut file_seqs = Vec::new();
    for seg in segments(&dir) {
        file_seqs.extend(
            frames(&seg)
                .into_iter()
                .map(|f| f.2["seq"].as_u64().unwrap()),
        );
    }
    assert_eq!(file_seqs, (1..=total as u64).collect::<Vec<_>>());
    // (whether the segments rolled depends on how the appends fell into
    // groups, which a loaded machine decides: one group of all is one
    // segment. Rolling is `segments.rs`'s; here only the reading across
    // segments, when there are several.)
    assert_eq!(stats.appended, total as u64);
    assert!(stats.groups >= 1 && stats.groups <= total as u64);
    assert!(stats.largest_group >= 1);
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.committed_seq, total as u64);
    if policy == FsyncPolicy::Always {
        assert!(stats.syncs >= stats.groups);
    }
}

#[test]
fn eight_threads_appending_always() {
    run(FsyncPolicy::Always, "concurrent-always");
}

#[test]
fn eight_threads_appending_interval() {
    run(
        FsyncPolicy::Interval(std::time::Duration::from_millis(5)),
        "concurrent-interval",
    );
}

#[test]
fn eight_threads_appending_never() {
    run(FsyncPolicy::Never, "concurrent-never");
}
