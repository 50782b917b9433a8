//! The series index of the metrics head: interned label symbols, each series' label set as
//! symbol ids, and postings (label name → value → sorted series refs), after Prometheus'
//! `tsdb/index/postings.go` (`MemPostings`) and `tsdb/querier.go` (`PostingsForMatchers`).
//!
//! Memory: a series costs its encoded label set (a varint count, then a varint name id and
//! value id per label, ~2–4 bytes a label), 8 bytes of table entry and 4 bytes in each of its
//! labels' postings lists; strings are stored once however many series share them.
//!
//! Invariants:
//! * Series refs are dense: `0..len()`, handed out in creation order.
//! * Every postings list is sorted and duplicate-free, because a ref is appended to its lists
//!   when it is created and refs only grow (the caller holds the index's write lock while
//!   creating, so no two creations interleave).
//! * A series' encoded labels are sorted by name (they come from a [`Labels`]).

use std::borrow::Cow;
use std::sync::Arc;

use ahash::AHashMap;

use super::matcher::LabelMatcher;
use super::paged::{Arena, PagedVec};
use crate::model::labels::{Label, Labels};

/// A series ref: its position in creation order.
pub(super) type SeriesRef = u32;

/// Interned strings; an id is an index into `strings`.
#[derive(Debug, Default)]
struct Symbols {
    ids: AHashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Symbols {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).expect("over 4G symbols");
        let shared: Arc<str> = Arc::from(text);
        self.strings.push(shared.clone());
        self.ids.insert(shared, id);
        id
    }

    fn lookup(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    fn get(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }
}

/// Where a series' labels are and where its samples live.
#[derive(Clone, Copy, Debug)]
struct Entry {
    labels: u32,
    location: u32,
}

/// Symbols, label sets and postings of every series.
#[derive(Debug, Default)]
pub(super) struct Index {
    symbols: Symbols,
    labels: Arena,
    series: PagedVec<Entry>,
    /// name id → value id → refs.
    postings: AHashMap<u32, AHashMap<u32, Vec<SeriesRef>>>,
    /// Scratch for encoding a label set.
    scratch: Vec<u8>,
}

impl Index {
    pub(super) fn len(&self) -> usize {
        self.series.len()
    }

    /// Adds a series and returns its ref. `location` is the caller's address of its samples.
    pub(super) fn add(&mut self, labels: &Labels, location: u32) -> SeriesRef {
        let series_ref = SeriesRef::try_from(self.series.len()).expect("over 4G series");
        let mut encoded = std::mem::take(&mut self.scratch);
        encoded.clear();
        put_varint(&mut encoded, labels.len() as u64);
        for label in labels {
            let name = self.symbols.intern(&label.name);
            let value = self.symbols.intern(&label.value);
            put_varint(&mut encoded, u64::from(name));
            put_varint(&mut encoded, u64::from(value));
            let list = self.postings.entry(name).or_default().entry(value).or_default();
            debug_assert!(list.last().is_none_or(|&last| last < series_ref));
            if list.len() == list.capacity() {
                // Grow by a quarter: the lists of common values reach millions of refs.
                list.reserve_exact((list.len() / 4).max(2));
            }
            list.push(series_ref);
        }
        let addr = self.labels.push(&encoded);
        self.scratch = encoded;
        self.series.push(Entry { labels: addr, location });
        series_ref
    }

    pub(super) fn location(&self, series_ref: SeriesRef) -> u32 {
        self.series.get(series_ref as usize).location
    }

    /// The `(name, value)` pairs of a series, sorted by name.
    pub(super) fn label_pairs(&self, series_ref: SeriesRef) -> LabelPairs<'_> {
        let addr = self.series.get(series_ref as usize).labels;
        let mut bytes = self.labels.get(addr);
        let left = take_varint(&mut bytes) as usize;
        LabelPairs { symbols: &self.symbols, bytes, left }
    }

    /// Whether series `series_ref` has exactly `labels`.
    pub(super) fn labels_equal(&self, series_ref: SeriesRef, labels: &Labels) -> bool {
        let pairs = self.label_pairs(series_ref);
        pairs.left == labels.len()
            && pairs.zip(labels).all(|((name, value), l)| name == l.name && value == l.value)
    }

    pub(super) fn labels(&self, series_ref: SeriesRef) -> Labels {
        let pairs = self.label_pairs(series_ref);
        Labels::from_sorted_unchecked(pairs.map(|(name, value)| Label::new(name, value)).collect())
    }

    /// The refs of the series every matcher matches, sorted (Prometheus' `PostingsForMatchers`):
    /// a matcher that does not match `""` needs the label, so it intersects the union of the
    /// postings of the values it matches; one that matches `""` also selects series without
    /// the label, so the series whose value it rejects are subtracted instead. Without
    /// intersecting matchers the base is every series.
    pub(super) fn postings_for_matchers(&self, matchers: &[LabelMatcher]) -> Vec<SeriesRef> {
        let mut intersect: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
        let mut subtract: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
        for matcher in matchers {
            if matcher.matches_empty() {
                let rejected = self.postings_where(matcher.name(), |v| !matcher.matches(v));
                if !rejected.is_empty() {
                    subtract.push(rejected);
                }
            } else {
                let accepted = self.postings_for(matcher);
                if accepted.is_empty() {
                    return Vec::new();
                }
                intersect.push(accepted);
            }
        }
        intersect.sort_by_key(|list| list.len());
        let mut lists = intersect.into_iter();
        let mut refs: Vec<SeriesRef> = match lists.next() {
            Some(first) => first.into_owned(),
            None => (0..self.len() as SeriesRef).collect(),
        };
        for list in lists {
            intersect_in_place(&mut refs, &list);
            if refs.is_empty() {
                return refs;
            }
        }
        for list in subtract {
            subtract_in_place(&mut refs, &list);
        }
        refs
    }

    /// The postings a matcher that needs its label selects; `=` is a direct lookup.
    fn postings_for(&self, matcher: &LabelMatcher) -> Cow<'_, [SeriesRef]> {
        if matcher.op() != super::matcher::MatchOp::Equal {
            return self.postings_where(matcher.name(), |v| matcher.matches(v));
        }
        let list = self
            .symbols
            .lookup(matcher.name())
            .zip(self.symbols.lookup(matcher.value()))
            .and_then(|(name, value)| self.postings.get(&name)?.get(&value));
        list.map_or(Cow::Borrowed(&[][..]), |list| Cow::Borrowed(list.as_slice()))
    }

    /// The union of the postings of label `name`'s values that `keep` accepts, sorted.
    fn postings_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Cow<'_, [SeriesRef]> {
        let Some(values) = self.symbols.lookup(name).and_then(|id| self.postings.get(&id)) else {
            return Cow::Borrowed(&[]);
        };
        let mut chosen: Vec<&[SeriesRef]> = values
            .iter()
            .filter(|(value, _)| keep(self.symbols.get(**value)))
            .map(|(_, list)| list.as_slice())
            .collect();
        match chosen.len() {
            0 => Cow::Borrowed(&[]),
            1 => Cow::Borrowed(chosen.pop().expect("one list")),
            _ => {
                // A series has one value per name, so the lists are disjoint: no dedup needed.
                let mut union: Vec<SeriesRef> =
                    Vec::with_capacity(chosen.iter().map(|l| l.len()).sum());
                for list in chosen {
                    union.extend_from_slice(list);
                }
                union.sort_unstable();
                Cow::Owned(union)
            }
        }
    }

    /// Label names, sorted: of every series, or of `refs` only.
    pub(super) fn label_names(&self, refs: Option<&[SeriesRef]>) -> Vec<String> {
        let mut names: Vec<String> = match refs {
            None => self.postings.keys().map(|&id| self.symbols.get(id).to_owned()).collect(),
            Some(refs) => {
                let mut ids: Vec<&str> = Vec::new();
                for &series_ref in refs {
                    ids.extend(self.label_pairs(series_ref).map(|(name, _)| name));
                    if ids.len() > 4096 {
                        ids.sort_unstable();
                        ids.dedup();
                    }
                }
                ids.into_iter().map(str::to_owned).collect()
            }
        };
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Values of label `name`, sorted: over every series, or over `refs` only.
    pub(super) fn label_values(&self, name: &str, refs: Option<&[SeriesRef]>) -> Vec<String> {
        let Some(name_id) = self.symbols.lookup(name) else {
            return Vec::new();
        };
        let mut values: Vec<String> = match refs {
            None => self
                .postings
                .get(&name_id)
                .map(|values| values.keys().map(|&id| self.symbols.get(id).to_owned()).collect())
                .unwrap_or_default(),
            Some(refs) => {
                let mut seen: Vec<&str> = Vec::new();
                for &series_ref in refs {
                    if let Some((_, value)) = self.label_pairs(series_ref).find(|(n, _)| *n == name)
                    {
                        seen.push(value);
                    }
                }
                seen.sort_unstable();
                seen.dedup();
                seen.into_iter().map(str::to_owned).collect()
            }
        };
        values.sort_unstable();
        values.dedup();
        values
    }
}

/// Iterator over a series' `(name, value)` pairs.
pub(super) struct LabelPairs<'a> {
    symbols: &'a Symbols,
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = take_varint(&mut self.bytes) as u32;
        let value = take_varint(&mut self.bytes) as u32;
        Some((self.symbols.get(name), self.symbols.get(value)))
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint the index wrote itself (so well-formed) and advances `bytes`.
fn take_varint(bytes: &mut &[u8]) -> u64 {
    let mut out = 0u64;
    let mut shift = 0;
    loop {
        let byte = bytes[0];
        *bytes = &bytes[1..];
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return out;
        }
        shift += 7;
    }
}

/// Keeps the refs of `acc` that are also in `other` (both sorted).
fn intersect_in_place(acc: &mut Vec<SeriesRef>, other: &[SeriesRef]) {
    if acc.len() * 16 < other.len() {
        acc.retain(|r| other.binary_search(r).is_ok());
        return;
    }
    let mut j = 0;
    acc.retain(|&r| {
        while j < other.len() && other[j] < r {
            j += 1;
        }
        j < other.len() && other[j] == r
    });
}

/// Removes the refs of `other` from `acc` (both sorted).
fn subtract_in_place(acc: &mut Vec<SeriesRef>, other: &[SeriesRef]) {
    if acc.len() * 16 < other.len() {
        acc.retain(|r| other.binary_search(r).is_err());
        return;
    }
    let mut j = 0;
    acc.retain(|&r| {
        while j < other.len() && other[j] < r {
            j += 1;
        }
        !(j < other.len() && other[j] == r)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_on_sorted_refs() {
        let mut acc = vec![1, 3, 5, 7, 9];
        intersect_in_place(&mut acc, &[0, 3, 4, 9, 10]);
        assert_eq!(acc, [3, 9]);
        let mut acc = vec![2];
        intersect_in_place(&mut acc, &(0..100).collect::<Vec<_>>());
        assert_eq!(acc, [2]);
        let mut acc = vec![1, 3, 5, 7, 9];
        subtract_in_place(&mut acc, &[3, 4, 9]);
        assert_eq!(acc, [1, 5, 7]);
        let mut acc = vec![5];
        subtract_in_place(&mut acc, &(0..100).collect::<Vec<_>>());
        assert!(acc.is_empty());
    }

    #[test]
    fn labels_round_trip_through_symbols() {
        let mut index = Index::default();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("x", "y")]);
        assert_eq!(index.add(&a, 7), 0);
        assert_eq!(index.add(&b, 8), 1);
        assert_eq!(index.labels(0), a);
        assert_eq!(index.labels(1), b);
        assert!(index.labels_equal(1, &b));
        assert!(!index.labels_equal(0, &b));
        assert_eq!(index.location(1), 8);
        assert_eq!(index.label_names(None), ["__name__", "job", "x"]);
        assert_eq!(index.label_values("job", None), ["api", "node"]);
        assert_eq!(index.label_values("job", Some(&[0])), ["node"]);
    }
}
