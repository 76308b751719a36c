//! Expressions as written in the language, end to end: parsed and lowered
//! by `dsl`, compiled and evaluated by `expr`, over JSON events. One table
//! row per rule of `language.md` "Expressions" (precedence, value
//! semantics, functions, stage references and aggregates).

use std::sync::Arc;

use crate as dsl;
use cepheid_core::expr::{AccumulatorLayoutBuilder, CompiledExpr};
use cepheid_core::primitives::StageId;
use cepheid_core::record::{FieldTable, Record};

/// The stages expressions may refer to, in id order.
const STAGES: [&str; 2] = ["a", "b"];

fn compile(
    text: &str,
    table: &mut FieldTable,
    layout: &mut AccumulatorLayoutBuilder,
) -> CompiledExpr {
    let names: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let ast = dsl::parse_expression(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let expr = dsl::lower_expression(&ast, &names).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    CompiledExpr::compile(&expr, table, layout).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn record(table: &FieldTable, json: &str) -> Record {
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    cepheid_core::json::record_from_json(table, parsed.as_object().unwrap(), Arc::from(json))
}

/// Evaluates `text` on `event` after the run took `taken` (stage, event)
/// pairs, and returns the value as JSON text.
fn eval_after(text: &str, taken: &[(u16, &str)], event: &str) -> String {
    let mut table = FieldTable::new();
    let mut layout = AccumulatorLayoutBuilder::new();
    let compiled = compile(text, &mut table, &mut layout);
    let layout = layout.finish();
    let mut acc = layout.new_accumulators();
    for (stage, json) in taken {
        acc.on_take(&layout, StageId(*stage), &record(&table, json));
    }
    let event = record(&table, event);
    let value = compiled.eval(&event, &acc);
    assert_eq!(
        compiled.matches(&event, &acc),
        value == cepheid_core::Value::Bool(true),
        "{text}: matches() disagrees with eval()"
    );
    serde_json::to_string(&cepheid_core::json::value_to_json(&value)).unwrap()
}

const EVENT: &str = r#"{"type": 2, "name": "Alice", "price": 2.5, "tags": ["x", "y"],
    "ok": true, "none": null, "user": {"id": 42}, "user-agent": "curl"}"#;

/// (expression, expected value as JSON) over [`EVENT`], no stages taken.
const CASES: &[(&str, &str)] = &[
    // Precedence and arithmetic.
    ("1 + 2 * 3", "7"),
    ("(1 + 2) * 3", "9"),
    ("10 - 4 - 3", "3"),
    ("-2 * 3", "-6"),
    ("7 / 2", "3"),
    ("-7 / 2", "-3"),
    ("7 % 3", "1"),
    ("7.0 / 2", "3.5"),
    ("type * price", "5.0"),
    ("1 / 0", "null"),
    ("1 % 0", "null"),
    ("1.5 / 0", "null"),
    ("9223372036854775807 + 1", "null"),
    ("\"ab\" + \"c\"", "\"abc\""),
    ("\"ab\" - \"c\"", "null"),
    ("name + 1", "null"),
    // Comparisons.
    ("type == 2", "true"),
    ("type == 2.0", "true"),
    ("type != 2", "false"),
    ("price > 2", "true"),
    ("price <= 2.5", "true"),
    ("\"b\" > \"a\"", "true"),
    ("\"B\" < \"a\"", "true"),
    ("\"a\" < 3", "null"),
    ("name == 3", "null"),
    ("user.id == 42", "true"),
    ("`user-agent` == \"curl\"", "true"),
    ("type in [1, 2, 3]", "true"),
    ("type in [4, 5]", "false"),
    ("name in [\"Bob\", \"Alice\"]", "true"),
    // Null.
    ("missing > 1", "null"),
    ("missing + 1", "null"),
    ("missing == null", "true"),
    ("none == null", "true"),
    ("type != null", "true"),
    ("null == null", "true"),
    ("-missing", "null"),
    // Three-valued logic and precedence of `not`.
    ("false and missing > 1", "false"),
    ("missing > 1 and false", "false"),
    ("true and missing > 1", "null"),
    ("true or missing > 1", "true"),
    ("false or missing > 1", "null"),
    ("not missing > 1", "null"),
    ("not type == 3", "true"),
    ("not true or true", "true"),
    ("true && !false", "true"),
    ("false || ok", "true"),
    ("ok and type == 2 or false", "true"),
    // Functions.
    ("len(name)", "5"),
    ("len(\"héllo\")", "5"),
    ("len(tags)", "2"),
    ("len(type)", "null"),
    ("lower(name)", "\"alice\""),
    ("upper(name)", "\"ALICE\""),
    ("abs(-3)", "3"),
    ("abs(-2.5)", "2.5"),
    ("abs(name)", "null"),
    ("contains(name, \"lic\")", "true"),
    ("contains(name, \"bob\")", "false"),
    ("contains(tags, \"y\")", "true"),
    ("contains(tags, \"z\")", "false"),
    ("contains(missing, \"z\")", "null"),
    ("starts_with(name, \"Al\")", "true"),
    ("ends_with(name, \"Al\")", "false"),
    ("matches(name, \"^A.*e$\")", "true"),
    ("matches(name, \"^b\")", "false"),
    ("matches(type, \"2\")", "null"),
    ("exists(name)", "true"),
    ("exists(user.id)", "true"),
    ("exists(none)", "false"),
    ("exists(missing)", "false"),
];

#[test]
fn expressions_over_one_event() {
    let mut failures = Vec::new();
    for (text, want) in CASES {
        let got = eval_after(text, &[], EVENT);
        if got != *want {
            failures.push(format!("{text}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stage_references_and_aggregates() {
    let taken: &[(u16, &str)] = &[
        (0, r#"{"price": 3, "user": "u"}"#),
        (0, r#"{"price": 1.5, "user": "v"}"#),
        (0, r#"{"user": "u"}"#),
        (1, r#"{"price": 10, "user": "w"}"#),
    ];
    let cases: &[(&str, &str)] = &[
        ("a.user", "\"u\""),
        ("a.price", "null"),
        ("b.price", "10"),
        ("count(a)", "3"),
        ("count(b)", "1"),
        ("sum(a.price)", "4.5"),
        ("avg(a.price)", "2.25"),
        ("min(a.price)", "1.5"),
        ("max(a.price)", "3"),
        ("first(a.price)", "3"),
        ("last(a.price)", "null"),
        ("distinct(a.user)", "[\"u\",\"v\"]"),
        ("price > max(a.price)", "true"),
        ("sum(a.price) + price < 5.0", "false"),
        ("b.price - first(a.price)", "7"),
    ];
    let event = r#"{"price": 4}"#;
    for (text, want) in cases {
        assert_eq!(eval_after(text, taken, event), *want, "{text}");
    }
    // Over no events.
    let empty: &[(&str, &str)] = &[
        ("count(a)", "0"),
        ("sum(a.price)", "0"),
        ("avg(a.price)", "null"),
        ("min(a.price)", "null"),
        ("max(a.price)", "null"),
        ("first(a.price)", "null"),
        ("last(a.price)", "null"),
        ("distinct(a.price)", "[]"),
        ("a.price", "null"),
    ];
    for (text, want) in empty {
        assert_eq!(eval_after(text, &[], event), *want, "{text}");
    }
}
