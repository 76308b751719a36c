//! The tests of `lists.rs`: reading files, values written two ways,
//! diffs, and one engine comparing a new read with its list.

use super::*;

fn entries(name: &str, text: &str) -> (FileEntries, Vec<String>) {
    entries_of(name, ListKind::Values, text)
}

fn entries_of(name: &str, kind: ListKind, text: &str) -> (FileEntries, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("cepheid-lists-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let mut said = Vec::new();
    let file = ListFile {
        list: "l".to_string(),
        path,
    };
    let read = read(&file, kind, &mut |n| said.push(n.as_str().to_string())).unwrap();
    (read, said)
}

fn texts(e: &FileEntries) -> Vec<(&str, Option<Timestamp>)> {
    e.entries.iter().collect()
}

#[test]
fn a_csv_cell_is_typed_as_the_json_value_its_text_would_be() {
    let (e, said) = entries(
        "a.csv",
        "42\n00042\n+7\ntrue\n1.5\n10.0.0.1\n\"a,b\",1970-01-01T00:00:01Z\n18446744073709551615\n",
    );
    assert!(said.is_empty(), "{said:?}");
    assert_eq!(
        texts(&e),
        vec![
            ("\"+7\"", None),
            ("\"00042\"", None),
            ("\"10.0.0.1\"", None),
            // (an integer over i64's is a text, as an event's field is)
            ("\"18446744073709551615\"", None),
            ("\"a,b\"", Some(1000)),
            ("1.5", None),
            ("42", None),
            ("true", None),
        ]
    );
}

#[test]
fn json_lines_take_values_and_objects_and_say_every_other_line_with_its_number() {
    let (e, said) = entries(
        "a.jsonl",
        "\"x\"\n{\"value\": 3, \"expires\": 9}\n\n# c\n{\"value\": 1, \"other\": 2}\n[1]\n{\"expires\": 3}\n{\"value\": 2, \"expires\": true}\n",
    );
    assert_eq!(texts(&e), vec![("\"x\"", None), ("3", Some(9))]);
    let lines: Vec<&str> = said
        .iter()
        .map(|s| {
            s.split(": list")
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(lines, vec!["5", "6", "7", "8"], "{said:?}");
}

#[test]
fn a_value_written_two_ways_is_one_entry_its_last_lines_and_both_lines_are_said() {
    let (e, said) = entries(
        "twice.jsonl",
        "{\"value\": 3.0, \"expires\": 5}\n\"x\"\n3\n{\"value\": \"x\", \"expires\": 9}\n",
    );
    assert_eq!(texts(&e), vec![("\"x\"", Some(9)), ("3", None)]);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0]
            .contains("twice.jsonl:3: list `l`: 3 is given on line 1 too: one entry, this line's"),
        "{said:?}"
    );
    assert!(
        said[1].contains(":4: list `l`: \"x\" is given on line 2 too"),
        "{said:?}"
    );
    // A list of prefixes holds a number as its digits.
    let (e, said) = entries_of(
        "bins.jsonl",
        ListKind::Prefixes,
        "55\n{\"value\": \"55\", \"expires\": 7}\n411111\n",
    );
    assert_eq!(texts(&e), vec![("\"411111\"", None), ("\"55\"", Some(7))]);
    assert!(said[0].contains("bins.jsonl:2:"), "{said:?}");
    // A network written two ways (its address not masked, its mask
    // written out; IPv6 in capitals, zeros written out) is one entry.
    let (e, said) = entries_of(
        "nets.jsonl",
        ListKind::Cidr,
        "\"10.0.0.0/8\"\n{\"value\": \"10.1.2.3/8\", \"expires\": 7}\n\"192.168.1.7\"\n\"2001:DB8:0::/32\"\n\"192.168.1.7/32\"\n\"2001:db8::/32\"\n",
    );
    assert_eq!(
        texts(&e),
        vec![
            ("\"10.0.0.0/8\"", Some(7)),
            ("\"192.168.1.7\"", None),
            ("\"2001:db8::/32\"", None),
        ]
    );
    assert_eq!(said.len(), 3, "{said:?}");
    for (line, first, value) in [
        (2, 1, "\"10.0.0.0/8\""),
        (5, 3, "\"192.168.1.7\""),
        (6, 4, "\"2001:db8::/32\""),
    ] {
        let text = format!("nets.jsonl:{line}: list `l`: {value} is given on line {first} too");
        assert!(said.iter().any(|s| s.contains(&text)), "{text}: {said:?}");
    }
    // CSV alike; a text that is no network is left as it is (the list
    // refuses it).
    let (e, said) = entries_of(
        "nets.csv",
        ListKind::Cidr,
        "10.1.2.3/8,9\n10.0.0.0/8\nnope\n",
    );
    assert_eq!(
        texts(&e),
        vec![("\"10.0.0.0/8\"", None), ("\"nope\"", None)]
    );
    assert!(
        said[0].contains("nets.csv:2: list `l`: \"10.0.0.0/8\" is given on line 1 too"),
        "{said:?}"
    );
    // In a list of values, 55 and "55" are two entries.
    let (e, said) = entries("two.jsonl", "55\n\"55\"\n");
    assert_eq!(texts(&e), vec![("\"55\"", None), ("55", None)]);
    assert!(said.is_empty(), "{said:?}");
}

#[test]
fn more_than_ten_malformed_lines_are_counted_after_the_tenth() {
    let (e, said) = entries("m.jsonl", &"{\n".repeat(25));
    assert!(e.entries.is_empty());
    assert_eq!(said.len(), 11, "{said:?}");
    assert!(
        said[10]
            .trim_end()
            .ends_with("15 more malformed lines left out"),
        "{said:?}"
    );
}

#[test]
fn a_diff_removes_what_is_gone_then_adds_what_is_new_or_expires_otherwise() {
    let before: Entries = [
        ("\"a\"".to_string(), None),
        ("\"b\"".to_string(), Some(5)),
        ("\"c\"".to_string(), None),
    ]
    .into_iter()
    .collect();
    let now = FileEntries {
        list: "l".to_string(),
        path: PathBuf::new(),
        entries: [
            ("\"a\"".to_string(), None),
            ("\"b\"".to_string(), Some(7)),
            ("4".to_string(), None),
        ]
        .into_iter()
        .collect(),
    };
    assert_eq!(
        diff(&before, &now),
        vec![
            Edit::Remove("c".into()),
            Edit::Add("b".into(), Some(7)),
            Edit::Add(Value::Int(4), Some(Timestamp::MAX)),
        ]
    );
    assert_eq!(describe(&diff(&before, &now)), "2 added, 1 removed");
}

/// One engine keeps nothing of what a file gave: a new read is
/// compared with the file's holds in the list, its changes scheduled
/// for later times counted, the holds of other origins left alone, an
/// entry that expired and was swept not added again.
#[test]
fn one_engine_compares_a_new_read_with_what_the_file_holds_in_the_list() {
    let rules =
        cepheid_engine::Rules::parse("r.cep", "list l\npattern p { match a where a: v in l }")
            .unwrap();
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules).unwrap();
    let dir = std::env::temp_dir().join(format!("cepheid-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = ListFile {
        list: "l".to_string(),
        path: dir.join("l.jsonl"),
    };
    let write = |text: &str| std::fs::write(&file.path, text).unwrap();
    let refresh_at = |engine: &mut Engine<Record>, at, when| {
        let (mut state, mut said) = (Vec::new(), Vec::new());
        let mut say = |n: Notice| said.push(n.as_str().to_string());
        refresh(
            std::slice::from_ref(&file),
            engine,
            &mut state,
            at,
            when,
            &mut say,
        )
        .unwrap();
        assert!(state.is_empty(), "one engine keeps nothing: {state:?}");
        said
    };
    let changed = |counts: &str| {
        let path = file.path.display();
        vec![format!(
            "cepheid: list `l`: {path} changed: {counts}, from event time 1000\n"
        )]
    };
    let held = |engine: &Engine<Record>| {
        let mut held = Vec::new();
        let mut visit = |v: ValueRef<'_>, e| held.push((held_text(&v.to_owned()), e));
        engine
            .list_held_by("l", &file.origin(), &mut visit)
            .unwrap();
        held.sort();
        held
    };
    write("\"a\"\n3.0\n{\"value\": \"old\", \"expires\": 50}\n");
    refresh_at(&mut engine, Timestamp::MIN, When::Start);
    // (the rules' own hold of `a` is not the file's)
    engine
        .add_to_list_by(&EntryOrigin::Rules, "l", "a".into(), Timestamp::MIN, None)
        .unwrap();
    let mut out: Vec<cepheid_engine::Output<Record>> = Vec::new();
    engine
        .push_json(r#"{"ts": 100, "v": "x"}"#, "ts", &mut out)
        .unwrap();
    engine.watermark(100, &mut out);
    assert_eq!(engine.lists_time(), 100);
    // Written again: `a` dropped, `3` kept (as `3`), `b` anew, `old`
    // long expired: the change is scheduled for event time 1000.
    write("3\n\"b\"\n{\"value\": \"old\", \"expires\": 50}\n");
    let said = refresh_at(&mut engine, 1000, When::Changed);
    assert_eq!(said, changed("1 added, 1 removed"));
    assert_eq!(
        held(&engine),
        [("\"b\"".to_string(), None), ("3".to_string(), None)]
    );
    // Written again before event time reaches 1000: compared with the
    // change scheduled, not with the list of now.
    write("3\n");
    let said = refresh_at(&mut engine, 1000, When::Changed);
    assert_eq!(said, changed("0 added, 1 removed"));
    engine
        .push_json(r#"{"ts": 2000, "v": "a"}"#, "ts", &mut out)
        .unwrap();
    engine
        .push_json(r#"{"ts": 2001, "v": "b"}"#, "ts", &mut out)
        .unwrap();
    engine.finish(&mut out);
    assert_eq!(held(&engine), [("3".to_string(), None)]);
    // `a` is still the rules': the event of `a` matches, that of `b`
    // does not.
    let matched = (out.iter())
        .filter(|o| matches!(o, cepheid_engine::Output::Match(_)))
        .count();
    assert_eq!(matched, 1, "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
