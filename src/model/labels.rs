//! Label sets: the identity of a series (and, later, of a log stream or a resource).
//!
//! Invariants of [`Labels`]: sorted by name (byte order), no two labels with the same name, no
//! empty values (Prometheus treats a label with an empty value as absent, see the data model:
//! <https://prometheus.io/docs/concepts/data_model/>). The only way to get a `Labels` is through
//! [`Labels::from_unsorted`], [`LabelsBuilder::build`] or [`Labels::from_sorted_unchecked`] (which
//! debug-asserts), so a `Labels` value never violates them.
//!
//! Owned `String`s are fine here: label sets are built only on a relabel-cache miss; the hot path
//! works on borrowed bytes of the request (see `ingest::remote_write::decode`).

use std::fmt;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}

/// A sorted, duplicate-free label set without empty values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Sorts by name; on duplicate names the last one wins; empty values are removed.
    pub fn from_unsorted(mut labels: Vec<Label>) -> Self {
        // A stable sort keeps the input order of equal names, so "last wins" is well defined.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for label in labels {
            match out.last_mut() {
                Some(last) if last.name == label.name => *last = label,
                _ => out.push(label),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Self(out)
    }

    /// For input already known to satisfy the invariants (checked in debug builds).
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Self {
        debug_assert!(
            labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels must be sorted by name without duplicates"
        );
        debug_assert!(labels.iter().all(|l| !l.value.is_empty()), "labels must not be empty");
        Self(labels)
    }

    /// Builds from `(name, value)` pairs; convenient in tests and config.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self::from_unsorted(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The value of `__name__`, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// A mutable builder seeded with these labels.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder { labels: self.0.clone() }
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prometheus text form: `{a="1", b="2"}` with the metric name in front when present.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for label in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

/// A mutable label set used while relabeling. Setting an empty value deletes the label, as in
/// Prometheus' `labels.Builder`.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            self.delete(name);
            return;
        }
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(label) => label.value = value,
            None => self.labels.push(Label { name: name.to_owned(), value }),
        }
    }

    pub fn delete(&mut self, name: &str) {
        self.labels.retain(|l| l.name != name);
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        self.labels.retain(|l| keep(l));
    }

    /// The current labels in insertion order (not necessarily sorted).
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    pub fn build(self) -> Labels {
        Labels::from_unsorted(self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_unsorted_sorts_dedups_and_drops_empty() {
        let labels = Labels::from_unsorted(vec![
            Label::new("b", "2"),
            Label::new("a", "1"),
            Label::new("b", "3"),
            Label::new("c", ""),
        ]);
        assert_eq!(
            labels,
            Labels::from_sorted_unchecked(vec![Label::new("a", "1"), Label::new("b", "3")])
        );
    }

    #[test]
    fn display_matches_prometheus_text_form() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a:1")]);
        assert_eq!(labels.to_string(), r#"up{instance="a:1", job="node"}"#);
    }

    #[test]
    fn builder_set_empty_deletes() {
        let mut builder = Labels::from_pairs([("a", "1"), ("b", "2")]).builder();
        builder.set("a", String::new());
        builder.set("c", "3".into());
        assert_eq!(builder.build(), Labels::from_pairs([("b", "2"), ("c", "3")]));
    }
}
