//! The JSON text of values, written by hand where it is hot (output
//! records, CSV rows as JSON, [`Value`]'s `Display`): the same bytes
//! `serde_json` writes, without building its values. `serde_json` only
//! encodes the rare parts (strings that need escaping, floats), so the
//! escaping and the float digits are exactly its own.

use super::Value;

/// Appends `text` as a JSON string, escaped exactly as `serde_json` does
/// (which it does itself when there is anything to escape).
pub fn push_json_string(line: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
        // Writing a `str` into a `Vec<u8>` cannot fail.
        let _ = serde_json::to_writer(&mut *line, text);
        return;
    }
    line.push(b'"');
    line.extend_from_slice(text.as_bytes());
    line.push(b'"');
}

/// Appends a value as JSON: `null`, `true`, `3`, `1.5` (a non-finite float
/// is `null`), `"a"`, `[1,"x"]`, as `serde_json` prints it.
pub fn push_json_value(line: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => line.extend_from_slice(b"null"),
        Value::Bool(true) => line.extend_from_slice(b"true"),
        Value::Bool(false) => line.extend_from_slice(b"false"),
        Value::Int(i) => push_int(line, *i),
        Value::Str(s) => push_json_string(line, s),
        // Writing an `f64` into a `Vec<u8>` cannot fail (`null` when not finite).
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *line, f);
        }
        Value::List(items) => {
            line.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_json_value(line, item);
            }
            line.push(b']');
        }
    }
}

/// The decimal digits of 0 to 99, two bytes each.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends an integer in decimal (two digits per step).
pub fn push_int(line: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    if n < 0 {
        line.push(b'-');
    }
    line.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_json_agrees_with_serde() {
        for n in [
            0,
            7,
            -7,
            10,
            99,
            -100,
            1_714_521_600_000,
            i64::MAX,
            i64::MIN,
        ] {
            let mut line = Vec::new();
            push_int(&mut line, n);
            assert_eq!(line, n.to_string().into_bytes());
        }
        let cases: [(Value, serde_json::Value); 11] = [
            (Value::Null, serde_json::Value::Null),
            (Value::Bool(true), true.into()),
            (Value::Bool(false), false.into()),
            (Value::Int(-3), (-3).into()),
            (Value::Float(1.5), 1.5.into()),
            (Value::Float(1e300), 1e300.into()),
            (Value::Float(f64::NAN), serde_json::Value::Null),
            (Value::Float(f64::NEG_INFINITY), serde_json::Value::Null),
            (Value::from("plain é ✓"), "plain é ✓".into()),
            (
                Value::from("q\"b\\n\n t\t c\u{1}\u{7f}"),
                "q\"b\\n\n t\t c\u{1}\u{7f}".into(),
            ),
            (
                Value::List(
                    vec![Value::Int(1), Value::from("x"), Value::List(vec![].into())].into(),
                ),
                serde_json::json!([1, "x", []]),
            ),
        ];
        for (value, json) in cases {
            let mut line = Vec::new();
            push_json_value(&mut line, &value);
            assert_eq!(
                String::from_utf8(line).unwrap(),
                json.to_string(),
                "{value:?}"
            );
            assert_eq!(value.to_string(), json.to_string(), "{value:?}");
        }
    }
}
