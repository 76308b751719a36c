//! The derives' compile errors: each file of `tests/derive_fail/` fails to
//! compile with the message beside it (`*.stderr`), which names the field
//! and what is supported.
//!
//! (In this crate rather than the command's tests: trybuild checks a
//! project with the dev-dependencies of the crate it runs in, and this
//! one's are the engine and the core, not rdkafka, timely and proptest.)

#[test]
fn compile_errors_name_the_field_and_what_is_supported() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/derive_fail/*.rs");
}
