//! Torn tails are cut away and reported; damage anywhere else is an error
//! naming the segment file and byte offset.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use cepheid_serve::wal::{Entry, FsyncPolicy, Torn, Wal, WalError, WalOptions, WalReader};

use crate::support::{append_wait, copy_log, decide, frames, read_all, scratch, segments};

/// A log of `n` entries (the last one small), closed.
fn log_of(dir: &Path, n: usize, segment_size: u64) -> Vec<cepheid_serve::wal::LoggedEntry> {
    let options = WalOptions {
        segment_size,
        fsync: FsyncPolicy::Never,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir, options).unwrap();
    let appender = wal.appender();
    for i in 0..n {
        append_wait(
            &appender,
            decide(
                "pay",
                &format!("e{i}"),
                &format!(r#"{{"i":{i},"pad":"{}"}}"#, "p".repeat(i % 7)),
            ),
        )
        .unwrap();
    }
    wal.close().unwrap();
    read_all(dir)
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_torn_last_frame_is_cut_at_every_byte() {
    let dir = scratch("torn-every");
    let work = scratch("torn-every-work");
    let all = log_of(&dir, 5, 64 << 20);
    let seg = &segments(&dir)[0];
    let (start, end, _) = frames(seg).last().cloned().unwrap();
    for cut in start..end {
        copy_log(&dir, &work);
        let seg = &segments(&work)[0];
        set_len(seg, cut);
        let (wal, recovered) = Wal::open(&*work, WalOptions::default()).unwrap();
        assert_eq!(recovered.entries, 4, "cut at {cut}");
        assert_eq!(recovered.next_seq, 5);
        let torn = (cut > start).then(|| Torn {
            segment: seg.clone(),
            offset: start,
            bytes: cut - start,
        });
        assert_eq!(recovered.torn, torn, "cut at {cut}");
        assert_eq!(wal.stats().torn_tails, u64::from(cut > start));
        assert_eq!(
            std::fs::metadata(seg).unwrap().len(),
            start,
            "the torn bytes are cut away"
        );
        if cut == start + 3 {
            // The log goes on from there.
            assert_eq!(
                append_wait(&wal.appender(), Entry::Tick { time: 9 })
                    .unwrap()
                    .seq,
                5
            );
        }
        drop(wal);
        let read = read_all(&work);
        assert_eq!(read[..4], all[..4]);
    }
}

#[test]
fn a_bad_checksum_in_the_last_frame_is_a_torn_tail() {
    let dir = scratch("torn-crc");
    log_of(&dir, 5, 64 << 20);
    let seg = &segments(&dir)[0];
    let (start, end, _) = frames(seg).last().cloned().unwrap();
    flip(seg, end - 2);
    let (_wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
    assert_eq!(recovered.entries, 4);
    assert_eq!(
        recovered.torn,
        Some(Torn {
            segment: seg.clone(),
            offset: start,
            bytes: end - start
        })
    );
}

#[test]
fn a_zero_filled_tail_is_a_torn_tail() {
    let dir = scratch("torn-zeros");
    log_of(&dir, 5, 64 << 20);
    let seg = &segments(&dir)[0];
    let (start, end, _) = frames(seg).last().cloned().unwrap();
    // The file grew but the data of its last frame and more never landed.
    let mut bytes = std::fs::read(seg).unwrap();
    bytes.truncate(start as usize + 8);
    bytes.resize(end as usize + 4096, 0);
    std::fs::write(seg, &bytes).unwrap();
    let (_wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
    assert_eq!(recovered.entries, 4);
    assert_eq!(recovered.torn.unwrap().offset, start);
    // Only zeros after a whole log.
    let dir = scratch("torn-zeros-2");
    log_of(&dir, 5, 64 << 20);
    let seg = &segments(&dir)[0];
    let len = std::fs::metadata(seg).unwrap().len();
    set_len(seg, len + 10_000);
    let (_wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
    assert_eq!(
        (recovered.entries, recovered.torn.unwrap().offset),
        (5, len)
    );
}

fn assert_corrupt(result: Result<impl std::fmt::Debug, WalError>, seg: &Path, offset: u64) {
    match result {
        Err(e @ WalError::Corrupt { .. }) => {
            let WalError::Corrupt {
                segment,
                offset: at,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!((segment.as_path(), *at), (seg, offset), "{e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("{}:{offset}:", seg.display())),
                "{text}"
            );
        }
        other => panic!("not a corruption error: {other:?}"),
    }
}

#[test]
fn a_flipped_byte_in_a_middle_frame_is_an_error_naming_file_and_offset() {
    let dir = scratch("flip-middle");
    let work = scratch("flip-middle-work");
    log_of(&dir, 6, 64 << 20);
    let seg = segments(&dir)[0].file_name().unwrap().to_owned();
    let frames = frames(&segments(&dir)[0]);
    let (start, end, _) = frames[2];
    // A payload byte, a checksum byte, a length byte that keeps the frame inside the file.
    for at in [end - 3, start + 5, start + 8 + 10, start + 1] {
        copy_log(&dir, &work);
        let seg = work.join(&seg);
        flip(&seg, at);
        assert_corrupt(
            Wal::open(&*work, WalOptions::default()).map(|_| ()),
            &seg,
            start,
        );
        let read: Result<Vec<_>, _> = WalReader::open(&*work, 0).unwrap().collect();
        assert_corrupt(read, &seg, start);
        // Nothing was cut: the bytes are as they were.
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            frames.last().unwrap().1
        );
    }
}

#[test]
fn damage_at_the_end_of_a_segment_that_is_not_the_last_is_an_error() {
    let dir = scratch("flip-earlier-segment");
    log_of(&dir, 40, 512);
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    let (start, end, _) = frames(&segs[0]).last().cloned().unwrap();
    flip(&segs[0], end - 1);
    assert_corrupt(
        Wal::open(&*dir, WalOptions::default()).map(|_| ()),
        &segs[0],
        start,
    );
    // Cut short instead.
    let dir = scratch("cut-earlier-segment");
    log_of(&dir, 40, 512);
    let segs = segments(&dir);
    let (start, end, _) = frames(&segs[1]).last().cloned().unwrap();
    set_len(&segs[1], end - 1);
    assert_corrupt(
        Wal::open(&*dir, WalOptions::default()).map(|_| ()),
        &segs[1],
        start,
    );
    // A segment missing.
    let dir = scratch("missing-segment");
    log_of(&dir, 40, 512);
    let segs = segments(&dir);
    std::fs::remove_file(&segs[1]).unwrap();
    assert_corrupt(
        Wal::open(&*dir, WalOptions::default()).map(|_| ()),
        &segs[2],
        0,
    );
}

#[test]
fn a_segment_whose_header_a_crash_cut_is_made_again() {
    let dir = scratch("torn-header");
    let all = log_of(&dir, 5, 64 << 20);
    for len in [0usize, 7, 23] {
        let next = dir.join(format!("{:020}.wal", 6));
        // The header `docs/wal.md` describes, cut.
        let mut header = b"CEPHWAL\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
        header.extend(crc32fast::hash(&header).to_le_bytes());
        header.truncate(len);
        std::fs::File::create(&next)
            .unwrap()
            .write_all(&header)
            .unwrap();
        let (wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
        assert_eq!(recovered.entries, 5);
        assert_eq!(
            recovered.torn,
            Some(Torn {
                segment: next.clone(),
                offset: 0,
                bytes: len as u64
            })
        );
        assert_eq!(recovered.next_seq, 6);
        assert_eq!(recovered.segments, 2);
        drop(wal);
        assert_eq!(read_all(&dir), all);
        std::fs::remove_file(&next).unwrap();
    }
}
