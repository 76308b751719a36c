//! The records `cepheid run` writes of rules with lists, indicators and
//! attributes: what each record carries, and the sample rules of
//! `patterns/risk/` over their sample stream (the engine's own tests of
//! lists and indicators are `cepheid-engine`'s `src/engine/memory/tests.rs`;
//! these read the records the runtime's [`JsonLines`] formats).

use std::time::Duration;

use cepheid_engine::{Engine, Record, Rules};
use cepheid_runtime::jsonl::JsonLines;

fn engine(text: &str, max_delay: u64) -> Engine<Record> {
    let rules = Rules::parse("t.cep", text).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::with_max_delay(Duration::from_millis(max_delay));
    engine.add(&rules).unwrap();
    engine
}

/// The records (JSON lines) of a run of `text` over `lines`.
fn records(text: &str, lines: &[&str]) -> Vec<String> {
    let mut e = engine(text, 0);
    let mut bytes = Vec::new();
    {
        let mut sink = JsonLines::new(&mut bytes, None::<Vec<u8>>);
        for line in lines {
            e.push_json(line, "ts", &mut sink).unwrap();
        }
        e.finish(&mut sink);
    }
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn records_of_rules_carry_their_attributes_and_what_they_read() {
    let text = r#"
        list blocked
        indicator logins = count() where type == "login" group by user within 1h
        pattern storm {
            partition by user
            score 80
            level high
            action block
            tags "ato", "login"
            match a
            where a: type == "login" and (logins(user) >= 2 or ip in blocked)
        }
        pattern plain { match a where a: type == "login" and user == "v" }
    "#;
    let lines = [
        r#"{"ts": 1, "type": "login", "user": "u", "ip": "1"}"#,
        r#"{"ts": 2, "type": "login", "user": "u", "ip": "1"}"#,
        r#"{"ts": 3, "type": "login", "user": "v", "ip": "2"}"#,
    ];
    let out = records(text, &lines);
    assert_eq!(
        out,
        vec![
            r#"{"kind":"match","pattern":"storm","key":{"user":"u"},"start":2,"end":2,"events":{"a":[{"ts": 2, "type": "login", "user": "u", "ip": "1"}]},"rule":{"score":80,"level":"high","action":"block","tags":["ato","login"],"version":1},"reads":{"logins(user)":2,"ip in blocked":false}}"#,
            // a pattern that uses none of it keeps today's record exactly
            r#"{"kind":"match","pattern":"plain","key":{},"start":3,"end":3,"events":{"a":[{"ts": 3, "type": "login", "user": "v", "ip": "2"}]}}"#,
        ]
    );
}

/// The sample rules of `patterns/risk/` over their sample stream give the
/// records of `patterns/risk/expected.jsonl` (set `CEPHEID_BLESS=1` to
/// write them again after a deliberate change, and read the diff).
#[test]
fn the_risk_sample_gives_its_expected_records() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../patterns/risk");
    let text = std::fs::read_to_string(format!("{dir}/rules.cep")).unwrap();
    let events = std::fs::read_to_string(format!("{dir}/events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let got = records(&text, &lines).join("\n") + "\n";
    let path = format!("{dir}/expected.jsonl");
    if std::env::var_os("CEPHEID_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(got, expected);
}
