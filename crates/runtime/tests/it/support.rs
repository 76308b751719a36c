//! What the runtime's tests share.

pub use cepheid_testkit::Scratch;

/// Two events of types `a` then `b` of one key `k` match.
pub const RULES: &str = r#"pattern ab {
    partition by k
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}"#;

/// An empty folder of this test process named after `name` (removed when
/// the test ends well).
pub fn scratch(name: &str) -> Scratch {
    Scratch::new(
        std::env::temp_dir().join(format!("cepheid-runtime-{name}-{}", std::process::id())),
    )
}
