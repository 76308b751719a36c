//! Factors, rule parameters and scenes: parsing, printing back, lowering
//! (instances per scene, values bound, a rule without parameters shared),
//! and the samples of `patterns/risk/`. Their errors are in
//! `scene_error_tests`.

use crate::ast::{Check, DeclarationKind, Literal, ParamType, RuleRef, SceneClauseKind};
use crate::expr::Expr;
use crate::load::Loaded;
use crate::scene::{HitPolicy, OutcomeId};
use crate::value::Value;
use crate::{load_str, parse, print_file};

/// The factors, rules and scenes of `docs/language.md` §11, in short.
const SCENES: &str = r#"list blocked_accounts
indicator events_1h = count() group by account within 1h

/// The account signed up more than `min` ago.
factor signed_up_over(min: duration) = ts - signed_up_at > min
factor busy(min) = events_1h(account) > min
factor from(prefix: string) = starts_with(phone, prefix)

pattern seasoned(min_age: duration, min_events: int = 5) {
    partition by account
    action allow
    tags "coupon"
    match claim
    where
        claim: type == "coupon_claim" and signed_up_over(min_age) and busy(min_events)
}

pattern blocked {
    score 100
    action block
    tags "fraud"
    match e
    where
        e: account in blocked_accounts
}

/// Coupon claims.
scene coupon {
    when type == "coupon_claim"
    id claim_id
    rules seasoned, tagged "fraud"
    with min_age = 3h
    outcomes approve < review < decline
    default review
    decline if account in blocked_accounts
    approve if action allow
    decline if action block
    review if score >= 50
    decline if score > 90
    hit first
    fallback review
    deadline 200ms
    late decline
}

scene sign_up {
    when type == "sign_up"
    rules blocked
    with min_age = 1h, min_events = 2
    outcomes approve < decline
    decline if action block
    fallback approve
    deadline 1s
    pattern fresh(min_age: duration) {
        partition by account
        score 10
        match s
        where
            s: not signed_up_over(min_age) and not from("170")
    }
    pattern seasoned_sign_up(min_age: duration, min_events: int) {
        partition by account
        match s
        where
            s: signed_up_over(min_age) and busy(min_events)
    }
}
"#;

#[test]
fn factors_parameters_and_scenes_parse() {
    let file = parse(SCENES).unwrap();
    let factors: Vec<_> = file
        .declarations
        .iter()
        .filter_map(|d| match &d.kind {
            DeclarationKind::Factor(f) => Some((d.name.name.as_str(), f)),
            _ => None,
        })
        .collect();
    assert_eq!(factors.len(), 3);
    let (name, signed) = factors[0];
    assert_eq!(name, "signed_up_over");
    assert_eq!(signed.params[0].name.name, "min");
    assert_eq!(signed.params[0].ty.map(|t| t.0), Some(ParamType::Duration));
    assert_eq!(factors[1].1.params[0].ty, None);
    let seasoned = &file.patterns[0];
    assert_eq!(seasoned.params.len(), 2);
    assert_eq!(
        seasoned.params[1].default.as_ref().map(|c| &c.literal),
        Some(&Literal::Int(5))
    );
    assert!(file.patterns[1].params.is_empty());
    let coupon = &file.scenes[0];
    assert_eq!(coupon.doc, ["Coupon claims."]);
    let kinds: Vec<&str> = coupon.clauses.iter().map(|c| c.kind.keyword()).collect();
    assert_eq!(
        kinds,
        [
            "when", "id", "rules", "with", "outcomes", "default", "if", "if", "if", "if", "if",
            "hit", "fallback", "deadline", "late"
        ]
    );
    let SceneClauseKind::Rules(refs) = &coupon.clauses[2].kind else {
        panic!("rules")
    };
    assert!(matches!(&refs[0], RuleRef::Name(n) if n.name == "seasoned"));
    assert!(matches!(&refs[1], RuleRef::Tagged(t) if t.value == "fraud"));
    let SceneClauseKind::Outcomes(o) = &coupon.clauses[4].kind else {
        panic!("outcomes")
    };
    let names: Vec<&str> = o.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["approve", "review", "decline"]);
    let checks: Vec<&Check> = coupon
        .clauses
        .iter()
        .filter_map(|c| match &c.kind {
            SceneClauseKind::Outcome { check, .. } => Some(check),
            _ => None,
        })
        .collect();
    assert!(matches!(checks[0], Check::List(_)));
    assert!(matches!(checks[1], Check::Action(a) if a.name == "allow"));
    assert!(matches!(
        checks[3],
        Check::Score {
            inclusive: true,
            ..
        }
    ));
    assert!(matches!(
        checks[4],
        Check::Score {
            inclusive: false,
            ..
        }
    ));
    assert_eq!(file.scenes[1].patterns.len(), 2);
    assert_eq!(file.patterns.len(), 2, "a scene's own rules are its");
}

#[test]
fn factors_parameters_and_scenes_print_and_parse_back() {
    let file = parse(SCENES).unwrap();
    let printed = print_file(&file);
    let again = parse(&printed).unwrap_or_else(|d| panic!("{}\n{printed}", d[0].message));
    assert_eq!(again.without_spans(), file.without_spans(), "{printed}");
    assert_eq!(print_file(&again), printed);
    assert!(
        printed.contains("factor busy(min) = events_1h(account) > min\n"),
        "{printed}"
    );
    assert!(
        printed.contains("pattern seasoned(min_age: duration, min_events: int = 5) {\n"),
        "{printed}"
    );
    assert!(
        printed.contains("    outcomes approve < review < decline\n"),
        "{printed}"
    );
    assert!(printed.contains("    decline if score > 90\n"), "{printed}");
    assert!(
        printed.contains("    rules seasoned, tagged \"fraud\"\n"),
        "{printed}"
    );
    assert!(
        printed.contains("    pattern fresh(min_age: duration) {\n"),
        "{printed}"
    );
}

#[test]
fn constants_print_and_parse_back() {
    let text = "scene s {\n    with a = -5, b = 2.5, c = -0.5, d = 1e300, e = \"x\\ty\", f = true, g = 0ms, h = -9223372036854775808\n}\n";
    let file = parse(text).unwrap();
    assert_eq!(print_file(&file), text);
    let SceneClauseKind::With(b) = &file.scenes[0].clauses[0].kind else {
        panic!("with")
    };
    assert_eq!(b[0].value.literal, Literal::Int(-5));
    assert_eq!(b[7].value.literal, Literal::Int(i64::MIN));
}

#[test]
fn a_rule_with_parameters_is_one_pattern_per_scene_with_its_values() {
    let loaded = load_str("s.cep", SCENES);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
    // `blocked` once, though both scenes hold it; `seasoned` once per
    // scene; a scene's own rules with parameters for it alone.
    assert_eq!(
        names,
        [
            "blocked",
            "seasoned@coupon",
            "fresh@sign_up",
            "seasoned_sign_up@sign_up"
        ]
    );
    let condition = |name: &str| {
        let p = loaded.patterns.iter().find(|p| p.name == name).unwrap();
        crate::explain::expr_text(
            match &p.stages[0].condition {
                crate::pattern::Condition::Expr(e) => e,
                other => panic!("{other:?}"),
            },
            &p.stages,
        )
    };
    // The scene's value, and the default where it gives none; the
    // factors written out with them.
    assert_eq!(
        condition("seasoned@coupon"),
        "type == \"coupon_claim\" and ts - signed_up_at > 10800000 and events_1h(account) > 5"
    );
    assert_eq!(
        condition("seasoned_sign_up@sign_up"),
        "ts - signed_up_at > 3600000 and events_1h(account) > 2"
    );
    assert_eq!(
        condition("fresh@sign_up"),
        "not ts - signed_up_at > 3600000 and not starts_with(phone, \"170\")"
    );
    // What the records will say it read: the indicator a factor reads.
    let seasoned = loaded
        .patterns
        .iter()
        .find(|p| p.name == "seasoned@coupon")
        .unwrap();
    let reads: Vec<&str> = seasoned.reads.iter().map(|r| &*r.label).collect();
    assert_eq!(reads, ["events_1h(account)"]);
    assert!(
        matches!(seasoned.reads[0].expr, Expr::Indicator(..)),
        "{:?}",
        seasoned.reads[0].expr
    );
}

#[test]
fn scenes_lower_to_their_policy() {
    let loaded = load_str("s.cep", SCENES);
    let [coupon, sign_up] = &loaded.scenes[..] else {
        panic!("{:?}", loaded.scenes)
    };
    assert_eq!(loaded.scene_sources, [0, 0]);
    assert_eq!(coupon.name, "coupon");
    assert_eq!(coupon.doc.as_deref(), Some("Coupon claims."));
    assert_eq!(
        coupon.id.as_ref().map(ToString::to_string).as_deref(),
        Some("claim_id")
    );
    assert!(coupon.entry.is_some());
    let outcomes: Vec<&str> = coupon.outcomes.iter().map(|o| &**o).collect();
    assert_eq!(outcomes, ["approve", "review", "decline"]);
    assert_eq!(
        (
            coupon.default,
            coupon.fallback,
            coupon.late,
            coupon.deadline,
            coupon.hit
        ),
        (
            OutcomeId(1),
            OutcomeId(1),
            OutcomeId(2),
            200,
            HitPolicy::First
        )
    );
    assert_eq!(coupon.list_checks.len(), 1);
    assert_eq!(&*coupon.list_checks[0].label, "account in blocked_accounts");
    assert_eq!(coupon.list_checks[0].outcome, OutcomeId(2));
    let thresholds: Vec<(f64, bool, OutcomeId)> = coupon
        .thresholds
        .iter()
        .map(|t| (t.score, t.inclusive, t.outcome))
        .collect();
    assert_eq!(
        thresholds,
        [(50.0, true, OutcomeId(1)), (90.0, false, OutcomeId(2))]
    );
    type Held<'a> = (&'a str, &'a str, bool, Option<OutcomeId>, Option<f64>);
    let rules: Vec<Held> = coupon
        .rules
        .iter()
        .map(|r| (&*r.pattern, &*r.rule, r.instance, r.outcome, r.score))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "seasoned@coupon",
                "seasoned",
                true,
                Some(OutcomeId(0)),
                None
            ),
            ("blocked", "blocked", false, Some(OutcomeId(2)), Some(100.0)),
        ]
    );
    let values: Vec<(&str, &Value, &str)> = coupon.rules[0]
        .parameters
        .iter()
        .map(|p| (&*p.name, &p.value, &*p.written))
        .collect();
    assert_eq!(
        values,
        [
            ("min_age", &Value::Int(10_800_000), "3h"),
            ("min_events", &Value::Int(5), "5"),
        ]
    );
    // Without `default` the mildest, without `late` the fallback, without
    // `hit` all.
    assert_eq!(
        (sign_up.default, sign_up.late, sign_up.hit),
        (OutcomeId(0), OutcomeId(0), HitPolicy::All)
    );
    let held: Vec<&str> = sign_up.rules.iter().map(|r| &*r.pattern).collect();
    assert_eq!(
        held,
        ["blocked", "fresh@sign_up", "seasoned_sign_up@sign_up"]
    );
    // A rule the scene holds that has no action gives no outcome.
    assert_eq!(sign_up.rules[1].outcome, None);
    // `first`: the first fired rule that gives an outcome decides.
    assert_eq!(coupon.resolve(&[1, 0], None).outcome, OutcomeId(0));
    assert_eq!(coupon.resolve(&[1], None).outcome, OutcomeId(2));
    assert_eq!(coupon.resolve(&[], None).outcome, OutcomeId(1));
}

#[test]
fn an_instance_prints_back_to_itself() {
    let loaded = load_str("s.cep", SCENES);
    let p = loaded
        .patterns
        .iter()
        .find(|p| p.name == "seasoned@coupon")
        .unwrap();
    let text = format!(
        "{}\n{}",
        crate::declarations_source(&loaded.declarations),
        crate::pattern_source(p).unwrap()
    );
    assert!(text.contains("pattern seasoned@coupon {"), "{text}");
    let again = load_str("again.cep", &text);
    assert!(!again.has_errors(), "{}\n{text}", again.render());
    assert_eq!(crate::explain(&again.patterns[0]), crate::explain(p));
}

#[test]
fn a_change_of_a_value_changes_the_instance_alone() {
    let before = load_str("s.cep", SCENES);
    let after = load_str(
        "s.cep",
        &SCENES.replace("with min_age = 3h", "with min_age = 4h"),
    );
    assert!(!after.has_errors(), "{}", after.render());
    let text = |l: &Loaded, name: &str| {
        crate::explain(l.patterns.iter().find(|p| p.name == name).unwrap())
    };
    assert_ne!(
        text(&before, "seasoned@coupon"),
        text(&after, "seasoned@coupon")
    );
    for same in ["blocked", "fresh@sign_up", "seasoned_sign_up@sign_up"] {
        assert_eq!(text(&before, same), text(&after, same), "{same}");
    }
}

#[test]
fn scenes_see_the_rules_of_earlier_texts_and_their_own() {
    let mut loaded = Loaded::default();
    loaded.add_str(
        "10-rules.cep",
        "factor big(n: number) = amount > n\npattern p(n: number) { action review match e where e: big(n) }\npattern q { action review match e }",
    );
    loaded.add_str(
        "20-scenes.cep",
        "scene a { rules p, q with n = 10 outcomes ok < review review if action review fallback ok deadline 1s }\n\
         scene b { rules p, q with n = 20.5 outcomes ok < review review if action review fallback ok deadline 1s }",
    );
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["q", "p@a", "p@b"]);
    // An instance's spans are its rule's: in the rule's source.
    assert_eq!(loaded.pattern_sources, [0, 0, 0]);
    assert_eq!(loaded.scene_sources, [1, 1]);
    assert!(loaded.unheld_rules().is_empty());
}

#[test]
fn a_rule_with_parameters_no_scene_holds_is_said() {
    let loaded = load_str("r.cep", "pattern p(n: int) { match e where e: x > n }\n");
    assert!(loaded.patterns.is_empty());
    let said: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        said,
        ["rule `p` has parameters and no scene holds it, so it does not run"]
    );
    assert!(!loaded.has_errors());
}

#[test]
fn types_are_inferred_from_uses() {
    // `n` is compared with a duration, `s` passed to a string function,
    // `b` combined with `and`, `k` passed to a factor's typed parameter.
    let src = "factor f(d: duration) = ts - t > d\n\
               pattern p(n, s, b, k) { match e where e: x > n and y < 1h + n and starts_with(z, s) and b and f(k) }\n\
               scene c { rules p with n = 5m, s = \"a\", b = true, k = 2s outcomes ok fallback ok deadline 1s }";
    let loaded = load_str("t.cep", src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let bad = src.replace("n = 5m", "n = 5");
    let loaded = load_str("t.cep", &bad);
    let said: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        said,
        ["the parameter `n` of rule `p` is a duration, and this is an integer"]
    );
}

#[test]
fn a_regex_can_be_a_parameter() {
    let src = "factor agent(re: string) = matches(user_agent, re)\n\
               pattern p(re: string) { action review match e where e: agent(re) }\n\
               scene c { rules p with re = \"^curl/\" outcomes ok < review review if action review fallback ok deadline 1s }";
    let loaded = load_str("t.cep", src);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = &loaded.patterns[0];
    let crate::pattern::Condition::Expr(e) = &p.stages[0].condition else {
        panic!("condition")
    };
    assert!(matches!(e, Expr::Matches(..)), "{e:?}");
}

#[test]
fn the_risk_samples_load_without_a_word() {
    let mut loaded = Loaded::default();
    for f in ["rules.cep", "scenes.cep"] {
        let path = format!("{}/../../patterns/risk/{f}", env!("CARGO_MANIFEST_DIR"));
        loaded.add_str(f, &std::fs::read_to_string(path).unwrap());
    }
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let scenes: Vec<&str> = loaded.scenes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(scenes, ["payment", "coupon", "sign_up"]);
    let burst: Vec<&str> = loaded
        .patterns
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| n.starts_with("new_account_burst@"))
        .collect();
    assert_eq!(
        burst,
        ["new_account_burst@coupon", "new_account_burst@sign_up"]
    );
}

/// The words of factors, rules with parameters and scenes in any order:
/// loading never panics nor hangs, what parses prints back to itself.
mod token_soup {
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "scene", "s", "{", "}", "when", "id", "rules", "with", "outcomes", "default", "fallback",
        "late", "deadline", "hit", "first", "all", "if", "action", "score", ">=", ">", "in",
        "tagged", "\"t\"", "a", "b", "<", ",", "=", "1", "2.5", "-3", "1h", "0ms", "pattern", "p",
        "(", ")", ":", "int", "duration", "string", "factor", "f", "f()", "match", "where", "x",
        "and", "or", "not", "list", "l", "\n", "///", "//", "@", "null", "true", "`", "skip", "to",
        "next",
    ];

    /// Lines of a scene, well formed or not.
    const LINES: &[&str] = &[
        "when type == \"x\"",
        "id x.id",
        "rules p",
        "rules p, q",
        "rules tagged \"t\"",
        "rules nope",
        "with n = 3",
        "with n = 1h",
        "with n = \"s\", m = 2",
        "outcomes a < b < c",
        "outcomes a < b < a",
        "outcomes a, b",
        "default a",
        "default z",
        "fallback b",
        "late c",
        "deadline 1s",
        "deadline 0ms",
        "hit first",
        "hit any",
        "b if action review",
        "c if action block",
        "b if score >= 5",
        "a if score > 1",
        "c if score >= 10",
        "c if x in l",
        "a if x in l",
        "b if x == 1",
        "pattern q(n: int) { action review tags \"t\" match e where e: y > n and f(n) }",
        "pattern r { action block skip to next match e }",
        "/// doc\npattern u { match e where e: f(1h) }",
        "garbage {",
        "}",
        "pattern",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_scene_of_these_lines_loads(lines in prop::collection::vec(0..LINES.len(), 0..14)) {
            let body: Vec<&str> = lines.iter().map(|&i| LINES[i]).collect();
            let text = format!(
                "list l\nfactor f(n) = x > n\npattern p(n) {{ action review tags \"t\" score 3 match e where e: f(n) }}\nscene s {{\n    {}\n}}\n",
                body.join("\n    ")
            );
            let loaded = crate::load_str("lines.cep", &text);
            let _ = loaded.render();
            for s in &loaded.scenes {
                let _ = crate::explain_scene(s, &loaded.patterns);
                let fired: Vec<usize> = (0..s.rules.len()).collect();
                let _ = s.resolve(&fired, None);
            }
            if let Ok(file) = crate::parse(&text) {
                let printed = crate::print_file(&file);
                let again = crate::parse(&printed).map_err(|d| TestCaseError::fail(format!("{}\n{printed}", d[0].message)))?;
                prop_assert_eq!(again.without_spans(), file.without_spans());
            }
        }

        #[test]
        fn any_sequence_of_their_words_loads(words in prop::collection::vec(0..TOKENS.len(), 0..80)) {
            let text: Vec<&str> = words.iter().map(|&i| TOKENS[i]).collect();
            let text = text.join(" ");
            let loaded = crate::load_str("soup.cep", &text);
            let _ = loaded.render();
            let _ = loaded.flink_warnings();
            for s in &loaded.scenes {
                let _ = crate::explain_scene(s, &loaded.patterns);
            }
            if let Ok(file) = crate::parse(&text) {
                let printed = crate::print_file(&file);
                let again = crate::parse(&printed).map_err(|d| TestCaseError::fail(format!("{}\n{printed}", d[0].message)))?;
                prop_assert_eq!(again.without_spans(), file.without_spans());
            }
        }
    }
}
