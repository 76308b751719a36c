//! What the tests share: scratch folders, entries, appending and waiting.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use cepheid_serve::wal::{Appender, Entry, Input, Logged, LoggedEntry, WalError, WalReader};
use serde_json::value::RawValue;

/// A test's scratch folder (emptied), kept when the test fails.
pub fn scratch(name: &str) -> cepheid_testkit::Scratch {
    cepheid_testkit::Scratch::new(
        std::env::temp_dir().join(format!("cepheid-wal-{name}-{}", std::process::id())),
    )
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).expect("valid JSON")
}

pub fn decide(scene: &str, id: &str, fields: &str) -> Entry {
    Entry::Decide(Input {
        scene: Some(scene.into()),
        event_id: id.into(),
        fields: raw(fields),
        degraded: false,
        shed_shadow: false,
        origin: None,
    })
}

/// Appends and waits for the completion.
pub fn append_wait(appender: &Appender, entry: Entry) -> Result<Logged, WalError> {
    let (tx, rx) = mpsc::channel();
    appender.append(
        entry,
        Box::new(move |r| tx.send(r).expect("the test waits")),
    )?;
    rx.recv().expect("the completion is called")
}

/// Appends without waiting; the receiver gets the completion.
pub fn append_async(appender: &Appender, entry: Entry) -> mpsc::Receiver<Result<Logged, WalError>> {
    let (tx, rx) = mpsc::channel();
    appender
        .append(
            entry,
            Box::new(move |r| tx.send(r).expect("the test waits")),
        )
        .expect("queued");
    rx
}

/// Every entry of the log in `dir`.
pub fn read_all(dir: &Path) -> Vec<LoggedEntry> {
    WalReader::open(dir, 0)
        .expect("a reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("a readable log")
}

/// The segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// The frames of a segment as `docs/wal.md` describes them, parsed here
/// on their own: (offset, end, payload as JSON). Checks the header.
pub fn frames(path: &Path) -> Vec<(u64, u64, serde_json::Value)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"CEPHWAL\0", "{}", path.display());
    assert_eq!(bytes[8], 1, "format version");
    assert_eq!(&bytes[9..12], &[0, 0, 0]);
    let first = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    let name: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(first, name, "the header's first seq is the name's");
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        crc32fast::hash(&bytes[..20])
    );
    let mut at = 24;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let payload = &bytes[at + 8..at + 8 + len];
        assert_eq!(crc32fast::hash(payload), crc);
        out.push((
            at as u64,
            (at + 8 + len) as u64,
            serde_json::from_slice(payload).unwrap(),
        ));
        at += 8 + len;
    }
    out
}

/// Copies the log's segment files into `to` (emptied).
pub fn copy_log(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for seg in segments(from) {
        std::fs::copy(&seg, to.join(seg.file_name().unwrap())).unwrap();
    }
}
