//! Every kind of entry, written and read back byte for byte.

use cepheid_serve::wal::{Entry, Input, Kind, Wal, WalError, WalOptions, WalReader};

use crate::support::{append_wait, decide, frames, raw, read_all, scratch, segments};

fn odd_entries() -> Vec<Entry> {
    let big = format!(r#"{{"blob": "{}", "n": 1}}"#, "x".repeat(1 << 20));
    vec![
        decide("pay", "e-1", r#"{"card":"c1","amount":12.50}"#),
        // Whitespace, escapes, unicode (escaped and not), a duplicate key,
        // numbers written oddly: all kept as received.
        decide(
            "pay",
            "é-2 \"quoted\"\n",
            "{ \"name\" : \"Zoë \\u00e9\\n\\t\\\"\\\\ 😀\" ,\n  \"a\":1.0e3, \"a\": -0.0, \"nested\": {\"x\": [1, null, true]} }",
        ),
        Entry::Event(Input {
            scene: None,
            event_id: "login-1".into(),
            fields: raw(r#"{"user":"u1","ip":"10.0.0.1"}"#),
            degraded: true,
            shed_shadow: true,
            origin: None,
        }),
        Entry::Event(Input {
            scene: Some("signup".into()),
            event_id: "".into(),
            fields: raw("{}"),
            degraded: false,
            shed_shadow: true,
            origin: None,
        }),
        Entry::Rules { text: "pattern p\n  a: x > 1\nemit \"α\"\n".into(), origin: "--watch rules.cep".into() },
        Entry::List { change: raw(r#"{"list":"blocked","add":["c1","c\u00e9"],"remove":[]}"#), origin: None },
        Entry::Tick { time: 1_700_000_000_123 },
        Entry::Tick { time: -5 },
        Entry::Event(Input {
            scene: None,
            event_id: "big".into(),
            fields: raw(&big),
            degraded: false,
            shed_shadow: false,
            origin: None,
        }),
        // A record of an events topic: its place as its origin.
        Entry::Event(Input {
            scene: None,
            event_id: "kafka:events partition 3 offset 17".into(),
            fields: raw(r#"{"type":"login","user":"u2"}"#),
            degraded: false,
            shed_shadow: false,
            origin: Some("kafka:events partition 3 offset 17".into()),
        }),
        // The first request, answered degraded at its deadline.
        Entry::Degraded { request: 1 },
    ]
}

#[test]
fn every_kind_reads_back_byte_for_byte() {
    let dir = scratch("round-trip");
    let entries = odd_entries();
    let (wal, recovered) = Wal::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(
        (
            recovered.next_seq,
            recovered.entries,
            recovered.torn.clone()
        ),
        (1, 0, None)
    );
    let appender = wal.appender();
    for (i, entry) in entries.iter().enumerate() {
        let logged = append_wait(&appender, entry.clone()).unwrap();
        assert_eq!(logged.seq, i as u64 + 1);
    }
    // A reader of the live log sees them; so does one after close.
    let live: Vec<_> = wal.reader(0).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(live.len(), entries.len());
    wal.close().unwrap();
    let read = read_all(&dir);
    assert_eq!(read, live);
    for (i, (got, want)) in read.iter().zip(&entries).enumerate() {
        assert_eq!(got.seq, i as u64 + 1);
        assert_eq!(&got.entry, want);
        assert_eq!(got.entry.kind(), want.kind());
        if let (Some(a), Some(b)) = (got.entry.input(), want.input()) {
            assert_eq!(a.fields.get().as_bytes(), b.fields.get().as_bytes());
        }
    }
    // The payloads are the documented JSON objects.
    let frames = frames(&segments(&dir)[0]);
    assert_eq!(frames.len(), entries.len());
    let first = &frames[0].2;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "decide");
    assert_eq!(first["scene"], "pay");
    assert_eq!(first["event_id"], "e-1");
    assert_eq!(first["degraded"], false);
    assert_eq!(first["shed_shadow"], false);
    assert_eq!(first["fields"]["amount"], 12.5);
    assert!(first["stamp"].is_i64());
    assert_eq!(frames[2].2["degraded"], true);
    assert!(
        frames[2].2.get("scene").is_none(),
        "no scene: the field is left out"
    );
    assert_eq!(frames[4].2["kind"], "rules");
    assert_eq!(frames[4].2["origin"], "--watch rules.cep");
    assert_eq!(frames[5].2["change"]["add"][1], "cé");
    assert_eq!(frames[6].2["time"], 1_700_000_000_123i64);
    let topics = &frames[frames.len() - 2].2;
    assert_eq!(topics["origin"], "kafka:events partition 3 offset 17");
    let last = &frames[frames.len() - 1].2;
    assert_eq!(
        (&last["kind"], &last["request"]),
        (&"degraded".into(), &1.into())
    );
    assert_eq!(
        last.as_object().unwrap().len(),
        4,
        "seq, stamp, kind, request: {last}"
    );
    assert!(frames[2].2.get("origin").is_none(), "no origin: left out");
    // Reopened: everything found, nothing torn.
    let (wal, recovered) = Wal::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(recovered.entries, entries.len() as u64);
    assert_eq!(recovered.next_seq, entries.len() as u64 + 1);
    assert_eq!(recovered.torn, None);
    assert_eq!(recovered.last_stamp, Some(read.last().unwrap().stamp));
    drop(wal);
    let kinds: Vec<Kind> = read.iter().map(|e| e.entry.kind()).collect();
    assert_eq!(
        kinds[..7],
        [
            Kind::Decide,
            Kind::Decide,
            Kind::Event,
            Kind::Event,
            Kind::Rules,
            Kind::List,
            Kind::Tick
        ]
    );
}

#[test]
fn entries_that_cannot_be_logged_are_refused_at_once() {
    let dir = scratch("invalid");
    let (wal, _) = Wal::open(&dir, WalOptions::default()).unwrap();
    let appender = wal.appender();
    let no_scene = Entry::Decide(Input {
        scene: None,
        event_id: "e".into(),
        fields: raw("{}"),
        degraded: false,
        shed_shadow: false,
        origin: None,
    });
    let not_object = Entry::Event(Input {
        scene: None,
        event_id: "e".into(),
        fields: raw("[1, 2]"),
        degraded: false,
        shed_shadow: false,
        origin: None,
    });
    let too_big = Entry::Rules {
        text: "x".repeat(cepheid_serve::wal::MAX_PAYLOAD),
        origin: "test".into(),
    };
    let of_nothing = Entry::Degraded { request: 0 };
    for entry in [no_scene, not_object, too_big, of_nothing] {
        let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = called.clone();
        let result = appender.append(
            entry,
            Box::new(move |_| c.store(true, std::sync::atomic::Ordering::SeqCst)),
        );
        assert!(matches!(result, Err(WalError::Invalid(_))), "{result:?}");
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    }
    // Nothing took a seq.
    assert_eq!(
        append_wait(&appender, Entry::Tick { time: 1 }).unwrap().seq,
        1
    );
    wal.close().unwrap();
    assert_eq!(WalReader::open(&dir, 0).unwrap().count(), 1);
}

#[test]
fn a_second_writer_of_the_same_folder_is_refused() {
    let dir = scratch("locked");
    let (wal, _) = Wal::open(&dir, WalOptions::default()).unwrap();
    let second = Wal::open(&dir, WalOptions::default());
    assert!(matches!(second, Err(WalError::Locked(_))), "{second:?}");
    drop(wal);
    Wal::open(&dir, WalOptions::default()).unwrap();
}
