//! Which Kafka options go together: the combinations a command line such as
//! `cepheid run` can get wrong before any broker is asked (which option
//! needs which, which conflict, which URL names one topic on the brokers of
//! another), as [`KafkaOptions::check`] over plain values, each refusal an
//! [`OptionsError`] holding what was refused. What they open is
//! `open.rs`'s.

use std::fmt;
use std::path::Path;

use cepheid_runtime::{Config, Time};

use crate::fit::OnMismatch;
use crate::options::{Url, UrlError};
use crate::retry::Retry;
use crate::source::{StartAt, Until};

/// The options of a run that only Kafka has, as given: where a Kafka
/// source starts and ends, its rules topic, the output's timeouts topic,
/// the transactional id, librdkafka properties and how long a broker is
/// waited for. What the run itself says (its input, outputs, following,
/// time and checkpoint folder) is the runtime's [`Config`]'s, given once
/// there and read from it: [`KafkaOptions::check`] says whether the two
/// go together, and [`KafkaOptions::open_source`],
/// [`KafkaOptions::open_sink`] and [`KafkaOptions::open_shares`] open
/// what the config's `kafka://` input and output name. Built by the
/// command line from its arguments (the settings named in [`OptionsError`]'s messages are
/// this struct's and [`Config`]'s: a command line maps them to its flags).
#[derive(Clone, Copy, Debug)]
pub struct KafkaOptions<'a> {
    /// `--rules-topic`: `kafka://BROKERS/TOPIC`, the brokers of the input.
    pub rules_topic: Option<&'a Path>,
    /// `--timeouts`: `kafka://BROKERS/TOPIC`, the brokers of the output.
    pub timeouts: Option<&'a Path>,
    /// `--kafka NAME=VALUE`: librdkafka properties.
    pub properties: &'a [(String, String)],
    /// `--transactional-id`.
    pub transactional_id: Option<&'a str>,
    /// `--kafka-marker-topic`.
    pub marker_topic: Option<&'a str>,
    /// `--kafka-start`: where the source starts (`None`: the earliest
    /// records).
    pub start: Option<&'a StartAt>,
    /// `--kafka-until`: where the source ends (`None`: it never does;
    /// [`Until::End`]: each partition's end when the source starts).
    pub until: Option<&'a Until>,
    /// `--kafka-offset-mismatch`: what the source does with a kept offset
    /// (a checkpoint's) that does not fit its partition as it is now
    /// (`None`: [`OnMismatch::Refuse`]).
    pub offset_mismatch: Option<OnMismatch>,
    /// `--kafka-timeout`: how long a broker that does not answer is
    /// waited for, and how ([`Retry`]).
    pub retry: Retry,
}

impl Default for KafkaOptions<'_> {
    /// Nothing but Kafka's defaults.
    fn default() -> Self {
        KafkaOptions {
            rules_topic: None,
            timeouts: None,
            properties: &[],
            transactional_id: None,
            marker_topic: None,
            start: None,
            until: None,
            offset_mismatch: None,
            retry: Retry::default(),
        }
    }
}

/// What a run's [`Config`] says that concerns Kafka: `--events`,
/// `--output`, `--late`, `--audit` and `--shadow-output` may be files or
/// `kafka://` URLs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sides<'c> {
    /// The input: a file, `-`, or `kafka://BROKERS/TOPICS`.
    pub events: &'c Path,
    /// The output: a file, `-`, or `kafka://BROKERS/TOPIC`.
    pub output: &'c Path,
    /// The late output: a file or `kafka://BROKERS/TOPIC`.
    pub late: Option<&'c Path>,
    /// The audit records' output: a file or `kafka://BROKERS/TOPIC`.
    pub audit: Option<&'c Path>,
    /// The shadow patterns' output: a file or `kafka://BROKERS/TOPIC`.
    pub shadow: Option<&'c Path>,
    /// The decisions' output: a file or `kafka://BROKERS/TOPIC`.
    pub decisions: Option<&'c Path>,
    /// Is the input followed?
    pub follow: bool,
    /// Is event time the records' own (a Kafka record's timestamp)?
    pub record_time: bool,
    /// The checkpoint folder.
    pub checkpoint: Option<&'c Path>,
}

impl<'c> Sides<'c> {
    pub(crate) fn of(config: &'c Config) -> Sides<'c> {
        Sides {
            events: config.input.path(),
            output: config.output_path(),
            late: config.late.as_deref(),
            audit: config.audit.as_deref(),
            decisions: config.decisions.as_deref(),
            shadow: config.shadow_output.as_deref(),
            follow: config.follow,
            record_time: config.time == Time::Record,
            checkpoint: config.checkpoint.as_deref(),
        }
    }
}

/// A combination of Kafka options that cannot work. Its `Display` is the
/// command's message (`--timeouts needs --output kafka://...`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// A URL that does not parse.
    Url {
        /// The setting, in the library's words (`` `Config::input` ``,
        /// `` `KafkaOptions::rules_topic` ``).
        setting: &'static str,
        /// Why.
        error: UrlError,
    },
    /// `--follow` with a Kafka source.
    FollowKafka,
    /// `--rules-topic` without a Kafka source.
    RulesTopicAlone,
    /// `--rules-topic` on other brokers than `--events`, or with several
    /// topics.
    RulesTopicPlace,
    /// A list fed by a topic (`--list NAME=kafka://...`) without a Kafka
    /// source.
    ListTopicAlone {
        /// The list.
        list: String,
    },
    /// A list's topic on other brokers than `--events`, or with several
    /// topics.
    ListTopicPlace {
        /// The list.
        list: String,
    },
    /// A list fed by a topic that the rules do not declare (`list NAME`).
    ListUndeclared {
        /// The list.
        list: String,
        /// Its topic's URL.
        url: String,
    },
    /// `--output kafka://...` with several topics.
    OutputTopics,
    /// `--timeouts` without a Kafka output.
    TimeoutsAlone,
    /// `--timeouts` on other brokers than `--output`, or with several
    /// topics.
    TimeoutsPlace,
    /// `--late` and `--output` not both Kafka or both files.
    LateMixed,
    /// `--late kafka://...` on other brokers than `--output`, or with
    /// several topics.
    LatePlace,
    /// `--audit kafka://...` without a Kafka output (a topic is written
    /// in the output's transactions).
    AuditMixed,
    /// `--audit kafka://...` on other brokers than `--output`, or with
    /// several topics.
    AuditPlace,
    /// `--shadow-output kafka://...` without a Kafka output (a topic is
    /// written in the output's transactions).
    ShadowMixed,
    /// `--shadow-output kafka://...` on other brokers than `--output`, or
    /// with several topics.
    ShadowPlace,
    /// `--decisions kafka://...` without a Kafka output (a topic is
    /// written in the output's transactions).
    DecisionsMixed,
    /// `--decisions kafka://...` on other brokers than `--output`, or with
    /// several topics.
    DecisionsPlace,
    /// A Kafka-only option (`--kafka`, `--transactional-id`,
    /// `--kafka-marker-topic`, `--timeouts`, `--time kafka`) with neither
    /// side on Kafka.
    KafkaOnly,
    /// `--time kafka` without a Kafka source.
    RecordTimeAlone,
    /// `--kafka-start` or `--kafka-until` without a Kafka source.
    StartAlone,
    /// `--kafka-offset-mismatch` without a Kafka source.
    MismatchAlone,
    /// `--transactional-id` without a Kafka output and a checkpoint.
    TransactionalIdAlone,
    /// `--kafka-marker-topic` without a Kafka output and a checkpoint.
    MarkerTopicAlone,
    /// A `--kafka NAME=VALUE` that librdkafka refuses (an unknown
    /// property, a value it does not take), said in its words.
    Property {
        /// `NAME=VALUE`.
        property: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// A `--kafka NAME=VALUE` that needs what this build of librdkafka
    /// does not have (TLS: OpenSSL; a SASL mechanism), said with what it
    /// has (`docs/kafka.md`, "TLS and SASL").
    NotBuiltIn {
        /// `NAME=VALUE`.
        property: String,
        /// What it needs (`SSL (TLS)`, `the SASL mechanism SCRAM-SHA-256`).
        needs: String,
        /// librdkafka's `builtin.features`.
        built: String,
    },
}

impl fmt::Display for OptionsError {
    /// In the library's words: the settings of [`KafkaOptions`] and of the
    /// runtime's [`Config`] (`` `Config::input` ``), which a command line
    /// maps to its flags (`cepheid run` says `--events`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let said = match self {
            OptionsError::Url { setting, error } => return write!(f, "{setting} {error}"),
            OptionsError::ListTopicAlone { list } => {
                return write!(
                    f,
                    "`Config::lists` {list}=kafka://... needs `Config::input` kafka://... (on its brokers)"
                )
            }
            OptionsError::ListTopicPlace { list } => {
                return write!(
                    f,
                    "`Config::lists` {list}=kafka://...: one topic on the brokers of `Config::input`"
                )
            }
            OptionsError::ListUndeclared { list, url } => {
                return write!(
                    f,
                    "list `{list}` ({url}): the rules declare no list `{list}` (`list {list}`)"
                )
            }
            OptionsError::FollowKafka => {
                "`Config::follow` is for files: a Kafka source goes on by itself (until `KafkaOptions::until`)"
            }
            OptionsError::RulesTopicAlone => {
                "`KafkaOptions::rules_topic` needs `Config::input` kafka://... (on its brokers)"
            }
            OptionsError::RulesTopicPlace => {
                "`KafkaOptions::rules_topic`: one topic on the brokers of `Config::input`"
            }
            OptionsError::OutputTopics => {
                "`Config::output` kafka://...: one topic (`KafkaOptions::timeouts` names another for timeouts)"
            }
            OptionsError::TimeoutsAlone => "`KafkaOptions::timeouts` needs `Config::output` kafka://...",
            OptionsError::TimeoutsPlace => {
                "`KafkaOptions::timeouts`: one topic on the brokers of `Config::output`"
            }
            OptionsError::LateMixed => {
                "`Config::late` kafka://... goes with `Config::output` kafka://... (and a file `Config::late` with a file `Config::output`)"
            }
            OptionsError::LatePlace => {
                "`Config::late` kafka://...: one topic on the brokers of `Config::output`"
            }
            OptionsError::AuditMixed => {
                "`Config::audit` kafka://... goes with `Config::output` kafka://... (its records are written in the output's transactions)"
            }
            OptionsError::AuditPlace => {
                "`Config::audit` kafka://...: one topic on the brokers of `Config::output`"
            }
            OptionsError::ShadowMixed => {
                "`Config::shadow_output` kafka://... goes with `Config::output` kafka://... (its records are written in the output's transactions)"
            }
            OptionsError::ShadowPlace => {
                "`Config::shadow_output` kafka://...: one topic on the brokers of `Config::output`"
            }
            OptionsError::DecisionsMixed => {
                "`Config::decisions` kafka://... goes with `Config::output` kafka://... (its records are written in the output's transactions)"
            }
            OptionsError::DecisionsPlace => {
                "`Config::decisions` kafka://...: one topic on the brokers of `Config::output`"
            }
            OptionsError::KafkaOnly => KAFKA_ONLY,
            OptionsError::RecordTimeAlone => {
                "`Time::Record` needs `Config::input` kafka://... (the records' timestamps)"
            }
            OptionsError::StartAlone => START_ALONE,
            OptionsError::MismatchAlone => {
                "`KafkaOptions::offset_mismatch` needs `Config::input` kafka://..."
            }
            OptionsError::TransactionalIdAlone => {
                "`KafkaOptions::transactional_id` needs `Config::output` kafka://... and `Config::checkpoint` (the transactions commit with the checkpoints)"
            }
            OptionsError::MarkerTopicAlone => {
                "`KafkaOptions::marker_topic` needs `Config::output` kafka://... and `Config::checkpoint`"
            }
            OptionsError::Property { property, reason } => {
                return write!(f, "`KafkaOptions::properties` {property}: {reason}")
            }
            OptionsError::NotBuiltIn {
                property,
                needs,
                built,
            } => {
                return write!(
                    f,
                    "`KafkaOptions::properties` {property}: this cepheid's Kafka client (librdkafka) is built without {needs} \
                     (it has: {built}); TLS and SASL other than PLAIN are not supported yet (docs/kafka.md, \"TLS and SASL\")"
                )
            }
        };
        f.write_str(said)
    }
}

/// [`OptionsError::KafkaOnly`]'s words (a command line says them as one
/// phrase of its flags).
const KAFKA_ONLY: &str = "`KafkaOptions::properties`, `KafkaOptions::transactional_id`, `KafkaOptions::marker_topic`, `KafkaOptions::timeouts` and `Time::Record` need `Config::input` or `Config::output` kafka://...";

/// [`OptionsError::StartAlone`]'s words (as [`KAFKA_ONLY`]).
const START_ALONE: &str =
    "`KafkaOptions::start` and `KafkaOptions::until` need `Config::input` kafka://...";

impl std::error::Error for OptionsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OptionsError::Url { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Is `path` a `kafka://` URL (not a file)?
pub fn is_kafka(path: &Path) -> bool {
    path.to_str().is_some_and(Url::is_kafka)
}

/// The `kafka://` URL that `setting` (in the library's words, `` `Config::input` ``)
/// gives as `path` (a path that is not text is refused as the empty text).
pub fn parse_url(setting: &'static str, path: &Path) -> Result<Url, OptionsError> {
    path.to_str()
        .unwrap_or_default()
        .parse()
        .map_err(|error| OptionsError::Url { setting, error })
}

impl KafkaOptions<'_> {
    /// The first combination that cannot work, in the order the command
    /// says them: the source's options, the output's, then the options
    /// that need Kafka.
    pub fn check(&self, config: &Config) -> Result<(), OptionsError> {
        let run = Sides::of(config);
        let events = is_kafka(run.events);
        let output = is_kafka(run.output);
        let late = run.late.is_some_and(is_kafka);
        // (one topic, on the brokers of `of`)
        let beside = |url: &Url, of: &Url| url.brokers == of.brokers && url.topics.len() == 1;
        if events {
            parse_url("`Config::input`", run.events)?;
            if run.follow {
                return Err(OptionsError::FollowKafka);
            }
        }
        if let Some(rules) = self.rules_topic {
            if !events {
                return Err(OptionsError::RulesTopicAlone);
            }
            let url = parse_url("`KafkaOptions::rules_topic`", rules)?;
            if !beside(&url, &parse_url("`Config::input`", run.events)?) {
                return Err(OptionsError::RulesTopicPlace);
            }
        }
        for list in config.lists.iter().filter(|l| is_kafka(&l.path)) {
            let name = || list.list.clone();
            if !events {
                return Err(OptionsError::ListTopicAlone { list: name() });
            }
            let url = parse_url("`Config::lists`", &list.path)?;
            if !beside(&url, &parse_url("`Config::input`", run.events)?) {
                return Err(OptionsError::ListTopicPlace { list: name() });
            }
        }
        if output && parse_url("`Config::output`", run.output)?.topics.len() != 1 {
            return Err(OptionsError::OutputTopics);
        }
        if let Some(t) = self.timeouts {
            if !output {
                return Err(OptionsError::TimeoutsAlone);
            }
            let url = parse_url("`KafkaOptions::timeouts`", t)?;
            if !beside(&url, &parse_url("`Config::output`", run.output)?) {
                return Err(OptionsError::TimeoutsPlace);
            }
        }
        if late != output && run.late.is_some() {
            return Err(OptionsError::LateMixed);
        }
        if late {
            let url = parse_url("`Config::late`", run.late.unwrap_or(Path::new("")))?;
            if !beside(&url, &parse_url("`Config::output`", run.output)?) {
                return Err(OptionsError::LatePlace);
            }
        }
        if let Some(audit) = run.audit.filter(|a| is_kafka(a)) {
            if !output {
                return Err(OptionsError::AuditMixed);
            }
            let url = parse_url("`Config::audit`", audit)?;
            if !beside(&url, &parse_url("`Config::output`", run.output)?) {
                return Err(OptionsError::AuditPlace);
            }
        }
        if let Some(shadow) = run.shadow.filter(|s| is_kafka(s)) {
            if !output {
                return Err(OptionsError::ShadowMixed);
            }
            let url = parse_url("`Config::shadow_output`", shadow)?;
            if !beside(&url, &parse_url("`Config::output`", run.output)?) {
                return Err(OptionsError::ShadowPlace);
            }
        }
        if let Some(decisions) = run.decisions.filter(|d| is_kafka(d)) {
            if !output {
                return Err(OptionsError::DecisionsMixed);
            }
            let url = parse_url("`Config::decisions`", decisions)?;
            if !beside(&url, &parse_url("`Config::output`", run.output)?) {
                return Err(OptionsError::DecisionsPlace);
            }
        }
        let kafka_only = !self.properties.is_empty()
            || self.transactional_id.is_some()
            || self.marker_topic.is_some()
            || self.timeouts.is_some()
            || run.record_time;
        if kafka_only && !events && !output {
            return Err(OptionsError::KafkaOnly);
        }
        if run.record_time && !events {
            return Err(OptionsError::RecordTimeAlone);
        }
        if (self.start.is_some() || self.until.is_some()) && !events {
            return Err(OptionsError::StartAlone);
        }
        if self.offset_mismatch.is_some() && !events {
            return Err(OptionsError::MismatchAlone);
        }
        let committed = output && run.checkpoint.is_some();
        if self.transactional_id.is_some() && !committed {
            return Err(OptionsError::TransactionalIdAlone);
        }
        if self.marker_topic.is_some() && !committed {
            return Err(OptionsError::MarkerTopicAlone);
        }
        check_properties(self.properties)
    }
}

impl KafkaOptions<'_> {
    /// Is every list of `config` fed by a topic one that the rules declare
    /// (`declared`: is it a list of the rules)? As a list file's, checked
    /// before the run starts.
    pub fn check_lists(
        &self,
        config: &Config,
        declared: impl Fn(&str) -> bool,
    ) -> Result<(), OptionsError> {
        let topics = config.lists.iter().filter(|l| is_kafka(&l.path));
        match topics.into_iter().find(|l| !declared(&l.list)) {
            Some(l) => Err(OptionsError::ListUndeclared {
                list: l.list.clone(),
                url: l.path.display().to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// librdkafka's `builtin.features` of this build (`gzip,snappy,...`).
pub fn builtin_features() -> String {
    rdkafka::ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .unwrap_or_default()
}

/// The `--kafka` properties: first what they need of this build of
/// librdkafka (`security.protocol` `ssl` or `sasl_ssl` its feature `ssl`,
/// a SASL protocol the feature of its mechanism, `sasl.mechanism`, GSSAPI
/// by default), said with what it has; then each as librdkafka takes it
/// (set, in order, on a configuration of its own: no client, no broker).
fn check_properties(properties: &[(String, String)]) -> Result<(), OptionsError> {
    if properties.is_empty() {
        return Ok(());
    }
    // (the last one given of `key`, as `NAME=VALUE`, and its value)
    let last = |key: &str| {
        properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(k, v)| (format!("{k}={v}"), v.to_ascii_lowercase()))
    };
    if let Some((property, protocol)) = last("security.protocol") {
        let built = builtin_features();
        let has = |feature: &str| built.split(',').any(|f| f == feature);
        let mut needs = None;
        if matches!(protocol.as_str(), "ssl" | "sasl_ssl") && !has("ssl") {
            needs = Some((property.clone(), "SSL (TLS: OpenSSL)".to_string()));
        } else if protocol.starts_with("sasl") {
            let (property, mechanism) = last("sasl.mechanism")
                .or_else(|| last("sasl.mechanisms"))
                .unwrap_or((property, "gssapi".to_string()));
            let feature = match mechanism.as_str() {
                "plain" => "sasl_plain",
                "scram-sha-256" | "scram-sha-512" => "sasl_scram",
                "oauthbearer" => "sasl_oauthbearer",
                _ => "sasl_gssapi",
            };
            if !has(feature) {
                let what = mechanism.to_ascii_uppercase();
                needs = Some((property, format!("the SASL mechanism {what} ({feature})")));
            }
        }
        if let Some((property, needs)) = needs {
            return Err(OptionsError::NotBuiltIn {
                property,
                needs,
                built,
            });
        }
    }
    let mut config = rdkafka::ClientConfig::new();
    for (name, value) in properties {
        config.set(name, value);
        if let Err(e) = config.create_native_config() {
            let reason = match e {
                rdkafka::error::KafkaError::ClientConfig(_, why, _, _) => why,
                other => other.to_string(),
            };
            return Err(OptionsError::Property {
                property: format!("{name}={value}"),
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use cepheid_runtime::Input;

    /// A run from `events` to `output` (`-`: the standard streams) with
    /// nothing else.
    fn run(events: &str, output: &str) -> Config {
        let input = match events {
            "-" => Input::Stdin,
            file => Input::file(file),
        };
        let mut config = Config::new(input, Vec::new());
        config.output = (output != "-").then(|| output.into());
        config
    }

    /// [`run`], then `change`.
    fn run_with(events: &str, output: &str, change: impl FnOnce(&mut Config)) -> Config {
        let mut config = run(events, output);
        change(&mut config);
        config
    }

    const IN: &str = "kafka://a:1/in";
    const OUT: &str = "kafka://a:1/out";

    /// List `blocked` fed by `path`, and `files` by a file.
    fn lists(path: &str) -> Vec<cepheid_runtime::lists::ListFile> {
        let list = |arg: &str| cepheid_runtime::lists::ListFile::parse(arg).unwrap();
        vec![list("files=files.csv"), list(&format!("blocked={path}"))]
    }

    #[test]
    fn a_list_topic_on_the_brokers_of_the_input_passes_and_must_be_declared() {
        let none = KafkaOptions::default();
        let config = run_with(IN, "-", |c| c.lists = lists("kafka://a:1/blocked"));
        assert_eq!(none.check(&config), Ok(()));
        assert_eq!(none.check_lists(&config, |_| true), Ok(()));
        // (files are the runtime's to check)
        let refused = none.check_lists(&config, |list| list == "files");
        let e = refused.unwrap_err();
        assert_eq!(
            e.to_string(),
            "list `blocked` (kafka://a:1/blocked): the rules declare no list `blocked` (`list blocked`)"
        );
    }

    #[test]
    fn files_alone_and_complete_kafka_runs_pass() {
        let none = KafkaOptions::default();
        assert_eq!(none.check(&run("-", "-")), Ok(()));
        assert_eq!(none.check(&run("events.jsonl", "out.jsonl")), Ok(()));
        let props = [("acks".to_string(), "all".to_string())];
        let full = KafkaOptions {
            rules_topic: Some(Path::new("kafka://a:1/rules")),
            timeouts: Some(Path::new("kafka://a:1/timeouts")),
            properties: &props,
            transactional_id: Some("t"),
            marker_topic: Some("m"),
            start: Some(&StartAt::Latest),
            ..KafkaOptions::default()
        };
        let config = run_with(IN, OUT, |c| {
            c.late = Some("kafka://a:1/late".into());
            c.time = Time::Record;
            c.checkpoint = Some("cp".into());
        });
        assert_eq!(full.check(&config), Ok(()));
        // (a file late output with a file output)
        let files = run_with(IN, "out.jsonl", |c| c.late = Some("late.jsonl".into()));
        assert_eq!(none.check(&files), Ok(()));
    }

    #[test]
    fn each_combination_that_cannot_work_is_refused_with_its_message() {
        let props = [("acks".to_string(), "all".to_string())];
        let p = Path::new;
        let none = KafkaOptions::default();
        let cases: Vec<(KafkaOptions<'_>, Config, OptionsError, &str)> = vec![
            (
                none,
                run("kafka://a/in", "-"),
                OptionsError::Url {
                    setting: "`Config::input`",
                    error: UrlError::Brokers {
                        text: "kafka://a/in".into(),
                    },
                },
                "`Config::input` kafka://a/in: the brokers are HOST:PORT, comma-separated",
            ),
            (
                none,
                run_with("in.jsonl", "-", |c| c.lists = lists("kafka://a:1/blocked")),
                OptionsError::ListTopicAlone {
                    list: "blocked".into(),
                },
                "`Config::lists` blocked=kafka://... needs `Config::input` kafka://... (on its brokers)",
            ),
            (
                none,
                run_with(IN, "-", |c| c.lists = lists("kafka://b:1/blocked")),
                OptionsError::ListTopicPlace {
                    list: "blocked".into(),
                },
                "`Config::lists` blocked=kafka://...: one topic on the brokers of `Config::input`",
            ),
            (
                none,
                run_with(IN, "-", |c| c.lists = lists("kafka://a:1/b,c")),
                OptionsError::ListTopicPlace {
                    list: "blocked".into(),
                },
                "`Config::lists` blocked=kafka://...: one topic on the brokers of `Config::input`",
            ),
            (
                none,
                run_with(IN, "-", |c| c.follow = true),
                OptionsError::FollowKafka,
                "`Config::follow` is for files: a Kafka source goes on by itself (until `KafkaOptions::until`)",
            ),
            (
                KafkaOptions {
                    rules_topic: Some(p("kafka://a:1/rules")),
                    ..none
                },
                run("in.jsonl", "-"),
                OptionsError::RulesTopicAlone,
                "`KafkaOptions::rules_topic` needs `Config::input` kafka://... (on its brokers)",
            ),
            (
                KafkaOptions {
                    rules_topic: Some(p("kafka://b:1/rules")),
                    ..none
                },
                run(IN, "-"),
                OptionsError::RulesTopicPlace,
                "`KafkaOptions::rules_topic`: one topic on the brokers of `Config::input`",
            ),
            (
                KafkaOptions {
                    rules_topic: Some(p("kafka://a:1/r,s")),
                    ..none
                },
                run(IN, "-"),
                OptionsError::RulesTopicPlace,
                "`KafkaOptions::rules_topic`: one topic on the brokers of `Config::input`",
            ),
            (
                KafkaOptions {
                    rules_topic: Some(p("rules.cep")),
                    ..none
                },
                run(IN, "-"),
                OptionsError::Url {
                    setting: "`KafkaOptions::rules_topic`",
                    error: UrlError::NotKafka {
                        text: "rules.cep".into(),
                    },
                },
                "`KafkaOptions::rules_topic` rules.cep: not a kafka:// URL",
            ),
            (
                none,
                run("-", "kafka://a:1/x,y"),
                OptionsError::OutputTopics,
                "`Config::output` kafka://...: one topic (`KafkaOptions::timeouts` names another for timeouts)",
            ),
            (
                KafkaOptions {
                    timeouts: Some(p("kafka://a:1/t")),
                    ..none
                },
                run(IN, "-"),
                OptionsError::TimeoutsAlone,
                "`KafkaOptions::timeouts` needs `Config::output` kafka://...",
            ),
            (
                KafkaOptions {
                    timeouts: Some(p("kafka://b:2/t")),
                    ..none
                },
                run("-", OUT),
                OptionsError::TimeoutsPlace,
                "`KafkaOptions::timeouts`: one topic on the brokers of `Config::output`",
            ),
            (
                none,
                run_with(IN, "out.jsonl", |c| c.late = Some("kafka://a:1/late".into())),
                OptionsError::LateMixed,
                "`Config::late` kafka://... goes with `Config::output` kafka://... (and a file `Config::late` with a file `Config::output`)",
            ),
            (
                none,
                run_with("-", OUT, |c| c.late = Some("late.jsonl".into())),
                OptionsError::LateMixed,
                "`Config::late` kafka://... goes with `Config::output` kafka://... (and a file `Config::late` with a file `Config::output`)",
            ),
            (
                none,
                run_with("-", OUT, |c| c.late = Some("kafka://a:1/l,m".into())),
                OptionsError::LatePlace,
                "`Config::late` kafka://...: one topic on the brokers of `Config::output`",
            ),
            (
                KafkaOptions {
                    properties: &props,
                    ..none
                },
                run("-", "-"),
                OptionsError::KafkaOnly,
                KAFKA_ONLY,
            ),
            (
                none,
                run_with("-", OUT, |c| c.time = Time::Record),
                OptionsError::RecordTimeAlone,
                "`Time::Record` needs `Config::input` kafka://... (the records' timestamps)",
            ),
            (
                KafkaOptions {
                    until: Some(&Until::End),
                    ..none
                },
                run("-", OUT),
                OptionsError::StartAlone,
                START_ALONE,
            ),
            (
                KafkaOptions {
                    offset_mismatch: Some(OnMismatch::Earliest),
                    ..none
                },
                run("-", OUT),
                OptionsError::MismatchAlone,
                "`KafkaOptions::offset_mismatch` needs `Config::input` kafka://...",
            ),
            (
                KafkaOptions {
                    transactional_id: Some("t"),
                    ..none
                },
                run("-", OUT),
                OptionsError::TransactionalIdAlone,
                "`KafkaOptions::transactional_id` needs `Config::output` kafka://... and `Config::checkpoint` (the transactions commit with the checkpoints)",
            ),
            (
                KafkaOptions {
                    marker_topic: Some("m"),
                    ..none
                },
                run_with(IN, "-", |c| c.checkpoint = Some("cp".into())),
                OptionsError::MarkerTopicAlone,
                "`KafkaOptions::marker_topic` needs `Config::output` kafka://... and `Config::checkpoint`",
            ),
        ];
        for (options, config, error, said) in cases {
            let got = options.check(&config).unwrap_err();
            assert_eq!(got, error, "{options:?} {config:?}");
            assert_eq!(got.to_string(), said);
        }
    }

    fn with(properties: &[(&str, &str)]) -> Result<(), OptionsError> {
        let properties: Vec<(String, String)> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaOptions {
            properties: &properties,
            ..KafkaOptions::default()
        }
        .check(&run(IN, "-"))
    }

    /// This build's librdkafka has no OpenSSL (`docs/kafka.md`, "TLS and
    /// SASL"): TLS, and SASL mechanisms other than PLAIN, are refused
    /// before any broker is asked, naming what is missing.
    #[test]
    fn what_this_build_of_librdkafka_lacks_is_refused_naming_it() {
        let built = builtin_features();
        assert!(built.contains("sasl_plain"), "{built}");
        assert!(!built.split(',').any(|f| f == "ssl"), "{built}");
        let e = with(&[("security.protocol", "ssl")]).unwrap_err();
        assert!(matches!(&e, OptionsError::NotBuiltIn { needs, .. } if needs.starts_with("SSL")));
        assert_eq!(
            e.to_string(),
            format!(
                "`KafkaOptions::properties` security.protocol=ssl: this cepheid's Kafka client (librdkafka) is built without SSL (TLS: OpenSSL) \
                 (it has: {built}); TLS and SASL other than PLAIN are not supported yet (docs/kafka.md, \"TLS and SASL\")"
            )
        );
        let e = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`KafkaOptions::properties` security.protocol=SASL_SSL: "),
            "{e}"
        );
        let e = with(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "`KafkaOptions::properties` sasl.mechanism=SCRAM-SHA-256: this cepheid's Kafka client (librdkafka) is built without the SASL mechanism SCRAM-SHA-256 (sasl_scram)"
            ),
            "{e}"
        );
        // (GSSAPI, librdkafka's default mechanism)
        let e = with(&[("security.protocol", "sasl_plaintext")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the SASL mechanism GSSAPI (sasl_gssapi)"),
            "{e}"
        );
        // What it has passes.
        assert_eq!(
            with(&[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", "PLAIN")
            ]),
            Ok(())
        );
        assert_eq!(
            with(&[("security.protocol", "plaintext"), ("linger.ms", "20")]),
            Ok(())
        );
        // A property librdkafka does not know, or a value it does not take.
        let e = with(&[("no.such.property", "1")]).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "`KafkaOptions::properties` no.such.property=1: No such configuration property"
            ),
            "{e}"
        );
        let e = with(&[("linger.ms", "soon")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`KafkaOptions::properties` linger.ms=soon: "),
            "{e}"
        );
    }

    #[test]
    fn a_bad_url_error_keeps_the_url_error_as_its_source() {
        let e = parse_url("`Config::late`", Path::new("kafka://a:1/")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`Config::late` kafka://a:1/: no topic after the brokers"
        );
        let source = std::error::Error::source(&e).expect("the URL's error");
        assert_eq!(
            source.to_string(),
            "kafka://a:1/: no topic after the brokers"
        );
        assert!(is_kafka(Path::new(IN)));
        assert!(!is_kafka(Path::new("in.jsonl")));
    }
}
