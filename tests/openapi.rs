//! The decision service's API document (issue 63), `docs/api/openapi.yaml`,
//! written before the server as the SDK's contract: it is valid OpenAPI
//! 3.1 (openapi-spec-validator), every example of a request and of an
//! answer validates against its schema, and the schemas are closed
//! (`tests/openapi/check.py`). The validators come from PyPI into a
//! virtual environment of their own (`.ci/install-openapi-validator`).
//! Once `cepheid serve` exists, its tests check its routes and answers
//! against the same document.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::scratch;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The python of the validators' environment (installed when missing).
pub fn python() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join(".ci/install-openapi-validator"))
        .output()
        .expect("runs .ci/install-openapi-validator");
    assert!(
        out.status.success(),
        "cannot install the validators: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("its python").trim())
}

fn check(python: &Path, document: &Path) -> std::process::Output {
    Command::new(python)
        .arg(root().join("tests/openapi/check.py"))
        .arg(document)
        .output()
        .expect("runs check.py")
}

#[test]
fn the_api_document_is_valid_openapi_and_its_examples_fit_their_schemas() {
    let python = python();
    let document = root().join("docs/api/openapi.yaml");
    let out = check(&python, &document);
    let said = String::from_utf8_lossy(&out.stdout);
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}{why}");
    assert!(said.starts_with("valid OpenAPI 3.1"), "{said}");
    for route in [
        "POST /v1/decide request",
        "POST /v1/decide 200",
        "POST /v1/events request",
        "GET /v1/scenes 200",
    ] {
        assert!(
            said.contains(&format!("ok: {route} example")),
            "{route}: {said}"
        );
    }

    // The check fails on an example its schema refuses (a score that is
    // no number), and on a document that is no OpenAPI (a route without
    // its answers).
    let text = std::fs::read_to_string(&document).unwrap();
    let dir = scratch("openapi");
    let bad_example = dir.join("bad-example.yaml");
    let score = "                    score: 70\n";
    assert!(text.contains(score));
    std::fs::write(
        &bad_example,
        text.replacen(score, "                    score: seventy\n", 1),
    )
    .unwrap();
    let out = check(&python, &bad_example);
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(why.contains("'seventy' is not of type 'number'"), "{why}");
    let bad_document = dir.join("bad-document.yaml");
    let responses = "      responses:\n        \"200\":\n          description: Up.\n";
    assert!(text.contains(responses));
    std::fs::write(&bad_document, text.replacen(responses, "", 1)).unwrap();
    let out = check(&python, &bad_document);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
