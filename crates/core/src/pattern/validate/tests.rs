//! Unit tests of [`super::validate`]: one per rule, on hand-built IR.

use super::*;
use crate::event::FieldPath;
use crate::expr::SelectItem;
use crate::pattern::ir::Stage;

fn stage(name: &str, at: usize) -> Stage {
    Stage {
        name: name.to_string(),
        condition: Condition::True,
        span: Span::new(at, at + name.len()),
    }
}

/// A pattern whose top-level sequence is one element per stage name.
fn pattern(names: &[&str]) -> Pattern {
    let stages: Vec<Stage> = names
        .iter()
        .enumerate()
        .map(|(i, n)| stage(n, i * 10))
        .collect();
    let elements = (0..names.len())
        .map(|i| {
            let mut e = Element::stage(StageId(i as u16));
            e.span = stages[i].span;
            e
        })
        .collect();
    let mut p = Pattern::new("p", stages, Sequence::new(elements));
    p.span = Span::new(0, 1);
    p
}

fn kinds(p: &Pattern) -> Vec<PatternErrorKind> {
    validate(p).into_iter().map(|e| e.kind).collect()
}

use PatternErrorKind as K;

#[test]
fn fields_and_a_closure_key_are_one_too_many() {
    let key: crate::pattern::NativeKeyFn<i64> = std::sync::Arc::new(|e: &i64| (*e).into());
    let mut p = pattern(&["a"]);
    p.partition_by_fn = Some(crate::pattern::NativeKey::new(key));
    assert_eq!(kinds(&p), vec![]);
    p.partition_by = vec![FieldPath::parse("user")];
    assert_eq!(kinds(&p), vec![K::MixedPartition]);
}

#[test]
fn valid_pattern_has_no_errors() {
    let mut p = pattern(&["a", "b", "c"]);
    p.sequence.elements[1].quantifier = Quantifier::AtLeast(1);
    p.sequence.elements[1].greedy = true;
    p.sequence.elements[1].inner = InnerContiguity::Consecutive;
    p.sequence.elements[2].contiguity = Contiguity::NotFollowedBy;
    p.within = Some(1000);
    assert_eq!(kinds(&p), vec![]);
}

#[test]
fn duplicate_stage_names_point_at_first() {
    let p = pattern(&["a", "b", "a"]);
    let errors = validate(&p);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, K::DuplicateStage);
    assert_eq!(errors[0].span, Span::new(20, 21));
    assert_eq!(errors[0].labels[0].0, Span::new(0, 1));
}

#[test]
fn duplicate_stage_inside_group() {
    let mut p = pattern(&["a", "b", "a"]);
    let inner = p.sequence.elements.split_off(1);
    p.sequence
        .elements
        .push(Element::group(Sequence { elements: inner }));
    assert_eq!(kinds(&p), vec![K::DuplicateStage]);
}

#[test]
fn sequence_starting_with_not() {
    let mut p = pattern(&["a", "b"]);
    p.sequence.elements[0].contiguity = Contiguity::NotNext;
    assert_eq!(kinds(&p), vec![K::StartsWithNot]);
}

#[test]
fn ending_with_not_followed_by_needs_within() {
    let mut p = pattern(&["a", "b"]);
    p.sequence.elements[1].contiguity = Contiguity::NotFollowedBy;
    assert_eq!(kinds(&p), vec![K::EndsWithNotFollowedBy]);
    p.within = Some(10);
    assert_eq!(kinds(&p), vec![]);
    // `not next` may end a pattern without a window.
    p.within = None;
    p.sequence.elements[1].contiguity = Contiguity::NotNext;
    assert_eq!(kinds(&p), vec![]);
}

#[test]
fn only_a_top_level_trailing_not_followed_by_needs_a_window() {
    // As Flink: a group ending with `not followed by` at the end of the
    // pattern is accepted without a window (the negation then binds only
    // between the group's repetitions).
    let mut p = pattern(&["a", "b", "c"]);
    p.sequence.elements[2].contiguity = Contiguity::NotFollowedBy;
    let top_level = p.clone();
    let inner = p.sequence.elements.split_off(1);
    p.sequence
        .elements
        .push(Element::group(Sequence { elements: inner }));
    assert_eq!(kinds(&p), vec![]);
    assert_eq!(kinds(&top_level), vec![K::EndsWithNotFollowedBy]);
    // Its own element window bounds it, as Flink's pending state.
    let mut own = top_level.clone();
    own.sequence.elements[2].within = Some(5);
    assert_eq!(kinds(&own), vec![]);
}

#[test]
fn window_of_a_middle_not_followed_by_is_not_checked() {
    // It makes no state, so Flink never registers (nor checks) its window.
    let mut p = pattern(&["a", "b", "c"]);
    p.within = Some(10);
    p.sequence.elements[1].contiguity = Contiguity::NotFollowedBy;
    p.sequence.elements[1].within = Some(20);
    assert_eq!(kinds(&p), vec![]);
    p.sequence.elements[2].within = Some(20);
    assert_eq!(kinds(&p), vec![K::ElementWindowTooLarge]);
}

#[test]
fn negation_reachable_before_any_take() {
    // `(a*) not followed by b followed by c`: Flink fails at run time.
    let mut p = pattern(&["a", "b", "c"]);
    p.sequence.elements[0].quantifier = Quantifier::AtLeast(1);
    p.sequence.elements[0].optional = true;
    let first = p.sequence.elements.remove(0);
    p.sequence.elements.insert(
        0,
        Element::group(Sequence {
            elements: vec![first],
        }),
    );
    p.sequence.elements[1].contiguity = Contiguity::NotFollowedBy;
    assert_eq!(kinds(&p), vec![K::NotAfterOptional]);
    // A required element before the group makes it fine.
    let mut q = pattern(&["x"]);
    q.stages.extend(p.stages.iter().cloned());
    for (i, s) in q.stages.iter_mut().enumerate() {
        s.name = format!("s{i}");
    }
    let mut shifted = p.sequence.elements.clone();
    fn shift(e: &mut Element) {
        match &mut e.kind {
            ElementKind::Stage(s) => s.0 += 1,
            ElementKind::Group(g) => g.elements.iter_mut().for_each(shift),
            ElementKind::Alternation(bs) => bs
                .iter_mut()
                .for_each(|b| b.elements.iter_mut().for_each(shift)),
        }
    }
    shifted.iter_mut().for_each(shift);
    q.sequence.elements.extend(shifted);
    assert_eq!(kinds(&q), vec![]);
}

#[test]
fn negation_ending_a_group_before_any_take_is_accepted() {
    // `((s1?) not followed by s2) followed by s3` (issue 27): Flink drops
    // a negation that ends a group (FLINK-15980) and runs the pattern; D1
    // binds it only after the group took an event.
    let mut p = pattern(&["s1", "s2", "s3"]);
    let mut rest = p.sequence.elements.split_off(1);
    let mut s1 = p.sequence.elements.pop().unwrap();
    s1.optional = true;
    let mut s2 = rest.remove(0);
    s2.contiguity = Contiguity::NotFollowedBy;
    let mut group = Element::group(Sequence::new(vec![
        Element::group(Sequence::new(vec![s1])),
        s2,
    ]));
    group.span = Span::new(0, 1);
    p.sequence.elements.push(group);
    p.sequence.elements.extend(rest);
    assert_eq!(kinds(&p), vec![]);
    // Followed by another element inside the group, the negation no longer
    // ends it: Flink fails at run time there (D5).
    let mut q = p.clone();
    q.stages.push(stage("s4", 40));
    let mut s4 = Element::stage(StageId(3));
    s4.span = Span::new(40, 42);
    if let ElementKind::Group(g) = &mut q.sequence.elements[0].kind {
        g.elements.push(s4);
    }
    assert_eq!(kinds(&q), vec![K::NotAfterOptional]);
    // A `not next` there is not dropped: Flink throws a NullPointerException
    // on the first event that satisfies it (`((s1?) not next s2) followed by
    // s3`, oracle seed 5121, case 5121-169), as for any negation reached
    // before a take (D5).
    let mut r = p.clone();
    if let ElementKind::Group(g) = &mut r.sequence.elements[0].kind {
        g.elements[1].contiguity = Contiguity::NotNext;
    }
    assert_eq!(kinds(&r), vec![K::NotAfterOptional]);
    // The group alone, the whole pattern: the same.
    r.sequence.elements.truncate(1);
    r.stages.truncate(2);
    assert_eq!(kinds(&r), vec![K::NotAfterOptional]);
}

#[test]
fn modifiers_on_not() {
    let mut p = pattern(&["a", "b", "c"]);
    let e = &mut p.sequence.elements[1];
    e.contiguity = Contiguity::NotNext;
    e.quantifier = Quantifier::AtLeast(1);
    e.optional = true;
    let errors = validate(&p);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, K::ModifierOnNot);
    assert!(errors[0].message.contains("a quantifier or `optional`"));
}

#[test]
fn not_on_group() {
    let mut p = pattern(&["a", "b", "c", "d"]);
    let tail = p.sequence.elements.split_off(3);
    let inner = p.sequence.elements.split_off(1);
    let mut g = Element::group(Sequence { elements: inner });
    g.contiguity = Contiguity::NotFollowedBy;
    p.sequence.elements.push(g);
    p.sequence.elements.extend(tail);
    assert_eq!(kinds(&p), vec![K::NotOnGroup]);
}

#[test]
fn not_after_optional() {
    let mut p = pattern(&["a", "b", "c", "d"]);
    p.sequence.elements[1].optional = true;
    p.sequence.elements[2].contiguity = Contiguity::NotFollowedBy;
    assert_eq!(kinds(&p), vec![K::NotAfterOptional]);
}

#[test]
fn until_needs_a_loop() {
    let mut p = pattern(&["a", "b"]);
    p.sequence.elements[1].until = Some(Condition::True);
    assert_eq!(kinds(&p), vec![K::UntilOnNonLooping]);
    p.sequence.elements[1].quantifier = Quantifier::Times { min: 2, max: 3 };
    assert_eq!(kinds(&p), vec![K::UntilOnNonLooping]);
    p.sequence.elements[1].quantifier = Quantifier::AtLeast(2);
    assert_eq!(kinds(&p), vec![]);
}

#[test]
fn greedy_rules() {
    let mut p = pattern(&["a", "b", "c"]);
    p.sequence.elements[0].greedy = true;
    assert_eq!(kinds(&p), vec![K::GreedyOnSingle]);
    p.sequence.elements[0].quantifier = Quantifier::Times { min: 2, max: 3 };
    assert_eq!(kinds(&p), vec![]);
    p.sequence.elements[0].inner = InnerContiguity::Combinations;
    assert_eq!(kinds(&p), vec![K::GreedyWithCombinations]);
    p.sequence.elements[0].inner = InnerContiguity::Relaxed;
    p.sequence.elements[1].optional = true;
    assert_eq!(kinds(&p), vec![K::OptionalAfterGreedy]);
}

#[test]
fn greedy_on_group() {
    let mut p = pattern(&["a", "b", "c"]);
    let inner = p.sequence.elements.split_off(1);
    let mut g = Element::group(Sequence { elements: inner });
    g.quantifier = Quantifier::AtLeast(1);
    g.greedy = true;
    p.sequence.elements.push(g);
    assert_eq!(kinds(&p), vec![K::GreedyOnGroup]);
}

#[test]
fn inner_contiguity_needs_repetition() {
    let mut p = pattern(&["a", "b"]);
    p.sequence.elements[1].inner = InnerContiguity::Consecutive;
    assert_eq!(kinds(&p), vec![K::InnerContiguityOnSingle]);
}

#[test]
fn quantifier_bounds() {
    let mut p = pattern(&["a"]);
    // `{0,2}` is Flink's `times(0, 2)`; `{0,0}` matches nothing.
    p.sequence.elements[0].quantifier = Quantifier::Times { min: 0, max: 2 };
    assert_eq!(kinds(&p), vec![]);
    p.sequence.elements[0].quantifier = Quantifier::Times { min: 0, max: 0 };
    assert_eq!(kinds(&p), vec![K::InvalidQuantifier]);
    // `{0,2} optional`: Flink's "Optional already applied!".
    p.sequence.elements[0].quantifier = Quantifier::Times { min: 0, max: 2 };
    p.sequence.elements[0].optional = true;
    assert_eq!(kinds(&p), vec![K::InvalidQuantifier]);
    p.sequence.elements[0].optional = false;
    p.sequence.elements[0].quantifier = Quantifier::Times { min: 3, max: 2 };
    assert_eq!(kinds(&p), vec![K::InvalidQuantifier]);
    p.sequence.elements[0].quantifier = Quantifier::AtLeast(10_001);
    assert_eq!(kinds(&p), vec![K::LimitExceeded]);
    p.sequence.elements[0].quantifier = Quantifier::Times {
        min: 1,
        max: 10_000,
    };
    assert_eq!(kinds(&p), vec![]);
}

#[test]
fn element_window_not_larger_than_pattern_window() {
    let mut p = pattern(&["a", "b"]);
    p.within = Some(1000);
    p.sequence.elements[1].within = Some(1000);
    assert_eq!(kinds(&p), vec![]);
    p.sequence.elements[1].within = Some(1001);
    assert_eq!(kinds(&p), vec![K::ElementWindowTooLarge]);
    p.within = None;
    assert_eq!(kinds(&p), vec![]);
    p.sequence.elements[1].within = Some(-1);
    assert_eq!(kinds(&p), vec![K::InvalidWindow]);
}

#[test]
fn skip_target_must_be_top_level() {
    let mut p = pattern(&["a", "b", "c"]);
    p.skip = SkipStrategy::ToFirst(StageId(2));
    assert_eq!(kinds(&p), vec![]);
    let inner = p.sequence.elements.split_off(1);
    p.sequence
        .elements
        .push(Element::group(Sequence { elements: inner }));
    assert_eq!(kinds(&p), vec![K::InvalidSkipTarget]);
    p.skip = SkipStrategy::ToLast(StageId(9));
    assert_eq!(kinds(&p), vec![K::InvalidSkipTarget]);
}

#[test]
fn select_cannot_read_the_current_event() {
    let mut p = pattern(&["a"]);
    p.select.push(SelectItem {
        name: "x".to_string(),
        expr: Expr::Field(FieldPath::single("price")),
        span: Span::new(3, 4),
    });
    p.select.push(SelectItem {
        name: "y".to_string(),
        expr: Expr::StageField {
            stage: StageId(0),
            path: FieldPath::single("price"),
        },
        span: Span::new(5, 6),
    });
    assert_eq!(kinds(&p), vec![K::FieldInSelect]);
}

#[test]
fn expression_stage_ids_are_checked() {
    let mut p = pattern(&["a"]);
    p.stages[0].condition = Condition::Expr(Expr::Aggregate {
        func: AggregateFunc::Sum,
        stage: StageId(0),
        path: None,
    });
    p.sequence.elements[0].until = None;
    p.select.push(SelectItem {
        name: "n".to_string(),
        expr: Expr::Aggregate {
            func: AggregateFunc::Count,
            stage: StageId(7),
            path: None,
        },
        span: Span::default(),
    });
    assert_eq!(kinds(&p), vec![K::InvalidExpression, K::InvalidExpression]);
}

#[test]
fn stage_ids_in_sequence_are_checked() {
    let mut p = pattern(&["a", "b"]);
    p.sequence.elements[1].kind = ElementKind::Stage(StageId(0));
    assert_eq!(kinds(&p), vec![K::InvalidStage, K::UnusedStage]);
    p.sequence.elements[1].kind = ElementKind::Stage(StageId(5));
    assert_eq!(kinds(&p), vec![K::InvalidStage, K::UnusedStage]);
}

#[test]
fn empty_sequences_and_limits() {
    let mut p = pattern(&[]);
    assert_eq!(kinds(&p), vec![K::EmptySequence]);
    p = pattern(&["a"]);
    p.sequence
        .elements
        .push(Element::group(Sequence::default()));
    assert_eq!(kinds(&p), vec![K::EmptySequence]);
    let names: Vec<String> = (0..=MAX_STAGES).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(kinds(&pattern(&refs)), vec![K::LimitExceeded]);
}

#[test]
fn deep_groups_are_limited() {
    let mut p = pattern(&["a"]);
    for _ in 0..200 {
        let seq = std::mem::take(&mut p.sequence);
        p.sequence.elements.push(Element::group(seq));
    }
    assert_eq!(kinds(&p), vec![K::LimitExceeded, K::UnusedStage]);
}

#[test]
fn reports_every_error() {
    let mut p = pattern(&["a", "b", "a"]);
    p.sequence.elements[0].contiguity = Contiguity::NotNext;
    p.sequence.elements[1].greedy = true;
    p.sequence.elements[1].until = Some(Condition::True);
    assert_eq!(
        kinds(&p),
        vec![
            K::StartsWithNot,
            K::UntilOnNonLooping,
            K::GreedyOnSingle,
            K::DuplicateStage
        ]
    );
}

#[test]
fn show_ms_picks_the_largest_unit() {
    assert_eq!(show_ms(900_000), "15m");
    assert_eq!(show_ms(1500), "1500ms");
    assert_eq!(show_ms(0), "0ms");
    assert_eq!(show_ms(86_400_000), "1d");
}

#[test]
fn repeated_group_that_can_take_nothing() {
    // `a ((b c) optional){2,}`: an iteration may take no event.
    let mut p = pattern(&["a", "b", "c"]);
    let inner = p.sequence.elements.split_off(1);
    let mut optional_group = Element::group(Sequence { elements: inner });
    optional_group.optional = true;
    let mut repeated = Element::group(Sequence {
        elements: vec![optional_group],
    });
    repeated.quantifier = Quantifier::AtLeast(2);
    p.sequence.elements.push(repeated);
    assert_eq!(kinds(&p), vec![K::EmptyIteration]);
    // One required element in the iteration is enough.
    let Some(ElementKind::Group(seq)) = p.sequence.elements.last_mut().map(|e| &mut e.kind) else {
        unreachable!()
    };
    seq.elements[0].optional = false;
    assert_eq!(kinds(&p), vec![]);
}
