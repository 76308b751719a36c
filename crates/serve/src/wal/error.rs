use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong with the log. Cloneable: a failed group hands the same
/// error to each of its entries' completions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WalError {
    /// A system call failed: `what` the log was doing, on `path`.
    Io {
        /// What the log was doing (`writing seqs 5..=9`, `syncing`, ...).
        what: String,
        /// The file or folder.
        path: PathBuf,
        /// The system's error (`ENOSPC`, `EIO`, ...).
        source: Arc<io::Error>,
    },
    /// Bytes that are no valid log where a torn tail cannot be: the
    /// segment file and the byte offset of the frame (or header) at fault.
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// The byte offset in it.
        offset: u64,
        /// What is wrong there.
        what: String,
    },
    /// The append queue is full (`WalOptions::queue_entries` or
    /// `queue_bytes`): nothing was logged, the caller may answer 429/503.
    QueueFull,
    /// The log is closed (or its writer thread is gone): nothing was logged.
    Closed,
    /// The entry cannot be logged (a decision without a scene, fields that
    /// are no JSON object, a payload above `MAX_PAYLOAD`).
    Invalid(String),
    /// A reader asked for a seq whose segment retention deleted.
    Released {
        /// The seq asked for.
        asked: u64,
        /// The first seq the log still holds.
        first_kept: u64,
    },
    /// Another process (or another `Wal`) writes this log.
    Locked(PathBuf),
}

impl WalError {
    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> WalError {
        WalError::Io {
            what: what.into(),
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(
        segment: impl Into<PathBuf>,
        offset: u64,
        what: impl Into<String>,
    ) -> WalError {
        WalError::Corrupt {
            segment: segment.into(),
            offset,
            what: what.into(),
        }
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { what, path, source } => write!(f, "{what} ({}): {source}", path.display()),
            WalError::Corrupt { segment, offset, what } => {
                write!(f, "{}:{offset}: {what}", segment.display())
            }
            WalError::QueueFull => f.write_str("the log's append queue is full"),
            WalError::Closed => f.write_str("the log is closed"),
            WalError::Invalid(why) => write!(f, "an entry that cannot be logged: {why}"),
            WalError::Released { asked, first_kept } => write!(
                f,
                "seq {asked} is no longer in the log: retention released it (the first kept is {first_kept})"
            ),
            WalError::Locked(dir) => write!(f, "{}: another process writes this log", dir.display()),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
