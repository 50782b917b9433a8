//! `Relabeler::with_validation` + `process` on rule lists and label sets derived from the input.
//!
//! Strings mostly come from small vocabularies of the names, regexes and templates that matter
//! (capture groups, `$name` / `${1}` / `$$` templates, non-ASCII case mappings) and sometimes
//! straight from the input, so both the rule semantics and the regex/template parsers are hit.
//! Invariants checked: `process` never panics, is deterministic, and returns a sorted,
//! duplicate-free label set without empty values.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use strata::model::{Label, Labels};
use strata::relabel::{Action, NameValidation, RelabelConfig, Relabeler};

const NAMES: &[&str] = &[
    "__name__",
    "job",
    "instance",
    "a",
    "b",
    "le",
    "node",
    "__tmp_x",
    "__meta_pod",
    "tmp_id",
    "ä_name",
    "1bad",
    "bad-name",
    "",
];
const VALUES: &[&str] = &[
    "up",
    "a",
    "b",
    "a;b",
    "",
    "x:9090",
    "10.0.0.1:9100",
    "ÄÖÜ",
    "İstanbul",
    "ß",
    "ǅ",
    "ſ",
    "K",
    "\n",
    "$1",
    "go_gc_duration_seconds",
    "node_cpu_seconds_total",
];
const REGEXES: &[&str] = &[
    "(.*)",
    "",
    ".*",
    "(.+)",
    "a|b",
    "(?P<n>.*)",
    "([^;]*);(.*)",
    "(a)(b)?",
    "\\d+",
    "\\w+\\s?",
    "[[:alpha:]]+",
    "(?i)UP",
    "((((.*))))",
    "x{2,3}",
    "\\b.\\b",
    "^a$",
    ".",
    "(.*):.*",
    "(?P<host>[^:]+):(?P<port>\\d+)",
    "__meta_(.+)",
    "[",
    "(",
    "a{2}{3}",
];
const REPLACEMENTS: &[&str] = &[
    "$1",
    "${1}",
    "$2",
    "$n",
    "${n}",
    "$$",
    "$1x",
    "",
    "x",
    "${",
    "$",
    "$10",
    "a$0b",
    "${host}",
    "$port",
    "${1}_${2}",
    "$-",
    "${}",
];
const TARGETS: &[&str] =
    &["node", "a", "__name__", "$1", "${1}_x", "${n}", "$2", "bad-name", "", "ä", "${host}", "$$"];
const SEPARATORS: &[&str] = &[";", "", ":", "\0", "ä"];

/// A vocabulary entry most of the time, an arbitrary string from the input otherwise.
fn pick(u: &mut Unstructured<'_>, vocabulary: &[&str]) -> Result<String> {
    if u.ratio(1, 6)? {
        u.arbitrary::<String>()
    } else {
        Ok((*u.choose(vocabulary)?).to_owned())
    }
}

fn rule(u: &mut Unstructured<'_>) -> Result<RelabelConfig> {
    let action = *u.choose(&Action::ALL)?;
    let mut config = RelabelConfig { action, ..RelabelConfig::default() };
    let sources = u.int_in_range(0..=3)?;
    for _ in 0..sources {
        config.source_labels.push(pick(u, NAMES)?);
    }
    if u.arbitrary::<bool>()? {
        config.separator = pick(u, SEPARATORS)?;
    }
    if u.arbitrary::<bool>()? {
        config.target_label = pick(u, TARGETS)?;
    }
    if u.arbitrary::<bool>()? {
        config.regex = pick(u, REGEXES)?;
    }
    if u.arbitrary::<bool>()? {
        config.replacement = pick(u, REPLACEMENTS)?;
    }
    config.modulus = match u.int_in_range(0..=4)? {
        0 => 0,
        1 => 1,
        2 => 7,
        3 => u64::MAX,
        _ => u.arbitrary()?,
    };
    Ok(config)
}

/// Rules, the name validation, and a few label sets to run them on (compiling the rules costs
/// far more than applying them, so each input applies them several times).
fn input(data: &[u8]) -> Result<(Vec<RelabelConfig>, NameValidation, Vec<Labels>)> {
    let mut u = Unstructured::new(data);
    let validation =
        if u.arbitrary::<bool>()? { NameValidation::Utf8 } else { NameValidation::Legacy };
    let rules = u.int_in_range(0..=5)?;
    let mut configs = Vec::with_capacity(rules);
    for _ in 0..rules {
        configs.push(rule(&mut u)?);
    }
    let sets = u.int_in_range(1..=4)?;
    let mut label_sets = Vec::with_capacity(sets);
    for _ in 0..sets {
        let count = u.int_in_range(0..=8)?;
        let mut labels = Vec::with_capacity(count);
        for _ in 0..count {
            labels.push(Label::new(pick(&mut u, NAMES)?, pick(&mut u, VALUES)?));
        }
        label_sets.push(Labels::from_unsorted(labels));
    }
    Ok((configs, validation, label_sets))
}

fn check(relabeler: &Relabeler, configs: &[RelabelConfig], labels: &Labels) {
    let output = relabeler.process(labels);
    assert_eq!(output, relabeler.process(labels), "process is not deterministic");
    if let Some(output) = &output {
        let slice = output.as_slice();
        assert!(
            slice.windows(2).all(|w| w[0].name < w[1].name),
            "output not sorted / has duplicate names: {output:?}"
        );
        assert!(slice.iter().all(|l| !l.value.is_empty()), "output has an empty value: {output:?}");
        // Relabeling the output again must not panic either.
        let _ = relabeler.process(output);
    }
    if configs.is_empty() {
        assert_eq!(output.as_ref(), Some(labels), "no rules must return the input");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok((configs, validation, label_sets)) = input(data) else { return };
    let Ok(relabeler) = Relabeler::with_validation(&configs, validation) else { return };
    assert_eq!(relabeler.len(), configs.len());
    for labels in &label_sets {
        check(&relabeler, &configs, labels);
    }
});
