//! A threshold comparison (`< 90`, `≥ 38.5`): what a rule's trigger and its clear condition
//! test a value with. Pure; used by the rules, their engine and the rule file alike.

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Below(f64),
    AtOrAbove(f64),
    Above(f64),
    AtOrBelow(f64),
}

impl Condition {
    pub fn matches(self, v: f64) -> bool {
        match self {
            Condition::Below(t) => v < t,
            Condition::AtOrBelow(t) => v <= t,
            Condition::Above(t) => v > t,
            Condition::AtOrAbove(t) => v >= t,
        }
    }

    /// The opposite comparison at the same threshold (`< 90` → `≥ 90`): the clear condition of
    /// a rule without hysteresis.
    pub fn negated(self) -> Condition {
        match self {
            Condition::Below(t) => Condition::AtOrAbove(t),
            Condition::AtOrAbove(t) => Condition::Below(t),
            Condition::Above(t) => Condition::AtOrBelow(t),
            Condition::AtOrBelow(t) => Condition::Above(t),
        }
    }

    /// Whether some value satisfies both comparisons (a clear condition must not).
    pub fn overlaps(self, other: Condition) -> bool {
        use Condition::*;
        let (low, high) = match (self, other) {
            (Below(_) | AtOrBelow(_), Above(_) | AtOrAbove(_)) => (self, other),
            (Above(_) | AtOrAbove(_), Below(_) | AtOrBelow(_)) => (other, self),
            _ => return true, // same direction: both hold far enough out
        };
        match (low, high) {
            (AtOrBelow(a), AtOrAbove(b)) => b <= a,
            (Below(a) | AtOrBelow(a), Above(b) | AtOrAbove(b)) => b < a,
            _ => unreachable!("sorted above"),
        }
    }

    pub fn value(self) -> f64 {
        match self {
            Condition::Below(t)
            | Condition::AtOrBelow(t)
            | Condition::Above(t)
            | Condition::AtOrAbove(t) => t,
        }
    }

    /// The same comparison at another value.
    pub fn with_value(self, v: f64) -> Condition {
        match self {
            Condition::Below(_) => Condition::Below(v),
            Condition::AtOrBelow(_) => Condition::AtOrBelow(v),
            Condition::Above(_) => Condition::Above(v),
            Condition::AtOrAbove(_) => Condition::AtOrAbove(v),
        }
    }

    /// The comparison as people read it, e.g. `< 90`.
    pub fn describe(self) -> String {
        match self {
            Condition::Below(t) => format!("< {t}"),
            Condition::AtOrBelow(t) => format!("≤ {t}"),
            Condition::Above(t) => format!("> {t}"),
            Condition::AtOrAbove(t) => format!("≥ {t}"),
        }
    }

    /// The comparison [`Condition::describe`] wrote (`< 90`, `≥ 38.5`), e.g. from an alert's
    /// stored limit; `None` for anything else (a trend's `Δ > 10`).
    pub fn parse(described: &str) -> Option<Condition> {
        let s = described.trim();
        let (make, rest): (fn(f64) -> Condition, &str) = if let Some(r) = s.strip_prefix('≤') {
            (Condition::AtOrBelow, r)
        } else if let Some(r) = s.strip_prefix('≥') {
            (Condition::AtOrAbove, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (Condition::Below, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (Condition::Above, r)
        } else {
            return None;
        };
        rest.trim().parse::<f64>().ok().map(make)
    }
}

#[cfg(test)]
mod tests {
    use super::Condition;

    #[test]
    fn parse_reads_what_describe_writes() {
        for c in [
            Condition::Below(90.0),
            Condition::AtOrBelow(88.5),
            Condition::Above(38.5),
            Condition::AtOrAbove(130.0),
        ] {
            assert_eq!(Condition::parse(&c.describe()), Some(c));
        }
        assert_eq!(Condition::parse("Δ > 10"), None);
        assert_eq!(Condition::parse("< ninety"), None);
        assert_eq!(Condition::parse(""), None);
    }
}
