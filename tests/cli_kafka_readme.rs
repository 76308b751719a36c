//! The README's Kafka quick start, as written: its commands are taken
//! from README.md and run in order, on a free port instead of 9092, in a
//! folder of the test's own (the repository's `.ci`, `examples` and
//! `patterns` linked there): the shell lines with bash (`$TANSU` set by
//! the README's own first line), `cargo run --release -- ARGS` as this
//! build's `cepheid`, and `cargo run --release --example NAME -- ARGS` as
//! the example's own code (`examples/NAME.rs`, a module of this binary:
//! a test cannot run cargo, whose lock the test run holds). The alerts it
//! prints must be what the README says: the lines of the file run of the
//! sample, as many as it says.

use crate::common::{cepheid, free_port, scratch};
use crate::{kafka_consume, kafka_produce};

use std::fs;
use std::path::Path;
use std::process::Command;

/// The quick start's commands: the `sh` block after "A quick start with
/// the broker", each with its continued lines joined (a `\` at the end,
/// or the lines of a `for` up to its `done`).
fn quick_start(readme: &str) -> Vec<String> {
    let at = readme
        .find("A quick start with the broker")
        .expect("the README has a Kafka quick start");
    let block = readme[at..]
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("its sh block");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let open_loop = current.starts_with("for ") && !current.ends_with("done");
                if open_loop {
                    current.push('\n');
                } else {
                    commands.push(std::mem::take(&mut current));
                }
            }
        }
    }
    assert!(current.is_empty(), "a command not ended: {current}");
    commands
}

/// Kills the broker the quick start left running, whatever happens.
struct Background(Option<u32>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// `bash -c COMMAND` in `dir` with `TANSU` set; its standard output.
fn bash(dir: &Path, tansu: &str, command: &str) -> String {
    let output = Command::new("bash")
        .current_dir(dir)
        .env("TANSU", tansu)
        .args(["-c", command])
        .output()
        .expect("runs bash");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_readme_kafka_quick_start_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let commands = quick_start(&readme);
    let dir = scratch("kafka_readme");
    for linked in [".ci", "examples", "patterns"] {
        std::os::unix::fs::symlink(root.join(linked), dir.join(linked)).expect("links");
    }
    let port = free_port().to_string();
    let mut tansu = String::new();
    let mut broker = Background(None);
    let mut printed = Vec::new();
    let mut ran = Vec::new();
    for command in &commands {
        let command = command.trim().replace(":9092", &format!(":{port}"));
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if let Some(inner) = command
            .strip_prefix("TANSU=$(")
            .and_then(|c| c.strip_suffix(')'))
        {
            tansu = bash(&dir, "", inner).trim().to_string();
            assert!(Path::new(&tansu).is_file(), "{command} gave {tansu:?}");
            ran.push("install");
        } else if command.starts_with("cargo run --release --example ") {
            assert!(!command.contains(['"', '\'', '$']), "{command}");
            assert_eq!(words.get(5).map(String::as_str), Some("--"), "{command}");
            let args = &words[6..];
            match words[4].as_str() {
                "kafka_produce" => {
                    kafka_produce::run(args).expect("kafka_produce");
                    ran.push("produce");
                }
                "kafka_consume" => {
                    kafka_consume::run(args, &mut printed).expect("kafka_consume");
                    ran.push("consume");
                }
                other => panic!("an example this test does not know: {other}"),
            }
        } else if command.starts_with("cargo run --release -- ") {
            assert!(!command.contains(['"', '\'', '$']), "{command}");
            let output = cepheid()
                .current_dir(&dir)
                .args(&words[4..])
                .output()
                .expect("runs cepheid");
            assert!(
                output.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            ran.push("run");
        } else if let Some(background) = command.strip_suffix('&') {
            // (the broker: its process id, to end it)
            let pid = bash(&dir, &tansu, &format!("{background} &\necho $!"));
            broker.0 = Some(pid.trim().parse().expect("a process id"));
            ran.push("broker");
        } else {
            bash(&dir, &tansu, &command);
            ran.push("shell");
        }
    }
    assert!(
        ["install", "broker", "produce", "run", "consume"]
            .iter()
            .all(|step| ran.contains(step)),
        "the quick start has every step: {ran:?}"
    );
    // What the README says the alerts are: the lines of the file run over
    // the sample, so many matches and timeouts.
    let file = cepheid()
        .current_dir(root)
        .args(["run", "patterns/", "--events", "examples/data/sample.jsonl"])
        .output()
        .expect("runs");
    assert!(file.status.success());
    let mut wanted: Vec<String> = String::from_utf8_lossy(&file.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut got: Vec<String> = String::from_utf8_lossy(&printed)
        .lines()
        .map(str::to_string)
        .collect();
    let said = readme
        .split("examples/data/sample.jsonl` prints (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the README says how many alerts");
    let kinds = |kind: &str| {
        got.iter()
            .filter(|l| l.starts_with(&format!("{{\"kind\":\"{kind}\"")))
            .count()
    };
    assert_eq!(
        said,
        format!(
            "{}: {} matches, {} timeouts",
            got.len(),
            kinds("match"),
            kinds("timeout")
        ),
        "what the README says of the alerts"
    );
    wanted.sort();
    got.sort();
    assert_eq!(got, wanted, "the alerts are the file run's lines");
}
