//! `cepheid why RULES KEY --events FILE|wal:DIR`: for one key, what each
//! pattern did with its events, and why it did not fire
//! (`docs/rule-lab.md`; the lab's `cepheid_lab::why`): its arguments, the
//! report printed; over a service's log, the log read here and handed to
//! the lab's trace as the service's run took it.

use std::path::PathBuf;

use crate::EXIT_OK;

/// Arguments of `why`.
#[derive(clap::Args)]
pub struct Args {
    /// The rule set: a `.cep` file or a folder.
    #[arg(value_name = "RULES")]
    rules: PathBuf,
    /// The key: its value (`u-7`, `42`), `field=value,...`, or a JSON
    /// object of the key's fields (`{"user_id": "u-7"}`).
    #[arg(
        value_name = "KEY",
        allow_hyphen_values = true,
        required_unless_present = "event"
    )]
    key: Option<String>,
    /// Instead of a key, one event: how each scene it entered came to its
    /// outcome, rule by rule. Its id as its decisions name it: its scene's
    /// `id` field (`p4`), or its position (`events.jsonl:12`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["key", "from", "to", "patterns", "no_events", "max_runs_per_key", "max_live_runs"])]
    event: Option<String>,
    #[command(flatten)]
    events: crate::lab::Events,
    /// One JSON document instead of the text.
    #[arg(long)]
    json: bool,
    /// Keep the events' values out of the output: times, stages and
    /// conditions only.
    #[arg(long)]
    no_events: bool,
    /// As `run --max-runs-per-key`.
    #[arg(long, value_name = "N")]
    max_runs_per_key: Option<usize>,
    /// As `run --max-live-runs`.
    #[arg(long, value_name = "N")]
    max_live_runs: Option<usize>,
    /// Show only what happened from this time on (RFC 3339, or
    /// milliseconds since the epoch): the rules still run over every
    /// event, the events keep their numbers.
    #[arg(long, value_name = "TIME", value_parser = cepheid_lab::why::parse_time, allow_hyphen_values = true)]
    from: Option<i64>,
    /// Show only what happened up to this time (RFC 3339, or
    /// milliseconds since the epoch), this time included.
    #[arg(long, value_name = "TIME", value_parser = cepheid_lab::why::parse_time, allow_hyphen_values = true)]
    to: Option<i64>,
    /// Show only this pattern (repeatable).
    #[arg(long = "pattern", value_name = "NAME")]
    patterns: Vec<String>,
}

/// Runs `why` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    if let Some(dir) = args.events.wal() {
        return over_log(args, &dir);
    }
    if let Some(status) = args.events.checkpoint_not_taken() {
        return status;
    }
    if let Some(event) = &args.event {
        let options =
            cepheid_lab::why::event::Options::new(args.rules.clone(), event, args.events.lab());
        return match cepheid_lab::why::event::run(&options) {
            Ok(why) if args.json => crate::lab::print(&why.json(), true, EXIT_OK),
            Ok(why) => crate::lab::print(&why.text(), false, EXIT_OK),
            Err(e) => crate::lab::failed(&e),
        };
    }
    let key = args.key.clone().unwrap_or_default();
    let mut options = cepheid_lab::why::Options::new(args.rules.clone(), key, args.events.lab());
    options.no_events = args.no_events;
    options.max_runs_per_key = args.max_runs_per_key;
    options.max_live_runs = args.max_live_runs;
    options.from = args.from;
    options.to = args.to;
    options.patterns.clone_from(&args.patterns);
    let why = match cepheid_lab::why::run(&options) {
        Ok(why) => why,
        Err(e) => return crate::lab::failed(&e),
    };
    match args.json {
        true => crate::lab::print(&why.json(), true, EXIT_OK),
        false => crate::lab::print(&why.text(), false, EXIT_OK),
    }
}

/// `why RULES --event ID --events wal:DIR`: how a service's request came
/// to its decision (`docs/serve.md`, "Why, over the log"). The log is
/// read again as `backtest --events wal:DIR` reads it (its own rules
/// first, its changes of rules where they were logged), the decision
/// records kept; each decision request of event id `ID` is told against
/// the scenes of the rules in force when it was logged, after what the
/// log says of it (its entry, the answer's version, an answer degraded
/// at admission, shadow rules shed).
///
/// Each logged decision request makes one decision record, in the log's
/// order (a request enters the scene it names and no other, and is
/// decided at once): the request's record is found by its place among
/// them, whatever its scene's `id` field names it, and checked (the
/// number of records, the scene).
#[cfg(feature = "serve")]
fn over_log(args: &Args, dir: &std::path::Path) -> u8 {
    use crate::{EXIT_IO, EXIT_USAGE};
    use cepheid_serve::wal::{Entry, WalReader};
    if let Some(flag) = args.events.not_for_wal() {
        say!(
            "error: {flag}: a service's log (wal:{}) is read as the service took it, on one engine, with its own rules and lists",
            dir.display()
        );
        return EXIT_USAGE;
    }
    if args.events.start_checkpoint().is_some() {
        // (a request after the checkpoint is told against the rules in
        // force at its entry: the log's, which may have been released
        // before it, and the checkpoint's snapshot holds no text of them)
        say!(
            "error: --from-checkpoint: why reads a service's log (wal:{}) from its first entry kept; `backtest --events wal:DIR --from-checkpoint DIR` replays it from a checkpoint",
            dir.display()
        );
        return EXIT_USAGE;
    }
    let Some(event) = &args.event else {
        return key_over_log(args, dir);
    };
    let log = format!("wal:{}", dir.display());
    // (the log read once first: the requests of the event, and the rules
    // in force at each)
    struct Asked {
        seq: u64,
        stamp: i64,
        /// Its place among the log's decision requests.
        nth: usize,
        scene: String,
        degraded: bool,
        /// Answered degraded at its deadline, before the engine took it.
        late: bool,
        shed_shadow: bool,
        /// The rules in force: their index in `texts`, and their version.
        rules: Option<usize>,
        version: usize,
    }
    let mut texts: Vec<(String, String)> = Vec::new();
    let (mut asked, mut decides, mut recorded) = (Vec::new(), 0usize, 0usize);
    let reader = match WalReader::open(dir, 0) {
        Ok(reader) => reader,
        Err(e) => {
            say!("error: {log}: {e}");
            return EXIT_IO;
        }
    };
    for entry in reader {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                say!("error: {log}: {e}");
                return EXIT_IO;
            }
        };
        match entry.entry {
            Entry::Decide(input) => {
                if input.event_id == *event {
                    asked.push(Asked {
                        seq: entry.seq,
                        stamp: entry.stamp,
                        nth: decides,
                        scene: input.scene.unwrap_or_default(),
                        degraded: input.degraded,
                        late: false,
                        shed_shadow: input.shed_shadow,
                        rules: texts.len().checked_sub(1),
                        version: texts.len(),
                    });
                }
                decides += 1;
            }
            Entry::Event(input) => recorded += usize::from(input.event_id == *event),
            Entry::Rules { text, origin } => texts.push((text, origin)),
            Entry::Degraded { request } => {
                if let Some(a) = asked.iter_mut().find(|a| a.seq == request) {
                    a.late = true;
                }
            }
            Entry::List { .. } | Entry::Tick { .. } => {}
        }
    }
    if asked.is_empty() {
        match recorded {
            0 => say!(
                "error: --event {event}: {log} holds no decision request of that event id (of its {decides} decision requests)"
            ),
            n => say!(
                "error: --event {event}: {log} holds the event as recorded without a decision (POST /v1/events, {n} {}): no scene decided it",
                if n == 1 { "time" } else { "times" }
            ),
        }
        return EXIT_USAGE;
    }
    // (the rules given, for a log without its own: a log the service
    // started holds its rules first)
    let paths = vec![args.rules.clone()];
    let given = match rules_given(&paths) {
        Ok(rules) => rules,
        Err(status) => return status,
    };
    let scratch = std::env::temp_dir().join(format!("cepheid-why-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        say!("error: cannot make {}: {e}", scratch.display());
        return EXIT_IO;
    }
    let decisions = scratch.join("decisions.jsonl");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    // (each decision request's answer, in the log's order: a decision
    // made (`None`), a retry answered with the decision of the entry it
    // names (`Some(seq)`), or an error (`Some(0)`): which answers made
    // the decision records, in their order)
    let drain = std::thread::spawn(move || {
        (rx.into_iter())
            .map(|line| {
                let answer = serde_json::from_slice::<serde_json::Value>(&line).ok();
                let answer = answer.as_ref();
                let of = |field: &str| answer.and_then(|a| a.get(field));
                let first = of("decision_id")
                    .and_then(|d| d.as_str()?.strip_prefix("d-")?.parse::<u64>().ok());
                match (of("error"), of("repeated")) {
                    (Some(_), _) => Some(0),
                    (None, Some(serde_json::Value::Bool(true))) => Some(first.unwrap_or(0)),
                    _ => None,
                }
            })
            .collect::<Vec<Option<u64>>>()
    });
    let replayed = cepheid_serve::service::replay(
        &given,
        paths,
        (dir, None),
        (scratch.join("alerts.jsonl"), Some(decisions.clone())),
        tx,
        Box::new(ErrorsOnly),
    );
    let answered = drain.join().unwrap_or_default();
    let records = std::fs::read(&decisions);
    let _ = std::fs::remove_dir_all(&scratch);
    match replayed {
        Ok(summary) if summary.error().is_none() => {}
        Ok(summary) => {
            say!("{summary}");
            return EXIT_IO;
        }
        Err(e) => {
            say!("{e}");
            return EXIT_IO;
        }
    }
    let records = match records {
        Ok(records) => records,
        Err(e) => {
            say!("error: the replay's decisions: {e}");
            return EXIT_IO;
        }
    };
    let lines: Vec<&[u8]> = (records.split(|b| *b == b'\n'))
        .filter(|l| l.starts_with(b"{\"kind\":\"decision\""))
        .collect();
    // (the k-th decision record is the k-th answer that made a decision)
    let made = answered.iter().filter(|a| a.is_none()).count();
    if answered.len() != decides || lines.len() != made {
        say!(
            "error: {log}: the replay answered {} of {decides} decision requests and made {} decisions of {made}: its requests cannot be told apart",
            answered.len(),
            lines.len()
        );
        return EXIT_IO;
    }
    let record_of = |nth: usize| answered[..nth].iter().filter(|a| a.is_none()).count();
    let mut told: Option<cepheid_lab::why::event::WhyEvent> = None;
    for (i, a) in asked.iter().enumerate() {
        let rules = match a.rules {
            Some(at) => match cepheid_engine::Rules::parse(&log, &texts[at].0) {
                Ok(rules) => rules,
                Err(e) => {
                    say!("error: {log}: the rules in force at entry {}: {e}", a.seq);
                    return EXIT_IO;
                }
            },
            None => given.clone(),
        };
        let (record, retry) = match answered[a.nth] {
            None => (lines[record_of(a.nth)], None),
            Some(0) => {
                say!(
                    "error: --event {event}: log entry {} was answered with an error, not decided",
                    a.seq
                );
                return EXIT_USAGE;
            }
            Some(first) => match asked.iter().find(|f| f.seq == first) {
                Some(f) if answered[f.nth].is_none() => (lines[record_of(f.nth)], Some(first)),
                _ => {
                    say!(
                        "error: {log}: log entry {} was answered as a retry of entry {first}, which is not a decision of event {event} the log holds (released by retention?)",
                        a.seq
                    );
                    return EXIT_IO;
                }
            },
        };
        // (a retry is told by the request it repeats: its rules, its answer)
        let a = match retry {
            Some(first) => asked.iter().find(|f| f.seq == first).expect("found above"),
            None => a,
        };
        let rules = match (retry, a.rules) {
            (None, _) => rules,
            (Some(_), Some(at)) => match cepheid_engine::Rules::parse(&log, &texts[at].0) {
                Ok(rules) => rules,
                Err(e) => {
                    say!("error: {log}: the rules in force at entry {}: {e}", a.seq);
                    return EXIT_IO;
                }
            },
            (Some(_), None) => given.clone(),
        };
        let scene_of = serde_json::from_slice::<serde_json::Value>(record)
            .ok()
            .and_then(|d| d["scene"].as_str().map(str::to_string));
        if scene_of.as_deref() != Some(a.scene.as_str()) {
            say!(
                "error: {log}: the replay's decision {} is not of the scene of entry {} ({}): its requests cannot be told apart",
                a.nth + 1,
                a.seq,
                a.scene
            );
            return EXIT_IO;
        }
        let mut notes = vec![format!(
            "{}{}log entry {} at {}, decided by the rules of version {}{}",
            match asked.len() {
                1 => String::new(),
                n => format!("request {} of {n}: ", i + 1),
            },
            match retry {
                Some(_) => format!(
                    "a retry (log entry {} at {}), answered with the decision of ",
                    asked[i].seq, asked[i].stamp
                ),
                None => String::new(),
            },
            a.seq,
            a.stamp,
            a.version.max(1),
            match a.rules {
                Some(at) => format!(" ({})", texts[at].1),
                None => " (the rules given: the log holds none)".to_string(),
            }
        )];
        if a.degraded || a.late {
            let fallback = (rules.loaded().scenes.iter())
                .find(|s| s.name == a.scene)
                .map_or("its fallback".to_string(), |s| {
                    s.outcomes[s.fallback.index()].to_string()
                });
            notes.push(match a.late {
                false => format!(
                    "answered degraded at admission (its deadline could not be met): the client got the scene's fallback, {fallback}; the decision below was made and applied all the same"
                ),
                true => format!(
                    "answered degraded at its deadline, which passed before the engine took it: the client got the scene's fallback, {fallback}; the decision below was made and applied all the same"
                ),
            });
        }
        if a.shed_shadow {
            notes.push("its shadow rules were shed under load: they did not see it".to_string());
        }
        if retry.is_some() {
            // (its decision is told once, with the request it repeats)
            told = told.map(|told| told.with_notes(notes));
            continue;
        }
        let why = match cepheid_lab::why::event::WhyEvent::of_records(&rules, event, [record]) {
            Ok(why) => why.with_notes(notes),
            Err(e) => return crate::lab::failed(&e),
        };
        told = Some(match told {
            Some(before) => before.and(why),
            None => why,
        });
    }
    let told = told.expect("one request at least");
    match args.json {
        true => crate::lab::print(&told.json(), true, crate::EXIT_OK),
        false => crate::lab::print(&told.text(), false, crate::EXIT_OK),
    }
}

/// `why RULES KEY --events wal:DIR`: what each pattern did with the key's
/// events over a service's log, as the service's engine did it
/// (`docs/rule-lab.md`): the log read from its first entry in its order,
/// each entry given to the lab's trace as the service's run took it
/// (`cepheid_serve::service::replay` reads it alike, and its alerts for
/// the key are the trace's matches and timeouts):
/// - the log's first entry, when it is rules, is the rules the service
///   started with (`RULES` only when the log holds none);
/// - a decision request or an event is the engine's request of it at its
///   stamp (`cepheid_serve::service::logged_request`: into the scene it
///   names and no other, a retry of a remembered id not taken again);
/// - a change of rules or of a list is made at its place, a tick is a
///   watermark just before its time; a `degraded` entry changes nothing
///   the engine matches;
/// - the run is the service's (`cepheid_serve::service::log_config`), its
///   engine remembering requests as the replay's does.
///
/// A log whose first entries retention released is refused (exit 4), as
/// its replay is: its start is not the service's.
/// The rules of `paths`, loaded and checked (their diagnostics said), or
/// the command's exit status.
#[cfg(feature = "serve")]
fn rules_given(paths: &[std::path::PathBuf]) -> Result<cepheid_engine::Rules, u8> {
    let (loaded, checked) = crate::load_checked(paths)?;
    // (an error is said already by the load)
    cepheid_engine::Rules::from_checked(loaded, checked).map_err(|_| crate::EXIT_PATTERN_ERROR)
}

#[cfg(feature = "serve")]
fn key_over_log(args: &Args, dir: &std::path::Path) -> u8 {
    use crate::EXIT_IO;
    use cepheid_serve::wal::{Entry, WalReader};
    let log = format!("wal:{}", dir.display());
    let paths = vec![args.rules.clone()];
    let given = match rules_given(&paths) {
        Ok(rules) => rules,
        Err(status) => return status,
    };
    let open = || WalReader::open(dir, 0).map_err(|e| say!("error: {log}: {e}"));
    let Ok(mut first) = open() else {
        return EXIT_IO;
    };
    // (a log the service started holds its rules first: the run starts
    // from them, as the service did, whatever RULES are)
    let (rules, said) = match first.next() {
        Some(Ok(entry)) => match entry.entry {
            Entry::Rules { text, origin } => match cepheid_engine::Rules::parse(&log, &text) {
                Ok(rules) => (
                    rules,
                    format!(
                        "the rules: the log's own, of entry {} ({origin})",
                        entry.seq
                    ),
                ),
                Err(e) => {
                    say!("error: {log}: the rules of entry {}: {e}", entry.seq);
                    return EXIT_IO;
                }
            },
            _ => (given, "the rules given: the log holds none".to_string()),
        },
        Some(Err(e)) => {
            say!("error: {log}: {e}");
            return EXIT_IO;
        }
        None => (given, "the rules given: the log holds none".to_string()),
    };
    let key = args.key.clone().unwrap_or_default();
    let mut options = cepheid_lab::why::Options::new(args.rules.clone(), key, args.events.lab());
    options.no_events = args.no_events;
    options.max_runs_per_key = args.max_runs_per_key;
    options.max_live_runs = args.max_live_runs;
    options.from = args.from;
    options.to = args.to;
    options.patterns.clone_from(&args.patterns);
    let config = cepheid_serve::service::log_config(paths);
    let memory = cepheid_serve::service::ServiceOptions::new(dir).request_memory();
    let mut trace =
        match cepheid_lab::why::service::ServiceTrace::new(&options, &rules, config, memory) {
            Ok(trace) => trace,
            Err(e) => return crate::lab::failed(&e),
        };
    trace.note(said);
    let Ok(reader) = open() else {
        return EXIT_IO;
    };
    let mut position = 0;
    for entry in reader {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                say!("error: {log}: {e}");
                return EXIT_IO;
            }
        };
        if entry.seq != position + 1 {
            match position {
                0 => say!(
                    "error: {log}: its first entry kept is entry {}: the entries before it were released by retention, and no checkpoint holds what they made (a trace from here would start without them); `backtest --events wal:DIR --from-checkpoint DIR` replays the log from a checkpoint",
                    entry.seq
                ),
                _ => say!(
                    "error: {log}: the log skips from entry {position} to entry {}",
                    entry.seq
                ),
            }
            return EXIT_IO;
        }
        position = entry.seq;
        let place = format!("log entry {} at {}", entry.seq, entry.stamp);
        match &entry.entry {
            Entry::Decide(_) | Entry::Event(_) => {
                let note = std::sync::Arc::from(&b""[..]);
                let (request, fields) = cepheid_serve::service::logged_request(&entry.entry, note)
                    .expect("a decision request or an event is a request");
                trace.request(entry.stamp, request, fields.get().as_bytes(), &place);
            }
            Entry::Rules { text, origin } => {
                // (as the run takes it: a record of its rules stream)
                let record = serde_json::json!({ "$rules": text }).to_string();
                trace.change(record.as_bytes(), &format!("{place}, from {origin}"));
            }
            Entry::List { change, .. } => trace.change(change.get().as_bytes(), &place),
            Entry::Tick { time } => trace.watermark(time.saturating_sub(1)),
            // (the request it names was answered degraded: what the
            // engine matches is the same)
            Entry::Degraded { .. } => {}
        }
    }
    let why = match trace.finish() {
        Ok(why) => why,
        Err(e) => return crate::lab::failed(&e),
    };
    match args.json {
        true => crate::lab::print(&why.json(), true, crate::EXIT_OK),
        false => crate::lab::print(&why.text(), false, crate::EXIT_OK),
    }
}

/// What the replay of a service's log says, when `why` reads it: its
/// errors only (why it stops). Its warnings (the fields the rules read
/// that its requests lack, a change of rules) are the service's, said
/// when it ran; `backtest --events wal:DIR` says them again.
#[cfg(feature = "serve")]
struct ErrorsOnly;

#[cfg(feature = "serve")]
impl cepheid_runtime::Report for ErrorsOnly {
    fn notice(&mut self, notice: cepheid_runtime::Notice) {
        if notice.level() == cepheid_runtime::Level::Error {
            say_text!("{}", notice.as_str());
        }
    }
}

/// Without the feature `serve`: a log cannot be read.
#[cfg(not(feature = "serve"))]
fn over_log(_: &Args, dir: &std::path::Path) -> u8 {
    say!(
        "error: wal:{} is a service's log; this cepheid was built without the feature `serve`",
        dir.display()
    );
    crate::EXIT_USAGE
}
