//! Shadow copies of lists (issue 42, `docs/semantics.md`, "Shadow rules"):
//! a shadow rule's writes go to the list's shadow copy, which the shadow
//! rules read and the live ones never do; every other change of the list
//! reaches both.

use std::time::Duration;

use proptest::prelude::*;

use crate::engine::{Engine, Output, ReloadPolicy};
use crate::record::Record;
use crate::rules::Rules;
use crate::value::Value;

fn engine(text: &str, max_delay: u64) -> Engine<Record> {
    let rules = Rules::parse("t.cep", text).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::with_max_delay(Duration::from_millis(max_delay));
    engine.add(&rules).unwrap();
    engine
}

fn line(id: i64, ts: i64, kind: &str, d: &str) -> String {
    format!(r#"{{"id": {id}, "ts": {ts}, "kind": "{kind}", "d": "{d}"}}"#)
}

fn push(
    e: &mut Engine<Record>,
    id: i64,
    ts: i64,
    kind: &str,
    d: &str,
    out: &mut Vec<Output<Record>>,
) {
    e.push_json(&line(id, ts, kind, d), "ts", out).unwrap();
}

/// Each match's pattern and the `id` of its last event, in output order.
fn hits(out: &[Output<Record>]) -> Vec<(String, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => {
                let last = m.stages.last()?.1.last()?;
                let json: serde_json::Value = serde_json::from_str(last.raw()).unwrap();
                Some((m.pattern.clone(), json["id"].as_i64().unwrap()))
            }
            _ => None,
        })
        .collect()
}

fn of(hits: &[(String, i64)], pattern: &str) -> Vec<i64> {
    (hits.iter())
        .filter(|(p, _)| p == pattern)
        .map(|&(_, id)| id)
        .collect()
}

const RULES: &str = r#"
    list l
    pattern mark {
        shadow
        match a where a: kind == "mark"
        then add a.d to l for 50ms
    }
    pattern unmark {
        shadow
        match a where a: kind == "unmark"
        then remove a.d from l
    }
    pattern shadow_probe { shadow match a where a: kind == "probe" and d in l }
    pattern live_probe { match a where a: kind == "probe" and d in l }
"#;

/// A shadow rule's write is seen by the shadow rules from its time + 1 on
/// (the same rule included), never by the live ones; the live list holds
/// nothing of it.
#[test]
fn a_shadow_rules_write_reaches_the_shadow_rules_only() {
    let mut e = engine(RULES, 0);
    let mut out = Vec::new();
    push(&mut e, 1, 10, "mark", "x", &mut out);
    push(&mut e, 2, 10, "probe", "x", &mut out);
    push(&mut e, 3, 11, "probe", "x", &mut out);
    push(&mut e, 4, 20, "unmark", "x", &mut out);
    push(&mut e, 5, 21, "probe", "x", &mut out);
    push(&mut e, 6, 30, "mark", "y", &mut out);
    push(&mut e, 7, 79, "probe", "y", &mut out);
    push(&mut e, 8, 80, "probe", "y", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    // (y added at 30 for 50ms: seen in [31, 80))
    assert_eq!(of(&hits, "shadow_probe"), vec![3, 7]);
    assert!(of(&hits, "live_probe").is_empty(), "{hits:?}");
    assert_eq!(
        e.list_contains("l", (&Value::from("y")).into()),
        Some(false)
    );
    let stats = e.memory_stats();
    assert_eq!((stats.list_changes, stats.shadow_changes), (0, 3));
    assert_eq!((stats.list_entries, stats.shadow_entries), (0, 0));
}

/// The list's changes reach the copy. Shadow and live rules write as one
/// origin, the rules (`docs/lists.md`, "Origins"): a shadow write changes
/// the copy's rules' hold only, so a shadow remove leaves what the library
/// holds, and hides the live rules' hold until it leaves, reading the
/// other origins' holds meanwhile; another origin's change reaches the
/// copy as the list's and leaves the copy's difference; a live rule's
/// write ends it.
#[test]
fn the_lists_changes_reach_its_shadow_copy() {
    let text = r#"
        list l
        pattern lmark { match a where a: kind == "lmark" then add a.d to l for 200ms }
        pattern lunmark { match a where a: kind == "lunmark" then remove a.d from l }
        pattern mark { shadow match a where a: kind == "mark" then add a.d to l for 50ms }
        pattern unmark { shadow match a where a: kind == "unmark" then remove a.d from l }
        pattern shadow_probe { shadow match a where a: kind == "probe" and d in l }
        pattern live_probe { match a where a: kind == "probe" and d in l }
    "#;
    let mut e = engine(text, 0);
    e.add_to_list("l", "a".into(), 5, None).unwrap();
    let mut out = Vec::new();
    // A shadow remove ends the rules' hold, not the library's.
    push(&mut e, 1, 10, "unmark", "a", &mut out);
    push(&mut e, 2, 11, "probe", "a", &mut out);
    // `b` held by the live rules until 220; a shadow add for 50ms from
    // 30 makes the copy's rules' hold end at 80.
    push(&mut e, 3, 20, "lmark", "b", &mut out);
    push(&mut e, 4, 30, "mark", "b", &mut out);
    push(&mut e, 5, 79, "probe", "b", &mut out);
    push(&mut e, 6, 80, "probe", "b", &mut out);
    // The library holds `b` from 90 to 100: the copy reads its hold.
    e.add_to_list("l", "b".into(), 90, None).unwrap();
    push(&mut e, 7, 90, "probe", "b", &mut out);
    e.remove_from_list("l", "b".into(), 100).unwrap();
    push(&mut e, 8, 100, "probe", "b", &mut out);
    // A live write ends the difference; a shadow remove starts another,
    // which the live remove ends.
    push(&mut e, 9, 110, "lmark", "b", &mut out);
    push(&mut e, 10, 111, "probe", "b", &mut out);
    push(&mut e, 11, 120, "unmark", "b", &mut out);
    push(&mut e, 12, 121, "probe", "b", &mut out);
    push(&mut e, 13, 130, "lunmark", "b", &mut out);
    push(&mut e, 14, 131, "probe", "b", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    assert_eq!(of(&hits, "shadow_probe"), vec![2, 5, 7, 10]);
    assert_eq!(of(&hits, "live_probe"), vec![2, 5, 6, 7, 8, 10, 12]);
}

/// A `prefixes` and a `cidr` list: the copy's entries are probed at
/// their own lengths too, and an entry of the list (the live rules') it
/// removed is hidden at its length only.
#[test]
fn a_shadow_copy_of_prefixes_and_networks_matches_as_the_list_would() {
    let text = r#"
        list bins of prefixes
        list nets of cidr
        pattern live_bin_add { match a where a: kind == "lbin" then add a.d to bins }
        pattern add_bin { shadow match a where a: kind == "bin" then add a.d to bins }
        pattern drop_bin { shadow match a where a: kind == "nobin" then remove a.d from bins }
        pattern add_net { shadow match a where a: kind == "net" then add a.d to nets }
        pattern shadow_bin { shadow match a where a: kind == "card" and d in bins }
        pattern live_bin { match a where a: kind == "card" and d in bins }
        pattern shadow_net { shadow match a where a: kind == "ip" and d in nets }
        pattern live_net { match a where a: kind == "ip" and d in nets }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    // (the live rules hold them: a shadow remove ends the rules' hold)
    push(&mut e, 0, 5, "lbin", "41", &mut out);
    push(&mut e, 0, 5, "lbin", "4111", &mut out);
    push(&mut e, 1, 10, "bin", "55", &mut out);
    push(&mut e, 2, 10, "nobin", "41", &mut out);
    push(&mut e, 3, 10, "net", "10.0.0.0/8", &mut out);
    push(&mut e, 4, 20, "card", "5512", &mut out);
    push(&mut e, 5, 20, "card", "4199", &mut out);
    push(&mut e, 6, 20, "card", "4111222", &mut out);
    push(&mut e, 7, 20, "ip", "10.1.2.3", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    assert_eq!(of(&hits, "shadow_bin"), vec![4, 6]);
    assert_eq!(of(&hits, "live_bin"), vec![5, 6]);
    assert_eq!(of(&hits, "shadow_net"), vec![7]);
    assert!(of(&hits, "live_net").is_empty());
}

/// A live and a shadow rule with one condition that reads a list: the
/// condition's value is not shared between them (each reads its view).
#[test]
fn a_live_and_a_shadow_rule_with_one_condition_read_their_own_lists() {
    let text = r#"
        list l
        pattern mark { shadow match a where a: kind == "mark" then add a.d to l }
        pattern s1 { shadow match a where a: d in l }
        pattern l1 { match a where a: d in l }
        pattern s2 { shadow partition by d match a where a: d in l }
        pattern l2 { partition by d match a where a: d in l }
    "#;
    let mut e = engine(text, 0);
    let mut out = Vec::new();
    push(&mut e, 1, 10, "mark", "x", &mut out);
    push(&mut e, 2, 11, "probe", "x", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    assert_eq!(of(&hits, "s1"), vec![2]);
    assert_eq!(of(&hits, "s2"), vec![2]);
    assert!(of(&hits, "l1").is_empty() && of(&hits, "l2").is_empty());
}

/// Promotion (`docs/semantics.md`, "Shadow rules"): the promoted rule's
/// writes from the switch point on go to the list; what it wrote in
/// shadow stays in the shadow copy, read by the shadow rules still there
/// (and by shadow rules added later) until it leaves, never moved to
/// the list. A change that removes the last shadow writer keeps the copy.
#[test]
fn a_promoted_rule_writes_the_list_and_its_shadow_writes_stay_in_the_copy() {
    let mut e = engine(RULES, 0);
    let mut out = Vec::new();
    push(&mut e, 1, 10, "mark", "x", &mut out);
    push(&mut e, 2, 20, "probe", "x", &mut out);
    e.watermark(20, &mut out);
    // `mark` promoted (and `unmark` removed: `mark` was the last shadow
    // writer of `l`).
    let promoted = RULES.replacen(
        "        shadow\n        match a where a: kind == \"mark\"",
        "        match a where a: kind == \"mark\"",
        1,
    );
    let promoted = promoted[..promoted.find("    pattern unmark").unwrap()].to_string()
        + &promoted[promoted.find("    pattern shadow_probe").unwrap()..];
    let changes = e
        .set_rules(
            &Rules::parse("t.cep", &promoted).unwrap(),
            ReloadPolicy::Restart,
            &mut out,
        )
        .unwrap();
    assert_eq!(
        changes.to_string(),
        "mark: promoted (its partial matches kept; every record it emits from here on goes to the output, one whose last event came before included)\nshadow_probe: unchanged\nlive_probe: unchanged\nunmark: removed\n"
    );
    push(&mut e, 3, 30, "mark", "y", &mut out);
    push(&mut e, 4, 40, "probe", "x", &mut out);
    push(&mut e, 5, 40, "probe", "y", &mut out);
    // x's shadow entry leaves at 60 (10 + 50ms).
    push(&mut e, 6, 60, "probe", "x", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    assert_eq!(of(&hits, "shadow_probe"), vec![2, 4, 5]);
    assert_eq!(of(&hits, "live_probe"), vec![5]);
    assert_eq!(
        e.list_contains("l", (&Value::from("x")).into()),
        Some(false)
    );
}

/// The reverse: a live rule marked `shadow` writes to the copy from the
/// switch point on; what it wrote live stays in the list.
#[test]
fn a_rule_marked_shadow_writes_the_copy_and_its_live_writes_stay() {
    let live = RULES.replacen(
        "        shadow\n        match a where a: kind == \"mark\"",
        "        match a where a: kind == \"mark\"",
        1,
    );
    let mut e = engine(&live, 0);
    let mut out = Vec::new();
    push(&mut e, 1, 10, "mark", "x", &mut out);
    e.watermark(20, &mut out);
    let changes = e
        .set_rules(
            &Rules::parse("t.cep", RULES).unwrap(),
            ReloadPolicy::Restart,
            &mut out,
        )
        .unwrap();
    assert!(changes.to_string().contains("mark: shadowed"), "{changes}");
    push(&mut e, 2, 30, "mark", "y", &mut out);
    push(&mut e, 3, 40, "probe", "x", &mut out);
    push(&mut e, 4, 40, "probe", "y", &mut out);
    e.finish(&mut out);
    let hits = hits(&out);
    assert_eq!(of(&hits, "shadow_probe"), vec![3, 4]);
    assert_eq!(of(&hits, "live_probe"), vec![3]);
}

/// A snapshot taken while shadow entries are held and shadow writes wait
/// for their time restores them: the run goes on with the same records.
#[test]
fn a_snapshot_keeps_the_shadow_copies_and_the_shadow_writes_waiting() {
    let events: Vec<(i64, i64, &str, &str)> = vec![
        (1, 10, "mark", "x"),
        (2, 10, "probe", "x"),
        (3, 12, "probe", "x"),
        (4, 20, "mark", "y"),
        (5, 20, "unmark", "x"),
        (6, 21, "probe", "x"),
        (7, 21, "probe", "y"),
        (8, 40, "probe", "y"),
        (9, 70, "probe", "y"),
    ];
    let run = |cut: Option<(usize, bool)>| {
        let mut e = engine(RULES, 0);
        e.add_to_list("l", "y".into(), 15, Some(Duration::from_millis(100)))
            .unwrap();
        let mut out = Vec::new();
        for (i, &(id, ts, kind, d)) in events.iter().enumerate() {
            if let Some((_, own)) = cut.filter(|&(at, _)| at == i) {
                if i == 3 {
                    // (`mark` matched at 10, the event at 12 waits: its
                    // write waits for 11)
                    assert_eq!(hits(&out), vec![("mark".to_string(), 1)]);
                    assert_eq!(e.memory_stats().shadow_changes, 0);
                }
                if i == 5 {
                    // (`x` held in the copy)
                    assert_eq!(e.memory_stats().shadow_entries, 1);
                }
                let mut bytes = Vec::new();
                e.snapshot(&mut bytes).unwrap();
                let mut fresh: Engine<Record> = Engine::with_max_delay(Duration::from_millis(0));
                if own {
                    fresh.add(&Rules::parse("t.cep", RULES).unwrap()).unwrap();
                    fresh.restore(&bytes[..]).unwrap();
                } else {
                    fresh.restore_rules(&bytes[..]).unwrap();
                }
                e = fresh;
            }
            push(&mut e, id, ts, kind, d, &mut out);
        }
        e.finish(&mut out);
        out.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>()
    };
    let whole = run(None);
    assert!(
        whole.iter().any(|o| o.contains("shadow_probe")),
        "{whole:?}"
    );
    for at in 1..events.len() {
        assert_eq!(run(Some((at, true))), whole, "cut at {at}, own rules");
        assert_eq!(run(Some((at, false))), whole, "cut at {at}, its rules");
    }
}

/// Writes handed out (a dataflow worker's engine) carry their shadow
/// mark: made by another engine, they reach its shadow copy only.
#[test]
fn shadow_writes_handed_out_reach_the_other_engines_shadow_copy() {
    let mut writer = engine(RULES, 0);
    writer.hand_out_list_writes();
    let mut reader = engine(RULES, 0);
    let (mut wout, mut rout) = (Vec::new(), Vec::new());
    push(&mut writer, 1, 10, "mark", "x", &mut wout);
    writer.watermark(10, &mut wout);
    let mut taken = Vec::new();
    writer.take_list_writes(&mut taken);
    assert_eq!(taken.len(), 1);
    assert!(taken[0].is_shadow() && taken[0].is_add() && taken[0].at() == 11);
    assert_eq!(taken[0].expires(), Some(60));
    reader.make_list_writes(&taken);
    push(&mut reader, 2, 11, "probe", "x", &mut rout);
    reader.finish(&mut rout);
    assert_eq!(hits(&rout), vec![("shadow_probe".to_string(), 2)]);
    assert_eq!(
        reader.list_contains("l", (&Value::from("x")).into()),
        Some(false)
    );
}

/// The rules of the differential test: live and shadow writers of `l`
/// (adds, removes, a deadline's write, a rule reading what it writes),
/// live and shadow readers; no live writer reads a list a shadow rule
/// writes, so the shadow rules read what they would if they were live.
const MIXED: &str = r#"
    list l for 40ms
    pattern live_add { partition by d match a where a: kind == "la" then add a.d to l for 25ms }
    pattern live_drop { match a where a: kind == "lr" then remove a.d from l }
    pattern sh_add { shadow match a where a: kind == "sa" then add a.d to l for 15ms }
    pattern sh_drop { shadow partition by d match a where a: kind == "sr" then remove a.d from l }
    pattern sh_quiet {
        shadow
        partition by d
        within 10ms
        match a not followed by b
        where
            a: kind == "sq"
            b: kind == "sq"
        then add a.d to l
    }
    pattern sh_self { shadow match a where a: kind == "ss" and not (d in l) then add a.d to l for 30ms }
    pattern live_read { match a where a: kind == "p" and d in l }
    pattern sh_read { shadow partition by d match a where a: kind == "p" and d in l }
"#;

const SHADOW_NAMES: [&str; 5] = ["sh_add", "sh_drop", "sh_quiet", "sh_self", "sh_read"];

/// An event (time, kind, value) or a change through the library (at
/// time, add or remove, value).
#[derive(Clone, Debug)]
enum Step {
    Event(i64, &'static str, &'static str),
    Change(i64, bool, &'static str),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let kinds = prop::sample::select(vec!["la", "lr", "sa", "sr", "sq", "ss", "p", "p", "p"]);
    let values = prop::sample::select(vec!["x", "y", "z"]);
    prop_oneof![
        8 => (0i64..6, kinds, values.clone()).prop_map(|(dt, k, v)| Step::Event(dt, k, v)),
        1 => (0i64..30, any::<bool>(), values).prop_map(|(dt, add, v)| Step::Change(dt, add, v)),
    ]
}

/// The outputs (debug text, by pattern) of `text` over `steps`, times
/// made from their steps (out of order by up to 3 ms, `--max-delay 3ms`),
/// with a snapshot and restore before step `cut`.
fn outputs(text: &str, steps: &[Step], cut: Option<usize>) -> Vec<(String, String)> {
    let mut e = engine(text, 3);
    let mut out = Vec::new();
    let mut now = 0i64;
    for (i, step) in steps.iter().enumerate() {
        if cut == Some(i) {
            let mut bytes = Vec::new();
            e.snapshot(&mut bytes).unwrap();
            let mut fresh: Engine<Record> = Engine::with_max_delay(Duration::from_millis(3));
            fresh.restore_rules(&bytes[..]).unwrap();
            e = fresh;
        }
        match *step {
            Step::Event(dt, kind, d) => {
                now += dt;
                // (every fourth event a little late, within the delay)
                let ts = if i % 4 == 3 { (now - 2).max(0) } else { now };
                push(&mut e, i as i64, ts, kind, d, &mut out);
            }
            Step::Change(dt, true, d) => e
                .add_to_list("l", d.into(), now + dt, Some(Duration::from_millis(20)))
                .unwrap(),
            Step::Change(dt, false, d) => e.remove_from_list("l", d.into(), now + dt).unwrap(),
        }
    }
    e.finish(&mut out);
    out.iter()
        .filter_map(|o| match o {
            Output::Match(m) => Some((m.pattern.clone(), format!("{o:?}"))),
            Output::Timeout { partial, .. } => Some((partial.pattern.clone(), format!("{o:?}"))),
            _ => None,
        })
        .collect()
}

fn only(outputs: &[(String, String)], shadow: bool) -> Vec<String> {
    (outputs.iter())
        .filter(|(p, _)| SHADOW_NAMES.contains(&p.as_str()) == shadow)
        .map(|(_, o)| o.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over random streams with changes through the library: the live
    /// rules' outputs are those of the rules without the shadow ones; the
    /// shadow rules' outputs are theirs in a run where they are live
    /// (the mark taken away); a snapshot and restore anywhere changes
    /// nothing.
    #[test]
    fn shadow_copies_equal_the_lists_the_shadow_rules_would_write_live(
        steps in prop::collection::vec(step_strategy(), 1..120),
        cut in 0usize..120,
    ) {
        let mixed = outputs(MIXED, &steps, None);
        let without: String = MIXED
            .split("    pattern ")
            .filter(|p| !p.contains("shadow"))
            .collect::<Vec<_>>()
            .join("    pattern ");
        let live = outputs(&without, &steps, None);
        prop_assert_eq!(only(&mixed, false), only(&live, false));
        let all_live = MIXED.replace("shadow ", "").replace("        shadow\n", "");
        let promoted = outputs(&all_live, &steps, None);
        prop_assert_eq!(only(&mixed, true), only(&promoted, true));
        let resumed = outputs(MIXED, &steps, Some(cut.min(steps.len())));
        prop_assert_eq!(resumed, mixed);
    }
}
