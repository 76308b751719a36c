//! `default-features = false` gives the library without the crates only the
//! command line needs (the `cli` feature: `clap`, `indicatif`,
//! `annotate-snippets`, `notify`, `signal-hook`, `mimalloc`): with the other default features (`derive`) kept,
//! the library's normal dependencies are then exactly what its other direct
//! dependencies bring, nothing reached only through the CLI crates. Runs
//! `cargo tree` offline on the lock file (no network).

use std::collections::BTreeSet;
use std::process::Command;

/// The dependencies of the `cli` feature.
const CLI_CRATES: [&str; 6] = [
    "clap",
    "indicatif",
    "annotate-snippets",
    "notify",
    "signal-hook",
    "mimalloc",
];

/// `cargo tree -e normal -p cepheid` with `extra` flags, as `(depth, "name
/// version")` lines, every subtree printed in full.
fn tree(extra: &[&str]) -> Vec<(usize, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "--manifest-path", manifest])
        .args([
            "-e",
            "normal",
            "-p",
            "cepheid",
            "--prefix",
            "depth",
            "--no-dedupe",
        ])
        .args(extra)
        .output()
        .expect("runs cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            let depth = line[..digits].parse().expect("depth prefix");
            let mut words = line[digits..].split_whitespace();
            let name = words.next().expect("name");
            let version = words.next().expect("version");
            (depth, format!("{name} {version}"))
        })
        .collect()
}

fn name(package: &str) -> &str {
    package.split(' ').next().unwrap_or_default()
}

#[test]
fn no_default_features_leaves_out_the_cli_crates() {
    let full = tree(&[]);
    // Every default feature but `cli`.
    let lean: BTreeSet<String> = tree(&["--no-default-features", "--features", "derive"])
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    // What the full tree holds outside the subtrees of the CLI crates.
    let mut expected = BTreeSet::new();
    let mut skipping = false;
    for (depth, package) in &full {
        if *depth == 1 {
            skipping = CLI_CRATES.contains(&name(package));
        }
        if !skipping {
            expected.insert(package.clone());
        }
    }
    let direct: Vec<&str> = full
        .iter()
        .filter(|(d, _)| *d == 1)
        .map(|(_, p)| name(p))
        .collect();
    for cli in CLI_CRATES {
        assert!(
            direct.contains(&cli),
            "{cli} is not a dependency: {direct:?}"
        );
        assert!(
            !lean.iter().any(|p| name(p) == cli),
            "{cli} without the cli feature"
        );
    }
    assert_eq!(
        lean, expected,
        "the lean tree differs from the full tree minus the CLI crates"
    );
}
