//! Where the tests find the contract: `../shared`, the folder beside the
//! repository that CI provides (spec, Flink conformance cases, oracle).

use std::path::PathBuf;

/// The path of `rel` inside `../shared`; a test that needs it fails with a
/// message that says what is missing and where it was looked for.
pub fn path(rel: &str) -> PathBuf {
    let path = crate::root().join("../shared").join(rel);
    assert!(
        path.exists(),
        "this test reads `{rel}` from the contract folder `../shared`, which CI places \
         beside the repository; it is missing here ({}). Put the `shared` folder beside \
         the repository and run the tests again.",
        path.display()
    );
    path
}
