//! # cepheid-core: the shared vocabulary of cepheid's layers
//!
//! What every layer of [cepheid](https://docs.rs/cepheid-engine) speaks,
//! defined once at the bottom of the workspace:
//!
//! | module | what |
//! |---|---|
//! | [`primitives`] | [`Span`], [`StageId`](primitives::StageId), [`Timestamp`], [`DurationMs`](primitives::DurationMs) |
//! | [`time`] | the one duration grammar (`500ms`, `15m`, `1d`) |
//! | [`value`], [`event`], [`record`] | what conditions read: values, typed or dynamic events, JSON records |
//! | [`expr`] | the expression IR, compiled against an event type and evaluated without allocation |
//! | [`pattern`] | the pattern IR the language and the builder make, and its static checks |
//! | [`scene`] | scenes: which patterns decide an event's one outcome, and how |
//! | [`json`] | JSON values and objects (`serde_json`) as [`Value`]s and [`Record`]s: the rules every JSON input decodes with |
//! | [`error`] | the error type of the layers above |
//! | [`persist`], [`slab`] | the serde of snapshot state and the one slab (for the layers above; no public format) |
//!
//! Most programs use these through `cepheid-engine`, which re-exports what
//! a program needs at its root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod event;
pub mod event_value;
pub mod expr;
pub mod json;
pub mod lookup;
pub mod pattern;
pub mod persist;
pub mod primitives;
pub mod record;
pub mod scene;
pub mod slab;
pub mod time;
pub mod value;

pub use error::{Error, ErrorKind, Excerpt, Inconsistent, Location};
pub use event::{Event, FieldId, FieldPath};
pub use event_value::EventValue;
pub use primitives::{Span, Timestamp};
pub use record::Record;
pub use value::{Value, ValueRef};
