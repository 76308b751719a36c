//! Exact state graphs of small patterns, as Flink's compiler builds them.

use std::sync::Arc;

use super::*;
use crate::event::NoFields;
use crate::pattern::{
    Contiguity, NativeCondition, Quantifier, Sequence, SkipStrategy, Stage, StageEvents,
};

/// A one-letter test event.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ch(char);

impl Event for Ch {
    type Fields = NoFields;

    fn field(&self, _id: crate::event::FieldId) -> crate::ValueRef<'_> {
        crate::ValueRef::Null
    }
}

fn native(c: char) -> Condition {
    let f: NativeFn<Ch> = Arc::new(move |e: &Ch, _: &dyn StageEvents<Ch>| e.0 == c);
    Condition::Native(NativeCondition {
        closure: Arc::new(f),
        iterative: false,
        description: format!("is {c}"),
    })
}

fn pattern(names: &[&str], elements: Vec<Element>) -> Pattern {
    Pattern {
        name: "p".into(),
        doc: None,
        partition_by: vec![],
        partition_by_fn: None,
        within: Some(10),
        skip: SkipStrategy::NoSkip,
        emit_timeouts: false,
        stages: names
            .iter()
            .map(|n| Stage {
                name: n.to_string(),
                condition: native(n.chars().next().unwrap_or('?')),
                span: Default::default(),
            })
            .collect(),
        sequence: Sequence { elements },
        select: vec![],
        attributes: Default::default(),
        shadow: false,
        writes: Vec::new(),
        reads: Vec::new(),
        declarations: None,
        span: Default::default(),
    }
}

fn el(stage: u16, contiguity: Contiguity) -> Element {
    Element {
        contiguity,
        ..Element::stage(StageId(stage))
    }
}

/// The explain text without its header line.
fn graph(p: &Pattern) -> String {
    let nfa = Nfa::<Ch>::compile(p, &mut NoFields).unwrap();
    let text = nfa.explain();
    text.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn strict_pair() {
    let p = pattern(
        &["a", "b"],
        vec![el(0, Contiguity::Relaxed), el(1, Contiguity::Strict)],
    );
    assert_eq!(
        graph(&p),
        "state 0 $endState$ (final)
state 1 b (normal)
  b --take[b]--> $endState$
state 2 a (start)
  a --take[a]--> b"
    );
}

#[test]
fn one_or_more_after_relaxed() {
    let mut b = el(1, Contiguity::Relaxed);
    b.quantifier = Quantifier::AtLeast(1);
    let p = pattern(&["a", "b"], vec![el(0, Contiguity::Relaxed), b]);
    assert_eq!(
        graph(&p),
        "state 0 $endState$ (final)
state 1 b (normal)
  b --proceed[true]--> $endState$
  b --take[b]--> b
  b --ignore[!b]--> b:0
state 2 b:0 (normal)
  b:0 --take[b]--> b
  b:0 --ignore[!b]--> b:0
state 3 b:1 (normal)
  b:1 --take[b]--> b
  b:1 --ignore[!b]--> b:1
state 4 a (start)
  a --take[a]--> b:1"
    );
}

#[test]
fn optional_middle_stage() {
    let mut b = el(1, Contiguity::Relaxed);
    b.optional = true;
    let p = pattern(
        &["a", "b", "c"],
        vec![el(0, Contiguity::Relaxed), b, el(2, Contiguity::Strict)],
    );
    assert_eq!(
        graph(&p),
        "state 0 $endState$ (final)
state 1 c (normal)
  c --take[c]--> $endState$
state 2 b (normal)
  b --take[b]--> c
  b --proceed[true]--> c
  b --ignore[!b]--> b:0
state 3 b:0 (normal)
  b:0 --take[b]--> c
  b:0 --ignore[!b]--> b:0
state 4 a (start)
  a --take[a]--> b"
    );
}

#[test]
fn not_followed_by_between_and_not_next_at_end() {
    let p = pattern(
        &["a", "n", "c"],
        vec![
            el(0, Contiguity::Relaxed),
            el(1, Contiguity::NotFollowedBy),
            el(2, Contiguity::Relaxed),
        ],
    );
    assert_eq!(
        graph(&p),
        "state 0 $endState$ (final)
state 1 c (normal)
  c --take[c]--> $endState$
  c --ignore[!c]--> c
  c --proceed[n]--> n
state 2 n (stop)
  n --take[n]--> n
state 3 a (start)
  a --take[a]--> c"
    );
    let p = pattern(
        &["a", "n"],
        vec![el(0, Contiguity::Relaxed), el(1, Contiguity::NotNext)],
    );
    assert_eq!(
        graph(&p),
        "state 0 $endState$ (final)
state 1 n (normal)
  n --ignore[!n]--> $endState$
  n --proceed[n]--> n:0
state 2 n:0 (stop)
  n:0 --take[n]--> n:0
state 3 a (start)
  a --take[a]--> n"
    );
}

#[test]
fn not_followed_by_at_the_end_is_pending() {
    let p = pattern(
        &["a", "n"],
        vec![el(0, Contiguity::Relaxed), el(1, Contiguity::NotFollowedBy)],
    );
    let text = graph(&p);
    assert!(text.contains("n (pending)"), "{text}");
    let mut no_window = p.clone();
    no_window.within = None;
    assert!(Nfa::<Ch>::compile(&no_window, &mut NoFields).is_err());
}

#[test]
fn closure_for_another_event_type_is_an_error() {
    let p = pattern(&["a"], vec![el(0, Contiguity::Relaxed)]);
    let err = Nfa::<crate::Record>::compile(&p, &mut NoFields).unwrap_err();
    assert!(err.message().contains("another event type"), "{err}");
}

#[test]
fn key_closure_for_another_event_type_is_an_error() {
    let key: crate::pattern::NativeKeyFn<Ch> = Arc::new(|e: &Ch| crate::Value::from(e.0 == 'a'));
    let mut p = pattern(&["a"], vec![el(0, Contiguity::Relaxed)]);
    p.partition_by_fn = Some(crate::pattern::NativeKey::new(key));
    assert!(Nfa::<Ch>::compile(&p, &mut NoFields).is_ok());
    p.stages[0].condition = Condition::True;
    let err = Nfa::<crate::Record>::compile(&p, &mut NoFields).unwrap_err();
    assert!(err.message().contains("partition key closure"), "{err}");
    assert_eq!(err.kind(), crate::ErrorKind::Pattern);
}

#[test]
fn dot_output_names_every_state() {
    let p = pattern(
        &["a", "b"],
        vec![el(0, Contiguity::Relaxed), el(1, Contiguity::Strict)],
    );
    let nfa = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap();
    let dot = nfa.to_dot();
    assert!(dot.starts_with("digraph \"p\" {"));
    assert!(dot.contains("s2 -> s1 [label=\"take a\", style=solid];"));
}

#[test]
fn a_graphs_file_stem_keeps_only_what_a_file_name_takes() {
    let p = pattern(&["a"], vec![el(0, Contiguity::Relaxed)]);
    let mut graph = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap().graph();
    graph.pattern = "über-fraud_2 ../x y".to_string();
    assert_eq!(graph.file_stem(), "über-fraud_2____x_y");
}

#[test]
fn malformed_ir_is_an_error_not_a_panic() {
    let p = pattern(&["a"], vec![el(3, Contiguity::Relaxed)]);
    assert!(Nfa::<Ch>::compile(&p, &mut NoFields).is_err());
    let p = pattern(&["a"], vec![Element::group(Sequence { elements: vec![] })]);
    assert!(Nfa::<Ch>::compile(&p, &mut NoFields).is_err());
}

#[test]
fn exploding_nested_groups_are_rejected() {
    let times = |e: Element, n: u32| Element {
        quantifier: Quantifier::Times { min: n, max: n },
        ..e
    };
    let inner = times(el(0, Contiguity::Relaxed), 100);
    let mid = times(
        Element::group(Sequence {
            elements: vec![inner],
        }),
        100,
    );
    let outer = times(
        Element::group(Sequence {
            elements: vec![mid],
        }),
        100,
    );
    let p = pattern(&["a"], vec![outer]);
    let err = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap_err();
    assert!(err.message().contains("states"), "{err}");
}

#[test]
fn automaton_is_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Nfa<crate::Record>>();
    send_sync::<Nfa<Ch>>();
}

/// `a (b? c?)? (b? c?)? ... z` with `groups` optional groups of two
/// optional stages: each group offers two PROCEED paths to the next one
/// (through `c?` or straight out of the group), so the paths from `a`'s
/// successor double with each group.
fn optional_groups(groups: u16) -> Pattern {
    let opt = |stage: u16| Element {
        optional: true,
        ..el(stage, Contiguity::Relaxed)
    };
    let last = 2 * groups + 1;
    let names: Vec<String> = (0..=last).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut elements = vec![el(0, Contiguity::Relaxed)];
    for g in 0..groups {
        let mut group = Element::group(Sequence {
            elements: vec![opt(1 + 2 * g), opt(2 + 2 * g)],
        });
        group.optional = true;
        elements.push(group);
    }
    elements.push(el(last, Contiguity::Relaxed));
    pattern(&names, elements)
}

#[test]
fn proceed_paths_are_bounded_at_compile_time() {
    // Flink's walk keeps no visited set: every PROCEED path is walked, and
    // each level of optional groups multiplies them. A few levels compile;
    // many are a compile error instead of an exponential (or, with the old
    // step budget, silently truncated) walk.
    let fields = &mut NoFields;
    assert!(Nfa::<Ch>::compile(&optional_groups(8), fields).is_ok());
    let err = Nfa::<Ch>::compile(&optional_groups(16), fields).unwrap_err();
    assert!(err.message().contains("too ambiguous"), "{err}");
    assert!(
        err.message().contains(&MAX_PROCEED_PATHS.to_string()),
        "{err}"
    );
}

#[test]
fn proceed_cycles_are_a_compile_error() {
    // `(a?)+ b`: validate rejects it, and so does the compiler (it is
    // public): Flink would loop forever.
    let mut inner = el(0, Contiguity::Relaxed);
    inner.optional = true;
    let mut group = Element::group(Sequence {
        elements: vec![inner],
    });
    group.quantifier = Quantifier::AtLeast(1);
    let p = pattern(&["a", "b"], vec![group, el(1, Contiguity::Relaxed)]);
    let err = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap_err();
    assert!(err.message().contains("cycle"), "{err}");
}

#[test]
fn equal_conditions_share_their_value_numbers() {
    use crate::expr::{BinaryOp, Expr};
    use crate::record::FieldTable;
    use crate::value::Value;
    let is = |t: &str| {
        Condition::Expr(Expr::Binary(
            BinaryOp::Eq,
            Box::new(Expr::Field(crate::event::FieldPath::single("type"))),
            Box::new(Expr::Literal(Value::from(t))),
        ))
    };
    let with = |conditions: Vec<Condition>| {
        let mut p = pattern(
            &["a", "b", "c"][..conditions.len()],
            (0..conditions.len() as u16)
                .map(|i| el(i, Contiguity::Relaxed))
                .collect(),
        );
        for (stage, condition) in p.stages.iter_mut().zip(conditions) {
            stage.condition = condition;
        }
        p
    };
    let mut fields = FieldTable::new();
    let mut first =
        Nfa::<crate::Record>::compile(&with(vec![is("a"), is("b")]), &mut fields).unwrap();
    let mut second =
        Nfa::<crate::Record>::compile(&with(vec![is("b"), is("c"), is("a")]), &mut fields).unwrap();
    // Unshared, each automaton numbers its own slots from 0.
    assert_eq!(first.conds.shared, [0, 1]);
    assert_eq!(second.conds.shared, [0, 1, 2]);
    let mut table = ConditionTable::default();
    first.share_conditions(&mut table);
    second.share_conditions(&mut table);
    assert_eq!(first.conds.shared, [0, 1]);
    assert_eq!(second.conds.shared, [1, 2, 0]);
    // Another table that numbered nothing takes both as they are, in any
    // order, and again (the numbers mean the same there).
    let mut other = ConditionTable::default();
    assert!(other.adopt(&second));
    assert!(other.adopt(&first));
    assert!(other.adopt(&second));
    // A table whose numbers mean other conditions refuses them, and is
    // left as it was.
    let mut third =
        Nfa::<crate::Record>::compile(&with(vec![is("c"), is("d")]), &mut fields).unwrap();
    let mut elsewhere = ConditionTable::default();
    third.share_conditions(&mut elsewhere);
    assert_eq!(third.conds.shared, [0, 1]);
    assert!(!elsewhere.adopt(&first));
    let before = format!("{elsewhere:?}");
    assert!(!elsewhere.adopt(&second));
    assert_eq!(format!("{elsewhere:?}"), before);
    // Refused at its last slot, after a first one that fits: nothing of
    // it is taken. (`new` numbered 3 after three others, `c` 4, where
    // `elsewhere` has `c` as 0.)
    let mut numbering = ConditionTable::default();
    let mut three =
        Nfa::<crate::Record>::compile(&with(vec![is("x"), is("y"), is("z")]), &mut fields).unwrap();
    three.share_conditions(&mut numbering);
    let mut late =
        Nfa::<crate::Record>::compile(&with(vec![is("new"), is("c")]), &mut fields).unwrap();
    late.share_conditions(&mut numbering);
    assert_eq!(late.conds.shared, [3, 4]);
    assert!(!elsewhere.admits(&late));
    assert!(!elsewhere.adopt(&late));
    assert_eq!(format!("{elsewhere:?}"), before);
    assert!(other.admits(&first) && other.admits(&second));
    // A condition of its own (no share key: it reads the run) belongs to
    // its automaton: the same number for another automaton's is refused.
    let own = |reads: &str| {
        let mut p = with(vec![is("a"), is("b")]);
        p.stages[1].condition = Condition::Expr(Expr::Binary(
            BinaryOp::Eq,
            Box::new(Expr::Field(crate::event::FieldPath::single("type"))),
            Box::new(Expr::StageField {
                stage: StageId(0),
                path: crate::event::FieldPath::single(reads),
            }),
        ));
        Nfa::<crate::Record>::compile(&p, &mut fields.clone()).unwrap()
    };
    let (mut x, mut y) = (own("type"), own("type"));
    x.share_conditions(&mut ConditionTable::default());
    y.share_conditions(&mut ConditionTable::default());
    assert_eq!(x.conds.shared, y.conds.shared);
    let mut both = ConditionTable::default();
    assert!(both.adopt(&x));
    assert!(both.adopt(&x));
    assert!(!both.adopt(&y));
}

#[test]
fn an_automaton_says_whether_a_resolver_numbers_its_fields_alike() {
    use crate::record::FieldTable;
    let mut p = pattern(&["a"], vec![el(0, Contiguity::Relaxed)]);
    p.stages[0].condition = Condition::Expr(crate::expr::Expr::Field(
        crate::event::FieldPath::single("flag"),
    ));
    let mut fields = FieldTable::new();
    fields.intern(&crate::event::FieldPath::single("other"));
    let nfa = Nfa::<crate::Record>::compile(&p, &mut fields).unwrap();
    assert!(nfa.reads_alike(&mut fields));
    assert!(nfa.reads_alike(&mut fields.clone()));
    // (a table that numbers `flag` first gives it another id)
    assert!(!nfa.reads_alike(&mut FieldTable::new()));
    let a = Nfa::<crate::Record>::compile(&p, &mut FieldTable::new()).unwrap();
    assert_ne!(a.id(), nfa.id());
}

#[test]
fn start_guards_and_static_graphs() {
    // `a followed by b`: the waiting state `b` depends on `b` only, the
    // start state `a` on `a` only.
    let p = pattern(
        &["a", "b"],
        vec![el(0, Contiguity::Relaxed), el(1, Contiguity::Relaxed)],
    );
    let nfa = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap();
    let (slot_a, slot_b) = (0, 1);
    assert_eq!(nfa.start_guard(), Some(&[slot_a][..]));
    assert_eq!(nfa.simple_start(), Some((StageId(0), StateId(1))));
    let waiting = nfa.static_graph(StateId(1)).unwrap();
    assert_eq!(waiting.slots(), [slot_b]);
    // no `b`: the run ignores the event into its own state; a `b`: it takes
    // it into the final state
    assert_eq!(waiting.stays[..2], [true, false]);
    let taken: Vec<_> = waiting.edges[1]
        .iter()
        .map(|e| (e.action, e.target, e.kind))
        .collect();
    assert_eq!(taken, vec![(Action::Take, StateId(0), StateKind::Final)]);
    let start = nfa.static_graph(nfa.start()).unwrap();
    assert_eq!((start.slots(), start.edges[0].len()), (&[slot_a][..], 0));

    // `a followed by b+`: `b` (state 1) proceeds to the final state, so a
    // take into it completes a match too; `b:0` (2) waits for the next `b`
    // inside the loop. Their graphs, by the value of `b`, are the walk's,
    // final state after the take included.
    let mut b = el(1, Contiguity::Relaxed);
    b.quantifier = Quantifier::AtLeast(1);
    let p = pattern(&["a", "b"], vec![el(0, Contiguity::Relaxed), b]);
    let nfa = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap();
    let edges = |g: &StaticGraph, i: usize| -> Vec<_> {
        g.edges[i]
            .iter()
            .map(|e| (e.action, e.target, e.final_after))
            .collect()
    };
    let (end, looping, waiting) = (StateId(0), StateId(1), StateId(2));
    for (state, stays) in [(looping, false), (waiting, true)] {
        let g = nfa.static_graph(state).unwrap();
        assert_eq!(g.slots(), [slot_b]);
        assert_eq!(edges(g, 0), [(Action::Ignore, waiting, None)]);
        assert_eq!(edges(g, 1), [(Action::Take, looping, Some(end))]);
        assert_eq!(g.stays[..2], [stays, false]);
    }

    // `a followed by b+ followed by c`: `b` proceeds to `c`, whose edges
    // join its graph (two slots, four graphs; the walk's stack order:
    // `b`'s own edges, then `c`'s).
    let mut b = el(1, Contiguity::Relaxed);
    b.quantifier = Quantifier::AtLeast(1);
    let p = pattern(
        &["a", "b", "c"],
        vec![el(0, Contiguity::Relaxed), b, el(2, Contiguity::Relaxed)],
    );
    let nfa = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap();
    let text = nfa.explain();
    assert!(text.contains("state 2 b (normal)"), "{text}");
    let g = nfa.static_graph(StateId(2)).unwrap();
    let (slot_c, c, b0) = (2, StateId(1), StateId(3));
    assert_eq!(g.slots(), [slot_b, slot_c]);
    // neither: into `b:0` and into `c`; `b`: taken, and into `c`; `c`:
    // into `b:0`, and taken into the final state
    assert_eq!(
        edges(g, 0),
        [(Action::Ignore, b0, None), (Action::Ignore, c, None)]
    );
    assert_eq!(
        edges(g, 1),
        [(Action::Take, StateId(2), None), (Action::Ignore, c, None)]
    );
    assert_eq!(
        edges(g, 2),
        [(Action::Ignore, b0, None), (Action::Take, end, None)]
    );
    assert_eq!(g.edges[2][1].kind, StateKind::Final);

    // `a followed by b? next c`: the start's one take leads to a state that
    // proceeds, so it is no simple start.
    let mut b = el(1, Contiguity::Relaxed);
    b.optional = true;
    let p = pattern(
        &["a", "b", "c"],
        vec![el(0, Contiguity::Relaxed), b, el(2, Contiguity::Strict)],
    );
    let nfa = Nfa::<Ch>::compile(&p, &mut NoFields).unwrap();
    assert_eq!(nfa.start_guard(), Some(&[slot_a][..]));
    assert_eq!(nfa.simple_start(), None);
}
