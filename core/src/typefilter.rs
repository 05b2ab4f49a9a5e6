//! A type filter decided from an event's type alone, so that the events it drops never enter a batch: their `data` is
//! not copied, not held back for a checkpoint, not decoded into a JavaScript string and not parsed.
//!
//! It is the part of the wrapper's filter (`compileFilter` in js/src/filters.ts) that a scan can apply exactly:
//! exact names and prefixes, case-sensitive or not. The wrapper hands it over only when its whole filter is of that
//! kind and reads the type from a field of `data` ([`crate::typefield`]); any other filter (RegExps, types from a
//! header or a function) stays in JavaScript. Where the scan cannot tell the type ([`TypeAt::Unknown`]), or with
//! `ignore_case` the type is not ASCII (JavaScript's `toLowerCase` maps some non-ASCII letters to ASCII ones: `K`, the
//! Kelvin sign, is `k`), the filter does not decide: the event goes to JavaScript, which parses it and applies the
//! whole filter.

use crate::typefield::TypeAt;
use alloc::string::String;
use alloc::vec::Vec;

/// One pattern, as the wrapper's `TypePattern` minus RegExps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    /// The type is this name.
    Exact(String),
    /// The type starts with this.
    Prefix(String),
}

/// The filter: JavaScript's `match(type)` of js/src/filters.ts. With `ignore_case` the patterns are given lowercased
/// by JavaScript's `toLowerCase` (the wrapper does it: one home for Unicode case mapping) and an ASCII type is
/// lowercased here, which for ASCII text is the same mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter {
    /// When not empty, a type must match one of them; an event without a type is then dropped.
    pub include: Vec<TypePattern>,
    /// A type matching one of them is dropped (an event without a type never is).
    pub exclude: Vec<TypePattern>,
    /// Compare ignoring case (see the type's docs).
    pub ignore_case: bool,
}

impl TypePattern {
    /// Whether `t` matches; with `fold`, ignoring ASCII case (the pattern is lowercase already).
    fn test(&self, t: &[u8], fold: bool) -> bool {
        let (p, exact) = match self {
            TypePattern::Exact(p) => (p.as_bytes(), true),
            TypePattern::Prefix(p) => (p.as_bytes(), false),
        };
        let Some(head) = t.get(..p.len()).filter(|_| !exact || t.len() == p.len()) else {
            return false;
        };
        if fold {
            head.eq_ignore_ascii_case(p)
        } else {
            head == p
        }
    }
}

impl TypeFilter {
    /// Whether an event whose type the scan found as `at` in its `data` is kept, or `None` when only JavaScript can
    /// tell.
    ///
    /// ```
    /// use feedpump_core::typefield::TypeAt;
    /// use feedpump_core::typefilter::{TypeFilter, TypePattern};
    /// let f = TypeFilter { include: vec![TypePattern::Prefix("order.".into())], ignore_case: true, ..TypeFilter::default() };
    /// let data = br#"{"type":"Order.Created"}"#;
    /// assert_eq!(f.keeps(&TypeAt::At(9..22), data), Some(true));
    /// assert_eq!(f.keeps(&TypeAt::Absent, data), Some(false));
    /// assert_eq!(f.keeps(&TypeAt::Unknown, data), None);
    /// ```
    pub fn keeps(&self, at: &TypeAt, data: &[u8]) -> Option<bool> {
        let t = match at {
            TypeAt::Unknown => return None,
            TypeAt::Absent => return Some(self.include.is_empty()),
            TypeAt::At(r) => data.get(r.clone())?,
        };
        let fold = self.ignore_case;
        if fold && !t.is_ascii() {
            return None;
        }
        let any = |list: &[TypePattern]| list.iter().any(|p| p.test(t, fold));
        Some((self.include.is_empty() || any(&self.include)) && !any(&self.exclude))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn keeps(f: &TypeFilter, t: &str) -> Option<bool> {
        let data = alloc::format!("{{\"type\":\"{t}\"}}");
        f.keeps(&TypeAt::At(9..9 + t.len()), data.as_bytes())
    }

    #[test]
    fn include_exclude_exact_and_prefix() {
        use TypePattern::{Exact, Prefix};
        let f = TypeFilter {
            include: vec![Exact("A".into()), Prefix("Order.".into())],
            exclude: vec![Exact("Order.Void".into()), Prefix("Order.x".into())],
            ignore_case: false,
        };
        for (t, want) in
            [("A", true), ("a", false), ("AB", false), ("Order.", true), ("Order.Paid", true), ("order.Paid", false)]
        {
            assert_eq!(keeps(&f, t), Some(want), "{t}");
        }
        for t in ["Order.Void", "Order.xy", "", "B"] {
            assert_eq!(keeps(&f, t), Some(false), "{t}");
        }
        assert_eq!(f.keeps(&TypeAt::Absent, b"{}"), Some(false), "include: no type, dropped");
        assert_eq!(f.keeps(&TypeAt::Unknown, b"\"{}\""), None);
        let only_exclude = TypeFilter { exclude: vec![Exact("".into()), Exact("é".into())], ..TypeFilter::default() };
        assert_eq!(only_exclude.keeps(&TypeAt::Absent, b"{}"), Some(true), "no include: no type, kept");
        assert_eq!(keeps(&only_exclude, ""), Some(false));
        assert_eq!(keeps(&only_exclude, "é"), Some(false));
        assert_eq!(keeps(&only_exclude, "è"), Some(true));
        assert_eq!(keeps(&TypeFilter::default(), "x"), Some(true), "an empty filter keeps all");
    }

    #[test]
    fn ignore_case_decides_ascii_types_only() {
        let f = TypeFilter {
            include: vec![TypePattern::Exact("k".into()), TypePattern::Prefix("order.".into())],
            ignore_case: true,
            ..TypeFilter::default()
        };
        assert_eq!(keeps(&f, "K"), Some(true));
        assert_eq!(keeps(&f, "ORDER.PAID"), Some(true));
        assert_eq!(keeps(&f, "Orders"), Some(false));
        // The Kelvin sign lowercases to "k" in JavaScript: not the core's to decide.
        assert_eq!(keeps(&f, "\u{212A}"), None);
        assert_eq!(keeps(&f, "é"), None);
    }
}
