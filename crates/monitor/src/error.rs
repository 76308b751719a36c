//! The monitor's error type.

use std::fmt;

/// What can go wrong in the monitor.
#[non_exhaustive]
pub enum MonitorError {
    /// The address to serve on did not resolve.
    Resolve {
        /// The address as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server could not listen on the address (in use, not ours, no
    /// permission).
    Bind {
        /// The address as given.
        addr: String,
        /// Why (from the HTTP server).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value that should have been JSON was not (a recent record, a
    /// graph).
    Json(serde_json::Error),
    /// The Prometheus text could not be written.
    Encode(fmt::Error),
    /// A thread of the server panicked (the server stopped; the run is
    /// unaffected).
    ServerPanicked,
}

impl fmt::Display for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorError::Resolve { addr, source } => {
                write!(f, "cannot resolve the monitor's address {addr}: {source}")
            }
            MonitorError::Bind { addr, source } => {
                write!(f, "cannot serve the monitor on {addr}: {source}")
            }
            MonitorError::Json(e) => write!(f, "not JSON: {e}"),
            MonitorError::Encode(_) => write!(f, "cannot write the Prometheus text"),
            MonitorError::ServerPanicked => write!(f, "the monitor's HTTP server panicked"),
        }
    }
}

/// What `?` in a `main` prints: the message and the causes it does not
/// already say ([`cepheid_core::error::write_report`]), not a struct dump.
impl fmt::Debug for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        cepheid_core::error::write_report(self, f)
    }
}

impl std::error::Error for MonitorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MonitorError::Resolve { source, .. } => Some(source),
            MonitorError::Bind { source, .. } => Some(source.as_ref()),
            MonitorError::Json(e) => Some(e),
            MonitorError::Encode(e) => Some(e),
            MonitorError::ServerPanicked => None,
        }
    }
}
