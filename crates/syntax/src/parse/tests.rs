//! Unit tests of the file and pattern grammar and of error recovery.

use crate::ast::{ClauseKind, ElementKind, ModifierKind, QuantifierKind, Skip, TimeUnit};
use crate::parse;
use crate::pattern::Contiguity;

fn one(src: &str) -> crate::ast::PatternDecl {
    match parse(src) {
        Ok(mut f) => f.patterns.remove(0),
        Err(d) => panic!("{}", d[0].message),
    }
}

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("accepted: {src}"),
        Err(d) => d.into_iter().map(|d| d.message).collect(),
    }
}

#[test]
fn docs_stay_with_their_pattern() {
    let f = parse(
        "// file comment\n/// First.\n///  indented\npattern a { match x }\n\n// c\npattern b { match y }",
    )
    .unwrap();
    assert_eq!(f.patterns[0].doc, vec!["First.", " indented"]);
    assert!(f.patterns[1].doc.is_empty());
    assert_eq!(f.patterns[1].name.name, "b");
}

#[test]
fn clauses_in_any_order() {
    let p = one(
        "pattern p { timeouts within 2h skip to last b partition by a.b, `c d` match a next b2 }",
    );
    let kinds: Vec<&str> = p.clauses.iter().map(|c| c.kind.keyword()).collect();
    assert_eq!(kinds, ["timeouts", "within", "skip", "partition by"]);
    assert!(
        matches!(&p.clauses[1].kind, ClauseKind::Within(d) if d.value == 2 && d.unit == TimeUnit::Hours)
    );
    assert!(matches!(&p.clauses[2].kind, ClauseKind::Skip(Skip::ToLast(i)) if i.name == "b"));
    let ClauseKind::PartitionBy(paths) = &p.clauses[3].kind else {
        panic!("not partition by")
    };
    assert_eq!(paths[1].segments[0].name, "c d");
}

#[test]
fn every_skip_strategy() {
    for (text, want) in [
        ("no skip", Skip::NoSkip),
        ("to next", Skip::ToNext),
        ("past last event", Skip::PastLastEvent),
    ] {
        let p = one(&format!("pattern p {{ skip {text} match a }}"));
        assert_eq!(p.clauses[0].kind, ClauseKind::Skip(want));
    }
    let p = one("pattern p { skip to first a match a }");
    assert!(matches!(&p.clauses[0].kind, ClauseKind::Skip(Skip::ToFirst(i)) if i.name == "a"));
    assert!(errors("pattern p { skip to a match a }")[0].contains("`next`, `first STAGE`"));
}

#[test]
fn every_connector() {
    let p = one(
        "pattern p { match a next b followed by c followed by any d not next e not followed by f }",
    );
    let kinds: Vec<Option<Contiguity>> = p
        .sequence
        .elements
        .iter()
        .map(|e| e.connector.map(|c| c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(Contiguity::Strict),
            Some(Contiguity::Relaxed),
            Some(Contiguity::NonDeterministic),
            Some(Contiguity::NotNext),
            Some(Contiguity::NotFollowedBy)
        ]
    );
}

#[test]
fn quantifiers_and_modifiers() {
    let p = one(
        "pattern p { match a? next b* next c+ next d{2} next e{2,} next f{2,5} next g+ optional greedy consecutive until h within 5s next i+ combinations }",
    );
    let q: Vec<Option<QuantifierKind>> = p
        .sequence
        .elements
        .iter()
        .map(|e| e.quantifier.map(|q| q.kind))
        .collect();
    assert_eq!(
        q[..6],
        [
            Some(QuantifierKind::Optional),
            Some(QuantifierKind::Star),
            Some(QuantifierKind::Plus),
            Some(QuantifierKind::Exactly(2)),
            Some(QuantifierKind::Range(2, None)),
            Some(QuantifierKind::Range(2, Some(5))),
        ]
    );
    let mods: Vec<&str> = p.sequence.elements[6]
        .modifiers
        .iter()
        .map(|m| m.kind.keyword())
        .collect();
    assert_eq!(
        mods,
        ["optional", "greedy", "consecutive", "until", "within"]
    );
    assert!(
        matches!(&p.sequence.elements[6].modifiers[3].kind, ModifierKind::Until(i) if i.name == "h")
    );
}

#[test]
fn groups_nest() {
    let p = one("pattern p { match a followed by (b next (c next d)+)? next e }");
    let ElementKind::Group(g) = &p.sequence.elements[1].kind else {
        panic!("not a group")
    };
    assert_eq!(g.elements.len(), 2);
    assert!(matches!(&g.elements[1].kind, ElementKind::Group(inner) if inner.elements.len() == 2));
    let deep = format!(
        "pattern p {{ match {}a{} }}",
        "(".repeat(80),
        ")".repeat(80)
    );
    assert!(errors(&deep)[0].contains("nested more than 64"));
}

#[test]
fn where_and_select_entries_span_lines() {
    let p = one(
        "pattern p {\n match a next b\n where\n  a: x > 1\n     and y < 2\n  b: z\n select\n  n = count(a)\n  m =\n   a.x\n}",
    );
    assert_eq!(p.where_entries.len(), 2);
    assert_eq!(p.select_entries.len(), 2);
    assert_eq!(p.where_entries[0].name.name, "a");
}

#[test]
fn stage_names_may_be_contextual_keywords() {
    let p = one("pattern p { match last followed by by next to }");
    assert_eq!(p.sequence.elements.len(), 3);
}

#[test]
fn reserved_words_are_not_names() {
    assert!(errors("pattern p { match where }")[0]
        .contains("expected a stage name or `(`, found the keyword `where`"));
    assert!(errors("pattern in { match a }")[0].contains("a pattern name"));
}

#[test]
fn errors_name_what_was_expected() {
    assert!(errors("pattern p { match a b }")[0].contains("expected a connector"));
    assert!(errors("pattern p { within 10 match a }")[0].contains("needs a unit"));
    assert!(errors("pattern p { match a }  x")[0]
        .contains("expected `pattern`, `list` or `indicator`, found `x`"));
    assert!(errors("pattern p { partition a match a }")[0].contains("`by` after `partition`"));
    assert!(errors("pattern p { match a{2 x}")[0].contains("`,` or `}`"));
    assert!(errors("pattern p { match a followed b }")[0].contains("`by` after `followed`"));
    assert!(errors("pattern p match a }")[0].contains("expected `{`"));
    assert!(errors("pattern p { match a where a: 1 x: }")[0].contains("expected an expression"));
}

#[test]
fn recovery_reports_every_pattern_and_entry() {
    let src = "pattern a { match x y }\npattern b {\n match x\n where\n  x: 1 +\n  y: = 2\n}\npattern c { match }\npattern d { match ok }\n";
    let d = parse(src).unwrap_err();
    assert_eq!(d.len(), 4, "{d:?}");
    let parsed = super::parse_file(src);
    let names: Vec<&str> = parsed
        .patterns
        .iter()
        .map(|(p, _)| p.name.name.as_str())
        .collect();
    assert_eq!(names, ["b", "d"]);
    assert!(parsed.patterns[0].1 && !parsed.patterns[1].1);
}

#[test]
fn spans_point_at_the_text() {
    let src = "pattern p {\n    match a+ greedy\n}";
    let p = one(src);
    let e = &p.sequence.elements[0];
    assert_eq!(&src[e.span.range()], "a+ greedy");
    assert_eq!(&src[p.span.range()], src);
    let d = &parse("pattern p {\n  match a b\n}").unwrap_err()[0];
    assert_eq!(d.span.range(), 22..23);
}

#[test]
fn too_many_patterns() {
    let src = "pattern p { match a }\n".repeat(super::MAX_PATTERNS + 1);
    let d = parse(&src).unwrap_err();
    assert!(d[0].message.contains("at most 10000 patterns"));
}

#[test]
fn a_misspelt_word_is_only_taken_for_a_word_that_fits_there() {
    let helps = |src: &str| -> Option<String> {
        match crate::parse(src) {
            Ok(_) => panic!("{src} parsed"),
            Err(d) => d[0].help.clone(),
        }
    };
    // `skip to` takes `next`, `first` or `last`: `end` is none of them, and
    // not the `and` it is one letter away from.
    let src = "pattern p { skip to end match a where a: x == 1 }";
    assert_eq!(helps(src), None);
    // A word close to one `skip to` takes is suggested.
    let src = "pattern p { skip to nxt match a where a: x == 1 }";
    assert_eq!(helps(src).as_deref(), Some("did you mean `next`?"));
    // Where an operator may come, the operator words are suggested.
    let src = "pattern p { match a where a: x == 1 adn y == 2 }";
    assert_eq!(helps(src).as_deref(), Some("did you mean `and`?"));
}
