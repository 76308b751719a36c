//! What the public types promise about threads and errors, checked by the
//! compiler: an engine moves to a worker thread when its events can, errors
//! go through `?` into `Box<dyn Error + Send + Sync>`.

use cepheid_engine::{Engine, Error, Match, Output, Pattern, Record, Rules, Value};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn std_error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn engines_and_patterns_cross_threads() {
    send::<Engine<Record>>();
    sync::<Engine<Record>>();
    send::<Rules>();
    sync::<Rules>();
    send::<Pattern<Record>>();
    sync::<Pattern<Record>>();
    send::<Match<Record>>();
    send::<Output<Record>>();
    send::<Value>();
    sync::<Value>();
}

#[test]
fn errors_are_std_errors() {
    std_error::<Error>();
    // Every layer's own errors.
    std_error::<cepheid_core::event::FieldError>();
    std_error::<cepheid_core::time::DurationError>();
    std_error::<cepheid_syntax::Diagnostics>();
    std_error::<cepheid_syntax::NoSource>();
    std_error::<cepheid_automata::nfa::CompileError>();
    std_error::<cepheid_runtime::jsonl::WriteError>();
    std_error::<cepheid_runtime::Error>();
    std_error::<cepheid_runtime::Conflict>();
    std_error::<cepheid_runtime::SinkError>();
    std_error::<cepheid_runtime::SourceError>();
    std_error::<cepheid_lab::Error>();
    #[cfg(feature = "workers")]
    std_error::<cepheid_dataflow::run::Error>();
    #[cfg(feature = "kafka")]
    std_error::<cepheid_kafka::KafkaError>();
    #[cfg(feature = "kafka")]
    std_error::<cepheid_kafka::OptionsError>();
    #[cfg(feature = "metrics")]
    std_error::<cepheid_monitor::MonitorError>();
}

/// An error in pattern text holds what went wrong as data: its `Display`
/// is one line, `path:line:column: message`, whatever the features of
/// the build; the source line with the offending text underlined is
/// drawn only when `render` is asked (the command asks).
#[test]
fn a_pattern_error_is_one_line_and_renders_its_source_on_demand() {
    let err = Rules::parse("t.cep", "pattern p {\n  match a b\n}").unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("t.cep:2:"), "{shown}");
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(err.excerpt().is_some());
    let drawn = err.render();
    assert!(drawn.starts_with("error: t.cep:2:"), "{drawn}");
    assert!(drawn.contains("match a b"), "{drawn}");
    assert!(drawn.contains('^'), "{drawn}");
    // Two errors: a line each, and each drawn.
    let two =
        Rules::parse("t.cep", "pattern p { match a b }\npattern q { match c d }").unwrap_err();
    assert_eq!(two.errors().len(), 2, "{two}");
    assert_eq!(two.to_string().lines().count(), 2, "{two}");
    assert_eq!(two.render().matches("error: t.cep:").count(), 2);
}

/// What `?` in a `main` prints of each layer's errors (their `Debug`) is
/// the message and its causes, not a struct dump.
#[test]
fn question_mark_in_main_prints_messages_not_structs() {
    let err = Rules::parse("t.cep", "pattern p { match a b }").unwrap_err();
    let debug = format!("{err:?}");
    assert!(debug.starts_with("t.cep:1:"), "{debug}");
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    let runtime = cepheid_runtime::Error::Io {
        doing: cepheid_runtime::Doing::Read,
        path: "events.jsonl".into(),
        source: io,
    };
    let debug = format!("{runtime:?}");
    assert!(debug.starts_with(&runtime.to_string()), "{debug}");
    assert!(!debug.contains("Io {"), "{debug}");
    assert!(debug.contains("no such file"), "{debug}");
    let parse = cepheid_syntax::parse("pattern p { match a b }").unwrap_err();
    assert_eq!(format!("{parse:?}"), parse.to_string());
}

#[test]
fn an_engine_runs_on_another_thread() {
    let rules = Rules::parse("t.cep", "pattern p { match a where a: n > 1 }").unwrap();
    let mut engine: Engine<Record> = Engine::new();
    engine.add(&rules).unwrap();
    let handle = std::thread::spawn(move || engine.stats().events);
    assert_eq!(handle.join().unwrap(), 0);
}

#[test]
fn question_mark_works_from_main() {
    fn main_like() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let rules = Rules::parse("t.cep", "pattern p { match a b }")?;
        let _ = rules;
        Ok(())
    }
    let err = main_like().unwrap_err();
    assert!(err.to_string().contains("t.cep:1:"), "{err}");
}

fn debug<T: std::fmt::Debug>() {}
fn clone<T: Clone>() {}

#[test]
fn engines_are_debug_and_rules_clone() {
    debug::<Engine<Record>>();
    debug::<Rules>();
    clone::<Rules>();
    clone::<Pattern<Record>>();
}

#[test]
fn an_engine_shows_a_summary() {
    let rules = Rules::parse(
        "t.cep",
        "pattern ab { partition by user match a followed by b where a: n > 1 b: n > 2 }\n\
         pattern c { match c where c: n > 100 }",
    )
    .unwrap();
    let mut engine: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_millis(5))
        .max_runs_per_key(7)
        .max_live_runs(8)
        .max_waiting_events(9);
    engine.add(&rules).unwrap();
    let mut decoder = cepheid_decode::Decoder::new(
        cepheid_decode::Format::JsonLines,
        "ts",
        engine.fields().clone(),
    );
    let mut out: Vec<Output<Record>> = Vec::new();
    for line in [
        r#"{"ts":1,"user":"u","n":2}"#,
        r#"{"ts":10,"user":"v","n":2}"#,
    ] {
        if let cepheid_decode::Item::Event(ts, r) = decoder.decode(line.as_bytes()).unwrap() {
            engine.push(ts, r, &mut out);
        }
    }
    assert_eq!(
        format!("{engine:?}"),
        "Engine { patterns: [\"ab\", \"c\"], live_keys: 1, live_runs: 1, waiting_events: 1, \
         stored_events: 1, watermark: Some(4), max_delay_ms: 5, max_runs_per_key: 7, \
         max_live_runs: 8, max_waiting_events: 9 }"
    );
}

#[test]
fn a_cloned_rule_set_is_the_same_and_independent() {
    let rules = Rules::parse("t.cep", "pattern p { match a where a: n > 1 }").unwrap();
    let copy = rules.clone();
    drop(rules);
    assert_eq!(copy.names().collect::<Vec<_>>(), ["p"]);
    let mut one: Engine<Record> = Engine::new();
    let mut two: Engine<Record> = Engine::new();
    one.add(&copy).unwrap();
    two.add(&copy.clone()).unwrap();
    assert_eq!(one.patterns().count(), two.patterns().count());
}
