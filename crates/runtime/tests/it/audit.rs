//! Audit records of rule changes through the library (`Config::audit`,
//! `docs/rule-lab.md`, "Audit records"): a reload asked through the
//! run's handle carries the caller's label, in the audit file and in what
//! an observing report is shown (`RunView::rule_changes`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_engine::Rules;
use cepheid_runtime::audit::{ChangeKind, Origin, Outcome, RuleChange, State};
use cepheid_runtime::{Config, Input, Notice, Report, RunView, Runtime};

use crate::support::{scratch, RULES};

/// Keeps what it says, and the rule changes the last tick showed.
#[derive(Clone, Default)]
struct Watch {
    said: Arc<Mutex<Vec<String>>>,
    shown: Arc<Mutex<Vec<RuleChange>>>,
    live_runs: Arc<Mutex<u64>>,
}

impl Report for Watch {
    fn notice(&mut self, notice: Notice) {
        self.said.lock().unwrap().push(notice.to_string());
    }
    fn observes(&self) -> bool {
        true
    }
    fn tick(&mut self, view: &RunView<'_>) {
        *self.shown.lock().unwrap() = view.rule_changes.to_vec();
        *self.live_runs.lock().unwrap() = view.live_runs();
    }
}

#[test]
fn a_reload_through_the_handle_is_audited_with_the_label_its_caller_gives() {
    let dir = scratch("audit-label");
    let rules_path = dir.join("ab.cep");
    std::fs::write(&rules_path, RULES).unwrap();
    let events = dir.join("events.jsonl");
    let audit = dir.join("audit.jsonl");
    // (the `x` of time 5 moves the watermark past the `a`: it is taken)
    let text = "{\"ts\": 1, \"type\": \"a\", \"k\": 1}\n{\"ts\": 5, \"type\": \"x\", \"k\": 2}\n";
    std::fs::write(&events, text).unwrap();
    let mut config = Config::new(Input::file(&events), vec![rules_path.clone()]);
    config.follow = true;
    config.max_delay = Duration::ZERO;
    config.output = Some(dir.join("out.jsonl"));
    config.audit = Some(audit.clone());
    let rules = Rules::load_all(&config.patterns).unwrap();
    let watch = Watch::default();
    let runtime = Runtime::new(config, &rules, Box::new(watch.clone())).unwrap();
    let handle = runtime.handle();
    let run = std::thread::spawn(move || runtime.run());
    // The partial match of `a` waits for its `b` when the rule changes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while *watch.live_runs.lock().unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "no partial match");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&rules_path, RULES.replace("followed by", "next")).unwrap();
    handle.reload("deploy 42");
    loop {
        let said = watch.said.lock().unwrap().clone();
        if said.iter().any(|s| s.contains("deploy 42: rules reloaded")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload: {said:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.stop("the test");
    run.join().unwrap();
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<RuleChange> = (text.lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    let files = vec![rules_path.display().to_string()];
    assert_eq!(
        records[0].origin,
        Origin::Files {
            files: files.clone(),
            label: None
        }
    );
    let reload = &records[1];
    assert_eq!(
        reload.origin,
        Origin::Files {
            files,
            label: Some("deploy 42".into())
        }
    );
    assert_eq!(reload.outcome, Outcome::Applied);
    let [ab] = &reload.patterns[..] else {
        panic!("{text}");
    };
    assert_eq!((ab.change, ab.state), (ChangeKind::Changed, State::Drained));
    assert_eq!((ab.old_version, ab.new_version), (Some(1), Some(2)));
    assert_eq!(ab.partial_matches, Some(1), "the `a` of key 1");
    // (the observer's last tick, at the end, showed both)
    assert_eq!(*watch.shown.lock().unwrap(), records);
}

/// `Config::audit_lists`: each `$list` record of the input is audited
/// beside the changes of rules, made or refused (a list the rules do not
/// declare), at its line, from the time it is in force; a line that is
/// no `$list` record (neither `add` nor `remove`) is a malformed line,
/// said and counted, not a change. A run without it audits none.
#[test]
fn changes_of_lists_are_audited_with_audit_lists() {
    let dir = scratch("audit-lists");
    let rules_path = dir.join("rules.cep");
    std::fs::write(
        &rules_path,
        "list blocked\npattern hit { partition by k match a where a: type == \"a\" and k in blocked }\n",
    )
    .unwrap();
    let events = dir.join("events.jsonl");
    let text = [
        r#"{"ts": 1, "type": "a", "k": "x"}"#,
        r#"{"$list": "blocked", "add": ["x", 7], "expires": 100000}"#,
        r#"{"ts": 5, "type": "a", "k": "x"}"#,
        r#"{"$list": "nope", "add": "y"}"#,
        r#"{"$list": "blocked", "remove": "x"}"#,
        r#"{"$list": "blocked"}"#,
    ]
    .join("\n");
    std::fs::write(&events, text + "\n").unwrap();
    let run = |audit_lists: bool| {
        let audit = dir.join(format!("audit-{audit_lists}.jsonl"));
        let mut config = Config::new(Input::file(&events), vec![rules_path.clone()]);
        config.max_delay = Duration::ZERO;
        config.lists_from_stream = true;
        config.output = Some(dir.join("out.jsonl"));
        config.audit = Some(audit.clone());
        config.audit_lists = audit_lists;
        let rules = Rules::load_all(&config.patterns).unwrap();
        let summary = Runtime::new(config, &rules, Box::new(Watch::default()))
            .unwrap()
            .run();
        assert!(summary.error().is_none(), "{summary}");
        (std::fs::read_to_string(&audit).unwrap().lines())
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["kind"] == "list_change")
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("wall_time");
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(false), Vec::<serde_json::Value>::new());
    let input = events.display().to_string();
    let at = |line: u64| serde_json::json!({"input": input, "line": line});
    let records = run(true);
    assert_eq!(
        records,
        [
            serde_json::json!({"kind": "list_change", "event_time": 1, "origin": at(2), "outcome": "applied",
                "list": "blocked", "added": ["x", 7], "expires": 100000, "removed": []}),
            serde_json::json!({"kind": "list_change", "event_time": 5, "origin": at(4), "outcome": "refused",
                "reason": records[1]["reason"], "list": "nope", "added": ["y"], "removed": []}),
            serde_json::json!({"kind": "list_change", "event_time": 5, "origin": at(5), "outcome": "applied",
                "list": "blocked", "added": [], "removed": ["x"]}),
        ],
        "{records:#?}"
    );
    let reason = records[1]["reason"].as_str().unwrap();
    assert_eq!(reason, "there is no list `nope` in the rule set");
}
