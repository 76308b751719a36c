//! What a run on workers refuses ([`Refusal`]) and its [`Error`]s (a
//! checkpoint it cannot resume is the runtime's
//! [`Error::Resume`](cepheid_runtime::Error::Resume), with its
//! [`Unusable`] why).

use super::*;

/// An option a run on workers does not take (the command exits 2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Processing time.
    ProcessingTime,
    /// Output per worker without an output file.
    OutputPerWorkerNeedsOutput,
    /// A rule that reads a rolling indicator its rules do not declare, or,
    /// in a run whose rules can change, one for groups its `partition
    /// by` does not fix (a run whose rules stay shares such an indicator
    /// over every event of the stream in each of its engines: issue 40).
    /// `docs/lists.md` says which indicators workers run; rules that
    /// write to lists run (their writes reach every worker).
    ListsAndIndicators {
        /// The pattern's name.
        pattern: String,
        /// What it does ("reads indicator `x` ...").
        why: String,
    },
    /// Several processes with the output on standard output (process 0).
    ProcessesNeedOutput,
    /// Records to a sink with output per worker.
    SinkOutputPerWorker,
    /// A shadow output with output per worker (each worker would write
    /// the shadow records of its own keys: one shadow file is not built
    /// for it).
    ShadowOutputPerWorker,
    /// An audit file with output per worker (a record is written by the
    /// worker that completes it: one audit file is not built for it).
    AuditPerWorker,
}

impl Refusal {
    /// The refusal of a pattern that reads indicators its key does not
    /// fix in a run whose rules can change (`--watch`, `$rules` records):
    /// said so.
    pub(crate) fn under_changes(self) -> Refusal {
        match self {
            Refusal::ListsAndIndicators { pattern, why } => Refusal::ListsAndIndicators {
                pattern,
                why: format!("{why}, in a run whose rules can change (--watch, `$rules` or `$list` records, --source-rules): its engines share the indicator over every event only in a run whose rules stay"),
            },
            other => other,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::ProcessingTime => {
                "`Time::Processing` is not supported with `Scale::workers` or `Scale::processes`"
            }
            Refusal::OutputPerWorkerNeedsOutput => {
                "`Scale::output_per_worker` needs an output file (`Config::output`)"
            }
            Refusal::ListsAndIndicators { pattern, why } => {
                return write!(
                    f,
                    "pattern `{pattern}` {why}: `Scale::workers` and `Scale::processes` do not run it as one engine does yet; run it on one engine"
                );
            }
            Refusal::ProcessesNeedOutput => {
                "`Scale::processes` needs an output file (`Config::output`): timely's networking may print on standard output"
            }
            Refusal::SinkOutputPerWorker => {
                "`Scale::output_per_worker` needs an output file (`Config::output`), not a sink (kafka://...)"
            }
            Refusal::AuditPerWorker => {
                "`Scale::output_per_worker` does not take an audit file (`Config::audit`) yet: run without it"
            }
            Refusal::ShadowOutputPerWorker => {
                "`Scale::output_per_worker` does not take a shadow output (`Config::shadow_output`) yet: run without it"
            }
        })
    }
}

/// Why a run on workers could not start, or stopped on its own.
#[non_exhaustive]
pub enum Error {
    /// An option it does not take (usage).
    Refused(Refusal),
    /// A pattern could not be compiled.
    Pattern {
        /// Its name.
        name: String,
        /// Why.
        source: cepheid_engine::Error,
    },
    /// This process's number is not below the number of processes (usage).
    ProcessNumber {
        /// `process`.
        process: usize,
        /// `processes`.
        processes: usize,
    },
    /// The hostfile cannot be read.
    Hostfile {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of the hostfile is not one `host:port` (usage).
    HostfileLine {
        /// Its path.
        path: PathBuf,
        /// The line's number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The hostfile has fewer addresses than processes (usage).
    Addresses {
        /// Its path.
        path: PathBuf,
        /// Addresses found.
        found: usize,
        /// Processes.
        processes: usize,
    },
    /// An error of the runtime's pieces: opening the input or an output,
    /// creating the checkpoint folder, its locks
    /// ([`cepheid_runtime::Error::is_checkpoint`]: one the command exits
    /// 5 on).
    Runtime(cepheid_runtime::Error),
    /// The unfinished cuts cannot be deleted.
    ClearUnfinished {
        /// The folder.
        folder: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process runs another command (usage): what differs.
    Differ(String),
    /// The workers (or the connections to the other processes) could not
    /// start.
    Start(String),
    /// The connection to another process was lost.
    ConnectionLost {
        /// With checkpoints (the processes go on from the last cut).
        checkpoint: bool,
    },
    /// A worker failed (said when the workers are joined; the first is
    /// the summary's end).
    Worker {
        /// Why (its panic).
        why: String,
        /// Several processes (another may have stopped).
        cluster: bool,
        /// With checkpoints.
        checkpoint: bool,
    },
}

impl Error {
    /// Is it about an option or a layout the run does not take (the
    /// command's usage errors, exit 2)?
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Refused(_)
                | Error::ProcessNumber { .. }
                | Error::HostfileLine { .. }
                | Error::Addresses { .. }
                | Error::Differ(_)
        )
    }

    /// Is it about a checkpoint that cannot be used, or a folder or output
    /// another run holds (exit 5)?
    pub fn is_checkpoint(&self) -> bool {
        match self {
            Error::Runtime(e) => e.is_checkpoint(),
            _ => false,
        }
    }
}

/// The checkpoint in `folder` cannot be resumed by this run: `why`
/// (exit 5; nothing was changed).
pub(super) fn unusable(folder: &Path, why: Unusable) -> Error {
    Error::Runtime(cepheid_runtime::Error::Resume {
        folder: folder.to_path_buf(),
        why,
    })
}

/// How to go on after a lost process.
pub(super) fn hint(checkpoint: bool) -> &'static str {
    if checkpoint {
        ": start every process again with the same `Config::checkpoint`, they go on from its last complete cut"
    } else {
        ": start every process again"
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(why) => write!(f, "{why}"),
            Error::Pattern { name, source } => {
                write!(f, "pattern `{name}`: {}", source.message())
            }
            Error::ProcessNumber { process, processes } => {
                write!(f, "`Scale::process` {process} is not below `Scale::processes` {processes}")
            }
            Error::Hostfile { path, source } => {
                write!(f, "cannot read the hostfile {}: {source}", path.display())
            }
            Error::HostfileLine { path, line, text } => write!(
                f,
                "{}:{line}: one host:port per line, not `{text}`",
                path.display()
            ),
            Error::Addresses {
                path,
                found,
                processes,
            } => write!(
                f,
                "the hostfile {} has {found} addresses for {processes} processes",
                path.display()
            ),
            Error::Runtime(e) => write!(f, "{e}"),
            Error::ClearUnfinished { folder, source } => write!(
                f,
                "cannot clear the unfinished cuts in {}: {source}",
                folder.display()
            ),
            Error::Differ(why) => f.write_str(why),
            Error::Start(why) => write!(f, "cannot start the workers: {why}"),
            Error::ConnectionLost { checkpoint } => write!(
                f,
                "the connection to another process was lost (it stopped, or its machine or the network went away); this process stops too{}",
                hint(*checkpoint)
            ),
            Error::Worker {
                why,
                cluster: true,
                checkpoint,
            } => write!(
                f,
                "a worker failed: {why} (with `Scale::processes`: another process may have stopped){}",
                hint(*checkpoint)
            ),
            Error::Worker { why, .. } => write!(f, "a worker failed: {why}"),
        }
    }
}

/// What `?` in a `main` prints: the message and the causes it does not
/// already say ([`cepheid_core::error::write_report`]), not a struct dump.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cepheid_core::error::write_report(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pattern { source, .. } => Some(source),
            Error::Hostfile { source, .. } | Error::ClearUnfinished { source, .. } => Some(source),
            Error::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

impl From<cepheid_runtime::Error> for Error {
    fn from(e: cepheid_runtime::Error) -> Error {
        Error::Runtime(e)
    }
}

impl cepheid_runtime::ClusterError for Error {
    fn is_usage(&self) -> bool {
        Error::is_usage(self)
    }

    fn is_checkpoint(&self) -> bool {
        Error::is_checkpoint(self)
    }
}

/// The runtime's error: its own as they were, a pattern's as one engine
/// says it, the rest the cluster's ([`cepheid_runtime::Error::Cluster`]).
impl From<Error> for cepheid_runtime::Error {
    fn from(e: Error) -> cepheid_runtime::Error {
        match e {
            Error::Runtime(e) => e,
            Error::Pattern { name, source } => cepheid_runtime::Error::Pattern { name, source },
            e => cepheid_runtime::Error::Cluster(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's messages name its settings (`Config::watch`,
    /// `Scale::workers`), never the command's flags: the command maps
    /// them (`in_flags` in the binary).
    #[test]
    fn messages_speak_the_library_words_not_the_flags() {
        let refusals = [
            Refusal::ProcessingTime,
            Refusal::OutputPerWorkerNeedsOutput,
            Refusal::ListsAndIndicators {
                pattern: "p".into(),
                why: "reads indicator `x`".into(),
            },
            Refusal::ProcessesNeedOutput,
            Refusal::SinkOutputPerWorker,
        ];
        let mismatches = [
            Unusable::ChunkBytes,
            Unusable::OutputPerWorker { then: true },
            Unusable::Workers {
                then: 2,
                now: 3,
                follow: false,
            },
            Unusable::Workers {
                then: 2,
                now: 3,
                follow: true,
            },
            Unusable::OneEngine("why".into()),
        ];
        let errors = [
            Error::ProcessNumber {
                process: 2,
                processes: 2,
            },
            Error::ConnectionLost { checkpoint: true },
            Error::Worker {
                why: "why".into(),
                cluster: true,
                checkpoint: true,
            },
        ];
        for refusal in &refusals {
            // (each names the settings it refuses)
            assert!(
                refusal.to_string().contains("`"),
                "no setting in: {refusal}"
            );
        }
        let texts = (refusals.iter().map(ToString::to_string))
            .chain(mismatches.iter().map(ToString::to_string))
            .chain(errors.iter().map(ToString::to_string));
        for text in texts {
            assert!(!text.contains("--"), "a flag in: {text}");
        }
    }
}
