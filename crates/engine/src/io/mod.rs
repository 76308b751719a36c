//! The input/output formats layer: events in, records out, as `cepheid run`
//! reads and writes them.
//!
//! - **lines**: [`LineReader`] reads any [`std::io::Read`] in large chunks
//!   and hands out numbered lines, at most [`MAX_LINE_BYTES`] each;
//! - **decoding**: [`Decoder`] turns a line of JSON lines or CSV
//!   ([`Format`]) into an [`Item`] (an event with its time, a `$watermark`,
//!   nothing) or an [`ErrorKind::Input`](crate::ErrorKind::Input) error;
//!   event times are integer milliseconds or RFC 3339 ([`parse_rfc3339`]);
//!   records hold the fields of a [`FieldTable`](crate::record::FieldTable)
//!   handle shared with the engine;
//! - **the loop**: [`Items`] is both, over a whole input;
//! - **output**: [`JsonLines`] writes matches, timeouts and late events as
//!   the JSON lines of `cepheid run`;
//! - **JSON values**: [`value_from_json`], [`value_to_json`],
//!   [`record_from_json`] convert between `serde_json` and
//!   [`Value`](crate::Value) / [`Record`](crate::Record), which know
//!   nothing of JSON themselves.
//!
//! ```
//! use cepheid_engine::engine::{Engine, Output};
//! use cepheid_engine::io::{Decoder, Format, Item, Items};
//! use cepheid_core::record::FieldTable;
//! use cepheid_engine::Record;
//!
//! let loaded = cepheid_engine::rules::load_str("p.cep", r#"
//!     pattern two_fails {
//!         partition by user
//!         match a followed by b
//!         where
//!             a: ok == false
//!             b: ok == false
//!     }"#);
//! let mut engine: Engine<Record> = Engine::new();
//! engine.add(&loaded.patterns[0]).unwrap();
//!
//! let csv = "ts,user,ok\n1,u1,false\n2,u1,false\n";
//! let decoder = Decoder::new(Format::Csv, "ts", engine.fields().clone());
//! let mut out: Vec<Output<Record>> = Vec::new();
//! for (_line, item) in Items::new("logins.csv", csv.as_bytes(), decoder) {
//!     match item.unwrap() {
//!         Item::Event(ts, record) => {
//!             engine.push(ts, record, &mut out);
//!         }
//!         Item::Watermark(t) => engine.watermark(t, &mut out),
//!         Item::Skip => {}
//!     }
//! }
//! engine.finish(&mut out);
//! assert_eq!(engine.stats().matches, 1);
//! ```

mod csv;
mod decode;
mod items;
use cepheid_core::json;
#[cfg(test)]
mod json_tests;
mod jsonl;
mod lines;
mod rfc3339;
mod seen;

pub use decode::{Decoder, Format, Item};
pub use items::Items;
pub use json::{record_from_json, value_from_json, value_to_json};
pub use jsonl::{Formatter, JsonLines, Target, WriteError};
pub use lines::{Line, LineReader, MAX_LINE_BYTES};
pub use rfc3339::{format_rfc3339, parse_rfc3339, TimeError, TimeProblem};
pub use seen::FieldsSeen;
