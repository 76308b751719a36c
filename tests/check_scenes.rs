//! Factors and scenes through the command (issue 62, the language):
//! `cepheid check` and `explain` on the samples of `patterns/risk/`, an
//! error said with its place and the text underlined, `check --flink`, and
//! a change of a scene's value in a running rule set (its instance is
//! changed, every other pattern kept).

use std::fs;

use crate::common::{cepheid, run_here, scratch};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cepheid check rules.cep --sample sample.jsonl` in `dir`: its standard
/// error, the check having passed (warnings do not fail it).
fn check_sample(dir: &std::path::Path) -> String {
    let out = cepheid()
        .current_dir(dir)
        .args(["check", "rules.cep", "--sample", "sample.jsonl"])
        .output()
        .unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    said
}

#[test]
fn the_risk_samples_check_as_one_rule_set() {
    let out = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "patterns/risk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "ok: 8 valid patterns and 3 scenes in 2 files\n"
    );
}

/// `check --sample` follows a rule's factor calls into the factors'
/// bodies, in each instance a scene makes of the rule and in a rule
/// written inside a scene: a field a factor reads that no sample event
/// carries is said where the factor's body reads it, with the rule and
/// the factor named; a parameter is no field.
#[test]
fn check_sample_follows_factors_into_instances_and_scene_rules() {
    let dir = scratch("check_sample_factors");
    fs::write(
        dir.join("rules.cep"),
        "factor old(min: duration) = ts - signed_up_at > min\n\
         factor vip(tier: string) = level == tier and old(1h)\n\
         pattern seasoned(min_age: duration) {\n\
         \x20   partition by account\n\
         \x20   action allow\n\
         \x20   match c\n\
         \x20   where c: type == \"claim\" and old(min_age)\n\
         }\n\
         scene claims {\n\
         \x20   rules seasoned\n\
         \x20   with min_age = 3h\n\
         \x20   outcomes approve < review\n\
         \x20   approve if action allow\n\
         \x20   fallback review\n\
         \x20   deadline 100ms\n\
         \x20   pattern gold {\n\
         \x20       partition by account\n\
         \x20       action allow\n\
         \x20       match g\n\
         \x20       where g: vip(\"gold\")\n\
         \x20   }\n\
         }\n",
    )
    .unwrap();
    fs::write(
        dir.join("sample.jsonl"),
        "{\"ts\": 1, \"type\": \"claim\", \"account\": \"a\", \"level\": \"gold\"}\n",
    )
    .unwrap();
    let said = check_sample(&dir);
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("warning:")).collect();
    let helps: Vec<&str> = said.lines().filter(|l| l.contains("help:")).collect();
    // (`min`, `min_age` and `tier` are parameters: no warning of them)
    assert_eq!(
        warnings,
        [
            "warning: rules.cep:1:34: field `signed_up_at` never occurs in 1 sample event",
            "warning: rules.cep:1:34: field `signed_up_at` never occurs in 1 sample event",
        ],
        "{said}"
    );
    assert_eq!(
        helps,
        [
            // (in load order: a rule written inside the scene, then the
            // scene's instances)
            "  = help: read by pattern `gold`, the condition of stage `g`, through factor `old`",
            "  = help: read by pattern `seasoned@claims`, the condition of stage `c`, through factor `old`",
        ],
        "{said}"
    );
}

/// `check --sample` also watches what indicators and scenes read: an
/// indicator's argument, `where` and `group by`, a scene's `when`, `id`
/// and list checks, each said where it is written with the indicator or
/// scene named (a run says what its patterns miss).
#[test]
fn check_sample_watches_indicators_and_scenes() {
    let dir = scratch("check_sample_declarations");
    fs::write(
        dir.join("rules.cep"),
        "list watched\n\
         indicator spend = sum(amount) where channel == \"web\" group by card within 1h\n\
         pattern big {\n\
         \x20   partition by account\n\
         \x20   action review\n\
         \x20   match p\n\
         \x20   where p: spend(account) > 100\n\
         }\n\
         scene pay {\n\
         \x20   when kind == \"payment\"\n\
         \x20   id payment_id\n\
         \x20   rules big\n\
         \x20   outcomes approve < review\n\
         \x20   review if device in watched\n\
         \x20   review if action review\n\
         \x20   fallback review\n\
         \x20   deadline 100ms\n\
         }\n",
    )
    .unwrap();
    // (`account` and `kind` occur; the rest does not)
    fs::write(
        dir.join("sample.jsonl"),
        "{\"ts\": 1, \"kind\": \"payment\", \"account\": \"a\"}\n",
    )
    .unwrap();
    let said = check_sample(&dir);
    let pairs: Vec<(&str, &str)> = said
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .zip(said.lines().filter(|l| l.contains("help:")))
        .map(|(w, h)| (w, h.trim_start()))
        .collect();
    let never = |at: &str, field: &str| {
        format!("warning: rules.cep:{at}: field `{field}` never occurs in 1 sample event")
    };
    let want = [
        (
            never("2:23", "amount") + "; did you mean `account`?",
            "= help: read by indicator `spend`, its argument",
        ),
        (
            never("2:37", "channel"),
            "= help: read by indicator `spend`, `where`",
        ),
        (
            never("2:63", "card"),
            "= help: read by indicator `spend`, `group by`",
        ),
        (
            never("11:8", "payment_id"),
            "= help: read by scene `pay`, `id`",
        ),
        (
            never("14:15", "device"),
            "= help: read by scene `pay`, the list check `device in watched`",
        ),
    ];
    let got: Vec<(String, &str)> = pairs.iter().map(|&(w, h)| (w.to_string(), h)).collect();
    let want: Vec<(String, &str)> = want.iter().map(|(w, h)| (w.clone(), *h)).collect();
    assert_eq!(got, want, "{said}");
}

/// `explain` shows a scene's policy and its rules after binding: each
/// instance with its values, its conditions with the factors written out.
#[test]
fn explain_shows_a_scene_and_its_rules_after_binding() {
    let out = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["explain", "patterns/risk", "--pattern", "coupon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "scene coupon
  /// Coupon claims: approved for a seasoned account, reviewed otherwise.
  enters:      type == \"coupon_claim\"
  id:          claim_id
  outcomes:    approve < review < decline
  default:     review
  fallback:    review
  late:        review
  deadline:    300ms
  hit:         all (every rule that fired counts)
  with:        min_age = 3h, min_events = 5, max_age = 1d, max_events = 20
  lists (the first that holds the value decides):
    decline if account in coupon_abusers
    approve if account in trusted_accounts
  actions:
    allow -> approve
    review -> review
  scores (the sum of the counted rules' scores):
    decline if score >= 100
  rules:
    seasoned_claim@coupon (seasoned_claim with min_age = 3h, min_events = 5): action allow -> approve
      claim: type == \"coupon_claim\" and ts - signed_up_at > 10800000 and account_events_1h(account) > 5
    new_account_burst@coupon (new_account_burst with max_age = 1d, max_events = 20): action review -> review, score 60
      e: not ts - signed_up_at > 86400000 and account_events_1h(account) > 20
"
    );
    // The whole set: the instances among the patterns (with their
    // automata), then the scenes.
    let all = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["explain", "patterns/risk"])
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let text = stdout(&all);
    for said in [
        "pattern new_account_burst@sign_up\n",
        "    #0 e: not ts - signed_up_at > 3600000 and account_events_1h(account) > 10\n",
        "\nscene payment\n",
        "\nscene sign_up\n",
    ] {
        assert!(text.contains(said), "{said}: {text}");
    }
    assert!(text.find("scene payment").unwrap() > text.find("  automaton:").unwrap());
    // A name that is neither.
    let none = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["explain", "patterns/risk", "--pattern", "refund"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).starts_with("error: no pattern or scene named `refund` (patterns: "),
        "{}",
        stderr(&none)
    );
}

/// An error of a scene is said as every error is: `path:line:column`, the
/// line quoted and the text underlined, a label at the rule's own text
/// (in its file) where the rule is what to change.
#[test]
fn a_scene_error_is_said_with_its_place_and_the_rule_it_concerns() {
    let dir = scratch("scene_error");
    fs::write(
        dir.join("10-rules.cep"),
        "pattern big {\n    action block\n    skip to next\n    match p\n    where p: amount > 100\n}\n",
    )
    .unwrap();
    fs::write(
        dir.join("20-scenes.cep"),
        "scene pay {\n    rules big\n    outcomes ok < no\n    no if action block\n    fallback ok\n    deadline 1s\n}\n",
    )
    .unwrap();
    let out = cepheid()
        .current_dir(&dir)
        .args(["check", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.starts_with(
            "error: ./20-scenes.cep:2:11: rule `big` has a skip strategy, which a rule of a scene cannot have"
        ),
        "{said}"
    );
    assert!(
        said.contains("2 |     rules big\n  |           ^^^\n"),
        "{said}"
    );
    // (the label, in the rule's file)
    assert!(said.contains("./10-rules.cep"), "{said}");
    assert!(said.contains("skip to next"), "{said}");
    assert!(
        said.ends_with("failed: 1 error, 0 warnings (1 valid pattern in 2 files)\n"),
        "{said}"
    );
}

/// `check --flink` says that a scene has no construct in Flink, and keeps
/// the exit status.
#[test]
fn check_flink_says_a_scene_is_not_flinks() {
    let out = cepheid()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--flink", "patterns/risk/scenes.cep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(
            "warning: patterns/risk/scenes.cep:61:7: scene `coupon` uses a construct Flink 2.3 does not have: one outcome per event, resolved from the matches of its rules, list checks and scores"
        ),
        "{said}"
    );
    assert!(
        said.contains("Flink has no rule with parameters: write one pattern per scene"),
        "{said}"
    );
}

/// A change of rules compares patterns by name and canonical text: a new
/// value in a scene changes its instance alone (a new version), the same
/// rule's instance in another scene and the rules without parameters are
/// unchanged, and keep their state.
#[test]
fn a_changed_value_changes_the_instance_of_its_scene_alone() {
    let rules = |threshold: &str| {
        format!(
            "factor over(n: number) = amount > n\n\
             pattern big(n: number) {{ partition by card action review match p where p: over(n) }}\n\
             pattern every {{ partition by card action review match p where p: amount > 0 }}\n\
             scene pay {{ when type == \"pay\" rules big, every with n = {threshold} outcomes ok < review review if action review fallback ok deadline 1s }}\n\
             scene refund {{ when type == \"refund\" rules big, every with n = 500 outcomes ok < review review if action review fallback ok deadline 1s }}\n"
        )
    };
    let dir = scratch("scene_change");
    fs::write(dir.join("rules.cep"), rules("100")).unwrap();
    let mut lines: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"ts":{},"type":"pay","card":"c","amount":150}}"#,
                1000 * (i + 1)
            )
        })
        .collect();
    lines.insert(3, serde_json::json!({ "$rules": rules("200") }).to_string());
    fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let out = run_here(&dir)
        .args(["--rules-from-stream", "--max-delay", "0ms"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    for line in [
        "events.jsonl:4 (`$rules`): rules reloaded:",
        "  big@pay: changed (version 2)",
        "  big@refund: unchanged",
        "  every: unchanged",
    ] {
        assert!(said.contains(line), "{line}: {said}");
    }
    // 150 > 100 fired `big@pay` before the change, not after (150 < 200):
    // on the first two events (the third still waited for the watermark at
    // the change, and was processed after it, by the new version:
    // `docs/dynamic-rules.md`, "The switch point").
    let records = stdout(&out);
    assert_eq!(
        records.matches(r#""pattern":"big@pay""#).count(),
        2,
        "{records}"
    );
    assert_eq!(
        records.matches(r#""pattern":"every""#).count(),
        6,
        "{records}"
    );
    assert!(!records.contains("big@refund"), "{records}");
}
