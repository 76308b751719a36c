//! Exact sums of a window's numbers, to which numbers are added and from
//! which they are taken away ([`ExactSum`]), for `sum` and `avg`
//! (`docs/semantics.md`, "Lists and indicators"): the value read is the
//! exact real sum of the numbers in the window rounded once to the
//! nearest `f64` (ties to even, as Python's `math.fsum`), or the exact
//! sum divided by the count rounded once, whatever came and went before.
//! A running `f64` forgets: after `1e20` then `600.0`, the sum is `1e20`
//! and stays `0.0` once `1e20` has left; Kahan's compensation keeps the
//! error of the last additions only, and is as wrong then.
//!
//! - Integers (`i64`, and the integers from 2^63 to 2^64 - 1 that the
//!   decoder keeps as their digits) are added in an `i128`: exact, and an
//!   integer sum while no float is in the window.
//! - Finite floats are added in a fixed-point number wide enough for every
//!   `f64` ([`Wide`]: [`LIMBS`] 64-bit words in two's complement, the last
//!   bit worth 2^-1074, the least subnormal, and 77 bits of room above
//!   `f64::MAX`), allocated while a float is in the window (a window of
//!   integers pays nothing for it). Adding and taking away are exact: a
//!   float is a 53-bit integer shifted into two words, with a carry.
//! - Infinities are counted apart (`+inf`, `-inf`, NaN when both are in
//!   the window, as an IEEE sum gives); NaN never enters (it is not a
//!   number: the window refuses it).
//!
//! Reading rounds once: the integer part is added to a copy of the
//! fixed-point number, and the 53 bits below its highest bit are kept,
//! rounded by the bits below them (`nearest`). The mean divides that
//! copy by the count, with 64 more bits below the last and the remainder
//! as a sticky bit, and rounds the quotient the same way.
//!
//! Why not a crate: those that sum exactly (`xsum`, `accurate`) keep
//! infinities and NaN as flags that cannot be taken away again, keep 67
//! words or more per sum on the heap whether floats are there or not, and
//! give no access to the exact bits that a mean rounded once needs.

use crate::value::Value;

/// The words of a [`Wide`]: bits 0 to 2097 hold the finite floats (the
/// least subnormal at bit 0, the top bit of `f64::MAX` at bit 2097); the
/// 78 bits above are room for carries (2^77 floats of `f64::MAX`) and
/// the sign.
pub(crate) const LIMBS: usize = 34;

/// The weight of bit 0 of a [`Wide`]: 2^-1074.
const LSB: i32 = -1074;

/// The bit of a [`Wide`] at which an integer's bit 0 is (2^0).
const ONE: u32 = 1074;

/// 2^53: below it, every integer is a float.
const EXACT_INT: u128 = 1 << 53;

/// A number a `sum` or `avg` takes (an admitted value).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// The number `value` is, if `sum`, `avg`, `min` and `max` take it: an
    /// integer, a float that is not NaN, or an integer from 2^63 to
    /// 2^64 - 1, which the decoder keeps as its digits
    /// ([`big_integer`]).
    pub(crate) fn of(value: &Value) -> Option<Number> {
        match value {
            Value::Int(i) => Some(Number::Int(i128::from(*i))),
            Value::Float(f) if !f.is_nan() => Some(Number::Float(*f)),
            Value::Str(s) => big_integer(s).map(|u| Number::Int(i128::from(u))),
            _ => None,
        }
    }

    /// The number as a value: an integer in the `i64` range as one, any
    /// other as the float nearest it.
    pub(crate) fn value(self) -> Value {
        match self {
            Number::Int(i) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
            Number::Float(f) => Value::Float(f),
        }
    }

    /// The exact order of two numbers (an integer and a float compared
    /// without rounding either; `-0.0` and `0.0` equal).
    pub(crate) fn cmp(self, other: Number) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Number::Int(a), Number::Float(b)) => int_float(a, b),
            (Number::Float(a), Number::Int(b)) => int_float(b, a).reverse(),
        }
    }
}

/// The order of the integer `i` (at most 2^64 in magnitude) and the float
/// `f` (not NaN), exactly.
fn int_float(i: i128, f: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    // (every float at or beyond ±2^100 is beyond any such integer; below,
    // its floor is an exact i128 and its fraction says the rest)
    const BEYOND: f64 = 1_267_650_600_228_229_401_496_703_205_376.0; // 2^100
    if f >= BEYOND {
        return Ordering::Less;
    }
    if f <= -BEYOND {
        return Ordering::Greater;
    }
    let floor = f.floor();
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Ordering::Less,
        ordering => ordering,
    }
}

/// The integer from 2^63 to 2^64 - 1 that `text` writes as the decoder
/// writes one (its digits, no sign, no leading zero:
/// `record::json_value`), if any.
pub(crate) fn big_integer(text: &str) -> Option<u64> {
    if !(19..=20).contains(&text.len())
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse::<u64>().ok().filter(|&u| u > i64::MAX as u64)
}

/// The finite floats of a window as one exact fixed-point number, and its
/// infinities.
#[derive(Clone, Debug)]
pub(crate) struct Wide {
    /// Two's complement, least significant word first.
    limbs: [u64; LIMBS],
    positive_infinities: u64,
    negative_infinities: u64,
}

impl Wide {
    fn new() -> Wide {
        Wide {
            limbs: [0; LIMBS],
            positive_infinities: 0,
            negative_infinities: 0,
        }
    }

    /// Adds `f` (`negate`: takes it away).
    fn add(&mut self, f: f64, negate: bool) {
        if f.is_infinite() {
            let count = if f > 0.0 {
                &mut self.positive_infinities
            } else {
                &mut self.negative_infinities
            };
            if negate {
                *count -= 1;
            } else {
                *count += 1;
            }
            return;
        }
        let bits = f.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as u32;
        let fraction = bits & ((1 << 52) - 1);
        // f = mantissa * 2^(at - 1074): a subnormal's at bit 0, a normal
        // number's (exponent field e) at bit e - 1.
        let (mantissa, at) = if exponent == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << 52), exponent - 1)
        };
        if mantissa == 0 {
            return;
        }
        let negative = (bits >> 63 == 1) != negate;
        add_shifted(&mut self.limbs, u128::from(mantissa), at, negative);
    }

    /// Nothing in it (every float taken away again).
    fn is_zero(&self) -> bool {
        self.limbs.iter().all(|&l| l == 0)
            && self.positive_infinities == 0
            && self.negative_infinities == 0
    }

    /// The sum's value when an infinity is in it.
    fn infinite(&self) -> Option<f64> {
        match (self.positive_infinities > 0, self.negative_infinities > 0) {
            (true, true) => Some(f64::NAN),
            (true, false) => Some(f64::INFINITY),
            (false, true) => Some(f64::NEG_INFINITY),
            (false, false) => None,
        }
    }
}

/// Adds `magnitude * 2^at` to the two's complement `limbs` (`negative`:
/// subtracts it), carrying (or borrowing) as far as needed; `magnitude`
/// has at most 128 bits and `at + 128` stays below the top word.
fn add_shifted(limbs: &mut [u64], magnitude: u128, at: u32, negative: bool) {
    let word = (at / 64) as usize;
    let shift = at % 64;
    // (the shifted magnitude in three words)
    let parts = [
        (magnitude << shift) as u64,
        ((magnitude >> 1) >> (63 - shift)) as u64,
        if shift == 0 {
            0
        } else {
            (magnitude >> (128 - shift)) as u64
        },
    ];
    let mut carry = false;
    let mut i = word;
    for part in parts {
        let (v, c1) = if negative {
            limbs[i].overflowing_sub(part)
        } else {
            limbs[i].overflowing_add(part)
        };
        let (v, c2) = if negative {
            v.overflowing_sub(u64::from(carry))
        } else {
            v.overflowing_add(u64::from(carry))
        };
        limbs[i] = v;
        carry = c1 || c2;
        i += 1;
    }
    while carry && i < limbs.len() {
        let (v, c) = if negative {
            limbs[i].overflowing_sub(1)
        } else {
            limbs[i].overflowing_add(1)
        };
        limbs[i] = v;
        carry = c;
        i += 1;
    }
}

/// The float nearest to `magnitude * 2^lsb`, plus something less than
/// its last bit's weight when `inexact` (ties to even); `lsb` at most
/// -1074, so that a subnormal's bits are in `magnitude`.
fn nearest(magnitude: &[u64], lsb: i32, inexact: bool) -> f64 {
    let Some(top_word) = magnitude.iter().rposition(|&l| l != 0) else {
        return 0.0;
    };
    // The highest bit, and its weight (the value is in [2^e, 2^(e+1))).
    let top = top_word as i32 * 64 + 63 - magnitude[top_word].leading_zeros() as i32;
    let e = top + lsb;
    if e > 1023 {
        return f64::INFINITY;
    }
    // Bits kept: 53, fewer for a subnormal (the last one worth 2^-1074).
    let kept = (e + 1075).min(53);
    if kept < 0 {
        // (below half the least subnormal)
        return 0.0;
    }
    // (`low` >= 0: `kept` <= `top` + 1 as `lsb` <= -1074)
    let low = top - kept + 1;
    let mut mantissa = bits(magnitude, low as u32, kept as u32);
    let half = low > 0 && bits(magnitude, low as u32 - 1, 1) == 1;
    let rest = inexact || (low > 1 && any_below(magnitude, low as u32 - 1));
    if half && (rest || mantissa & 1 == 1) {
        mantissa += 1;
    }
    // mantissa * 2^scale, exact but for an overflow to infinity.
    let scale = low + lsb;
    let power = if scale >= -1022 {
        f64::from_bits(((scale + 1023) as u64) << 52)
    } else {
        f64::from_bits(1 << (scale + 1074))
    };
    mantissa as f64 * power
}

/// `count` (at most 64) bits of `limbs` from bit `from`.
fn bits(limbs: &[u64], from: u32, count: u32) -> u64 {
    if count == 0 {
        return 0;
    }
    let word = (from / 64) as usize;
    let shift = from % 64;
    let mut v = limbs[word] >> shift;
    if shift > 0 && word + 1 < limbs.len() {
        v |= limbs[word + 1] << (64 - shift);
    }
    if count < 64 {
        v &= (1 << count) - 1;
    }
    v
}

/// Is any bit of `limbs` below bit `below` set?
fn any_below(limbs: &[u64], below: u32) -> bool {
    let word = (below / 64) as usize;
    let shift = below % 64;
    limbs[..word].iter().any(|&l| l != 0) || (shift > 0 && limbs[word] & ((1 << shift) - 1) != 0)
}

/// Negates the two's complement `limbs` in place.
fn negate(limbs: &mut [u64]) {
    let mut carry = true;
    for l in limbs {
        let (v, c) = (!*l).overflowing_add(u64::from(carry));
        *l = v;
        carry = c;
    }
}

/// The most wide parts a [`Spare`] keeps.
pub(crate) const SPARE_WIDES: usize = 4096;

/// Wide parts no sum holds any more (all zero), kept for the next sums
/// that take a float, at most [`SPARE_WIDES`] (1.2 MB): a window that
/// empties and fills again at every event would otherwise free one and
/// allocate one each time.
// (boxes, not `Vec<Wide>`: the store keeps the allocations themselves,
// which move to a sum and back without a copy of their 288 bytes)
#[allow(clippy::vec_box)]
#[derive(Clone, Debug, Default)]
pub(crate) struct Spare(Vec<Box<Wide>>);

impl Spare {
    /// A zero wide part, a kept one if any.
    fn take(&mut self) -> Box<Wide> {
        self.0.pop().unwrap_or_else(|| Box::new(Wide::new()))
    }

    /// Keeps `wide` (zero), within the bound.
    fn give(&mut self, wide: Box<Wide>) {
        if self.0.len() < SPARE_WIDES {
            self.0.push(wide);
        }
    }

    /// Wide parts kept.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The exact sum of the numbers in one window (for one `sum` or `avg`
/// indicator and one group): 32 bytes in the group's row, and a [`Wide`]
/// on the heap (288 bytes) while a float is in the window.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExactSum {
    integers: i128,
    /// The floats in the window (finite or not: a sum with one is a
    /// float).
    floats: u64,
    /// The floats' sum, while there is one.
    wide: Option<Box<Wide>>,
}

impl ExactSum {
    /// Adds `x` (a wide part, when it needs one, from `spare`).
    pub(crate) fn add(&mut self, x: Number, spare: &mut Spare) {
        match x {
            Number::Int(i) => self.integers += i,
            Number::Float(f) => {
                self.floats += 1;
                self.wide.get_or_insert_with(|| spare.take()).add(f, false);
            }
        }
    }

    /// Takes away `x`, added before (its wide part, when the last float
    /// leaves, to `spare`).
    pub(crate) fn remove(&mut self, x: Number, spare: &mut Spare) {
        match x {
            Number::Int(i) => self.integers -= i,
            Number::Float(f) => {
                self.floats -= 1;
                if let Some(wide) = &mut self.wide {
                    wide.add(f, true);
                }
                if self.floats == 0 {
                    // (the last float leaves: what is left is 0)
                    if let Some(wide) = self.wide.take() {
                        debug_assert!(wide.is_zero());
                        spare.give(wide);
                    }
                }
            }
        }
    }

    /// The heap bytes of a sum with a float ([`is_wide`](Self::is_wide)).
    pub(crate) const WIDE_BYTES: usize = std::mem::size_of::<Wide>();

    /// Does it hold a float, so a [`Wide`] on the heap?
    pub(crate) fn is_wide(&self) -> bool {
        self.wide.is_some()
    }

    /// Nothing in it.
    pub(crate) fn is_empty(&self) -> bool {
        self.integers == 0 && self.floats == 0 && self.wide.is_none()
    }

    /// The whole sum, in two's complement (the floats' and the
    /// integers'), when it is finite.
    fn limbs(&self) -> [u64; LIMBS] {
        let mut limbs = self.wide.as_ref().map_or([0; LIMBS], |w| w.limbs);
        if self.integers != 0 {
            add_shifted(
                &mut limbs,
                self.integers.unsigned_abs(),
                ONE,
                self.integers < 0,
            );
        }
        limbs
    }

    /// The sign and the magnitude of [`limbs`](Self::limbs).
    fn magnitude(&self) -> (bool, [u64; LIMBS]) {
        let mut limbs = self.limbs();
        let negative = limbs[LIMBS - 1] >> 63 == 1;
        if negative {
            negate(&mut limbs);
        }
        (negative, limbs)
    }

    /// `sum`: the integers' sum while no float is in the window (the
    /// nearest float beyond the `i64` range), else the exact sum rounded
    /// once.
    #[inline]
    pub(crate) fn sum(&self) -> Value {
        if self.floats == 0 {
            return Number::Int(self.integers).value();
        }
        self.sum_wide()
    }

    /// [`sum`](Self::sum) with a float in the window (out of line: most
    /// sums are of integers).
    #[inline(never)]
    fn sum_wide(&self) -> Value {
        if let Some(x) = self.wide.as_ref().and_then(|w| w.infinite()) {
            return Value::Float(x);
        }
        let (negative, magnitude) = self.magnitude();
        let x = nearest(&magnitude, LSB, false);
        Value::Float(if negative { -x } else { x })
    }

    /// `avg` over `n` numbers (at least one): the exact sum divided by
    /// `n`, rounded once.
    #[inline]
    pub(crate) fn mean(&self, n: u64) -> Value {
        debug_assert!(n > 0);
        if self.floats == 0 && self.integers.unsigned_abs() <= EXACT_INT {
            // (both exact as floats: one division, rounded once)
            return Value::Float(self.integers as f64 / n as f64);
        }
        self.mean_wide(n)
    }

    /// [`mean`](Self::mean) of a sum beyond 2^53 or with a float in the
    /// window (out of line, as [`sum_wide`](Self::sum_wide)).
    #[inline(never)]
    fn mean_wide(&self, n: u64) -> Value {
        if let Some(x) = self.wide.as_ref().and_then(|w| w.infinite()) {
            return Value::Float(x);
        }
        let (negative, magnitude) = self.magnitude();
        // (64 more bits below, divided from the top: the quotient's bits
        // down to 2^-1138, and whether anything was left)
        let mut quotient = [0u64; LIMBS + 1];
        let mut remainder: u64 = 0;
        let top = magnitude.iter().rposition(|&l| l != 0).map_or(0, |t| t + 1);
        for i in (0..=top).rev() {
            let word = if i == 0 { 0 } else { magnitude[i - 1] };
            let current = (u128::from(remainder) << 64) | u128::from(word);
            quotient[i] = (current / u128::from(n)) as u64;
            remainder = (current % u128::from(n)) as u64;
        }
        let x = nearest(&quotient, LSB - 64, remainder != 0);
        Value::Float(if negative { -x } else { x })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cepheid_testkit::decimal_sum::DecimalSum;
    use proptest::prelude::*;

    fn float(v: Value) -> f64 {
        match v {
            Value::Float(f) => f,
            other => panic!("not a float: {other:?}"),
        }
    }

    /// Are `a` and `b` the same float (NaN as NaN; -0.0 as 0.0)?
    fn same(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    /// An [`ExactSum`] and the reference, given the same numbers.
    #[derive(Default)]
    struct Both {
        s: ExactSum,
        r: DecimalSum,
        spare: Spare,
    }

    impl Both {
        fn add(&mut self, x: f64) -> &mut Both {
            self.s.add(Number::Float(x), &mut self.spare);
            self.r.add(x);
            self
        }

        fn remove(&mut self, x: f64) -> &mut Both {
            self.s.remove(Number::Float(x), &mut self.spare);
            self.r.remove(x);
            self
        }

        /// The sum, checked against the reference.
        fn sum(&self) -> f64 {
            let (s, r) = (float(self.s.sum()), self.r.sum());
            assert!(same(s, r), "sum {s}, reference {r}");
            s
        }

        fn mean(&self, n: u64) -> f64 {
            let (s, r) = (float(self.s.mean(n)), self.r.mean(n));
            assert!(same(s, r), "mean {s}, reference {r}");
            s
        }
    }

    #[test]
    fn the_issue_s_cases_and_the_edges_of_rounding() {
        let mut b = Both::default();
        // One huge payment, then 600.0s; the huge one leaves.
        assert_eq!(b.add(1e20).sum(), 1e20);
        for _ in 0..20 {
            b.add(600.0);
        }
        assert_eq!(b.sum(), 1e20 + 12_000.0);
        assert_eq!(b.remove(1e20).sum(), 12_000.0);
        assert_eq!(b.mean(20), 600.0);
        // Two of 1e308: beyond the largest float, then gone again.
        assert_eq!(b.add(1e308).add(1e308).sum(), f64::INFINITY);
        assert!((b.mean(22) - 1e308 / 11.0).abs() < 1e293);
        assert_eq!(b.remove(1e308).sum(), 1e308);
        assert_eq!(b.remove(1e308).sum(), 12_000.0);
        for _ in 0..20 {
            b.remove(600.0);
        }
        assert!(b.s.is_empty(), "{:?}", b.s);
        // Ten of 0.1 (0.9999999999999999 in running floats).
        for _ in 0..10 {
            b.add(0.1);
        }
        assert_eq!((b.sum(), b.mean(10)), (1.0, 0.1));
        for _ in 0..10 {
            b.remove(0.1);
        }
        // The least subnormal, and half of it: a tie, to the even 0.
        assert_eq!(b.add(5e-324).sum(), 5e-324);
        assert_eq!((b.mean(2), b.mean(1)), (0.0, 5e-324));
        // An integer beside: exact, and the float rounded once with it.
        b.s.add(Number::Int(-7), &mut b.spare);
        b.r.add_int(-7);
        assert_eq!(b.sum(), -7.0);
        b.s.remove(Number::Int(-7), &mut b.spare);
        b.r.remove_int(-7);
        // Infinities of both signs: NaN; one leaves: the other.
        assert_eq!(b.add(f64::NEG_INFINITY).sum(), f64::NEG_INFINITY);
        assert!(b.add(f64::INFINITY).sum().is_nan());
        assert_eq!(b.remove(f64::NEG_INFINITY).sum(), f64::INFINITY);
        assert_eq!(b.remove(f64::INFINITY).sum(), 5e-324);
        b.remove(5e-324);
        assert!(b.s.is_empty());
    }

    /// The bytes `docs/semantics.md` states: a group row's sum as large
    /// as the running one it replaced, 288 bytes on the heap with a float.
    #[test]
    fn a_sum_takes_32_bytes_and_288_more_with_a_float() {
        assert_eq!(std::mem::size_of::<ExactSum>(), 32);
        assert_eq!(ExactSum::WIDE_BYTES, 288);
    }

    #[test]
    fn integers_stay_exact_and_integers_beyond_i64_are_numbers() {
        let mut s = ExactSum::default();
        let spare = &mut Spare::default();
        let big = Number::of(&Value::Str("18446744073709551615".into())).unwrap();
        assert_eq!(big, Number::Int(i128::from(u64::MAX)));
        s.add(big, spare);
        assert_eq!(s.sum(), Value::Float(u64::MAX as f64));
        s.add(Number::Int(-i128::from(u64::MAX) + 5), spare);
        assert_eq!(s.sum(), Value::Int(5));
        s.add(Number::Int(i128::from(i64::MAX)), spare);
        s.add(Number::Int(i128::from(i64::MAX)), spare);
        // (2^64 + 3 is no float; the nearest is 2^64)
        assert_eq!(s.sum(), Value::Float(18_446_744_073_709_551_616.0));
        assert_eq!(s.mean(4), Value::Float(4_611_686_018_427_387_904.0));
        for not in [
            "9223372036854775807",
            "018446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1e19",
            "x",
        ] {
            assert_eq!(Number::of(&Value::Str(not.into())), None, "{not}");
        }
        assert_eq!(
            Number::of(&Value::Str("9223372036854775808".into())),
            Some(Number::Int(1 << 63))
        );
        assert_eq!(Number::of(&Value::Float(f64::NAN)), None);
    }

    #[test]
    fn numbers_are_ordered_exactly() {
        use std::cmp::Ordering::*;
        let big = Number::Int(i128::from(u64::MAX));
        // (u64::MAX as f64 is 2^64: above it)
        assert_eq!(big.cmp(Number::Float(u64::MAX as f64)), Less);
        assert_eq!(
            Number::Int(1 << 53).cmp(Number::Float(9_007_199_254_740_992.0)),
            Equal
        );
        assert_eq!(
            Number::Int((1 << 53) + 1).cmp(Number::Float(9_007_199_254_740_992.0)),
            Greater
        );
        assert_eq!(Number::Int(-3).cmp(Number::Float(-2.5)), Less);
        assert_eq!(Number::Int(-2).cmp(Number::Float(-2.5)), Greater);
        assert_eq!(Number::Float(f64::INFINITY).cmp(big), Greater);
        assert_eq!(
            Number::Float(f64::NEG_INFINITY).cmp(Number::Int(i128::from(i64::MIN))),
            Less
        );
        assert_eq!(Number::Float(-0.0).cmp(Number::Float(0.0)), Equal);
        assert_eq!(Number::Float(-0.0).cmp(Number::Int(0)), Equal);
    }

    /// A float of any kind: any bits (huge, tiny, subnormal, infinite),
    /// or a few to collide and cancel.
    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => any::<u64>().prop_map(f64::from_bits).prop_filter("not NaN", |f| !f.is_nan()),
            2 => prop::sample::select(vec![
                1e20, -1e20, 600.0, 1e308, -1e308, f64::MAX, -f64::MAX, 0.1, -0.1, 5e-324,
                -5e-324, f64::MIN_POSITIVE, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY,
                1.0, 3.0,
            ]),
            2 => (-1000i64..1000, -60i32..60).prop_map(|(m, e)| m as f64 * 2f64.powi(e)),
        ]
    }

    fn any_number() -> impl Strategy<Value = Number> {
        prop_oneof![
            6 => any_float().prop_map(Number::Float),
            1 => any::<i64>().prop_map(|i| Number::Int(i128::from(i))),
            1 => ((1u64 << 63)..=u64::MAX).prop_map(|u| Number::Int(i128::from(u))),
            1 => (-5i64..5).prop_map(|i| Number::Int(i128::from(i))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Over a sliding window of random numbers (each step adds one
        /// and takes away the oldest ones beyond the width), the sum and
        /// the mean equal the exact ones rounded once, after each step.
        #[test]
        fn sums_and_means_equal_the_decimal_reference_as_numbers_come_and_go(
            numbers in prop::collection::vec(any_number(), 1..60),
            width in 1usize..12,
        ) {
            let mut s = ExactSum::default();
            // (a wide part given back when the floats leave is taken again
            // when one comes: it must be zero)
            let mut spare = Spare::default();
            let mut r = DecimalSum::new();
            let mut window = std::collections::VecDeque::new();
            let apply = |x: Number, add: bool, r: &mut DecimalSum| match (x, add) {
                (Number::Int(i), true) => r.add_int(i),
                (Number::Int(i), false) => r.remove_int(i),
                (Number::Float(f), true) => r.add(f),
                (Number::Float(f), false) => r.remove(f),
            };
            for x in numbers {
                s.add(x, &mut spare);
                apply(x, true, &mut r);
                window.push_back(x);
                while window.len() > width {
                    let old = window.pop_front().unwrap();
                    s.remove(old, &mut spare);
                    apply(old, false, &mut r);
                }
                let floats = window.iter().any(|x| matches!(x, Number::Float(_)));
                let n = window.len() as u64;
                match s.sum() {
                    Value::Int(i) => {
                        prop_assert!(!floats);
                        let exact: i128 = window.iter().map(|x| match x { Number::Int(i) => *i, _ => 0 }).sum();
                        prop_assert_eq!(i128::from(i), exact);
                    }
                    Value::Float(f) => {
                        prop_assert!(same(f, r.sum()), "sum {} reference {} of {:?}", f, r.sum(), window);
                    }
                    other => prop_assert!(false, "{:?}", other),
                }
                let mean = float(s.mean(n));
                prop_assert!(same(mean, r.mean(n)), "mean {} reference {} of {:?}", mean, r.mean(n), window);
            }
            while let Some(old) = window.pop_front() {
                s.remove(old, &mut spare);
            }
            prop_assert!(s.is_empty());
            prop_assert!(spare.len() <= 1);
        }
    }
}
