//! Symbolic dims in a canonical form.
//!
//! A dim is an integer polynomial over dim names with integer coefficients.
//! Floor and ceiling division that cannot be simplified become opaque atoms
//! whose operands are themselves canonical, so `2*M` and `M + M` are the same
//! value and equality is structural. All arithmetic is checked: a result or
//! a coefficient that does not fit in an `i64` is [`DimError::Overflow`],
//! which the checker reports at the expression (it must never wrap into a
//! plausible size, nor panic).

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// An atom of a monomial: a dim name or an irreducible division.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    /// A dim name (`N`).
    Sym(Rc<str>),
    /// `⌊a / b⌋` that did not simplify.
    FloorDiv(Rc<Poly>, Rc<Poly>),
    /// `⌈a / b⌉` that did not simplify.
    CeilDiv(Rc<Poly>, Rc<Poly>),
}

/// A product of atoms, sorted (the empty product is the constant 1).
type Monomial = Vec<Atom>;

/// Σ coefficient · monomial, sorted by monomial, no zero coefficients.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Poly {
    terms: Vec<(Monomial, i64)>,
}

/// A dim: an integer when known, otherwise a canonical polynomial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A concrete size.
    Known(i64),
    /// Never constant: constants are always `Known`.
    Expr(Rc<Poly>),
}

/// What can be said about two dims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Equality {
    /// Provably equal (their canonical forms are the same).
    Equal,
    /// Provably different (their difference is a non-zero constant).
    Different,
    /// Not provably equal nor different (`N` against `M`).
    Unknown,
}

/// Why dim arithmetic has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimError {
    /// A division by a dim that is zero.
    DivisionByZero,
    /// A size or a coefficient does not fit in 64 bits.
    Overflow,
}

/// The result of dim arithmetic, which fails on division by zero and overflow.
pub type DimResult = Result<Dim, DimError>;

/// Floor and ceiling of `a / b` in exact integer arithmetic (`b != 0`);
/// `None` when the quotient does not fit (`i64::MIN / -1`).
fn div_round(a: i64, b: i64, ceil: bool) -> Option<i64> {
    let (a, b) = (i128::from(a), i128::from(b));
    let (q, r) = (a / b, a % b);
    // Truncation rounds towards zero; move to the floor or the ceiling.
    let q = if r != 0 && ((r < 0) != (b < 0)) { q - 1 } else { q };
    let q = if ceil && r != 0 { q + 1 } else { q };
    i64::try_from(q).ok()
}

impl Poly {
    fn constant(c: i64) -> Poly {
        if c == 0 { Poly::default() } else { Poly { terms: vec![(Vec::new(), c)] } }
    }

    fn from_terms(map: BTreeMap<Monomial, i64>) -> Poly {
        Poly { terms: map.into_iter().filter(|(_, c)| *c != 0).collect() }
    }

    fn as_const(&self) -> Option<i64> {
        match self.terms.as_slice() {
            [] => Some(0),
            [(m, c)] if m.is_empty() => Some(*c),
            _ => None,
        }
    }

    /// `self + sign·other`; `sign` is 1 or -1.
    fn add(&self, other: &Poly, sign: i64) -> Result<Poly, DimError> {
        let mut map: BTreeMap<Monomial, i64> = self.terms.iter().cloned().collect();
        for (m, c) in &other.terms {
            let e = map.entry(m.clone()).or_insert(0);
            *e = c.checked_mul(sign).and_then(|c| e.checked_add(c)).ok_or(DimError::Overflow)?;
        }
        Ok(Poly::from_terms(map))
    }

    fn mul(&self, other: &Poly) -> Result<Poly, DimError> {
        let mut map: BTreeMap<Monomial, i64> = BTreeMap::new();
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                let mut m: Monomial = m1.iter().chain(m2.iter()).cloned().collect();
                m.sort();
                let e = map.entry(m).or_insert(0);
                *e = c1.checked_mul(*c2).and_then(|c| e.checked_add(c)).ok_or(DimError::Overflow)?;
            }
        }
        Ok(Poly::from_terms(map))
    }

    /// `self - other` with exact (128-bit) coefficients: comparison must not
    /// fail where subtraction would overflow.
    fn difference<'a>(&'a self, other: &'a Poly) -> BTreeMap<&'a Monomial, i128> {
        let mut map: BTreeMap<&Monomial, i128> = BTreeMap::new();
        for (m, c) in &self.terms {
            *map.entry(m).or_insert(0) += i128::from(*c);
        }
        for (m, c) in &other.terms {
            *map.entry(m).or_insert(0) -= i128::from(*c);
        }
        map.retain(|_, c| *c != 0);
        map
    }
}

impl Dim {
    /// The dim named `name` (a symbol, unknown until bound).
    pub fn sym(name: &str) -> Dim {
        Dim::Expr(Rc::new(Poly { terms: vec![(vec![Atom::Sym(name.into())], 1)] }))
    }

    fn from_poly(p: Poly) -> Dim {
        match p.as_const() {
            Some(c) => Dim::Known(c),
            None => Dim::Expr(Rc::new(p)),
        }
    }

    fn poly(&self) -> Poly {
        match self {
            Dim::Known(c) => Poly::constant(*c),
            Dim::Expr(p) => (**p).clone(),
        }
    }

    /// The value, if the dim is a constant.
    pub fn as_known(&self) -> Option<i64> {
        match self {
            Dim::Known(c) => Some(*c),
            Dim::Expr(_) => None,
        }
    }

    /// The dim name if this dim is exactly one name (`N`, not `2*N`).
    pub fn as_sym(&self) -> Option<&str> {
        match self {
            Dim::Expr(p) => match p.terms.as_slice() {
                [(m, 1)] => match m.as_slice() {
                    [Atom::Sym(s)] => Some(s),
                    _ => None,
                },
                _ => None,
            },
            Dim::Known(_) => None,
        }
    }

    /// `self + o`, simplified.
    pub fn add(&self, o: &Dim) -> DimResult {
        match (self, o) {
            (Dim::Known(a), Dim::Known(b)) => a.checked_add(*b).map(Dim::Known).ok_or(DimError::Overflow),
            _ => Ok(Dim::from_poly(self.poly().add(&o.poly(), 1)?)),
        }
    }

    /// `self - o`, simplified.
    pub fn sub(&self, o: &Dim) -> DimResult {
        match (self, o) {
            (Dim::Known(a), Dim::Known(b)) => a.checked_sub(*b).map(Dim::Known).ok_or(DimError::Overflow),
            _ => Ok(Dim::from_poly(self.poly().add(&o.poly(), -1)?)),
        }
    }

    /// `self · o`, simplified.
    pub fn mul(&self, o: &Dim) -> DimResult {
        match (self, o) {
            (Dim::Known(a), Dim::Known(b)) => a.checked_mul(*b).map(Dim::Known).ok_or(DimError::Overflow),
            _ => Ok(Dim::from_poly(self.poly().mul(&o.poly())?)),
        }
    }

    /// `-self`.
    pub fn neg(&self) -> DimResult {
        Dim::Known(0).sub(self)
    }

    /// The product of `dims` (1 for none): element counts, parameter counts.
    pub fn product<'a>(dims: impl IntoIterator<Item = &'a Dim>) -> DimResult {
        dims.into_iter().try_fold(Dim::Known(1), |acc, d| acc.mul(d))
    }

    /// Floor division, simplified as far as it soundly goes:
    /// `(d·Q + R) / d = Q + R / d` for a constant divisor `d`.
    pub fn floor_div(&self, o: &Dim) -> DimResult {
        self.div(o, false)
    }

    /// Ceiling division (output sizes of `same`-padded strided layers), simplified like [`Dim::floor_div`].
    pub fn ceil_div(&self, o: &Dim) -> DimResult {
        self.div(o, true)
    }

    fn div(&self, o: &Dim, ceil: bool) -> DimResult {
        if let (Dim::Known(a), Dim::Known(b)) = (self, o) {
            if *b == 0 {
                return Err(DimError::DivisionByZero);
            }
            return div_round(*a, *b, ceil).map(Dim::Known).ok_or(DimError::Overflow);
        }
        if let Dim::Known(1) = o {
            return Ok(self.clone());
        }
        let num = self.poly();
        if let Some(d) = o.as_known() {
            if d == 0 {
                return Err(DimError::DivisionByZero);
            }
            if d > 0 {
                // Split each coefficient c = d·q + r with 0 ≤ r < d.
                let mut quotient = BTreeMap::new();
                let mut rest = BTreeMap::new();
                for (m, c) in &num.terms {
                    quotient.insert(m.clone(), c.div_euclid(d));
                    rest.insert(m.clone(), c.rem_euclid(d));
                }
                let quotient = Poly::from_terms(quotient);
                let rest = Poly::from_terms(rest);
                let tail = match rest.as_const() {
                    // 0 ≤ r < d: the quotient is 0, or 1 for an inexact ceiling.
                    Some(r) => Dim::Known(i64::from(ceil && r != 0)),
                    None => Dim::opaque(rest, Poly::constant(d), ceil),
                };
                return Dim::from_poly(quotient).add(&tail);
            }
        }
        // Exact division by a single monomial: (6·N·T) / (2·N) = 3·T.
        let den = o.poly();
        if let [(dm, dc)] = den.terms.as_slice()
            && *dc > 0
        {
            let mut out = BTreeMap::new();
            let exact = num.terms.iter().all(|(m, c)| {
                let Some(rest) = remove_sub_multiset(m, dm) else { return false };
                if c % dc != 0 {
                    return false;
                }
                out.insert(rest, c / dc);
                true
            });
            if exact {
                return Ok(Dim::from_poly(Poly::from_terms(out)));
            }
        }
        Ok(Dim::opaque(num, den, ceil))
    }

    fn opaque(num: Poly, den: Poly, ceil: bool) -> Dim {
        let (n, d) = (Rc::new(num), Rc::new(den));
        let atom = if ceil { Atom::CeilDiv(n, d) } else { Atom::FloorDiv(n, d) };
        Dim::Expr(Rc::new(Poly { terms: vec![(vec![atom], 1)] }))
    }

    /// Whether `self` and `o` are provably equal, provably different or neither (compares canonical polynomials).
    pub fn compare(&self, o: &Dim) -> Equality {
        let (a, b) = (self.poly(), o.poly());
        let diff = a.difference(&b);
        if diff.is_empty() {
            Equality::Equal
        } else if diff.keys().all(|m| m.is_empty()) {
            Equality::Different
        } else {
            Equality::Unknown
        }
    }

    /// How `self` orders against `o` when their difference is a constant
    /// (`H + 2` > `H`); exact even where subtraction would overflow.
    pub fn order(&self, o: &Dim) -> Option<std::cmp::Ordering> {
        let (a, b) = (self.poly(), o.poly());
        let diff = a.difference(&b);
        match diff.iter().next() {
            None => Some(std::cmp::Ordering::Equal),
            Some((m, c)) if m.is_empty() && diff.len() == 1 => Some(c.cmp(&0)),
            Some(_) => None,
        }
    }

    /// Replaces names by dims (`substitute(H ↦ 28)`), re-normalising.
    pub fn substitute(&self, f: &dyn Fn(&str) -> Option<Dim>) -> DimResult {
        match self {
            Dim::Known(_) => Ok(self.clone()),
            Dim::Expr(p) => subst_poly(p, f),
        }
    }

    /// Names that occur in this dim.
    pub fn symbols(&self) -> Vec<Rc<str>> {
        let mut out = Vec::new();
        if let Dim::Expr(p) = self {
            collect_syms(p, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// If this dim is `c·X + k` for one free name `X` (per `is_free`), returns
    /// `(X, c, k)`: used to solve a block's pattern dim from a call site.
    pub fn linear_in(&self, is_free: &dyn Fn(&str) -> bool) -> Option<(Rc<str>, i64, Dim)> {
        let Dim::Expr(p) = self else { return None };
        let mut found: Option<(Rc<str>, i64)> = None;
        let mut rest = BTreeMap::new();
        for (m, c) in &p.terms {
            match m.as_slice() {
                [Atom::Sym(s)] if is_free(s) => {
                    if found.is_some() {
                        return None;
                    }
                    found = Some((s.clone(), *c));
                }
                _ => {
                    if m.iter().any(|a| atom_mentions(a, is_free)) {
                        return None;
                    }
                    rest.insert(m.clone(), *c);
                }
            }
        }
        let (s, c) = found?;
        Some((s, c, Dim::from_poly(Poly::from_terms(rest))))
    }
}

/// `m` without the atoms of `sub` (as multisets), if `sub` divides `m`.
fn remove_sub_multiset(m: &Monomial, sub: &Monomial) -> Option<Monomial> {
    let mut rest = m.clone();
    for a in sub {
        let i = rest.iter().position(|x| x == a)?;
        rest.remove(i);
    }
    Some(rest)
}

fn atom_mentions(a: &Atom, is_free: &dyn Fn(&str) -> bool) -> bool {
    match a {
        Atom::Sym(s) => is_free(s),
        Atom::FloorDiv(n, d) | Atom::CeilDiv(n, d) => {
            [n, d].iter().any(|p| p.terms.iter().any(|(m, _)| m.iter().any(|a| atom_mentions(a, is_free))))
        }
    }
}

fn collect_syms(p: &Poly, out: &mut Vec<Rc<str>>) {
    for (m, _) in &p.terms {
        for a in m {
            match a {
                Atom::Sym(s) => out.push(s.clone()),
                Atom::FloorDiv(n, d) | Atom::CeilDiv(n, d) => {
                    collect_syms(n, out);
                    collect_syms(d, out);
                }
            }
        }
    }
}

fn subst_poly(p: &Poly, f: &dyn Fn(&str) -> Option<Dim>) -> DimResult {
    let mut acc = Dim::Known(0);
    for (m, c) in &p.terms {
        let mut term = Dim::Known(*c);
        for a in m {
            let v = match a {
                Atom::Sym(s) => f(s).unwrap_or_else(|| Dim::sym(s)),
                Atom::FloorDiv(n, d) | Atom::CeilDiv(n, d) => {
                    let (n, d) = (subst_poly(n, f)?, subst_poly(d, f)?);
                    let ceil = matches!(a, Atom::CeilDiv(..));
                    match if ceil { n.ceil_div(&d) } else { n.floor_div(&d) } {
                        Ok(v) => v,
                        // A substitution that makes a divisor zero keeps the division symbolic.
                        Err(DimError::DivisionByZero) => Dim::opaque(n.poly(), d.poly(), ceil),
                        Err(e) => return Err(e),
                    }
                }
            };
            term = term.mul(&v)?;
        }
        acc = acc.add(&term)?;
    }
    Ok(acc)
}

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::Known(v)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(c) => write!(f, "{c}"),
            Dim::Expr(p) => write_poly(f, p),
        }
    }
}

fn write_atom(f: &mut fmt::Formatter<'_>, a: &Atom) -> fmt::Result {
    match a {
        Atom::Sym(s) => write!(f, "{s}"),
        Atom::FloorDiv(n, d) => {
            write_operand(f, n)?;
            write!(f, " / ")?;
            write_operand(f, d)
        }
        Atom::CeilDiv(n, d) => {
            write!(f, "ceil(")?;
            write_poly(f, n)?;
            write!(f, " / ")?;
            write_poly(f, d)?;
            write!(f, ")")
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, p: &Poly) -> fmt::Result {
    let simple = p.terms.len() == 1
        && p.terms[0].1 == 1
        && p.terms[0].0.len() <= 1
        && !matches!(p.terms[0].0.first(), Some(Atom::FloorDiv(..)))
        || p.as_const().is_some_and(|c| c >= 0);
    if simple {
        write_poly(f, p)
    } else {
        write!(f, "(")?;
        write_poly(f, p)?;
        write!(f, ")")
    }
}

fn write_poly(f: &mut fmt::Formatter<'_>, p: &Poly) -> fmt::Result {
    if p.terms.is_empty() {
        return write!(f, "0");
    }
    // Symbolic terms first (`H - 2`, not `-2 + H`).
    let mut terms: Vec<&(Monomial, i64)> = p.terms.iter().filter(|(m, _)| !m.is_empty()).collect();
    terms.extend(p.terms.iter().filter(|(m, _)| m.is_empty()));
    for (i, (m, c)) in terms.iter().enumerate() {
        let c = *c;
        let mag = c.unsigned_abs();
        if i == 0 {
            if c < 0 {
                write!(f, "-")?;
            }
        } else {
            write!(f, "{}", if c < 0 { " - " } else { " + " })?;
        }
        if m.is_empty() {
            write!(f, "{mag}")?;
            continue;
        }
        if mag != 1 {
            write!(f, "{mag}*")?;
        }
        for (j, a) in m.iter().enumerate() {
            if j > 0 {
                write!(f, "*")?;
            }
            let needs_parens = matches!(a, Atom::FloorDiv(..)) && (m.len() > 1 || mag != 1);
            if needs_parens {
                write!(f, "(")?;
            }
            write_atom(f, a)?;
            if needs_parens {
                write!(f, ")")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Dim {
        Dim::sym(n)
    }
    fn k(v: i64) -> Dim {
        Dim::Known(v)
    }
    /// Unwrapping shorthands: these tests are about values that fit.
    fn add(a: &Dim, b: &Dim) -> Dim {
        a.add(b).unwrap()
    }
    fn sub(a: &Dim, b: &Dim) -> Dim {
        a.sub(b).unwrap()
    }
    fn mul(a: &Dim, b: &Dim) -> Dim {
        a.mul(b).unwrap()
    }

    #[test]
    fn canonical_form_identifies_equal_expressions() {
        let m = s("M");
        assert_eq!(mul(&k(2), &m), add(&m, &m));
        assert_eq!(add(&m, &s("N")), add(&s("N"), &m));
        assert_eq!(add(&mul(&m, &s("N")), &k(1)), add(&k(1), &mul(&s("N"), &m)));
        assert_eq!(sub(&m, &m), k(0));
        assert_eq!(sub(&add(&m, &k(3)), &k(3)), m);
    }

    #[test]
    fn floor_division_simplifies_soundly() {
        let h = s("H");
        // (2H + 4) / 2 = H + 2
        assert_eq!(add(&mul(&k(2), &h), &k(4)).floor_div(&k(2)).unwrap(), add(&h, &k(2)));
        // (H - 5) / 1 + 1 = H - 4
        assert_eq!(add(&sub(&h, &k(5)).floor_div(&k(1)).unwrap(), &k(1)), sub(&h, &k(4)));
        // H / 2 stays opaque, but equal to itself written differently.
        let a = h.floor_div(&k(2)).unwrap();
        let b = add(&h, &k(0)).floor_div(&k(2)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "H / 2");
        // (H + 3) / 2 = ((H + 1) / 2) + 1
        assert_eq!(add(&h, &k(3)).floor_div(&k(2)).unwrap(), add(&add(&h, &k(1)).floor_div(&k(2)).unwrap(), &k(1)));
        // (2H + 3) / 2 rounded up = H + 2
        assert_eq!(add(&mul(&k(2), &h), &k(3)).ceil_div(&k(2)).unwrap(), add(&h, &k(2)));
        assert_eq!(k(-7).floor_div(&k(2)).unwrap(), k(-4));
        assert_eq!(k(7).floor_div(&k(-2)).unwrap(), k(-4));
        assert_eq!(k(-7).floor_div(&k(-2)).unwrap(), k(3));
        assert_eq!(k(7).ceil_div(&k(2)).unwrap(), k(4));
        assert_eq!(k(7).ceil_div(&k(-2)).unwrap(), k(-3));
        assert_eq!(k(8).ceil_div(&k(2)).unwrap(), k(4));
        assert_eq!(h.floor_div(&k(0)), Err(DimError::DivisionByZero));
        assert_eq!(k(3).ceil_div(&k(0)), Err(DimError::DivisionByZero));
        // Exact division by a monomial: 784·N / N = 784.
        assert_eq!(mul(&k(784), &s("N")).floor_div(&s("N")).unwrap(), k(784));
        assert_eq!(mul(&mul(&k(6), &s("N")), &s("T")).floor_div(&mul(&k(2), &s("N"))).unwrap(), mul(&k(3), &s("T")));
        // Exact even where a float quotient would round: (2^62 + 1) / -1.
        assert_eq!(k((1 << 62) + 1).floor_div(&k(-1)).unwrap(), k(-(1 << 62) - 1));
        assert_eq!(k(i64::MAX).floor_div(&k(-2)).unwrap(), k(-(i64::MAX / 2) - 1));
    }

    #[test]
    fn comparison_distinguishes_different_from_unknown() {
        assert_eq!(s("M").compare(&s("M")), Equality::Equal);
        assert_eq!(add(&s("M"), &k(1)).compare(&s("M")), Equality::Different);
        assert_eq!(k(3).compare(&k(4)), Equality::Different);
        assert_eq!(s("M").compare(&s("N")), Equality::Unknown);
        // The difference of these does not fit in 64 bits; they still compare.
        assert_eq!(k(i64::MAX).compare(&k(-1)), Equality::Different);
        assert_eq!(k(i64::MIN).compare(&k(i64::MIN)), Equality::Equal);
        assert_eq!(add(&s("M"), &k(i64::MAX)).compare(&sub(&s("M"), &k(1))), Equality::Different);
        assert_eq!(k(i64::MAX).order(&k(-1)), Some(std::cmp::Ordering::Greater));
        assert_eq!(add(&s("M"), &k(2)).order(&s("M")), Some(std::cmp::Ordering::Greater));
        assert_eq!(s("M").order(&s("N")), None);
    }

    #[test]
    fn substitution_renormalises() {
        let e = add(&sub(&s("H"), &k(5)).floor_div(&k(2)).unwrap(), &k(1));
        let r = e.substitute(&|n| (n == "H").then_some(k(28))).unwrap();
        assert_eq!(r, k(12));
        let c = s("H").ceil_div(&s("S")).unwrap();
        let r = c.substitute(&|n| match n {
            "H" => Some(k(7)),
            "S" => Some(k(2)),
            _ => None,
        });
        assert_eq!(r, Ok(k(4)));
        // A divisor that becomes zero keeps the division symbolic.
        assert!(c.substitute(&|n| (n == "S").then_some(k(0))).unwrap().as_known().is_none());
    }

    #[test]
    fn solves_linear_patterns() {
        let e = add(&mul(&k(2), &s("M")), &k(1));
        let (x, c, rest) = e.linear_in(&|n| n == "M").unwrap();
        assert_eq!((&*x, c, rest), ("M", 2, k(1)));
        assert!(mul(&s("M"), &s("M")).linear_in(&|n| n == "M").is_none());
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(mul(&k(2), &s("M")).to_string(), "2*M");
        assert_eq!(sub(&s("H"), &k(2)).to_string(), "H - 2");
        assert_eq!(s("H").ceil_div(&k(2)).unwrap().to_string(), "ceil(H / 2)");
        assert_eq!(mul(&s("N"), &s("T")).to_string(), "N*T");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrapped_value() {
        let max = k(i64::MAX);
        // The cases: 2^63-1 * 2^63-1 wrapped to 1, 2^63-1 + 1 to a negative size.
        assert_eq!(max.mul(&max), Err(DimError::Overflow));
        assert_eq!(max.add(&k(1)), Err(DimError::Overflow));
        assert_eq!(k(i64::MIN).sub(&k(1)), Err(DimError::Overflow));
        assert_eq!(k(i64::MIN).neg(), Err(DimError::Overflow));
        assert_eq!(k(i64::MIN).floor_div(&k(-1)), Err(DimError::Overflow));
        assert_eq!(k(i64::MIN).ceil_div(&k(-1)), Err(DimError::Overflow));
        assert_eq!(k(i64::MAX).neg(), Ok(k(-i64::MAX)));
        // Two 3·10⁹ axes flattened: 9·10¹⁸ fits, three do not.
        let a = k(3_000_000_000);
        assert_eq!(Dim::product([&a, &a]), Ok(k(9_000_000_000_000_000_000)));
        assert_eq!(Dim::product([&a, &a, &a]), Err(DimError::Overflow));
        assert_eq!(Dim::product([]), Ok(k(1)));
        // Symbolic coefficients overflow too, in sums and in products.
        let big_x = mul(&s("X"), &max);
        assert_eq!(big_x.add(&s("X")), Err(DimError::Overflow));
        assert_eq!(big_x.mul(&k(2)), Err(DimError::Overflow));
        assert_eq!(sub(&k(0), &big_x).sub(&mul(&s("X"), &k(2))), Err(DimError::Overflow));
        // …and cancelling coefficients do not.
        assert_eq!(big_x.sub(&big_x), Ok(k(0)));
        // Substitution re-checks: X·2^62 with X = 4.
        let e = mul(&s("X"), &k(1 << 62));
        assert_eq!(e.substitute(&|_| Some(k(4))), Err(DimError::Overflow));
        assert_eq!(e.substitute(&|_| Some(k(1))), Ok(k(1 << 62)));
        // A symbolic division whose constant part overflows when split.
        assert!(big_x.floor_div(&k(3)).is_ok());
    }
}
