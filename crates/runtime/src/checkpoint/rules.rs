//! The rules a worker ran at a cut ([`Part::Rules`] of its piece): read
//! and written here, by the runtime, which decides with them what a
//! resumed run goes on with (`resume.rs`, `lists.rs`); the executor keeps
//! them at each cut and restores its routers and engines from them.

use cepheid_engine::{Error, ErrorKind, FieldPath};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Part, Piece};
use crate::executor::Change;

/// One group of patterns of a cut: its `partition by` (`None`: a group
/// keyed by a function of its own, which no later pattern joins) and the
/// names of its patterns in force (none: the group is out of force), as
/// the executor's routers lay them out.
pub type Group = (Option<Vec<FieldPath>>, Vec<String>);

/// The rules a worker ran at a cut ([`Part::Rules`]): the groups of
/// patterns in force, and after a change of rules the patterns' names in
/// force (its engines' snapshots hold their rules: they are restored with
/// them, not the plan's), the process's field table, the changes sent
/// below the cut and not made yet, and what was counted of changes: made
/// and refused by the executor (the same on every worker), refused and
/// late by the worker's readers.
///
/// In postcard, its groups are written as the executor's layout of them
/// (a struct of one field is that field): cuts of earlier builds read
/// unchanged, and new cuts are the same bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CutRules {
    /// The groups of patterns in force (the executor's layout).
    pub groups: Vec<Group>,
    /// After a change of rules, the names of the patterns in force.
    pub in_force: Option<Vec<String>>,
    /// Did a change alter the rules (then a resumed run says it goes on
    /// with the checkpoint's)?
    pub changed: bool,
    /// The fields the worker's process had numbered, in order.
    pub fields: Vec<FieldPath>,
    /// The changes sent below the cut and not made yet, in order.
    pub pending: Vec<Change>,
    /// Changes made and refused by the executor.
    pub made: [u64; 2],
    /// Changes refused and late by the worker's readers.
    pub read: [u64; 2],
    /// Could the rules change (then a run that resumes the cut routes
    /// with a plan whose rules can)?
    pub changing: bool,
}

impl CutRules {
    /// The rules kept in `piece` (none in a cut of before them).
    pub fn of(piece: &Piece) -> Result<Option<CutRules>, Error> {
        let rules = piece.get(Part::Rules).map(postcard::from_bytes);
        rules.transpose().map_err(|e| {
            Error::new(
                ErrorKind::Snapshot,
                format!("not a worker's state at a cut: {e}"),
            )
        })
    }

    /// Keeps them in `piece`.
    pub fn put(&self, piece: &mut Piece) -> Result<(), Error> {
        let bytes = postcard::to_allocvec(self)
            .map_err(|e| Error::new(ErrorKind::Snapshot, format!("cannot save the rules: {e}")))?;
        piece.set(Part::Rules, bytes);
        Ok(())
    }

    /// Are they not the plan's (a change was made)?
    pub fn changed_plan(&self) -> bool {
        self.in_force.is_some()
    }
}
