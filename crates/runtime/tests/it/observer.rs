//! The observer hook: a `Report` that observes a run sees it once per
//! batch and at the end (never per event), the batch's latest records
//! when it asks for them, the input file's bytes left, and each
//! checkpoint when it is taken; one that does not observe is never
//! called, and the output is the same either way.

use std::sync::{Arc, Mutex};

use cepheid_engine::Rules;

use crate::support::{scratch, RULES};
use cepheid_runtime::{Config, Input, Kind, Notice, Report, RunEvent, RunView, Runtime};

#[derive(Default, Debug)]
struct Seen {
    ticks: u64,
    finished: u64,
    records: Vec<(Kind, String)>,
    last: Option<(u64, u64, u64, Option<u64>)>,
    checkpoints: u64,
}

struct Watch {
    seen: Arc<Mutex<Seen>>,
    observes: bool,
}

impl Report for Watch {
    fn notice(&mut self, _: Notice) {}
    fn observes(&self) -> bool {
        self.observes
    }
    fn records_wanted(&self) -> usize {
        2
    }
    fn tick(&mut self, view: &RunView<'_>) {
        assert!(
            self.observes,
            "a report that does not observe is not shown the run"
        );
        let mut seen = self.seen.lock().unwrap();
        seen.ticks += 1;
        seen.finished += u64::from(view.finished);
        assert!(view.records.len() <= 2, "{:?}", view.records);
        seen.records.extend(view.records.iter().cloned());
        let matches = view.stats().matches;
        seen.last = Some((view.events_read, view.late, matches, view.source_lag));
    }
    fn event(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::Checkpoint { bytes, .. } = event {
            assert!(*bytes > 0);
            self.seen.lock().unwrap().checkpoints += 1;
        }
    }
}

fn run(dir: &std::path::Path, observes: bool) -> (Seen, String) {
    let _ = std::fs::remove_dir_all(dir.join("state"));
    run_on(dir, observes)
}

/// [`run`], resuming from the checkpoint in `dir/state` if there is one.
fn run_on(dir: &std::path::Path, observes: bool) -> (Seen, String) {
    let events = dir.join("events.jsonl");
    let mut text = String::new();
    for k in 0..3 {
        text.push_str(&format!(
            "{{\"ts\": {}, \"type\": \"a\", \"k\": {k}}}\n",
            10 * k
        ));
        text.push_str(&format!(
            "{{\"ts\": {}, \"type\": \"b\", \"k\": {k}}}\n",
            10 * k + 1
        ));
    }
    text.push_str("{\"ts\": 0, \"type\": \"a\", \"k\": 9}\n"); // late
    std::fs::write(&events, text).unwrap();
    let output = dir.join(if observes {
        "watched.jsonl"
    } else {
        "plain.jsonl"
    });
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(output.clone());
    config.checkpoint = Some(dir.join("state"));
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let report = Watch {
        seen: Arc::clone(&seen),
        observes,
    };
    let summary = Runtime::new(config, &rules, Box::new(report))
        .unwrap()
        .run();
    assert!(summary.error().is_none(), "{summary}");
    assert_eq!(summary.matches, 3);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, std::fs::read_to_string(output).unwrap())
}

#[test]
fn an_observer_sees_batches_records_and_checkpoints() {
    let dir = scratch("sees");
    let (plain, plain_out) = run(&dir, false);
    assert_eq!(plain.ticks, 0);
    let (seen, out) = run(&dir, true);
    assert_eq!(out, plain_out, "the output does not change");
    assert!(seen.ticks >= 1 && seen.ticks <= 3, "{seen:?}");
    assert_eq!(seen.finished, 1, "{seen:?}");
    // 7 events, 1 late, 3 matches; the whole file read.
    assert_eq!(seen.last, Some((7, 1, 3, Some(0))));
    // At most 2 records per batch, the latest: the last match among them.
    let last = seen.records.last().expect("records");
    assert_eq!(last.0, Kind::Match);
    assert!(
        last.1.ends_with('\n') && out.ends_with(last.1.as_str()),
        "{seen:?}"
    );
    assert!(seen.checkpoints >= 1, "{seen:?}");
}

/// The latest records are kept in checkpoints: a resumed run (here run
/// again over the same file, from its checkpoint at the end) shows first
/// the latest records made before its checkpoint, at most as many as the
/// observer wants, then those it makes (the same as the first run's last).
#[test]
fn a_resumed_run_shows_the_latest_records_made_before_its_checkpoint() {
    let dir = scratch("latest");
    let (first, out) = run(&dir, true);
    let (again, again_out) = run_on(&dir, true);
    assert_eq!(again_out, out, "nothing added");
    let made: Vec<&str> = out.lines().collect();
    let shown: Vec<&str> = again.records.iter().map(|(_, r)| r.trim_end()).collect();
    // Shown first: the 2 latest records of the first run's output up to
    // the checkpoint; everything shown is the first run's, in its order.
    assert!(shown.len() >= 2, "{again:?}");
    let at = made
        .iter()
        .position(|r| *r == shown[0])
        .expect("made before");
    assert_eq!(&made[at..at + 2], &shown[..2], "{first:?} {again:?}");
    assert!(shown.iter().all(|r| made.contains(r)), "{again:?}");
}

/// Two reports as one ([`cepheid_runtime::Both`]): a plain one (notices
/// only) and an observing one; the observing one is shown the run as if
/// it were alone, and both get every notice.
#[test]
fn both_reports_share_the_notices_and_the_observer_sees_the_run() {
    #[derive(Clone, Default)]
    struct Said(Arc<Mutex<Vec<String>>>);
    impl Report for Said {
        fn notice(&mut self, notice: Notice) {
            self.0.lock().unwrap().push(notice.to_string());
        }
    }
    let dir = scratch("both");
    let events = dir.join("events.jsonl");
    let text = "{\"ts\": 1, \"type\": \"a\", \"k\": 1}\n{\"ts\": 2, \"type\": \"b\", \"k\": 1}\nnot json\n";
    std::fs::write(&events, text).unwrap();
    let mut config = Config::new(Input::file(&events), Vec::new());
    config.output = Some(dir.join("out.jsonl"));
    let rules = Rules::parse("ab.cep", RULES).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watch = Watch {
        seen: Arc::clone(&seen),
        observes: true,
    };
    let said = Said::default();
    let both = cepheid_runtime::Both(said.clone(), watch);
    assert!(both.observes());
    assert_eq!(both.records_wanted(), 2);
    let summary = Runtime::new(config, &rules, Box::new(both)).unwrap().run();
    assert!(summary.error().is_none(), "{summary}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.finished, 1, "{seen:?}");
    assert_eq!(seen.last.map(|l| l.2), Some(1), "{seen:?}");
    // The malformed line is said (to the plain report, and to the
    // observer's `notice`, which drops it).
    let said = said.0.lock().unwrap();
    assert!(
        said.iter().any(|s| s.contains("events.jsonl:3")),
        "{said:?}"
    );
    // Neither observing: no records asked for.
    let quiet = cepheid_runtime::Both(Said::default(), Said::default());
    assert!(!quiet.observes());
    assert_eq!(quiet.records_wanted(), 0);
}
