//! The `control` target's input: the first byte the options
//! (`runtime_input::config`), the rest lines (at most 256). A line that
//! starts with `R` is a record of the rules stream (the rest of it),
//! others are records of the events, which may be control records
//! themselves; a line `@T REST` has timestamp T (any `i64`), others the
//! one before + 10 ms (from 0).

use crate::runtime_input::{self, Line};

pub fn run(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let mut time: i64 = 0;
    let mut lines = Vec::new();
    for mut bytes in rest.split(|&b| b == b'\n').take(256) {
        let rules = bytes.first() == Some(&b'R');
        if rules {
            bytes = &bytes[1..];
        }
        time = time.saturating_add(10);
        if let Some(stamped) = bytes.strip_prefix(b"@") {
            let end = stamped
                .iter()
                .position(|&b| b == b' ')
                .unwrap_or(stamped.len());
            if let Some(t) = std::str::from_utf8(&stamped[..end])
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
            {
                time = t;
                bytes = stamped.get(end + 1..).unwrap_or_default();
            }
        }
        lines.push(Line {
            rules,
            time: Some(time),
            bytes: bytes.to_vec(),
        });
    }
    let mut config = runtime_input::config(options);
    // (a rules stream: the source's own, named by the operator)
    config.source_rules = true;
    runtime_input::run(config, lines);
}
