//! A transactional sink in memory, for the runtime's tests and (by path)
//! the dataflow crate's: the same double on both executors.

use std::sync::{Arc, Mutex};

use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::Position;

/// A transactional sink in memory: what a commit takes is what was written
/// since the commit before; the commit of one checkpoint number can be
/// made to fail once (a crash between the snapshot and the commit: both
/// checkpoints kept); `recover` finds the kept checkpoint it committed
/// last, by number and position, as a Kafka sink does from its broker.
#[derive(Clone, Default)]
pub struct Txn(pub Arc<Mutex<TxnState>>);

#[derive(Default)]
pub struct TxnState {
    /// The records of the transaction open now.
    pub open: Vec<String>,
    /// The committed records, and the last committed checkpoint.
    pub records: Vec<String>,
    pub committed: Option<(u64, Position)>,
    /// The checkpoint whose commit fails, once.
    pub fail_at: Option<u64>,
    /// Does it deliver only what checkpoints commit
    /// (`Sink::commits_with_checkpoints`)?
    pub with_checkpoints: bool,
    /// Does it take decisions (`Sink::takes_decisions`)?
    pub decisions: bool,
}

impl Sink for Txn {
    fn describe(&self, _kind: Kind) -> String {
        "txn".to_string()
    }

    fn write(&mut self, _kind: Kind, _key: &[u8], record: &[u8]) -> Result<(), SinkError> {
        let text = String::from_utf8(record.to_vec()).unwrap();
        self.0.lock().unwrap().open.push(text);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _checkpoint: u64) -> Result<SinkState, SinkError> {
        Ok(SinkState::default())
    }

    fn commit(&mut self, checkpoint: u64, source: &Position) -> Result<(), SinkError> {
        let mut state = self.0.lock().unwrap();
        if state.fail_at == Some(checkpoint) {
            state.fail_at = None;
            return Err(SinkError {
                target: "txn".to_string(),
                late: false,
                source: std::io::Error::other("the commit did not happen (a crash)"),
            });
        }
        let open = std::mem::take(&mut state.open);
        state.records.extend(open);
        state.committed = Some((checkpoint, source.clone()));
        Ok(())
    }

    fn commits_at_end(&self) -> bool {
        true
    }

    fn commits_with_checkpoints(&self) -> bool {
        self.0.lock().unwrap().with_checkpoints
    }

    fn takes_decisions(&self) -> bool {
        self.0.lock().unwrap().decisions
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        let mut state = self.0.lock().unwrap();
        state.open.clear();
        let Some((number, position)) = state.committed.clone() else {
            return Ok(kept.len());
        };
        let found = kept
            .iter()
            .position(|k| k.number == number && k.source == position);
        found.ok_or_else(|| SinkError {
            target: "txn".to_string(),
            late: false,
            source: std::io::Error::other(format!(
                "committed checkpoint {number} is none of the kept ones {:?}",
                kept.iter().map(|k| k.number).collect::<Vec<_>>()
            )),
        })
    }
}

impl Txn {
    /// One that delivers only what checkpoints commit, as a Kafka sink.
    pub fn with_checkpoints() -> Txn {
        let txn = Txn::default();
        txn.0.lock().unwrap().with_checkpoints = true;
        txn
    }

    /// The committed records.
    pub fn committed(&self) -> Vec<String> {
        self.0.lock().unwrap().records.clone()
    }
}
