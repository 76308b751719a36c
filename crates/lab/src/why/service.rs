//! `cepheid why RULES KEY --events wal:DIR`: one key's trace over a
//! service's inputs (`cepheid serve`'s log, `docs/serve.md`), taken one by
//! one as the service's run took them ([`ServiceTrace`]).
//!
//! The lab does not read the log (its format is `cepheid-serve`'s, a
//! crate above this one): its reader hands each entry over, in the log's
//! order, as what the run made of it: a request (taken at once, into the
//! scene it names and no other, a remembered id answered from memory:
//! `Engine::request`), a watermark (a clock tick), or a change of rules
//! or of a list (a `$rules` or `$list` record, applied at its place as a
//! source's rules stream is: the runtime's own reading of it). The engine
//! is the run's (its configuration, the log's first rules, the service's
//! memory of requests), made into one that traces the key
//! (`Engine::why`): what the trace says is what the service's engine did,
//! and the key's matches and timeouts are those a replay of the log
//! writes (`cepheid backtest --events wal:DIR --output FILE`).

use cepheid_decode::{Decoder, Item};
use cepheid_engine::engine::why::Why as Traced;
use cepheid_engine::engine::{EntryOrigin, Request, RequestMemory};
use cepheid_engine::{Record, Rules, Timestamp};
use cepheid_runtime::source::{Control, RulesRead};
use cepheid_runtime::Config;

use super::{asked, key_filter, Discard, Header, Key, Options, Why};
use crate::{Error, ErrorKind, Tell};

/// A key's trace over a service's inputs, fed as the service's run fed
/// its engine ([`request`](ServiceTrace::request),
/// [`watermark`](ServiceTrace::watermark), [`change`](ServiceTrace::change),
/// in the log's order), then [`finish`](ServiceTrace::finish)ed into the
/// report.
pub struct ServiceTrace {
    head: Header,
    key: Key,
    why: Traced<Record>,
    /// The run's: the configuration a change of rules or lists is read
    /// with, and the engine's.
    config: Config,
    /// The requests' events, read as the run reads them (no time field:
    /// each takes its request's time).
    decoder: Decoder,
    notes: Vec<String>,
    /// Did a watermark come (then the end of the inputs ends nothing, as
    /// a run's end after a punctuated watermark)?
    punctuated: bool,
    tell: Tell,
}

impl ServiceTrace {
    /// The trace of the key `options` ask for, over the inputs of a
    /// service whose run was configured as `config` says, that started
    /// with `rules` and remembered requests as `memory` says.
    ///
    /// What a service's log does not take is refused: `--workers` (one
    /// engine ran it), `--max-runs-per-key` and `--max-live-runs` (its
    /// run's limits are the service's), as is a KEY that is none and
    /// `--from` after `--to`.
    pub fn new(
        options: &Options,
        rules: &Rules,
        config: Config,
        memory: RequestMemory,
    ) -> Result<ServiceTrace, Error> {
        let refused = match (&options.events.workers, options.max_runs_per_key) {
            (Some(_), _) => Some("--workers"),
            (_, Some(_)) => Some("--max-runs-per-key"),
            _ => options.max_live_runs.map(|_| "--max-live-runs"),
        };
        if let Some(flag) = refused {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{flag}: a service's log ({}) is read as the service took it, on one engine, with its run's limits",
                    options.events.path.display()
                ),
            ));
        }
        let (key, head) = asked(options)?;
        let mut engine = config.engine();
        engine
            .add(rules)
            .map_err(|e| Error::new(ErrorKind::Rules, e.to_string()))?;
        engine.remember_requests(memory);
        let decoder = Decoder::new(config.format, "ts", engine.fields().clone()).without_time();
        let why = engine.why(key_filter(&options.key));
        Ok(ServiceTrace {
            head,
            key,
            why,
            config,
            decoder,
            notes: Vec::new(),
            punctuated: false,
            tell: options.events.tell.clone(),
        })
    }

    /// Says `note` in the report, after its header, in the order given
    /// (what the reader knows of the log: which rules it started with).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The engine takes `request` at `at` (its entry's stamp), its event
    /// read from `fields` (a JSON object), as the run takes a request of
    /// its source: at once, into the scene it names and no other; a
    /// remembered id is answered from memory and not taken again. An event
    /// the run could not read is not taken, and is said (`place` names
    /// it); a `$watermark` moves event time, as it did the run's.
    pub fn request(&mut self, at: Timestamp, request: Request, fields: &[u8], place: &str) {
        match self.decoder.decode(fields) {
            Ok(Item::Event(_, record)) => {
                self.why.request(at, request, record, &mut Discard);
            }
            Ok(Item::Watermark(t)) => self.watermark(t),
            Ok(Item::Skip) => {}
            Err(e) => tell!(
                self.tell,
                "cepheid: {place}: {e}; the run did not take it, nor does why"
            ),
        }
    }

    /// Event time moves to `t` (a clock tick's time less 1 ms: its
    /// timeouts fire here).
    pub fn watermark(&mut self, t: Timestamp) {
        self.why.watermark(t, &mut Discard);
        self.punctuated = true;
    }

    /// A record of the run's rules stream at `place`: a change of the
    /// rules (`{"$rules": TEXT}`) or of a list (`{"$list": ...}`), made at
    /// its place as the run makes it (the runtime reads it; a change of
    /// rules at the watermark, by the engine's own change, followed by the
    /// trace: `Why::set_rules`; a list's from the watermark + 1 on). A
    /// change of rules made is said in the report, and one refused (its
    /// rules do not load) too, as the run said it.
    pub fn change(&mut self, record: &[u8], place: &str) {
        let control = match Control::parse(record) {
            Some(Ok(control)) => control,
            Some(Err(why)) => {
                return tell!(self.tell, "cepheid: {place}: {why}; the record is left out");
            }
            None => {
                return tell!(
                    self.tell,
                    "cepheid: {place}: not a record of rules or of a list; the record is left out"
                );
            }
        };
        match control.is_list() {
            true => self.list(&control, place),
            false => self.rules(&control, place),
        }
    }

    /// A change of a list, as the run makes a record of its rules stream.
    fn list(&mut self, control: &Control, place: &str) {
        let at = (self.why.current_watermark()).map_or(Timestamp::MIN, |w| w.saturating_add(1));
        let made = control.read_list(&self.config, true).and_then(|record| {
            let edits = record.edits();
            let origin = (&*record.list, &EntryOrigin::Records);
            cepheid_runtime::lists::apply(&mut self.why, origin, &edits, at)
                .map_err(|e| e.to_string())
        });
        if let Err(why) = made {
            let place = format!("{place} ({})", control.describe());
            let notice = cepheid_runtime::lists::refused(&place, &why, true);
            tell!(self.tell, "{}", notice.as_str().trim_end());
        }
    }

    /// A change of the rules, as the run makes a record of its rules
    /// stream: read and checked by the runtime, made by the engine's own
    /// change, with the run's policy.
    fn rules(&mut self, control: &Control, place: &str) {
        let tell = self.tell.clone();
        let mut say = |n: cepheid_runtime::Notice| tell!(tell, "{}", n.as_str().trim_end());
        let (where_, read) = control.read(&self.config, true, place, &mut say);
        let rules = match read {
            RulesRead::Checked { rules, .. } => rules,
            RulesRead::Refused(why) | RulesRead::Later(why) => {
                // (said as the run said it; the old rules go on)
                tell!(self.tell, "{why}");
                self.notes
                    .push(why.trim_start_matches("cepheid: ").to_string());
                return;
            }
        };
        let policy = self.config.reload_policy;
        match self.why.set_rules(&rules, policy, &mut Discard) {
            Ok(changes) if changes.any() || changes.scenes_removed().next().is_some() => {
                let said: Vec<String> = (changes.to_string().lines())
                    .filter(|line| !line.ends_with(": unchanged"))
                    .map(str::to_string)
                    .collect();
                self.notes
                    .push(format!("{where_}: the rules changed: {}", said.join("; ")));
            }
            Ok(_) => {}
            Err(e) => {
                let why = format!(
                    "{where_}: refused: its rules do not compile ({e}); the old rules go on"
                );
                tell!(self.tell, "cepheid: {why}");
                self.notes.push(why);
            }
        }
    }

    /// The trace, once the inputs are all taken: a run whose inputs had
    /// no watermark ends event time at its latest event, as the run's end
    /// does. `--pattern` names a pattern the service ran (in some version
    /// of its rules), or is refused.
    pub fn finish(mut self) -> Result<Why, Error> {
        if !self.punctuated {
            self.why.finish(&mut Discard);
        }
        let trace = self.why.trace();
        let ran = |name: &str| trace.patterns.iter().any(|p| p.name == name);
        if let Some(unknown) = self.head.patterns.iter().find(|p| !ran(p)) {
            let mut names: Vec<&str> = trace.patterns.iter().map(|p| p.name.as_str()).collect();
            names.dedup();
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--pattern {unknown}: the service ran no such pattern (its patterns: {})",
                    names.join(", ")
                ),
            ));
        }
        Ok(Why {
            head: self.head,
            key: self.key,
            trace,
            notes: self.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cepheid_engine::engine::{Request, RequestMemory};
    use cepheid_engine::{Rules, Value};
    use cepheid_runtime::{Config, Input, Time};

    use super::ServiceTrace;
    use crate::why::Options;
    use crate::Events;

    const RULES: &str = r#"
list blocked
pattern big { partition by card within 1m timeouts
    match p followed by q where p: amount > 100 q: amount > 100 }
pattern listed { partition by card match p where p: card in blocked }
scene pay {
    when type == "payment"
    rules big, listed
    outcomes approve < review
    fallback approve
    deadline 1s
}
"#;

    fn request(id: &str) -> Request {
        Request {
            id: Value::from(id),
            scene: Some(Arc::from("pay")),
            note: Arc::from(&b""[..]),
            position: Some(Value::from(id)),
            dry_run: false,
            shed_shadow: false,
        }
    }

    fn payment(card: &str, amount: i64) -> Vec<u8> {
        format!(r#"{{"type":"payment","card":"{card}","amount":{amount}}}"#).into_bytes()
    }

    /// What the service's run made of its log, given in order: requests
    /// (a retry of one), a list's change its rule reads, a change of
    /// rules (a pattern's new version beside the old one's partial
    /// matches) and one refused; the report says each version, and the
    /// changes after its header; `--pattern` takes a pattern only a later
    /// version of the rules has (`late`).
    #[test]
    fn a_trace_over_a_services_inputs_follows_its_changes() {
        let rules = Rules::parse("the log", RULES).unwrap();
        let mut config = Config::new(Input::Stdin, Vec::new());
        config.time = Time::Record;
        let told = Arc::new(std::sync::Mutex::new(String::new()));
        let mut events = Events::new("wal:log");
        let into = Arc::clone(&told);
        events.tell = Arc::new(move |text: &str| into.lock().unwrap().push_str(text));
        let mut options = Options::new("rules.cep", "c1", events);
        options.patterns = vec!["big".into(), "late".into(), "listed".into()];
        let memory = RequestMemory::default();
        let mut trace = ServiceTrace::new(&options, &rules, config, memory).unwrap();
        trace.note("the rules: the log's own");
        trace.request(1_000, request("e1"), &payment("c1", 150), "entry 2");
        trace.request(1_001, request("e1"), &payment("c1", 150), "entry 3");
        trace.change(br#"{"$list": "blocked", "add": ["c1"]}"#, "entry 4");
        trace.request(2_000, request("e2"), &payment("c1", 5), "entry 5");
        let v2 = RULES.replace("within 1m", "within 2m").replace(
            "scene pay",
            "pattern late { partition by card match p where p: amount > 1000 }\nscene pay",
        );
        let change = serde_json::json!({ "$rules": v2 }).to_string();
        trace.change(change.as_bytes(), "entry 6");
        trace.change(br#"{"$rules": "pattern broken {"}"#, "entry 7");
        trace.request(3_000, request("e3"), &payment("c1", 200), "entry 8");
        trace.request(4_000, request("e4"), &payment("c1", 300), "entry 9");
        trace.watermark(200_000);
        let why = trace.finish().unwrap();
        let text = why.text();
        let notes: Vec<&str> = text.lines().skip(1).take(3).collect();
        assert_eq!(notes[0], "  the rules: the log's own", "{text}");
        assert!(
            notes[1].starts_with(
                "  entry 6 (`$rules`): the rules changed: big: changed (version 2); late: added"
            ),
            "{text}"
        );
        assert_eq!(
            notes[2], "  entry 7 (`$rules`): the new rules have errors; the old rules go on",
            "{text}"
        );
        // (the retry is no event of the key: three payments and a fourth)
        assert!(text.contains("4 events of the key"), "{text}");
        // Version 1 of `big` drains: e1's partial match goes on, and e3
        // completes it; version 2 starts from nothing: e3 and e4, and e4's
        // window closes.
        assert!(
            text.contains("pattern big version 1 (partition by card)"),
            "{text}"
        );
        assert!(
            text.contains("pattern big version 2 (partition by card)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&why.json()).unwrap();
        let patterns = json["patterns"].as_array().unwrap();
        let big = |v: u64| {
            (patterns.iter())
                .find(|p| p["pattern"] == "big" && p["version"] == v)
                .unwrap_or_else(|| panic!("big version {v}: {json}"))
        };
        let ends = |p: &serde_json::Value| -> Vec<String> {
            (p["partial_matches"].as_array().unwrap().iter())
                .map(|r| r["end"]["kind"].as_str().unwrap_or("under way").to_string())
                .collect()
        };
        assert_eq!(ends(big(1)), ["matched"], "{json}");
        assert_eq!(ends(big(2)), ["matched", "window_closed"], "{json}");
        // `listed` reads the list the log changed: e1 came before c1 was
        // added, the others after it, and matched.
        let listed = (patterns.iter())
            .find(|p| p["pattern"] == "listed")
            .unwrap();
        assert_eq!(ends(listed), ["matched"; 3], "{json}");
        assert_eq!(listed["partial_matches"][0]["events"][0]["event"], 2);
        assert_eq!(json["notes"].as_array().unwrap().len(), 3, "{json}");
        // (the refused rules' diagnostics told, as the run tells them)
        let told = told.lock().unwrap();
        assert!(
            told.contains("entry 7 ($rules):1:17: expected a clause"),
            "{told}"
        );
    }
}
