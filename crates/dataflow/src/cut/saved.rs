//! What a worker saves at a cut and how a worker goes on from it: its
//! state read from its piece ([`WorkerState`]), restored on the same
//! number of workers ([`WorkerCut::restore`]) or another
//! ([`WorkerCut::rescale`]), one engine's checkpoint read as the cut of one
//! worker ([`WorkerCut::from_engine`]). (A cut is merged into one engine
//! by the runtime, which reads these sections too: `cepheid_runtime`'s
//! `one_engine.rs`.)

use super::*;
use crate::pattern::Pattern;
use crate::route::{Layout, SHARED};
use cepheid_runtime::checkpoint::CutRules;

/// One engine of a worker at a cut (the runtime's, which reads a cut of
/// workers for one engine too).
pub(crate) use cepheid_runtime::checkpoint::SavedPiece;

/// What a worker saved at a cut, read from its piece (its engines, its
/// [`Part::Sources`] and [`Part::Stash`]; in a cut of format 5 to 7, the
/// whole of it in postcard, [`Part::Legacy`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerState {
    pub epoch: Timestamp,
    pub sources: Vec<(u32, SourceState)>,
    pub ends: Vec<SourceEnd>,
    /// The engines' snapshots, by group then key group.
    pub pieces: Vec<SavedPiece>,
    /// Stashed events sent below the epoch, with their group, encoded
    /// (those a router held: [`HELD`]).
    pub stash: Vec<u8>,
    /// The rules in force, the changes pending and their counts
    /// ([`Part::Rules`]; none in a cut of format 5 to 7).
    #[serde(skip)]
    pub rules: Option<CutRules>,
}

/// The group of a stashed event that a router held (a plan whose rules
/// can change routes an event once the changes before its time are
/// known): not routed yet, it goes to a router again on resuming.
pub(crate) use cepheid_runtime::checkpoint::HELD;

/// How a worker's engines are made again at a cut: of the plan's groups
/// and patterns, or after a change of rules of the cut's groups, each
/// engine with the rules its snapshot holds.
struct Making<'a, E: Event + 'static> {
    plan: &'a Plan<E>,
    members: Vec<Vec<usize>>,
    changed: bool,
    groups: usize,
}

impl<'a, E: Event + DeserializeOwned + 'static> Making<'a, E> {
    fn new(plan: &'a Plan<E>, rules: Option<&CutRules>, held: bool) -> Result<Self, Error> {
        let pending = rules.is_some_and(|r| r.changed_plan() || !r.pending.is_empty());
        if (pending || held) && plan.changing.is_none() {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "the cut was taken while the rules could change: resume it with a plan whose rules can (`Plan::changing`)",
            ));
        }
        let members = groups(plan);
        let changed = rules.is_some_and(CutRules::changed_plan);
        let groups = match rules {
            Some(rules) if changed => rules.groups.len(),
            _ => members.len(),
        };
        Ok(Making {
            plan,
            members,
            changed,
            groups,
        })
    }

    /// The engine of `saved`'s group over key groups `range`, restored.
    fn engine(&self, saved: &SavedPiece, range: (u64, u64)) -> Result<Piece<E>, Error> {
        if !self.changed {
            let mut piece = fresh(self.plan, &self.members, saved.group, range)?;
            piece.engine.0.restore(&saved.engine[..])?;
            return Ok(piece);
        }
        if saved.group as usize >= self.groups {
            return Err(other_patterns());
        }
        Ok(Piece {
            group: saved.group,
            from: range.0,
            to: range.1,
            engine: (
                crate::restored_engine(self.plan, &saved.engine)?,
                Vec::new(),
            ),
        })
    }

    /// The router of worker `index` of `workers` by the cut's groups.
    fn router(&self, rules: Option<&CutRules>, index: usize, workers: usize) -> Router<E>
    where
        E: Clone,
    {
        match rules {
            Some(rules) if self.changed => Router::of_layout(
                &Layout::of(&rules.groups),
                self.plan.fields(),
                index,
                workers,
            ),
            _ => Router::new(self.plan, &self.members, index, workers),
        }
    }

    /// `stash` checked: each group one of the cut's; those a router held
    /// apart.
    fn stash(&self, stash: Vec<(u32, Stamped<E>)>) -> Result<Stashes<E>, Error> {
        let (held, routed): (Vec<_>, Vec<_>) = stash.into_iter().partition(|(g, _)| *g == HELD);
        if routed
            .iter()
            .any(|(g, _)| (*g & !SHARED) as usize >= self.groups)
        {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "the worker's state names a group of patterns the plan does not have",
            ));
        }
        Ok((routed, held.into_iter().map(|(_, s)| s).collect()))
    }
}

/// A stash's routed events, and those a router held.
type Stashes<E> = (Vec<(u32, Stamped<E>)>, Vec<Stamped<E>>);

/// The error of a state saved with other patterns.
fn other_patterns() -> Error {
    Error::new(
        ErrorKind::Snapshot,
        "the worker's state was saved with other patterns",
    )
}

/// Checks every worker's piece of a cut against `plan` (each restored
/// and dropped), before anything is touched: the pieces the runtime read
/// and checked against the command and the workers' layout
/// (`Runtime::on_cluster`). Gives each one's place in the input (its
/// first source's).
pub(crate) fn checked<E>(
    plan: &Plan<E>,
    pieces: &[Saved],
) -> Result<Vec<u64>, cepheid_runtime::Unusable>
where
    E: Event + DeserializeOwned + 'static,
{
    let mut places = Vec::with_capacity(pieces.len());
    for (index, piece) in pieces.iter().enumerate() {
        let check = WorkerCut::new(Cuts::new(), |_, _| {});
        let checked = check.restore(plan, piece).and_then(|_| {
            let sources = WorkerCut::saved_sources(piece)?;
            let place = sources.iter().find(|(s, _)| *s == 0);
            places.push(place.map_or(0, |(_, state)| state.position));
            Ok(())
        });
        if let Err(source) = checked {
            return Err(cepheid_runtime::Unusable::Worker { index, source });
        }
    }
    Ok(places)
}

impl WorkerCut {
    /// Goes on from a state saved at a cut, before the dataflow is built
    /// with `plan` (the plan and worker count of the run that saved it);
    /// returns its epoch. Fails with [`ErrorKind::Snapshot`] when the piece
    /// is not such a state or does not fit the plan (its engines'
    /// [`Engine::restore`](crate::Engine::restore) fails).
    pub fn restore<E>(&self, plan: &Plan<E>, saved: &Saved) -> Result<Timestamp, Error>
    where
        E: Event + DeserializeOwned + 'static,
    {
        let state = WorkerState::of(saved)?;
        let stash: Vec<(u32, Stamped<E>)> = decode_stash(&state.stash).map_err(not_a_state)?;
        let held = stash.iter().any(|(g, _)| *g == HELD);
        let making = Making::new(plan, state.rules.as_ref(), held)?;
        let mut pieces = Vec::with_capacity(state.pieces.len());
        for saved in &state.pieces {
            pieces.push(making.engine(saved, (saved.from, saved.to))?);
        }
        check_pieces(&pieces, making.groups)?;
        let (stash, held) = making.stash(stash)?;
        let restored = Restored {
            epoch: state.epoch,
            pieces,
            stash,
            held,
            ends: state.ends,
            rules: state.rules,
        };
        Ok(self.install(state.epoch, state.sources, restored))
    }

    /// Goes on, as worker `index` of `workers`, from the states every
    /// worker of a run on *another* number of workers saved at one cut
    /// (`states`, all of them, in worker order), before the dataflow is
    /// built with `plan`; returns the cut's epoch. Fails as
    /// [`restore`](WorkerCut::restore) does, and when the states are not of
    /// one cut.
    ///
    /// - **Keys** go to the worker of their key group (see
    ///   [`key_hash`](crate::key_hash)): each old engine whose
    ///   range of key groups meets this worker's is restored, and keeps the
    ///   keys of the common range (one engine per such range; their
    ///   counts are kept by the worker whose range holds the old range's
    ///   start, so that they add up once).
    /// - **Events in flight** (stashed, sent below the epoch) go to the
    ///   worker of their key, as the run's routing sends them.
    /// - **Sources**: each old source that had not ended is *retired*: its
    ///   clock's end ([`Lateness::end`]: the largest time it read, its
    ///   watermark, punctuation, counts) joins the ends received, as if it
    ///   had ended at the cut. A source of this worker goes on with a clock
    ///   of the same settings whose watermark starts at the least
    ///   watermark of the retired sources of its number (none when they had
    ///   all ended), no time seen and zero counts; its place is the
    ///   caller's to compute from every old source's
    ///   ([`saved_sources`](WorkerCut::saved_sources)). What the old
    ///   sources of a number could not read (`unread`) goes to worker 0.
    pub fn rescale<E>(
        &self,
        plan: &Plan<E>,
        states: &[&Saved],
        index: usize,
        workers: usize,
    ) -> Result<Timestamp, Error>
    where
        E: Event + Clone + DeserializeOwned + 'static,
    {
        let (olds, epoch) = one_cut(states)?;
        let first = &olds[0];
        let mut stashes = Vec::with_capacity(olds.len());
        for old in &olds {
            let events: Vec<(u32, Stamped<E>)> = decode_stash(&old.stash).map_err(not_a_state)?;
            stashes.push(events);
        }
        let held = stashes.iter().flatten().any(|(g, _)| *g == HELD);
        // (each worker's rules are the same but what its readers counted,
        // which worker 0 takes on, and the fields its process had
        // numbered)
        let rules = first.rules.clone().map(|mut rules| {
            for old in olds.iter().filter_map(|old| old.rules.as_ref()) {
                if old.fields.len() > rules.fields.len() {
                    rules.fields.clone_from(&old.fields);
                }
            }
            let read = olds.iter().filter_map(|old| old.rules.as_ref());
            rules.read = read.fold([0, 0], |[a, b], r| [a + r.read[0], b + r.read[1]]);
            if index != 0 {
                rules.read = Counted::default();
            }
            rules
        });
        let making = Making::new(plan, rules.as_ref(), held)?;
        let (index32, workers32) = (
            u32::try_from(index).unwrap_or(u32::MAX),
            u32::try_from(workers).unwrap_or(u32::MAX),
        );
        let (from, to) = worker_groups(index32, workers32);
        // The engines: the old ranges that meet this worker's.
        let mut pieces = Vec::new();
        for saved in olds.iter().flat_map(|old| &old.pieces) {
            let (lo, hi) = (saved.from.max(from), saved.to.min(to));
            if lo >= hi {
                continue;
            }
            let mut piece = making.engine(saved, (lo, hi))?;
            let keeps_counts = from <= saved.from && saved.from < to;
            piece.engine.0.retain_keys(
                |key| (lo..hi).contains(&u64::from(key_group(key))),
                keeps_counts,
            );
            pieces.push(piece);
        }
        pieces.sort_by_key(|p| (p.group, p.from));
        // (the old ranges cover every key group: each group has one)
        check_pieces(&pieces, making.groups)?;
        // The events in flight whose key is now this worker's; those a
        // router of old worker `w` held, to the router of worker `w`
        // modulo `workers`.
        let mut router = making.router(rules.as_ref(), index, workers);
        let (mut stash, mut held) = (Vec::new(), Vec::new());
        for (w, events) in stashes.into_iter().enumerate() {
            let (routed, theirs) = making.stash(events)?;
            if w % workers.max(1) == index {
                held.extend(theirs);
            }
            // (each event once, from the worker of its key: this worker
            // takes it, or a copy for its group's shared indicators)
            for (group, stamped) in routed.into_iter().filter(|(g, _)| g & SHARED == 0) {
                let (worker, _) = router.worker(group as usize, &stamped.event, stamped.offset);
                if worker == index32 {
                    stash.push((group, stamped));
                } else if router.shares(group as usize) && workers > 1 {
                    stash.push((group | SHARED, stamped));
                }
            }
        }
        // The sources: the ended ones' ends were received by every old
        // worker; the others retire.
        let mut ends = first.ends.clone();
        let mut sources: BTreeMap<u32, SourceState> = BTreeMap::new();
        for (number, state) in olds.iter().flat_map(|old| &old.sources) {
            let next = sources.entry(*number).or_insert_with(|| SourceState {
                position: 0,
                unread: 0,
                place: Vec::new(),
                lateness: state.lateness.successor(None),
                ended: true,
            });
            if index == 0 {
                next.unread += state.unread;
            }
            if state.ended {
                continue;
            }
            ends.push(state.lateness.end());
            // The least watermark of the retired ones.
            let floor = state.lateness.watermark();
            let least = match (next.ended, floor, next.lateness.watermark()) {
                (true, floor, _) => floor,
                (false, Some(a), Some(b)) => Some(a.min(b)),
                (false, _, _) => None,
            };
            next.lateness = state.lateness.successor(least);
            next.ended = false;
        }
        // (A source whose old ones had all ended stays ended: they read
        // the whole input.)
        let restored = Restored {
            epoch,
            pieces,
            stash,
            held,
            ends,
            rules,
        };
        Ok(self.install(epoch, sources.into_iter().collect(), restored))
    }

    /// The piece of one worker that ran every group of `plan`'s patterns
    /// over every key, made from one engine that ran all of them (one
    /// engine's checkpoint), as [`restore`](WorkerCut::restore) and
    /// [`rescale`](WorkerCut::rescale) read it:
    ///
    /// - **Engines**: one per group, each the whole engine with only the
    ///   group's patterns kept ([`Engine::retain_patterns`](crate::Engine::retain_patterns)),
    ///   deciding no lateness as a worker's engines do.
    /// - **Events waiting** for the engine's watermark
    ///   ([`Engine::take_waiting`](crate::Engine::take_waiting)) are the
    ///   stash, one copy per group (one for a router to route, when the
    ///   plan's rules can change), in their order: their offsets are
    ///   the ones just below `position` (the place of the last line the
    ///   engine was given, [`FileChunk::offset`](crate::FileChunk::offset)
    ///   of a reader of the whole file), so that equal times keep the
    ///   order of arrival and come before what is read after.
    /// - **The source** (number 0) goes on at `position`, with `clock`'s
    ///   settings in the state of the engine's clock (its watermark,
    ///   largest time seen, the waiting times, its counts; `punctuated`,
    ///   `unread`); the cut's epoch is just above its watermark, where the
    ///   engines are.
    ///
    /// With `changed` (the engine's rules changed while it ran), the
    /// groups are those of the engine's patterns (its own rules, restored
    /// from its snapshot, not the plan's: give a plan of its field table,
    /// [`Plan::resumed`]), its patterns in force said to be the rules in
    /// force.
    ///
    /// Fails with [`ErrorKind::Snapshot`] when the engine does not run the
    /// plan's patterns in the plan's order, with its settings.
    pub fn from_engine<E>(
        plan: &Plan<E>,
        mut engine: crate::Engine<E>,
        clock: &Lateness,
        (position, unread): (u64, u64),
        punctuated: bool,
        changed: bool,
    ) -> Result<Saved, Error>
    where
        E: Event + Clone + Serialize + DeserializeOwned + 'static,
    {
        let waiting = engine.take_waiting_positioned();
        let stats = engine.stats();
        let lateness = clock.resumed(
            (engine.current_watermark(), engine.max_seen()),
            waiting.iter().map(|(ts, _, _)| *ts),
            // (the source counted the waiting events as it read them)
            (stats.events + waiting.len() as u64, stats.late),
            punctuated,
        );
        let epoch = lateness.frontier();
        let mut whole = Vec::new();
        engine.snapshot(&mut whole)?;
        let (from, to) = worker_groups(0, 1);
        let members = groups(plan);
        // The groups: the plan's, or after a change of rules the engine's
        // patterns' (a draining old version goes with its name).
        let (layout, names) = if changed {
            let in_force: Vec<Pattern> = engine.patterns().cloned().collect();
            let layout = Layout::default().next(&in_force, true);
            let mut keys = Vec::new();
            engine.retain_patterns(
                |_, p| {
                    keys.push((p.name.clone(), p.partition_by.clone()));
                    true
                },
                true,
            );
            let moved = keys.iter().any(|(name, key)| {
                let now = in_force.iter().find(|p| &p.name == name);
                now.is_some_and(|p| &p.partition_by != key)
            });
            let layout = layout.ok().filter(|_| !moved).ok_or_else(|| {
                Error::new(ErrorKind::Snapshot, "a pattern changed its `partition by` while its old version drains, which workers cannot do as one engine does: resume it without workers, or once the old version is gone")
            })?;
            let names = in_force.iter().map(|p| p.name.clone()).collect();
            (layout, Some(names))
        } else {
            (Layout::of_plan(plan, &members), None)
        };
        drop(engine);
        let all: Vec<usize> = (0..plan.patterns.len()).collect();
        let mut pieces = Vec::with_capacity(layout.groups.len());
        for (group, (_, names)) in layout.groups.iter().enumerate() {
            let mut engine = if changed {
                crate::restored_engine(plan, &whole)?
            } else {
                let (mut engine, _) = (plan.engines(std::slice::from_ref(&all))?)
                    .pop()
                    .expect("one group, one engine");
                engine.restore(&whole[..])?;
                engine
            };
            // (what patterns gone made stays with group 0: the groups'
            // counts add up to the engine's)
            engine.retain_patterns(|_, p| names.contains(&p.name), group == 0);
            let mut bytes = Vec::new();
            engine.snapshot(&mut bytes)?;
            pieces.push(SavedPiece {
                group: u32::try_from(group).unwrap_or(u32::MAX),
                from,
                to,
                engine: bytes,
            });
        }
        let n = waiting.len() as u64;
        let stamped: Vec<Stamped<E>> = (waiting.into_iter().enumerate())
            .map(|(i, (ts, event, named))| Stamped {
                ts,
                source: 0,
                // (an event one engine named by its line, `PATH:LINE`,
                // for its decisions: that line, the place of the file's
                // first chunk that names it so on workers
                // (`ChunkLines::line`) and orders it before the lines
                // read after it)
                offset: line_of(named.as_ref())
                    .unwrap_or_else(|| position.saturating_sub(n - 1 - i as u64)),
                event,
                // (a name that is not a line, a source's record's, kept)
                name: match &named {
                    Some(cepheid_engine::Value::Str(name)) if line_of(named.as_ref()).is_none() => {
                        Some(Arc::clone(name))
                    }
                    _ => None,
                },
            })
            .collect();
        // (a plan whose rules can change routes them again: a change read
        // after the place may come before their time)
        let copies: Vec<u32> = match plan.changing {
            Some(_) => vec![HELD],
            None => (0..pieces.len() as u32).collect(),
        };
        let stash: Vec<(u32, &Stamped<E>)> = (copies.into_iter())
            .flat_map(|group| stamped.iter().map(move |s| (group, s)))
            .collect();
        let rules = CutRules {
            groups: layout.groups,
            in_force: names,
            changed,
            fields: fields_of::<E>(plan.fields()),
            changing: plan.changing.is_some(),
            ..CutRules::default()
        };
        WorkerState {
            epoch,
            sources: vec![(
                0,
                SourceState {
                    position,
                    unread,
                    place: Vec::new(),
                    lateness,
                    ended: false,
                },
            )],
            ends: Vec::new(),
            pieces,
            stash: encode_stash(&stash)?,
            rules: Some(rules),
        }
        .piece()
    }

    /// The sources' states in a worker's state saved at a cut (what
    /// [`rescale`](WorkerCut::rescale) leaves to the caller: the old
    /// sources' places).
    pub fn saved_sources(saved: &Saved) -> Result<Vec<(u32, SourceState)>, Error> {
        Ok(WorkerState::of(saved)?.sources)
    }
}

/// What a worker's state that cannot be read is.
fn not_a_state(e: postcard::Error) -> Error {
    Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: {e}"),
    )
}

/// The workers' states `states`, read, and the epoch of their cut; an
/// error when there is none, or they are of different cuts.
fn one_cut(states: &[&Saved]) -> Result<(Vec<WorkerState>, i64), Error> {
    let olds: Vec<WorkerState> = states
        .iter()
        .map(|piece| WorkerState::of(piece))
        .collect::<Result<_, _>>()?;
    let Some(first) = olds.first() else {
        return Err(Error::new(ErrorKind::Snapshot, "no worker's state"));
    };
    let epoch = first.epoch;
    if olds.iter().any(|old| old.epoch != epoch) {
        return Err(Error::new(
            ErrorKind::Snapshot,
            "the workers' states are of different cuts",
        ));
    }
    Ok((olds, epoch))
}

/// The paths of a `Record` engine's fields, by id (none for typed events).
pub(crate) fn fields_of<E: Event + 'static>(fields: &E::Fields) -> Vec<cepheid_engine::FieldPath> {
    (fields as &dyn Any)
        .downcast_ref::<crate::record::FieldTable>()
        .map_or_else(Vec::new, |table| table.paths())
}

/// A fresh engine of `plan` for group `group`, over key groups `range`.
fn fresh<E: Event + 'static>(
    plan: &Plan<E>,
    members: &[Vec<usize>],
    group: u32,
    range: (u64, u64),
) -> Result<Piece<E>, Error> {
    let Some(patterns) = members.get(group as usize) else {
        return Err(other_patterns());
    };
    let engine = plan
        .engines(std::slice::from_ref(patterns))?
        .pop()
        .expect("one group, one engine");
    Ok(Piece {
        group,
        from: range.0,
        to: range.1,
        engine,
    })
}

/// Checks a worker's engines: by group then key group, at least one per
/// group, ranges apart.
fn check_pieces<E: Event + 'static>(pieces: &[Piece<E>], groups: usize) -> Result<(), Error> {
    let bad = other_patterns;
    for group in 0..groups as u32 {
        let mine: Vec<&Piece<E>> = pieces.iter().filter(|p| p.group == group).collect();
        if mine.is_empty() || mine.windows(2).any(|w| w[0].to > w[1].from) {
            return Err(bad());
        }
    }
    if pieces.iter().any(|p| p.group as usize >= groups)
        || pieces
            .windows(2)
            .any(|w| (w[0].group, w[0].from) > (w[1].group, w[1].from))
    {
        return Err(bad());
    }
    Ok(())
}

/// The stash's events, encoded (`E` is the operator's event type), in
/// the runtime's layout of a stash ([`checkpoint::encode_stash`](cepheid_runtime::checkpoint::encode_stash)).
pub(crate) fn encode_stash<E: Serialize>(events: &[(u32, &Stamped<E>)]) -> Result<Vec<u8>, Error> {
    let events: Vec<_> = (events.iter())
        .map(|(g, s)| (*g, (s.ts, s.source, s.offset, &s.event), s.name.as_deref()))
        .collect();
    cepheid_runtime::checkpoint::encode_stash(&events).map_err(|e| {
        Error::new(
            ErrorKind::Snapshot,
            format!("cannot serialize the stash: {e}"),
        )
    })
}

/// The stash's events as [`encode_stash`] wrote them (or a build before
/// their names).
pub(crate) fn decode_stash<E: DeserializeOwned>(
    bytes: &[u8],
) -> Result<Vec<(u32, Stamped<E>)>, postcard::Error> {
    let stash = cepheid_runtime::checkpoint::decode_stash(bytes)?;
    Ok((stash.into_iter())
        .map(|(g, (ts, source, offset, event), name)| {
            (
                g,
                Stamped {
                    ts,
                    source,
                    offset,
                    event,
                    name,
                },
            )
        })
        .collect())
}

impl WorkerState {
    /// The worker's state saved in `piece`.
    pub(crate) fn of(piece: &Saved) -> Result<WorkerState, Error> {
        if let Some(old) = piece.get(Part::Legacy) {
            return postcard::from_bytes(old).map_err(not_a_state);
        }
        let sources = piece.get(Part::Sources).ok_or_else(|| not_a("sources"))?;
        let (epoch, sources, ends) = postcard::from_bytes(sources).map_err(not_a_state)?;
        let pieces = cepheid_runtime::checkpoint::saved_pieces(piece)?;
        let stash = piece.get(Part::Stash).ok_or_else(|| not_a("stash"))?;
        Ok(WorkerState {
            epoch,
            sources,
            ends,
            pieces,
            stash: stash.to_vec(),
            rules: CutRules::of(piece)?,
        })
    }

    /// The worker's piece of the checkpoint: its engines, and its sources
    /// and stash as parts of their own.
    pub(crate) fn piece(self) -> Result<Saved, Error> {
        let mut piece = Saved::new();
        for saved in self.pieces {
            let keys = (saved.from, saved.to);
            piece.engine(EngineState::group(saved.group, keys, saved.engine));
        }
        let sources = postcard::to_allocvec(&(self.epoch, &self.sources, &self.ends));
        let cannot = |e| Error::new(ErrorKind::Snapshot, format!("cannot save the sources: {e}"));
        piece.set(Part::Sources, sources.map_err(cannot)?);
        piece.set(Part::Stash, self.stash);
        if let Some(rules) = &self.rules {
            rules.put(&mut piece)?;
        }
        Ok(piece)
    }
}

/// A worker's piece without `what`.
fn not_a(what: &str) -> Error {
    Error::new(
        ErrorKind::Snapshot,
        format!("not a worker's state at a cut: no {what}"),
    )
}

/// The line of an event's name `PATH:LINE` (one engine's position of an
/// event read from a file, `docs/decisions.md`), as a place of the first
/// chunk (below `1 << 32`).
fn line_of(named: Option<&cepheid_engine::Value>) -> Option<u64> {
    let cepheid_engine::Value::Str(name) = named? else {
        return None;
    };
    let (_, line) = name.rsplit_once(':')?;
    line.parse::<u64>().ok().filter(|&line| line < 1 << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Output;
    use crate::route::group_worker;
    use crate::value::Value;
    use crate::Change;
    use cepheid_decode::{Decoder, Format, Item};
    use cepheid_engine::{Record, Rules};

    fn plan() -> Plan<Record> {
        let rules = Rules::parse(
            "r.cep",
            "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }",
        )
        .unwrap();
        let mut plan = Plan::new();
        plan.add(&rules).unwrap();
        plan
    }

    /// The rules section as the dataflow wrote it before the runtime
    /// took it (`route::Layout` for its groups): cuts of earlier builds.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct RulesBefore {
        layout: Layout,
        in_force: Option<Vec<String>>,
        changed: bool,
        fields: Vec<cepheid_engine::FieldPath>,
        pending: Vec<Change>,
        made: [u64; 2],
        read: Counted,
        changing: bool,
    }

    /// The runtime's section of a cut's rules is written byte for byte as
    /// the dataflow's was, and each reads the other's.
    #[test]
    fn the_rules_of_a_cut_are_the_bytes_of_before() {
        let plan = plan();
        let layout = Layout::of_plan(&plan, &groups(&plan));
        let mut other = layout.clone();
        other.groups.push((None, Vec::new()));
        other.groups.push((
            Some(plan.patterns[0].partition_by.clone()),
            vec!["x".into(), "y".into()],
        ));
        let change = Change::new(
            (24, 1, 7),
            "events.jsonl:7 (`$rules`)".to_string(),
            vec![(
                "r.cep".to_string(),
                "pattern p { match a where a: n == 1 }".to_string(),
            )],
        );
        for (layout, in_force) in [
            (layout, None),
            (other, Some(vec!["ab".to_string(), "x".to_string()])),
        ] {
            let before = RulesBefore {
                layout: layout.clone(),
                in_force: in_force.clone(),
                changed: in_force.is_some(),
                fields: fields_of::<Record>(plan.fields()),
                pending: vec![
                    change.clone(),
                    Change::of_lists(9, "list".into(), "{}".into()),
                ],
                made: [3, 1],
                read: [2, 5],
                changing: true,
            };
            let now = CutRules {
                groups: layout.groups.clone(),
                in_force: before.in_force.clone(),
                changed: before.changed,
                fields: before.fields.clone(),
                pending: before.pending.clone(),
                made: before.made,
                read: before.read,
                changing: before.changing,
            };
            let bytes = postcard::to_allocvec(&before).unwrap();
            assert_eq!(postcard::to_allocvec(&now).unwrap(), bytes);
            let mut piece = Saved::new();
            now.put(&mut piece).unwrap();
            assert_eq!(piece.get(Part::Rules), Some(&bytes[..]));
            let read = CutRules::of(&piece).unwrap().unwrap();
            assert_eq!(Layout::of(&read.groups), layout);
            assert_eq!(postcard::to_allocvec(&read).unwrap(), bytes);
            let back: RulesBefore =
                postcard::from_bytes(&postcard::to_allocvec(&read).unwrap()).unwrap();
            assert_eq!(back, before);
        }
        assert!(CutRules::of(&Saved::new()).unwrap().is_none());
    }

    fn event(plan: &Plan<Record>, ts: i64, user: &str, n: i64) -> Record {
        let mut decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
        let line = format!(r#"{{"ts":{ts},"user":"{user}","n":{n}}}"#);
        match decoder.decode(line.as_bytes()).unwrap() {
            Item::Event(_, event) => event,
            _ => panic!("not an event"),
        }
    }

    fn users() -> Vec<String> {
        (0..40).map(|i| format!("u{i}")).collect()
    }

    fn kg(user: &str) -> u32 {
        key_group(&[Value::from(user)])
    }

    /// Old worker `index` of `workers` at a cut at 10: an `a` of each of
    /// its users pushed (a partial match each), its source `source`.
    fn old(plan: &Plan<Record>, index: u32, workers: u32, source: SourceState) -> Saved {
        let members = groups(plan);
        let (from, to) = worker_groups(index, workers);
        let mut piece = fresh(plan, &members, 0, (from, to)).unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        for user in users() {
            if group_worker(kg(&user), workers as usize) == index as usize {
                let a = event(plan, 1, &user, 1);
                piece.engine.0.push(1, a, &mut out);
            }
        }
        piece.engine.0.watermark(9, &mut out);
        let mut bytes = Vec::new();
        piece.engine.0.snapshot(&mut bytes).unwrap();
        (WorkerState {
            epoch: 10,
            sources: vec![(0, source)],
            ends: Vec::new(),
            pieces: vec![SavedPiece {
                group: 0,
                from,
                to,
                engine: bytes,
            }],
            stash: encode_stash::<Record>(&[]).unwrap(),
            rules: None,
        })
        .piece()
        .unwrap()
    }

    /// A source (delay 49 ms) that read one event at `max_seen`.
    fn source(max_seen: i64, ended: bool, unread: u64) -> SourceState {
        let mut lateness = Lateness::new(49);
        assert!(lateness.admit(max_seen));
        SourceState {
            position: 0,
            unread,
            place: Vec::new(),
            lateness,
            ended,
        }
    }

    #[test]
    fn a_rescaled_worker_takes_its_keys_once_and_retires_the_old_sources() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, false, 2)),
            old(&plan, 1, 2, source(120, false, 3)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let (mut keys, mut events, mut matches) = (0, 0, 0);
        for index in 0..3 {
            let cut = WorkerCut::new(Cuts::new(), |_, _| {});
            assert_eq!(cut.rescale(&plan, &states, index, 3).unwrap(), 10);
            let state = cut.source_state(0).unwrap();
            // The least watermark of the retired sources (100 - 49 - 1),
            // nothing seen, nothing counted; what they could not read
            // goes to worker 0.
            assert_eq!(state.lateness.watermark(), Some(50));
            assert_eq!(state.lateness.end().max_seen, None);
            assert_eq!(state.lateness.end().events, 0);
            assert!(!state.ended);
            assert_eq!(state.unread, if index == 0 { 5 } else { 0 });
            let mut restored = cut.take_restored::<Record>().unwrap();
            // The retired sources' ends: their largest times and counts.
            let ends: Vec<_> = (restored.ends.iter())
                .map(|e| (e.max_seen, e.watermark, e.events))
                .collect();
            assert_eq!(ends, [(Some(100), Some(50), 1), (Some(120), Some(70), 1)]);
            let mut out: Vec<Output<Record>> = Vec::new();
            for piece in &mut restored.pieces {
                keys += piece.engine.0.live_keys();
                events += piece.engine.0.stats().events;
                // Each user's `b`, to the engine whose range holds its key.
                for user in users() {
                    if (piece.from..piece.to).contains(&u64::from(kg(&user))) {
                        let b = event(&plan, 20, &user, 2);
                        piece.engine.0.push(20, b, &mut out);
                    }
                }
                piece.engine.0.watermark(30, &mut out);
            }
            matches += out.len();
        }
        // Every key once, every count once, every partial match completes.
        assert_eq!((keys, events, matches), (40, 40, 40));
    }

    #[test]
    fn a_rescaled_source_goes_on_from_the_place_and_clock_of_its_share() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, false, 0)),
            old(&plan, 1, 2, source(120, false, 0)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let cuts = Cuts::new();
        let cut = WorkerCut::new(Arc::clone(&cuts), |_, _| {});
        cut.rescale(&plan, &states, 2, 3).unwrap();
        // Its share's watermark (its splits' least) is above the retired
        // sources' least (50): its clock starts there, nothing counted.
        cut.go_on(0, vec![7], 40, Some(60));
        let state = cut.source_state(0).unwrap();
        assert_eq!((state.place, state.position), (vec![7], 40));
        assert_eq!(state.lateness.watermark(), Some(60));
        assert_eq!(state.lateness.end().events, 0);
        // (a cut asked for now is above where it goes on)
        assert!(cuts.request() > 61);
        // A share whose watermark is not known (or below): the least stays.
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &states, 0, 3).unwrap();
        cut.go_on(0, vec![1], 0, Some(10));
        assert_eq!(cut.source_state(0).unwrap().lateness.watermark(), Some(50));
        cut.go_on(0, vec![1], 0, None);
        assert_eq!(cut.source_state(0).unwrap().lateness.watermark(), Some(50));
        // A source whose old ones had all ended stays ended, untouched.
        let ended = [
            old(&plan, 0, 2, source(100, true, 0)),
            old(&plan, 1, 2, source(120, true, 0)),
        ];
        let ended: Vec<&Saved> = ended.iter().collect();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &ended, 1, 3).unwrap();
        cut.go_on(0, vec![1], 5, Some(60));
        let state = cut.source_state(0).unwrap();
        assert!(state.ended && state.place.is_empty() && state.position == 0);
    }

    #[test]
    fn one_engine_becomes_a_cut_of_one_worker_that_restores_and_rescales() {
        let rules = Rules::parse(
            "r.cep",
            "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }
             pattern g { match a followed by b where a: n == 1  b: n == 3 }",
        )
        .unwrap();
        let mut plan = Plan::new();
        plan.add(&rules).unwrap();
        assert_eq!(groups(&plan).len(), 2);
        let mut engine: crate::Engine<Record> =
            crate::Engine::with_max_delay(std::time::Duration::from_millis(5));
        engine.add(&rules).unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        for (i, user) in users().iter().enumerate() {
            engine.push(i as i64, event(&plan, i as i64, user, 1), &mut out);
        }
        // (the last 6 wait for the watermark: 39 - 5 - 1 = 33)
        assert_eq!(engine.waiting_events(), 6);
        let clock = Lateness::new(5);
        let state = WorkerCut::from_engine(&plan, engine, &clock, (40, 2), false, false).unwrap();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        assert_eq!(cut.restore(&plan, &state).unwrap(), 34);
        let source = cut.source_state(0).unwrap();
        assert_eq!(
            (source.position, source.unread, source.ended),
            (40, 2, false)
        );
        assert_eq!(source.lateness.watermark(), Some(33));
        assert_eq!(source.lateness.end().max_seen, Some(39));
        assert_eq!(source.lateness.end().events, 40);
        let restored = cut.take_restored::<Record>().unwrap();
        // One engine per group, every key; the waiting events once per
        // group, in order, just below the place.
        assert_eq!(restored.pieces.len(), 2);
        let keys: Vec<usize> = restored
            .pieces
            .iter()
            .map(|p| p.engine.0.live_keys())
            .collect();
        assert_eq!(keys, [34, 1]);
        let offsets: Vec<(u32, u64)> = restored.stash.iter().map(|(g, s)| (*g, s.offset)).collect();
        let expected: Vec<(u32, u64)> = (0..2)
            .flat_map(|g| (35..=40).map(move |o| (g, o)))
            .collect();
        assert_eq!(offsets, expected);
        // On three workers, each key once.
        let mut total = 0;
        for index in 0..3 {
            let cut = WorkerCut::new(Cuts::new(), |_, _| {});
            cut.rescale(&plan, &[&state], index, 3).unwrap();
            let restored = cut.take_restored::<Record>().unwrap();
            total += (restored.pieces.iter())
                .filter(|p| p.group == 0)
                .map(|p| p.engine.0.live_keys())
                .sum::<usize>();
        }
        assert_eq!(total, 34);
    }

    #[test]
    fn sources_that_had_all_ended_stay_ended_with_no_end_of_their_own() {
        let plan = plan();
        let states = [
            old(&plan, 0, 2, source(100, true, 0)),
            old(&plan, 1, 2, source(120, true, 0)),
        ];
        let states: Vec<&Saved> = states.iter().collect();
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        cut.rescale(&plan, &states, 1, 3).unwrap();
        assert!(cut.source_state(0).unwrap().ended);
        // (their ends were received before the cut: the old ends, here none)
        assert!(cut.take_restored::<Record>().unwrap().ends.is_empty());
        // States of different cuts are refused.
        let mut other = old(&plan, 0, 2, source(100, true, 0));
        let mut state = WorkerState::of(&other).unwrap();
        state.epoch = 11;
        other = state.piece().unwrap();
        let mixed = [states[0], &other];
        let cut = WorkerCut::new(Cuts::new(), |_, _| {});
        assert!(cut.rescale(&plan, &mixed, 0, 3).is_err());
    }

    /// A stash keeps its events' names (a source's records', the
    /// positions of their decisions), and reads as it did before them:
    /// a stash of a build before the names reads, without names, and a
    /// build before them reads the events of one with names.
    #[test]
    fn a_stash_keeps_its_events_names_and_reads_across_builds() {
        let stamped = |offset, name: Option<&str>| Stamped {
            ts: 10 + offset as i64,
            source: 0,
            offset,
            event: format!("e{offset}"),
            name: name.map(Arc::from),
        };
        let events = [
            stamped(1, None),
            stamped(2, Some("kafka:t partition 1 offset 7")),
            stamped(3, Some("kafka:t partition 0 offset 9")),
        ];
        let stash: Vec<(u32, &Stamped<String>)> = events.iter().map(|s| (HELD, s)).collect();
        let bytes = encode_stash(&stash).unwrap();
        let back: Vec<(u32, Stamped<String>)> = decode_stash(&bytes).unwrap();
        let back: Vec<Stamped<String>> = back.into_iter().map(|(_, s)| s).collect();
        assert_eq!(back, events);
        // (a build before the names: its layout, without them)
        let old: Vec<(u32, (Timestamp, u32, u64, String))> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(old.len(), 3);
        assert_eq!(old[1], (HELD, (12, 0, 2, "e2".to_string())));
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        let read: Vec<(u32, Stamped<String>)> = decode_stash(&old_bytes).unwrap();
        assert!(read.iter().all(|(_, s)| s.name.is_none()));
        // (names past the events: refused, not dropped)
        let mut bad = old_bytes.clone();
        bad.extend(postcard::to_allocvec(&vec![(5_u32, "x")]).unwrap());
        assert!(decode_stash::<String>(&bad).is_err());
    }
}
