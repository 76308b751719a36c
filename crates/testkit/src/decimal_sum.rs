//! A reference for exact sums and means of floats and integers, written
//! with nothing the engine's exact sums use ([`DecimalSum`]): each number
//! is taken as its exact decimal expansion (`format!("{:.1080}")`: every
//! `f64` has at most 1074 digits after the point), the digits are added
//! and taken away in base 10^9, and the result is rounded once by Rust's
//! own decimal parser (`str::parse::<f64>`, correctly rounded for any
//! number of digits). Slow, and obviously right: for tests only.

/// Digits after the point, a multiple of 9 and at least 1075 (the
/// midpoints between two floats have at most 1075), so that a quotient
/// cut there and marked inexact rounds as the exact one.
const FRACTION_DIGITS: usize = 1080;
const CHUNK: i64 = 1_000_000_000;
const FRACTION_CHUNKS: usize = FRACTION_DIGITS / 9;
/// Room for about 10^320 before the point: sums of thousands of floats
/// near `f64::MAX`.
const CHUNKS: usize = FRACTION_CHUNKS + 36;

/// An exact sum of floats and integers, with numbers taken away as well as
/// added; infinities counted apart (as IEEE adds them: `+inf`, `-inf`,
/// NaN when both are present).
#[derive(Clone, Debug)]
pub struct DecimalSum {
    /// The sum times 10^FRACTION_DIGITS, in chunks of 9 digits, least
    /// significant first, each chunk signed and not carried.
    chunks: Vec<i64>,
    positive_infinities: i64,
    negative_infinities: i64,
}

impl Default for DecimalSum {
    fn default() -> DecimalSum {
        DecimalSum::new()
    }
}

impl DecimalSum {
    /// Zero.
    pub fn new() -> DecimalSum {
        DecimalSum {
            chunks: vec![0; CHUNKS],
            positive_infinities: 0,
            negative_infinities: 0,
        }
    }

    /// Adds `x` (`sign` 1) or takes it away (`sign` -1). NaN is refused.
    fn float(&mut self, x: f64, sign: i64) {
        assert!(!x.is_nan(), "a NaN has no exact value");
        if x.is_infinite() {
            if x > 0.0 {
                self.positive_infinities += sign;
            } else {
                self.negative_infinities += sign;
            }
            return;
        }
        let text = format!("{:.*}", FRACTION_DIGITS, x.abs());
        let sign = if x < 0.0 { -sign } else { sign };
        self.digits(&text, sign);
    }

    /// Adds the number written `text` (`digits.digits`, the fraction of
    /// [`FRACTION_DIGITS`] digits or none) times `sign`.
    fn digits(&mut self, text: &str, sign: i64) {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let mut all: String = whole.to_string();
        all.push_str(fraction);
        all.push_str(&"0".repeat(FRACTION_DIGITS - fraction.len()));
        let bytes = all.as_bytes();
        let mut end = bytes.len();
        let mut i = 0;
        while end > 0 {
            let start = end.saturating_sub(9);
            let chunk: i64 = std::str::from_utf8(&bytes[start..end])
                .expect("digits")
                .parse()
                .expect("digits");
            assert!(i < CHUNKS, "beyond the reference's room");
            self.chunks[i] += sign * chunk;
            end = start;
            i += 1;
        }
    }

    /// Adds the float `x` (finite or infinite, not NaN).
    pub fn add(&mut self, x: f64) {
        self.float(x, 1);
    }

    /// Takes away the float `x`, added before.
    pub fn remove(&mut self, x: f64) {
        self.float(x, -1);
    }

    /// Adds the integer `i`.
    pub fn add_int(&mut self, i: i128) {
        let sign = if i < 0 { -1 } else { 1 };
        self.digits(&i.unsigned_abs().to_string(), sign);
    }

    /// Takes away the integer `i`, added before.
    pub fn remove_int(&mut self, i: i128) {
        let sign = if i < 0 { 1 } else { -1 };
        self.digits(&i.unsigned_abs().to_string(), sign);
    }

    /// The infinite or NaN result, if any infinity was added.
    fn infinite(&self) -> Option<f64> {
        match (self.positive_infinities > 0, self.negative_infinities > 0) {
            (true, true) => Some(f64::NAN),
            (true, false) => Some(f64::INFINITY),
            (false, true) => Some(f64::NEG_INFINITY),
            (false, false) => None,
        }
    }

    /// The sign and the carried chunks (each in `0..10^9`) of the sum's
    /// magnitude.
    fn magnitude(&self) -> (bool, Vec<i64>) {
        let mut chunks = self.chunks.clone();
        if carry(&mut chunks) >= 0 {
            return (false, chunks);
        }
        let mut negated: Vec<i64> = self.chunks.iter().map(|c| -c).collect();
        assert_eq!(carry(&mut negated), 0, "beyond the reference's room");
        (true, negated)
    }

    /// The exact sum rounded once to the nearest float (ties to even).
    pub fn sum(&self) -> f64 {
        if let Some(x) = self.infinite() {
            return x;
        }
        let (negative, chunks) = self.magnitude();
        let x: f64 = text(&chunks, false).parse().expect("a number");
        if negative {
            -x
        } else {
            x
        }
    }

    /// The exact sum divided by `n`, rounded once to the nearest float.
    pub fn mean(&self, n: u64) -> f64 {
        assert!(n > 0);
        if let Some(x) = self.infinite() {
            return x;
        }
        let (negative, mut chunks) = self.magnitude();
        let n = i64::try_from(n).expect("a count");
        let mut remainder = 0i128;
        for c in chunks.iter_mut().rev() {
            let current = remainder * i128::from(CHUNK) + i128::from(*c);
            *c = (current / i128::from(n)) as i64;
            remainder = current % i128::from(n);
        }
        // (a quotient cut after FRACTION_DIGITS digits, and a last digit
        // that says it was cut: between the cut and the next digit, no
        // midpoint between two floats)
        let x: f64 = text(&chunks, remainder != 0).parse().expect("a number");
        if negative {
            -x
        } else {
            x
        }
    }
}

/// Carries `chunks` (each into `0..10^9`); returns what is carried out of
/// the top (negative: the value is negative).
fn carry(chunks: &mut [i64]) -> i64 {
    let mut carry = 0i64;
    for c in chunks.iter_mut() {
        let v = *c + carry;
        *c = v.rem_euclid(CHUNK);
        carry = v.div_euclid(CHUNK);
    }
    carry
}

/// The decimal text of `chunks` (carried, times 10^-FRACTION_DIGITS),
/// with a last digit 1 after them when `inexact`.
fn text(chunks: &[i64], inexact: bool) -> String {
    let mut whole = String::new();
    for c in chunks[FRACTION_CHUNKS..].iter().rev() {
        whole.push_str(&format!("{c:09}"));
    }
    let whole = whole.trim_start_matches('0');
    let mut out = if whole.is_empty() {
        "0".to_string()
    } else {
        whole.to_string()
    };
    out.push('.');
    for c in chunks[..FRACTION_CHUNKS].iter().rev() {
        out.push_str(&format!("{c:09}"));
    }
    if inexact {
        out.push('1');
    }
    out
}

/// A number as `sum`, `avg`, `min` and `max` take it: an integer exactly,
/// or a float (not NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// Adds it to `sum` (`sign` true) or takes it away.
    fn put(self, sum: &mut DecimalSum, sign: bool) {
        match (self, sign) {
            (Number::Int(i), true) => sum.add_int(i),
            (Number::Int(i), false) => sum.remove_int(i),
            (Number::Float(f), true) => sum.add(f),
            (Number::Float(f), false) => sum.remove(f),
        }
    }

    /// The sign of an infinity.
    fn infinite(self) -> Option<bool> {
        match self {
            Number::Float(f) if f.is_infinite() => Some(f > 0.0),
            _ => None,
        }
    }

    /// `self` compared with `other` exactly (`-0.0` equal to `0.0`),
    /// through their exact difference.
    pub fn compare(self, other: Number) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.infinite(), other.infinite()) {
            (Some(x), Some(y)) => return x.cmp(&y),
            (Some(x), None) => return if x { Ordering::Greater } else { Ordering::Less },
            (None, Some(y)) => return if y { Ordering::Less } else { Ordering::Greater },
            (None, None) => {}
        }
        let mut d = DecimalSum::new();
        self.put(&mut d, true);
        other.put(&mut d, false);
        d.sum().partial_cmp(&0.0).unwrap_or(Ordering::Equal)
    }
}

/// `sum`, `avg`, `min` and `max` of a window's numbers, by their
/// definition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregates {
    /// The integers' sum while every number is an integer, else the
    /// exact sum rounded once.
    pub sum: Number,
    /// The exact sum divided by the count, rounded once (none over none).
    pub mean: Option<f64>,
    /// The least number (of equal ones, the latest).
    pub min: Option<Number>,
    /// The greatest number (of equal ones, the latest).
    pub max: Option<Number>,
}

impl Aggregates {
    /// Of `numbers`, oldest first.
    pub fn of(numbers: &[Number]) -> Aggregates {
        use std::cmp::Ordering;
        let mut exact = DecimalSum::new();
        let mut integers: i128 = 0;
        let mut floats = false;
        for &x in numbers {
            x.put(&mut exact, true);
            match x {
                Number::Int(i) => integers += i,
                Number::Float(_) => floats = true,
            }
        }
        let n = numbers.len() as u64;
        let pick = |keep: Ordering| {
            let mut best: Option<Number> = None;
            for &x in numbers {
                if best.map_or(true, |b| x.compare(b) != keep.reverse()) {
                    best = Some(x);
                }
            }
            best
        };
        Aggregates {
            sum: if floats {
                Number::Float(exact.sum())
            } else {
                Number::Int(integers)
            },
            mean: (n > 0).then(|| exact.mean(n)),
            min: pick(Ordering::Less),
            max: pick(Ordering::Greater),
        }
    }
}
