//! The key groups of a cut: the stable hash of a partition key, whose top
//! 32 bits are its key group. A worker's piece holds its engines by range
//! of key groups ([`EngineState`](super::EngineState)), so the hash is
//! the cut's format as much as the executor's routing: the same in every
//! process, build and platform. The runtime reads it when it makes a cut
//! of workers one engine's (`one_engine.rs`: whose indicator entries an
//! engine's are); the dataflow routes by it.

use cepheid_engine::Value;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The seed of [`key_hash`]: fixed, so every process and every run agrees.
const SEED: u64 = 0x6365_7068_6569_6421;

/// The stable hash of a partition key (its values as the engine normalizes
/// them: `1.0` is the key `1`): XXH3 with a fixed seed over a canonical
/// byte encoding of the values (a kind byte, then little-endian numbers,
/// length-prefixed strings and lists). The same in every process, build and
/// platform. Its top 32 bits are the key's *key group*; the key groups
/// are dealt to the workers in ranges of (nearly) equal size, so that
/// the dataflow's `cep` sends a key to worker
/// `(key_hash(key) >> 32) * workers >> 32`: with another number of workers
/// each worker's range of key groups is cut in few ranges, which is how a
/// checkpoint resumes on another layout (`WorkerCut::rescale`).
///
/// ```
/// use cepheid_runtime::checkpoint::key_hash;
/// use cepheid_engine::Value;
/// assert_eq!(key_hash(&[Value::from("u1")]), key_hash(&[Value::from("u1")]));
/// assert_ne!(key_hash(&[Value::from(1)]), key_hash(&[Value::from("1")]));
/// ```
#[inline]
pub fn key_hash(key: &[Value]) -> u64 {
    let mut bytes = Vec::with_capacity(32);
    encode_key(key, &mut bytes);
    xxh3_64_with_seed(&bytes, SEED)
}

/// The key group of a key whose hash is `hash` (see [`key_hash`]).
#[inline]
fn key_group_of_hash(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The key group of a key whose canonical bytes ([`encode_key`]) are
/// `bytes`.
#[inline]
pub fn key_group_of_bytes(bytes: &[u8]) -> u32 {
    key_group_of_hash(xxh3_64_with_seed(bytes, SEED))
}

/// The key group of a key as the engine keeps it (the values of its
/// `partition by`, as [`MatchRef::key`](cepheid_engine::engine::MatchRef::key)
/// gives them): the top 32 bits of its [`key_hash`]; a key of a pattern
/// without `partition by` (the empty key) is in key group 0, which worker
/// 0 owns (`cepheid_dataflow::group_worker` says which worker owns it).
///
/// ```
/// use cepheid_runtime::checkpoint::key_group;
/// use cepheid_engine::Value;
/// let kg = key_group(&[Value::from("u1")]);
/// assert_eq!(kg, key_group(&[Value::from("u1")]));
/// assert_eq!(key_group(&[]), 0);
/// ```
pub fn key_group(key: &[Value]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    key_group_of_hash(key_hash(key))
}

/// Writes the canonical bytes of a key (see [`key_hash`]) to `out`.
#[inline]
pub fn encode_key(key: &[Value], out: &mut Vec<u8>) {
    for value in key {
        encode_value(value, out);
    }
}

/// Writes the canonical bytes of one value of a key (see [`key_hash`]).
#[inline]
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Str(text) => {
            out.push(4);
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Value::List(items) => {
            out.push(5);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items.iter() {
                encode_value(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed() {
        // The same value in every build: a change here moves keys between
        // workers of a cluster whose processes run different builds, and
        // the key groups of a cut's engines.
        assert_eq!(key_hash(&[Value::Int(1)]), key_hash(&[Value::Int(1)]));
        let mut bytes = Vec::new();
        encode_key(&[Value::Int(1), Value::from("ab")], &mut bytes);
        assert_eq!(
            bytes,
            [2, 1, 0, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']
        );
        assert_eq!(xxh3_64_with_seed(b"", 0), 0x2d06_8005_38d3_94c2);
        assert_eq!(
            key_group_of_bytes(&bytes),
            key_group(&[Value::Int(1), Value::from("ab")])
        );
    }
}
