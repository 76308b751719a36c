//! A random end-to-end tester of `cepheid run`: random pattern files from
//! the grammar × random event streams (times at both ends of the `i64`
//! range, duplicates, disorder, `{"$watermark": T}` lines, malformed lines,
//! missing fields), about a quarter of them written as CSV (`--format csv`:
//! headers in any order, quoted cells with commas and doubled quotes, empty
//! cells, RFC 3339 times, rows of the wrong width, broken quoting), each
//! run through the real binary with random
//! `--max-delay`, `--flush-at-end`, `--late` and `--strict`, under a wall-time
//! limit (10 s, then the child is killed: a hang) and a memory limit
//! (`ulimit -v`, 2 GB).
//!
//! A case fails on a panic ("panicked" on standard error or a death by
//! signal), an exit status other than 0, 1 (pattern errors) or 3 (with
//! `--strict`), a hang, standard output when the patterns were refused, or
//! an output line that is not a JSON object of a record kind of `cli.md`
//! (`match`/`timeout` on the output, `late` in the `--late` file).
//!
//! By default 300 cases run with a fixed seed. A long run is opt-in:
//! `CEPHEID_E2E_CASES=N` and `CEPHEID_E2E_SEED=S` set the number of cases
//! and the seed, `CEPHEID_E2E_SECONDS=T` stops after T seconds
//! (`-- --nocapture` prints the tally). A failing case is kept
//! in `target/tmp/random_e2e/` (`case.cep`, `events.jsonl` or
//! `events.csv`, the command line in `args`) and named with its seed and
//! index. Whether a case is CSV is drawn from a stream of its own, so the
//! JSON-lines cases of a seed are the ones they were before CSV was added.

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WALL_LIMIT: Duration = Duration::from_secs(10);
/// Mixed into the seed for the stream that decides which cases are CSV.
const CSV_STREAM: u64 = 0xc5f0_c5f0_c5f0_c5f0;
/// Virtual memory limit of one run, in KiB (`ulimit -v`).
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// The generator of one case: its own stream, so that a case can be rerun
/// alone from its seed and index.
fn case_rng(seed: u64, index: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&index.to_le_bytes());
    bytes[16..24].copy_from_slice(b"cepheid!");
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

fn pick<'a, T: ?Sized>(rng: &mut TestRng, items: &'a [&'a T]) -> &'a T {
    items[rng.random_range(0..items.len())]
}

fn chance(rng: &mut TestRng, percent: u32) -> bool {
    rng.random_range(0..100) < percent
}

/// A duration literal: small ones, and the largest ones the language
/// accepts (or just rejects).
fn duration(rng: &mut TestRng) -> String {
    pick(
        rng,
        &[
            "0ms",
            "1ms",
            "5ms",
            "10ms",
            "1s",
            "10s",
            "1m",
            "2h",
            "1d",
            "9223372036854775807ms",
            "9223372036854775806ms",
            "9223372036854775s",
            "106751991167d",
            "106751991168d",
            "153722867280912m",
            "2562047788015h",
        ],
    )
    .to_string()
}

/// A condition for stage `name`, which may refer to the stages before it.
fn condition(rng: &mut TestRng, earlier: &[String]) -> String {
    let mut terms = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let term = match rng.random_range(0..9) {
            0..=2 => format!("type == \"{}\"", pick(rng, &["a", "b", "c"])),
            3 => format!(
                "v {} {}",
                pick(rng, &["<", "<=", ">", ">=", "==", "!="]),
                rng.random_range(-3..10)
            ),
            4 if !earlier.is_empty() => {
                let s = &earlier[rng.random_range(0..earlier.len())];
                format!("v >= {s}.v")
            }
            5 if !earlier.is_empty() => {
                let s = &earlier[rng.random_range(0..earlier.len())];
                format!("ts - {s}.ts {} {}", pick(rng, &["<", ">="]), duration(rng))
            }
            6 => format!(
                "matches(type, \"{}\")",
                pick(rng, &["a", "[ab]", "^c$", "a{3}"])
            ),
            7 => format!("k {} \"x\"", pick(rng, &["==", "!="])),
            _ => "true".to_string(),
        };
        terms.push(term);
    }
    terms.join(pick(rng, &[" and ", " or "]))
}

/// One element (a stage, sometimes a group) with a quantifier and
/// modifiers; pushes the stage names it introduces. Returns its text and
/// whether it may take no event. Mostly valid combinations: the few invalid
/// ones check that refusing a pattern is clean too.
fn element(
    rng: &mut TestRng,
    stages: &mut Vec<String>,
    depth: u32,
    negated: bool,
) -> (String, bool) {
    let group = depth < 1 && !negated && chance(rng, 10);
    let mut text = if group {
        let inner = sequence(rng, stages, depth + 1, 2, false);
        format!("({inner})")
    } else {
        let name = format!("s{}", stages.len());
        stages.push(name.clone());
        name
    };
    if negated {
        return (text, false);
    }
    let mut optional = false;
    if chance(rng, 45) {
        let (quant, looping, zero) = match rng.random_range(0..6) {
            0 => ("?".to_string(), false, true),
            1 => ("*".to_string(), true, true),
            2 => ("+".to_string(), true, false),
            3 => (format!("{{{}}}", rng.random_range(1..4)), true, false),
            4 => (format!("{{{},}}", rng.random_range(1..3)), true, false),
            _ => {
                let low = rng.random_range(1..3);
                (
                    format!("{{{low},{}}}", low + rng.random_range(0..3)),
                    true,
                    false,
                )
            }
        };
        text.push_str(&quant);
        optional = zero;
        if looping && chance(rng, 60) {
            let modifiers = if group {
                pick(rng, &["consecutive", "combinations"])
            } else {
                pick(
                    rng,
                    &[
                        "greedy",
                        "consecutive",
                        "combinations",
                        "consecutive greedy",
                    ],
                )
            };
            write!(text, " {modifiers}").unwrap();
        }
        if !zero && chance(rng, 20) {
            text.push_str(" optional");
            optional = true;
        }
    }
    if !group && chance(rng, 10) {
        write!(text, " within {}", pick(rng, &["1ms", "5ms", "50ms"])).unwrap();
    }
    (text, optional)
}

fn sequence(
    rng: &mut TestRng,
    stages: &mut Vec<String>,
    depth: u32,
    most: usize,
    windowed: bool,
) -> String {
    let (mut text, mut optional) = element(rng, stages, depth, false);
    let count = rng.random_range(1..=most);
    for i in 1..count {
        let last = i + 1 == count;
        let mut connectors = vec!["next", "followed by", "followed by", "followed by any"];
        if !optional && (!last || (windowed && depth == 0)) {
            connectors.extend(["not next", "not followed by"]);
        }
        if !optional && !last && depth == 0 {
            connectors.push("not next");
        }
        let connector = pick(rng, &connectors);
        let negated = connector.starts_with("not");
        let (next, next_optional) = element(rng, stages, depth, negated);
        optional = next_optional;
        write!(text, " {connector} {next}").unwrap();
    }
    text
}

/// A pattern file of one to three patterns; most compile, some do not.
fn pattern_file(rng: &mut TestRng) -> String {
    let mut file = String::new();
    for p in 0..rng.random_range(1..=3) {
        writeln!(file, "pattern p{p} {{").unwrap();
        if chance(rng, 50) {
            writeln!(file, "    partition by k").unwrap();
        }
        let windowed = chance(rng, 65);
        if windowed {
            let window = if chance(rng, 70) {
                pick(rng, &["50ms", "100ms", "1s", "1d"]).to_string()
            } else {
                duration(rng)
            };
            writeln!(file, "    within {window}").unwrap();
        }
        if chance(rng, 50) {
            writeln!(file, "    timeouts").unwrap();
        }
        if chance(rng, 40) {
            let skip = pick(
                rng,
                &[
                    "no skip",
                    "to next",
                    "past last event",
                    "to first s0",
                    "to last s0",
                ],
            );
            writeln!(file, "    skip {skip}").unwrap();
        }
        let mut stages = Vec::new();
        let seq = sequence(rng, &mut stages, 0, 4, windowed);
        writeln!(file, "    match {seq}").unwrap();
        writeln!(file, "    where").unwrap();
        for (i, s) in stages.iter().enumerate() {
            if chance(rng, 85) {
                let cond = condition(rng, &stages[..i]);
                writeln!(file, "        {s}: {cond}").unwrap();
            }
        }
        if chance(rng, 40) {
            writeln!(file, "    select").unwrap();
            writeln!(file, "        n = count({})", stages[0]).unwrap();
            writeln!(file, "        last_v = {}.v", stages[stages.len() - 1]).unwrap();
            writeln!(
                file,
                "        span = {}.ts - {}.ts",
                stages[stages.len() - 1],
                stages[0]
            )
            .unwrap();
        }
        writeln!(file, "}}").unwrap();
    }
    file
}

/// An event time: near zero, near either end of the range, or anywhere.
fn time(rng: &mut TestRng, base: i64) -> i64 {
    match rng.random_range(0..10) {
        0 => i64::MAX - rng.random_range(0..100),
        1 => i64::MIN + rng.random_range(0..100),
        2 => rng.random(),
        3 => i64::MAX - 86_400_000 + rng.random_range(-5..5),
        _ => base.saturating_add(rng.random_range(-20..200)),
    }
}

/// An event stream: mostly events around a moving clock, with watermark,
/// malformed and odd lines mixed in; sometimes the clock starts near an end
/// of the range.
fn events(rng: &mut TestRng) -> String {
    let mut base: i64 = match rng.random_range(0..4) {
        0 => i64::MAX - 1_000,
        1 => i64::MIN,
        _ => 0,
    };
    let mut lines = String::new();
    let mut last = String::new();
    for _ in 0..rng.random_range(0..40) {
        let line = match rng.random_range(0..20) {
            0 => format!("{{\"$watermark\": {}}}", time(rng, base)),
            1 => pick(
                rng,
                &[
                    "{",
                    "[]",
                    "",
                    "null",
                    "{\"type\":\"a\",\"v\":1}",
                    "{\"ts\":\"yesterday\",\"type\":\"a\"}",
                    "{\"ts\":1.5,\"type\":\"a\"}",
                    "{\"ts\":99999999999999999999,\"type\":\"a\"}",
                    "{\"ts\":-0,\"type\":\"b\"}",
                    "{\"$watermark\":5,\"ts\":5,\"type\":\"a\"}",
                    "{\"$watermark\":\"x\"}",
                    "{\"ts\":\"1970-01-01T00:00:00Z\",\"type\":\"c\"}",
                    "{\"ts\":\"9999-12-31T23:59:59.999Z\",\"type\":\"c\"}",
                    "\u{feff}{\"ts\":1,\"type\":\"a\"}",
                ],
            )
            .to_string(),
            2 if !last.is_empty() => last.clone(),
            _ => {
                let ts = time(rng, base);
                if chance(rng, 80) {
                    base = ts;
                }
                let mut line = format!("{{\"ts\":{ts}");
                if chance(rng, 95) {
                    write!(line, ",\"type\":\"{}\"", pick(rng, &["a", "b", "c", "d"])).unwrap();
                }
                if chance(rng, 85) {
                    let key = pick(
                        rng,
                        &[
                            "\"x\"",
                            "\"y\"",
                            "1",
                            "1.0",
                            "null",
                            "{\"a\":1}",
                            "[1]",
                            "true",
                        ],
                    );
                    write!(line, ",\"k\":{key}").unwrap();
                }
                if chance(rng, 90) {
                    let v = pick(
                        rng,
                        &[
                            "0",
                            "1",
                            "2",
                            "7",
                            "-1",
                            "9223372036854775807",
                            "-9223372036854775808",
                            "1.5",
                            "\"s\"",
                            "null",
                        ],
                    );
                    write!(line, ",\"v\":{v}").unwrap();
                }
                line.push('}');
                line
            }
        };
        lines.push_str(&line);
        lines.push('\n');
        last = line;
    }
    lines
}

/// One CSV cell holding `text`: quoted (RFC 4180, `"` doubled) when it
/// must be, and sometimes when it need not be.
fn csv_cell(rng: &mut TestRng, text: &str) -> String {
    if text.contains([',', '"']) || chance(rng, 10) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The text of one cell of column `name` (before quoting).
fn csv_value(rng: &mut TestRng, name: &str, base: &mut i64) -> String {
    match name {
        "ts" => match rng.random_range(0..20) {
            0 => pick(
                rng,
                &[
                    "",
                    "yesterday",
                    "1.5",
                    "99999999999999999999",
                    "-0",
                    " 5",
                    "1970-01-01T00:00:00Z",
                    "9999-12-31T23:59:59.999Z",
                    "1970-01-01T00:00:00.001+01:00",
                ],
            )
            .to_string(),
            _ => {
                let ts = time(rng, *base);
                if chance(rng, 80) {
                    *base = ts;
                }
                ts.to_string()
            }
        },
        "type" => pick(
            rng,
            &[
                "a",
                "a",
                "a",
                "b",
                "b",
                "b",
                "c",
                "c",
                "d",
                "",
                "a,b",
                "say \"a\"",
                "é",
                " a",
            ],
        )
        .to_string(),
        "k" => pick(
            rng,
            &[
                "x", "x", "y", "y", "1", "1.0", "", "true", "x,y", "\"x\"", "NaN", "1e400",
            ],
        )
        .to_string(),
        "v" => pick(
            rng,
            &[
                "0",
                "1",
                "2",
                "7",
                "-1",
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775808",
                "1.5",
                "1e3",
                "-0",
                "s",
                "",
                "NaN",
                "inf",
            ],
        )
        .to_string(),
        _ => pick(
            rng,
            &[
                "",
                "plain",
                "with, comma",
                "\"quoted\"",
                "a \"b\", c",
                "{\"a\":1}",
                "[1,2]",
                "back\\slash",
                "tab\there",
                "ünï ✓",
                "\u{1}",
                "   ",
                ",,,",
            ],
        )
        .to_string(),
    }
}

/// An event stream as CSV: a header naming some of `ts`, `type`, `k`, `v`
/// and a free-text `note` in any order (sometimes without `ts`, sometimes
/// a name twice), then rows with times at the ends of the range,
/// duplicates, disorder, and some broken lines.
fn csv_events(rng: &mut TestRng) -> String {
    let mut names: Vec<&str> = vec!["ts", "type", "k", "v", "note"];
    names.retain(|&n| n == "ts" || n == "type" || chance(rng, 80));
    if chance(rng, 5) {
        names.retain(|&n| n != "ts");
    }
    if chance(rng, 5) {
        let again = names[rng.random_range(0..names.len())];
        names.push(again);
    }
    for i in (1..names.len()).rev() {
        names.swap(i, rng.random_range(0..=i));
    }
    let mut lines = String::new();
    if chance(rng, 5) {
        lines.push('\u{feff}');
    }
    let header: Vec<String> = names.iter().map(|n| csv_cell(rng, n)).collect();
    lines.push_str(&header.join(","));
    lines.push('\n');
    let mut base: i64 = match rng.random_range(0..4) {
        0 => i64::MAX - 1_000,
        1 => i64::MIN,
        _ => 0,
    };
    let mut last = String::new();
    for _ in 0..rng.random_range(0..40) {
        let line = match rng.random_range(0..20) {
            0 => {
                let broken = pick(
                    rng,
                    &[
                        "",
                        "a\"b",
                        "\"unclosed",
                        "\"a\"b",
                        ",,,,,,,,",
                        "1",
                        "\u{feff}1,a",
                        "{\"ts\":1,\"type\":\"a\"}",
                    ],
                );
                broken.to_string()
            }
            1 if !last.is_empty() => last.clone(),
            _ => {
                let mut cells: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let text = csv_value(rng, n, &mut base);
                        csv_cell(rng, &text)
                    })
                    .collect();
                if chance(rng, 3) {
                    // One cell too many or too few.
                    if chance(rng, 50) || cells.len() < 2 {
                        cells.push("extra".to_string());
                    } else {
                        cells.pop();
                    }
                }
                cells.join(",")
            }
        };
        lines.push_str(&line);
        lines.push('\n');
        last = line;
    }
    lines
}

/// The command line of one case (after `run PATTERN --events FILE`).
fn flags(rng: &mut TestRng, late: &Path, csv: bool) -> (Vec<String>, bool) {
    let mut args = vec!["--no-progress".to_string()];
    if csv {
        args.extend(["--format".to_string(), "csv".to_string()]);
    }
    if chance(rng, 60) {
        let delay = pick(
            rng,
            &["0ms", "1ms", "10ms", "10s", "1d", "9223372036854775807ms"],
        );
        args.extend(["--max-delay".to_string(), delay.to_string()]);
    }
    if chance(rng, 50) {
        args.push("--flush-at-end".to_string());
    }
    if chance(rng, 30) {
        args.extend(["--late".to_string(), late.display().to_string()]);
    }
    let strict = chance(rng, 10);
    if strict {
        args.push("--strict".to_string());
    }
    (args, strict)
}

/// What one case did wrong, if anything.
fn check_case(dir: &Path, args: &[String], strict: bool) -> Result<i32, String> {
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let started = Instant::now();
    // `ulimit -v` through the shell bounds the child's memory.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_cepheid"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("sh starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > WALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hang: killed after {WALL_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    if stderr.contains("panicked") {
        return Err(format!("panic: {stderr}"));
    }
    let code = match status.code() {
        Some(code) => code,
        None => return Err(format!("killed by a signal ({status}): {stderr}")),
    };
    let allowed = code == 0 || code == 1 || (strict && code == 3);
    if !allowed {
        return Err(format!("exit status {code}: {stderr}"));
    }
    if code == 1 && !stdout.is_empty() {
        return Err(format!(
            "output although the patterns were refused: {stdout}"
        ));
    }
    check_records(&stdout, &["match", "timeout"]).map_err(|e| format!("output: {e}"))?;
    let late = dir.join("late.jsonl");
    if args.iter().any(|a| a == "--late") && late.exists() {
        let text = fs::read_to_string(&late).map_err(|e| format!("late file: {e}"))?;
        check_records(&text, &["late"]).map_err(|e| format!("late file: {e}"))?;
    }
    Ok(code)
}

/// Every line is a JSON object whose `kind` is one of `kinds`, with the
/// fields `cli.md` gives that kind.
fn check_records(text: &str, kinds: &[&str]) -> Result<(), String> {
    for line in text.lines() {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if !kinds.contains(&kind) {
            return Err(format!("unexpected record kind: {line}"));
        }
        let required: &[&str] = match kind {
            "match" => &["pattern", "key", "start", "end", "events"],
            "timeout" => &["pattern", "key", "start", "expired_at", "events"],
            _ => &["event"],
        };
        for field in required {
            if value.get(field).is_none() {
                return Err(format!("{kind} record without `{field}`: {line}"));
            }
        }
    }
    Ok(())
}

#[test]
fn random_patterns_and_streams_never_crash_hang_or_corrupt_output() {
    let cases = env_number("CEPHEID_E2E_CASES").unwrap_or(300);
    let seed = env_number("CEPHEID_E2E_SEED").unwrap_or(0xe2e);
    let budget = env_number("CEPHEID_E2E_SECONDS").map(Duration::from_secs);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("random_e2e");
    let work = root.join(format!("work-{seed}-{}", std::process::id()));
    fs::create_dir_all(&work).unwrap();
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut refused, mut matched, mut csv_cases) = (0u64, 0u64, 0u64);
    let mut ran = 0;
    for index in 0..cases {
        if budget.is_some_and(|budget| started.elapsed() > budget) {
            break;
        }
        ran += 1;
        let mut rng = case_rng(seed, index);
        // Drawn apart, so that adding CSV left the JSON-lines cases as
        // they were.
        let csv = chance(&mut case_rng(seed ^ CSV_STREAM, index), 25);
        csv_cases += u64::from(csv);
        let pattern = pattern_file(&mut rng);
        let (stream, events_name) = if csv {
            (csv_events(&mut rng), "events.csv")
        } else {
            (events(&mut rng), "events.jsonl")
        };
        let late = work.join("late.jsonl");
        let _ = fs::remove_file(&late);
        let (extra, strict) = flags(&mut rng, &late, csv);
        fs::write(work.join("case.cep"), &pattern).unwrap();
        fs::write(work.join(events_name), &stream).unwrap();
        let mut args = vec![
            "run".to_string(),
            work.join("case.cep").display().to_string(),
            "--events".to_string(),
            work.join(events_name).display().to_string(),
        ];
        args.extend(extra);
        match check_case(&work, &args, strict) {
            Ok(code) => {
                refused += u64::from(code == 1);
                let out = fs::metadata(work.join("stdout")).map_or(0, |m| m.len());
                matched += u64::from(out > 0);
            }
            Err(what) => {
                let kept = root.join(format!("fail-{seed}-{index}"));
                fs::create_dir_all(&kept).unwrap();
                fs::write(kept.join("case.cep"), &pattern).unwrap();
                fs::write(kept.join(events_name), &stream).unwrap();
                fs::write(kept.join("args"), args.join(" ")).unwrap();
                let what: String = what.chars().take(2_000).collect();
                failures.push(format!(
                    "case {index} (seed {seed}, kept in {}): {what}",
                    kept.display()
                ));
                if failures.len() >= 20 {
                    break;
                }
            }
        }
    }
    println!(
        "random_e2e: {ran} cases ({csv_cases} CSV), seed {seed}, {:.1?}: {matched} with \
         output records, {refused} with pattern errors, {} failures",
        started.elapsed(),
        failures.len()
    );
    let _ = fs::remove_dir_all(&work);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Found by the long run (seed 7: cases 13522, 36346, 44585, 54801, 3 hangs
/// and 1 out-of-memory abort in 61,751 cases): `combinations` (and
/// `followed by any`) with no skip yield every subset, as in Flink, so n
/// events make 2^n − 1 matches and as many partial matches: 18 events take
/// 0.35 s and 64 MB, 32 events do not finish in 10 s. Nothing bounds the
/// per-event cost or memory. The 10-minute run after CSV was added (seed
/// 3630, release build, a shared machine: 26,248 cases, 6,483 of them CSV)
/// found only this again: one hang, case 8800, `s1* combinations` and `s0*
/// combinations`; without `combinations` the same case runs in 6 ms. Fixed
/// by the limit on partial matches per key (`--max-runs-per-key`, default
/// 10,000; `tests/run_limit.rs`).
#[test]
fn combinations_over_32_events_finish_in_bounded_time_and_memory() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("random_e2e");
    let dir = root.join("combinations");
    fs::create_dir_all(&dir).unwrap();
    let pattern =
        "pattern p {\n match a{1,} combinations followed by b\n where\n  b: type == \"b\"\n}\n";
    fs::write(dir.join("case.cep"), pattern).unwrap();
    let mut events: String = (1..=32)
        .map(|t| format!("{{\"ts\":{t},\"type\":\"a\"}}\n"))
        .collect();
    events.push_str("{\"ts\":100,\"type\":\"b\"}\n");
    fs::write(dir.join("events.jsonl"), events).unwrap();
    let args: Vec<String> = [
        "run",
        &dir.join("case.cep").display().to_string(),
        "--events",
        &dir.join("events.jsonl").display().to_string(),
        "--no-progress",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    check_case(&dir, &args, false).unwrap();
}
