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
