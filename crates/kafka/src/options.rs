//! The text forms of a Kafka source's and sink's settings, as a command
//! line gives them (`cepheid run --events kafka://...`, `--kafka-start`,
//! `--kafka NAME=VALUE`), parsed into values, each error a type holding
//! what was refused.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::source::{StartAt, Until};

/// `kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...]`: the brokers and
/// the topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// One or more topics.
    pub topics: Vec<String>,
}

impl Url {
    /// Does `text` name Kafka (start with `kafka://`) rather than a file?
    pub fn is_kafka(text: &str) -> bool {
        text.starts_with("kafka://")
    }
}

/// Why a text is not a [`Url`]. Its `Display` is the text and the reason:
/// `kafka://h/t: the brokers are HOST:PORT, comma-separated`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// It does not start with `kafka://`.
    NotKafka {
        /// The text.
        text: String,
    },
    /// No `/` after the brokers.
    NoSlash {
        /// The text.
        text: String,
    },
    /// No broker, or one that is not `HOST:PORT`.
    Brokers {
        /// The text.
        text: String,
    },
    /// Nothing after the `/`.
    NoTopic {
        /// The text.
        text: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NotKafka { text } => write!(f, "{text}: not a kafka:// URL"),
            UrlError::NoSlash { text } => write!(
                f,
                "{text}: a Kafka URL is kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]"
            ),
            UrlError::Brokers { text } => {
                write!(f, "{text}: the brokers are HOST:PORT, comma-separated")
            }
            UrlError::NoTopic { text } => write!(f, "{text}: no topic after the brokers"),
        }
    }
}

impl std::error::Error for UrlError {}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Url, UrlError> {
        let owned = || text.to_string();
        let rest = text
            .strip_prefix("kafka://")
            .ok_or_else(|| UrlError::NotKafka { text: owned() })?;
        let (brokers, topics) = rest
            .split_once('/')
            .ok_or_else(|| UrlError::NoSlash { text: owned() })?;
        if brokers.is_empty() || brokers.split(',').any(|b| !b.contains(':')) {
            return Err(UrlError::Brokers { text: owned() });
        }
        let topics: Vec<String> = topics
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if topics.is_empty() {
            return Err(UrlError::NoTopic { text: owned() });
        }
        Ok(Url {
            brokers: brokers.to_string(),
            topics,
        })
    }
}

/// A text that is not a place in a topic ([`parse_start`],
/// [`parse_until`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError {
    /// The text.
    pub text: String,
    /// What it may be instead.
    pub expected: &'static str,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not {}", self.text, self.expected)
    }
}

impl std::error::Error for StartError {}

/// PartitionOffsets named per partition: `PARTITION:OFFSET[,...]` when the source
/// reads one topic, `TOPIC:PARTITION:OFFSET[,...]` (always allowed)
/// otherwise. A partition named twice keeps its last offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffsets(pub Vec<(Option<String>, i32, i64)>);

impl PartitionOffsets {
    /// The offsets of `text`, or `None` when it is not a list of them.
    fn parse(text: &str) -> Option<PartitionOffsets> {
        let mut offsets = Vec::new();
        for part in text.split(',') {
            let fields: Vec<&str> = part.split(':').collect();
            let (topic, partition, offset) = match fields[..] {
                [p, o] => (None, p, o),
                [t, p, o] if !t.is_empty() => (Some(t.to_string()), p, o),
                _ => return None,
            };
            let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0)?;
            let offset = offset.parse::<i64>().ok().filter(|o| *o >= 0)?;
            offsets.push((topic, partition, offset));
        }
        Some(PartitionOffsets(offsets))
    }
}

impl fmt::Display for PartitionOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (topic, partition, offset)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if let Some(topic) = topic {
                write!(f, "{topic}:")?;
            }
            write!(f, "{partition}:{offset}")?;
        }
        Ok(())
    }
}

/// A time as text: RFC 3339, or integer milliseconds since the epoch.
fn parse_time(text: &str) -> Option<i64> {
    match text.parse::<i64>() {
        Ok(ms) => Some(ms),
        Err(_) => cepheid_decode::parse_rfc3339(text).ok(),
    }
}

/// Where a source starts, as text: `earliest`, `latest`, a time (RFC
/// 3339, or integer milliseconds since the epoch), or offsets per
/// partition ([`PartitionOffsets`]: `0:1200,1:1180`).
pub fn parse_start(text: &str) -> Result<StartAt, StartError> {
    match text {
        "earliest" => Ok(StartAt::Earliest),
        "latest" => Ok(StartAt::Latest),
        _ => (parse_time(text).map(StartAt::Timestamp))
            .or_else(|| PartitionOffsets::parse(text).map(StartAt::Offsets))
            .ok_or_else(|| StartError {
                text: text.to_string(),
                expected: "earliest, latest, an RFC 3339 time, milliseconds, \
                           or offsets PARTITION:OFFSET[,...]",
            }),
    }
}

/// Where a bounded source ends, as text: `end` (each partition's end
/// when the source starts), a time (RFC 3339 or milliseconds: before each
/// partition's first record at or after it), or offsets per partition
/// ([`PartitionOffsets`], each the first offset not read).
pub fn parse_until(text: &str) -> Result<Until, StartError> {
    match text {
        "end" => Ok(Until::End),
        _ => (parse_time(text).map(Until::Timestamp))
            .or_else(|| PartitionOffsets::parse(text).map(Until::Offsets))
            .ok_or_else(|| StartError {
                text: text.to_string(),
                expected: "end, an RFC 3339 time, milliseconds, or offsets \
                           PARTITION:OFFSET[,...]",
            }),
    }
}

/// A text that is not `NAME=VALUE` ([`parse_property`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyError {
    /// The text.
    pub text: String,
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not NAME=VALUE (a librdkafka property)",
            self.text
        )
    }
}

impl std::error::Error for PropertyError {}

/// A librdkafka property as `NAME=VALUE` (the value may be empty or hold
/// `=`; the name may not be empty).
pub fn parse_property(text: &str) -> Result<(String, String), PropertyError> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(PropertyError {
            text: text.to_string(),
        }),
    }
}

/// The transactional id of a sink whose checkpoints are in `dir`:
/// `cepheid:` and the folder's canonical path (one instance per folder; a
/// restart on the same folder fences the instance before it). A folder
/// that cannot be resolved is named as given.
pub fn default_transactional_id(dir: &Path) -> String {
    let path = cepheid_runtime::folder_identity(dir);
    format!("cepheid:{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_brokers_and_topics() {
        let url: Url = "kafka://a:1,b:2/orders,logins".parse().unwrap();
        assert_eq!(url.brokers, "a:1,b:2");
        assert_eq!(url.topics, ["orders", "logins"]);
        // (empty topic names between commas are dropped)
        let url: Url = "kafka://a:1/t,,u,".parse().unwrap();
        assert_eq!(url.topics, ["t", "u"]);
        assert!(Url::is_kafka("kafka://a:1/t"));
        assert!(!Url::is_kafka("events.jsonl"));
    }

    #[test]
    fn urls_that_cannot_work_are_refused_with_the_reason() {
        let cases = [
            (
                "events.jsonl",
                UrlError::NotKafka {
                    text: "events.jsonl".into(),
                },
                "events.jsonl: not a kafka:// URL",
            ),
            (
                "kafka://a:1",
                UrlError::NoSlash {
                    text: "kafka://a:1".into(),
                },
                "kafka://a:1: a Kafka URL is kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]",
            ),
            (
                "kafka://host/t",
                UrlError::Brokers {
                    text: "kafka://host/t".into(),
                },
                "kafka://host/t: the brokers are HOST:PORT, comma-separated",
            ),
            (
                "kafka://a:1,/t",
                UrlError::Brokers {
                    text: "kafka://a:1,/t".into(),
                },
                "kafka://a:1,/t: the brokers are HOST:PORT, comma-separated",
            ),
            (
                "kafka:///t",
                UrlError::Brokers {
                    text: "kafka:///t".into(),
                },
                "kafka:///t: the brokers are HOST:PORT, comma-separated",
            ),
            (
                "kafka://a:1/",
                UrlError::NoTopic {
                    text: "kafka://a:1/".into(),
                },
                "kafka://a:1/: no topic after the brokers",
            ),
        ];
        for (text, error, said) in cases {
            let got = text.parse::<Url>().unwrap_err();
            assert_eq!(got, error, "{text}");
            assert_eq!(got.to_string(), said);
        }
        // (an error that can go up as a boxed error across threads)
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new("x".parse::<Url>().unwrap_err());
        assert!(boxed.to_string().contains("not a kafka:// URL"));
    }

    #[test]
    fn starts_are_earliest_latest_or_a_time() {
        assert_eq!(parse_start("earliest"), Ok(StartAt::Earliest));
        assert_eq!(parse_start("latest"), Ok(StartAt::Latest));
        assert_eq!(
            parse_start("1700000000000"),
            Ok(StartAt::Timestamp(1_700_000_000_000))
        );
        assert_eq!(parse_start("-5"), Ok(StartAt::Timestamp(-5)));
        assert_eq!(
            parse_start("2024-05-01T12:00:00Z"),
            Ok(StartAt::Timestamp(1_714_564_800_000))
        );
        let e = parse_start("yesterday").unwrap_err();
        assert_eq!(e.text, "yesterday");
        assert_eq!(
            e.to_string(),
            "`yesterday` is not earliest, latest, an RFC 3339 time, milliseconds, \
             or offsets PARTITION:OFFSET[,...]"
        );
    }

    #[test]
    fn offsets_name_a_partition_and_maybe_a_topic() {
        let offsets = |list: &[(Option<&str>, i32, i64)]| {
            PartitionOffsets(
                list.iter()
                    .map(|(t, p, o)| (t.map(str::to_string), *p, *o))
                    .collect(),
            )
        };
        assert_eq!(
            parse_start("0:1200,1:7"),
            Ok(StartAt::Offsets(offsets(&[(None, 0, 1200), (None, 1, 7)])))
        );
        assert_eq!(
            parse_until("orders:2:0,logins.eu:0:5"),
            Ok(Until::Offsets(offsets(&[
                (Some("orders"), 2, 0),
                (Some("logins.eu"), 0, 5)
            ])))
        );
        assert_eq!(parse_until("end"), Ok(Until::End));
        assert_eq!(
            parse_until("2024-05-01T12:00:00Z"),
            Ok(Until::Timestamp(1_714_564_800_000))
        );
        assert_eq!(
            parse_until("0:5,orders:1:9").unwrap().to_string(),
            "0:5,orders:1:9"
        );
        for bad in [
            "0:", ":1", "0:-1", "-1:0", "0:1,", "a:b", "t:0:1:2", "latest", "0:x",
        ] {
            let e = parse_until(bad).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("`{bad}` is not end,")),
                "{e}"
            );
        }
        assert!(parse_start("end").is_err());
    }

    #[test]
    fn properties_are_name_equals_value() {
        assert_eq!(
            parse_property("security.protocol=ssl"),
            Ok(("security.protocol".into(), "ssl".into()))
        );
        assert_eq!(parse_property("a="), Ok(("a".into(), String::new())));
        assert_eq!(parse_property("a=b=c"), Ok(("a".into(), "b=c".into())));
        for text in ["nonsense", "=x", ""] {
            let e = parse_property(text).unwrap_err();
            assert_eq!(e.text, text);
            assert_eq!(
                e.to_string(),
                format!("`{text}` is not NAME=VALUE (a librdkafka property)")
            );
        }
    }

    #[test]
    fn the_default_transactional_id_names_the_canonical_folder() {
        let dir = std::env::temp_dir();
        let canonical = dir.canonicalize().unwrap();
        assert_eq!(
            default_transactional_id(&dir),
            format!("cepheid:{}", canonical.display())
        );
        // (a folder that does not exist yet: as given)
        let missing = Path::new("no/such/folder/here");
        let id = default_transactional_id(missing);
        assert!(id.starts_with("cepheid:"), "{id}");
        assert!(id.ends_with("no/such/folder/here"), "{id}");
    }
}
