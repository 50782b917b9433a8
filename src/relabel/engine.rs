//! Applying compiled rules to a label set.

use std::borrow::Cow;

use md5::{Digest, Md5};

use super::config::RelabelConfig;
use super::error::RelabelError;
use super::gocompat::{go_to_lower, go_to_upper};
use super::rule::{Op, Rule};
use super::NameValidation;
use crate::model::{Label, Labels};

/// A validated, compiled list of relabeling rules.
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

impl Relabeler {
    /// Validates and compiles `configs` with legacy label-name validation.
    pub fn new(configs: &[RelabelConfig]) -> Result<Relabeler, RelabelError> {
        Relabeler::with_validation(configs, NameValidation::Legacy)
    }

    /// Validates and compiles `configs` with the given label-name validation.
    pub fn with_validation(
        configs: &[RelabelConfig],
        validation: NameValidation,
    ) -> Result<Relabeler, RelabelError> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Rule::compile(index, config, validation))
            .collect::<Result<_, _>>()?;
        Ok(Relabeler { rules })
    }

    /// True when there are no rules, i.e. [`process`](Self::process) returns its input.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Applies the rules in order. `None` means the series is dropped (by `keep`, `drop`,
    /// `keepequal` or `dropequal`). A series whose labels were all removed is *not* dropped: it
    /// comes back as an empty label set, as from Prometheus' `relabel.Process`.
    pub fn process(&self, labels: &Labels) -> Option<Labels> {
        let mut work = Work::new(labels.as_slice());
        // Holds joined source values; only grows when a rule reads several labels or a label
        // that an earlier rule wrote.
        let mut scratch = String::new();
        for rule in &self.rules {
            if !rule.apply(&mut work, &mut scratch) {
                return None;
            }
        }
        Some(work.finish(labels))
    }
}

impl Rule {
    /// Applies the rule; false means "drop the series".
    fn apply(&self, work: &mut Work<'_>, scratch: &mut String) -> bool {
        match &self.op {
            Op::LabelMap { regex, replacement } => {
                // Every label seen at the start of the rule, with the value it had then, in the
                // builder's order (see `Work`); later writes win.
                let mut copies: Vec<(String, Cow<'_, str>)> = Vec::new();
                // `captures` allocates even without a match, so test with `is_match` first.
                for label in work.visible_base().filter(|label| regex.is_match(&label.name)) {
                    if let Some(captures) = regex.captures(&label.name) {
                        copies.push((replacement.expand(&captures), Cow::Borrowed(&label.value)));
                    }
                }
                for label in work.added.iter().filter(|label| regex.is_match(&label.name)) {
                    if let Some(captures) = regex.captures(&label.name) {
                        let value = Cow::Owned(label.value.clone());
                        copies.push((replacement.expand(&captures), value));
                    }
                }
                for (name, value) in copies {
                    work.set(&name, value.into_owned());
                }
            }
            Op::LabelDrop { regex } => work.retain_names(|name| !regex.is_match(name)),
            Op::LabelKeep { regex } => work.retain_names(|name| regex.is_match(name)),
            op => {
                let value = self.source_value(work, scratch);
                match op {
                    Op::Keep { regex } => return regex.is_match(value),
                    Op::Drop { regex } => return !regex.is_match(value),
                    Op::KeepEqual { target } => return work.get(target) == value,
                    Op::DropEqual { target } => return work.get(target) != value,
                    Op::Replace { regex, target, replacement, validation } => {
                        // Most replace rules match few series; `captures` would allocate.
                        if !regex.is_match(value) {
                            return true;
                        }
                        let Some(captures) = regex.captures(value) else {
                            return true;
                        };
                        let target = match target.as_literal() {
                            Some(name) => Cow::Borrowed(name),
                            None => Cow::Owned(target.expand(&captures)),
                        };
                        if validation.is_valid_label_name(&target) {
                            // An empty value deletes the label.
                            work.set(&target, replacement.expand(&captures));
                        }
                    }
                    Op::HashMod { target, modulus } => {
                        let digest = Md5::digest(value.as_bytes());
                        let mut low = [0u8; 8];
                        low.copy_from_slice(&digest[8..16]);
                        work.set(target, (u64::from_be_bytes(low) % modulus).to_string());
                    }
                    Op::Lowercase { target } => work.set(target, go_to_lower(value)),
                    Op::Uppercase { target } => work.set(target, go_to_upper(value)),
                    Op::LabelMap { .. } | Op::LabelDrop { .. } | Op::LabelKeep { .. } => {}
                }
            }
        }
        true
    }

    /// The values of `source_labels` (missing labels as "") joined by `separator`. Borrows the
    /// input label set when the rule reads one label that no earlier rule touched.
    fn source_value<'s, 'a: 's>(&self, work: &Work<'a>, scratch: &'s mut String) -> &'s str {
        if let [name] = self.source_labels.as_slice() {
            if let Some(value) = work.base_value(name) {
                return value;
            }
        }
        scratch.clear();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                scratch.push_str(&self.separator);
            }
            scratch.push_str(work.get(name));
        }
        scratch
    }
}

/// The label set while rules run, modelled on Prometheus' `labels.Builder` so that iteration
/// order, which decides which write wins when `labelmap` maps two labels to one name, is the
/// same: first the untouched input labels in sorted order, then the labels written so far in the
/// order they were first written (a label that is deleted and written again moves to the end).
///
/// Nothing is allocated until a rule writes or deletes a label.
struct Work<'a> {
    /// The input labels (sorted, unique names).
    base: &'a [Label],
    /// `hidden[i]`: base label `i` was deleted or overwritten. Empty while nothing is hidden.
    hidden: Vec<bool>,
    /// Labels written by rules, in first-write order; they take precedence over `base`.
    added: Vec<Label>,
}

impl<'a> Work<'a> {
    fn new(base: &'a [Label]) -> Self {
        Work { base, hidden: Vec::new(), added: Vec::new() }
    }

    fn base_index(&self, name: &str) -> Option<usize> {
        self.base.binary_search_by(|label| label.name.as_str().cmp(name)).ok()
    }

    fn is_visible(&self, index: usize) -> bool {
        self.hidden.get(index).is_none_or(|hidden| !hidden)
    }

    fn hide(&mut self, index: usize) {
        if self.hidden.is_empty() {
            self.hidden = vec![false; self.base.len()];
        }
        self.hidden[index] = true;
    }

    /// The value of `name` if it is an input label that no rule has touched.
    fn base_value(&self, name: &str) -> Option<&'a str> {
        let base = self.base;
        self.base_index(name).filter(|&i| self.is_visible(i)).map(|i| base[i].value.as_str())
    }

    /// The current value of `name`, "" when absent.
    fn get(&self, name: &str) -> &str {
        if let Some(label) = self.added.iter().find(|label| label.name == name) {
            return &label.value;
        }
        self.base_value(name).unwrap_or("")
    }

    /// The input labels that are still current, in sorted order.
    fn visible_base(&self) -> impl Iterator<Item = &'a Label> + '_ {
        let base = self.base;
        base.iter().enumerate().filter(|(i, _)| self.is_visible(*i)).map(|(_, label)| label)
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            self.delete(name);
            return;
        }
        if let Some(label) = self.added.iter_mut().find(|label| label.name == name) {
            label.value = value;
            return;
        }
        if let Some(index) = self.base_index(name) {
            self.hide(index);
        }
        self.added.push(Label { name: name.to_owned(), value });
    }

    fn delete(&mut self, name: &str) {
        self.added.retain(|label| label.name != name);
        if let Some(index) = self.base_index(name) {
            self.hide(index);
        }
    }

    /// Deletes every current label whose name fails `keep`.
    fn retain_names(&mut self, mut keep: impl FnMut(&str) -> bool) {
        for index in 0..self.base.len() {
            if self.is_visible(index) && !keep(&self.base[index].name) {
                self.hide(index);
            }
        }
        // A written label's base namesake, if any, is already hidden.
        self.added.retain(|label| keep(&label.name));
    }

    /// The resulting label set; a clone of `input` when no rule wrote or deleted anything.
    fn finish(self, input: &Labels) -> Labels {
        if self.hidden.is_empty() && self.added.is_empty() {
            return input.clone();
        }
        let mut labels: Vec<Label> = self.visible_base().cloned().collect();
        labels.extend(self.added);
        Labels::from_unsorted(labels)
    }
}
