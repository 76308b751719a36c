//! The rule lab's command line (`diff`, `backtest`, `why`,
//! `docs/rule-lab.md`): the options that say which events a rule set runs
//! over, as `run`'s do, mapped onto `cepheid_lab::Events`; the lab's
//! errors said in the command's words, with their exit statuses. The lab
//! itself is the `cepheid-lab` crate.

use std::path::PathBuf;
use std::time::Duration;

use cepheid_core::time::parse_duration;
use cepheid_decode::Format;
use cepheid_lab::ErrorKind;
use cepheid_runtime::lists::ListFile;

use crate::run::FormatArg;
use crate::{EXIT_IO, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// The events a rule set runs over, read as `run` reads them.
#[derive(clap::Args)]
pub struct Events {
    /// The events: a file, or a range of a Kafka topic
    /// (kafka://HOST:PORT/TOPIC, with --kafka-start and --kafka-until);
    /// for `backtest` and `why`, also a service's log (wal:DIR, the `log`
    /// folder of `cepheid serve --state`: the answers it gave, again, and
    /// what its engine did with a key's events or a request).
    #[arg(long = "events", value_name = "FILE|URL")]
    path: PathBuf,
    /// A service's log only (wal:DIR): start from this checkpoint of the
    /// service's, only read (its `checkpoints` folder of `--state`: the
    /// newest; or one `cut-N` folder of it, or a copy), and read the log
    /// after it: the part of the log its retention kept, or the part
    /// after that checkpoint.
    #[arg(long, value_name = "DIR")]
    from_checkpoint: Option<PathBuf>,
    /// Kafka: where the range starts, as `run --kafka-start` (`earliest`,
    /// the default; a time; offsets `0:1200,1:1180`).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_start)]
    kafka_start: Option<cepheid_kafka::StartAt>,
    /// Kafka: where the range ends, as `run --kafka-until` (`end`, the
    /// default: each partition's end when the command starts; a time;
    /// offsets, the first not read). Fixed as offsets once, so every run
    /// of the command reads the same records.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "WHERE", value_parser = cepheid_kafka::parse_until)]
    kafka_until: Option<cepheid_kafka::Until>,
    /// Kafka: a librdkafka property, as `run --kafka` (repeatable).
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "NAME=VALUE", value_parser = cepheid_kafka::parse_property)]
    kafka: Vec<(String, String)>,
    /// The events' format, as `run --format`.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// The events' time field, as `run --time-field`.
    #[arg(long, value_name = "FIELD", default_value = "ts")]
    time_field: String,
    /// Bounded out-of-orderness, as `run --max-delay`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = parse_duration,
        allow_hyphen_values = true
    )]
    max_delay: i64,
    /// A reference list, as `run --list`. Repeatable.
    #[arg(long = "list", value_name = "NAME=PATH", value_parser = ListFile::parse)]
    lists: Vec<ListFile>,
    /// Most entries a list holds, as `run --max-list-entries`.
    #[arg(
        long,
        value_name = "N",
        default_value_t = cepheid_engine::engine::DEFAULT_MAX_LIST_ENTRIES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_list_entries: usize,
    /// Most window entries over all indicators, as `run
    /// --max-indicator-entries`.
    #[arg(
        long,
        value_name = "N",
        default_value_t = cepheid_engine::engine::DEFAULT_MAX_INDICATOR_ENTRIES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_indicator_entries: usize,
    /// Worker threads, as `run --workers` (the same records as one
    /// engine's, in another order, which the comparisons do not see).
    #[cfg(feature = "workers")]
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    workers: Option<usize>,
}

impl Events {
    /// The events' path, as given (`--events`).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The folder of a service's log, when the events are one (`wal:DIR`).
    pub fn wal(&self) -> Option<PathBuf> {
        let path = self.path.to_str()?;
        path.strip_prefix("wal:").map(PathBuf::from)
    }

    /// The checkpoint a service's log is read from (`--from-checkpoint`).
    #[cfg(feature = "serve")]
    pub fn start_checkpoint(&self) -> Option<&std::path::Path> {
        self.from_checkpoint.as_deref()
    }

    /// `--from-checkpoint` given for events that are not a service's log:
    /// said (exit 2), not ignored.
    pub fn checkpoint_not_taken(&self) -> Option<u8> {
        if self.from_checkpoint.is_none() || self.wal().is_some() {
            return None;
        }
        say!(
            "error: --from-checkpoint: only a service's log (--events wal:DIR) is read from a checkpoint; {} is read from its start",
            self.path.display()
        );
        Some(EXIT_USAGE)
    }

    /// The first option given that a service's log does not take (its
    /// requests are read as the service took them, on one engine, with
    /// the log's own rules and no list file): said, not ignored.
    #[cfg(feature = "serve")]
    pub fn not_for_wal(&self) -> Option<&'static str> {
        #[cfg(feature = "workers")]
        if self.workers.is_some() {
            return Some("--workers");
        }
        #[cfg(feature = "kafka")]
        if self.kafka_start.is_some() || self.kafka_until.is_some() || !self.kafka.is_empty() {
            return Some("--kafka-start, --kafka-until and --kafka");
        }
        if !self.lists.is_empty() {
            return Some("--list");
        }
        None
    }

    /// The lab's events of these options.
    pub fn lab(&self) -> cepheid_lab::Events {
        let mut events = cepheid_lab::Events::new(self.path.clone());
        events.format = match self.format {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Csv => Format::Csv,
        };
        events.time_field.clone_from(&self.time_field);
        events.max_delay = Duration::from_millis(u64::try_from(self.max_delay).unwrap_or(0));
        events.lists.clone_from(&self.lists);
        events.max_list_entries = self.max_list_entries;
        events.max_indicator_entries = self.max_indicator_entries;
        // (what the runs say, with the flags where the library names its
        // settings: `Config::max_list_entries` is --max-list-entries)
        events.tell = std::sync::Arc::new(|text: &str| {
            use std::io::Write;
            let text = crate::run::in_flags(text);
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        });
        #[cfg(feature = "kafka")]
        {
            events.kafka.start.clone_from(&self.kafka_start);
            events.kafka.until.clone_from(&self.kafka_until);
            events.kafka.properties.clone_from(&self.kafka);
        }
        #[cfg(feature = "workers")]
        if let Some(workers) = self.workers {
            events.workers = Some(std::sync::Arc::new(move || {
                let scale = cepheid_dataflow::run::Scale {
                    workers,
                    ..cepheid_dataflow::run::Scale::default()
                };
                Box::new(cepheid_dataflow::run::Cluster::new(scale))
            }));
        }
        events
    }
}

/// Prints `text` (with a newline after it when `line`) to standard
/// output and gives `status`: a reader that stopped early (`| head`)
/// ends the command quietly with it, as it ends `run` and `explain`; a
/// standard output that cannot be written otherwise is said (exit 4).
/// (`print!` panicked on a closed pipe: exit 101.)
pub fn print(text: &str, line: bool, status: u8) -> u8 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = (stdout.write_all(text.as_bytes()))
        .and_then(|()| match line {
            true => stdout.write_all(b"\n"),
            false => Ok(()),
        })
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => status,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            say!("error: cannot write standard output: {e}");
            EXIT_IO
        }
    }
}

/// Says `e`, a lab command's error, in the command's words (a run's and
/// Kafka's errors with the flags where the libraries name their
/// settings; nothing more when it was told as the rule set's
/// diagnostics), and gives the exit status to end with.
pub fn failed(e: &cepheid_lab::Error) -> u8 {
    if let Some(run) = e.run_error() {
        say!("error: {}{}", e.context(), crate::run::shown(run));
        return match e.kind() {
            ErrorKind::Run => crate::run::error_status(run),
            kind => status(kind),
        };
    }
    #[cfg(feature = "kafka")]
    if let Some(kafka) = e.kafka_error() {
        say!(
            "error: {}{}",
            e.context(),
            crate::run::in_flags(&kafka.to_string())
        );
        return crate::run::kafka::status_of(kafka);
    }
    if !e.was_told() {
        say!("error: {e}");
    }
    status(e.kind())
}

/// The exit status of an error of `kind`.
fn status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Usage => EXIT_USAGE,
        ErrorKind::Rules => EXIT_PATTERN_ERROR,
        _ => EXIT_IO,
    }
}
