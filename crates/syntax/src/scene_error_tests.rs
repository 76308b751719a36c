//! Every error (and warning) of factors, rule parameters and scenes, each
//! with its exact message and the text it underlines: `SEVERITY
//! LINE:COLUMN `TEXT`: MESSAGE`.

use crate::load_str;

/// A valid rule set: a factor, a rule with a parameter, one without, a
/// scene holding both.
const BASE: &str = "\
list blocked
factor over(min: duration) = ts - since > min
pattern r(min: duration) {
    action review
    score 40
    match e
    where e: over(min)
}
pattern plain {
    action block
    score 100
    match e
    where e: account in blocked
}
scene s {
    rules r, plain
    with min = 1h
    outcomes approve < review < decline
    review if action review
    decline if action block
    review if score >= 50
    decline if score >= 100
    decline if account in blocked
    fallback review
    deadline 100ms
}
";

/// What loading `src` says, in order: severity, position, the text
/// underlined (in the source the diagnostic is in), message.
fn said(src: &str) -> Vec<String> {
    let loaded = load_str("s.cep", src);
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            let source = &loaded.sources[d.source];
            let (line, col) = source.line_col(d.span.start as usize);
            let text = &source.text[d.span.range()];
            let severity = if d.is_error() { "error" } else { "warning" };
            format!("{severity} {line}:{col} `{text}`: {}", d.message)
        })
        .collect()
}

/// `BASE` with `from` replaced by `to` (which must be there).
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn the_base_is_valid() {
    assert_eq!(said(BASE), Vec::<String>::new());
}

// Syntax.

#[test]
fn a_parameter_type_is_one_of_five() {
    assert_eq!(
        said(&with("over(min: duration)", "over(min: durations)")),
        [
            "error 2:18 `durations`: `durations` is not a type; did you mean `duration`? (types: int, number, duration, string, bool)",
            // (a factor that does not parse is not declared)
            "error 7:14 `over`: there is no function `over`",
        ]
    );
    assert_eq!(
        said(&with("over(min: duration)", "over(min: 5)")),
        [
            "error 2:18 `5`: expected a type: `int`, `number`, `duration`, `string` or `bool`, found `5`",
            "error 7:14 `over`: there is no function `over`",
        ]
    );
}

#[test]
fn a_factor_parameter_has_no_default() {
    assert_eq!(
        said(&with("over(min: duration)", "over(min: duration = 1h)")),
        [
            "error 2:27 `=`: a factor's parameter has no default: each call passes its value",
            "error 7:14 `over`: there is no function `over`",
        ]
    );
}

#[test]
fn a_factor_needs_its_parentheses_and_its_condition() {
    assert_eq!(
        said(&with("factor over(min: duration) =", "factor over =")),
        [
            "error 2:13 `=`: expected `(` and the factor's parameters (`()` for none), found `=`",
            "error 7:14 `over`: there is no function `over`",
        ]
    );
    assert_eq!(
        said(&with(" = ts - since > min", " ts - since > min")),
        [
            "error 2:28 `ts`: expected `=` and the factor's condition, found `ts`",
            "error 7:14 `over`: there is no function `over`",
        ]
    );
}

#[test]
fn outcomes_are_ordered_with_less_than() {
    assert_eq!(
        said(&with("approve < review < decline", "approve, review, decline")),
        ["error 18:21 `,`: outcomes are ordered mildest first with `<`: `outcomes approve < review < decline`"]
    );
}

#[test]
fn a_misspelt_scene_clause_is_said_with_a_guess() {
    assert_eq!(
        said(&with("    fallback review", "    fallbak review")),
        ["error 24:5 `fallbak`: expected a scene clause, found `fallbak`; did you mean `fallback`?"]
    );
}

#[test]
fn the_hit_policy_is_first_or_all() {
    assert_eq!(
        said(&with(
            "    fallback review",
            "    hit some\n    fallback review"
        )),
        ["error 24:9 `some`: expected `first` or `all` after `hit`, found `some`"]
    );
}

#[test]
fn a_value_is_never_null_and_a_threshold_a_number() {
    assert_eq!(
        said(&with("with min = 1h", "with min = null")),
        ["error 17:16 `null`: a value here is a number, a duration, a string or a boolean, not `null`"]
    );
    assert_eq!(
        said(&with("score >= 50", "score >= \"50\"")),
        ["error 21:24 `\"50\"`: a score threshold is a number"]
    );
}

// Scenes.

#[test]
fn a_scene_holds_some_rule() {
    assert_eq!(
        said(&with("    rules r, plain\n    with min = 1h\n", "")),
        [
            "error 15:7 `s`: scene `s` holds no rule",
            "warning 17:5 `review if action review`: no rule of scene `s` has the action `review`",
            "warning 18:5 `decline if action block`: no rule of scene `s` has the action `block`",
            "warning 3:9 `r`: rule `r` has parameters and no scene holds it, so it does not run",
        ]
    );
}

#[test]
fn an_unknown_rule_or_tag_is_an_error() {
    assert_eq!(
        said(&with("rules r, plain", "rules r, plan")),
        [
            "error 16:14 `plan`: there is no rule `plan`",
            "warning 20:5 `decline if action block`: no rule of scene `s` has the action `block`",
        ]
    );
    assert_eq!(
        said(&with("rules r, plain", "rules r, tagged \"fraud\"")),
        [
            "error 16:21 `\"fraud\"`: no rule is tagged `fraud`",
            "warning 20:5 `decline if action block`: no rule of scene `s` has the action `block`",
        ]
    );
}

#[test]
fn a_missing_parameter_is_an_error_at_the_rule_the_scene_holds() {
    assert_eq!(
        said(&with("    with min = 1h\n", "")),
        ["error 16:11 `r`: rule `r` needs a value for its parameter `min`, and scene `s` gives none"]
    );
}

#[test]
fn an_ill_typed_value_is_an_error_at_the_value() {
    assert_eq!(
        said(&with("with min = 1h", "with min = 3600")),
        ["error 17:16 `3600`: the parameter `min` of rule `r` is a duration, and this is an integer"]
    );
    assert_eq!(
        said(&with("with min = 1h", "with min = \"1h\"")),
        ["error 17:16 `\"1h\"`: the parameter `min` of rule `r` is a duration, and this is a string"]
    );
}

#[test]
fn a_value_no_rule_takes_is_an_error() {
    assert_eq!(
        said(&with("with min = 1h", "with min = 1h, mn = 2h")),
        ["error 17:20 `mn`: no rule of scene `s` takes a parameter `mn`"]
    );
    assert_eq!(
        said(&with("with min = 1h", "with min = 1h, min = 2h")),
        ["error 17:20 `min`: the parameter `min` is given twice"]
    );
}

#[test]
fn an_action_with_no_outcome_is_an_error() {
    assert_eq!(
        said(&with("    decline if action block\n", "")),
        ["error 16:14 `plain`: rule `plain` has the action `block`, which scene `s` gives no outcome"]
    );
    assert_eq!(
        said(&with(
            "    decline if action block\n",
            "    decline if action block\n    review if action block\n"
        )),
        ["error 21:22 `block`: the action `block` is given an outcome twice"]
    );
}

#[test]
fn thresholds_out_of_order_are_an_error() {
    assert_eq!(
        said(&with("decline if score >= 100", "decline if score >= 40")),
        ["error 22:5 `decline if score >= 40`: the score thresholds are out of order: each must be higher than the one before"]
    );
    assert_eq!(
        said(&with("decline if score >= 100", "decline if score >= 50")),
        ["error 22:5 `decline if score >= 50`: the score thresholds are out of order: each must be higher than the one before"]
    );
    assert_eq!(
        said(&with("decline if score >= 100", "approve if score >= 100")),
        ["error 22:5 `approve if score >= 100`: the score thresholds are out of order: a higher score gives `approve`, milder than `review` below it"]
    );
    // `> 50` is reached after `>= 50`.
    assert_eq!(
        said(&with("decline if score >= 100", "decline if score > 50")),
        Vec::<String>::new()
    );
}

#[test]
fn list_checks_go_the_most_severe_first() {
    assert_eq!(
        said(&with(
            "    decline if account in blocked\n",
            "    approve if device in blocked\n    decline if account in blocked\n"
        )),
        ["error 24:5 `decline if account in blocked`: the list checks are out of order: this one gives `decline`, more severe than `approve` before it"]
    );
    assert_eq!(
        said(&with("account in blocked\n    fallback", "account == 1\n    fallback")),
        ["error 23:16 `account == 1`: an outcome line gives its outcome `if action NAME`, `if score >= N` or on a list check `if VALUE in LIST`"]
    );
    assert_eq!(
        said(&with(
            "account in blocked\n    fallback",
            "account in blockd\n    fallback"
        )),
        ["error 23:27 `blockd`: `blockd` is not a list"]
    );
}

#[test]
fn an_outcome_is_named_once_and_every_outcome_named_is_one() {
    assert_eq!(
        said(&with(
            "approve < review < decline",
            "approve < review < decline < review"
        )),
        ["error 18:43 `review`: the outcome `review` is named twice"]
    );
    assert_eq!(
        said(&with(
            "    fallback review",
            "    default aprove\n    fallback review"
        )),
        ["error 24:13 `aprove`: `aprove` is not an outcome of scene `s`"]
    );
    assert_eq!(
        said(&with("    fallback review", "    fallback hold")),
        ["error 24:14 `hold`: `hold` is not an outcome of scene `s`"]
    );
    assert_eq!(
        said(&with(
            "    fallback review",
            "    fallback review\n    late later"
        )),
        ["error 25:10 `later`: `later` is not an outcome of scene `s`"]
    );
    assert_eq!(
        said(&with("review if score >= 50", "reviewed if score >= 50")),
        ["error 21:5 `reviewed`: `reviewed` is not an outcome of scene `s`"]
    );
}

#[test]
fn outcomes_a_fallback_and_a_deadline_are_required() {
    assert_eq!(
        said(&with("    fallback review\n", "")),
        ["error 15:7 `s`: scene `s` has no `fallback`"]
    );
    assert_eq!(
        said(&with("    deadline 100ms\n", "")),
        ["error 15:7 `s`: scene `s` has no `deadline`"]
    );
    assert_eq!(
        said(&with("    deadline 100ms\n", "    deadline 0ms\n")),
        ["error 25:14 `0ms`: a deadline of 0ms leaves no time to decide"]
    );
    let without = said(&with("    outcomes approve < review < decline\n", ""));
    assert_eq!(without[0], "error 15:7 `s`: scene `s` has no `outcomes`");
    // (the outcome lines are not said again for it)
    assert_eq!(without.len(), 1, "{without:#?}");
}

#[test]
fn a_clause_is_given_once() {
    assert_eq!(
        said(&with(
            "    deadline 100ms\n",
            "    deadline 100ms\n    deadline 1s\n"
        )),
        ["error 26:5 `deadline 1s`: the clause `deadline` is given twice"]
    );
}

#[test]
fn a_rule_of_a_scene_has_no_skip_strategy() {
    assert_eq!(
        said(&with("    score 100\n", "    score 100\n    skip past last event\n")),
        ["error 17:14 `plain`: rule `plain` has a skip strategy, which a rule of a scene cannot have: a match it holds back may be dropped later, after the event's decision"]
    );
    assert_eq!(
        said(&with(
            "    score 100\n",
            "    score 100\n    skip no skip\n"
        )),
        Vec::<String>::new()
    );
}

#[test]
fn a_scene_is_named_once() {
    let twice = format!(
        "{BASE}scene s {{ rules plain outcomes a < b b if action block fallback a deadline 1s }}\n"
    );
    assert_eq!(
        said(&twice),
        ["error 27:7 `s`: a scene named `s` is already defined"]
    );
}

// Factors.

#[test]
fn a_factor_called_with_the_wrong_number_of_arguments_is_an_error() {
    assert_eq!(
        said(&with("where e: over(min)", "where e: over(min, 2)")),
        ["error 7:14 `over(min, 2)`: factor `over` takes 1 argument, but 2 are given"]
    );
}

#[test]
fn an_unknown_factor_is_an_error() {
    assert_eq!(
        said(&with("where e: over(min)", "where e: ovr(min)")),
        ["error 7:14 `ovr`: there is no function or factor `ovr`"]
    );
}

#[test]
fn recursion_between_factors_is_an_error() {
    let src = with(
        "factor over(min: duration) = ts - since > min\n",
        "factor over(min: duration) = ts - since > min and under(min)\nfactor under(min: duration) = not over(min)\n",
    );
    let got = said(&src);
    assert_eq!(
        got[0],
        "error 3:35 `over`: factor `over` calls itself (over -> under -> over): factors cannot be recursive"
    );
    // A rule calling one is an error too (it cannot be written out).
    assert_eq!(
        got[1..],
        ["error 8:14 `over`: factor `over` has an error, so it cannot be called"]
    );
    assert_eq!(
        said("factor f() = f()\n"),
        ["error 1:14 `f`: factor `f` calls itself (f -> f): factors cannot be recursive"]
    );
}

#[test]
fn a_factor_argument_of_the_wrong_type_is_an_error() {
    assert_eq!(
        said(&with("where e: over(min)", "where e: over(3)")),
        [
            "warning 3:11 `min`: the parameter `min` is not used by the rule",
            "error 7:19 `3`: factor `over` takes a duration as `min`, and this is an integer",
        ]
    );
}

#[test]
fn a_parameter_used_as_two_types_is_an_error() {
    assert_eq!(
        said("factor f(x) = a > x + 1 and lower(x) == \"s\"\n"),
        ["error 1:35 `x`: the parameter `x` is used as a string here, but as a number before"]
    );
    assert_eq!(
        said("factor f(x: duration) = lower(x) == \"a\"\n"),
        ["error 1:31 `x`: the parameter `x` is a duration, but is used as a string here"]
    );
}

#[test]
fn a_factor_name_is_its_own() {
    assert_eq!(
        said("list f\nfactor f() = true\n"),
        ["error 2:8 `f`: `f` is already declared; a factor needs a name no list, indicator or other factor has"]
    );
    assert_eq!(
        said("factor lower() = true\n"),
        ["error 1:8 `lower`: `lower` is a built-in function; a factor needs another name"]
    );
    assert_eq!(
        said("factor f(a, a) = a\n"),
        ["error 1:13 `a`: the parameter `a` is given twice"]
    );
}

#[test]
fn a_factor_reads_the_event_alone() {
    assert_eq!(
        said("factor f() = count(a) > 1\npattern p { match a where a: f() }\n"),
        [
            "error 1:14 `count(a)`: a factor reads the current event alone, so it cannot take `count` of a stage",
            // (said at the rules that call it)
            "error 2:30 `f`: factor `f` has an error, so it cannot be called",
        ]
    );
    assert_eq!(
        said("factor f() = x > 1\npattern p { match a select y = f() }\n"),
        ["error 2:32 `f()`: factor `f` reads the current event, and `select` has none"]
    );
}

#[test]
fn an_unused_parameter_is_a_warning() {
    assert_eq!(
        said("factor f(x, y) = a > x\n"),
        ["warning 1:13 `y`: the parameter `y` is not used by the factor's condition"]
    );
}

#[test]
fn an_error_only_a_scenes_values_make_is_said_at_the_scene() {
    let src = "pattern p(re: string) { action review match a where a: matches(x, re) }\n\
               scene s { rules p with re = \"(\" outcomes ok < review review if action review fallback ok deadline 1s }\n";
    let loaded = load_str("s.cep", src);
    let got = said(src);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with(
            "error 2:17 `p`: with the values of scene `s`, rule `p` has an error: invalid regex:"
        ),
        "{got:#?}"
    );
    // (with a label at the rule's text)
    let label = &loaded.diagnostics[0].labels[0];
    assert_eq!(&src[label.span.range()], "re");
}

#[test]
fn an_instance_name_takes_no_parameters() {
    assert_eq!(
        said("pattern p@s(x: int) { match a where a: y > x }\n"),
        ["error 1:9 `p@s`: `p@s` is the name of a rule's instance in a scene, which has no parameters"]
    );
}

#[test]
fn factors_expand_within_a_limit() {
    // Each factor calls the one before twice: 2^12 calls written out.
    let mut src = String::from("factor f0() = x > 1\n");
    for i in 1..=12 {
        src.push_str(&format!("factor f{i}() = f{}() or f{}()\n", i - 1, i - 1));
    }
    src.push_str("pattern p { match a where a: f12() }\n");
    let got = said(&src);
    // `f9` is the first that calls more (1,022): said there, at its first
    // call; the factors that call it are invalid without a word, the rule
    // that does says so.
    assert_eq!(
        got,
        [
            "error 10:23 `f8()`: the factors of this condition call more than 1000 factors in all",
            "error 14:30 `f12`: factor `f12` has an error, so it cannot be called",
        ]
    );
}

#[test]
fn a_name_is_a_rule_once_with_or_without_parameters() {
    assert_eq!(
        said("pattern p { match a }\npattern p(x: int) { match a where a: y > x }\n"),
        ["error 2:9 `p`: a pattern named `p` is already defined"]
    );
}

#[test]
fn the_instances_of_a_file_are_limited() {
    // 101 rules with a parameter, all tagged `t`, held by 100 scenes:
    // 10,100 instances, one scene's worth over the limit.
    let mut src = String::new();
    for i in 0..101 {
        src.push_str(&format!(
            "pattern t{i}(n: int) {{ tags \"t\" match e where e: x > n }}\n"
        ));
    }
    for i in 0..100 {
        src.push_str(&format!(
            "scene s{i} {{ rules tagged \"t\" with n = {i} outcomes a fallback a deadline 1s }}\n"
        ));
    }
    let loaded = load_str("many.cep", &src);
    let errors: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        errors,
        ["the scenes of this file make more than 10000 rules with parameters (one per scene that holds one)"]
    );
    // The first 99 scenes made theirs; the last, over the limit, none.
    assert_eq!(loaded.scenes.len(), 99);
    assert_eq!(loaded.patterns.len(), 99 * 101);
}

#[test]
fn the_rules_the_scenes_of_a_file_hold_are_limited() {
    // 400 rules tagged `t`, held by 251 scenes: 100,400 in all.
    let mut src = String::new();
    for i in 0..400 {
        src.push_str(&format!("pattern r{i} {{ tags \"t\" match e }}\n"));
    }
    for i in 0..251 {
        src.push_str(&format!(
            "scene s{i} {{ rules tagged \"t\" outcomes a fallback a deadline 1s }}\n"
        ));
    }
    let got = said(&src);
    assert_eq!(
        got,
        ["error 651:7 `s250`: the scenes of this file hold more than 100000 rules in all"]
    );
}

#[test]
fn what_the_factors_of_a_file_write_out_is_limited() {
    // `f8` writes out 256 copies of `f0`'s 151 nodes (38,656), 510 calls
    // in all: within the limit of one condition, but a file of many rules
    // calling it would write out more than a million nodes. (Checking the
    // factors alone writes out about 77,000.)
    let terms: Vec<String> = (0..50).map(|i| format!("x{i} > 1")).collect();
    let mut src = format!("factor f0() = {}\n", terms.join(" and "));
    for i in 1..=8 {
        src.push_str(&format!("factor f{i}() = f{}() or f{}()\n", i - 1, i - 1));
    }
    for i in 0..100 {
        src.push_str(&format!("pattern p{i} {{ match e where e: f8() }}\n"));
    }
    let loaded = load_str("many.cep", &src);
    let errors: Vec<String> = said(&src)
        .into_iter()
        .filter(|d| d.starts_with("error"))
        .collect();
    assert_eq!(
        errors[0],
        "error 33:32 `f8()`: the factors called in this file write out more than 1000000 expression nodes in all"
    );
    // The rules before it were written out whole; the others are not
    // loaded.
    assert_eq!(loaded.patterns.len(), 23);
    assert_eq!(errors.len(), 100 - 23);
}
