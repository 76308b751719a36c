//! `cepheid check PATTERNS --sample FILE`: a warning, with the source line
//! underlined, at each place a pattern reads a field that no sample event
//! carried, with the closest name that did occur; nothing when every field
//! occurs; exit 0 either way (4 when the sample cannot be read).

use std::path::Path;
use std::process::Output;

use crate::common::{cepheid, scratch};

/// `cepheid check rules.cep --sample FILE ARGS...` in `dir`.
fn check(dir: &Path, sample: &str, args: &[&str]) -> Output {
    cepheid()
        .current_dir(dir)
        .args(["check", "rules.cep", "--sample", sample])
        .args(args)
        .output()
        .expect("run cepheid")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `warning:` lines.
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("warning")).collect()
}

/// A folder with `rules.cep` and `sample.jsonl`.
fn setup(name: &str, rules: &str, sample: &str) -> crate::common::Scratch {
    let dir = scratch(name);
    std::fs::write(dir.join("rules.cep"), rules).unwrap();
    std::fs::write(dir.join("sample.jsonl"), sample).unwrap();
    dir
}

/// 102 logins, half of them successful.
fn logins() -> String {
    (0..102)
        .map(|i| {
            format!(
                r#"{{"ts": {i}, "user": "u{}", "success": {}}}"#,
                i % 3,
                i % 2 == 0
            ) + "\n"
        })
        .collect()
}

const LOGIN: &str = "pattern login {
  partition by user
  match a followed by b
  where a: sucess == false
        b: success == true
}
";

#[test]
fn a_misspelt_field_is_a_warning_at_its_line_with_did_you_mean() {
    let dir = setup("sample_misspelt", LOGIN, &logins());
    let out = check(&dir, "sample.jsonl", &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        warnings(&text),
        ["warning: rules.cep:4:12: field `sucess` never occurs in 102 sample events; did you mean `success`?"],
        "{text}"
    );
    // The source line, underlined.
    assert!(text.contains("4 |   where a: sucess == false"), "{text}");
    assert!(text.contains("------"), "{text}");
    assert!(
        text.contains("read by pattern `login`, the condition of stage `a`"),
        "{text}"
    );
    assert!(
        text.contains("ok: 1 valid pattern in 1 file, 1 warning"),
        "{text}"
    );
    // Without `--sample`, nothing to say.
    let plain = cepheid()
        .current_dir(&dir)
        .args(["check", "rules.cep"])
        .output()
        .unwrap();
    assert_eq!(warnings(&stderr(&plain)), Vec::<&str>::new());
}

#[test]
fn no_warning_when_every_field_occurs_even_late_in_the_sample() {
    let fixed = LOGIN.replace("sucess", "success");
    let dir = setup("sample_clean", &fixed, &logins());
    let out = check(&dir, "sample.jsonl", &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(warnings(&text), Vec::<&str>::new(), "{text}");
    assert!(text.contains("ok: 1 valid pattern in 1 file\n"), "{text}");
    // A field that only the last event carries occurs.
    let rules = "pattern p { match a where a: rare == 1 }\n";
    let sample = "{\"ts\": 1}\n{\"ts\": 2, \"other\": 1}\n{\"ts\": 3, \"rare\": 1}\n";
    let dir = setup("sample_late_field", rules, sample);
    let out = check(&dir, "sample.jsonl", &[]);
    assert_eq!(
        warnings(&stderr(&out)),
        Vec::<&str>::new(),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nested_paths_occur_when_the_whole_path_resolves() {
    let rules = "pattern p {
  partition by user.id
  match a
  where a: user.nme == \"x\"
  select id = a.user.id
}
";
    let sample = "{\"ts\": 1, \"user\": {\"id\": 1, \"name\": \"x\"}}\n{\"ts\": 2, \"user\": 5}\n";
    let dir = setup("sample_nested", rules, sample);
    let out = check(&dir, "sample.jsonl", &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        warnings(&text),
        ["warning: rules.cep:4:12: field `user.nme` never occurs in 2 sample events; did you mean `user.name`?"],
        "{text}"
    );
}

#[test]
fn a_csv_sample_with_its_own_time_field() {
    let rules = "pattern big {
  partition by acount
  match a where a: amount > 100
}
";
    let dir = setup("sample_csv", rules, "");
    std::fs::write(
        dir.join("sample.csv"),
        "when,account,amount\n1,a1,50\n2,a2,500\n",
    )
    .unwrap();
    let out = check(
        &dir,
        "sample.csv",
        &["--format", "csv", "--time-field", "when"],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        warnings(&text),
        ["warning: rules.cep:2:16: field `acount` never occurs in 2 sample events; did you mean `account`?"],
        "{text}"
    );
    // Decoded as `run` would: without `--time-field when`, every row lacks
    // `ts` and is skipped (said), so no field occurs.
    let out = check(&dir, "sample.csv", &["--format", "csv"]);
    let text = stderr(&out);
    assert!(
        text.contains("sample.csv:2: no time field `ts` (line skipped)"),
        "{text}"
    );
    assert!(
        text.contains("field `amount` never occurs in 0 sample events"),
        "{text}"
    );
}

#[test]
fn a_sample_that_cannot_be_read_is_exit_4() {
    let dir = setup("sample_missing", LOGIN, "");
    let out = check(&dir, "nope.jsonl", &[]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("error: cannot read the sample nope.jsonl"),
        "{text}"
    );
}

#[test]
fn the_shipped_patterns_read_only_fields_the_sample_stream_has() {
    let out = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "check",
            "patterns/",
            "--sample",
            "examples/data/sample.jsonl",
        ])
        .output()
        .unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(warnings(&text), Vec::<&str>::new(), "{text}");
}
