//! # cepheid-decode: events from bytes
//!
//! The input side of cepheid: lines of JSON lines or CSV, as `cepheid run`
//! reads them, decoded into the [`Record`](cepheid_core::Record)s the
//! engine matches. It depends on `cepheid-core` alone: the engine
//! (`cepheid-engine`, for `Engine::push_json`), the run (`cepheid-runtime`)
//! and the command depend on it, never the other way.
//!
//! - **lines**: [`LineReader`] reads any [`std::io::Read`] in large chunks
//!   and hands out numbered lines, at most [`MAX_LINE_BYTES`] each;
//! - **decoding**: [`Decoder`] turns a line of JSON lines or CSV
//!   ([`Format`]) into an [`Item`] (an event with its time, a `$watermark`,
//!   nothing) or an [`ErrorKind::Input`](cepheid_core::ErrorKind::Input)
//!   error; event times are integer milliseconds or RFC 3339
//!   ([`parse_rfc3339`]); records hold the fields of a
//!   [`FieldTable`](cepheid_core::record::FieldTable) handle shared with
//!   the engine (its `fields()`);
//! - **the loop**: [`Items`] is both, over a whole input;
//! - **the fields seen**: [`FieldsSeen`], what the decoded events carried
//!   (for the warning about fields the rules read and no event has:
//!   `cepheid_runtime::FieldWatch`);
//! - **JSON values**: [`value_from_json`], [`value_to_json`],
//!   [`record_from_json`] convert between `serde_json` and
//!   [`Value`](cepheid_core::Value) / [`Record`](cepheid_core::Record),
//!   which know nothing of JSON themselves (they are `cepheid_core::json`'s).
//!
//! The records `cepheid run` writes (matches, timeouts, late events as JSON
//! lines) are formatted above the engine, by `cepheid_runtime::jsonl`.
//!
//! ```
//! use cepheid_core::record::FieldTable;
//! use cepheid_core::{Event, FieldPath, Value};
//! use cepheid_decode::{Decoder, Format, Item, Items};
//!
//! // The fields to keep: an engine's `fields()` (those its patterns read).
//! let table = FieldTable::new();
//! let user = table.intern(&FieldPath::single("user"));
//! let csv = "ts,user,ok\n1,u1,false\n2,u2,true\n";
//! let decoder = Decoder::new(Format::Csv, "ts", table);
//! let mut users = Vec::new();
//! for (_line, item) in Items::new("logins.csv", csv.as_bytes(), decoder) {
//!     match item? {
//!         Item::Event(ts, record) => users.push((ts, record.field(user).to_owned())),
//!         Item::Watermark(_) | Item::Skip => {}
//!     }
//! }
//! assert_eq!(users, [(1, Value::from("u1")), (2, Value::from("u2"))]);
//! # Ok::<(), cepheid_core::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod csv;
mod decode;
mod items;
use cepheid_core::json;
#[cfg(test)]
mod json_tests;
mod lines;
mod rfc3339;
mod seen;

pub use decode::{Decoder, Format, Item};
pub use items::Items;
pub use json::{record_from_json, value_from_json, value_to_json};
pub use lines::{Line, LineReader, MAX_LINE_BYTES};
pub use rfc3339::{format_rfc3339, parse_rfc3339, TimeError, TimeProblem};
pub use seen::FieldsSeen;
