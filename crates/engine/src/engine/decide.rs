//! Decisions: one record per event and scene (issue 62,
//! `docs/semantics.md`, "Decisions").
//!
//! An engine given scenes ([`Engine::add`](crate::Engine::add) of
//! [`Rules`](crate::Rules) with `scene` blocks) processes its events on a
//! loop of its own (`Core::run_to_reading`, each event through
//! `Core::process_deciding`): for each event it tests the
//! scenes' `when`, and for an event that enters one it collects the
//! matches that hold the event while the patterns take it
//! ([`Collect`], a [`Sink`] around the caller's), then resolves each
//! scene's outcome ([`Scene::resolve`]) and hands the caller's sink one
//! [`Decision`] per scene ([`Sink::on_decision`]). A rule set without
//! scenes never comes here.

use std::sync::Arc;

use hashbrown::HashMap;

use crate::engine::automaton::Automaton;
use crate::engine::core::Core;
use crate::engine::sink::{MatchRef, Sink};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldId, FieldPath, FieldResolver};
use crate::expr::{AccumulatorLayoutBuilder, Accumulators, CompiledExpr, Expr};
use crate::lookup::{Declarations, ListId, Lookup};
use crate::pattern::{Condition, Pattern};
use crate::primitives::Timestamp;
use crate::scene::Scene;
use crate::value::Value;

/// One event's decision in one scene (`docs/decisions.md`): given to
/// [`Sink::on_decision`] right after the engine processed the event, and
/// returned by [`Engine::decide_now`](crate::Engine::decide_now) and
/// [`Engine::dry_run`](crate::Engine::dry_run).
///
/// With `serde`, its fields as a whole (the values tagged with their
/// kind, as a snapshot keeps them): what carries a part's decision from
/// one worker to the one that gathers it ([`Decision::gather`]). The
/// record a run writes is the runtime's (`docs/decisions.md`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// The scene's name.
    pub scene: Arc<str>,
    /// The event's id: the value of the scene's `id` field, or its input
    /// position ([`Decision::by_position`]).
    #[serde(with = "cepheid_core::persist::via")]
    pub event: Value,
    /// Is [`Decision::event`] the event's input position (the scene has
    /// no `id` field, or the event lacks it)?
    pub by_position: bool,
    /// The event's time.
    pub ts: Timestamp,
    /// The outcome's name.
    pub outcome: Arc<str>,
    /// The summed score of the rules that count.
    pub score: f64,
    /// The scene's rules (not shadow) that fired on the event, in the
    /// scene's order.
    pub rules: Vec<Fired>,
    /// The scene's shadow rules that fired on the event (never counted).
    pub shadow: Vec<Fired>,
    /// The list check that decided the outcome (its text, `device in
    /// blocked_devices`), if one did.
    pub list: Option<Arc<str>>,
    /// A late event's decision: the scene's `late` outcome, no rule.
    pub late: bool,
    /// The fields the scene's rules read that the event lacks.
    pub missing: Vec<Arc<str>>,
    /// The input position the caller gave the event
    /// ([`Engine::push_positioned`](crate::Engine::push_positioned)),
    /// whether or not it names the decision ([`Decision::by_position`]):
    /// which event a decision is of, where ids may repeat (the parts of
    /// one event, [`Decision::gather`]). `None` when it gave none.
    #[serde(with = "cepheid_core::persist::via")]
    pub place: Option<Value>,
    /// The event's arrival number in the engine (which decision belongs to
    /// which pushed event, for `decide_now`).
    #[serde(skip)]
    pub(crate) arrival: u64,
}

impl Decision {
    /// The one decision of an event in `scene` made of the decisions
    /// `parts` of the same event and scene, one from each engine that runs
    /// a part of the rule set ([`Engine::set_scenes_in_part`]): the rules
    /// that fired in any part (each name and version once, in the
    /// scene's order), the first list check that held in any part (every
    /// part sees the same lists where the lists' writes reach every part
    /// before the next millisecond, as on workers), the outcome, score
    /// and counted rules resolved again over them all ([`Scene::resolve`]),
    /// the fields missing in any part. A late event's parts are alike:
    /// the first is its decision. `None` without parts.
    ///
    /// [`Engine::set_scenes_in_part`]: crate::Engine::set_scenes_in_part
    pub fn gather<'a>(
        scene: &Scene,
        parts: impl IntoIterator<Item = &'a Decision>,
    ) -> Option<Decision> {
        let mut parts = parts.into_iter();
        let mut gathered = parts.next()?.clone();
        if gathered.late {
            return Some(gathered);
        }
        let index = |rule: &str| scene.rules.iter().position(|r| r.pattern == rule);
        let check = |label: &Option<Arc<str>>| {
            let label = label.as_ref()?;
            scene.list_checks.iter().position(|c| c.label == *label)
        };
        let mut listed = check(&gathered.list);
        let mut fired: Vec<Fired> = std::mem::take(&mut gathered.rules);
        fired.append(&mut gathered.shadow);
        for part in parts {
            listed = match (listed, check(&part.list)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for f in part.rules.iter().chain(&part.shadow) {
                if !fired
                    .iter()
                    .any(|g| g.rule == f.rule && g.version == f.version)
                {
                    fired.push(f.clone());
                }
            }
            for field in &part.missing {
                if !gathered.missing.contains(field) {
                    gathered.missing.push(Arc::clone(field));
                }
            }
        }
        // (a rule of no scene rule is none of the scene's: left out, as
        // one engine never notes it)
        let mut fired: Vec<(usize, Fired)> = (fired.into_iter())
            .filter_map(|f| Some((index(&f.rule)?, f)))
            .collect();
        fired.sort_by_key(|(i, f)| (*i, f.version));
        let indexes: Vec<usize> = fired.iter().map(|(i, _)| *i).collect();
        let resolution = scene.resolve(&indexes, listed);
        for (i, mut f) in fired {
            f.counted = resolution.counted.contains(&i);
            match scene.rules[i].shadow {
                true => gathered.shadow.push(f),
                false => gathered.rules.push(f),
            }
        }
        gathered.outcome = scene
            .outcomes
            .get(resolution.outcome.index())
            .cloned()
            .unwrap_or_else(|| "?".into());
        gathered.score = resolution.score;
        gathered.list = (resolution.by_list)
            .and_then(|i| scene.list_checks.get(i))
            .map(|c| Arc::clone(&c.label));
        Some(gathered)
    }
}

/// A rule that fired on an event, in its [`Decision`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Fired {
    /// The pattern's name (`rule@scene` for a rule with parameters).
    pub rule: String,
    /// The version that fired (`docs/dynamic-rules.md`).
    pub version: u32,
    /// Its `action`, if any.
    pub action: Option<Arc<str>>,
    /// Its `score`, if any.
    pub score: Option<f64>,
    /// Does it count towards the outcome (false for a rule past the first
    /// under `hit first`, and for every shadow rule)?
    pub counted: bool,
    /// What its conditions read of lists and indicators, for its first
    /// match that held the event ([`MatchRef::reads`]).
    #[serde(with = "reads_via")]
    pub reads: Vec<(String, Value)>,
}

/// [`Fired::reads`] with `serde`: each value tagged with its kind.
mod reads_via {
    use cepheid_core::persist::{Loaded, Saved};
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::value::Value;

    pub(super) fn serialize<S: Serializer>(
        reads: &[(String, Value)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(reads.iter().map(|(name, value)| (name, Saved(value))))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Value)>, D::Error> {
        let reads: Vec<(String, Loaded<Value>)> = Vec::deserialize(d)?;
        Ok(reads.into_iter().map(|(name, v)| (name, v.0)).collect())
    }
}

/// What an engine's scenes decided ([`Engine::decision_stats`]): with
/// `serde`, an object of these counts by their names.
///
/// [`Engine::decision_stats`]: crate::Engine::decision_stats
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DecisionStats {
    /// Decisions made (one per event and scene it entered), late ones
    /// included.
    pub decisions: u64,
    /// Of them, decisions of late events.
    pub late: u64,
    /// Of them, decisions of events that lacked a field the scene's rules
    /// read.
    pub missing: u64,
    /// Of them, decisions a list check decided.
    pub by_list: u64,
    /// Of them, decisions of a scene a change of rules removed, for the
    /// events that arrived before the change.
    pub removed_scene: u64,
}

/// A scene as the engine runs it: its conditions compiled over the
/// engine's fields and lists.
#[derive(Clone)]
pub(super) struct SceneRun {
    pub(super) scene: Arc<Scene>,
    /// The scene's name, shared by its decisions.
    name: Arc<str>,
    entry: Option<CompiledExpr>,
    id: Option<FieldId>,
    /// Each list check's value and the engine's list.
    checks: Vec<(CompiledExpr, ListId)>,
    /// The scene's rule of each pattern name (the index in
    /// [`Scene::rules`]).
    by_pattern: HashMap<String, usize>,
    /// The fields its rules read, with their text.
    reads: Vec<(FieldId, Arc<str>)>,
    /// Does it hold a rule with parameters (a pattern made for it, which
    /// fires only on its events)?
    instances: bool,
    /// Removed by a change of rules: decides the events that arrived
    /// before the change (arrival numbers below this), then goes.
    retiring: Option<u64>,
    /// The texts of the rule set the scene was loaded from (their names
    /// and text), shared by its scenes: what a snapshot keeps so that
    /// [`Engine::restore_rules`](crate::Engine::restore_rules) makes the
    /// scene again. `None` for a scene given without its texts.
    pub(super) texts: Option<SceneTexts>,
}

/// The texts of a rule set (`(name, text)`, in load order), shared by the
/// scenes loaded from it.
pub(super) type SceneTexts = Arc<[(String, String)]>;

/// The scenes in force of an engine as a snapshot keeps them (format 13):
/// each rule set's texts and the names of its scenes in force, in the
/// engine's order, and whether the engine is a part
/// ([`Engine::set_scenes_in_part`](crate::Engine::set_scenes_in_part)).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct SavedScenes {
    pub(super) sets: Vec<SavedSceneSet>,
    pub(super) part: bool,
}

/// One rule set's texts (name and text, in load order) and the names of
/// its scenes in force.
pub(super) type SavedSceneSet = (Vec<(String, String)>, Vec<String>);

impl SceneRun {
    /// Compiles `scene` over `fields` and the engine's lists
    /// (`declarations`), reading its rules' fields from `patterns`.
    pub(super) fn new(
        scene: &Scene,
        patterns: &[&Pattern],
        declarations: &Declarations,
        fields: &mut dyn FieldResolver,
    ) -> Result<SceneRun, String> {
        let mut layout = AccumulatorLayoutBuilder::new();
        let mut compile = |e: &Expr, fields: &mut dyn FieldResolver| {
            CompiledExpr::compile(e, fields, &mut layout)
                .map_err(|e| format!("scene `{}`: {e}", scene.name))
        };
        let entry = match &scene.entry {
            Some(e) => Some(compile(e, fields)?),
            None => None,
        };
        let id = match &scene.id {
            Some(path) => Some(
                fields
                    .resolve(path)
                    .map_err(|e| format!("scene `{}`: {e}", scene.name))?,
            ),
            None => None,
        };
        let mut checks = Vec::new();
        for check in &scene.list_checks {
            let list = declarations.list(&check.list.name).ok_or_else(|| {
                format!(
                    "scene `{}`: the engine has no list `{}`",
                    scene.name, check.list.name
                )
            })?;
            checks.push((compile(&check.value, fields)?, list.id));
        }
        let mut by_pattern = HashMap::new();
        let mut paths: Vec<FieldPath> = Vec::new();
        for (i, rule) in scene.rules.iter().enumerate() {
            by_pattern.entry(rule.pattern.clone()).or_insert(i);
            let Some(p) = patterns.iter().find(|p| p.name == rule.pattern) else {
                continue;
            };
            paths.extend(p.partition_by.iter().cloned());
            for stage in &p.stages {
                if let Condition::Expr(e) = &stage.condition {
                    e.walk(|x| {
                        if let Expr::Field(path) = x {
                            paths.push(path.clone());
                        }
                    });
                }
            }
        }
        let mut reads: Vec<(FieldId, Arc<str>)> = Vec::new();
        for path in paths {
            let text: Arc<str> = path.to_string().into();
            if reads.iter().any(|(_, t)| *t == text) {
                continue;
            }
            let id = fields
                .resolve(&path)
                .map_err(|e| format!("scene `{}`: {e}", scene.name))?;
            reads.push((id, text));
        }
        Ok(SceneRun {
            scene: Arc::new(scene.clone()),
            name: scene.name.as_str().into(),
            entry,
            id,
            checks,
            by_pattern,
            reads,
            instances: scene.rules.iter().any(|r| r.instance),
            retiring: None,
            texts: None,
        })
    }
}

impl SceneRun {
    /// The first of the scene's list checks that holds for `event`. (Out
    /// of line: most scenes have none.)
    #[inline(never)]
    fn listed<E: Event>(
        &self,
        event: &E,
        empty: &Accumulators,
        lookup: &dyn Lookup,
    ) -> Option<usize> {
        self.checks.iter().position(|(value, list)| {
            let v = value.eval_with(event, empty, lookup);
            lookup.contains(*list, (&v).into()) == Some(true)
        })
    }
}

/// What a snapshot keeps of an engine's decisions (format version 11 on,
/// `docs/snapshot.md`): the input positions of the events waiting, by
/// arrival number, and the [`DecisionStats`] in their order.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct SavedDecisions {
    positions: Vec<SavedPosition>,
    numbering: Vec<(u64, i64)>,
    stats: [u64; 5],
}

/// An arrival number and its event's position (the value tagged by its
/// kind, as a snapshot keeps every value).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedPosition(u64, #[serde(with = "cepheid_core::persist::via")] Value);

/// A match of a rule that held the event under way.
#[derive(Debug)]
pub(super) struct FiredMatch {
    name: String,
    version: u32,
    reads: Vec<(String, Value)>,
}

/// An event's entry into a scene, read before the patterns take it (its
/// id and the fields it lacks are read when its record is made).
#[derive(Clone, Copy)]
struct Entered {
    scene: usize,
    /// The list check that holds.
    listed: Option<usize>,
}

/// The vectors [`resolve`] fills, kept from one event to the next.
#[derive(Default)]
struct Scratch {
    /// The index of each scene rule that fired.
    indexes: Vec<usize>,
    /// Each rule that fired, with its first match (by name and version).
    fired: Vec<(usize, usize)>,
}

/// The engine's scenes and what deciding needs between events.
pub(super) struct Decide {
    pub(super) scenes: Vec<SceneRun>,
    /// The positions the caller gave the events waiting, by arrival number
    /// (an event without one is numbered by its push, [`Decide::numbering`]).
    pub(super) positions: HashMap<u64, Value>,
    /// How an arrival number becomes the number of its push: from each
    /// arrival number on, the push number is the arrival number plus one
    /// plus the difference kept (late events take no arrival number, and
    /// events pushed for the shared indicators take one without a push).
    /// Rising; one entry per late or shared event, so mostly short.
    numbering: Vec<(u64, i64)>,
    /// The matches that held the event under way.
    fired: Vec<FiredMatch>,
    entered: Vec<Entered>,
    scratch: Scratch,
    pub(super) stats: DecisionStats,
    empty: Accumulators,
    /// The record handed to the sink, filled in place decision after
    /// decision (its names shared, its vectors' room kept).
    record: Decision,
    /// Are scenes kept for the events of before a change?
    retiring: bool,
    /// Is the engine a part of a rule set run in parts
    /// ([`Engine::set_scenes_in_part`](crate::Engine::set_scenes_in_part))?
    pub(super) part: bool,
    /// Does every event enter every scene (none has a `when` or a list
    /// check, none retires)? Then [`Decide::entered`] holds them all, and
    /// [`Decide::enter`] has nothing to read.
    plain: bool,
    /// The request under way ([`Engine::request`](crate::Engine::request)):
    /// its event enters only the scene it names, or none.
    pub(super) only: Option<Only>,
}

/// The event of a request: it enters the one scene named, if its `when`
/// holds, or none.
#[derive(Clone, Copy, Debug)]
pub(super) struct Only {
    /// Its arrival number.
    pub(super) seq: u64,
    /// The scene it names (an index into [`Decide::scenes`]), if any.
    pub(super) scene: Option<usize>,
    /// Did the scene's `when` not hold for it?
    pub(super) refused: bool,
    /// Are the shadow patterns not to take it ([`Request::shed_shadow`](crate::engine::Request::shed_shadow))?
    pub(super) shed: bool,
}

impl Decide {
    /// Deciding with `scenes`.
    pub(super) fn new(scenes: Vec<SceneRun>) -> Decide {
        let mut decide = Decide {
            scenes,
            positions: HashMap::new(),
            numbering: Vec::new(),
            fired: Vec::new(),
            entered: Vec::new(),
            scratch: Scratch::default(),
            stats: DecisionStats::default(),
            empty: Accumulators::default(),
            record: Decision {
                scene: "".into(),
                event: Value::Null,
                by_position: false,
                ts: 0,
                outcome: "".into(),
                score: 0.0,
                rules: Vec::new(),
                shadow: Vec::new(),
                list: None,
                late: false,
                missing: Vec::new(),
                place: None,
                arrival: 0,
            },
            retiring: false,
            part: false,
            plain: false,
            only: None,
        };
        decide.refresh();
        decide
    }

    /// A copy for a scratch engine ([`Engine::dry_run`]): the scenes, the
    /// positions kept and the counts.
    ///
    /// [`Engine::dry_run`]: crate::Engine::dry_run
    pub(super) fn fork(&self) -> Decide {
        Decide {
            positions: self.positions.clone(),
            numbering: self.numbering.clone(),
            stats: self.stats,
            part: self.part,
            ..Decide::new(self.scenes.clone())
        }
    }

    /// Adds `scenes` to those in force.
    pub(super) fn add(&mut self, scenes: Vec<SceneRun>) {
        self.scenes.extend(scenes);
        self.refresh();
    }

    /// After a change of the scenes: are some retiring, and does every
    /// event enter every scene ([`Decide::plain`])?
    fn refresh(&mut self) {
        self.retiring = self.scenes.iter().any(|s| s.retiring.is_some());
        self.plain = !self.retiring
            && (self.scenes.iter()).all(|s| s.entry.is_none() && s.checks.is_empty());
        self.entered.clear();
        if self.plain {
            let all = (0..self.scenes.len()).map(|scene| Entered {
                scene,
                listed: None,
            });
            self.entered.extend(all);
        }
    }

    /// What a snapshot keeps: the positions of the events waiting, and
    /// the counts.
    /// The scenes in force with their texts, for a snapshot: `None` when
    /// one of them has no texts (given without them), so none is made
    /// again from a part of the set.
    pub(super) fn save_scenes(&self) -> Option<SavedScenes> {
        let mut sets: Vec<SavedSceneSet> = Vec::new();
        let mut last: Option<&SceneTexts> = None;
        for run in self.scenes.iter().filter(|s| s.retiring.is_none()) {
            let texts = run.texts.as_ref()?;
            match last {
                Some(l) if Arc::ptr_eq(l, texts) => {}
                _ => sets.push((texts.to_vec(), Vec::new())),
            }
            last = Some(texts);
            if let Some((_, names)) = sets.last_mut() {
                names.push(run.scene.name.clone());
            }
        }
        Some(SavedScenes {
            sets,
            part: self.part,
        })
    }

    pub(super) fn save(&self) -> SavedDecisions {
        let s = &self.stats;
        let mut positions: Vec<SavedPosition> = (self.positions.iter())
            .map(|(k, v)| SavedPosition(*k, v.clone()))
            .collect();
        positions.sort_unstable_by_key(|p| p.0);
        SavedDecisions {
            positions,
            numbering: self.numbering.clone(),
            stats: [s.decisions, s.late, s.missing, s.by_list, s.removed_scene],
        }
    }

    /// Takes back what [`Decide::save`] kept.
    pub(super) fn restore(&mut self, saved: SavedDecisions) {
        self.positions = (saved.positions.into_iter())
            .map(|SavedPosition(k, v)| (k, v))
            .collect();
        self.numbering = saved.numbering;
        let [decisions, late, missing, by_list, removed_scene] = saved.stats;
        self.stats = DecisionStats {
            decisions,
            late,
            missing,
            by_list,
            removed_scene,
        };
    }

    /// The scenes in force (not those kept for the events of before a
    /// change).
    pub(super) fn in_force(&self) -> impl Iterator<Item = &Scene> {
        self.scenes
            .iter()
            .filter(|s| s.retiring.is_none())
            .map(|s| &*s.scene)
    }

    /// Replaces the scenes in force by `scenes`: a scene no longer among
    /// them is kept, retiring, for the events waiting that arrived before
    /// `next_arrival` (when some wait). Returns the names of the scenes
    /// removed.
    pub(super) fn replace(
        &mut self,
        scenes: Vec<SceneRun>,
        next_arrival: u64,
        waiting: bool,
    ) -> Vec<String> {
        // (the scenes in force first, then those kept for the events of
        // before a change: an event's decisions come in that order)
        let mut removed = Vec::new();
        let old = std::mem::replace(&mut self.scenes, scenes);
        for mut run in old {
            if run.retiring.is_none() {
                if self.scenes.iter().any(|s| s.scene.name == run.scene.name) {
                    continue;
                }
                removed.push(run.scene.name.clone());
                run.retiring = Some(next_arrival);
            }
            if waiting {
                self.scenes.push(run);
            }
        }
        self.refresh();
        removed
    }

    /// Does the engine decide at all (a scene in force, or one retiring)?
    pub(super) fn is_empty(&self) -> bool {
        self.scenes.is_empty()
    }

    /// Numbers the pushes from now on so that the event of arrival
    /// `next` is push number `pushes + 1`: when deciding starts (events
    /// that waited then are numbered by their arrival), after a late event
    /// (which took no arrival number) and after an event pushed for the
    /// shared indicators (which took one without a push).
    pub(super) fn number_from(&mut self, next: u64, pushes: u64) {
        let difference = pushes as i64 - next as i64;
        if self.numbering.last().map_or(0, |&(_, d)| d) != difference {
            self.numbering.push((next, difference));
        }
    }

    /// Reads which scenes the event of arrival `seq` enters and the list
    /// check that holds in each; true when it enters one (the matches that
    /// hold it are then collected, and [`Decide::decide`] makes its
    /// decisions; else [`Decide::pass`]).
    #[inline]
    pub(super) fn enter<E: Event>(&mut self, seq: u64, event: &E, lookup: &dyn Lookup) -> bool {
        if self.only.is_some_and(|only| only.seq == seq) {
            return self.enter_only(event, lookup);
        }
        if self.plain {
            return !self.entered.is_empty();
        }
        self.entered.clear();
        for (i, run) in self.scenes.iter().enumerate() {
            if run.retiring.is_some_and(|until| seq >= until) {
                continue;
            }
            let enters = match &run.entry {
                None => true,
                Some(e) => e.matches_with(event, &self.empty, lookup),
            };
            if !enters {
                continue;
            }
            let listed = match run.checks.is_empty() {
                true => None,
                false => run.listed(event, &self.empty, lookup),
            };
            self.entered.push(Entered { scene: i, listed });
        }
        !self.entered.is_empty()
    }

    /// [`Decide::enter`] for a request's event ([`Decide::only`]).
    #[inline(never)]
    fn enter_only<E: Event>(&mut self, event: &E, lookup: &dyn Lookup) -> bool {
        self.entered.clear();
        let Some(only) = &mut self.only else {
            return false;
        };
        let Some(i) = only.scene else {
            return false;
        };
        let run = &self.scenes[i];
        let enters = match &run.entry {
            None => true,
            Some(e) => e.matches_with(event, &self.empty, lookup),
        };
        if !enters {
            only.refused = true;
            return false;
        }
        let listed = match run.checks.is_empty() {
            true => None,
            false => run.listed(event, &self.empty, lookup),
        };
        self.entered.push(Entered { scene: i, listed });
        true
    }

    /// The index of the scene in force named `name`.
    pub(super) fn scene_named(&self, name: &str) -> Option<usize> {
        (self.scenes.iter()).position(|s| s.retiring.is_none() && *s.name == *name)
    }

    /// The `when` of scene `i`, as written.
    pub(super) fn condition(&self, i: usize) -> Arc<str> {
        let scene = &self.scenes[i].scene;
        (scene.entry_text.clone()).unwrap_or_else(|| "its `when`".into())
    }

    /// The event of arrival `seq` entered no scene: the position the
    /// caller gave it goes.
    #[inline]
    pub(super) fn pass(&mut self, seq: u64) {
        if !self.positions.is_empty() {
            self.positions.remove(&seq);
        }
    }

    /// The late event `event` at `ts`, at `position`: one decision per
    /// scene it enters, the scene's `late` outcome. (It takes no arrival
    /// number: it is numbered past the last one, never a waiting
    /// event's.)
    pub(super) fn late<E: Event, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        position: Value,
        event: &E,
        sink: &mut S,
    ) {
        let seq = u64::MAX;
        if !self.enter(seq, event, &crate::lookup::NO_LOOKUP) {
            return;
        }
        let Decide {
            scenes,
            entered,
            stats,
            record,
            ..
        } = self;
        for entered in entered.iter() {
            let run = &scenes[entered.scene];
            record.fill(run, event, || position.clone(), ts, seq);
            record.place = Some(position.clone());
            stats.count(run, record);
            stats.late += 1;
            record.rules.clear();
            record.shadow.clear();
            record.set_outcome(run, run.scene.late, 0.0, None);
            record.late = true;
            sink.on_decision(record);
        }
    }

    /// The decisions of the event of arrival `seq` at `ts`, `event`, once
    /// the patterns took it (after [`Decide::enter`] said it enters a
    /// scene).
    #[inline]
    pub(super) fn decide<E: Event, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        seq: u64,
        event: &E,
        sink: &mut S,
    ) {
        // (most events: one scene, no rule fired, no list holds, no
        // position given: its default outcome, the event numbered by its
        // push)
        let &[Entered {
            scene,
            listed: None,
        }] = &self.entered[..]
        else {
            return self.decide_all(ts, seq, event, sink);
        };
        if !(self.fired.is_empty() && self.positions.is_empty()) {
            return self.decide_all(ts, seq, event, sink);
        }
        let run = &self.scenes[scene];
        let record = &mut self.record;
        let numbering = &self.numbering;
        record.fill(
            run,
            event,
            || Value::Int(push_number(numbering, seq)),
            ts,
            seq,
        );
        if record.place.is_some() {
            record.place = None;
        }
        self.stats.count(run, record);
        record.late = false;
        if !(record.rules.is_empty() && record.shadow.is_empty()) {
            record.rules.clear();
            record.shadow.clear();
        }
        record.set_outcome(run, run.scene.default, 0.0, None);
        sink.on_decision(record);
    }

    /// [`Decide::decide`], every case.
    #[inline(never)]
    fn decide_all<E: Event, S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        seq: u64,
        event: &E,
        sink: &mut S,
    ) {
        let Decide {
            scenes,
            positions,
            numbering,
            fired: matches,
            entered,
            stats,
            record,
            scratch,
            ..
        } = self;
        // (the position the caller gave, if any: else the push's number)
        let given = match positions.is_empty() {
            true => None,
            false => positions.remove(&seq),
        };
        let position = || match &given {
            Some(given) => given.clone(),
            None => Value::Int(push_number(numbering, seq)),
        };
        let last = entered.len().saturating_sub(1);
        for (k, entered) in entered.iter().enumerate() {
            let run = &scenes[entered.scene];
            record.fill(run, event, position, ts, seq);
            record.place.clone_from(&given);
            stats.count(run, record);
            record.late = false;
            if matches.is_empty() && entered.listed.is_none() {
                // (nothing fired, no list holds: the default, as `resolve`
                // would say)
                record.rules.clear();
                record.shadow.clear();
                record.set_outcome(run, run.scene.default, 0.0, None);
            } else {
                // (the matches' names and reads move into the last record)
                let last = k == last;
                resolve(run, entered.listed, matches, last, scratch, record, stats);
            }
            sink.on_decision(record);
        }
        matches.clear();
    }

    /// What a match of pattern `name` is to the event under way: is it
    /// wanted (a scene the event entered holds the pattern, so that its
    /// match is noted), and is it outside (a rule's instance made for a
    /// scene the event does not enter: an instance fires only on the
    /// events of its scene, `docs/semantics.md`, "Decisions")?
    fn role(&self, name: &str) -> (bool, bool) {
        let (mut wanted, mut instance, mut inside) = (false, false, false);
        for (i, run) in self.scenes.iter().enumerate() {
            let Some(&rule) = run.by_pattern.get(name) else {
                continue;
            };
            let entered = self.entered.iter().any(|e| e.scene == i);
            wanted |= entered;
            if run.scene.rules[rule].instance {
                instance = true;
                inside |= entered;
            }
        }
        (wanted, instance && !inside)
    }

    /// Is the event of arrival `seq` a request whose shadow patterns are
    /// shed ([`Request::shed_shadow`](crate::engine::Request::shed_shadow))?
    #[inline]
    pub(super) fn sheds(&self, seq: u64) -> bool {
        self.only.is_some_and(|only| only.seq == seq && only.shed)
    }

    /// Does a scene hold a rule with parameters? Then every event the
    /// patterns take goes through [`Collect`], which holds back a match
    /// of an instance on an event outside its scene.
    #[inline]
    pub(super) fn has_instances(&self) -> bool {
        self.scenes.iter().any(|s| s.instances)
    }

    /// Are scenes kept for the events of before a change?
    #[inline]
    pub(super) fn retiring(&self) -> bool {
        self.retiring
    }

    /// Drops the scenes kept for the events of before a change once no
    /// such event waits (`first`: the lowest arrival number waiting).
    pub(super) fn retire(&mut self, first: Option<u64>) {
        self.scenes.retain(|s| match s.retiring {
            None => true,
            Some(until) => first.is_some_and(|first| first < until),
        });
        self.refresh();
    }
}

/// The number of the push of the event of arrival `seq` (`numbering`:
/// [`Decide::number_from`]).
#[inline]
fn push_number(numbering: &[(u64, i64)], seq: u64) -> i64 {
    let difference = match numbering {
        [] => 0,
        [(from, difference)] => {
            if *from <= seq {
                *difference
            } else {
                0
            }
        }
        _ => {
            let i = numbering.partition_point(|&(from, _)| from <= seq);
            i.checked_sub(1).map_or(0, |i| numbering[i].1)
        }
    };
    (seq as i64).saturating_add(1).saturating_add(difference)
}

impl DecisionStats {
    /// Counts the decision `record` of `run` (its list check and lateness
    /// apart).
    #[inline]
    fn count(&mut self, run: &SceneRun, record: &Decision) {
        self.decisions += 1;
        if !record.missing.is_empty() {
            self.missing += 1;
        }
        if run.retiring.is_some() {
            self.removed_scene += 1;
        }
    }
}

/// The record of an event in `run` where a rule fired or a list check
/// holds: its rules that fired (each name and version once, in the
/// scene's order) and its outcome by [`Scene::resolve`]. With `last`, the
/// matches' names and reads move into the record (no other scene reads
/// them).
fn resolve(
    run: &SceneRun,
    listed: Option<usize>,
    matches: &mut [FiredMatch],
    last: bool,
    scratch: &mut Scratch,
    record: &mut Decision,
    stats: &mut DecisionStats,
) {
    let scene = &run.scene;
    // The scene's rules that fired (their indexes, and the matches of each
    // name and version once).
    let Scratch { indexes, fired } = scratch;
    indexes.clear();
    fired.clear();
    for (k, m) in matches.iter().enumerate() {
        let Some(&i) = run.by_pattern.get(&m.name) else {
            continue;
        };
        let seen = (fired.iter())
            .any(|&(_, f)| matches[f].name == m.name && matches[f].version == m.version);
        if !seen {
            fired.push((i, k));
        }
        indexes.push(i);
    }
    if fired.len() > 1 {
        fired.sort_by_key(|&(i, k)| (i, matches[k].version));
    }
    let resolution = if indexes.is_empty() && listed.is_none() {
        // (nothing fired, no list holds: the default, as `resolve` would
        // say, without its vectors)
        crate::scene::Resolution {
            outcome: scene.default,
            score: 0.0,
            by_list: None,
            counted: Vec::new(),
        }
    } else {
        scene.resolve(indexes, listed)
    };
    record.rules.clear();
    record.shadow.clear();
    for &(i, k) in fired.iter() {
        let rule = &scene.rules[i];
        let m = &mut matches[k];
        let (name, reads) = match last {
            true => (std::mem::take(&mut m.name), std::mem::take(&mut m.reads)),
            false => (m.name.clone(), m.reads.clone()),
        };
        let f = Fired {
            rule: name,
            version: m.version,
            action: rule.action.clone(),
            score: rule.score,
            counted: resolution.counted.contains(&i),
            reads,
        };
        if rule.shadow {
            record.shadow.push(f);
        } else {
            record.rules.push(f);
        }
    }
    let list = (resolution.by_list)
        .and_then(|i| scene.list_checks.get(i))
        .map(|c| Arc::clone(&c.label));
    if list.is_some() {
        stats.by_list += 1;
    }
    record.set_outcome(run, resolution.outcome, resolution.score, list);
}

impl Decision {
    /// The record of `event` in `run` (`position`: its input position):
    /// its scene, id, time and the fields the scene's rules read that it
    /// lacks (its outcome, rules and `late` are set apart). The scene's
    /// name is shared, and left as it is when it is the same already.
    #[inline(always)]
    fn fill<E: Event>(
        &mut self,
        run: &SceneRun,
        event: &E,
        position: impl FnOnce() -> Value,
        ts: Timestamp,
        arrival: u64,
    ) {
        if !Arc::ptr_eq(&self.scene, &run.name) {
            self.scene = Arc::clone(&run.name);
        }
        let id = match run.id {
            Some(f) => event.field_owned(f),
            None => Value::Null,
        };
        self.by_position = id.is_null();
        self.event = if self.by_position { position() } else { id };
        self.ts = ts;
        self.arrival = arrival;
        if !self.missing.is_empty() {
            self.missing.clear();
        }
        for (f, text) in &run.reads {
            if event.field(*f).is_null() {
                self.missing.push(Arc::clone(text));
            }
        }
    }

    /// The record's outcome (of `run`'s), score and deciding list check.
    /// The outcome's name is shared, and left as it is when it is the
    /// same already.
    #[inline(always)]
    fn set_outcome(
        &mut self,
        run: &SceneRun,
        outcome: crate::scene::OutcomeId,
        score: f64,
        list: Option<Arc<str>>,
    ) {
        match run.scene.outcomes.get(outcome.index()) {
            Some(name) if Arc::ptr_eq(&self.outcome, name) => {}
            Some(name) => self.outcome = Arc::clone(name),
            None => self.outcome = "?".into(),
        }
        self.score = score;
        self.list = list;
    }
}

/// The caller's sink while the patterns take an event that enters a scene:
/// everything goes on to it, and each match that holds the event is noted
/// as a firing.
pub(super) struct Collect<'a, E, S: ?Sized> {
    pub(super) inner: &'a mut S,
    /// The event under way, where the engine's store keeps it.
    pub(super) event: *const E,
    pub(super) fired: &'a mut Decide,
}

impl<E, S: Sink<E> + ?Sized> Collect<'_, E, S> {
    /// Does match `m` hold the event under way?
    fn holds(&self, m: &MatchRef<'_, E>) -> bool {
        let mut holds = false;
        m.for_each_stage(|_, events| {
            for e in events {
                holds |= std::ptr::eq(e, self.event);
            }
        });
        holds
    }
}

impl<E, S: Sink<E> + ?Sized> Sink<E> for Collect<'_, E, S> {
    fn holds_back(&mut self, m: &MatchRef<'_, E>) -> bool {
        // (an instance's match on an event of another scene, or of none:
        // not made, neither counted nor writing)
        let (_, outside) = self.fired.role(m.pattern());
        outside && self.holds(m)
    }

    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        let (wanted, _) = self.fired.role(m.pattern());
        if !wanted {
            return self.inner.on_match(m);
        }
        let holds = self.holds(m);
        self.inner.on_match(m);
        if holds && wanted {
            self.fired.fired.push(FiredMatch {
                name: m.pattern().to_string(),
                version: m.version(),
                reads: m.reads(),
            });
        }
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        self.inner.on_timeout(m, expired_at);
    }

    fn on_late(&mut self, ts: Timestamp, event: &E) {
        self.inner.on_late(ts, event);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, E>) {
        self.inner.on_dropped(partial);
    }

    fn on_decision(&mut self, decision: &Decision) {
        self.inner.on_decision(decision);
    }
}

impl<E: Event + 'static, A: Automaton<E, Cache = crate::matcher::Cache>> Core<E, A> {
    /// Compiles `scenes` over the engine's fields (`fields`, a copy the
    /// caller keeps on success) and lists; `new` are patterns about to be
    /// added beside the engine's (`beside`: an addition, where a scene
    /// named like one in force is an error), or to replace them.
    pub(super) fn compile_scenes(
        &self,
        scenes: &[Scene],
        new: &[&Pattern],
        fields: &mut E::Fields,
        beside: bool,
        texts: Option<SceneTexts>,
    ) -> Result<Vec<SceneRun>, Error> {
        let mut patterns: Vec<&Pattern> = new.to_vec();
        if beside {
            patterns.extend(self.in_force());
        }
        let declarations = self.memory.declarations();
        let mut runs = Vec::with_capacity(scenes.len());
        for scene in scenes {
            let taken = (beside
                && (self.decide.iter().flat_map(|d| d.in_force())).any(|s| s.name == scene.name))
                || runs.iter().any(|r: &SceneRun| r.scene.name == scene.name);
            if taken {
                let message = format!("a scene named `{}` is already in the engine", scene.name);
                return Err(Error::new(ErrorKind::Pattern, message).with_span(scene.span));
            }
            let mut run = SceneRun::new(scene, &patterns, declarations, fields)
                .map_err(|e| Error::new(ErrorKind::Field, e).with_span(scene.span))?;
            run.texts = texts.clone();
            runs.push(run);
        }
        Ok(runs)
    }

    /// Is the engine a part of a rule set run in parts
    /// ([`set_scenes_in_part`](crate::Engine::set_scenes_in_part))?
    pub(super) fn in_part(&self) -> bool {
        self.decide.as_ref().is_some_and(|d| d.part)
    }

    /// Makes `scenes` the scenes in force (a change of rules): a scene
    /// no longer among them is kept for the events waiting that arrived
    /// before the change (`docs/semantics.md`, "Decisions"). Returns the
    /// names of the scenes removed.
    pub(super) fn set_scenes(&mut self, scenes: Vec<SceneRun>) -> Vec<String> {
        let waiting = self.clock.waiting() > 0;
        let next = self.clock.next_arrival();
        let removed = match &mut self.decide {
            Some(decide) => decide.replace(scenes, next, waiting),
            None if scenes.is_empty() => Vec::new(),
            None => {
                self.decide = Some(self.deciding(scenes));
                Vec::new()
            }
        };
        if self.decide.as_ref().is_some_and(|d| d.is_empty()) {
            // (no scene left, none retiring: the plain loops again)
            self.decide = None;
        }
        removed
    }
}

impl<E: Event + 'static> crate::Engine<E> {
    /// Compiles `scenes` over the engine's fields and lists
    /// ([`Core::compile_scenes`]).
    pub(super) fn compile_scenes(
        &self,
        scenes: &[Scene],
        new: &[&Pattern],
        fields: &mut E::Fields,
        beside: bool,
        texts: Option<SceneTexts>,
    ) -> Result<Vec<SceneRun>, Error> {
        self.core.compile_scenes(scenes, new, fields, beside, texts)
    }

    /// Makes the engine one **part** of a rule set run in parts (the
    /// engines of `cepheid_dataflow`'s workers, each holding a group of
    /// its patterns, `docs/design/decisions-on-workers.md`), whose scenes
    /// are `scenes`: the rule set's, all of them, with `patterns` all its
    /// patterns, the engine's and the other parts' (for the fields a
    /// scene's rules read, so that each part names the same missing
    /// fields). Each event that enters a scene then gets a decision *of
    /// this part*: the scene's rules that fired here, the list check that
    /// held here, an outcome resolved over them alone;
    /// [`Decision::gather`] makes the event's one decision of every
    /// part's. A rule's instance (`rule@scene`) fires only on the events
    /// of its scene, as in one engine. [`decision_stats`](crate::Engine::decision_stats)
    /// counts the part's decisions.
    ///
    /// Called again (a change of the rule set), the scenes in force are
    /// replaced as [`set_rules`](crate::Engine::set_rules) replaces a whole
    /// rule set's (a scene removed decides the events that arrived before
    /// the change): returns the names of the scenes removed. A part's
    /// scenes change only so: `set_rules` leaves them as they are. A field
    /// a scene reads that the engine's events cannot have is an error,
    /// and nothing changes.
    pub fn set_scenes_in_part(
        &mut self,
        scenes: &[Scene],
        patterns: &[&Pattern],
    ) -> Result<Vec<String>, Error> {
        self.scenes_in_part(scenes, patterns, None)
    }

    /// The scenes of a part, compiled over `patterns`, with the texts
    /// they were loaded from if known (a snapshot then keeps them).
    fn scenes_in_part(
        &mut self,
        scenes: &[Scene],
        patterns: &[&Pattern],
        texts: Option<SceneTexts>,
    ) -> Result<Vec<String>, Error> {
        let mut fields = self.fields.clone();
        let runs = self.compile_scenes(scenes, patterns, &mut fields, false, texts)?;
        self.fields = fields;
        let removed = self.set_scenes(runs);
        if let Some(decide) = &mut self.core.decide {
            decide.part = true;
        }
        self.read_new_fields();
        Ok(removed)
    }

    /// [`set_scenes_in_part`](crate::Engine::set_scenes_in_part) of the
    /// scenes of `rules`, kept with the texts `rules` were loaded from: a
    /// snapshot of the engine then keeps its scenes, and an engine
    /// restored from it with the snapshot's rules
    /// ([`restore_rules`](crate::Engine::restore_rules): a dataflow
    /// worker's after a change of rules) has them again, in part.
    pub fn set_rules_scenes_in_part(
        &mut self,
        rules: &crate::Rules,
        patterns: &[&Pattern],
    ) -> Result<Vec<String>, Error> {
        let texts = <crate::Rules as crate::engine::sealed::Sealed<E>>::texts(rules);
        self.scenes_in_part(rules.scenes(), patterns, texts)
    }

    /// Adds compiled scenes to those in force.
    pub(super) fn add_scenes(&mut self, scenes: Vec<SceneRun>) {
        match &mut self.core.decide {
            Some(decide) => decide.add(scenes),
            None => self.core.decide = Some(self.core.deciding(scenes)),
        }
    }

    /// Makes `scenes` the scenes in force ([`Core::set_scenes`]).
    pub(super) fn set_scenes(&mut self, scenes: Vec<SceneRun>) -> Vec<String> {
        self.core.set_scenes(scenes)
    }

    /// The scenes in force (`docs/language.md` §11.3), in the order
    /// added: each event that enters one gets one [`Decision`] of it
    /// ([`Sink::on_decision`]).
    pub fn scenes(&self) -> impl Iterator<Item = &Scene> {
        self.core.decide.iter().flat_map(|d| d.in_force())
    }

    /// What the scenes decided so far ([`DecisionStats`]): all zero for an
    /// engine without scenes.
    pub fn decision_stats(&self) -> DecisionStats {
        self.core
            .decide
            .as_ref()
            .map(|d| d.stats)
            .unwrap_or_default()
    }

    /// [`push`](crate::Engine::push) with the event's input position: the
    /// id its decisions carry when the scene has no `id` field or the
    /// event lacks it (a line number, `"events.jsonl:12"`, a topic,
    /// partition and offset: any value). [`push`](crate::Engine::push)
    /// numbers the events by their push (1 for the first). An engine
    /// without scenes takes the event as `push` does.
    ///
    /// ```
    /// use cepheid_engine::{Decision, Engine, MatchRef, Record, Rules, Sink, Value};
    /// let rules = Rules::parse("r.cep", r#"
    ///     pattern big { score 80 action review match p where p: amount > 100 }
    ///     scene payment {
    ///         when type == "payment"
    ///         rules big
    ///         outcomes approve < review
    ///         review if action review
    ///         fallback approve
    ///         deadline 100ms
    ///     }"#)?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&rules)?;
    /// #[derive(Default)]
    /// struct Out(Vec<Decision>);
    /// impl Sink<Record> for Out {
    ///     fn on_match(&mut self, _: &MatchRef<'_, Record>) {}
    ///     fn on_decision(&mut self, d: &Decision) {
    ///         self.0.push(d.clone());
    ///     }
    /// }
    /// let mut out = Out::default();
    /// let mut decoder = cepheid_decode::Decoder::new(
    ///     cepheid_decode::Format::JsonLines, "ts", engine.fields().clone());
    /// for (line, text) in [
    ///     (1, r#"{"ts": 1, "type": "payment", "amount": 500}"#),
    ///     (2, r#"{"ts": 2, "type": "login"}"#),
    ///     (3, r#"{"ts": 3, "type": "payment", "amount": 5}"#),
    /// ] {
    ///     if let cepheid_decode::Item::Event(ts, record) = decoder.decode(text.as_bytes())? {
    ///         engine.push_positioned(ts, record, Value::Int(line), &mut out);
    ///     }
    /// }
    /// engine.finish(&mut out);
    /// let outcomes: Vec<(&str, &Value)> = out.0.iter().map(|d| (&*d.outcome, &d.event)).collect();
    /// assert_eq!(outcomes, [("review", &Value::Int(1)), ("approve", &Value::Int(3))]);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn push_positioned<S: Sink<E> + ?Sized>(
        &mut self,
        ts: Timestamp,
        event: E,
        position: Value,
        sink: &mut S,
    ) -> crate::Arrival {
        let arrival = self.core.push_positioned(ts, event, Some(position), sink);
        self.core.reap();
        arrival
    }
}

/// The caller's sink while [`Engine::decide_now`](crate::Engine::decide_now)
/// processes its event: the decisions of that event (by its arrival
/// number) are kept to be returned, everything else goes on.
pub(super) struct Catch<'a, S: ?Sized> {
    pub(super) inner: &'a mut S,
    pub(super) arrival: u64,
    pub(super) caught: Vec<Decision>,
}

impl<E, S: Sink<E> + ?Sized> Sink<E> for Catch<'_, S> {
    fn on_match(&mut self, m: &MatchRef<'_, E>) {
        self.inner.on_match(m);
    }

    fn on_timeout(&mut self, m: &MatchRef<'_, E>, expired_at: Timestamp) {
        self.inner.on_timeout(m, expired_at);
    }

    fn on_late(&mut self, ts: Timestamp, event: &E) {
        self.inner.on_late(ts, event);
    }

    fn on_dropped(&mut self, partial: &MatchRef<'_, E>) {
        self.inner.on_dropped(partial);
    }

    fn on_decision(&mut self, decision: &Decision) {
        if decision.arrival == self.arrival {
            self.caught.push(decision.clone());
        } else {
            self.inner.on_decision(decision);
        }
    }
}

/// A sink that keeps nothing (a dry run's scratch engine).
pub(super) struct Nothing;

impl<E> Sink<E> for Nothing {
    fn on_match(&mut self, _: &MatchRef<'_, E>) {}
}

impl<E: Event + 'static> crate::Engine<E> {
    /// Processing time, at once: takes `event` in as arriving at `now` (the
    /// caller's clock, as [`push_now`](crate::Engine::push_now) does: never
    /// behind the watermark), processes it now rather than when the clock
    /// passes its millisecond (after the deadlines and list changes due at
    /// its time, and the events that arrived before it, in the order the
    /// held path would have: `docs/semantics.md`, "Decisions"), and
    /// returns its decisions, one per scene it enters (none for an engine
    /// without scenes). Its matches and the other events' output go to
    /// `sink`, as the held path would give them. The event's millisecond
    /// stays open: an event arriving later at the same `now` takes the
    /// same time and is processed after it, as the held path orders events
    /// of one time (so a service answering thousands of requests a second
    /// keeps their times on its clock, none moved to a later
    /// millisecond). `position` is its input position
    /// ([`push_positioned`](crate::Engine::push_positioned)).
    pub fn decide_now<S: Sink<E> + ?Sized>(
        &mut self,
        now: Timestamp,
        event: E,
        position: Option<Value>,
        sink: &mut S,
    ) -> Vec<Decision> {
        let ts = match self.current_watermark() {
            Some(watermark) if now <= watermark => watermark.saturating_add(1),
            _ => now,
        };
        self.tick(ts, sink);
        let mut catch = Catch {
            inner: sink,
            arrival: self.core.clock.next_arrival(),
            caught: Vec::new(),
        };
        self.core.push_positioned(ts, event, position, &mut catch);
        self.core.run_through(ts, &mut catch);
        self.core.reap();
        catch.caught
    }
}

impl<E: Event + serde::Serialize + serde::de::DeserializeOwned + 'static> crate::Engine<E> {
    /// The decisions [`decide_now`](crate::Engine::decide_now)`(now, event,
    /// position)` would return, changing nothing: the engine's state (its
    /// partial matches, waiting events, lists, indicators, counts and
    /// watermark) is as before, and later events match as they would have.
    /// It runs a scratch copy of the engine (a snapshot restored beside
    /// it, sharing its automata): its cost is the engine's state's, for
    /// tools and tests rather than for every event of a stream.
    ///
    /// Fails as [`snapshot`](crate::Engine::snapshot) and
    /// [`restore`](crate::Engine::restore) do (events pushed for shared
    /// indicators wait, a draining version built from a closure).
    pub fn dry_run(
        &self,
        now: Timestamp,
        event: E,
        position: Option<Value>,
    ) -> Result<Vec<Decision>, Error> {
        let mut scratch = self.scratch()?;
        Ok(scratch.decide_now(now, event, position, &mut Nothing))
    }

    /// A copy of the engine, in its state (a snapshot restored beside it,
    /// sharing its automata), with its patterns, lists, indicators *and
    /// scenes*: what [`restore_rules`](crate::Engine::restore_rules) of
    /// its snapshot would not give, a snapshot holding no scene. For a
    /// run that keeps its engine as it was given before it restores a
    /// checkpoint into it (and may have to start over without it).
    ///
    /// Fails as [`snapshot`](crate::Engine::snapshot) and
    /// [`restore`](crate::Engine::restore) do.
    pub fn duplicate(&self) -> Result<Self, Error> {
        let mut bytes = Vec::new();
        self.snapshot_into(&mut bytes)?;
        self.copy_of(&bytes)
    }

    /// A [`duplicate`](crate::Engine::duplicate) that remembers no
    /// request: a scratch copy for one dry run, whose request the engine
    /// copied answered from its memory when it held it (copying every
    /// request remembered would cost a dry run a service's whole table).
    pub(crate) fn scratch(&self) -> Result<Self, Error> {
        let mut bytes = Vec::new();
        self.snapshot_without_requests(&mut bytes)?;
        self.copy_of(&bytes)
    }

    /// A copy of the engine with the state of its snapshot `bytes`.
    fn copy_of(&self, bytes: &[u8]) -> Result<Self, Error> {
        let mut copy = Self::configured_by(bytes)?;
        copy.fields = self.fields.clone();
        copy.set_declarations(self.declarations())?;
        for nfa in self.automata() {
            copy.add_shared(nfa)?;
        }
        copy.core.decide = self.core.decide.as_ref().map(|d| Box::new(d.fork()));
        copy.restore(bytes)?;
        Ok(copy)
    }
}
