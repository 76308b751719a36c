//! The `checkpoint` target's input: the files of a checkpoint folder, as
//! a resume reads it. The first byte the options
//! (`runtime_input::config`), then files, each a byte naming it
//! ([`names`], modulo their number), its length (2 bytes,
//! little-endian) and its bytes (as many as are left when fewer); the
//! folder written afresh, the run resumed from it over a few events. It
//! must end (a refusal, an error: whatever the files are) without a
//! panic, and without an allocation driven by a length field
//! (libFuzzer's `-malloc_limit_mb`).

// (the seeds' writer uses a part, the target another)
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::runtime_input::{self, Line};

/// The files a checkpoint folder may hold: this format's cuts (numbers 1
/// to 6, each its marker and the pieces of two workers; a cut being
/// written), and the formats before it (`crates/runtime/src/checkpoint/
/// legacy.rs`: the single run's file and the one before, a cut of
/// workers).
pub fn names() -> Vec<String> {
    let mut names = vec![
        "checkpoint".to_string(),
        "checkpoint.prev".to_string(),
        "epoch-1700000376911/complete".to_string(),
        "epoch-1700000376911/worker-0".to_string(),
        "epoch-1700000376911/worker-1".to_string(),
        "part-7/marker".to_string(),
        "part-7/piece-0".to_string(),
    ];
    for n in 1..=6 {
        for file in ["marker", "piece-0", "piece-1"] {
            names.push(format!("cut-{n}/{file}"));
        }
    }
    names
}

/// The events of every run: a match, a timeout, a malformed line.
pub fn events() -> Vec<Line> {
    [
        r#"{"ts":1000,"type":"a","k":"x"}"#,
        r#"{"ts":1500,"type":"b","k":"x"}"#,
        r#"{"ts":2000,"type":"a","k":"y"}"#,
        r#"{"ts":"soon"}"#,
        r#"{"ts":30000,"type":"b","k":"z"}"#,
    ]
    .iter()
    .map(|l| Line {
        rules: false,
        time: None,
        bytes: l.as_bytes().to_vec(),
    })
    .collect()
}

/// The folder of this process's runs.
pub fn folder() -> PathBuf {
    std::env::temp_dir().join(format!("cepheid-fuzz-checkpoint-{}", std::process::id()))
}

/// Writes the files `data` describes in `dir` (emptied first).
pub fn write(dir: &Path, mut data: &[u8]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("the folder");
    while let [name, a, b, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
        let names = names();
        let path = dir.join(&names[usize::from(*name) % names.len()]);
        std::fs::create_dir_all(path.parent().expect("in a folder")).expect("its folder");
        std::fs::write(&path, &rest[..len]).expect("a file");
        data = &rest[len..];
    }
}

/// Frames the files of `dir` that [`names`] names (for seeds).
pub fn frame(dir: &Path, options: u8) -> Vec<u8> {
    let mut data = vec![options];
    for (i, name) in names().iter().enumerate() {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
            data.push(u8::try_from(i).expect("a few names"));
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&bytes[..usize::from(len)]);
        }
    }
    data
}

/// The configuration of the runs: checkpoints into `dir`, one every line.
pub fn config(options: u8, dir: &Path) -> cepheid_runtime::Config {
    let mut config = runtime_input::config(options);
    config.checkpoint = Some(dir.to_path_buf());
    config.checkpoint_every.time = None;
    config.checkpoint_every.lines = Some(2);
    config
}

pub fn run(data: &[u8]) {
    let Some((&options, files)) = data.split_first() else {
        return;
    };
    let dir = folder();
    write(&dir, files);
    runtime_input::run(config(options, &dir), events());
}
