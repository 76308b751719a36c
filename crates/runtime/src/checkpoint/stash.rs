//! A worker's stash at a cut ([`Part::Stash`](super::Part::Stash)): the
//! events sent below the cut not yet given to an engine, each with its
//! group of patterns, its time, source, place and name. The executor
//! writes it ([`encode_stash`]); the runtime reads it too when it makes a
//! cut of workers one engine's (`one_engine.rs`). And an event's place,
//! which names its decisions ([`placed`]).

use std::sync::Arc;

use cepheid_engine::{Timestamp, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The group of a stashed event that a router held (a plan whose rules
/// can change routes an event once the changes before its time are
/// known): not routed yet, it goes to a router again on resuming.
pub const HELD: u32 = u32::MAX;

/// A stashed event: its group, `(ts, source, offset, event)`, its name.
pub type Stashed<E> = (u32, (Timestamp, u32, u64, E), Option<Arc<str>>);

/// A stashed event as [`encode_stash`] is given it: its group, `(ts,
/// source, offset, event)`, its name.
pub type Stashing<'a, E> = (u32, (Timestamp, u32, u64, &'a E), Option<&'a str>);

/// A stash's events as kept: each with its group, as `(ts, source,
/// offset, event)`.
type Kept<E> = Vec<(u32, (Timestamp, u32, u64, E))>;

/// The stash's events, encoded: each with its group, as `(ts, source,
/// offset, event)` (the layout of an event before it had a name: a stash
/// of an older build reads), then, when any has a name, the names by
/// index in the events. (Postcard reads a value from the start of its
/// bytes and leaves the rest: a build before the names reads such a
/// stash too.)
pub fn encode_stash<E: Serialize>(events: &[Stashing<'_, E>]) -> Result<Vec<u8>, postcard::Error> {
    let kept: Kept<&E> = events.iter().map(|(g, event, _)| (*g, *event)).collect();
    let mut bytes = postcard::to_allocvec(&kept)?;
    let names: Vec<(u32, &str)> = (events.iter().enumerate())
        .filter_map(|(i, (_, _, name))| Some((u32::try_from(i).ok()?, (*name)?)))
        .collect();
    if !names.is_empty() {
        bytes.extend(postcard::to_allocvec(&names)?);
    }
    Ok(bytes)
}

/// The stash's events as [`encode_stash`] wrote them (or a build before
/// their names).
pub fn decode_stash<E: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<Stashed<E>>, postcard::Error> {
    let (kept, rest): (Kept<E>, _) = postcard::take_from_bytes(bytes)?;
    let mut stash: Vec<Stashed<E>> = (kept.into_iter())
        .map(|(g, event)| (g, event, None))
        .collect();
    if !rest.is_empty() {
        let names: Vec<(u32, String)> = postcard::from_bytes(rest)?;
        for (i, name) in names {
            let (_, _, named) =
                (stash.get_mut(i as usize)).ok_or(postcard::Error::DeserializeBadEncoding)?;
            *named = Some(Arc::from(name));
        }
    }
    Ok(stash)
}

/// The place of an event of source `source` at `offset`, with its name
/// when its source gives it one (a Kafka record's): [`place_of`], or a
/// list of the two numbers and the name ([`place_name`]). The dataflow's
/// `Stamped::place`.
#[inline]
pub fn placed(source: u32, offset: u64, name: Option<&Arc<str>>) -> Value {
    match name {
        None => place_of(source, offset),
        Some(name) => Value::List(Arc::from([
            Value::Int(i64::from(source)),
            Value::Int(offset as i64),
            Value::Str(Arc::clone(name)),
        ])),
    }
}

/// The place of an event (`Stamped::source`, `Stamped::offset`) as its
/// engines are given it when decisions are gathered
/// (the dataflow's `Plan::gathering_decisions`): the offset (its bits) for the first
/// input, the usual one, which costs no allocation; else a list of the
/// two numbers. A decision's [`place`](cepheid_engine::Decision::place)
/// says which event it is of; [`place_parts`] reads it back.
///
/// ```
/// use cepheid_runtime::checkpoint::{place_of, place_parts};
/// for (source, offset) in [(0, 7), (0, u64::MAX), (2, 1 << 40)] {
///     assert_eq!(place_parts(&place_of(source, offset)), Some((source, offset)));
/// }
/// ```
#[inline]
pub fn place_of(source: u32, offset: u64) -> Value {
    match source {
        0 => Value::Int(offset as i64),
        _ => Value::List(Arc::from([
            Value::Int(i64::from(source)),
            Value::Int(offset as i64),
        ])),
    }
}

/// The source and offset of a place made by [`place_of`] or
/// [`placed`].
pub fn place_parts(place: &Value) -> Option<(u32, u64)> {
    match place {
        Value::Int(offset) => Some((0, *offset as u64)),
        Value::List(items) => match &items[..] {
            [Value::Int(source), Value::Int(offset)]
            | [Value::Int(source), Value::Int(offset), Value::Str(_)] => {
                Some((u32::try_from(*source).ok()?, *offset as u64))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The name of the event of a place made by [`placed`], if it has one.
///
/// ```
/// use cepheid_runtime::checkpoint::{place_name, place_parts, placed};
/// assert_eq!(place_name(&placed(0, 9, None)), None);
/// let name = "kafka:orders partition 2 offset 17".into();
/// let place = placed(0, 9, Some(&name));
/// assert_eq!(place_parts(&place), Some((0, 9)));
/// assert_eq!(place_name(&place).map(|n| &**n), Some("kafka:orders partition 2 offset 17"));
/// ```
pub fn place_name(place: &Value) -> Option<&Arc<str>> {
    match place {
        Value::List(items) => match &items[..] {
            [Value::Int(_), Value::Int(_), Value::Str(name)] => Some(name),
            _ => None,
        },
        _ => None,
    }
}
