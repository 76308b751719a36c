//! Engine snapshots: [`Engine::snapshot`] writes an engine's complete state
//! and the rule set in force (each pattern's versions, draining ones
//! included, with their source text); [`Engine::restore`] reads it into a
//! fresh engine built with the same patterns and configuration, and
//! [`Engine::restore_rules`] into a fresh engine of the same configuration,
//! rebuilding the patterns from the snapshot; [`Engine::from_snapshot`] and
//! [`Engine::from_snapshot_rules`] do the same in a new engine made with
//! the settings the header holds. Each then goes on exactly
//! as the engine that wrote it would have (same output, same order). The
//! format and what it holds are documented in `docs/snapshot.md`.
//!
//! The file: [`MAGIC`], the format [`VERSION`] (`u32`, little endian), the
//! file's length (`u64`, little endian), a [`Header`] and the body (both
//! postcard), and a CRC-32 of everything before it (`u32`, little endian).
//! The body is the state as the engine keeps it: slabs with their free
//! lists, heaps in array order, the deadline index with its stale entries;
//! nothing is rebuilt but the hash table of each group's keys (the engine's
//! key hasher is seeded at random, and the table is only looked up, never
//! iterated). What is read back is checked ([`Core::install`]) before it
//! replaces anything, so a file that passes the checksum but is
//! inconsistent is an error, never a panic later.

use std::any::Any;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::sync::Arc;

use hashbrown::HashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::clock::Clock;
use crate::engine::core::{Core, Group, PatternCounts, PatternRun, Stats};
use crate::engine::deadlines::DeadlineIndex;
use crate::engine::decide::SavedDecisions;
use crate::engine::decide::SavedScenes;
use crate::engine::front::{Engine, PatternSet};
use crate::engine::memory::{LeftOut, Saved, SavedOrigins, SavedShadow};
use crate::engine::partitions::{Keys, Ordinals};
use crate::engine::requests::{Captured, Requests, SavedRequests};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, FieldId, FieldPath};
use crate::matcher::{Cache, Partition, SharedBuffer};
use crate::nfa::Nfa;
use crate::pattern::Pattern;
use crate::persist::via;
use crate::record::FieldTable;

/// The first bytes of every snapshot.
pub(crate) const MAGIC: &[u8; 8] = b"CEPHSNAP";

/// The format version this build writes. Bumped whenever the bytes
/// written for some state change (`docs/snapshot.md`, "Versions").
pub(crate) const VERSION: u32 = 14;

/// The oldest format version this build reads: a checkpoint of the
/// previous releases resumes (version 6 held no counts per pattern: they
/// start again from the restore; version 7 no shadow copies of lists:
/// none is restored; versions 6 to 8 no counts of what the lists' and
/// indicators' limits left out: they start again from the restore;
/// versions 6 to 9 no origins of the lists' entries: each is of no
/// recorded origin, `EntryOrigin::Unrecorded`; versions 6 to 11 no
/// remembered requests: none is remembered).
pub(crate) const OLDEST: u32 = 6;

/// Magic, version and length.
const PREFIX: usize = 8 + 4 + 8;

/// The CRC-32 at the end.
const CHECKSUM: usize = 4;

/// What a snapshot says about the engine that wrote it, checked against
/// the engine that reads it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    /// The bounded out-of-orderness, in milliseconds.
    max_delay: i64,
    /// The limit on partial matches per pattern and key.
    run_limit: u64,
    /// The limit on events waiting for the watermark.
    waiting_limit: u64,
    /// The limit on partial matches over all patterns and keys.
    live_limit: u64,
    /// Every pattern the engine runs, in its order: the patterns in force
    /// and the old versions that drain.
    patterns: Vec<PatternPrint>,
    /// The paths of a [`FieldTable`]'s fields (each as its segments), by
    /// id (empty for typed events, whose field ids are fixed by their
    /// type).
    fields: Vec<Vec<String>>,
    /// The rule set's lists and indicators as `.cep` source
    /// ([`crate::dsl::declarations_source`]; empty when it declares none):
    /// what the patterns' sources are loaded after when rebuilt.
    declarations: String,
}

/// [`Header`] as version 6 wrote it: without the declarations (it had no
/// lists nor indicators).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct HeaderV6 {
    max_delay: i64,
    run_limit: u64,
    waiting_limit: u64,
    live_limit: u64,
    patterns: Vec<PatternPrint>,
    fields: Vec<Vec<String>>,
}

impl From<HeaderV6> for Header {
    fn from(h: HeaderV6) -> Header {
        Header {
            max_delay: h.max_delay,
            run_limit: h.run_limit,
            waiting_limit: h.waiting_limit,
            live_limit: h.live_limit,
            patterns: h.patterns,
            fields: h.fields,
            declarations: String::new(),
        }
    }
}

/// One pattern of the engine: its name, fingerprint ([`fingerprint`]),
/// version, and the source it is rebuilt from.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct PatternPrint {
    name: String,
    fingerprint: u64,
    /// Its version (`docs/dynamic-rules.md`).
    version: u32,
    /// Has its name been replaced (so output shows the version)?
    versioned: bool,
    /// Is it an old version that drains?
    draining: bool,
    /// Its `.cep` source ([`crate::dsl::pattern_source`]), or why it has
    /// none (a Rust closure): then it cannot be rebuilt from text.
    source: Result<String, String>,
}

impl PatternPrint {
    /// Is it the pattern `name` with this fingerprint (of this build)?
    /// Either the fingerprint the snapshot holds is this one, or the
    /// snapshot's source, parsed and printed by this build, has it: a
    /// snapshot of another build whose canonical text printed the same
    /// rule otherwise (`explain`'s form changed) is the same rule.
    fn same(&self, name: &str, fingerprint: u64) -> bool {
        self.name == name && (self.fingerprint == fingerprint || self.reprints_as(fingerprint))
    }

    /// Does the source, as this build reads and prints it, have this
    /// fingerprint?
    fn reprints_as(&self, print: u64) -> bool {
        let Ok(source) = &self.source else {
            return false;
        };
        let loaded = crate::rules::load_str(&self.name, source);
        match &loaded.patterns[..] {
            [p] => !loaded.has_errors() && p.name == self.name && fingerprint(p) == print,
            _ => false,
        }
    }
}

/// Where a restore takes the patterns from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RulesFrom {
    /// The engine's own patterns, which must be the snapshot's patterns in
    /// force; draining old versions are rebuilt from their source.
    Engine,
    /// The snapshot: every pattern rebuilt from its source.
    Snapshot,
}

/// The state, as written.
#[derive(Serialize)]
#[serde(bound = "E: Serialize")]
struct BodyOut<'a, E> {
    clock: &'a Clock<E>,
    #[serde(with = "via")]
    store: &'a SharedBuffer<E>,
    ordinals: Vec<&'a Ordinals>,
    keys: Vec<&'a Keys<Partition>>,
    deadlines: &'a DeadlineIndex,
    stats: [u64; 10],
}

/// The state, as read (the same fields as [`BodyOut`]).
#[derive(Deserialize)]
#[serde(bound = "E: DeserializeOwned")]
struct BodyIn<E> {
    clock: Clock<E>,
    #[serde(with = "via")]
    store: SharedBuffer<E>,
    ordinals: Vec<Ordinals>,
    keys: Vec<Keys<Partition>>,
    deadlines: DeadlineIndex,
    stats: [u64; 10],
    /// Each pattern's counts, after the body (version 7 on; `None` from
    /// version 6: they start again).
    #[serde(skip)]
    counts: Option<Vec<[u64; 8]>>,
    /// The lists' entries and the indicators' windows, after the counts
    /// (version 7 on; none from version 6).
    #[serde(skip)]
    memory: Saved,
    /// The shadow copies of the lists, after the lists (version 8 on;
    /// none from versions 6 and 7).
    #[serde(skip)]
    shadow: SavedShadow,
    /// What the lists' and indicators' limits and values left out, after
    /// the shadow copies (version 9 on; nothing from versions 6 to 8).
    #[serde(skip)]
    left_out: LeftOut,
    /// The origins of the lists' entries and changes, after what was left
    /// out (version 10 on; `None` before: of no recorded origin).
    #[serde(skip)]
    origins: Option<SavedOrigins>,
}

/// A pattern's fingerprint: FNV-1a (64 bits, a fixed function) of its
/// canonical text, the one `cepheid explain` shows ([`crate::dsl::explain`]:
/// name, `partition by`, `within`, skip strategy, timeouts, each stage's
/// name and condition as source text, the element tree with quantifiers,
/// contiguity and windows, `select`), without its doc comment. For a
/// pattern of the builder, a Rust closure (`where_fn`, `partition_by_fn`)
/// counts by its description only: a changed closure body is not seen.
pub(crate) fn fingerprint(pattern: &Pattern) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(canonical_text(pattern).as_bytes());
    hasher.finish()
}

/// A pattern's canonical text, the text [`fingerprint`] hashes: two
/// patterns with the same are the same rule (a reload keeps its state,
/// `docs/dynamic-rules.md`).
pub(crate) fn canonical_text(pattern: &Pattern) -> String {
    // A `shadow` mark is not part of the rule: promoting a shadow pattern
    // (the same text without it) keeps its state (`docs/rule-lab.md`).
    let mut text = if pattern.shadow {
        let mut live = pattern.clone();
        live.shadow = false;
        crate::dsl::explain(&live)
    } else {
        crate::dsl::explain(pattern)
    };
    if let Some(doc) = &pattern.doc {
        // The doc's lines follow the name's (`  /// line`).
        let mut canonical = String::new();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            canonical.push_str(first);
            canonical.push('\n');
        }
        for line in lines.skip(doc.lines().count()) {
            canonical.push_str(line);
            canonical.push('\n');
        }
        text = canonical;
    }
    text
}

/// The paths of a [`FieldTable`], each as its segments (nothing for the
/// fields of typed events).
fn field_paths<F: 'static>(fields: &F) -> Vec<Vec<String>> {
    (fields as &dyn Any)
        .downcast_ref::<FieldTable>()
        .map(|table| {
            table
                .paths()
                .iter()
                .map(|p| p.segments().iter().map(|s| s.to_string()).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// Gives `fields` (a [`FieldTable`]; nothing for typed events) the paths
/// of `paths` in order, after those it has (which must be their first
/// ones: checked before).
fn intern_paths<F: 'static>(fields: &F, paths: &[Vec<String>]) {
    if let Some(table) = (fields as &dyn Any).downcast_ref::<FieldTable>() {
        for path in paths {
            table.intern(&FieldPath(
                path.iter().map(|s| Arc::from(s.as_str())).collect(),
            ));
        }
    }
}

/// An error about a snapshot.
fn error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Snapshot, message)
}

fn stats_array(s: &Stats) -> [u64; 10] {
    [
        s.events,
        s.late,
        s.matches,
        s.timeouts,
        s.unkeyed,
        s.unusable_keys,
        s.dropped_runs,
        s.forced_watermarks,
        s.discarded_runs,
        s.capped_runs,
    ]
}

/// A pattern's counts as a snapshot holds them (version 7 on).
pub(super) fn counts_array(c: &PatternCounts) -> [u64; 8] {
    [
        c.matches,
        c.timeouts,
        c.dropped_runs,
        c.capped_runs,
        c.discarded_runs,
        c.unkeyed,
        c.unusable_keys,
        c.base,
    ]
}

fn counts_from(a: [u64; 8]) -> PatternCounts {
    let [matches, timeouts, dropped_runs, capped_runs, discarded_runs, unkeyed, unusable_keys, base] =
        a;
    PatternCounts {
        matches,
        timeouts,
        dropped_runs,
        capped_runs,
        discarded_runs,
        unkeyed,
        unusable_keys,
        base,
    }
}

fn stats_from(a: [u64; 10]) -> Stats {
    let [events, late, matches, timeouts, unkeyed, unusable_keys, dropped_runs, forced_watermarks, discarded_runs, capped_runs] =
        a;
    Stats {
        events,
        late,
        matches,
        timeouts,
        unkeyed,
        unusable_keys,
        dropped_runs,
        forced_watermarks,
        discarded_runs,
        capped_runs,
    }
}

impl<E: Event + 'static> Engine<E> {
    /// What the header says of this engine.
    fn header(&self) -> Header {
        Header {
            max_delay: self.core.clock.max_delay(),
            run_limit: u64::try_from(self.core.run_limit).unwrap_or(u64::MAX),
            waiting_limit: u64::try_from(self.core.waiting_limit).unwrap_or(u64::MAX),
            live_limit: u64::try_from(self.core.live_limit).unwrap_or(u64::MAX),
            patterns: self
                .core
                .patterns
                .iter()
                .map(|run| {
                    let p = run.automaton.pattern();
                    PatternPrint {
                        name: p.name.clone(),
                        fingerprint: fingerprint(p),
                        version: run.meta.version,
                        versioned: run.meta.versioned,
                        draining: run.draining,
                        source: crate::dsl::pattern_source(p).map_err(|e| e.to_string()),
                    }
                })
                .collect(),
            fields: field_paths(&self.fields),
            declarations: crate::dsl::declarations_source(self.core.memory.declarations()),
        }
    }
}

impl<E: Event + Serialize + 'static> Engine<E> {
    /// Writes the engine's complete state to `out`, in the versioned
    /// binary format of `docs/snapshot.md`: the events waiting for the
    /// watermark, the watermark and largest time seen, every key's partial
    /// matches, held matches and pending `not followed by`, the events
    /// they hold, the deadlines, the numbering that orders them, and
    /// [`Stats`]. An engine built with the same patterns and configuration
    /// that [`restore`](Engine::restore)s it and is fed the rest of the
    /// stream produces exactly the output this one would have.
    ///
    /// Events serialize through their `serde` implementation ([`Record`]
    /// as its values by field id, raw text and object fields). Fails with
    /// [`ErrorKind::Io`] when `out` fails, [`ErrorKind::Snapshot`] when an
    /// event does not serialize.
    ///
    /// [`Record`]: crate::Record
    ///
    /// ```
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// use cepheid_decode::{Decoder, Format, Item};
    /// let rules = Rules::parse("r.cep", r#"pattern ab {
    ///     partition by user
    ///     match a followed by b
    ///     where a: type == "a"
    ///           b: type == "b" }"#)?;
    /// let lines = [
    ///     r#"{"ts": 1, "user": "u", "type": "a"}"#,
    ///     r#"{"ts": 2, "user": "u", "type": "b"}"#,
    /// ];
    /// let mut first: Engine<Record> = Engine::new();
    /// first.add(&rules)?;
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", first.fields().clone());
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// if let Item::Event(ts, record) = decoder.decode(lines[0].as_bytes())? {
    ///     first.push(ts, record, &mut out);
    /// }
    /// let mut snapshot = Vec::new();
    /// first.snapshot(&mut snapshot)?;
    ///
    /// // Later, maybe in another process: the same patterns, then the state.
    /// let mut second: Engine<Record> = Engine::new();
    /// second.add(&rules)?;
    /// second.restore(&snapshot[..])?;
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", second.fields().clone());
    /// if let Item::Event(ts, record) = decoder.decode(lines[1].as_bytes())? {
    ///     second.push(ts, record, &mut out);
    /// }
    /// second.finish(&mut out);
    /// assert!(matches!(&out[..], [Output::Match(m)] if (m.start, m.end) == (1, 2)));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn snapshot<W: Write>(&self, mut out: W) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(4096);
        self.snapshot_into(&mut bytes)?;
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write the snapshot: {e}")))
    }

    /// The snapshot [`Engine::snapshot`] writes, added at the end of
    /// `out` as it is encoded, with no copy: for a large state, a buffer
    /// with the room for it saves its growth and the copy into a writer
    /// (a checkpoint of `cepheid run` encodes its file so). On an error,
    /// `out` is left as it was.
    pub fn snapshot_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.snapshot_begin(out)?.finish(out)
    }

    /// The snapshot [`Engine::snapshot_into`] writes, in two steps: this
    /// call encodes at the end of `out` all of the state but what can
    /// wait, and takes that (the remembered requests,
    /// [`Engine::request`]: shared with the engine, not copied); the
    /// [`SnapshotRest`] returned, a value of its own (`Send`), then
    /// [`finish`](SnapshotRest::finish)es it in the same `out`, maybe on
    /// another thread while the engine goes on. The bytes are those of
    /// `snapshot_into` at this call, whatever the engine does between the
    /// two. A service that remembers many requests checkpoints so: their
    /// encoding, most of its state's, leaves its engine's thread (`cepheid
    /// serve`, `docs/serve.md`).
    ///
    /// Fails as [`Engine::snapshot_into`] does, leaving `out` as it was.
    pub fn snapshot_begin(&self, out: &mut Vec<u8>) -> Result<SnapshotRest, Error> {
        let requests = self.requests.as_ref().map(|r| r.capture());
        self.snapshot_head(out, requests)
    }

    /// A snapshot of everything but the remembered requests (read back
    /// with none): a scratch copy for one dry run needs no memory of the
    /// requests before, which the engine it copies answered.
    pub(crate) fn snapshot_without_requests(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.snapshot_head(out, None)?.finish(out)
    }

    fn snapshot_head(
        &self,
        out: &mut Vec<u8>,
        requests: Option<Captured>,
    ) -> Result<SnapshotRest, Error> {
        let core = &self.core;
        if !core.for_indicators.is_empty() {
            return Err(Error::new(
                ErrorKind::Snapshot,
                "events pushed for the shared indicators only wait for the watermark: a snapshot keeps no such event",
            ));
        }
        let body = BodyOut {
            clock: &core.clock,
            store: &core.store,
            ordinals: core.patterns.iter().map(|p| &p.ordinals).collect(),
            keys: core.groups.iter().map(|g| &g.keys).collect(),
            deadlines: &core.deadlines,
            stats: stats_array(&core.stats),
        };
        let (memory, shadow, origins) = core.memory.save();
        let start = out.len();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        let counts: Vec<[u64; 8]> = core
            .patterns
            .iter()
            .map(|p| counts_array(&p.counts))
            .collect();
        let encoded = postcard::serialize_with_flavor(&self.header(), Append(out))
            .and_then(|()| postcard::serialize_with_flavor(&body, Append(out)))
            .and_then(|()| postcard::serialize_with_flavor(&counts, Append(out)))
            .and_then(|()| postcard::serialize_with_flavor(&memory, Append(out)))
            .and_then(|()| postcard::serialize_with_flavor(&shadow, Append(out)))
            .and_then(|()| postcard::serialize_with_flavor(&core.memory.left_out, Append(out)))
            .and_then(|()| postcard::serialize_with_flavor(&origins, Append(out)))
            .and_then(|()| {
                let decisions = core.decide.as_ref().map(|d| d.save());
                postcard::serialize_with_flavor(&decisions, Append(out))
            })
            .and_then(|()| {
                let scenes = core.decide.as_ref().and_then(|d| d.save_scenes());
                postcard::serialize_with_flavor(&scenes, Append(out))
            });
        if let Err(e) = encoded {
            out.truncate(start);
            return Err(error(format!("cannot serialize the engine's state: {e}")));
        }
        Ok(SnapshotRest { start, requests })
    }
}

/// The end of a snapshot begun by [`Engine::snapshot_begin`]: the
/// remembered requests as the engine held them then (shared, not
/// copied), to encode after the rest, then the snapshot's length and
/// CRC-32. `Send`: a checkpoint finishes it on its own thread.
#[derive(Debug)]
#[must_use = "a snapshot begun is not whole until finished"]
pub struct SnapshotRest {
    /// Where the snapshot starts in its buffer.
    start: usize,
    requests: Option<Captured>,
}

impl SnapshotRest {
    /// Appends the rest of the snapshot to `out`, the buffer
    /// [`Engine::snapshot_begin`] wrote its start into, with nothing
    /// added after it since: then `out` holds from there the snapshot
    /// [`Engine::snapshot_into`] writes. Another buffer is refused
    /// ([`ErrorKind::Snapshot`], `out` left as it was); on an error of
    /// encoding, the snapshot begun is taken off `out`.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = self.start;
        if out.len() < start + PREFIX || &out[start..start + MAGIC.len()] != MAGIC {
            return Err(error(
                "a snapshot is finished in another buffer than the one it began in",
            ));
        }
        if let Err(e) = postcard::serialize_with_flavor(&self.requests, Append(out)) {
            out.truncate(start);
            return Err(error(format!(
                "cannot serialize the engine's remembered requests: {e}"
            )));
        }
        let len = (out.len() - start + CHECKSUM) as u64;
        out[start + 12..start + PREFIX].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

/// postcard's output straight into a `Vec` (its own `to_extend` goes
/// through `Extend`, a byte at a time).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl<E: Event + DeserializeOwned + 'static> Engine<E> {
    /// Restores the state [`snapshot`](Engine::snapshot) wrote into this
    /// engine, which must have been built with the same patterns in force
    /// (same canonical text, same order) and configuration
    /// ([`with_max_delay`](Engine::with_max_delay),
    /// [`max_runs_per_key`](Engine::max_runs_per_key),
    /// [`max_waiting_events`](Engine::max_waiting_events),
    /// [`max_live_runs`](Engine::max_live_runs)), and have seen no event or
    /// watermark yet. Then feed it the rest of the stream. The
    /// versions come from the snapshot, and old versions that were still
    /// draining are rebuilt from the source it holds
    /// (`docs/dynamic-rules.md`); to take every pattern from the snapshot,
    /// use [`restore_rules`](Engine::restore_rules).
    ///
    /// Fails with [`ErrorKind::Snapshot`], leaving the engine as it was,
    /// when the input is not a snapshot, is of a format version this build
    /// does not read, is truncated or corrupt (checksum), was taken with
    /// other patterns (the message names the first that differs), another
    /// configuration or another field table, holds a draining version that
    /// cannot be rebuilt (a Rust closure), or holds inconsistent state; or
    /// when the engine is not fresh. [`ErrorKind::Io`] when `input` fails.
    /// See [`snapshot`](Engine::snapshot) for an example.
    pub fn restore<R: Read>(&mut self, input: R) -> Result<(), Error> {
        self.restore_from(input, RulesFrom::Engine)
    }

    /// Restores a snapshot with the rule set it holds: the engine's
    /// patterns (if any) are replaced by the snapshot's, each version
    /// rebuilt from its source text, draining old versions included, so an
    /// engine restored after changes of rules
    /// ([`set_rules`](Engine::set_rules)) goes on with the rules in force
    /// when the snapshot was taken, whatever rules the caller has now. The
    /// engine must have the snapshot's configuration and have seen no event
    /// or watermark; its field table must be empty or the start of the
    /// snapshot's (an engine built without patterns always is).
    ///
    /// Fails as [`restore`](Engine::restore) does, and with
    /// [`ErrorKind::Snapshot`] when a pattern of the snapshot was built in
    /// Rust with a closure (`where_fn`, `until_fn`, `partition_by_fn`),
    /// which has no source text: build the engine with that pattern and use
    /// [`restore`](Engine::restore).
    ///
    /// ```
    /// use cepheid_engine::engine::ReloadPolicy;
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// let v1 = Rules::parse("r.cep", "pattern p { match a where a: n > 1 }")?;
    /// let v2 = Rules::parse("r.cep", "pattern p { match a where a: n > 5 }")?;
    /// let mut engine: Engine<Record> = Engine::new();
    /// engine.add(&v1)?;
    /// engine.set_rules(&v2, ReloadPolicy::Drain, &mut Vec::<Output<Record>>::new())?;
    /// let mut snapshot = Vec::new();
    /// engine.snapshot(&mut snapshot)?;
    ///
    /// let mut restored: Engine<Record> = Engine::new();
    /// restored.restore_rules(&snapshot[..])?;
    /// assert_eq!(restored.version("p"), Some(2));
    /// assert_eq!(restored.patterns().count(), 1);
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn restore_rules<R: Read>(&mut self, input: R) -> Result<(), Error> {
        self.restore_from(input, RulesFrom::Snapshot)
    }

    /// A new engine in the state [`snapshot`](Engine::snapshot) wrote,
    /// running `patterns` (which must be the patterns in force when the
    /// snapshot was taken, in the same order, as for
    /// [`restore`](Engine::restore)). The settings come from the snapshot's
    /// header: the max delay ([`with_max_delay`](Engine::with_max_delay))
    /// and the three limits ([`max_runs_per_key`](Engine::max_runs_per_key),
    /// [`max_live_runs`](Engine::max_live_runs),
    /// [`max_waiting_events`](Engine::max_waiting_events)); the four steps
    /// of a restore (same delay, same limits, same `add`, `restore`) in one
    /// call. Then feed it the rest of the stream.
    ///
    /// Fails as [`add`](Engine::add) does when a pattern does not compile
    /// for `E`, and as [`restore`](Engine::restore) does otherwise
    /// ([`ErrorKind::Snapshot`]: not a snapshot, another format version,
    /// corrupt, taken with other patterns, ...; [`ErrorKind::Io`] when
    /// `input` fails).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cepheid_engine::{Engine, Output, Record, Rules};
    /// use cepheid_decode::{Decoder, Format, Item};
    /// let rules = Rules::parse("r.cep", r#"pattern ab {
    ///     partition by user
    ///     match a followed by b
    ///     where a: type == "a"
    ///           b: type == "b" }"#)?;
    /// let mut first: Engine<Record> =
    ///     Engine::with_max_delay(Duration::from_millis(10)).max_runs_per_key(100);
    /// first.add(&rules)?;
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", first.fields().clone());
    /// let mut out: Vec<Output<Record>> = Vec::new();
    /// if let Item::Event(ts, r) = decoder.decode(br#"{"ts": 1, "user": "u", "type": "a"}"#)? {
    ///     first.push(ts, r, &mut out);
    /// }
    /// let mut snapshot = Vec::new();
    /// first.snapshot(&mut snapshot)?;
    ///
    /// // Later: the rules, and the snapshot for everything else.
    /// let mut second = Engine::<Record>::from_snapshot(&snapshot[..], &rules)?;
    /// assert!(format!("{second:?}").contains("max_delay_ms: 10, max_runs_per_key: 100"));
    /// let mut decoder = Decoder::new(Format::JsonLines, "ts", second.fields().clone());
    /// if let Item::Event(ts, r) = decoder.decode(br#"{"ts": 2, "user": "u", "type": "b"}"#)? {
    ///     second.push(ts, r, &mut out);
    /// }
    /// second.finish(&mut out);
    /// assert!(matches!(&out[..], [Output::Match(m)] if (m.start, m.end) == (1, 2)));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn from_snapshot<R: Read, P: PatternSet<E> + ?Sized>(
        input: R,
        patterns: &P,
    ) -> Result<Engine<E>, Error> {
        let bytes = read_all(input)?;
        let mut engine = Engine::configured_by(&bytes)?;
        engine.add(patterns)?;
        engine.restore_from(&bytes[..], RulesFrom::Engine)?;
        Ok(engine)
    }

    /// A new engine in the state [`snapshot`](Engine::snapshot) wrote,
    /// with the settings and the rule set the snapshot holds (every
    /// pattern rebuilt from its source text, as
    /// [`restore_rules`](Engine::restore_rules) does): for patterns of the
    /// language, or built without Rust closures. Fails as `restore_rules`
    /// does.
    ///
    /// ```
    /// use cepheid_engine::{Engine, Record, Rules};
    /// let mut engine: Engine<Record> = Engine::new().max_waiting_events(64);
    /// engine.add(&Rules::parse("r.cep", "pattern p { match a where a: n > 1 }")?)?;
    /// let mut snapshot = Vec::new();
    /// engine.snapshot(&mut snapshot)?;
    /// let restored = Engine::<Record>::from_snapshot_rules(&snapshot[..])?;
    /// assert_eq!(restored.patterns().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["p"]);
    /// assert!(format!("{restored:?}").contains("max_waiting_events: 64"));
    /// # Ok::<(), cepheid_engine::Error>(())
    /// ```
    pub fn from_snapshot_rules<R: Read>(input: R) -> Result<Engine<E>, Error> {
        let bytes = read_all(input)?;
        let mut engine = Engine::configured_by(&bytes)?;
        engine.restore_from(&bytes[..], RulesFrom::Snapshot)?;
        Ok(engine)
    }

    /// An engine without patterns, with the settings of the snapshot's
    /// header.
    pub(super) fn configured_by(bytes: &[u8]) -> Result<Engine<E>, Error> {
        let (header, _, _) = read_header(bytes)?;
        if header.max_delay < 0 {
            return Err(error(format!(
                "the snapshot's header gives a negative max delay ({} ms)",
                header.max_delay
            )));
        }
        let limit = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let mut engine = Engine {
            core: Core::new(header.max_delay),
            fields: E::Fields::default(),
            json: None,
            requests: None,
        };
        engine.core.set_run_limit(limit(header.run_limit));
        engine.core.set_live_limit(limit(header.live_limit));
        engine.core.set_waiting_limit(limit(header.waiting_limit));
        Ok(engine)
    }

    fn restore_from<R: Read>(&mut self, input: R, from: RulesFrom) -> Result<(), Error> {
        if !self.core.is_fresh() {
            return Err(error(
                "cannot restore a snapshot into an engine that has seen events or watermarks: \
                 restore into a new engine",
            ));
        }
        let bytes = read_all(input)?;
        let (header, rest, version) = read_header(&bytes)?;
        self.check_header(&header, from)?;
        let (mut body, rest) = postcard::take_from_bytes::<BodyIn<E>>(rest)
            .map_err(|e| error(format!("the snapshot's state does not decode: {e}")))?;
        let rest = if version >= 7 {
            let (counts, rest) = postcard::take_from_bytes::<Vec<[u64; 8]>>(rest)
                .map_err(|e| error(format!("the snapshot's counts do not decode: {e}")))?;
            body.counts = Some(counts);
            let (memory, rest) = postcard::take_from_bytes::<Saved>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's lists and indicators do not decode: {e}"
                ))
            })?;
            body.memory = memory;
            rest
        } else {
            rest
        };
        let rest = if version >= 8 {
            let (shadow, rest) = postcard::take_from_bytes::<SavedShadow>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's shadow copies of lists do not decode: {e}"
                ))
            })?;
            body.shadow = shadow;
            rest
        } else {
            rest
        };
        let rest = if version >= 9 {
            let (left_out, rest) = postcard::take_from_bytes::<LeftOut>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's counts of what the lists and indicators left out do not decode: {e}"
                ))
            })?;
            body.left_out = left_out;
            rest
        } else {
            rest
        };
        let rest = if version >= 10 {
            let (origins, rest) = postcard::take_from_bytes::<SavedOrigins>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's origins of list entries do not decode: {e}"
                ))
            })?;
            body.origins = Some(origins);
            rest
        } else {
            rest
        };
        let (decisions, rest) = if version >= 11 {
            postcard::take_from_bytes::<Option<SavedDecisions>>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's positions and counts of decisions do not decode: {e}"
                ))
            })?
        } else {
            (None, rest)
        };
        let take_requests = |rest| {
            postcard::take_from_bytes::<Option<SavedRequests>>(rest).map_err(|e| {
                error(format!(
                    "the snapshot's remembered requests do not decode: {e}"
                ))
            })
        };
        let take_scenes = |rest| {
            postcard::take_from_bytes::<Option<SavedScenes>>(rest)
                .map_err(|e| error(format!("the snapshot's scenes do not decode: {e}")))
        };
        // (version 14 moved the requests after the scenes: last, encoded
        // after the rest, `SnapshotRest`)
        let (requests, scenes, rest) = if version >= 14 {
            let (scenes, rest) = take_scenes(rest)?;
            let (requests, rest) = take_requests(rest)?;
            (requests, scenes, rest)
        } else {
            let (requests, rest) = if version >= 12 {
                take_requests(rest)?
            } else {
                (None, rest)
            };
            let (scenes, rest) = if version >= 13 {
                take_scenes(rest)?
            } else {
                (None, rest)
            };
            (requests, scenes, rest)
        };
        if !rest.is_empty() {
            return Err(error("the snapshot has bytes after its state"));
        }
        let requests = requests.map(|saved| Box::new(Requests::restore(saved)));
        let memory = std::mem::take(&mut body.memory);
        let shadow = std::mem::take(&mut body.shadow);
        let left_out = std::mem::take(&mut body.left_out);
        let origins = body.origins.take();
        let own = from == RulesFrom::Engine
            && header.fields == field_paths(&self.fields)
            && header
                .patterns
                .iter()
                .all(|p| p.version == 1 && !p.versioned && !p.draining);
        if own {
            // The engine's patterns as they are.
            self.core
                .install(body)
                .map_err(|e| error(format!("the snapshot's state is inconsistent: {e}")))?;
            self.core.memory.restore(memory, shadow, origins);
            self.core.memory.restore_left_out(left_out);
            if let (Some(decide), Some(saved)) = (&mut self.core.decide, decisions) {
                decide.restore(saved);
            }
            self.requests = requests;
            return Ok(());
        }
        let compiled = self.rebuild(&header, from)?;
        let saved_rules = self.core.take_rules();
        let mut fields = E::Fields::default();
        intern_paths(&fields, &header.fields);
        if self.core.memory.declarations().is_empty() && !header.declarations.is_empty() {
            let loaded = crate::rules::load_str("snapshot", &header.declarations);
            self.core
                .memory
                .declare(&loaded.declarations, &mut fields)
                .map_err(|e| error(format!("the snapshot's lists and indicators: {e}")))?;
        }
        let mut added = Ok(());
        for (nfa, print) in compiled.into_iter().zip(&header.patterns) {
            match self.core.add(nfa, &mut fields) {
                Ok(p) => {
                    let run = &mut self.core.patterns[p];
                    run.meta.version = print.version;
                    run.meta.versioned = print.versioned;
                    run.draining = print.draining;
                }
                Err(e) => {
                    added = Err(format!("pattern `{}`: {e}", print.name));
                    break;
                }
            }
        }
        self.core.draining = self.core.patterns.iter().filter(|r| r.draining).count();
        self.core.refresh_guards();
        // The snapshot's scenes, made again from the texts it keeps, for
        // an engine that has none (rebuilt from the snapshot's rules: a
        // change of rules made them other than the engine's).
        let scenes = match scenes {
            Some(saved) if from == RulesFrom::Snapshot && self.core.decide.is_none() => match added
                .and_then(|()| {
                    self.scenes_of(&saved, &mut fields)
                        .map_err(|e| e.message().to_string())
                }) {
                Ok(runs) => {
                    added = Ok(());
                    Some((runs, saved.part))
                }
                Err(e) => {
                    self.core.put_rules(saved_rules);
                    return Err(error(format!("the snapshot's scenes: {e}")));
                }
            },
            _ => None,
        };
        match added.and_then(|()| self.core.install(body)) {
            Ok(()) => {
                intern_paths(&self.fields, &header.fields);
                if let Some((runs, part)) = scenes {
                    intern_paths(&self.fields, &field_paths(&fields));
                    if !runs.is_empty() {
                        self.add_scenes(runs);
                        if let Some(decide) = &mut self.core.decide {
                            decide.part = part;
                        }
                        self.read_new_fields();
                    }
                }
                self.core.reap();
                self.core.memory.restore(memory, shadow, origins);
                self.core.memory.restore_left_out(left_out);
                if let (Some(decide), Some(saved)) = (&mut self.core.decide, decisions) {
                    decide.restore(saved);
                }
                self.requests = requests;
                Ok(())
            }
            Err(e) => {
                self.core.put_rules(saved_rules);
                Err(error(format!("the snapshot's state is inconsistent: {e}")))
            }
        }
    }

    /// Takes the scenes in force in `part`, an engine of a part of the
    /// same rules (a dataflow worker's group, restored after a change of
    /// rules: `set_rules_scenes_in_part`), made again from the texts they
    /// were loaded from over this engine's patterns, whole: so a workers'
    /// cut taken after a change of rules, made one engine's (which adopts
    /// the groups' patterns, `adopt`), decides as one engine. Nothing when
    /// `part` has no scene, or this engine has some already; an error
    /// when the texts do not load here.
    pub fn adopt_scenes(&mut self, part: &Engine<E>) -> Result<(), Error> {
        if self.core.decide.is_some() {
            return Ok(());
        }
        let Some(saved) = (part.core.decide.as_ref()).and_then(|d| d.save_scenes()) else {
            return Ok(());
        };
        let mut fields = self.fields.clone();
        let runs = self.scenes_of(&saved, &mut fields)?;
        if runs.is_empty() {
            return Ok(());
        }
        intern_paths(&self.fields, &field_paths(&fields));
        self.add_scenes(runs);
        if let Some(decide) = &mut self.core.decide {
            decide.part = false;
        }
        self.read_new_fields();
        Ok(())
    }

    /// The scenes a snapshot keeps ([`SavedScenes`]), made again: each
    /// rule set's texts loaded, its scenes in force taken by name and
    /// compiled over the engine's patterns (restored already) and lists.
    fn scenes_of(
        &self,
        saved: &SavedScenes,
        fields: &mut E::Fields,
    ) -> Result<Vec<crate::engine::decide::SceneRun>, Error> {
        let mut runs = Vec::new();
        for (texts, names) in &saved.sets {
            let mut loaded = crate::dsl::Loaded::default();
            for (name, text) in texts {
                loaded.add_str(name, text);
            }
            if loaded.has_errors() {
                return Err(error(format!(
                    "their texts do not load here:\n{}",
                    loaded.render()
                )));
            }
            let mut scenes = Vec::with_capacity(names.len());
            for name in names {
                match loaded.scenes.iter().find(|s| &s.name == name) {
                    Some(scene) => scenes.push(scene.clone()),
                    None => {
                        return Err(error(format!(
                            "scene `{name}` is not in the texts the snapshot keeps"
                        )))
                    }
                }
            }
            let shared: crate::engine::decide::SceneTexts = texts.clone().into();
            let made = self.compile_scenes(&scenes, &[], fields, true, Some(shared))?;
            runs.extend(made);
        }
        Ok(runs)
    }

    /// Compiles the snapshot's patterns, in its order, against its field
    /// table: those in force from the engine's own patterns (`from` the
    /// engine), the others from the source the snapshot holds.
    fn rebuild(&self, header: &Header, from: RulesFrom) -> Result<Vec<Arc<Nfa<E>>>, Error> {
        let mut fields = E::Fields::default();
        intern_paths(&fields, &header.fields);
        let mut own = self.patterns();
        let mut compiled = Vec::with_capacity(header.patterns.len());
        for print in &header.patterns {
            let what = || {
                if print.draining {
                    format!(
                        "pattern `{}` (version {}, draining)",
                        print.name, print.version
                    )
                } else {
                    format!("pattern `{}`", print.name)
                }
            };
            let rebuilt;
            let mine = if from == RulesFrom::Engine && !print.draining {
                // (as many as the snapshot has in force: checked)
                own.next()
            } else {
                None
            };
            let pattern = match mine {
                Some(p) => p,
                None => {
                    let source = print.source.as_ref().map_err(|why| {
                        error(format!(
                            "{} cannot be rebuilt from the snapshot: {why}; build the engine \
                             with it and use `restore`",
                            what()
                        ))
                    })?;
                    let text = format!("{}{source}", header.declarations);
                    let loaded = crate::rules::load_str(&print.name, &text);
                    match &loaded.patterns[..] {
                        [p] if !loaded.has_errors() && fingerprint(p) == print.fingerprint => {
                            rebuilt = p.clone();
                            &rebuilt
                        }
                        _ => {
                            return Err(error(format!(
                                "{} does not rebuild from the source the snapshot holds",
                                what()
                            )))
                        }
                    }
                }
            };
            let nfa = Nfa::<E>::compile(pattern, &mut fields)
                .map_err(|e| error(format!("{} does not compile here: {e}", what())))?;
            compiled.push(Arc::new(nfa));
        }
        Ok(compiled)
    }

    /// Is the header one this engine can restore, taking its patterns
    /// `from` where it says?
    fn check_header(&self, found: &Header, from: RulesFrom) -> Result<(), Error> {
        let mine = self.header();
        if found.max_delay != mine.max_delay {
            return Err(error(format!(
                "the snapshot was taken with a max delay of {} ms, this engine has {} ms",
                found.max_delay, mine.max_delay
            )));
        }
        if found.run_limit != mine.run_limit {
            return Err(error(format!(
                "the snapshot was taken with at most {} partial matches per key, \
                 this engine has {}",
                found.run_limit, mine.run_limit
            )));
        }
        if found.live_limit != mine.live_limit {
            return Err(error(format!(
                "the snapshot was taken with at most {} live partial matches, this engine has {}",
                found.live_limit, mine.live_limit
            )));
        }
        if found.waiting_limit != mine.waiting_limit {
            return Err(error(format!(
                "the snapshot was taken with at most {} waiting events, this engine has {}",
                found.waiting_limit, mine.waiting_limit
            )));
        }
        if from == RulesFrom::Engine {
            // The patterns in force, against the engine's.
            let found_patterns: Vec<&PatternPrint> =
                found.patterns.iter().filter(|p| !p.draining).collect();
            let mine_patterns: Vec<&PatternPrint> =
                mine.patterns.iter().filter(|p| !p.draining).collect();
            let n = found_patterns.len().max(mine_patterns.len());
            for i in 0..n {
                let message = match (found_patterns.get(i), mine_patterns.get(i)) {
                    (Some(a), Some(b)) if a.same(&b.name, b.fingerprint) => continue,
                    (Some(a), Some(b)) if a.name == b.name => format!(
                        "pattern {} (`{}`) is not the same as when the snapshot was taken",
                        i + 1,
                        b.name
                    ),
                    (Some(a), Some(b)) => format!(
                        "pattern {} is `{}` in the snapshot, `{}` in this engine",
                        i + 1,
                        a.name,
                        b.name
                    ),
                    (Some(a), None) => format!(
                        "the snapshot has {} patterns, this engine {}: `{}` is missing",
                        found_patterns.len(),
                        mine_patterns.len(),
                        a.name
                    ),
                    (None, Some(b)) => format!(
                        "the snapshot has {} patterns, this engine {}: `{}` is not in the snapshot",
                        found_patterns.len(),
                        mine_patterns.len(),
                        b.name
                    ),
                    (None, None) => continue,
                };
                return Err(error(format!(
                    "the snapshot was taken with other patterns: {message}"
                )));
            }
        }
        // The engine's fields must be the first of the snapshot's (fields
        // of patterns removed or replaced since may follow).
        if !found.fields.starts_with(&mine.fields) {
            let show = |fields: &[Vec<String>]| {
                fields
                    .iter()
                    .map(|p| p.join("."))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(error(format!(
                "the snapshot's field table ({}) is not this engine's ({})",
                show(&found.fields),
                show(&mine.fields)
            )));
        }
        Ok(())
    }
}

/// The whole snapshot, in memory.
fn read_all<R: Read>(mut input: R) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read the snapshot: {e}")))?;
    Ok(bytes)
}

/// Checks the frame (magic, version, length, checksum) and reads the
/// header; returns it, the body's bytes and the format version.
fn read_header(bytes: &[u8]) -> Result<(Header, &[u8], u32), Error> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        let what = if bytes.is_empty() {
            "it is empty".to_string()
        } else if MAGIC.starts_with(bytes) {
            format!("it is truncated ({} bytes)", bytes.len())
        } else {
            "it does not start with the snapshot's magic bytes".to_string()
        };
        return Err(error(format!("not a cepheid snapshot: {what}")));
    }
    if bytes.len() < PREFIX + CHECKSUM {
        return Err(error(format!(
            "the snapshot is truncated: {} bytes, fewer than its header",
            bytes.len()
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if !(OLDEST..=VERSION).contains(&version) {
        return Err(error(format!(
            "the snapshot is of format version {version}; this build reads versions {OLDEST} to {VERSION}"
        )));
    }
    let len = u64::from_le_bytes(bytes[12..PREFIX].try_into().unwrap_or_default());
    if len != bytes.len() as u64 {
        return Err(error(if len > bytes.len() as u64 {
            format!("the snapshot is truncated: {} bytes of {len}", bytes.len())
        } else {
            format!(
                "the snapshot is corrupt: {} bytes where it says {len}",
                bytes.len()
            )
        }));
    }
    let (content, crc) = bytes.split_at(bytes.len() - CHECKSUM);
    let crc = u32::from_le_bytes(crc.try_into().unwrap_or_default());
    if crc32fast::hash(content) != crc {
        return Err(error(
            "the snapshot is corrupt: its checksum does not match",
        ));
    }
    let undecodable =
        |e: postcard::Error| error(format!("the snapshot's header does not decode: {e}"));
    let (header, body) = if version == 6 {
        let (h, body) =
            postcard::take_from_bytes::<HeaderV6>(&content[PREFIX..]).map_err(undecodable)?;
        (Header::from(h), body)
    } else {
        postcard::take_from_bytes::<Header>(&content[PREFIX..]).map_err(undecodable)?
    };
    Ok((header, body, version))
}

/// The patterns of a fresh engine, taken out while others are tried.
struct SavedRules<E> {
    patterns: Vec<PatternRun<Arc<Nfa<E>>>>,
    groups: Vec<Group<E, Partition>>,
    group_of_fields: HashMap<Vec<FieldId>, usize>,
    cache: Cache,
    draining: usize,
}

impl<E: Event + 'static> Core<E, Arc<Nfa<E>>> {
    /// Takes the patterns out of a fresh engine (it holds no state for
    /// them), leaving it without patterns.
    fn take_rules(&mut self) -> SavedRules<E> {
        SavedRules {
            patterns: std::mem::take(&mut self.patterns),
            groups: std::mem::take(&mut self.groups),
            group_of_fields: std::mem::take(&mut self.group_of_fields),
            cache: std::mem::take(&mut self.cache),
            draining: std::mem::take(&mut self.draining),
        }
    }

    /// Puts back the patterns [`take_rules`](Core::take_rules) took.
    fn put_rules(&mut self, saved: SavedRules<E>) {
        self.patterns = saved.patterns;
        self.groups = saved.groups;
        self.group_of_fields = saved.group_of_fields;
        self.cache = saved.cache;
        self.draining = saved.draining;
    }

    /// Has the engine seen nothing yet (no event, no watermark)?
    fn is_fresh(&self) -> bool {
        self.stats.events == 0 && self.clock.current().is_none() && self.clock.waiting() == 0
    }

    /// Checks the state read from a snapshot against this engine's
    /// patterns, then makes it this engine's (all of it, or nothing when
    /// it is inconsistent).
    fn install(&mut self, body: BodyIn<E>) -> Result<(), String> {
        let BodyIn {
            clock,
            store,
            ordinals,
            mut keys,
            deadlines,
            stats,
            counts,
            memory: _,
            shadow: _,
            left_out: _,
            origins: _,
        } = body;
        if ordinals.len() != self.patterns.len() || keys.len() != self.groups.len() {
            return Err(format!(
                "{} patterns in {} groups, where the engine has {} in {}",
                ordinals.len(),
                keys.len(),
                self.patterns.len(),
                self.groups.len()
            ));
        }
        if clock.max_delay() != self.clock.max_delay() {
            return Err("the clock has another max delay than the header".into());
        }
        if counts
            .as_ref()
            .is_some_and(|c| c.len() != self.patterns.len())
        {
            return Err("the counts are not one per pattern".into());
        }
        clock.check()?;
        deadlines.check(self.groups.len())?;
        // Each run's node, with its pattern and the pattern's stage count.
        let mut holders = Vec::new();
        let mut live: Vec<Vec<u32>> = vec![Vec::new(); self.patterns.len()];
        let mut live_parts = 0;
        let mut live_runs = 0usize;
        for (g, (group_keys, group)) in keys.iter_mut().zip(&self.groups).enumerate() {
            let arity = if group.key_fn.is_some() {
                1
            } else {
                group.key_ids.len()
            };
            group_keys.rebuild(&self.hasher, arity)?;
            for (slot, parts) in group_keys.iter_parts() {
                let mut previous = None;
                for part in parts.iter() {
                    let p = part.pattern as usize;
                    let Some(run) = self.patterns.get(p).filter(|run| run.group == g) else {
                        return Err(format!("key slot {slot} of group {g} holds pattern {p}"));
                    };
                    // (the engine finds a key's partitions in pattern order)
                    if previous.is_some_and(|q| q >= p) {
                        return Err(format!(
                            "key slot {slot} holds pattern {p} twice or out of order"
                        ));
                    }
                    previous = Some(p);
                    let nfa = &run.automaton;
                    let stages = u16::try_from(nfa.pattern().stages.len()).unwrap_or(u16::MAX);
                    part.part
                        .check(nfa, |node| holders.push((node, p as u32, stages)))?;
                    if part.is_hole() {
                        if !part.part.is_empty() {
                            return Err(format!("key slot {slot} holds a hole that is not empty"));
                        }
                        continue;
                    }
                    live[p].push(part.ordinal);
                    live_parts += 1;
                    live_runs = live_runs.saturating_add(part.part.partial_matches());
                }
                if parts.iter().all(|part| part.is_hole()) {
                    return Err(format!("key slot {slot} holds no live partition"));
                }
            }
        }
        for (p, numbers) in ordinals.iter().zip(live) {
            p.check(numbers.into_iter())?;
        }
        store.check(&holders)?;
        for group_keys in &keys {
            for (_, parts) in group_keys.iter_parts() {
                for part in parts.iter() {
                    part.part.check_times(&store)?;
                }
            }
        }
        // Consistent: make it this engine's.
        for (run, ordinals) in self.patterns.iter_mut().zip(ordinals) {
            run.ordinals = ordinals;
        }
        for (group, keys) in self.groups.iter_mut().zip(keys) {
            group.keys = keys;
        }
        self.clock = clock;
        self.store = store;
        self.deadlines = deadlines;
        self.stats = stats_from(stats);
        match counts {
            Some(counts) => {
                for (run, c) in self.patterns.iter_mut().zip(counts) {
                    run.counts = counts_from(c);
                }
            }
            // (a snapshot of version 6 kept no counts per pattern: they
            // start again)
            None => {
                let base = self.processed();
                for run in &mut self.patterns {
                    run.counts = PatternCounts {
                        base,
                        ..PatternCounts::default()
                    };
                }
            }
        }
        self.live_parts = live_parts;
        self.live_runs = live_runs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::FieldPath;
    use crate::matcher::Output;
    use crate::record::Record;
    use crate::value::Value;

    /// An engine with two patterns (two groups), some partial matches,
    /// a waiting event and deadlines.
    fn engine() -> Engine<Record> {
        let loaded = crate::rules::load_str(
            "p.cep",
            r#"pattern ab { partition by k within 10s timeouts
                   match a followed by b+ where a: t == "a" b: t == "b" and n > a.n }
               pattern c { match c{2} where c: t == "c" }"#,
        );
        assert!(!loaded.has_errors(), "{}", loaded.render());
        let mut engine: Engine<Record> =
            Engine::with_max_delay(std::time::Duration::from_millis(5));
        for p in &loaded.patterns {
            engine.add(p).unwrap();
        }
        let id = |name: &str| {
            engine
                .fields()
                .get(&FieldPath::single(name))
                .unwrap()
                .index()
        };
        let (k, t, n) = (id("k"), id("t"), id("n"));
        let mut out: Vec<Output<Record>> = Vec::new();
        for (ts, key, kind, value) in [
            (1, 1, "a", 1),
            (2, 2, "a", 5),
            (3, 1, "b", 2),
            (4, 1, "c", 0),
            (12, 2, "b", 9),
            (20, 1, "b", 3),
            (18, 3, "a", 1),
        ] {
            let mut values = vec![Value::Null; 3];
            values[k] = Value::Int(key);
            values[t] = Value::from(kind);
            values[n] = Value::Int(value);
            let raw = Arc::from(format!("{{\"ts\":{ts}}}"));
            engine.push(ts, Record::new(values, raw), &mut out);
        }
        assert!(engine.live_keys() > 1 && engine.waiting_events() > 0);
        engine
    }

    /// The body's bytes are pinned: a change to any type a snapshot holds
    /// (a field added, removed, reordered, another encoding) changes them,
    /// and then [`VERSION`] must be bumped (`docs/snapshot.md`,
    /// "Versions") and this checksum updated. (A change of the engine's
    /// state alone, with the same encoding, changes them too without a new
    /// version: the deadline index dropping its stale entries sooner did.)
    #[test]
    fn a_snapshot_into_a_buffer_is_the_one_written_after_what_it_held() {
        let engine = engine();
        let mut written = Vec::new();
        engine.snapshot(&mut written).unwrap();
        let mut bytes = b"prefix".to_vec();
        engine.snapshot_into(&mut bytes).unwrap();
        assert_eq!(&bytes[..6], b"prefix");
        assert_eq!(&bytes[6..], &written[..]);
        let mut restored: Engine<Record> =
            Engine::with_max_delay(std::time::Duration::from_millis(5));
        for p in engine.patterns() {
            restored.add(p).unwrap();
        }
        restored.restore(&bytes[6..]).unwrap();
    }

    #[test]
    fn the_format_changes_only_with_its_version() {
        let mut bytes = Vec::new();
        engine().snapshot(&mut bytes).unwrap();
        let content = &bytes[PREFIX..bytes.len() - CHECKSUM];
        let (_, body) = postcard::take_from_bytes::<Header>(content).unwrap();
        let crc = crc32fast::hash(body);
        assert_eq!(
            (VERSION, crc, body.len()),
            (14, 4_112_034_850, 465),
            "the snapshot's body changed: bump VERSION (and docs/snapshot.md), then update this test"
        );
    }

    /// The snapshot `bytes` of this version as version `version` wrote
    /// it: without the sections added after it, `tail` bytes in all (the
    /// origins of the lists' entries, version 10; the counts of what the
    /// lists' and indicators' limits left out, version 9; the shadow
    /// copies, version 8).
    fn as_version(bytes: &[u8], version: u32, tail: usize) -> Vec<u8> {
        let end = bytes.len() - CHECKSUM;
        let mut old = bytes[..end - tail].to_vec();
        old[8..12].copy_from_slice(&version.to_le_bytes());
        let len = (old.len() + CHECKSUM) as u64;
        old[12..PREFIX].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        old
    }

    /// A snapshot of version 7 (no shadow copies of lists, the section
    /// version 8 adds after the lists), 8 (no counts of what the lists'
    /// and indicators' limits left out, the section version 9 adds after
    /// the shadow copies), 9 (no origins of the lists' entries, the
    /// section version 10 adds after what was left out), 10 (no
    /// positions and counts of decisions, the section version 11 adds
    /// after the origins), 11 (no remembered requests, the section
    /// version 12 adds after the decisions), 12 (no scenes, the section
    /// version 13 adds last) or 13 (the requests before the scenes:
    /// version 14 moved them last) is still read, with its counts and
    /// lists; none of their lists has a shadow copy, and nothing was left
    /// out.
    #[test]
    fn snapshots_of_versions_7_to_13_are_still_read() {
        let engine = engine();
        let mut bytes = Vec::new();
        engine.snapshot(&mut bytes).unwrap();
        // (version 8's section of shadow copies, empty: two empty lists;
        // version 9's of what was left out, empty: two empty maps;
        // version 10's of origins: no list, no change, no origin)
        let end = bytes.len() - CHECKSUM;
        // version 11's of decisions: none, no scene; version 12's of
        // remembered requests: none, no request; version 13's of scenes:
        // none)
        assert_eq!(&bytes[end - 10..end], &[0; 10]);
        // (version 13 kept the requests before the scenes: both none, the
        // same bytes)
        for (version, tail) in [(7, 10), (8, 8), (9, 6), (10, 3), (11, 2), (12, 1), (13, 0)] {
            let old = as_version(&bytes, version, tail);
            let mut restored: Engine<Record> =
                Engine::with_max_delay(std::time::Duration::from_millis(5));
            for p in engine.patterns() {
                restored.add(p).unwrap();
            }
            restored.restore(&old[..]).unwrap();
            assert_eq!(restored.pattern_stats(), engine.pattern_stats());
            assert_eq!(restored.stats(), engine.stats());
            assert!(restored.left_out().is_empty());
            let mut again = Vec::new();
            restored.snapshot(&mut again).unwrap();
            assert_eq!(again, bytes, "version {version}");
        }
    }

    /// Each origin's hold of a list's values survives a snapshot (version
    /// 10), with its expiry, changes waiting for their time with their
    /// origins; from a snapshot of version 9, which kept no origins, each
    /// entry is of no recorded origin: any origin's change ends it, as
    /// any change of a value did then.
    #[test]
    fn the_origins_of_list_entries_survive_a_snapshot_and_version_9_has_none() {
        use crate::engine::EntryOrigin;
        let rules = crate::rules::Rules::parse(
            "l.cep",
            "list l\npattern p { match a where a: d in l then add a.e to l for 100ms }",
        )
        .unwrap();
        let (a, b) = (
            EntryOrigin::File("a.csv".into()),
            EntryOrigin::File("b.csv".into()),
        );
        let mut engine: Engine<Record> = Engine::new();
        engine.add(&rules).unwrap();
        let mut out: Vec<Output<Record>> = Vec::new();
        engine.add_to_list_by(&a, "l", "x".into(), 1, None).unwrap();
        engine
            .add_to_list_by(&b, "l", "x".into(), 1, Some(50))
            .unwrap();
        engine.add_to_list_by(&a, "l", "y".into(), 1, None).unwrap();
        // (the rules hold `y` until 110, written at 10)
        engine
            .push_json(r#"{"ts": 10, "d": "x", "e": "y"}"#, "ts", &mut out)
            .unwrap();
        engine.watermark(11, &mut out);
        // Waiting at the snapshot: b.csv drops `x` at 20.
        engine.remove_from_list_by(&b, "l", "x".into(), 20).unwrap();
        let mut bytes = Vec::new();
        engine.snapshot(&mut bytes).unwrap();
        let content = &bytes[PREFIX..bytes.len() - CHECKSUM];
        let (_, rest) = postcard::take_from_bytes::<Header>(content).unwrap();
        let (_, rest) = postcard::take_from_bytes::<BodyIn<Record>>(rest).unwrap();
        let (_, rest) = postcard::take_from_bytes::<Vec<[u64; 8]>>(rest).unwrap();
        let (_, rest) = postcard::take_from_bytes::<Saved>(rest).unwrap();
        let (_, rest) = postcard::take_from_bytes::<SavedShadow>(rest).unwrap();
        let (_, origins) = postcard::take_from_bytes::<LeftOut>(rest).unwrap();
        let old = as_version(&bytes, 9, origins.len());
        // (an event at `t` takes the lists to `t`)
        let at = |e: &mut Engine<Record>, t: crate::primitives::Timestamp, v: &str| {
            let mut out: Vec<Output<Record>> = Vec::new();
            let event = format!(r#"{{"ts": {t}, "d": "-"}}"#);
            e.push_json(&event, "ts", &mut out).unwrap();
            e.watermark(t, &mut out);
            e.list_contains("l", v.into()).unwrap()
        };
        let mut resumed = Engine::<Record>::from_snapshot_rules(&bytes[..]).unwrap();
        // a.csv drops both at 30: `x` is a.csv's only after 20, `y` is
        // the rules' too until 110.
        resumed
            .remove_from_list_by(&a, "l", "x".into(), 30)
            .unwrap();
        resumed
            .remove_from_list_by(&a, "l", "y".into(), 30)
            .unwrap();
        assert!(at(&mut resumed, 29, "x") && at(&mut resumed, 29, "y"));
        assert!(!at(&mut resumed, 30, "x") && at(&mut resumed, 30, "y"));
        assert!(at(&mut resumed, 109, "y") && !at(&mut resumed, 110, "y"));
        // Version 9: no origin recorded, a.csv's remove ends every hold.
        let mut resumed = Engine::<Record>::from_snapshot_rules(&old[..]).unwrap();
        resumed
            .remove_from_list_by(&a, "l", "y".into(), 30)
            .unwrap();
        assert!(at(&mut resumed, 29, "y") && !at(&mut resumed, 30, "y"));
    }

    /// The snapshot `bytes` (version 11) as version 6 wrote it: the same
    /// header and body, without the counts per pattern after it.
    fn as_version_6(bytes: &[u8]) -> Vec<u8> {
        let content = &bytes[PREFIX..bytes.len() - CHECKSUM];
        let (header, rest) = postcard::take_from_bytes::<Header>(content).unwrap();
        assert!(header.declarations.is_empty(), "version 6 had no lists");
        let old = HeaderV6 {
            max_delay: header.max_delay,
            run_limit: header.run_limit,
            waiting_limit: header.waiting_limit,
            live_limit: header.live_limit,
            patterns: header.patterns,
            fields: header.fields,
        };
        let (_, counts) = postcard::take_from_bytes::<BodyIn<Record>>(rest).unwrap();
        let body_len = rest.len() - counts.len();
        let mut out = bytes[..PREFIX].to_vec();
        out[8..12].copy_from_slice(&6u32.to_le_bytes());
        out.extend_from_slice(&postcard::to_allocvec(&old).unwrap());
        out.extend_from_slice(&rest[..body_len]);
        let len = (out.len() + CHECKSUM) as u64;
        out[12..PREFIX].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Each pattern's counts survive a snapshot (version 7), so a resumed
    /// run's table of rules goes on from its totals; a snapshot of version
    /// 6 (the previous release, whose body is pinned here as it was) is
    /// still read, its counts starting again.
    #[test]
    fn the_counts_per_pattern_survive_a_snapshot_and_version_6_is_still_read() {
        let engine = engine();
        let before = engine.pattern_stats();
        assert!(before.iter().any(|s| s.events > 0), "{before:?}");
        let mut bytes = Vec::new();
        engine.snapshot(&mut bytes).unwrap();
        let fresh = || {
            let mut e: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_millis(5));
            for p in engine.patterns() {
                e.add(p).unwrap();
            }
            e
        };
        let mut restored = fresh();
        restored.restore(&bytes[..]).unwrap();
        assert_eq!(restored.pattern_stats(), before);
        // Version 6: the body as the previous release wrote it.
        let old = as_version_6(&bytes);
        let content = &old[PREFIX..old.len() - CHECKSUM];
        let (_, body) = postcard::take_from_bytes::<HeaderV6>(content).unwrap();
        assert_eq!((crc32fast::hash(body), body.len()), (3_852_115_582, 425));
        let mut restored = fresh();
        restored.restore(&old[..]).unwrap();
        let again = restored.pattern_stats();
        assert!(
            again.iter().all(|s| s.events == 0 && s.matches == 0),
            "{again:?}"
        );
        assert_eq!(restored.stats(), engine.stats());
        // Another version is refused, naming what this build reads.
        let mut other = old.clone();
        other[8..12].copy_from_slice(&5u32.to_le_bytes());
        let e = fresh().restore(&other[..]).unwrap_err();
        assert!(
            e.to_string()
                .contains("format version 5; this build reads versions 6 to 14"),
            "{e}"
        );
    }

    /// The snapshot `bytes` with its header changed by `change` (the
    /// frame's length and checksum made right again).
    fn with_header(bytes: &[u8], change: impl FnOnce(&mut Header)) -> Vec<u8> {
        let content = &bytes[PREFIX..bytes.len() - CHECKSUM];
        let (mut header, body) = postcard::take_from_bytes::<Header>(content).unwrap();
        change(&mut header);
        let mut out = bytes[..PREFIX].to_vec();
        out.extend_from_slice(&postcard::to_allocvec(&header).unwrap());
        out.extend_from_slice(body);
        let len = (out.len() + CHECKSUM) as u64;
        out[12..PREFIX].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A snapshot whose fingerprints another build's canonical text gave
    /// (a release whose `explain` printed a rule otherwise) resumes on an
    /// engine with the same rules: the snapshot's source, printed by this
    /// build, is the engine's pattern. Another rule of the same name is
    /// still refused.
    #[test]
    fn fingerprints_of_another_printed_form_are_checked_through_the_source() {
        let engine = engine();
        let mut bytes = Vec::new();
        engine.snapshot(&mut bytes).unwrap();
        let other_build = with_header(&bytes, |h| {
            for p in &mut h.patterns {
                p.fingerprint = !p.fingerprint;
            }
        });
        let fresh = || {
            let mut e: Engine<Record> = Engine::with_max_delay(std::time::Duration::from_millis(5));
            for p in engine.patterns() {
                e.add(p).unwrap();
            }
            e
        };
        let mut resumed = fresh();
        resumed.restore(&other_build[..]).unwrap();
        let mut again = Vec::new();
        resumed.snapshot(&mut again).unwrap();
        // (the state is the one taken; the header has this build's prints)
        assert_eq!(again, bytes);
        // Without a source to print, the fingerprint alone decides.
        let no_source = with_header(&bytes, |h| {
            h.patterns[0].fingerprint = !h.patterns[0].fingerprint;
            h.patterns[0].source = Err("a closure".into());
        });
        let refused = fresh().restore(&no_source[..]).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("pattern 1 (`ab`) is not the same"),
            "{refused}"
        );
        // A source that is another rule of the same name.
        let other_rule = with_header(&bytes, |h| {
            h.patterns[1].fingerprint = !h.patterns[1].fingerprint;
            h.patterns[1].source = Ok("pattern c { match c{3} where c: t == \"c\" }".into());
        });
        let refused = fresh().restore(&other_rule[..]).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("pattern 2 (`c`) is not the same"),
            "{refused}"
        );
    }

    #[test]
    fn fingerprints_ignore_doc_comments_and_layout() {
        let a = crate::rules::load_str("a.cep", "pattern p { match x where x: n > 1 }");
        let b = crate::rules::load_str(
            "b.cep",
            "/// Doc.\n/// More.\npattern p {\n  match x\n  where\n    x: n > 1 // why\n}",
        );
        let c = crate::rules::load_str("c.cep", "pattern p { match x where x: n > 2 }");
        let print = |l: &crate::dsl::Loaded| fingerprint(&l.patterns[0]);
        assert_eq!(print(&a), print(&b));
        assert_ne!(print(&a), print(&c));
    }
}
