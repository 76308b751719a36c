//! What the runtime's tests share.

use std::path::PathBuf;

/// Two events of types `a` then `b` of one key `k` match.
pub const RULES: &str = r#"pattern ab {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

/// An empty folder of this test process named after `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cepheid-runtime-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
