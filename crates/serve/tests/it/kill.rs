//! `kill -9` under load: every entry whose completion said it was logged
//! is in the log after the restart, the log is dense and whole (a torn
//! tail at most, cut and reported), and it goes on from there.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cepheid_serve::wal::{Wal, WalOptions};

use crate::support::{append_wait, decide, read_all, scratch};

const DIR: &str = "CEPHEID_WAL_KILL_DIR";

#[test]
fn every_acknowledged_entry_survives_a_kill() {
    let dir = scratch("kill");
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill::child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR, &*dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(seq) = line.strip_prefix("acked ") {
                acked.push(seq.parse::<u64>().unwrap());
                if acked.len() == 300 {
                    break;
                }
            }
        }
        assert_eq!(acked.len(), 300, "the child stopped early");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let newest = *acked.iter().max().unwrap();
        let (wal, recovered) = Wal::open(&*dir, WalOptions::default()).unwrap();
        assert!(
            recovered.next_seq > newest,
            "round {round}: seq {newest} was acknowledged, the log ends at {}",
            recovered.next_seq - 1
        );
        // It goes on from there.
        let logged = append_wait(&wal.appender(), decide("pay", "after", "{}")).unwrap();
        assert_eq!(logged.seq, recovered.next_seq);
        drop(wal);
        let read = read_all(&dir);
        assert_eq!(read.len() as u64, logged.seq);
        assert!(read.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    }
}

/// Run by the test above in a child process: 8 threads append as fast as
/// they can, each completion printed as it comes, until killed.
#[test]
#[ignore = "run by every_acknowledged_entry_survives_a_kill in a child process"]
fn child() {
    let Ok(dir) = std::env::var(DIR) else { return };
    let (wal, _) = Wal::open(dir, WalOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let appender = wal.appender();
            s.spawn(move || {
                for i in 0.. {
                    let entry = decide("pay", &format!("t{t}-{i}"), r#"{"amount": 1}"#);
                    let logged = append_wait(&appender, entry).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {}", logged.seq).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}
