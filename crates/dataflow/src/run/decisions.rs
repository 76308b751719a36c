//! Decisions on workers (issue 62, `docs/design/decisions-on-workers.md`):
//! each group's engine gives the decisions of its part, with the event's
//! place (`Plan::gathering_decisions`); worker 0 gathers each event's
//! parts once its frontier passes the event's time (every part of it was
//! made at a time at or below it), resolves them (`Decision::gather`) by
//! the scenes in force at that time ([`SceneBook`]), names an event
//! without an id by its line in the input, as one engine does, and writes
//! the records in one engine's order: by time, then place in the input.
//! A late event's decisions are made there too, by an engine of the
//! scenes alone ([`Gather::late`]).

use super::*;
use std::collections::BTreeMap;

use cepheid_core::scene::Scene;
use cepheid_engine::{Decision, Engine, Value};
use cepheid_runtime::source::ChunkLines;
use cepheid_runtime::{Block, Kind};

use crate::{place_name, place_parts, Stamped};

/// The scenes of the rules in force, by the event time they apply from:
/// the plan's, then each change's (kept by worker 0, which applies every
/// change). An event is decided by the scenes in force at its time.
pub(super) struct SceneBook {
    /// From when, and the scenes and patterns then (for a late event's
    /// decisions: the fields the scenes' rules read).
    changes: Vec<(Timestamp, Rules)>,
    /// Changes made over the run (the late events' engine is made again
    /// after one).
    made: usize,
    /// From when, the parts each event's decision comes in (the groups
    /// in force, `Collect::decided_in_parts`).
    parts: Vec<(Timestamp, usize)>,
}

impl SceneBook {
    pub(super) fn new(rules: Rules) -> SceneBook {
        SceneBook {
            changes: vec![(Timestamp::MIN, rules)],
            made: 0,
            parts: Vec::new(),
        }
    }

    /// From `from` on, each event's decision comes in `parts` parts.
    pub(super) fn parts_from(&mut self, from: Timestamp, parts: usize) {
        let at = self.parts.partition_point(|(t, _)| *t < from);
        self.parts.truncate(at);
        self.parts.push((from, parts));
    }

    /// The parts the decision of an event at `ts` comes in (`None`: not
    /// told, the frontier alone says).
    fn parts_at(&self, ts: Timestamp) -> Option<usize> {
        let until = self.parts.partition_point(|(at, _)| *at <= ts);
        until.checked_sub(1).map(|i| self.parts[i].1)
    }

    /// The rules changed at `at`.
    pub(super) fn changed(&mut self, at: Timestamp, rules: &Rules) {
        self.changes.push((at, rules.clone()));
        self.made += 1;
    }

    /// Scene `name` as it was at `ts`: of the last change at or before
    /// it that has it (a scene a change removed decides the events before
    /// the change), else of the last that has it.
    fn scene(&self, ts: Timestamp, name: &str) -> Option<&Scene> {
        fn of<'a>(rules: &'a Rules, name: &str) -> Option<&'a Scene> {
            rules.scenes().iter().find(|s| s.name == name)
        }
        let until = self.changes.partition_point(|(at, _)| *at <= ts);
        (self.changes[..until].iter().rev())
            .find_map(|(_, rules)| of(rules, name))
            .or_else(|| (self.changes.iter().rev()).find_map(|(_, rules)| of(rules, name)))
    }

    /// Forgets the changes no event at or after `t` is decided by (all
    /// but the last at or before it, and those after): the events before
    /// `t` are gathered. (A run whose rules change for months keeps a
    /// few.)
    fn forget_before(&mut self, t: Timestamp) {
        let until = self.changes.partition_point(|(at, _)| *at <= t);
        if until > 1 {
            self.changes.drain(..until - 1);
        }
        let until = self.parts.partition_point(|(at, _)| *at <= t);
        if until > 1 {
            self.parts.drain(..until - 1);
        }
    }

    /// The rules in force now.
    fn now(&self) -> &Rules {
        &self.changes.last().expect("the plan's rules first").1
    }
}

/// How an event without an id is named: its line in the input, `PATH:LINE`.
pub(super) enum Naming {
    /// A file read in chunks: the line counted from the chunk's place
    /// (`lines` `None`: the file could not be opened). Where the line
    /// cannot be counted (the file cannot be read again, it shrank under
    /// the run), the event is named by its place in its chunk, which is
    /// said once (`say`, `said`).
    Chunks {
        origin: String,
        lines: Option<ChunkLines>,
        say: Say,
        said: bool,
    },
    /// Live input read by one reader: the place is the line.
    Lines(String),
}

impl Naming {
    /// The position of the event at `offset`.
    /// (`text` keeps its room from one event to the next: the value is
    /// its one allocation.)
    fn position(&mut self, offset: u64, text: &mut String) -> Value {
        use std::fmt::Write;
        let (origin, line) = match self {
            Naming::Chunks {
                origin,
                lines,
                say,
                said,
            } => {
                let line = match lines.as_mut().map(|l| l.line(offset)) {
                    Some(Ok(line)) => line,
                    failed => {
                        if !std::mem::replace(said, true) {
                            let why = match failed {
                                Some(Err(e)) => e.to_string(),
                                _ => "it could not be opened".to_string(),
                            };
                            say!(
                                say,
                                Warning,
                                "cepheid: warning: the lines of {origin} cannot be counted ({why}): the decisions of its events without an id are named by their place in the file's chunks (`chunk << 32 | line`), not their line"
                            );
                        }
                        offset
                    }
                };
                (&*origin, line)
            }
            Naming::Lines(origin) => (&*origin, offset),
        };
        text.clear();
        let _ = write!(text, "{origin}:{line}");
        Value::Str(Arc::from(text.as_str()))
    }
}

/// An event's parts, by scene in the order they came (every part gives
/// its scenes in the same order), and the latest time they were sent at:
/// which side of a cut the decision is on, as a record made then is.
type Parts = (Vec<(Arc<str>, Vec<Decision>)>, Timestamp);

/// Which event parts are of, in one engine's order: its time, source and
/// offset, and its name (when its source names it).
type EventKey = (Timestamp, u32, u64, Option<Arc<str>>);

/// Where gathered decisions are written: now (before the cut under way),
/// after the cut under way, after the run's last cut (made by the end of
/// a file's input, `Cuts::before_end`).
#[derive(Default)]
struct Sides {
    now: Block,
    after_cut: Block,
    after_end: Block,
}

/// Worker 0's gathering of the parts.
pub(super) struct Gather {
    /// The parts of events not gathered yet, by (time, source, offset):
    /// one engine's order (then the event's name: the readers of a
    /// `Source` on several workers count their offsets apart).
    parts: BTreeMap<EventKey, Parts>,
    book: Rc<RefCell<SceneBook>>,
    naming: Naming,
    /// Where a position is written (`Naming::position`).
    text: String,
    format: Formatter,
    /// The engine that decides late events (every event it is given is
    /// late: its watermark is at the end of time), with the rules it was
    /// made with.
    late: Option<(Engine<Record>, usize)>,
    plan_fields: crate::record::FieldTable,
    limits: crate::Limits,
    /// Where what it cannot do right is said (`None` in unit tests).
    say: Option<super::Say>,
    /// Events decided at the end from fewer parts than their groups in
    /// force ([`SceneBook::parts_at`]): a defect, said once per end.
    short: u64,
}

impl Gather {
    pub(super) fn new(book: Rc<RefCell<SceneBook>>, naming: Naming, plan: &Plan<Record>) -> Gather {
        Gather {
            parts: BTreeMap::new(),
            book,
            naming,
            text: String::new(),
            format: Formatter::default(),
            late: None,
            plan_fields: plan.fields().clone(),
            limits: plan.limits(),
            say: None,
            short: 0,
        }
    }

    /// It says on `say` what it cannot do right.
    pub(super) fn saying(mut self, say: super::Say) -> Gather {
        self.say = Some(say);
        self
    }

    /// Events decided at the end of the run from fewer parts than their
    /// groups in force (none unless a part was lost).
    #[cfg(test)]
    pub(super) fn short(&self) -> u64 {
        self.short
    }

    /// Takes in parts of events' decisions, sent at `at`.
    pub(super) fn take(&mut self, parts: Vec<Decision>, at: Timestamp) {
        for d in parts {
            let place = d.place.as_ref();
            let (source, offset) = place.and_then(place_parts).unwrap_or((u32::MAX, u64::MAX));
            let name = place.and_then(place_name).cloned();
            let key = (d.ts, source, offset, name);
            let (scenes, sent) = (self.parts.entry(key)).or_insert_with(|| (Vec::new(), at));
            *sent = (*sent).max(at);
            match scenes.iter_mut().find(|(name, _)| *name == d.scene) {
                Some((_, parts)) => parts.push(d),
                None => scenes.push((Arc::clone(&d.scene), vec![d])),
            }
        }
    }

    /// What worker 0's writer does with `chunk`, sent at `at`: parts
    /// are taken in (`None`), late events decided (their decisions'
    /// records), the rest is as it is. Without gathering (`gather` is
    /// `None`), the chunk as it is.
    pub(super) fn intercept(
        gather: Option<&mut Gather>,
        chunk: Chunk,
        at: Timestamp,
    ) -> Option<Chunk> {
        match (chunk, gather) {
            (Chunk::Parts(parts), Some(gather)) => {
                gather.take(parts, at);
                None
            }
            (Chunk::Late(events), Some(gather)) => {
                let mut block = Block::default();
                gather.late(events, &mut block);
                Some(Chunk::Records(block))
            }
            (chunk, _) => Some(chunk),
        }
    }

    /// The decisions of the events before `frontier` (every part of
    /// theirs came: all of them at the end, `None`), gathered and written
    /// as a record sent when their last part was: after the cut at
    /// `holding` under way when sent at or after it, after the run's last
    /// cut when made by the end of a file's input (`before_end`, sent at
    /// the end of time), else now.
    pub(super) fn ready(
        &mut self,
        frontier: Option<Timestamp>,
        holding: (Option<Timestamp>, bool),
        gathered: &mut Gathered,
    ) {
        let mut sides = Sides::default();
        self.resolve(frontier, holding, &mut sides);
        let Sides {
            now,
            after_cut,
            after_end,
        } = sides;
        if !now.is_empty() {
            gathered.take(Chunk::Records(now));
        }
        if !after_cut.is_empty() {
            gathered.held.push(Chunk::Records(after_cut));
        }
        if !after_end.is_empty() {
            gathered.after_end.push(Chunk::Records(after_end));
        }
    }

    /// [`Gather::ready`]'s decisions, each to its side.
    fn resolve(
        &mut self,
        frontier: Option<Timestamp>,
        (holding, before_end): (Option<Timestamp>, bool),
        sides: &mut Sides,
    ) {
        let ready = match frontier {
            Some(f) => {
                let rest = self.parts.split_off(&(f, 0, 0, None));
                std::mem::replace(&mut self.parts, rest)
            }
            None => std::mem::take(&mut self.parts),
        };
        let book = self.book.borrow();
        // (events of which some parts have not come: an engine held them
        // past their time, and makes their parts later)
        let mut incomplete = BTreeMap::new();
        let short_before = self.short;
        for (key, (scenes, sent)) in ready {
            let whole = (book.parts_at(key.0))
                .is_none_or(|n| scenes.iter().all(|(_, parts)| parts.len() >= n));
            if !whole {
                if frontier.is_some() {
                    incomplete.insert(key, (scenes, sent));
                    continue;
                }
                // (the end: no part comes after it; decided from those
                // that came, and said)
                self.short += 1;
            }
            let (ts, _, offset, named) = key;
            let out = match holding {
                _ if before_end && sent == Timestamp::MAX => &mut sides.after_end,
                Some(e) if sent >= e => &mut sides.after_cut,
                _ => &mut sides.now,
            };
            for (name, mut parts) in scenes {
                // (one part, of the one group of patterns: its decision is
                // the event's)
                let gathered = match parts.len() {
                    1 => parts.pop(),
                    _ => (book.scene(ts, &name)).and_then(|scene| Decision::gather(scene, &parts)),
                };
                let Some(mut d) = gathered else {
                    continue;
                };
                if d.by_position {
                    d.event = match &named {
                        Some(named) => Value::Str(Arc::clone(named)),
                        None => self.naming.position(offset, &mut self.text),
                    };
                }
                self.format.decision(&d);
                out.push(Kind::Decision, &self.format);
            }
        }
        drop(book);
        if self.short > short_before {
            if let Some(say) = &self.say {
                say!(
                    say,
                    Warning,
                    "cepheid: warning: {} events were decided at the end of the run from fewer parts than the groups of patterns that had them (a defect: please report it); their decisions are those of the parts that came",
                    self.short - short_before
                );
            }
        }
        let oldest = incomplete.keys().next().map(|(ts, ..)| *ts);
        self.parts.append(&mut incomplete);
        // (the events before the frontier are decided, but those waiting
        // for parts: the changes only they were decided by go)
        if let Some(f) = frontier {
            self.book
                .borrow_mut()
                .forget_before(oldest.map_or(f, |t| t.min(f)));
        }
    }

    /// The decisions of late events (each of every scene it enters, the
    /// scene's `late` outcome, as one engine makes them), to `out`.
    pub(super) fn late(&mut self, events: Vec<Stamped<Record>>, out: &mut Block) {
        let changes = self.book.borrow().made;
        if self.late.as_ref().is_none_or(|(_, made)| *made != changes) {
            self.late = self.late_engine().map(|engine| (engine, changes));
        }
        let Some((engine, _)) = &mut self.late else {
            return;
        };
        let mut decided = Decided(Vec::new());
        for stamped in events {
            let place = stamped.place();
            engine.push_positioned(stamped.ts, stamped.event, place, &mut decided);
            for mut d in decided.0.drain(..) {
                if d.by_position {
                    d.event = match &stamped.name {
                        Some(name) => Value::Str(Arc::clone(name)),
                        None => self.naming.position(stamped.offset, &mut self.text),
                    };
                }
                self.format.decision(&d);
                out.push(Kind::Decision, &self.format);
            }
        }
    }

    /// An engine of the scenes in force alone, whose every event is late.
    fn late_engine(&self) -> Option<Engine<Record>> {
        let book = self.book.borrow();
        let rules = book.now();
        let mut engine = crate::empty_engine::<Record>(self.limits, &self.plan_fields);
        engine.set_declarations(&rules.loaded().declarations).ok()?;
        let patterns: Vec<&Pattern> = rules.patterns().iter().collect();
        engine.set_scenes_in_part(rules.scenes(), &patterns).ok()?;
        engine.watermark(Timestamp::MAX - 1, &mut Decided(Vec::new()));
        Some(engine)
    }
}

/// The decisions an engine gives (the rest dropped).
struct Decided(Vec<Decision>);

impl Sink<Record> for Decided {
    fn on_match(&mut self, _: &MatchRef<'_, Record>) {}

    fn on_decision(&mut self, decision: &Decision) {
        self.0.push(decision.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(default: &str) -> Rules {
        Rules::parse(
            "r.cep",
            &format!(
                "pattern p {{ action review match e where e: n > 1 }}
                 scene s {{ rules p outcomes approve < review default {default}
                     review if action review fallback approve deadline 100ms }}"
            ),
        )
        .unwrap()
    }

    /// An event's parts made after its time (an engine held it past a
    /// quiet source's clock, or past the cut its run resumed from) come
    /// after the frontier passed it, each at its own time: the event is
    /// gathered once every part came, never decided from some of them.
    #[test]
    fn parts_made_after_the_events_time_are_gathered_once_all_came() {
        let rules = Rules::parse(
            "r.cep",
            "pattern by_card { action review score 40 partition by card match e where e: amount > 100 }
             pattern by_user { action review score 30 partition by user match e where e: amount > 50 }
             scene s { rules by_card, by_user outcomes approve < review < decline default approve
                 review if action review decline if score >= 70 fallback approve deadline 100ms }",
        )
        .unwrap();
        let mut plan: Plan<Record> = Plan::new();
        plan.add(&rules).unwrap();
        let plan = plan.gathering_decisions();
        let groups = crate::route::groups(&plan);
        assert_eq!(groups.len(), 2, "two groups of patterns");
        let mut decoder = cepheid_decode::Decoder::new(
            cepheid_decode::Format::JsonLines,
            "ts",
            plan.fields().clone(),
        );
        let line = r#"{"ts": 5, "card": "c1", "user": "u1", "amount": 200}"#;
        let event = match decoder.decode(line.as_bytes()).unwrap() {
            cepheid_decode::Item::Event(_, event) => event,
            _ => panic!("not an event"),
        };
        // Each group's engine decides its part of the event.
        let parts: Vec<Vec<Decision>> = (plan.engines(&groups).unwrap().into_iter())
            .map(|(mut engine, _)| {
                let mut decided = Decided(Vec::new());
                let place = Stamped {
                    ts: 5,
                    source: 0,
                    offset: 1,
                    event: (),
                    name: None,
                }
                .place();
                engine.push_positioned(5, event.clone(), place, &mut decided);
                engine.watermark(Timestamp::MAX - 1, &mut decided);
                decided.0
            })
            .collect();
        assert!(parts.iter().all(|p| p.len() == 1), "{parts:?}");
        // A gatherer of `rules` told each event comes in `told` parts (or
        // not told), given the first part, sent at 100, the frontier at
        // 120 past it.
        let first_part = |rules: Rules, told: Option<usize>| {
            let book = Rc::new(RefCell::new(SceneBook::new(rules)));
            if let Some(n) = told {
                book.borrow_mut().parts_from(Timestamp::MIN, n);
            }
            let mut gather = Gather::new(book, Naming::Lines("in".to_string()), &plan);
            let mut sides = Sides::default();
            gather.take(parts[0].clone(), 100);
            gather.resolve(Some(120), (None, false), &mut sides);
            (gather, sides)
        };
        // One part of two, the frontier past it: not yet.
        let (mut gather, mut sides) = first_part(rules.clone(), Some(2));
        assert!(sides.now.is_empty());
        // The other, sent at 130: the event's one decision, of both.
        gather.take(parts[1].clone(), 130);
        gather.resolve(Some(140), (None, false), &mut sides);
        assert_eq!(sides.now.len(), 1);
        let text = String::from_utf8_lossy(sides.now.bytes()).into_owned();
        assert!(text.contains(r#""outcome":"decline","score":70"#), "{text}");
        assert!(text.contains(r#""position":"in:1""#), "{text}");
        assert!(gather.parts.is_empty());
        // Without the count of parts told, the frontier alone says.
        let (gather, sides) = first_part(Rules::parse("r.cep", "").unwrap(), None);
        assert_eq!(sides.now.len(), 1);
        assert_eq!(gather.short(), 0);
        // At the end, a part missing (a defect): decided from the one
        // that came, and counted to be said.
        let (mut gather, mut sides) = first_part(rules, Some(2));
        assert!(sides.now.is_empty());
        gather.resolve(None, (None, false), &mut sides);
        assert_eq!(sides.now.len(), 1);
        assert_eq!(gather.short(), 1);
        assert!(gather.parts.is_empty());
    }

    /// Each event is decided by the scene in force at its time; the
    /// changes only the gathered events were decided by are forgotten.
    #[test]
    fn a_scene_is_the_one_in_force_at_the_events_time_and_old_ones_go() {
        let mut book = SceneBook::new(rules("approve"));
        book.changed(100, &rules("review"));
        let default = |book: &SceneBook, ts| {
            let scene = book.scene(ts, "s").unwrap();
            scene.outcome_name(scene.default).to_string()
        };
        assert_eq!(default(&book, 99), "approve");
        assert_eq!(default(&book, 100), "review");
        book.forget_before(50);
        assert_eq!(book.changes.len(), 2);
        assert_eq!(default(&book, 60), "approve");
        book.forget_before(150);
        assert_eq!(book.changes.len(), 1);
        assert_eq!(default(&book, 160), "review");
        assert_eq!(book.made, 1);
    }
}
