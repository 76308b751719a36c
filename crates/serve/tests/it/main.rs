//! The log's integration tests: one binary, a module per subject: entries
//! of every kind read back byte for byte (`round_trip`), concurrent
//! appends and the consumer (`concurrent`), torn tails and damage
//! (`torn`), reopening, stamps and the queue (`reopen`), segments,
//! readers and retention (`segments`), random crash points (`crash`), a
//! full disk for real (`disk_full`), `kill -9` under load (`kill`).

mod support;

mod concurrent;
mod crash;
mod disk_full;
mod kill;
mod reopen;
mod round_trip;
mod segments;
mod torn;
