//! Writing JSON text by hand where it is hot (output records, CSV rows as
//! JSON): the same bytes `serde_json` writes, without building its values.

use crate::io::json::value_to_json;
use crate::value::Value;

/// Appends `text` as a JSON string, escaped exactly as `serde_json` does
/// (which it does itself when there is anything to escape).
pub(crate) fn push_json_string(line: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
        line.extend_from_slice(serde_json::Value::from(text).to_string().as_bytes());
        return;
    }
    line.push(b'"');
    line.extend_from_slice(text.as_bytes());
    line.push(b'"');
}

/// Appends a value as JSON, as [`value_to_json`] and `serde_json` print it.
pub(crate) fn push_json_value(line: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => line.extend_from_slice(b"null"),
        Value::Bool(true) => line.extend_from_slice(b"true"),
        Value::Bool(false) => line.extend_from_slice(b"false"),
        Value::Int(i) => push_int(line, *i),
        Value::Str(s) => push_json_string(line, s),
        Value::Float(_) | Value::List(_) => {
            line.extend_from_slice(value_to_json(value).to_string().as_bytes());
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
pub(crate) fn push_int(line: &mut Vec<u8>, n: i64) {
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
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-3),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::from("plain é ✓"),
            Value::from("q\"b\\n\n t\t c\u{1}\u{7f}"),
            Value::List(vec![Value::Int(1), Value::from("x")].into()),
        ];
        for value in values {
            let mut line = Vec::new();
            push_json_value(&mut line, &value);
            assert_eq!(
                String::from_utf8(line).unwrap(),
                value_to_json(&value).to_string(),
                "{value:?}"
            );
        }
    }
}
