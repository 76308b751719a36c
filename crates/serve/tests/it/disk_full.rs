//! A write that fails for real: the group's entries get `Err`, are cut
//! away and never reach the consumer, their seqs go to the next group, the
//! log says it is unhealthy until a group succeeds.
//!
//! Two ways, each in a child process (this test binary run again on
//! `child`), so that nothing else of the suite shares its limits:
//! - `RLIMIT_FSIZE` (any user): a write past the file size limit fails
//!   with `EFBIG` (`SIGXFSZ` ignored), as one on a full disk fails with
//!   `ENOSPC`; raising the limit again is the space coming back.
//! - a real full disk: a 256 KiB tmpfs mounted in a mount namespace of
//!   the child's own (`unshare --mount`, root only; when this system does
//!   not allow it the test says so on standard error and passes). Space
//!   comes back when the child deletes a ballast file.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use cepheid_serve::wal::{Entry, FsyncPolicy, LoggedEntry, Wal, WalError, WalOptions};

use crate::support::{append_async, append_wait, decide, read_all, scratch};

const MODE: &str = "CEPHEID_WAL_TEST_CHILD";
const DIR: &str = "CEPHEID_WAL_TEST_DIR";

fn child_command() -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "disk_full::child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

fn check(output: std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("child: ok"),
        "the child failed:\n{stdout}\n{stderr}"
    );
}

#[test]
#[cfg(unix)]
fn a_file_size_limit_fails_the_group_and_the_log_heals() {
    let dir = scratch("fsize");
    check(
        child_command()
            .env(MODE, "fsize")
            .env(DIR, &*dir)
            .output()
            .unwrap(),
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_full_disk_fails_the_group_and_the_log_heals() {
    let dir = scratch("enospc");
    let probe = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "tmpfs",
        ])
        .arg(&*dir)
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("a_full_disk_fails_the_group_and_the_log_heals: skipped, no tmpfs in a mount namespace here ({probe:?})");
        return;
    }
    let script = r#"mount -t tmpfs -o size=256k tmpfs "$CEPHEID_WAL_TEST_DIR" && exec "$@""#;
    let output = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "disk_full::child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE, "enospc")
        .env(DIR, &*dir)
        .output()
        .unwrap();
    check(output);
}

/// Run by the tests above in a child process; does nothing otherwise.
#[test]
#[ignore = "run by the disk-full tests in a child process"]
fn child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR).unwrap());
    let log = dir.join("log");
    let ballast = dir.join("ballast");
    let expected_errno = match mode.as_str() {
        "fsize" => {
            limit_file_size(Some(48 << 10));
            libc::EFBIG
        }
        "enospc" => {
            std::fs::write(&ballast, vec![1u8; 64 << 10]).unwrap();
            libc::ENOSPC
        }
        other => panic!("mode {other}"),
    };
    scenario(&log, expected_errno, || match mode.as_str() {
        "fsize" => limit_file_size(None),
        _ => std::fs::remove_file(&ballast).unwrap(),
    });
    println!("child: ok");
}

#[cfg(unix)]
fn limit_file_size(limit: Option<u64>) {
    // SAFETY: plain system calls on this (single-test) process's own
    // signal disposition and limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut now), 0);
        now.rlim_cur = limit.map_or(now.rlim_max, |l| l as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &now), 0);
    }
}

fn entry(i: usize) -> Entry {
    decide(
        "pay",
        &format!("e{i}"),
        &format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(2000)),
    )
}

fn scenario(log: &Path, errno: i32, make_room: impl FnOnce()) {
    let consumed: Arc<Mutex<Vec<u64>>> = Arc::default();
    let consumer = {
        let consumed = consumed.clone();
        Box::new(move |group: &[Arc<LoggedEntry>]| {
            consumed.lock().unwrap().extend(group.iter().map(|e| e.seq))
        })
    };
    let options = WalOptions {
        fsync: FsyncPolicy::Always,
        consumer: Some(consumer),
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(log, options).unwrap();
    let appender = wal.appender();
    let mut follower = wal.reader(0).unwrap();
    // Append until the disk is full.
    let mut ok = 0;
    let error = loop {
        match append_wait(&appender, entry(ok)) {
            Ok(logged) => {
                ok += 1;
                assert_eq!(logged.seq, ok as u64);
            }
            Err(e) => break e,
        }
        assert!(ok < 10_000, "the disk never filled");
    };
    assert!(ok > 3, "{ok} entries before the disk filled");
    match &error {
        WalError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(errno), "{error}"),
        other => panic!("{other:?}"),
    }
    let health = wal.health();
    assert!(!health.is_healthy(), "{health:?}");
    assert_eq!(wal.stats().failures, 1);
    // A group of several entries while it is still full: all fail.
    let waits: Vec<_> = (0..5)
        .map(|i| append_async(&appender, entry(1000 + i)))
        .collect();
    for w in waits {
        assert!(w.recv().unwrap().is_err());
    }
    assert!(wal.stats().failures >= 2);
    // What is on disk is exactly the logged entries: the failed groups
    // were cut away, none reached the consumer.
    assert_eq!(read_all(log).len(), ok);
    assert_eq!(
        *consumed.lock().unwrap(),
        (1..=ok as u64).collect::<Vec<_>>()
    );
    let followed: Vec<_> = follower.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(followed.len(), ok, "a follower sees no failed entry");
    // Room again: the next entry takes the first failed seq, and the log is healthy.
    make_room();
    let logged = append_wait(&appender, entry(ok)).unwrap();
    assert_eq!(logged.seq, ok as u64 + 1);
    assert!(wal.health().is_healthy());
    // The follower gets the seq again, with the entry logged under it now.
    let next = follower
        .next_entry()
        .unwrap()
        .expect("the entry after the failures");
    assert_eq!(next.seq, ok as u64 + 1);
    assert_eq!(next.entry.input().unwrap().event_id, format!("e{ok}"));
    let stats = wal.close().unwrap();
    assert_eq!(stats.appended, ok as u64 + 1);
    assert_eq!(
        *consumed.lock().unwrap(),
        (1..=ok as u64 + 1).collect::<Vec<_>>()
    );
    // Reopened: dense, whole, nothing torn.
    let (_wal, recovered) = Wal::open(log, WalOptions::default()).unwrap();
    assert_eq!((recovered.entries, recovered.torn), (ok as u64 + 1, None));
    let read = read_all(log);
    assert_eq!(
        read.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=ok as u64 + 1).collect::<Vec<_>>()
    );
}
