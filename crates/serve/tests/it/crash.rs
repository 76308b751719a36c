//! Random entries, a crash at a random byte: what the log recovers is a
//! prefix of what was appended, and holds every entry whose completion
//! said it was logged (under `FsyncPolicy::Always`).

use std::sync::atomic::{AtomicUsize, Ordering};

use cepheid_serve::wal::{Entry, Input, Wal, WalOptions};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::support::{append_async, copy_log, frames, raw, read_all, scratch, segments};

fn fields() -> impl Strategy<Value = Box<serde_json::value::RawValue>> {
    prop::collection::btree_map("[a-z]{1,6}", any::<String>(), 0..4)
        .prop_map(|m| raw(&serde_json::to_string(&m).unwrap()))
}

fn input(scene: Option<String>) -> impl Strategy<Value = Input> {
    (any::<String>(), fields(), any::<bool>(), any::<bool>()).prop_map(
        move |(event_id, fields, degraded, shed_shadow)| Input {
            scene: scene.clone(),
            event_id,
            fields,
            degraded,
            shed_shadow,
            origin: None,
        },
    )
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => "[a-z]{1,5}".prop_flat_map(|scene| input(Some(scene))).prop_map(Entry::Decide),
        2 => prop::option::of("[a-z]{1,5}").prop_flat_map(input).prop_map(Entry::Event),
        1 => (any::<String>(), any::<String>()).prop_map(|(text, origin)| Entry::Rules { text, origin }),
        1 => fields().prop_map(|change| Entry::List { change, origin: None }),
        1 => any::<i64>().prop_map(|time| Entry::Tick { time }),
        1 => (1..u64::MAX).prop_map(|request| Entry::Degraded { request }),
    ]
}

/// `rounds` with each degraded entry naming an earlier entry (as the
/// service writes them: after the request they name), the first
/// entry, if one, a tick instead.
fn in_order(mut rounds: Vec<Vec<Entry>>) -> Vec<Vec<Entry>> {
    let mut seq = 0u64;
    for entry in rounds.iter_mut().flatten() {
        seq += 1;
        if let Entry::Degraded { request } = entry {
            *entry = match seq {
                1 => Entry::Tick {
                    time: *request as i64,
                },
                _ => Entry::Degraded {
                    request: 1 + (*request - 1) % (seq - 1),
                },
            };
        }
    }
    rounds
}

static CASE: AtomicUsize = AtomicUsize::new(0);

proptest! {
    // 32 cases (`CEPHEID_PROPTEST_CASES` sets another number).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("CEPHEID_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(32),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_crash_at_any_byte_keeps_every_acknowledged_entry(
        rounds in prop::collection::vec(prop::collection::vec(entry(), 1..6), 1..5),
        segment_size in prop::sample::select(vec![200u64, 1500, 1 << 20]),
        crash_round in any::<Index>(),
        cut in any::<Index>(),
    ) {
        let rounds = in_order(rounds);
        let case = CASE.fetch_add(1, Ordering::SeqCst);
        let dir = scratch(&format!("crash-{case}"));
        let crashed = scratch(&format!("crash-{case}-after"));
        let (wal, _) = Wal::open(&*dir, WalOptions { segment_size, ..WalOptions::default() }).unwrap();
        let appender = wal.appender();
        // The entries acknowledged after each round.
        let mut acked = vec![0usize];
        let mut appended = Vec::new();
        for round in &rounds {
            let waits: Vec<_> = round.iter().map(|e| append_async(&appender, e.clone())).collect();
            for w in waits {
                let logged = w.recv().unwrap().unwrap();
                prop_assert_eq!(logged.seq as usize, appended.len() + 1);
                appended.push(logged);
            }
            acked.push(appended.len());
        }
        wal.close().unwrap();
        let expected: Vec<Entry> = rounds.into_iter().flatten().collect();
        // The log's bytes end to end: each segment's start, and where each
        // entry's frame ends.
        let segs = segments(&dir);
        let mut starts = Vec::new();
        let mut ends = vec![24u64]; // before the first entry: the first header
        let mut total = 0;
        for seg in &segs {
            starts.push(total);
            ends.extend(frames(seg).iter().map(|f| total + f.1));
            total += std::fs::metadata(seg).unwrap().len();
        }
        // A crash while the round after `r` was written: everything up to
        // the end of round `r` is durable, any prefix of the rest may be.
        let r = crash_round.index(acked.len());
        let durable = acked[r];
        let from = ends[durable];
        let cut = from + cut.index((total - from + 1) as usize) as u64;
        copy_log(&dir, &crashed);
        let copies = segments(&crashed);
        for (k, seg) in copies.iter().enumerate() {
            if starts[k] >= cut && k > 0 && starts[k] > from {
                std::fs::remove_file(seg).unwrap();
            } else if cut < starts[k] + std::fs::metadata(seg).unwrap().len() {
                std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(cut - starts[k]).unwrap();
            }
        }
        let (wal, recovered) = Wal::open(&*crashed, WalOptions::default()).unwrap();
        let n = recovered.entries as usize;
        prop_assert!(n >= durable, "{} recovered, {} acknowledged (cut at {})", n, durable, cut);
        prop_assert_eq!(recovered.next_seq as usize, n + 1);
        drop(wal);
        let read = read_all(&crashed);
        prop_assert_eq!(read.len(), n);
        for (k, e) in read.iter().enumerate() {
            prop_assert_eq!(e.seq as usize, k + 1);
            prop_assert_eq!(e.stamp, appended[k].stamp);
            prop_assert_eq!(&e.entry, &expected[k]);
        }
    }
}
