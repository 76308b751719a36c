//! What an observing [`Report`](crate::Report) sees of a run at each
//! [`tick`](crate::Report::tick): a [`RunView`], over the run's one engine
//! (the driver of this crate) or over the numbers its workers published
//! ([`EngineNumbers`], summed: the dataflow crate's run on workers).

use cepheid_core::pattern::Pattern;
use cepheid_engine::engine::{LeftOutParts, MemoryStats};
use cepheid_engine::{Engine, Event, PatternStats, Record, Stats, Timestamp};

use crate::Kind;

/// What a [`Report`](crate::Report) that observes the run sees of it at a
/// [`Report::tick`](crate::Report::tick): the counts of the reader (public
/// fields) and those of the engines (methods: read from the run's engine
/// when asked, or the sums of what its workers last published).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RunView<'a> {
    numbers: Numbers<'a>,
    /// Events read (accepted, late or waiting), as
    /// [`Summary::events`](crate::Summary::events).
    pub events_read: u64,
    /// Malformed lines so far.
    pub malformed: u64,
    /// Late events so far.
    pub late: u64,
    /// The output records of this batch (their kind and the JSON line,
    /// with its newline), the latest [`Report::records_wanted`] of them
    /// (on workers, those of the blocks of records formatted since the
    /// last tick, the last ones of each block).
    ///
    /// [`Report::records_wanted`]: crate::Report::records_wanted
    pub records: &'a [(Kind, String)],
    /// Bytes of the input file after the run's position (its length
    /// minus the offset), when the input is a file read by one reader.
    pub source_lag: Option<u64>,
    /// Records behind the end of a source with offsets (a Kafka
    /// consumer's lag: the sum of `split_lag`), when the source knows it
    /// ([`Source::lag`](crate::Source::lag), at most a second old).
    pub consumer_lag: Option<u64>,
    /// The same per split (a Kafka partition), in the source's order.
    pub split_lag: &'a [crate::SplitLag],
    /// Warnings said so far about fields no event carried
    /// ([`Config::field_warnings`](crate::Config::field_warnings): one per
    /// pattern and field).
    pub field_warnings: u64,
    /// The records of a [`Source`](crate::Source)'s rules stream waiting
    /// for event time to reach them, if any.
    pub rules_waiting: Option<crate::source::RulesWaiting>,
    /// The latest changes of rules the run applied or refused (at most
    /// [`HISTORY`](crate::audit::HISTORY), oldest first; a resumed run's
    /// include those before its checkpoint), as their audit records.
    pub rule_changes: &'a [crate::audit::RuleChange],
    /// Is this the last tick (the run ended)?
    pub finished: bool,
    /// The run's event time is its splits' ([`Config::split_watermarks`](crate::Config::split_watermarks))
    /// and they have given no watermark yet: [`RunView::watermark`] is
    /// `None` (the engine's own, from its events with an unbounded delay,
    /// is no time at all).
    pub no_watermark_yet: bool,
}

/// Where a view's engine numbers come from.
#[derive(Clone, Copy)]
enum Numbers<'a> {
    /// The run's engine, read when asked.
    Engine(&'a Engine<Record>),
    /// Several workers' numbers as they last published them.
    Workers(&'a Workers),
}

/// The numbers of a run on several workers, for
/// [`RunView::of_workers`]: their sum, each worker's own (by its index
/// over all processes), and the patterns they run.
#[derive(Clone, Debug, Default)]
pub struct Workers {
    /// The sum over the workers ([`EngineNumbers::add`]).
    pub total: EngineNumbers,
    /// Each worker's own, by its index over all processes.
    pub each: Vec<(usize, EngineNumbers)>,
    /// The patterns the workers run, in order.
    pub patterns: Vec<Pattern>,
}

impl Workers {
    /// The sum of `each` over the `patterns` they run.
    pub fn new(patterns: Vec<Pattern>, each: Vec<(usize, EngineNumbers)>) -> Workers {
        let mut total = EngineNumbers::default();
        for (_, numbers) in &each {
            total.add(numbers);
        }
        Workers {
            total,
            each,
            patterns,
        }
    }
}

/// The numbers of one engine, or the sum of several (a worker's engines,
/// every worker's): taken now and then (once a second, at the end), never
/// per event, to be shown by a [`RunView`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineNumbers {
    /// Engines added up (1 for [`EngineNumbers::of`]).
    pub engines: usize,
    /// The engines' [`Engine::stats`], added up.
    pub stats: Stats,
    /// Each pattern's [`Engine::pattern_stats`], added up by name (the
    /// version: the largest), in the order first met.
    pub patterns: Vec<PatternStats>,
    /// Partial matches held ([`Engine::live_runs`]).
    pub live_runs: u64,
    /// Events waiting for the watermark ([`Engine::waiting_events`]).
    pub waiting_events: u64,
    /// Events held by partial matches ([`Engine::stored_events`]).
    pub stored_events: u64,
    /// The least of the engines' watermarks ([`Engine::current_watermark`];
    /// `None` while one has none).
    pub watermark: Option<Timestamp>,
    /// The bytes of state held ([`Engine::state_bytes`]), when measured.
    pub state_bytes: Option<u64>,
    /// The reference lists and rolling indicators.
    pub memory: MemoryNumbers,
}

/// The lists and indicators of one engine, or the sum of several.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryNumbers {
    /// [`Engine::memory_stats`], added up.
    pub stats: MemoryStats,
    /// Each list the rules declare, by name, with its entries
    /// ([`Engine::list_sizes`]), added up by name.
    pub lists: Vec<(String, u64)>,
    /// Indicators the rules declare (the most of the engines').
    pub indicators: u64,
    /// What the limits and values left out of each list and indicator
    /// ([`Engine::left_out`]), gathered over the engines as one engine
    /// counts it ([`LeftOutParts`]: each engine is of group 0 unless set,
    /// as a dataflow worker sets its engines' groups of patterns).
    pub left_out: LeftOutParts,
}

impl MemoryNumbers {
    /// `engine`'s now.
    pub fn of<E: Event>(engine: &Engine<E>) -> MemoryNumbers {
        MemoryNumbers {
            stats: engine.memory_stats(),
            lists: (engine.list_sizes())
                .map(|(name, n)| (name.to_string(), n as u64))
                .collect(),
            indicators: engine.declarations().indicators.len() as u64,
            left_out: LeftOutParts::of(0, engine.left_out()),
        }
    }

    /// `engine`'s now, `engine` an engine of the group of patterns
    /// `group` ([`LeftOutParts`]).
    pub fn of_group<E: Event>(engine: &Engine<E>, group: u32) -> MemoryNumbers {
        MemoryNumbers {
            left_out: LeftOutParts::of(group, engine.left_out()),
            ..MemoryNumbers::of(engine)
        }
    }

    /// Adds `other`'s to these: counts summed, lists by name.
    pub fn add(&mut self, other: &MemoryNumbers) {
        self.stats.add(&other.stats);
        for (name, n) in &other.lists {
            match self.lists.iter_mut().find(|(m, _)| m == name) {
                Some((_, total)) => *total += n,
                None => self.lists.push((name.clone(), *n)),
            }
        }
        self.indicators = self.indicators.max(other.indicators);
        self.left_out.merge(&other.left_out);
    }
}

impl EngineNumbers {
    /// `engine`'s numbers now; its state's bytes measured when
    /// `state_bytes` (a walk over the state: now and then).
    pub fn of<E: Event>(engine: &Engine<E>, state_bytes: bool) -> EngineNumbers {
        EngineNumbers {
            engines: 1,
            stats: engine.stats(),
            patterns: engine.pattern_stats(),
            live_runs: engine.live_runs() as u64,
            waiting_events: engine.waiting_events() as u64,
            stored_events: engine.stored_events() as u64,
            watermark: engine.current_watermark(),
            state_bytes: state_bytes.then(|| engine.state_bytes()),
            memory: MemoryNumbers::of(engine),
        }
    }

    /// Adds `other`'s numbers to these: counts summed (a pattern's by
    /// its name), the least watermark, state bytes summed when both were
    /// measured (or this one is the first).
    pub fn add(&mut self, other: &EngineNumbers) {
        let first = self.engines == 0;
        self.engines += other.engines;
        add_stats(&mut self.stats, &other.stats);
        add_patterns(&mut self.patterns, &other.patterns);
        self.live_runs += other.live_runs;
        self.waiting_events += other.waiting_events;
        self.stored_events += other.stored_events;
        self.watermark = match (first, self.watermark, other.watermark) {
            (true, _, w) => w,
            (false, Some(a), Some(b)) => Some(a.min(b)),
            (false, _, _) => None,
        };
        self.state_bytes = match (first, self.state_bytes, other.state_bytes) {
            (true, _, b) => b,
            (false, Some(a), Some(b)) => Some(a + b),
            (false, _, _) => None,
        };
        self.memory.add(&other.memory);
    }
}

/// Adds `b`'s counts to `a`'s (every count of [`Stats`]).
pub fn add_stats(a: &mut Stats, b: &Stats) {
    a.events += b.events;
    a.late += b.late;
    a.matches += b.matches;
    a.timeouts += b.timeouts;
    a.unkeyed += b.unkeyed;
    a.unusable_keys += b.unusable_keys;
    a.dropped_runs += b.dropped_runs;
    a.capped_runs += b.capped_runs;
    a.discarded_runs += b.discarded_runs;
    a.forced_watermarks += b.forced_watermarks;
}

/// Adds each pattern's counts in `b` to those of the pattern of its name
/// in `a` (a pattern `a` does not have goes at its end): the counts
/// summed, the largest version.
pub fn add_patterns(a: &mut Vec<PatternStats>, b: &[PatternStats]) {
    for theirs in b {
        match a.iter_mut().find(|p| p.name == theirs.name) {
            Some(mine) => add_pattern(mine, theirs),
            None => a.push(theirs.clone()),
        }
    }
}

/// Adds the counts of `b` (the same pattern elsewhere) to `a`'s.
fn add_pattern(a: &mut PatternStats, b: &PatternStats) {
    a.version = a.version.max(b.version);
    a.shadow |= b.shadow;
    a.events += b.events;
    a.matches += b.matches;
    a.timeouts += b.timeouts;
    a.live_runs += b.live_runs;
    a.dropped_runs += b.dropped_runs;
    a.capped_runs += b.capped_runs;
    a.discarded_runs += b.discarded_runs;
    a.unkeyed += b.unkeyed;
    a.unusable_keys += b.unusable_keys;
}

impl<'a> RunView<'a> {
    /// A view of the run's one engine (the reader's counts zero: set the
    /// fields).
    pub fn of_engine(engine: &'a Engine<Record>) -> RunView<'a> {
        RunView::with(Numbers::Engine(engine))
    }

    /// A view of a run on several workers (the reader's counts zero: set
    /// the fields).
    pub fn of_workers(workers: &'a Workers) -> RunView<'a> {
        RunView::with(Numbers::Workers(workers))
    }

    fn with(numbers: Numbers<'a>) -> RunView<'a> {
        RunView {
            numbers,
            events_read: 0,
            malformed: 0,
            late: 0,
            records: &[],
            source_lag: None,
            consumer_lag: None,
            rules_waiting: None,
            split_lag: &[],
            field_warnings: 0,
            rule_changes: &[],
            finished: false,
            no_watermark_yet: false,
        }
    }

    /// The run's one engine (`None` on workers).
    pub fn engine(&self) -> Option<&'a Engine<Record>> {
        match self.numbers {
            Numbers::Engine(engine) => Some(engine),
            Numbers::Workers(_) => None,
        }
    }

    /// What the engines have seen and produced ([`Engine::stats`]).
    pub fn stats(&self) -> Stats {
        match self.numbers {
            Numbers::Engine(engine) => engine.stats(),
            Numbers::Workers(w) => w.total.stats,
        }
    }

    /// Each pattern's counts ([`Engine::pattern_stats`]: a walk over the
    /// live partitions on one engine).
    pub fn pattern_stats(&self) -> Vec<PatternStats> {
        match self.numbers {
            Numbers::Engine(engine) => engine.pattern_stats(),
            Numbers::Workers(w) => w.total.patterns.clone(),
        }
    }

    /// Partial matches held ([`Engine::live_runs`]).
    pub fn live_runs(&self) -> u64 {
        match self.numbers {
            Numbers::Engine(engine) => engine.live_runs() as u64,
            Numbers::Workers(w) => w.total.live_runs,
        }
    }

    /// The watermark ([`Engine::current_watermark`]; on workers the least
    /// of theirs).
    pub fn watermark(&self) -> Option<Timestamp> {
        if self.no_watermark_yet {
            return None;
        }
        match self.numbers {
            Numbers::Engine(engine) => engine.current_watermark(),
            Numbers::Workers(w) => w.total.watermark,
        }
    }

    /// Events waiting for the watermark ([`Engine::waiting_events`]).
    pub fn waiting_events(&self) -> u64 {
        match self.numbers {
            Numbers::Engine(engine) => engine.waiting_events() as u64,
            Numbers::Workers(w) => w.total.waiting_events,
        }
    }

    /// Events held by partial matches ([`Engine::stored_events`]).
    pub fn stored_events(&self) -> u64 {
        match self.numbers {
            Numbers::Engine(engine) => engine.stored_events() as u64,
            Numbers::Workers(w) => w.total.stored_events,
        }
    }

    /// The bytes of state held: on one engine measured now
    /// ([`Engine::state_bytes`], a walk over the state: now and then, not
    /// at every tick); on workers as they last measured it (about once a
    /// second), `None` before.
    pub fn state_bytes(&self) -> Option<u64> {
        match self.numbers {
            Numbers::Engine(engine) => Some(engine.state_bytes()),
            Numbers::Workers(w) => w.total.state_bytes,
        }
    }

    /// The lists and indicators ([`MemoryNumbers`]; on workers the sum of
    /// their engines').
    pub fn memory(&self) -> MemoryNumbers {
        match self.numbers {
            Numbers::Engine(engine) => MemoryNumbers::of(engine),
            Numbers::Workers(w) => w.total.memory.clone(),
        }
    }

    /// The patterns in force, in order.
    pub fn patterns(&self) -> Box<dyn Iterator<Item = &'a Pattern> + 'a> {
        match self.numbers {
            Numbers::Engine(engine) => Box::new(engine.patterns()),
            Numbers::Workers(w) => Box::new(w.patterns.iter()),
        }
    }

    /// Each worker's own numbers, by its index over all processes (none
    /// on one engine).
    pub fn workers(&self) -> &'a [(usize, EngineNumbers)] {
        match self.numbers {
            Numbers::Engine(_) => &[],
            Numbers::Workers(w) => &w.each,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(matches: u64, capped_runs: u64) -> Stats {
        let mut stats = Stats::default();
        stats.matches = matches;
        stats.capped_runs = capped_runs;
        stats
    }

    fn pattern(name: &str, matches: u64, live_runs: u64) -> PatternStats {
        let mut p = PatternStats::default();
        p.name = name.to_string();
        p.version = 1;
        p.matches = matches;
        p.live_runs = live_runs;
        p
    }

    #[test]
    fn numbers_add_up_by_pattern_with_the_least_watermark() {
        let a = EngineNumbers {
            engines: 1,
            stats: stats(3, 1),
            patterns: vec![pattern("p", 2, 1), pattern("q", 1, 0)],
            live_runs: 1,
            watermark: Some(10),
            state_bytes: Some(100),
            ..EngineNumbers::default()
        };
        let b = EngineNumbers {
            engines: 1,
            stats: stats(4, 2),
            patterns: vec![pattern("q", 4, 5)],
            live_runs: 5,
            watermark: Some(7),
            state_bytes: None,
            ..EngineNumbers::default()
        };
        let workers = Workers::new(Vec::new(), vec![(0, a), (1, b)]);
        let total = &workers.total;
        assert_eq!((total.stats.matches, total.stats.capped_runs), (7, 3));
        assert_eq!(total.patterns, [pattern("p", 2, 1), pattern("q", 5, 5)]);
        assert_eq!((total.live_runs, total.watermark), (6, Some(7)));
        // One worker did not measure: no sum.
        assert_eq!(total.state_bytes, None);
        let view = RunView::of_workers(&workers);
        assert_eq!((view.live_runs(), view.watermark()), (6, Some(7)));
        assert_eq!(view.workers().len(), 2);
        assert!(view.engine().is_none());
    }

    #[test]
    fn a_worker_without_a_watermark_holds_the_sum_without_one() {
        let mut total = EngineNumbers::default();
        total.add(&EngineNumbers {
            engines: 1,
            watermark: Some(5),
            live_runs: 1,
            ..EngineNumbers::default()
        });
        total.add(&EngineNumbers {
            engines: 1,
            watermark: None,
            ..EngineNumbers::default()
        });
        assert_eq!(total.watermark, None);
        assert_eq!((total.engines, total.live_runs), (2, 1));
    }
}
