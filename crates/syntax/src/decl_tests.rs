//! Lists, indicators, rule attributes and effects: parsing, printing,
//! lowering and their errors.

use crate::lookup::{IndicatorFunc, ListKind, WriteOp};
use crate::{load_str, parse, print_file};

const RULES: &str = r#"/// Known bad addresses.
list blocked_ips
list blocked_nets of cidr
list risky_bins of prefixes
list watched_devices for 24h

/// Logins per user in the last hour.
indicator logins_1h = count() where type == "login" group by user_id within 1h
indicator paid_24h = sum(amount) where type == "payment" group by card within 24h
indicator accounts_per_device = count_distinct(user_id) group by device within 1d

pattern takeover {
    partition by user_id
    score 80
    level high
    action block
    tags "ato", "login"
    match login
    where
        login: type == "login" and (ip in blocked_ips or logins_1h(user_id) > 5) and not (device in watched_devices)
    select
        logins = logins_1h(login.user_id)
    then add login.device to watched_devices for 2h
    then remove login.ip from blocked_ips
}
"#;

#[test]
fn declarations_attributes_and_effects_parse_print_and_parse_back() {
    let file = parse(RULES).unwrap();
    assert_eq!(file.declarations.len(), 7);
    assert_eq!(file.patterns[0].effects.len(), 2);
    let printed = print_file(&file);
    let again = parse(&printed).unwrap();
    assert_eq!(again.without_spans(), file.without_spans(), "{printed}");
    assert_eq!(print_file(&again), printed);
}

#[test]
fn declarations_lower_to_the_rule_set_table() {
    let loaded = load_str("rules.cep", RULES);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let d = &loaded.declarations;
    assert_eq!(d.lists.len(), 4);
    assert_eq!(d.lists[1].kind, ListKind::Cidr);
    assert_eq!(d.lists[2].kind, ListKind::Prefixes);
    assert_eq!(d.lists[3].expiry, Some(86_400_000));
    assert_eq!(d.indicators[0].func, IndicatorFunc::Count);
    assert_eq!(d.indicators[0].window, 3_600_000);
    assert_eq!(d.indicators[2].func, IndicatorFunc::CountDistinct);
    let p = &loaded.patterns[0];
    assert!(p.uses_lookup());
    assert_eq!(p.attributes.level.as_deref(), Some("high"));
    assert_eq!(p.attributes.tags.len(), 2);
    assert_eq!(p.writes[0].op, WriteOp::Add);
    assert_eq!(p.writes[0].expiry, Some(7_200_000));
    assert_eq!(&*p.writes[1].list.name, "blocked_ips");
}

#[test]
fn the_pattern_source_loads_back_after_the_declarations() {
    let loaded = load_str("rules.cep", RULES);
    let text = format!(
        "{}\n{}",
        crate::declarations_source(&loaded.declarations),
        crate::pattern_source(&loaded.patterns[0]).unwrap()
    );
    let again = load_str("again.cep", &text);
    assert!(!again.has_errors(), "{}\n{text}", again.render());
    assert_eq!(
        crate::explain(&again.patterns[0]),
        crate::explain(&loaded.patterns[0])
    );
    assert_eq!(
        crate::declarations_source(&again.declarations),
        crate::declarations_source(&loaded.declarations)
    );
}

fn errors(src: &str) -> String {
    let loaded = load_str("r.cep", src);
    assert!(loaded.has_errors(), "no error for {src}");
    loaded.render()
}

#[test]
fn a_name_that_is_not_a_list_is_an_error_at_its_place() {
    let e =
        errors("list blocked_ips\npattern p {\n    match a\n    where a: ip in blocked_ip\n}\n");
    assert!(e.contains("r.cep:4:20"), "{e}");
    assert!(e.contains("`blocked_ip` is not a list"), "{e}");
    assert!(e.contains("did you mean the list `blocked_ips`?"), "{e}");
    let e = errors(
        "indicator n = count() within 1h\npattern p {\n    match a\n    where a: ip in n\n}\n",
    );
    assert!(e.contains("`n` is an indicator, not a list"), "{e}");
    let e = errors("pattern p {\n    match a\n    then add a.x to nowhere\n}\n");
    assert!(e.contains("`nowhere` is not a list"), "{e}");
}

#[test]
fn an_unknown_indicator_or_a_wrong_arity_is_an_error() {
    let src = "indicator logins_1h = count() group by user within 1h\n";
    let e = errors(&format!(
        "{src}pattern p {{\n    match a\n    where a: login_1h(user) > 3\n}}\n"
    ));
    assert!(e.contains("r.cep:4:14"), "{e}");
    assert!(e.contains("did you mean `logins_1h`?"), "{e}");
    let e = errors(&format!(
        "{src}pattern p {{\n    match a\n    where a: logins_1h(user, ip) > 3\n}}\n"
    ));
    assert!(e.contains("takes 1 value, but 2 are given"), "{e}");
}

#[test]
fn a_non_numeric_aggregate_and_duplicates_are_errors() {
    let e = errors("indicator s = sum(type == \"a\") within 1h\n");
    assert!(
        e.contains("`sum` needs a number, and this is always a boolean"),
        "{e}"
    );
    let e = errors("indicator s = avg(\"a\") within 1h\n");
    assert!(e.contains("always a string"), "{e}");
    let e = errors("list a\nindicator a = count() within 1h\n");
    assert!(e.contains("r.cep:2:11"), "{e}");
    assert!(e.contains("`a` is already declared"), "{e}");
    assert!(e.contains("first declared here"), "{e}");
    let e = errors("indicator s = count() group by u\n");
    assert!(e.contains("has no window"), "{e}");
    let e = errors("indicator s = median(x) within 1h\n");
    assert!(e.contains("not `median`"), "{e}");
    let e = errors("indicator s = count(x) within 1h\n");
    assert!(e.contains("takes no argument"), "{e}");
    let e = errors("indicator t = count() within 1h\nindicator s = sum(t()) within 1h\n");
    assert!(e.contains("cannot read another indicator"), "{e}");
    let e = errors("pattern p {\n    score 1\n    score 2\n    match a\n}\n");
    assert!(e.contains("the clause `score` is given twice"), "{e}");
}

#[test]
fn duplicates_across_files_point_at_the_first_file() {
    let mut loaded = crate::Loaded::default();
    loaded.add_str("a.cep", "list l\n");
    loaded.add_str("b.cep", "list l\n");
    let e = loaded.render();
    assert!(e.contains("b.cep:1:6"), "{e}");
    assert!(e.contains("a.cep:1:6"), "{e}");
}

#[test]
fn contextual_words_stay_names() {
    // `list`, `level`, `tags`, `then`, `score` are still fields and stages.
    let loaded = load_str(
        "r.cep",
        "pattern p {\n    match list next then\n    where\n        list: level > 1 and tags == score\n        then: group == 1\n}\n",
    );
    assert!(!loaded.has_errors(), "{}", loaded.render());
}

#[test]
fn flink_has_no_such_construct() {
    let loaded = load_str("rules.cep", RULES);
    let w = loaded.flink_warnings();
    let text: Vec<&str> = w.iter().map(|d| d.message.as_str()).collect();
    assert!(
        text.iter()
            .any(|m| m.contains("uses a construct Flink 2.3 does not have")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains("writes to list `watched_devices`")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|m| m.contains("rule attributes")),
        "{text:?}"
    );
    let plain = load_str("p.cep", "pattern p {\n    match a next b\n}\n");
    assert!(plain.flink_warnings().is_empty());
}

const SHADOW: &str = "list seen\npattern candidate {\n    partition by user\n    within 5m\n    shadow\n    match a followed by b\n    where\n        a: type == \"a\" and user in seen\n        b: type == \"b\"\n}\n";

#[test]
fn the_shadow_mark_parses_prints_lowers_and_comes_back_from_the_ir() {
    let file = parse(SHADOW).unwrap();
    let printed = print_file(&file);
    assert!(printed.contains("\n    shadow\n"), "{printed}");
    assert_eq!(
        parse(&printed).unwrap().without_spans(),
        file.without_spans()
    );
    let loaded = load_str("r.cep", SHADOW);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = &loaded.patterns[0];
    assert!(p.shadow);
    assert!(crate::explain(p).contains("shadow:       its records go to the shadow output"));
    // (the source a snapshot keeps says it, and reads back to it)
    let source = crate::pattern_source(p).unwrap();
    assert!(source.contains("\n    shadow\n"), "{source}");
    let again = load_str("r.cep", &format!("list seen\n{source}"));
    assert!(again.patterns[0].shadow, "{}", again.render());
    let live = load_str("r.cep", &SHADOW.replace("    shadow\n", ""));
    assert!(!live.patterns[0].shadow);
    // `shadow` is a clause word only where a clause may stand.
    let named = load_str(
        "r.cep",
        "pattern p {\n    match shadow\n    where shadow: shadow == 1\n}\n",
    );
    assert!(!named.has_errors(), "{}", named.render());
}

#[test]
fn a_shadow_pattern_may_write_a_list_and_is_marked_once() {
    // (its writes go to the list's shadow copy: `docs/semantics.md`,
    // "Shadow rules")
    let text = SHADOW.replace("\n}\n", "\n    then add a.user to seen\n}\n");
    let loaded = load_str("r.cep", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = &loaded.patterns[0];
    assert!(p.shadow);
    assert_eq!(p.writes.len(), 1);
    let explained = crate::explain(p);
    assert!(
        explained.contains("its writes go to the lists' shadow copies, read by shadow rules only"),
        "{explained}"
    );
    let e = errors(&SHADOW.replace("    shadow\n", "    shadow\n    shadow\n"));
    assert!(e.contains("the clause `shadow` is given twice"), "{e}");
}
