//! `cepheid run`: every pattern over one pass of an event stream, matches
//! and timeouts out as JSON lines, a summary on standard error
//! (`../shared/spec/cli.md`). The run itself is `cepheid_runtime` (its
//! `driver` module says what it decides where the spec is silent); this
//! module maps the arguments to its `Config`, says what the libraries
//! refuse before anything is opened (exit 2: `Config::check`, the Kafka
//! options' `check`, the workers' `Cluster::check`), draws the progress
//! bar, hands SIGINT, SIGTERM (and SIGHUP with `--watch`) to the run's
//! `Handle`, and turns how the run ended into the exit status:
//! - 3: malformed input with `--strict` (the events read before it are
//!   still processed); 4: an I/O error; 5: a checkpoint that cannot be
//!   used, or a folder or output another run holds; (feature `kafka`) 6:
//!   a Kafka broker that did not answer within `--kafka-timeout`, 7: fenced
//!   by another instance with the same transactional id; 128 + the signal for
//!   a stopped run (130, 143); a closed standard output (`| head`) ends
//!   the run quietly (0, no summary).
//! - `--follow` refuses standard input (there is nothing to follow) and
//!   `--flush-at-end` (the input never ends); `--time processing` refuses
//!   `--max-delay` and `--idle-timeout`; `--checkpoint` needs `--events
//!   FILE` (the runtime's `Conflict`s, but `--flush-at-end`: clap's).

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_core::time::{parse_duration, parse_positive_duration};
use cepheid_decode::Format;
use cepheid_engine::engine::{Engine, ReloadPolicy};
use cepheid_engine::{Record, Rules};
use cepheid_runtime::checkpoint::Every;
use cepheid_runtime::lists::ListFile;
use cepheid_runtime::stats;
use cepheid_runtime::FieldWatch;
use cepheid_runtime::{
    Config, Conflict, End, Error, Input, Notice, Report, Runtime, Summary, Time,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(feature = "workers")]
#[path = "workers.rs"]
mod workers;

#[cfg(feature = "kafka")]
#[path = "kafka.rs"]
pub(crate) mod kafka;

use crate::{signals, EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// Exit status: malformed input with `--strict`.
const EXIT_MALFORMED: u8 = 3;

/// `--reload-policy`: what becomes of a changed pattern's partial matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// They go on under the old version to their match or timeout.
    #[default]
    Drain,
    /// They are dropped (and counted) at the change.
    Restart,
}

/// Input format names on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one row per line.
    Csv,
}

/// Where event time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeArg {
    /// The events' time field (`--time-field`) and `$watermark` lines.
    Event,
    /// The wall clock when the run takes each line.
    Processing,
    /// Each Kafka record's timestamp (`--events kafka://...`; feature
    /// `kafka`): no time field is read.
    Kafka,
}

/// How the summary at the end is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryArg {
    /// One line of text (`cepheid: 102 events read, ...`).
    Text,
    /// One line of JSON: the counts, each pattern's own
    /// (`Engine::pattern_stats`), the elapsed seconds.
    Json,
}

/// Arguments of `cepheid run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pattern files (`.cep`) or folders (every `*.cep` inside).
    #[arg(required = true, value_name = "PATTERNS")]
    patterns: Vec<PathBuf>,
    /// The events file; `-` (the default) reads standard input;
    /// `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]` reads Kafka topics
    /// (every partition, assigned explicitly; offsets kept in
    /// --checkpoint; per-partition watermarks; docs/kafka.md).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub(crate) events: PathBuf,
    /// Follow the events file as `tail -F` does: at its end, wait for more
    /// lines; a file renamed and created anew, or truncated (or rewritten
    /// in place: its first bytes changed), is read from its beginning.
    /// Never ends by itself: SIGINT or SIGTERM stops it (output flushed,
    /// summary; exit 130 or 143).
    #[arg(long, conflicts_with = "flush_at_end")]
    pub(crate) follow: bool,
    /// Reload the pattern files and folders when they change (and on
    /// SIGHUP); a set that does not check cleanly keeps the old rules.
    #[arg(long)]
    pub(crate) watch: bool,
    /// What a changed pattern's partial matches do at a reload (`--watch`
    /// or a `$rules` record): `drain`, go on under the old version to
    /// their match or timeout; `restart`, dropped and counted.
    #[arg(long, value_enum, default_value = "drain", value_name = "POLICY")]
    reload_policy: PolicyArg,
    /// A reference list fed by a file: NAME is a list the rules declare
    /// (`list NAME`), PATH a CSV file (`.csv`: `value[,expires]`) or JSON
    /// lines (a value, or `{"value": V, "expires": T}`), one entry per
    /// line. Read whole before the first event; with --watch, a change of
    /// the file changes the list at the watermark then. Repeatable.
    /// docs/lists.md.
    #[arg(long = "list", value_name = "NAME=PATH", value_parser = ListFile::parse)]
    pub(crate) lists: Vec<ListFile>,
    /// Honour control records in the event stream (JSON lines):
    /// `{"$rules": "..."}` replaces the rule set at its line. Off by
    /// default: whoever writes events does not change the rules unless
    /// the operator says so (a refused record is said and counted).
    #[arg(long)]
    pub(crate) rules_from_stream: bool,
    /// Honour changes of lists in the event stream (JSON lines):
    /// `{"$list": "NAME", "add": VALUE}` (or a JSON array of values, with
    /// `"expires": TIME` if they expire) and `{"$list": "NAME", "remove":
    /// VALUE}`, made from the watermark then + 1. Off by default (a
    /// refused record is said and counted as malformed). docs/lists.md.
    #[arg(long)]
    pub(crate) lists_from_stream: bool,
    /// With --rules-from-stream or --rules-topic, also honour
    /// `{"$rules_file": "PATH"}`, PATH a `.cep` file or folder inside DIR
    /// (relative to DIR; no way out through `..` or symbolic links;
    /// regular files of at most 1 MiB).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules_dir: Option<PathBuf>,
    /// A topic of rule sets beside the events (kafka://HOST:PORT/TOPIC,
    /// the brokers of --events; one partition, typically compacted): each
    /// record a `$rules` record. What it holds when the run starts is in
    /// force before the first event; a record written later applies at
    /// its timestamp (event time), one read after event time passed it at
    /// once (late). Kept in checkpoints. docs/dynamic-rules.md.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "URL")]
    pub(crate) rules_topic: Option<PathBuf>,
    /// A record of --rules-topic whose timestamp is further ahead of event
    /// time than this when it is read (a producer writing microseconds, a
    /// wrong clock) does not wait for event time to reach it, which would
    /// hold every later record back: it applies at once, said on standard
    /// error and on the monitor. `none`: it waits however far ahead.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ahead)]
    pub(crate) rules_max_ahead: Ahead,
    /// Input format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// Where event time comes from: `event`, the time field; `processing`,
    /// the wall clock when each line is taken (no time field needed, no
    /// late events, windows close as the clock passes them); `kafka`, each
    /// Kafka record's timestamp.
    #[arg(long, value_enum, default_value = "event")]
    pub(crate) time: TimeArg,
    /// The event-time field: integer milliseconds or an RFC 3339 string.
    #[arg(long, value_name = "FIELD", default_value = "ts")]
    time_field: String,
    /// Bounded out-of-orderness: an event more than this behind the largest
    /// time seen is late (e.g. 500ms, 10s, 1m).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    max_delay: i64,
    /// When no line has arrived for this long (wall-clock time), event time
    /// follows the clock from the last watermark, so timeouts fire on a
    /// quiet stream; events that then arrive behind it are late.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    idle_timeout: Option<i64>,
    /// Where matches and timeouts go; `-` (the default) is standard output;
    /// `kafka://HOST:PORT[,HOST:PORT]/TOPIC` a Kafka topic, each record
    /// keyed by its partition key (a key's records stay in order): with
    /// --checkpoint exactly once (transactions), without at least once
    /// (an idempotent producer).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub(crate) output: PathBuf,
    /// Write late events here (otherwise they are only counted); with
    /// --output kafka://..., a topic: kafka://HOST:PORT/TOPIC.
    #[arg(long, value_name = "FILE")]
    pub(crate) late: Option<PathBuf>,
    /// Write the matches and timeouts of `shadow` patterns here, never to
    /// --output (a file, kept with checkpoints as --output is, or with
    /// --output kafka://..., a topic: kafka://HOST:PORT/TOPIC, keyed as the
    /// matches are, in the output's transactions); needed when the rules
    /// have a shadow pattern. docs/rule-lab.md.
    #[arg(long, value_name = "FILE")]
    pub(crate) shadow_output: Option<PathBuf>,
    /// Write an audit record of each change of rules here (applied or
    /// refused: its origin, event time, what it did to each pattern and
    /// its partial matches), one JSON line each, the rules at the start
    /// first; a file, kept with checkpoints as --output is, or with
    /// --output kafka://..., a topic (kafka://HOST:PORT/TOPIC, in the
    /// output's transactions). docs/rule-lab.md, "Audit records".
    #[arg(long, value_name = "FILE")]
    pub(crate) audit: Option<PathBuf>,
    /// Write the decision of each scene on each event that enters it here
    /// (`"kind": "decision"`: the event's id, its outcome, score and the
    /// rules that fired), one JSON line each, in the engine's order; a
    /// file, kept with checkpoints as --output is (each event's decisions
    /// written once over a kill and resume). docs/decisions.md.
    #[arg(long, value_name = "FILE")]
    pub(crate) decisions: Option<PathBuf>,
    /// With --output kafka://..., timeouts to this topic instead
    /// (kafka://HOST:PORT/TOPIC, the same brokers).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "URL")]
    pub(crate) timeouts: Option<PathBuf>,
    /// Where a Kafka source starts: `earliest` (the default), `latest`,
    /// a time (RFC 3339 or milliseconds since the epoch: each partition's
    /// first record at or after it), or offsets per partition
    /// (`0:1200,1:1180`; `TOPIC:0:1200` with several topics; a partition
    /// not named starts at its first record). A checkpoint overrides it.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_start)]
    pub(crate) kafka_start: Option<cepheid_kafka::StartAt>,
    /// Read each partition up to here, then end as a file does (bounded):
    /// `end` (its end offset as the broker gives it when the run starts),
    /// a time (before its first record at or after it), or offsets per
    /// partition as --kafka-start takes them (the first not read; a
    /// partition not named: its end). Otherwise a Kafka source never ends
    /// (SIGINT/SIGTERM stop it).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_until)]
    pub(crate) kafka_until: Option<cepheid_kafka::Until>,
    /// What a Kafka source does with a checkpoint's offset that does not
    /// fit its partition as it is now (beyond its end, before its start,
    /// or a topic deleted and written again): `refuse` (the default: exit
    /// 5, nothing read), or start that partition again at its `earliest`
    /// or `latest` record (said on standard error).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHAT", value_parser = clap::value_parser!(cepheid_kafka::OnMismatch))]
    pub(crate) kafka_offset_mismatch: Option<cepheid_kafka::OnMismatch>,
    /// A librdkafka property for the Kafka clients (repeatable):
    /// `--kafka linger.ms=20`. Built without OpenSSL: TLS and SASL other
    /// than PLAIN are refused (docs/kafka.md, "TLS and SASL").
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "NAME=VALUE", value_parser = cepheid_kafka::parse_property)]
    pub(crate) kafka: Vec<(String, String)>,
    /// The Kafka producer's transactional id (with --checkpoint and
    /// --output kafka://...); default `cepheid:` and the checkpoint
    /// folder's canonical path. A second instance with the same id fences
    /// the first, which stops (exit 7).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "ID")]
    pub(crate) transactional_id: Option<String>,
    /// A topic of cepheid's own whose partition 0 marks the committed
    /// checkpoints: each transaction writes `{"checkpoint":N}` there and
    /// commits N as the offset of that partition. Needed on brokers that
    /// drop the offsets of a transaction without records (tansu 0.6);
    /// default: no records, the offset of partition 0 of --output's topic.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "TOPIC")]
    pub(crate) kafka_marker_topic: Option<String>,
    /// How long a Kafka broker that does not answer is waited for (retried
    /// with backoff), at the start and during the run; then the run stops
    /// with exit status 6.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub(crate) kafka_timeout: i64,
    /// At the end, let time run to infinity: every event still waiting is
    /// processed (with `$watermark` lines in the input, events after the
    /// last one otherwise stay unprocessed, and the summary counts them)
    /// and every pending window expires.
    #[arg(long)]
    flush_at_end: bool,
    /// Most partial matches one key of a pattern holds; beyond it the
    /// oldest are dropped (said on standard error, counted in the summary).
    /// Bounds the memory and time a pattern such as `a+ combinations
    /// followed by b` takes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_RUNS_PER_KEY,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_runs_per_key: usize,
    /// Most partial matches over all keys and patterns; a key whose step
    /// would go beyond it keeps only what fits, its oldest dropped (said
    /// once on standard error, counted in the summary). Bounds the memory
    /// of many keys each under --max-runs-per-key (about 650 bytes per
    /// partial match plus its events' text: the default holds 2.7 GiB of
    /// the simplest pattern's over small events; lower it to fit).
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_LIVE_RUNS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub(crate) max_live_runs: usize,
    /// Most events that wait for the watermark; when more would wait, the
    /// watermark moves up to the earliest of them, as if a watermark had
    /// arrived (said on standard error, counted in the summary). Bounds
    /// the memory a burst of events at one time takes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = Engine::<Record>::DEFAULT_MAX_WAITING_EVENTS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_waiting: usize,
    /// Most entries a list holds (of `$list` records, rules' writes and
    /// --list files together); an add beyond it is refused (said once per
    /// list on standard error, counted in the summary). On workers, per
    /// engine: each holds every list whole.
    #[arg(
        long,
        value_name = "N",
        default_value_t = cepheid_engine::engine::DEFAULT_MAX_LIST_ENTRIES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub(crate) max_list_entries: usize,
    /// Most window entries over all indicators (an event in one
    /// indicator's window is one entry); an event beyond it is left out of
    /// the indicators at the limit, and matched all the same (said once
    /// per indicator on standard error, counted in the summary). On
    /// workers, per engine.
    #[arg(
        long,
        value_name = "N",
        default_value_t = cepheid_engine::engine::DEFAULT_MAX_INDICATOR_ENTRIES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub(crate) max_indicator_entries: usize,
    /// Warn about each field a pattern reads that no event carried, once N
    /// events were read and again at the end of the input, with where it
    /// is read and the closest field that did occur (a misspelt field
    /// matches nothing, ever); 0: never.
    #[arg(long, value_name = "N", default_value_t = cepheid_runtime::Config::FIELD_WARNINGS_AFTER)]
    field_warnings_after: u64,
    /// The summary on standard error at the end: a line of text, or a
    /// line of JSON with each pattern's counts too.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = SummaryArg::Text)]
    summary: SummaryArg,
    /// Every DURATION (`10s`, `1m`), one line on standard error with what
    /// the interval brought: events read and their rate, matches,
    /// timeouts, late and malformed events; then the watermark, its lag
    /// behind the wall clock, and the live partial matches. A last line at
    /// the end covers the rest, so the lines add up to the summary. With
    /// --workers, the sums of what the workers published (each every
    /// quarter second); with --processes, each process's own workers (the
    /// lines of all processes add up to the summary).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    stats_every: Option<i64>,
    /// Stop at the first malformed line (exit status 3).
    #[arg(long)]
    strict: bool,
    /// Keep checkpoints in this folder, and resume from the one there: the
    /// outputs end byte for byte as those of a run that never stopped.
    /// Needs --events FILE or kafka://... (standard input cannot be read
    /// again); matches written to standard output since the last
    /// checkpoint are written again on resuming (at least once; with
    /// --output FILE exactly once; with --output kafka://... exactly once,
    /// by transactions: docs/kafka.md).
    /// Exit 5 when the checkpoint is corrupt or belongs to another command.
    /// With --processes, DIR must be a folder every process sees (the same
    /// machine or a shared file system).
    #[arg(long, value_name = "DIR")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// How often to checkpoint: a wall-clock duration, a number of events,
    /// or both (`10s`, `100000`, `10s,100000`; default 10s).
    #[arg(long, value_name = "WHEN", requires = "checkpoint", value_parser = cepheid_runtime::checkpoint::parse_every)]
    checkpoint_every: Option<Every>,
    /// Draw a progress bar on standard error even when the input is not a
    /// file (it is still only drawn on a terminal).
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never draw a progress bar.
    #[arg(long, overrides_with = "progress")]
    no_progress: bool,
    /// Serve the run's metrics on ADDR (`127.0.0.1:9464`; `:PORT` is
    /// `127.0.0.1:PORT`, `:0` any free port): Prometheus text on
    /// `/metrics`, `/status.json`, and a live page on `/`. Said on
    /// standard error at the start (`cepheid: metrics on http://ADDR/`);
    /// an address that cannot be bound exits 4. With --workers, the sums
    /// over the workers and each worker's own numbers; with --processes,
    /// each process serves its own workers' numbers on its own ADDR (give
    /// each process its own, or `:0`).
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// With --metrics: the connections its server holds at once, being
    /// answered or waiting (default 64). One more is answered 503 and
    /// closed, counted (`cepheid_http_connections_refused_total`) and said
    /// on standard error (at most once a minute); a connection that sends
    /// no whole request within 5 s is closed, and a request head past 16
    /// KiB is answered 431.
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "N", requires = "metrics", value_parser = clap::value_parser!(u32).range(1..))]
    metrics_max_connections: Option<u32>,
    /// With --metrics: leave the matched events (`events`) and the values
    /// computed from them (`select`) out of the latest records that
    /// /status.json and the page show (their pattern, kind, key and times
    /// stay): for a server others can reach (docs/metrics.md, "What it
    /// shows").
    #[cfg(feature = "metrics")]
    #[arg(long, requires = "metrics")]
    metrics_no_events: bool,
    // Several workers (feature `timely`): `--workers`, `--processes`.
    #[cfg(feature = "workers")]
    #[command(flatten)]
    scale: workers::ScaleArgs,
}

/// Runs the command and returns the exit status.
pub fn run(args: &Args) -> u8 {
    // (from the start: a stop while the run gets ready ends it, saying so)
    let stop = signals::Stop::install(args.watch);
    let rules = match crate::load_checked(&args.patterns) {
        Ok((loaded, checked)) => match Rules::from_checked(loaded, checked) {
            Ok(rules) => rules,
            // (said already by the load)
            Err(_) => return EXIT_PATTERN_ERROR,
        },
        Err(status) => return status,
    };
    let loaded = rules.loaded();
    let config = config(args);
    let mut engine = config.engine();
    // The automata the load compiled, shared (one pattern at a time only
    // to say which one an engine refuses).
    if engine.add(&rules).is_err() {
        for pattern in &loaded.patterns {
            if let Err(e) = engine.add(pattern) {
                say!("error: pattern `{}`: {}", pattern.name, e.message());
                return EXIT_PATTERN_ERROR;
            }
        }
    }
    if let Err(conflict) = config.check() {
        say!("error: {}", flags(&conflict));
        return EXIT_USAGE;
    }
    #[cfg(feature = "kafka")]
    if let Err(why) = kafka::options(args).check(&config).and_then(|()| {
        let declared = |list: &str| engine.list_sizes().any(|(name, _)| name == list);
        kafka::options(args).check_lists(&config, declared)
    }) {
        say!("error: {}", in_flags(&why.to_string()));
        return EXIT_USAGE;
    }
    #[cfg(not(feature = "kafka"))]
    for (flag, path) in [("--events", &args.events), ("--output", &args.output)]
        .into_iter()
        .chain(args.audit.iter().map(|a| ("--audit", a)))
        .chain(args.decisions.iter().map(|d| ("--decisions", d)))
        .chain(args.shadow_output.iter().map(|s| ("--shadow-output", s)))
        .chain(args.lists.iter().map(|l| ("--list", &l.path)))
    {
        if path.to_str().is_some_and(|p| p.starts_with("kafka://")) {
            say!("error: {flag} kafka://...: this cepheid was built without the feature `kafka`");
            return EXIT_USAGE;
        }
    }
    // (the library sees no time field in processing time or Kafka's: the
    // command refuses the argument all the same)
    if args.time_field == "$watermark" {
        say!("error: {}", flags(&Conflict::WatermarkTimeField));
        return EXIT_USAGE;
    }
    // The workers the run goes on (one engine without), and what they do
    // not take, refused before a Kafka broker is asked (docs/kafka.md, "On
    // workers").
    #[cfg(feature = "workers")]
    let cluster = args.scale.enabled().then(|| args.scale.cluster());
    #[cfg(feature = "workers")]
    if let Some(cluster) = &cluster {
        #[cfg(feature = "kafka")]
        let sink = cepheid_kafka::is_kafka(&args.output);
        #[cfg(not(feature = "kafka"))]
        let sink = false;
        if let Err(e) = cepheid_runtime::Cluster::check(cluster, &config, sink) {
            say!("error: {}", shown(&e));
            return error_status(&e);
        }
    }
    // (held to the end of the run: the server stops when dropped)
    #[cfg(feature = "metrics")]
    let (observer, _server) = match args
        .metrics
        .as_deref()
        .map(|addr| serve_metrics(addr, args))
    {
        None => (None, None),
        Some(Ok((observer, server))) => (Some(observer), Some(server)),
        Some(Err(e)) => {
            say!("error: {e}");
            return EXIT_IO;
        }
    };
    let bar = Arc::new(Mutex::new(ProgressBar::hidden()));
    let report = Progress {
        bar: Arc::clone(&bar),
        progress: args.progress,
        no_progress: args.no_progress,
        #[cfg(feature = "metrics")]
        refusals: observer
            .as_ref()
            .map(|o| Refusals::new(o.monitor().clone())),
        #[cfg(feature = "metrics")]
        observer,
        stats: args
            .stats_every
            .map(|ms| stats::Periodic::new(Duration::from_millis(ms as u64))),
        counting: false,
    };
    #[cfg(feature = "workers")]
    if let Some(cluster) = cluster {
        // A Kafka source: one per worker, its partitions dealt to them; a
        // Kafka output: one producer, which worker 0 hands every worker's
        // records (transactional with --checkpoint).
        #[cfg(feature = "kafka")]
        let (config, sources, sink) = {
            let mut config = config;
            let kafka = kafka::options(args);
            let (own, all) = cepheid_runtime::Cluster::workers(&cluster);
            let opened = (kafka.open_shares(&mut config, own, all))
                .and_then(|sources| Ok((sources, kafka.open_sink(&mut config)?)));
            match opened {
                Ok((sources, sink)) => (config, sources, sink),
                Err(e) => {
                    say!("error: {}", in_flags(&e.to_string()));
                    return kafka::status_of(&e);
                }
            }
        };
        #[cfg(not(feature = "kafka"))]
        let (sources, sink) = (None, None);
        let cluster = Box::new(cluster);
        let report = Box::new(report);
        let runtime = Runtime::on_cluster(config, &rules, cluster, sources, sink, report);
        return match runtime {
            Ok(runtime) => go(runtime, &bar, args, &stop),
            Err(e) => {
                say!("error: {}", shown(&e));
                error_status(&e)
            }
        };
    }
    // The Kafka source and sink the command names (each checks its
    // topics on the broker, which is waited for up to --kafka-timeout).
    #[cfg(feature = "kafka")]
    let (config, source, sink) = {
        let mut config = config;
        let kafka = kafka::options(args);
        let opened = (kafka.open_source(&mut config))
            .and_then(|source| Ok((source, kafka.open_sink(&mut config)?)));
        match opened {
            Ok((source, sink)) => (config, source, sink),
            Err(e) => {
                say!("error: {}", in_flags(&e.to_string()));
                return kafka::status_of(&e);
            }
        }
    };
    #[cfg(not(feature = "kafka"))]
    let (source, sink) = (None, None);
    let runtime = match Runtime::with_source(config, engine, source, sink, Box::new(report)) {
        Ok(runtime) => runtime.with_field_watch(FieldWatch::from_loaded(loaded)),
        Err(e) => {
            say!("error: {}", shown(&e));
            return error_status(&e);
        }
    };
    go(runtime, &bar, args, &stop)
}

/// Runs `runtime` (SIGINT and SIGTERM stop it, SIGHUP reloads its rules,
/// when it can be stopped: `Runtime::stoppable`), and gives its exit
/// status after its summary.
fn go(runtime: Runtime, bar: &Mutex<ProgressBar>, args: &Args, stop: &signals::Stop) -> u8 {
    stop.ready(runtime.stoppable().then(|| runtime.handle()));
    let summary = runtime.run();
    lock(bar).finish_and_clear();
    ended(&summary, args.summary, stop.signal())
}

/// The exit status of a run that ended as `summary` says (`signal`: the
/// one that stopped it, if one did), after its summary as `--summary`
/// says; none when standard output was closed (`| head`), nor after an
/// error when the outputs could not be flushed.
fn ended(summary: &Summary, form: SummaryArg, signal: i32) -> u8 {
    match &summary.end {
        End::OutputClosed => return EXIT_OK,
        End::Failed(e) | End::Incomplete(e) if !summary.flushed || summary.uncounted => {
            return error_status(e)
        }
        // (another process of a cluster: process 0 says the run's)
        _ if summary.uncounted => {}
        _ => print_summary(form, summary),
    }
    match &summary.end {
        End::Input => EXIT_OK,
        // (not by a signal: with `--processes`, another process's stop)
        End::Stopped(_) if signal == 0 => EXIT_IO,
        End::Stopped(_) => signals::exit_status(signal),
        End::Failed(e) | End::Incomplete(e) => error_status(e),
        _ => EXIT_IO,
    }
}

/// The summary at the end, as `--summary` says: a line of text and one
/// per pattern, or a line of JSON.
fn print_summary(form: SummaryArg, summary: &Summary) {
    match form {
        SummaryArg::Text => {
            say!("cepheid: {}", in_flags(&summary.to_string()));
            for p in &summary.patterns {
                say!("{}", stats::pattern_line(p));
            }
        }
        SummaryArg::Json => match serde_json::to_string(summary) {
            Ok(json) => say!("{json}"),
            // (numbers, strings and lists: cannot fail)
            Err(e) => say!("cepheid: {} (no JSON: {e})", in_flags(&summary.to_string())),
        },
    }
}

/// The library's names of its settings, as its messages write them
/// (between backquotes), and the command's flags that set them.
const FLAGS: &[(&str, &str)] = &[
    // (phrases first: the library says what the flag is for)
    ("an output file (`Config::output`)", "--output FILE"),
    ("a followed file, `Config::follow`,", "--follow FILE"),
    (
        "sources that give each record's time (a Kafka source: `Config::input` kafka://...)",
        "a Kafka source (--events kafka://...)",
    ),
    // (the Kafka options' phrases: `cepheid_kafka::OptionsError`)
    (
        "`KafkaOptions::properties`, `KafkaOptions::transactional_id`, `KafkaOptions::marker_topic`, `KafkaOptions::timeouts` and `Time::Record` need `Config::input` or `Config::output` kafka://...",
        "the --kafka-* options, --transactional-id and --time kafka need --events or --output kafka://...",
    ),
    (
        "`KafkaOptions::start` and `KafkaOptions::until`",
        "--kafka-start and --kafka-until",
    ),
    ("`KafkaOptions::until`", "--kafka-until WHERE"),
    ("`KafkaOptions::offset_mismatch`", "--kafka-offset-mismatch"),
    ("`KafkaOptions::start`", "--kafka-start"),
    ("`KafkaOptions::rules_topic`", "--rules-topic"),
    ("`KafkaOptions::timeouts`", "--timeouts"),
    ("`KafkaOptions::transactional_id`", "--transactional-id"),
    ("`KafkaOptions::marker_topic`", "--kafka-marker-topic"),
    ("`KafkaOptions::properties`", "--kafka"),
    ("`Config::input`", "--events"),
    ("`Config::format`", "--format"),
    ("`Config::time_field`", "--time-field"),
    ("`Config::time`", "--time"),
    ("`Time::Processing`", "--time processing"),
    ("`Config::output`", "--output"),
    ("`Config::late`", "--late"),
    ("`Config::shadow_output`", "--shadow-output"),
    ("`Config::audit`", "--audit"),
    ("`Config::decisions`", "--decisions"),
    ("`Config::checkpoint_every`", "--checkpoint-every"),
    ("`Config::checkpoint`", "--checkpoint"),
    ("`Config::max_delay`", "--max-delay"),
    ("`Config::idle_timeout`", "--idle-timeout"),
    ("`Config::max_waiting`", "--max-waiting"),
    ("`Config::max_runs_per_key`", "--max-runs-per-key"),
    ("`Config::max_live_runs`", "--max-live-runs"),
    ("`Config::max_list_entries`", "--max-list-entries"),
    ("`Config::max_indicator_entries`", "--max-indicator-entries"),
    ("`Config::flush_at_end`", "--flush-at-end"),
    ("`Config::rules_from_stream`", "--rules-from-stream"),
    ("`Config::lists_from_stream`", "--lists-from-stream"),
    ("`Config::rules_dir`", "--rules-dir"),
    ("`Config::rules_max_ahead`", "--rules-max-ahead"),
    ("`Config::watch`", "--watch"),
    ("`Config::lists`", "--list"),
    ("`Config::follow`", "--follow"),
    ("`Config::source_rules`", "--rules-topic"),
    ("`Time::Record`", "--time kafka"),
    ("`Scale::workers`", "--workers"),
    ("`Scale::processes`", "--processes"),
    ("`Scale::process`", "--process"),
    ("`Scale::output_per_worker`", "--output-per-worker"),
    ("`Scale::chunk_bytes`", "--chunk-bytes"),
];

/// `--rules-max-ahead`: a duration, or `none`.
#[cfg(feature = "kafka")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ahead(Option<i64>);

#[cfg(feature = "kafka")]
fn parse_ahead(text: &str) -> Result<Ahead, String> {
    match text {
        "none" => Ok(Ahead(None)),
        _ => parse_duration(text)
            .map(|ms| Ahead(Some(ms)))
            .map_err(|e| format!("{e} (or `none`)")),
    }
}

/// A message of the library in the command's words: each setting it names
/// ([`FLAGS`]) as the flag that sets it.
pub(crate) fn in_flags(text: &str) -> std::borrow::Cow<'_, str> {
    let named = ["`Config::", "`Time::", "`Scale::", "`KafkaOptions::"];
    if !named.iter().any(|n| text.contains(n)) {
        return text.into();
    }
    let mut text = text.to_string();
    for (name, flag) in FLAGS {
        text = text.replace(name, flag);
    }
    text.into()
}

/// A [`Conflict`] in the command's words: its flags where the library
/// names its `Config`'s settings.
pub(crate) fn flags(conflict: &Conflict) -> String {
    use cepheid_runtime::Named;
    let flag = |named: &Named| match named {
        Named::Input => "--events",
        Named::Output => "--output",
        Named::Late => "--late",
        Named::Shadow => "--shadow-output",
        Named::Audit => "--audit",
        Named::Decisions => "--decisions",
    };
    match conflict {
        Conflict::CheckpointOfStdin => "--checkpoint needs --events FILE: standard input cannot be read again from a checkpoint's offset".to_string(),
        Conflict::FollowStdin => "--follow needs --events FILE (standard input cannot be followed; it is read as it comes anyway)".to_string(),
        Conflict::DelayWithProcessingTime => "--max-delay has no meaning with --time processing (no event is late)".to_string(),
        Conflict::IdleWithProcessingTime => "--idle-timeout has no meaning with --time processing (time always follows the clock)".to_string(),
        Conflict::LateToStdout => "--late needs a file path (`-` is not supported)".to_string(),
        Conflict::ShadowToStdout => "--shadow-output needs a file path (`-`, standard output, is where the live records go)".to_string(),
        Conflict::AuditToStdout => "--audit needs a file path (`-`, standard output, is where the records go)".to_string(),
        Conflict::DecisionsToStdout => "--decisions needs a file path (`-`, standard output, is where the records go)".to_string(),
        Conflict::SameFile { a, b } => format!(
            "{} {} and {} {} are the same file; give them different paths",
            flag(&a.0),
            a.1.display(),
            flag(&b.0),
            b.1.display()
        ),
        Conflict::WatermarkTimeField => "--time-field cannot be `$watermark`: that field marks watermark lines".to_string(),
        Conflict::RulesDirUnused => "--rules-dir needs --rules-from-stream or --rules-topic (it confines their `$rules_file` records)".to_string(),
        Conflict::RulesDirNotFolder(dir) => format!("--rules-dir {}: not a folder", dir.display()),
        Conflict::SinkTakesNoShadow { sink } => format!(
            "{sink} takes no records of shadow patterns to a file: with a Kafka --output, give --shadow-output a topic (kafka://HOST:PORT/TOPIC, written with the output's records, in its transactions with --checkpoint)"
        ),
        Conflict::SinkTakesNoDecisions { sink } => format!(
            "{sink} takes no decisions: --decisions FILE goes with the run's files (--output FILE or standard output), not with --output kafka://..."
        ),
        Conflict::ShadowWithoutOutput { .. } | Conflict::SinkTakesNoAudit { .. } => {
            in_flags(&conflict.to_string()).into_owned()
        }
        Conflict::SinkNeedsCheckpoints { sink } => format!(
            "{sink} delivers records only when a checkpoint commits them, and the run has no checkpoint folder (--checkpoint): nothing would ever be delivered"
        ),
        // (a conflict this command does not know yet: the library's words)
        other => other.to_string(),
    }
}

/// A run's error in the command's words (see [`flags`]).
pub(crate) fn shown(e: &Error) -> String {
    match e {
        Error::Conflict(conflict) => flags(conflict),
        e => in_flags(&e.to_string()).into_owned(),
    }
}

/// The exit status of a run that could not start or stopped on `e`.
pub(crate) fn error_status(e: &Error) -> u8 {
    #[cfg(feature = "kafka")]
    if let Some(status) = kafka::status(e) {
        return status;
    }
    match e {
        Error::MalformedRecord { .. } => EXIT_MALFORMED,
        Error::Pattern { .. } => EXIT_PATTERN_ERROR,
        Error::Malformed { .. } => EXIT_MALFORMED,
        e if e.is_usage() => EXIT_USAGE,
        e if e.is_checkpoint() => crate::EXIT_CHECKPOINT,
        _ => EXIT_IO,
    }
}

/// The run's configuration from the command line.
pub(crate) fn config(args: &Args) -> Config {
    let input = if args.events == Path::new("-") {
        Input::Stdin
    } else {
        Input::File(args.events.clone())
    };
    let mut config = Config::new(input, args.patterns.clone());
    let ms = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    config.follow = args.follow;
    config.format = format(args);
    config.time = match args.time {
        TimeArg::Event => Time::Event {
            field: args.time_field.clone(),
        },
        TimeArg::Processing => Time::Processing,
        TimeArg::Kafka => Time::Record,
    };
    // A Kafka source's event time is per partition (Flink's Kafka source).
    config.split_watermarks = args
        .events
        .to_str()
        .is_some_and(|p| p.starts_with("kafka://"));
    config.max_delay = ms(args.max_delay);
    config.idle_timeout = args.idle_timeout.map(ms);
    config.max_runs_per_key = args.max_runs_per_key;
    config.max_live_runs = args.max_live_runs;
    config.max_waiting = args.max_waiting;
    config.max_list_entries = args.max_list_entries;
    config.max_indicator_entries = args.max_indicator_entries;
    config.field_warnings = (args.field_warnings_after > 0).then_some(args.field_warnings_after);
    config.strict = args.strict;
    config.flush_at_end = args.flush_at_end;
    config.output = (args.output != Path::new("-")).then(|| args.output.clone());
    config.late.clone_from(&args.late);
    config.shadow_output.clone_from(&args.shadow_output);
    config.audit.clone_from(&args.audit);
    config.decisions.clone_from(&args.decisions);
    config.checkpoint.clone_from(&args.checkpoint);
    config.checkpoint_every = args.checkpoint_every.unwrap_or_default();
    config.watch = args.watch;
    config.reload_policy = match args.reload_policy {
        PolicyArg::Drain => ReloadPolicy::Drain,
        PolicyArg::Restart => ReloadPolicy::Restart,
    };
    config.rules_from_stream = args.rules_from_stream;
    config.lists_from_stream = args.lists_from_stream;
    config.rules_dir.clone_from(&args.rules_dir);
    config.lists.clone_from(&args.lists);
    #[cfg(feature = "kafka")]
    {
        config.source_rules = args.rules_topic.is_some();
        config.rules_max_ahead = args.rules_max_ahead.0.map(ms);
    }
    config
}

/// The command's [`Report`]: notices on standard error (the progress bar
/// suspended while one is written), progress on the bar.
struct Progress {
    bar: Arc<Mutex<ProgressBar>>,
    progress: bool,
    no_progress: bool,
    /// `--metrics`: the run's observer.
    #[cfg(feature = "metrics")]
    observer: Option<cepheid_monitor::Observer>,
    /// `--metrics`: its server's refusals, said.
    #[cfg(feature = "metrics")]
    refusals: Option<Refusals>,
    /// `--stats-every`.
    stats: Option<stats::Periodic>,
    /// Does the (drawn) bar show the run's counts?
    counting: bool,
}

/// Locks the bar (a panic elsewhere does not poison it).
fn lock(bar: &Mutex<ProgressBar>) -> std::sync::MutexGuard<'_, ProgressBar> {
    bar.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Report for Progress {
    fn notice(&mut self, notice: Notice) {
        lock(&self.bar).suspend(|| say_text!("{}", in_flags(notice.as_str())));
    }

    fn started(&mut self, size: Option<u64>, offset: u64) {
        let bar = progress_bar(self.progress, self.no_progress, size);
        bar.set_position(offset);
        self.counting = !bar.is_hidden();
        *lock(&self.bar) = bar;
    }

    fn progress(&mut self, offset: u64) {
        lock(&self.bar).set_position(offset);
    }

    fn observes(&self) -> bool {
        #[cfg(feature = "metrics")]
        if self.observer.is_some() {
            return true;
        }
        self.stats.is_some() || self.counting
    }

    #[cfg(feature = "metrics")]
    fn records_wanted(&self) -> usize {
        // (only the page shows records)
        if self.observer.is_some() {
            cepheid_monitor::RECORDS
        } else {
            0
        }
    }

    fn tick(&mut self, view: &cepheid_runtime::RunView<'_>) {
        #[cfg(feature = "metrics")]
        if let Some(observer) = &mut self.observer {
            observer.tick(view);
        }
        #[cfg(feature = "metrics")]
        if let Some(line) = self.refusals.as_mut().and_then(Refusals::news) {
            lock(&self.bar).suspend(|| say!("{line}"));
        }
        if self.counting {
            lock(&self.bar).set_message(stats::bar_message(view));
        }
        if let Some(line) = self.stats.as_mut().and_then(|s| s.tick(view)) {
            lock(&self.bar).suspend(|| say!("{line}"));
        }
    }

    #[cfg(feature = "metrics")]
    fn event(&mut self, event: &cepheid_runtime::RunEvent<'_>) {
        if let Some(observer) = &mut self.observer {
            match event {
                cepheid_runtime::RunEvent::ReloadRefused { why } => {
                    let why = in_flags(why);
                    observer.event(&cepheid_runtime::RunEvent::ReloadRefused { why: &why });
                }
                cepheid_runtime::RunEvent::RulesAhead { what } => {
                    let what = in_flags(what);
                    observer.event(&cepheid_runtime::RunEvent::RulesAhead { what: &what });
                }
                event => observer.event(event),
            }
        }
    }
}

/// The connections the monitor's server refused at its limit, said on
/// standard error when there are new ones, at most once per
/// [`Refusals::EVERY`].
#[cfg(feature = "metrics")]
struct Refusals {
    monitor: cepheid_monitor::Monitor,
    /// The refusals said so far, and when last.
    said: u64,
    at: Option<std::time::Instant>,
}

#[cfg(feature = "metrics")]
impl Refusals {
    const EVERY: Duration = Duration::from_secs(60);

    fn new(monitor: cepheid_monitor::Monitor) -> Refusals {
        Refusals {
            monitor,
            said: 0,
            at: None,
        }
    }

    /// The line to say, if refusals came since the last and it is time.
    fn news(&mut self) -> Option<String> {
        let http = self.monitor.http_status()?;
        if http.refused <= self.said || self.at.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return None;
        }
        self.said = http.refused;
        self.at = Some(std::time::Instant::now());
        Some(format!(
            "cepheid: warning: the metrics server refused {} connections so far: it held its \
             limit of {} (--metrics-max-connections); the run goes on",
            http.refused, http.max_connections
        ))
    }
}

/// `--metrics ADDR` (`:PORT` meaning `127.0.0.1:PORT`): a fresh monitor
/// served there, said on standard error, within `--metrics-max-connections`
/// and without the events with `--metrics-no-events`.
#[cfg(feature = "metrics")]
fn serve_metrics(
    addr: &str,
    args: &Args,
) -> Result<(cepheid_monitor::Observer, cepheid_monitor::Server), String> {
    let monitor = cepheid_monitor::Monitor::new();
    if args.metrics_no_events {
        monitor.update(|s| s.hide_events = true);
    }
    let at = match addr.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_string(),
    };
    let mut limits = cepheid_monitor::HttpLimits::default();
    if let Some(max) = args.metrics_max_connections {
        limits.max_connections = max as usize;
    }
    let server = monitor
        .serve_with(at, limits)
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    say!("cepheid: metrics on http://{}/", server.addr());
    Ok((cepheid_monitor::Observer::new(monitor), server))
}

/// The input format.
fn format(args: &Args) -> Format {
    match args.format {
        FormatArg::Jsonl => Format::JsonLines,
        FormatArg::Csv => Format::Csv,
    }
}

/// A progress bar over the input bytes, or a hidden one.
fn progress_bar(progress: bool, no_progress: bool, size: Option<u64>) -> ProgressBar {
    let wanted = if progress {
        true
    } else {
        !no_progress && size.is_some() && io::stderr().is_terminal()
    };
    if !wanted {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
    let template = "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
