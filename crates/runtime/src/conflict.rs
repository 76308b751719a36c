//! What a [`Config`] cannot run with, found before anything is opened
//! ([`Config::check`]): options that make no sense together, the input,
//! the output and the late output being one file, a time field that would
//! make every line a watermark, and a rules folder that nothing reads or
//! that is no folder.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::driver::canonical;
use crate::{Config, Input, Time};

/// Why a [`Config`] cannot run as it is. Its messages speak of the
/// `Config`'s settings; a program that takes its settings from a command
/// line or a file names its own (the `cepheid` command maps each variant
/// to its flags and exits 2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// Checkpoints of standard input, which cannot be read again.
    CheckpointOfStdin,
    /// Standard input followed.
    FollowStdin,
    /// A run started from a checkpoint ([`Config::start_from`]) of
    /// standard input, which cannot be read from the checkpoint's place.
    StartFromStdin,
    /// A run started from a checkpoint ([`Config::start_from`]) that keeps
    /// checkpoints of its own ([`Config::checkpoint`]).
    StartFromWithCheckpoints,
    /// A run on workers started from a checkpoint ([`Config::start_from`]).
    StartFromOnWorkers,
    /// A run on workers with audit records of changes of lists
    /// ([`Config::audit_lists`]).
    AuditListsOnWorkers,
    /// A delay with processing time (no event is late).
    DelayWithProcessingTime,
    /// An idle timeout with processing time (time follows the clock).
    IdleWithProcessingTime,
    /// The late events to `-`.
    LateToStdout,
    /// The shadow patterns' records to `-`.
    ShadowToStdout,
    /// The audit records to `-`.
    AuditToStdout,
    /// The decisions to `-`.
    DecisionsToStdout,
    /// Two of the input, the output and the late output are one file.
    SameFile {
        /// The first one's setting and path.
        a: (Named, PathBuf),
        /// The second one's.
        b: (Named, PathBuf),
    },
    /// The time field is `$watermark`, the field that marks watermark
    /// lines: every line would be read as one.
    WatermarkTimeField,
    /// A rules folder ([`Config::rules_dir`]) with nothing that reads
    /// `$rules_file` records: neither [`Config::rules_from_stream`] nor a
    /// source's rules stream ([`Config::source_rules`]).
    RulesDirUnused,
    /// The rules folder is not a folder (or does not exist).
    RulesDirNotFolder(PathBuf),
    /// A sink that delivers only what a checkpoint commits
    /// ([`Sink::commits_with_checkpoints`](crate::Sink::commits_with_checkpoints):
    /// a transaction) in a run without a checkpoint folder: it would
    /// deliver nothing.
    SinkNeedsCheckpoints {
        /// The sink ([`Sink::describe`](crate::Sink::describe) of its matches).
        sink: String,
    },
    /// A `shadow` pattern in a run without a shadow output
    /// ([`Config::shadow_output`]): its records would have nowhere to go.
    ShadowWithoutOutput {
        /// The pattern's name.
        pattern: String,
    },
    /// A shadow output ([`Config::shadow_output`]) with a sink of the
    /// caller's that takes no shadow records
    /// ([`Sink::takes_shadow`](crate::Sink::takes_shadow)).
    SinkTakesNoShadow {
        /// The sink ([`Sink::describe`](crate::Sink::describe) of its matches).
        sink: String,
    },
    /// An audit file ([`Config::audit`]) with a sink of the caller's that
    /// takes no audit records
    /// ([`Sink::takes_audit`](crate::Sink::takes_audit)).
    SinkTakesNoAudit {
        /// The sink ([`Sink::describe`](crate::Sink::describe) of its matches).
        sink: String,
    },
    /// A decisions file ([`Config::decisions`]) with a sink of the
    /// caller's that takes no decisions
    /// ([`Sink::takes_decisions`](crate::Sink::takes_decisions)).
    SinkTakesNoDecisions {
        /// The sink ([`Sink::describe`](crate::Sink::describe) of its matches).
        sink: String,
    },
}

/// Which of the run's files a [`Conflict::SameFile`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// The input ([`Config::input`]).
    Input,
    /// The output ([`Config::output`]).
    Output,
    /// The late output ([`Config::late`]).
    Late,
    /// The shadow output ([`Config::shadow_output`]).
    Shadow,
    /// The audit file ([`Config::audit`]).
    Audit,
    /// The decisions file ([`Config::decisions`]).
    Decisions,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Named::Input => "the input (Config::input)",
            Named::Output => "the output (Config::output)",
            Named::Late => "the late output (Config::late)",
            Named::Shadow => "the shadow output (Config::shadow_output)",
            Named::Audit => "the audit file (Config::audit)",
            Named::Decisions => "the decisions file (Config::decisions)",
        })
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conflict::CheckpointOfStdin => "a checkpoint folder (Config::checkpoint) needs a file input (Config::input): standard input cannot be read again from a checkpoint's offset",
            Conflict::StartFromStdin => "starting from a checkpoint (Config::start_from) needs a file input (Config::input) or a source: standard input cannot be read from a checkpoint's place",
            Conflict::StartFromWithCheckpoints => "a run started from a checkpoint (Config::start_from) keeps no checkpoint of its own (Config::checkpoint): it is a run over what came after that checkpoint, into outputs of its own (docs/checkpoints.md, \"Starting from a checkpoint\")",
            Conflict::StartFromOnWorkers => "a run on workers cannot start from a checkpoint (Config::start_from): one engine only",
            Conflict::AuditListsOnWorkers => "a run on workers writes no audit records of changes of lists (Config::audit_lists): one engine only",
            Conflict::FollowStdin => "following (Config::follow) needs a file input (Config::input): standard input cannot be followed; it is read as it comes anyway",
            Conflict::DelayWithProcessingTime => "a delay (Config::max_delay) has no meaning in processing time (no event is late)",
            Conflict::IdleWithProcessingTime => "an idle timeout (Config::idle_timeout) has no meaning in processing time (time always follows the clock)",
            // It created a file named `-`; sharing standard output with the
            // matches would need one writer for both.
            Conflict::LateToStdout => "the late output (Config::late) must be a file path (`-`, standard output, is not supported)",
            Conflict::ShadowToStdout => "the shadow output (Config::shadow_output) must be a file path (`-`, standard output, is where the live records go)",
            Conflict::AuditToStdout => "the audit file (Config::audit) must be a file path (`-`, standard output, is where the records go)",
            Conflict::DecisionsToStdout => "the decisions file (Config::decisions) must be a file path (`-`, standard output, is where the records go)",
            Conflict::SameFile { a, b } => {
                return write!(
                    f,
                    "{} {} and {} {} are the same file; give them different paths",
                    a.0,
                    a.1.display(),
                    b.0,
                    b.1.display()
                )
            }
            Conflict::WatermarkTimeField => {
                "the time field (Config::time's `Time::Event`) cannot be `$watermark`: that field marks watermark lines"
            }
            Conflict::RulesDirUnused => "a rules folder (Config::rules_dir) needs rules from the stream (Config::rules_from_stream) or a source's rules stream (Config::source_rules): it confines their `$rules_file` records",
            Conflict::RulesDirNotFolder(dir) => {
                return write!(f, "the rules folder (Config::rules_dir) {}: not a folder", dir.display())
            }
            Conflict::SinkNeedsCheckpoints { sink } => {
                return write!(
                    f,
                    "{sink} delivers records only when a checkpoint commits them, and the run has no checkpoint folder (Config::checkpoint): nothing would ever be delivered"
                )
            }
            Conflict::ShadowWithoutOutput { pattern } => {
                return f.write_str(&shadow_without_output(pattern))
            }
            Conflict::SinkTakesNoShadow { sink } => {
                return write!(
                    f,
                    "{sink} takes no records of shadow patterns: a shadow output file (`Config::shadow_output`) goes with the run's files; give the sink a shadow output of its own (a Kafka sink's topic)"
                )
            }
            Conflict::SinkTakesNoAudit { sink } => {
                return write!(
                    f,
                    "{sink} takes no audit records of rule changes: an audit file (`Config::audit`) goes with the run's files; give the sink an audit output of its own (a Kafka sink's topic)"
                )
            }
            Conflict::SinkTakesNoDecisions { sink } => {
                return write!(
                    f,
                    "{sink} takes no decisions: a decisions file (`Config::decisions`) goes with the run's files; give the sink a decisions output of its own"
                )
            }
        })
    }
}

impl std::error::Error for Conflict {}

/// Why the `shadow` pattern `pattern` cannot run without a shadow output.
pub(crate) fn shadow_without_output(pattern: &str) -> String {
    format!(
        "pattern `{pattern}` is a shadow pattern, and the run has no shadow output (`Config::shadow_output`): its records would have nowhere to go (docs/rule-lab.md)"
    )
}

/// The first `shadow` pattern of `patterns` when the run of `config` has
/// no shadow output (neither a file nor a sink that takes the records,
/// [`Config::shadow_sink`]): what refuses a rule set (at the start, or a
/// change of rules).
pub(crate) fn shadow_unplaced<'a>(
    config: &Config,
    mut patterns: impl Iterator<Item = &'a cepheid_core::pattern::Pattern>,
) -> Option<String> {
    if config.shadow_output.is_some() || config.shadow_sink {
        return None;
    }
    patterns.find(|p| p.shadow).map(|p| p.name.clone())
}

impl Config {
    /// Checks what cannot run, before anything is opened: the input, the
    /// output and the late output must be different files (`--output X
    /// --late X` interleaved two streams into one file, `--output X
    /// --events X` truncated the input before reading it; compared
    /// canonically, the parent folder for a file that does not exist yet,
    /// and for existing files by identity: hard links, `/dev/fd` names;
    /// standard streams are never compared); then checkpoints and
    /// following need a file, processing time takes no delay nor idle
    /// timeout, the time field cannot be `$watermark`, and a rules folder
    /// needs something whose `$rules_file` records it confines and must be
    /// a folder.
    pub fn check(&self) -> Result<(), Conflict> {
        self.check_reading(true)
    }

    /// [`Config::check`] for a run whose events come from a source of the
    /// caller's (`reads_input` false: [`Config::input`] only names them,
    /// so what the built-in reader cannot do with standard input does not
    /// apply). What [`Runtime`](crate::Runtime) checks when it is made.
    pub fn check_reading(&self, reads_input: bool) -> Result<(), Conflict> {
        let mut named: Vec<(Named, &Path)> = Vec::new();
        if let Input::File(path) = &self.input {
            named.push((Named::Input, path));
        }
        if let Some(output) = &self.output {
            named.push((Named::Output, output));
        }
        if let Some(late) = &self.late {
            if late == Path::new("-") {
                return Err(Conflict::LateToStdout);
            }
            named.push((Named::Late, late));
        }
        if let Some(shadow) = &self.shadow_output {
            if shadow == Path::new("-") {
                return Err(Conflict::ShadowToStdout);
            }
            named.push((Named::Shadow, shadow));
        }
        if let Some(audit) = &self.audit {
            if audit == Path::new("-") {
                return Err(Conflict::AuditToStdout);
            }
            named.push((Named::Audit, audit));
        }
        if let Some(decisions) = &self.decisions {
            if decisions == Path::new("-") {
                return Err(Conflict::DecisionsToStdout);
            }
            named.push((Named::Decisions, decisions));
        }
        for (i, (a_named, a)) in named.iter().enumerate() {
            for (b_named, b) in &named[i + 1..] {
                if same_file(a, b) {
                    return Err(Conflict::SameFile {
                        a: (*a_named, a.to_path_buf()),
                        b: (*b_named, b.to_path_buf()),
                    });
                }
            }
        }
        let stdin = reads_input && self.input == Input::Stdin;
        if self.checkpoint.is_some() && stdin {
            return Err(Conflict::CheckpointOfStdin);
        }
        if self.start_from.is_some() && stdin {
            return Err(Conflict::StartFromStdin);
        }
        if self.start_from.is_some() && self.checkpoint.is_some() {
            return Err(Conflict::StartFromWithCheckpoints);
        }
        if self.follow && stdin {
            return Err(Conflict::FollowStdin);
        }
        if self.time == Time::Processing {
            if !self.max_delay.is_zero() {
                return Err(Conflict::DelayWithProcessingTime);
            }
            if self.idle_timeout.is_some() {
                return Err(Conflict::IdleWithProcessingTime);
            }
        }
        if self.time_field() == Some("$watermark") {
            return Err(Conflict::WatermarkTimeField);
        }
        if let Some(dir) = &self.rules_dir {
            if !self.rules_from_stream && !self.source_rules {
                return Err(Conflict::RulesDirUnused);
            }
            if !dir.is_dir() {
                return Err(Conflict::RulesDirNotFolder(dir.clone()));
            }
        }
        Ok(())
    }
}

impl Config {
    /// What a run of this config says before it starts, on one engine or
    /// on workers: with a checkpoint folder, an output or late file that
    /// is not a regular file (`/dev/null`, a FIFO, a socket) cannot be
    /// synced, measured or truncated on resuming, so it is written as
    /// standard output is (records written after the last checkpoint are
    /// written again on resuming: at least once), which the run says.
    pub(crate) fn start_warnings(&self) -> Vec<crate::Notice> {
        if self.checkpoint.is_none() {
            return Vec::new();
        }
        let late = (self.late.iter())
            .map(|late| (late.as_path(), "`Config::late`"))
            .chain(
                (self.shadow_output.iter())
                    .map(|shadow| (shadow.as_path(), "`Config::shadow_output`")),
            )
            .chain((self.audit.iter()).map(|audit| (audit.as_path(), "`Config::audit`")))
            .chain((self.decisions.iter()).map(|d| (d.as_path(), "`Config::decisions`")));
        let outputs = std::iter::once((self.output_path(), "`Config::output`")).chain(late);
        outputs
            .filter(|(path, _)| *path != Path::new("-") && !is_regular(path))
            .map(|(path, flag)| {
                crate::Notice::line(crate::Level::Warning, format!(
                    "cepheid: {flag} {} is not a regular file: with `Config::checkpoint` it is written as standard output is (not synced nor measured; records written after the last checkpoint are written again on resuming)",
                    path.display()
                ))
            })
            .collect()
    }
}

/// Is `path` a file that can be synced, measured and truncated (a regular
/// file, or none yet: it will be made one)?
pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.is_file())
}

/// Do two paths name the same file (existing or to be created)?
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (ma.dev(), ma.ino()) == (mb.dev(), mb.ino()) {
                return true;
            }
        }
        #[cfg(not(unix))]
        let _ = (ma, mb);
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_cannot_be_the_input() {
        let dir = std::env::temp_dir().join(format!("cepheid-conflict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.jsonl");
        std::fs::write(&events, "").unwrap();
        let mut config = Config::new(Input::File(events.clone()), Vec::new());
        config.output = Some(dir.join("./events.jsonl"));
        let conflict = config.check().unwrap_err();
        assert!(
            matches!(&conflict, Conflict::SameFile { a, b } if a.0 == Named::Input && b.0 == Named::Output)
        );
        config.output = Some(dir.join("out.jsonl"));
        config.late = Some(dir.join("out.jsonl"));
        assert!(config.check().is_err());
        config.late = None;
        assert_eq!(config.check(), Ok(()));
        config.time = Time::Processing;
        config.idle_timeout = Some(std::time::Duration::from_secs(1));
        assert_eq!(config.check(), Err(Conflict::IdleWithProcessingTime));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn standard_input_cannot_be_followed_nor_checkpointed() {
        let mut config = Config::new(Input::Stdin, Vec::new());
        assert_eq!(config.check(), Ok(()));
        config.follow = true;
        assert_eq!(config.check(), Err(Conflict::FollowStdin));
        config.follow = false;
        config.checkpoint = Some("state".into());
        assert_eq!(config.check(), Err(Conflict::CheckpointOfStdin));
        assert!(config
            .check()
            .unwrap_err()
            .to_string()
            .starts_with("a checkpoint folder (Config::checkpoint) needs a file input"));
    }

    #[test]
    fn the_time_field_cannot_be_the_watermark_field() {
        let mut config = Config::new(Input::Stdin, Vec::new());
        config.time = Time::Event {
            field: "$watermark".to_string(),
        };
        assert_eq!(config.check(), Err(Conflict::WatermarkTimeField));
        // (no time field is read in processing time)
        config.time = Time::Processing;
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn a_rules_folder_needs_a_stream_of_rules_and_a_folder() {
        let mut config = Config::new(Input::Stdin, Vec::new());
        config.rules_dir = Some(std::env::temp_dir());
        assert_eq!(config.check(), Err(Conflict::RulesDirUnused));
        assert!(config
            .check()
            .unwrap_err()
            .to_string()
            .starts_with("a rules folder (Config::rules_dir) needs rules from the stream"));
        config.rules_from_stream = true;
        assert_eq!(config.check(), Ok(()));
        // (a source's rules stream reads `$rules_file` records too)
        config.rules_from_stream = false;
        config.source_rules = true;
        assert_eq!(config.check(), Ok(()));
        let nowhere = std::env::temp_dir().join("cepheid-conflict-no-such-folder");
        config.rules_dir = Some(nowhere.clone());
        assert_eq!(config.check(), Err(Conflict::RulesDirNotFolder(nowhere)));
    }
}
