//! Golden outputs: the records `cepheid run` writes to `--output`,
//! `--late` and standard output, for every run of `tests/golden/cases.jsonl`
//! (the samples, the repository's other streams, the conformance and oracle
//! cases, workers, processes, checkpoints), compared with the files of
//! `tests/golden/<case>/` captured at `3c5a200` (issue 38): byte for byte
//! on one engine, as multisets of lines (sorted bytewise) on workers and
//! processes. Standard error is not compared (its summary holds the time a
//! run took). `CEPHEID_BLESS=1` writes the golden files again from the
//! runs; a commit that does so says why (tests/golden/README.md).

use crate::common;
use crate::shared_contract;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value as Json;

/// The repository's root: every run starts there.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The folder of the manifest, the golden files and the cases' inputs.
fn golden_dir() -> PathBuf {
    Path::new(ROOT).join("tests/golden")
}

/// The groups of cases, each run by its own test below.
const GROUPS: [&str; 10] = [
    "sample",
    "edges",
    "crash",
    "rules",
    "workers",
    "processes",
    "checkpoint",
    "workers_checkpoint",
    "conformance",
    "oracle",
];

/// The outputs a case can write, each compared with the golden file of
/// its name.
const OUTPUTS: [(&str, &str); 3] = [
    ("stdout", "stdout.jsonl"),
    ("output", "output.jsonl"),
    ("late", "late.jsonl"),
];

/// One run of `cepheid run`.
#[derive(Debug, Clone)]
struct Step {
    args: Vec<String>,
    /// The exit statuses allowed.
    status: Vec<i32>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    /// `{tmp}/events.jsonl` written first: the first N lines of a file
    /// (all of them without N).
    cut: Option<(String, Option<usize>)>,
    /// Killed (SIGKILL) as soon as `{tmp}/ckpt` holds a checkpoint.
    kill_after_checkpoint: bool,
}

/// A case of the manifest.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    group: String,
    writes: Vec<String>,
    sorted: bool,
    /// The case whose golden files this one's outputs must equal (its
    /// own folder absent): a layout or a resumed run that must end as
    /// another run does.
    golden: Option<String>,
    processes: usize,
    /// The first run, then the others in the same scratch folder.
    steps: Vec<Step>,
}

fn strings(value: &Json, what: &str) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: a list of strings"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{what}: a list of strings"))
                .to_string()
        })
        .collect()
}

fn step(object: &Json, name: &str) -> Step {
    let map = object.as_object().expect("a run is an object");
    for key in map.keys() {
        assert!(
            [
                "name",
                "group",
                "args",
                "writes",
                "compare",
                "processes",
                "then",
                "status",
                "env",
                "stdin",
                "cut",
                "golden",
                "stop"
            ]
            .contains(&key.as_str()),
            "case {name}: unknown field `{key}`"
        );
    }
    let env = map
        .get("env")
        .and_then(Json::as_object)
        .map(|env| {
            env.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("env: strings").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let cut = map.get("cut").map(|cut| {
        let from = cut["from"].as_str().expect("cut: from").to_string();
        (
            from,
            cut.get("lines").and_then(Json::as_u64).map(|n| n as usize),
        )
    });
    Step {
        args: strings(&map["args"], &format!("case {name}: args")),
        status: match map.get("status") {
            None => vec![0],
            Some(Json::Array(list)) => list
                .iter()
                .map(|s| s.as_i64().expect("status: numbers") as i32)
                .collect(),
            Some(status) => vec![status.as_i64().expect("status: a number") as i32],
        },
        env,
        stdin: map.get("stdin").and_then(Json::as_str).map(String::from),
        cut,
        kill_after_checkpoint: match map.get("stop").map(|s| s.as_str()) {
            None => false,
            Some(Some("after_checkpoint")) => true,
            Some(other) => panic!("case {name}: stop {other:?}"),
        },
    }
}

/// The cases of `text` (the manifest's lines).
fn parse_cases(text: &str) -> Vec<Case> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let object: Json =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("cases.jsonl:{}: {e}", n + 1));
            let name = object["name"].as_str().expect("a name").to_string();
            let mut steps = vec![step(&object, &name)];
            if let Some(then) = object.get("then") {
                let then = then.as_array().expect("then: a list of runs");
                steps.extend(then.iter().map(|run| step(run, &name)));
            }
            let writes = strings(&object["writes"], &format!("case {name}: writes"));
            for output in &writes {
                assert!(
                    OUTPUTS.iter().any(|(o, _)| o == output),
                    "case {name}: unknown output `{output}`"
                );
            }
            let compare = object
                .get("compare")
                .and_then(Json::as_str)
                .unwrap_or("exact");
            assert!(
                ["exact", "sorted"].contains(&compare),
                "case {name}: compare `{compare}`"
            );
            Case {
                group: object["group"].as_str().expect("a group").to_string(),
                writes,
                sorted: compare == "sorted",
                golden: object
                    .get("golden")
                    .map(|g| g.as_str().expect("golden: a case's name").to_string()),
                processes: object.get("processes").and_then(Json::as_u64).unwrap_or(1) as usize,
                steps,
                name,
            }
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let path = golden_dir().join("cases.jsonl");
    parse_cases(&fs::read_to_string(&path).expect("reads tests/golden/cases.jsonl"))
}

/// The file an output placeholder names, for process `process`.
fn output_file(tmp: &Path, what: &str, process: usize) -> PathBuf {
    match process {
        0 => tmp.join(format!("{what}.jsonl")),
        p => tmp.join(format!("p{p}.{what}.jsonl")),
    }
}

fn expand(arg: &str, tmp: &Path, process: usize) -> String {
    let mut arg = arg
        .replace(
            "{out}",
            &output_file(tmp, "out", process).display().to_string(),
        )
        .replace(
            "{late}",
            &output_file(tmp, "late", process).display().to_string(),
        )
        .replace("{tmp}", &tmp.display().to_string());
    if arg.contains("{shared}") {
        arg = arg.replace(
            "{shared}",
            &shared_contract::path(".").display().to_string(),
        );
    }
    arg
}

fn command(step: &Step, tmp: &Path, process: usize) -> Command {
    let mut command = common::cepheid();
    command
        .current_dir(ROOT)
        .arg("run")
        .args(step.args.iter().map(|a| expand(a, tmp, process)))
        .arg("--no-progress")
        .envs(step.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &step.stdin {
        Some(file) => command.stdin(fs::File::open(Path::new(ROOT).join(file)).unwrap()),
        None => command.stdin(Stdio::null()),
    };
    command
}

/// Runs `step` (on every process of the case): the outputs of each
/// process, in order.
fn run_step(case: &Case, step: &Step, tmp: &Path) -> Vec<Output> {
    if let Some((from, lines)) = &step.cut {
        let text = match from.strip_prefix("generate:crash:") {
            // tests/common/crash.rs's stream of N events, made here
            // (too large to keep).
            Some(n) => common::crash::events(n.parse().unwrap()).into_bytes(),
            None => fs::read(Path::new(ROOT).join(from)).unwrap(),
        };
        let end = match lines {
            Some(n) => text
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .nth(n - 1)
                .map_or(text.len(), |(i, _)| i + 1),
            None => text.len(),
        };
        fs::write(tmp.join("events.jsonl"), &text[..end]).unwrap();
    }
    if case.processes == 1 && step.kill_after_checkpoint {
        return vec![killed_after_checkpoint(command(step, tmp, 0), tmp)];
    }
    if case.processes == 1 {
        return vec![command(step, tmp, 0).output().expect("cepheid runs")];
    }
    let hosts = tmp.join("hosts");
    let addresses: String = common::free_ports(case.processes)
        .into_iter()
        .map(|port| format!("127.0.0.1:{port}\n"))
        .collect();
    fs::write(&hosts, addresses).unwrap();
    let children: Vec<Child> = (0..case.processes)
        .map(|process| {
            command(step, tmp, process)
                .args(["--processes", &case.processes.to_string()])
                .args(["--process", &process.to_string()])
                .arg("--hostfile")
                .arg(&hosts)
                .spawn()
                .expect("cepheid runs")
        })
        .collect();
    common::wait_together(children)
}

/// Runs `command` until `{tmp}/ckpt` holds a checkpoint (of one engine or
/// of workers: a `cut-N` folder), then
/// kills it (SIGKILL): its output, whichever way it ended (a run that ends
/// first ends as it does).
fn killed_after_checkpoint(mut command: Command, tmp: &Path) -> Output {
    let ckpt = tmp.join("ckpt");
    let taken = || common::newest_checkpoint(&ckpt).is_some();
    let mut child = command.spawn().expect("cepheid runs");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if taken() {
            child.kill().unwrap();
            break;
        }
        assert!(started.elapsed() < common::PATIENCE, "no checkpoint came");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.wait_with_output().expect("cepheid ends")
}

/// What a run wrote, the golden file's way: the lines sorted bytewise for
/// a multiset.
fn normal(bytes: Vec<u8>, sorted: bool) -> Vec<u8> {
    if !sorted {
        return bytes;
    }
    let mut lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    lines.sort();
    lines.concat()
}

fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\n');
    let mut short: String = text.chars().take(400).collect();
    if short.len() < text.len() {
        short.push_str(" [...]");
    }
    if !line.ends_with(b"\n") {
        short.push_str(" [no newline at the end]");
    }
    short
}

/// How `actual` differs from `golden` (`None` when it does not): the first
/// lines that differ, in order, or as multisets when `sorted`.
fn difference(golden: &[u8], actual: &[u8], sorted: bool) -> Option<String> {
    const SHOWN: usize = 5;
    let split = |bytes: &[u8]| -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        if sorted {
            lines.sort();
        }
        lines
    };
    let (golden, actual) = (split(golden), split(actual));
    if golden == actual {
        return None;
    }
    let mut report = format!("{} golden lines, {} written\n", golden.len(), actual.len());
    if sorted {
        // The multisets' difference, walked in order.
        let (mut missing, mut extra) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < golden.len() || j < actual.len() {
            match (golden.get(i), actual.get(j)) {
                (Some(g), Some(a)) if g == a => (i, j) = (i + 1, j + 1),
                (Some(g), Some(a)) if g < a => (missing.push(g), i += 1).1,
                (Some(_), Some(a)) => (extra.push(a), j += 1).1,
                (Some(g), None) => (missing.push(g), i += 1).1,
                (None, Some(a)) => (extra.push(a), j += 1).1,
                (None, None) => unreachable!(),
            }
        }
        let _ = writeln!(
            report,
            "{} golden lines not written, {} written lines not golden (as multisets):",
            missing.len(),
            extra.len()
        );
        for line in missing.iter().take(SHOWN) {
            let _ = writeln!(report, "- {}", shown(line));
        }
        for line in extra.iter().take(SHOWN) {
            let _ = writeln!(report, "+ {}", shown(line));
        }
        return Some(report);
    }
    let first = (0..)
        .find(|&i| golden.get(i) != actual.get(i))
        .expect("the lines differ somewhere");
    let mut differing = (first..golden.len().max(actual.len()))
        .filter(|&i| golden.get(i) != actual.get(i))
        .take(SHOWN);
    for i in differing.by_ref() {
        let _ = writeln!(report, "line {}:", i + 1);
        match golden.get(i) {
            Some(line) => report += &format!("- {}\n", shown(line)),
            None => report += "- (no line)\n",
        }
        match actual.get(i) {
            Some(line) => report += &format!("+ {}\n", shown(line)),
            None => report += "+ (no line)\n",
        }
    }
    Some(report)
}

fn read_or_empty(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}

/// What the case wrote to `output` (of process 0).
fn written(case: &Case, output: &str, tmp: &Path, stdout: &[u8]) -> Option<Vec<u8>> {
    match output {
        "stdout" => Some(stdout.to_vec()),
        "late" => fs::read(output_file(tmp, "late", 0)).ok(),
        "output" => {
            // `{out}` and, with --output-per-worker, `{out}.N`.
            let main = output_file(tmp, "out", 0);
            let prefix = format!("{}.", main.file_name().unwrap().to_string_lossy());
            let mut parts: Vec<PathBuf> = fs::read_dir(tmp)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .strip_prefix(&prefix)
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .collect();
            parts.sort();
            let mut bytes = match fs::read(&main) {
                Ok(bytes) => bytes,
                Err(_) if !parts.is_empty() => Vec::new(),
                Err(_) => return None,
            };
            assert!(
                parts.is_empty() || case.sorted,
                "{}: files per worker compare as a multiset",
                case.name
            );
            for part in parts {
                bytes.extend(fs::read(part).unwrap());
            }
            Some(bytes)
        }
        other => unreachable!("{other}"),
    }
}

fn command_line(case: &Case) -> String {
    case.steps
        .iter()
        .map(|step| format!("cepheid run {}", step.args.join(" ")))
        .collect::<Vec<_>>()
        .join("; then ")
}

fn stderr_tail(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs `case` and compares its outputs with its golden files (or writes
/// them, blessing): what went wrong, if anything.
fn check(case: &Case, bless: bool) -> Result<(), String> {
    if bless && case.golden.is_some() {
        return Ok(()); // (the folder of another case, which its own run writes)
    }
    let tmp = common::scratch(&format!("golden_{}", case.name.replace('.', "_")));
    let mut last = Vec::new();
    for (n, step) in case.steps.iter().enumerate() {
        let outputs = run_step(case, step, &tmp);
        for (process, output) in outputs.iter().enumerate() {
            let killed = step.kill_after_checkpoint && output.status.code().is_none();
            if !killed
                && !output
                    .status
                    .code()
                    .is_some_and(|code| step.status.contains(&code))
            {
                return Err(format!(
                    "run {} (process {process}) ended with {} instead of exit {:?}:\n{}",
                    n + 1,
                    output.status,
                    step.status,
                    stderr_tail(output)
                ));
            }
            let writes_stdout = process == 0 && case.writes.iter().any(|w| w == "stdout");
            if !writes_stdout && !output.stdout.is_empty() {
                return Err(format!(
                    "run {} (process {process}) wrote to standard output, which it must not:\n{}",
                    n + 1,
                    shown(
                        output
                            .stdout
                            .split_inclusive(|&b| b == b'\n')
                            .next()
                            .unwrap()
                    )
                ));
            }
        }
        last = outputs;
    }
    // Process 0 writes every record; the others' files stay empty.
    for process in 1..case.processes {
        for what in ["out", "late"] {
            let bytes = read_or_empty(&output_file(&tmp, what, process));
            if !bytes.is_empty() {
                return Err(format!("process {process} wrote its own --{what} records"));
            }
        }
    }
    let dir = golden_dir().join(case.golden.as_ref().unwrap_or(&case.name));
    let mut problems = String::new();
    for (output, file) in OUTPUTS {
        let golden_path = dir.join(file);
        if !case.writes.iter().any(|w| w == output) {
            if bless {
                let _ = fs::remove_file(&golden_path);
            }
            continue;
        }
        let Some(actual) = written(case, output, &tmp, &last[0].stdout) else {
            let _ = writeln!(problems, "{output}: not written");
            continue;
        };
        let actual = normal(actual, case.sorted);
        if bless {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&golden_path, &actual).unwrap();
            continue;
        }
        let Ok(golden) = fs::read(&golden_path).map(|g| normal(g, case.sorted)) else {
            let _ = writeln!(
                problems,
                "{output}: no golden file {} (CEPHEID_BLESS=1 writes it)",
                golden_path.display()
            );
            continue;
        };
        if let Some(report) = difference(&golden, &actual, case.sorted) {
            let _ = write!(problems, "{output} ({file}): {report}");
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    match &case.golden {
        _ if problems.is_empty() => Ok(()),
        Some(other) => Err(format!("(the golden files of {other})\n{problems}")),
        None => Err(problems),
    }
}

/// Runs every case of `group` (on two threads) and fails with a report of
/// each that differs.
fn check_group(group: &str) {
    let bless = std::env::var_os("CEPHEID_BLESS").is_some();
    let cases: Vec<Case> = cases().into_iter().filter(|c| c.group == group).collect();
    assert!(!cases.is_empty(), "no case in group {group}");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { return };
                if let Err(problem) = check(case, bless) {
                    failures.lock().unwrap().push((i, problem));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(i, _)| *i);
    if failures.is_empty() {
        return;
    }
    let mut report = format!(
        "{} of the {} golden cases of `{group}` differ from tests/golden/ (captured at \
         3c5a200; CEPHEID_BLESS=1 writes them again, with a reason in the commit message):\n",
        failures.len(),
        cases.len()
    );
    for (i, problem) in failures.iter().take(10) {
        let case = &cases[*i];
        let _ = write!(
            report,
            "\n== {} ({})\n{problem}",
            case.name,
            command_line(case)
        );
    }
    if failures.len() > 10 {
        let _ = writeln!(report, "\n(and {} more)", failures.len() - 10);
    }
    panic!("{report}");
}

#[test]
fn golden_sample() {
    check_group("sample");
}

#[test]
fn golden_edges() {
    check_group("edges");
}

#[test]
fn golden_crash() {
    check_group("crash");
}

#[test]
fn golden_rules() {
    check_group("rules");
}

#[test]
fn golden_checkpoint() {
    check_group("checkpoint");
}

#[test]
fn golden_conformance() {
    check_group("conformance");
}

#[test]
fn golden_oracle() {
    check_group("oracle");
}

#[cfg(feature = "workers")]
#[test]
fn golden_workers() {
    check_group("workers");
}

#[cfg(feature = "workers")]
#[test]
fn golden_processes() {
    check_group("processes");
}

#[cfg(feature = "workers")]
#[test]
fn golden_workers_checkpoint() {
    check_group("workers_checkpoint");
}

/// The manifest names each case once, in a group a test runs; every
/// folder of golden files belongs to a case and holds the files of what
/// it writes.
#[test]
fn golden_cases_and_folders_agree() {
    if std::env::var_os("CEPHEID_BLESS").is_some() {
        return; // (the other tests are writing the folders)
    }
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "a case's name is used twice");
    for case in &cases {
        assert!(
            GROUPS.contains(&case.group.as_str()),
            "{}: no test runs group {}",
            case.name,
            case.group
        );
        assert!(
            case.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{}: a folder's name",
            case.name
        );
        if let Some(other) = &case.golden {
            assert!(
                !golden_dir().join(&case.name).exists(),
                "{}: its outputs are {other}'s, it has no folder of its own",
                case.name
            );
            let other = cases
                .iter()
                .find(|c| &c.name == other)
                .unwrap_or_else(|| panic!("{}: no case {other}", case.name));
            assert!(
                other.golden.is_none() && (case.sorted || !other.sorted),
                "{}: {} has its own golden files, in order if this case's are",
                case.name,
                other.name
            );
            assert_eq!(case.writes, other.writes, "{}: the same outputs", case.name);
            continue;
        }
        for (output, file) in OUTPUTS {
            let present = golden_dir().join(&case.name).join(file).exists();
            let written = case.writes.iter().any(|w| w == output);
            assert_eq!(
                present, written,
                "{}: {file} is golden if and only if the case writes {output}",
                case.name
            );
        }
    }
    for entry in fs::read_dir(golden_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                name == "data" || names.binary_search(&name.as_str()).is_ok(),
                "tests/golden/{name} belongs to no case"
            );
        }
    }
}

#[test]
fn golden_comparison_reports_a_changed_line() {
    let golden = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
    assert_eq!(difference(golden, golden, false), None);
    let changed = b"{\"a\":1}\n{\"b\":20}\n{\"c\":3}\n";
    let report = difference(golden, changed, false).expect("a changed line is a difference");
    assert!(report.contains("line 2:\n"), "{report}");
    assert!(report.contains("- {\"b\":2}\n+ {\"b\":20}\n"), "{report}");
    // A line fewer, and the last line's newline missing.
    let shorter = b"{\"a\":1}\n{\"b\":2}\n";
    let report = difference(golden, shorter, false).expect("a missing line");
    assert!(
        report.contains("line 3:\n- {\"c\":3}\n+ (no line)"),
        "{report}"
    );
    let unended = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}";
    let report = difference(golden, unended, false).expect("a missing newline");
    assert!(report.contains("[no newline at the end]"), "{report}");
    // Another order is a difference byte for byte, not as a multiset.
    let reordered = b"{\"c\":3}\n{\"a\":1}\n{\"b\":2}\n";
    assert!(difference(golden, reordered, false).is_some());
    assert_eq!(difference(golden, reordered, true), None);
}

#[test]
fn golden_comparison_of_multisets_reports_missing_and_extra_lines() {
    let golden = b"x\ny\ny\nz\n";
    let actual = b"y\nz\nx\nw\n";
    let report = difference(golden, actual, true).expect("the multisets differ");
    assert!(report.contains("1 golden lines not written, 1 written lines not golden"));
    assert!(report.contains("- y\n"), "{report}");
    assert!(report.contains("+ w\n"), "{report}");
    // A line twice is not the line once.
    assert!(difference(b"a\na\n", b"a\n", true).is_some());
    assert_eq!(normal(b"b\na\nc\n".to_vec(), true), b"a\nb\nc\n");
}

#[test]
fn golden_manifest_lines_parse_with_their_runs() {
    let cases = parse_cases(
        "# a comment\n\n{\"name\": \"n\", \"group\": \"checkpoint\", \"args\": [\"p.cep\", \"--late\", \"{late}\"], \
         \"writes\": [\"stdout\", \"late\"], \"status\": [4, 0], \"env\": {\"A\": \"1\"}, \
         \"cut\": {\"from\": \"e.jsonl\", \"lines\": 3}, \"then\": [{\"args\": [\"q.cep\"], \"stop\": \"after_checkpoint\"}]}\n",
    );
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.steps.len(), 2);
    assert_eq!(case.steps[0].status, [4, 0]);
    assert_eq!(case.steps[0].env, [("A".to_string(), "1".to_string())]);
    assert_eq!(case.steps[0].cut, Some(("e.jsonl".to_string(), Some(3))));
    assert_eq!(case.steps[1].args, ["q.cep"]);
    assert_eq!(case.steps[1].status, [0]);
    assert!(!case.steps[0].kill_after_checkpoint && case.steps[1].kill_after_checkpoint);
    assert!(!case.sorted);
    let tmp = Path::new("/t");
    assert_eq!(expand("{late}", tmp, 0), "/t/late.jsonl");
    assert_eq!(expand("{out}", tmp, 1), "/t/p1.out.jsonl");
}
