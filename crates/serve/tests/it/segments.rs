//! Rolling segments, readers from any seq, following a live log, retention.

use std::time::Duration;

use cepheid_serve::wal::{Entry, FsyncPolicy, Wal, WalError, WalOptions, WalReader};

use crate::support::{append_wait, decide, frames, read_all, scratch, segments};

fn small_segments() -> WalOptions {
    WalOptions {
        segment_size: 1024,
        fsync: FsyncPolicy::Never,
        ..WalOptions::default()
    }
}

fn fill(wal: &Wal, from: usize, n: usize) {
    let appender = wal.appender();
    for i in from..from + n {
        append_wait(
            &appender,
            decide(
                "pay",
                &format!("e{i}"),
                &format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(100)),
            ),
        )
        .unwrap();
    }
}

#[test]
fn segments_roll_and_readers_start_anywhere() {
    let dir = scratch("roll");
    let (wal, _) = Wal::open(&*dir, small_segments()).unwrap();
    fill(&wal, 0, 100);
    let stats = wal.stats();
    wal.close().unwrap();
    let segs = segments(&dir);
    assert!(segs.len() > 5, "{segs:?}");
    assert_eq!(stats.segments_rolled as usize, segs.len() - 1);
    // Each is named by its first seq, and follows the one before.
    let mut next = 1;
    for seg in &segs {
        let name: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert_eq!(name, next);
        let frames = frames(seg);
        assert!(!frames.is_empty());
        assert_eq!(frames[0].2["seq"], next);
        next += frames.len() as u64;
        // The group that reaches the size ends the segment (one entry a group here).
        assert!(frames[frames.len() - 1].0 < 1024);
    }
    let all = read_all(&dir);
    assert_eq!(all.len(), 100);
    // From every seq: the first of a segment, the middle of one, the last.
    for from in 1..=101u64 {
        let read: Vec<_> = WalReader::open(&*dir, from)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read[..], all[(from - 1) as usize..], "from {from}");
    }
    // Reopened, the log continues in its last segment.
    let (wal, recovered) = Wal::open(&*dir, small_segments()).unwrap();
    assert_eq!((recovered.next_seq, recovered.segments), (101, segs.len()));
    fill(&wal, 100, 20);
    wal.close().unwrap();
    assert_eq!(read_all(&dir).len(), 120);
}

#[test]
fn a_reader_follows_the_live_log() {
    let dir = scratch("follow");
    let (wal, _) = Wal::open(
        &*dir,
        WalOptions {
            segment_size: 1024,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let mut live = wal.reader(0).unwrap();
    let mut from_5 = wal.reader(5).unwrap();
    assert!(live.next_entry().unwrap().is_none(), "nothing yet");
    let mut seen = Vec::new();
    for round in 0..10 {
        fill(&wal, round * 7, 7);
        while let Some(e) = live.next_entry().unwrap() {
            seen.push(e);
        }
        assert_eq!(seen.len(), (round + 1) * 7);
        assert!(live.next_entry().unwrap().is_none());
        // Never past the committed seq.
        assert_eq!(live.next_seq(), wal.committed_seq() + 1);
    }
    assert!(segments(&dir).len() > 3);
    let rest: Vec<_> = from_5.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(rest[..], seen[4..]);
    // A reader of the files alone (another process) sees the same.
    let other: Vec<_> = WalReader::open(&*dir, 0)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(other, seen);
    wal.close().unwrap();
    assert_eq!(read_all(&dir), seen);
}

#[test]
fn retention_deletes_only_what_it_may() {
    let dir = scratch("retention");
    let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock = {
        let now = now.clone();
        Some(
            std::sync::Arc::new(move || now.load(std::sync::atomic::Ordering::SeqCst))
                as cepheid_serve::wal::Clock,
        )
    };
    let options = WalOptions {
        retention: Duration::from_secs(60),
        clock,
        ..small_segments()
    };
    let (wal, _) = Wal::open(&*dir, options).unwrap();
    // 60 entries a second apart: stamps 0, 1000, ..., 59000.
    for i in 0..60 {
        now.store(i * 1000, std::sync::atomic::Ordering::SeqCst);
        fill(&wal, i as usize, 1);
    }
    let before = segments(&dir);
    let firsts: Vec<u64> = before
        .iter()
        .map(|s| s.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    // Nothing is 60 s older than the newest stamp yet.
    assert_eq!(wal.release_before(u64::MAX).unwrap(), 0);
    for i in 60..200 {
        now.store(i * 1000, std::sync::atomic::Ordering::SeqCst);
        fill(&wal, i as usize, 1);
    }
    // Below the checkpoint's seq only: segments wholly before seq 20.
    let k = firsts.iter().filter(|&&f| f <= 20).count() - 1;
    assert_eq!(wal.release_before(20).unwrap(), k);
    let kept = segments(&dir);
    let first_kept: u64 = kept[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_kept <= 20, "seq 20 is kept");
    // Old enough only: the newest stamp is 199 000; stamps up to 139 000
    // may go. The segment holding seq 140 (stamp 139 000) and later stay.
    wal.release_before(u64::MAX).unwrap();
    let kept = segments(&dir);
    let first_kept: u64 = kept[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let all = read_all(&dir);
    assert_eq!(all[0].seq, first_kept);
    let last_released = first_kept - 1;
    assert!(
        last_released <= 140,
        "seq {last_released}: younger than the retention"
    );
    assert!(first_kept > 100, "released what it may ({first_kept})");
    assert_eq!(all.last().unwrap().seq, 200);
    // A reader before the first kept seq is told so.
    assert!(matches!(
        WalReader::open(&*dir, 1),
        Err(WalError::Released { asked: 1, .. })
    ));
    // A reader behind, in a segment about to be released.
    let mut behind = wal.reader(first_kept).unwrap();
    assert_eq!(behind.next_entry().unwrap().unwrap().seq, first_kept);
    // Never the segment being written, even when everything may go.
    now.store(10_000_000, std::sync::atomic::Ordering::SeqCst);
    append_wait(&wal.appender(), Entry::Tick { time: 0 }).unwrap();
    wal.release_before(u64::MAX).unwrap();
    assert_eq!(segments(&dir).len(), 1);
    // The reader ends its open segment, then is told the rest went.
    let err = loop {
        match behind.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a reader behind released segments waits for ever"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, WalError::Released { .. }), "{err:?}");
    let stats = wal.stats();
    wal.close().unwrap();
    // Everything but the segment being written went.
    assert_eq!(stats.segments_released, stats.segments_rolled);
}

#[test]
fn a_reader_of_the_files_alone_follows_a_log_being_written() {
    let dir = scratch("follow-files");
    let options = WalOptions {
        segment_size: 4096,
        fsync: FsyncPolicy::Never,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&*dir, options).unwrap();
    let n = 3000;
    let mut reader = WalReader::open(&*dir, 0).unwrap();
    let read = std::thread::scope(|s| {
        let appender = wal.appender();
        s.spawn(move || {
            let mut waits = Vec::new();
            for i in 0..n {
                let fields = format!(r#"{{"i":{i},"pad":"{}"}}"#, "y".repeat(i % 300));
                waits.push(crate::support::append_async(
                    &appender,
                    decide("pay", &format!("e{i}"), &fields),
                ));
            }
            for w in waits {
                w.recv().unwrap().unwrap();
            }
        });
        // As another process would: whole frames only, the end for now
        // at a frame being written.
        let mut read = Vec::new();
        while read.len() < n {
            match reader.next_entry().unwrap() {
                Some(e) => read.push(e),
                None => std::thread::yield_now(),
            }
        }
        read
    });
    assert!(reader.next_entry().unwrap().is_none());
    wal.close().unwrap();
    assert!(segments(&dir).len() > 1);
    assert_eq!(read, read_all(&dir));
}
