//! What the rule lab's commands share (`diff`, `backtest`,
//! `docs/rule-lab.md`): the events a rule set runs over, and a run of it
//! as `cepheid run` runs it, into records.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cepheid_core::time::parse_duration;
use cepheid_engine::io::Format;
use cepheid_engine::Rules;
use cepheid_runtime::lists::ListFile;
use cepheid_runtime::{Config, Input, Level, Notice, Report, Runtime, Time};

use crate::run::FormatArg;
use crate::{EXIT_IO, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// The events a rule set runs over, read as `run` reads them.
#[derive(clap::Args)]
pub struct Events {
    /// The events (a file).
    #[arg(long = "events", value_name = "FILE")]
    path: PathBuf,
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
    /// Refuses standard input (`why`: what the command does with the
    /// file) with exit 2.
    pub fn check(&self, why: &str) -> Result<(), u8> {
        if self.path == Path::new("-") {
            say!("error: {why}: give a file, not standard input");
            return Err(EXIT_USAGE);
        }
        Ok(())
    }

    /// Runs the rules at `path` over the events as `cepheid run` would
    /// (the library's run, into a file of its own; `which` names it in
    /// what it says): the rules, and the records as `run` writes them.
    pub fn run(&self, path: &Path, which: &str) -> Result<(Rules, Vec<String>), u8> {
        let (loaded, checked) = crate::load_checked(&[path.to_path_buf()])?;
        let rules = Rules::from_checked(loaded, checked).map_err(|_| EXIT_PATTERN_ERROR)?;
        let dir = std::env::temp_dir().join(format!("cepheid-lab-{}-{which}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            say!("error: cannot create {}: {e}", dir.display());
            EXIT_IO
        })?;
        let out = dir.join("records.jsonl");
        let mut config = Config::new(Input::File(self.path.clone()), vec![path.to_path_buf()]);
        config.format = match self.format {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Csv => Format::Csv,
        };
        config.time = Time::Event {
            field: self.time_field.clone(),
        };
        config.max_delay = Duration::from_millis(u64::try_from(self.max_delay).unwrap_or(0));
        config.lists.clone_from(&self.lists);
        config.output = Some(out.clone());
        let said = Box::new(Said(which.to_string()));
        let result = self
            .runtime(config, &rules, said)
            .map_err(|e| {
                say!(
                    "error: {which} ({}): {}",
                    path.display(),
                    crate::run::shown(&e)
                );
                EXIT_IO
            })
            .and_then(|runtime| {
                let summary = runtime.run();
                match summary.error() {
                    Some(e) => {
                        say!(
                            "error: {which} ({}): {}",
                            path.display(),
                            crate::run::shown(e)
                        );
                        Err(EXIT_IO)
                    }
                    None => std::fs::read_to_string(&out).map_err(|e| {
                        say!("error: cannot read {}: {e}", out.display());
                        EXIT_IO
                    }),
                }
            });
        let _ = std::fs::remove_dir_all(&dir);
        Ok((rules, result?.lines().map(str::to_string).collect()))
    }
}

impl Events {
    /// The run of `config`: on one engine, or on `--workers`.
    fn runtime(
        &self,
        config: Config,
        rules: &Rules,
        said: Box<Said>,
    ) -> Result<Runtime, cepheid_runtime::Error> {
        #[cfg(feature = "workers")]
        if let Some(workers) = self.workers {
            let scale = cepheid_dataflow::run::Scale {
                workers,
                ..cepheid_dataflow::run::Scale::default()
            };
            let cluster = Box::new(cepheid_dataflow::run::Cluster::new(scale));
            return Runtime::on_cluster(config, rules, cluster, None, None, said);
        }
        Runtime::new(config, rules, said)
    }

    /// The file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The least and the largest event time of the file (lines without a
    /// time left out), as the run reads its time field: integer
    /// milliseconds or an RFC 3339 time.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let time = |value: &serde_json::Value| match value {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => cepheid_engine::io::parse_rfc3339(s).ok(),
            _ => None,
        };
        let times: Vec<i64> = match self.format {
            FormatArg::Jsonl => (text.lines())
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|e| time(&e[self.time_field.as_str()]))
                .collect(),
            FormatArg::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .from_reader(text.as_bytes());
                let column = (reader.headers().ok()?.iter()).position(|h| h == self.time_field)?;
                (reader.records().flatten())
                    .filter_map(|row| {
                        let cell = row.get(column)?;
                        cell.parse::<i64>()
                            .ok()
                            .or_else(|| cepheid_engine::io::parse_rfc3339(cell).ok())
                    })
                    .collect()
            }
        };
        Some((*times.iter().min()?, *times.iter().max()?))
    }
}

/// What a run says: its warnings and errors, named by `which`; the rest
/// (its summary, the lists' sizes) is the report's.
struct Said(String);

impl Report for Said {
    fn notice(&mut self, notice: Notice) {
        if notice.level() != Level::Info {
            say!("{}: {}", self.0, notice.as_str());
        }
    }
}

/// The fields of a record that hold the matched events' values: the
/// events, the values computed from them, and the values the rules read.
pub const EVENT_FIELDS: [&str; 3] = ["events", "select", "reads"];

/// `line`, a record, without [`EVENT_FIELDS`] (`--no-events`), its other
/// fields as they were and in their order. A line that is not a JSON
/// object is left out whole (`None`): its text could be anything.
pub fn without_events(line: &str) -> Option<String> {
    /// An object's fields in their order, each as its JSON text.
    struct Fields<'a>(Vec<(String, &'a serde_json::value::RawValue)>);
    impl<'de: 'a, 'a> serde::Deserialize<'de> for Fields<'a> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
                type Value = Fields<'a>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    mut map: M,
                ) -> Result<Self::Value, M::Error> {
                    let mut fields = Vec::new();
                    while let Some(field) = map.next_entry()? {
                        fields.push(field);
                    }
                    Ok(Fields(fields))
                }
            }
            d.deserialize_map(Visit(std::marker::PhantomData))
        }
    }
    let Fields(fields) = serde_json::from_str(line).ok()?;
    let kept: Vec<String> = (fields.iter())
        .filter(|(name, _)| !EVENT_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| {
            let name = serde_json::to_string(name).unwrap_or_default();
            format!("{name}:{}", value.get())
        })
        .collect();
    Some(format!("{{{}}}", kept.join(",")))
}
