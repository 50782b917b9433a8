//! Metric and label names: OTLP name + unit + type → Prometheus metric name, OTLP attribute key →
//! Prometheus label name.
//!
//! Semantics follow Prometheus 2.53.3 `storage/remote/otlptranslator/prometheus/normalize_name.go`
//! (`BuildCompliantName` with `addMetricSuffixes = true`, which is what its OTLP receiver uses)
//! and `normalize_label.go` (`NormalizeLabel`) for [`OtlpTranslationStrategy::
//! UnderscoreEscapingWithSuffixes`]:
//!
//! * the name is split into tokens at every character that is not a letter or digit (so `.`, `-`,
//!   `:`, `_` and runs of them all become one `_`);
//! * the unit is split at the first `/`; a main unit (trimmed, not empty, without `{`/`}`) is
//!   mapped through Prometheus' unit table (`By` → `bytes`, `ms` → `milliseconds`, `1` → nothing,
//!   unknown units pass through cleaned) and appended unless the name already has that token; a
//!   per unit is mapped through the per-unit table (`s` → `second`) and appended as `per_<unit>`
//!   unless the name already has that token;
//! * monotonic sums get `total` (every other `total` token removed first), gauges with unit
//!   exactly `"1"` get `ratio` the same way; a name starting with a digit gets a leading `_`;
//! * label names: every character that is not a letter or digit becomes `_`; a leading digit gets
//!   `key_`, a single leading `_` gets `key` (`__x` stays, as in 2.53).
//!
//! Where Strata differs from 2.53, on purpose: 2.53 keeps non-ASCII letters and digits (Go's
//! `unicode.IsLetter`/`IsDigit`), producing names outside `[a-zA-Z_:][a-zA-Z0-9_:]*` that the
//! rest of a Prometheus pipeline rejects; Strata, like Prometheus 3.x, escapes them to `_`. A
//! name that normalises to nothing is rejected (2.53 would emit an empty `__name__`; 3.x rejects).
//!
//! [`OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes`] follows Prometheus 3.x
//! (`github.com/prometheus/otlptranslator`, `MetricNamer.buildMetricName`): the name is kept as
//! UTF-8 and only the unit, `_total` and `_ratio` suffixes are added when missing; label names
//! are kept as they are.
//!
//! Invariant: under the escaping strategy every name returned is a valid legacy Prometheus name
//! (or empty, which callers reject).

use crate::config::OtlpTranslationStrategy;

/// The OTLP metric kinds that decide suffixes and metadata types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Sum { monotonic: bool },
    Histogram,
    ExponentialHistogram,
    Summary,
}

/// Prometheus' main-unit table (2.53 `unitMap`; UCUM case-sensitive codes).
fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

/// Prometheus' per-unit table (2.53 `perUnitMap`): singular words.
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Runs of characters other than ASCII letters and digits, as separators.
fn is_separator(c: char) -> bool {
    !c.is_ascii_alphanumeric()
}

/// Tokens of `s` split at separators (empty tokens dropped, like Go's `strings.FieldsFunc`).
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_separator).filter(|t| !t.is_empty())
}

/// 2.53 `CleanUpString`: tokens joined by `_`.
fn clean_up(s: &str) -> String {
    tokens(s).collect::<Vec<_>>().join("_")
}

/// The unit split into its main and per parts as OTLP writes them (`By/s` → `By`, `s`), each
/// trimmed and `None` when blank or an annotation (`{requests}`).
fn unit_parts(unit: &str) -> (Option<&str>, Option<&str>) {
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main, Some(per)),
        None => (unit, None),
    };
    (usable_unit(main), per.and_then(usable_unit))
}

/// A unit part trimmed, or `None` when blank or an annotation.
fn usable_unit(part: &str) -> Option<&str> {
    let trimmed = part.trim();
    (!trimmed.is_empty() && !trimmed.contains(['{', '}'])).then_some(trimmed)
}

/// Main and per unit as Prometheus words, before cleaning (`By/s` → `bytes`, `second`).
fn unit_words(unit: &str) -> (String, String) {
    let (main, per) = unit_parts(unit);
    let main_word = main.map(|m| main_unit_word(m).unwrap_or(m).to_owned()).unwrap_or_default();
    let per_word = per.map(|p| per_unit_word(p).unwrap_or(p).to_owned()).unwrap_or_default();
    (main_word, per_word)
}

/// The Prometheus metric name of an OTLP metric under `strategy` (empty if nothing is left).
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: MetricKind,
    strategy: OtlpTranslationStrategy,
) -> String {
    match strategy {
        OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes => {
            escaped_metric_name(name, unit, kind)
        }
        OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes => utf8_metric_name(name, unit, kind),
    }
}

fn escaped_metric_name(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut parts: Vec<String> = tokens(name).map(str::to_owned).collect();
    let (main_word, per_word) = unit_words(unit);
    let main_clean = clean_up(&main_word);
    if !main_clean.is_empty() && !parts.contains(&main_clean) {
        parts.push(main_clean);
    }
    let per_clean = clean_up(&per_word);
    if !per_clean.is_empty() && !parts.contains(&per_clean) {
        parts.push("per".to_owned());
        parts.push(per_clean);
    }
    if kind == (MetricKind::Sum { monotonic: true }) {
        parts.retain(|t| t != "total");
        parts.push("total".to_owned());
    }
    if unit == "1" && kind == MetricKind::Gauge {
        parts.retain(|t| t != "ratio");
        parts.push("ratio".to_owned());
    }
    let joined = parts.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// Removes `_suffix` (the suffix and one delimiter before it) when the name is longer than that.
fn trim_suffix_and_delimiter<'a>(name: &'a str, suffix: &str) -> &'a str {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let cut = name.len() - suffix.len() - 1;
        if name.is_char_boundary(cut) {
            return &name[..cut];
        }
    }
    name
}

fn utf8_metric_name(name: &str, unit: &str, kind: MetricKind) -> String {
    let ratio = unit == "1" && kind == MetricKind::Gauge;
    let total = kind == (MetricKind::Sum { monotonic: true });
    let (main_word, per_word) = unit_words(unit);
    let per_suffix = if per_word.is_empty() { String::new() } else { format!("per_{per_word}") };
    let mut base = name;
    if ratio {
        base = trim_suffix_and_delimiter(base, "ratio");
    }
    if total {
        base = trim_suffix_and_delimiter(base, "total");
    }
    if !per_suffix.is_empty() {
        base = trim_suffix_and_delimiter(base, &per_suffix);
    }
    let mut out = base.to_owned();
    if !main_word.is_empty() && !out.ends_with(&main_word) {
        out.push('_');
        out.push_str(&main_word);
    }
    for (wanted, suffix) in
        [(!per_suffix.is_empty(), per_suffix.as_str()), (total, "total"), (ratio, "ratio")]
    {
        if wanted {
            out.push('_');
            out.push_str(suffix);
        }
    }
    out
}

/// The unit as Prometheus words for metadata (`By/s` → `bytes_per_second`, `1` → empty).
pub fn metadata_unit(unit: &str, strategy: OtlpTranslationStrategy) -> String {
    let (main_word, per_word) = unit_words(unit);
    let (main, per) = match strategy {
        OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes => {
            (clean_up(&main_word), clean_up(&per_word))
        }
        OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes => (main_word, per_word),
    };
    match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_per_{per}"),
        (false, true) => main,
        (true, false) => format!("per_{per}"),
        (true, true) => String::new(),
    }
}

/// The Prometheus label name of an OTLP attribute key under `strategy`.
pub fn label_name(key: &str, strategy: OtlpTranslationStrategy) -> String {
    match strategy {
        OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes => escaped_label_name(key),
        OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes => key.to_owned(),
    }
}

fn escaped_label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mapped: String = key.chars().map(|c| if is_separator(c) { '_' } else { c }).collect();
    if mapped.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{mapped}")
    } else if mapped.starts_with('_') && !mapped.starts_with("__") {
        format!("key{mapped}")
    } else {
        mapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::remote_write::validate::{is_legacy_label_name, is_legacy_metric_name};

    const ESCAPE: OtlpTranslationStrategy = OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes;
    const UTF8: OtlpTranslationStrategy = OtlpTranslationStrategy::NoUtf8EscapingWithSuffixes;
    const COUNTER: MetricKind = MetricKind::Sum { monotonic: true };
    const UPDOWN: MetricKind = MetricKind::Sum { monotonic: false };

    fn name(n: &str, unit: &str, kind: MetricKind) -> String {
        metric_name(n, unit, kind, ESCAPE)
    }

    #[test]
    fn units_become_suffixes_from_the_prometheus_unit_table() {
        assert_eq!(
            name("http.server.duration", "ms", MetricKind::Histogram),
            "http_server_duration_milliseconds"
        );
        assert_eq!(
            name("system.memory.usage", "By", MetricKind::Gauge),
            "system_memory_usage_bytes"
        );
        assert_eq!(name("system.network.io", "By", COUNTER), "system_network_io_bytes_total");
        assert_eq!(name("temp", "Cel", MetricKind::Gauge), "temp_celsius");
        assert_eq!(name("cpu.time", "s", COUNTER), "cpu_time_seconds_total");
        assert_eq!(name("disk.rate", "KiBy", MetricKind::Gauge), "disk_rate_kibibytes");
        // An unknown unit passes through, cleaned.
        assert_eq!(name("queue", "packets", MetricKind::Gauge), "queue_packets");
        assert_eq!(name("queue", "foo-bar", MetricKind::Gauge), "queue_foo_bar");
    }

    #[test]
    fn per_units_are_singular_and_annotations_are_dropped() {
        assert_eq!(name("throughput", "By/s", MetricKind::Gauge), "throughput_bytes_per_second");
        assert_eq!(name("speed", "m/h", MetricKind::Gauge), "speed_meters_per_hour");
        assert_eq!(name("reqs", "{requests}/s", MetricKind::Gauge), "reqs_per_second");
        assert_eq!(name("http.requests", "{requests}", COUNTER), "http_requests_total");
        assert_eq!(name("thing", "  ", MetricKind::Gauge), "thing");
        assert_eq!(name("thing", "By/", MetricKind::Gauge), "thing_bytes");
        assert_eq!(name("thing", "By/{x}", MetricKind::Gauge), "thing_bytes");
        // A per unit the name already carries is not repeated.
        assert_eq!(name("bytes.per.second", "By/s", MetricKind::Gauge), "bytes_per_second");
    }

    #[test]
    fn unit_already_in_the_name_is_not_repeated() {
        assert_eq!(
            name("request.duration.seconds", "s", MetricKind::Histogram),
            "request_duration_seconds"
        );
        assert_eq!(name("memory.bytes.used", "By", MetricKind::Gauge), "memory_bytes_used");
    }

    #[test]
    fn total_goes_last_on_monotonic_sums_only() {
        assert_eq!(name("requests.total.count", "", COUNTER), "requests_count_total");
        assert_eq!(name("requests_total", "", COUNTER), "requests_total");
        assert_eq!(name("active.requests", "", UPDOWN), "active_requests");
        assert_eq!(name("requests_total", "", MetricKind::Gauge), "requests_total");
    }

    #[test]
    fn ratio_only_for_gauges_with_unit_one() {
        assert_eq!(name("cpu.utilization", "1", MetricKind::Gauge), "cpu_utilization_ratio");
        assert_eq!(name("ratio.cpu", "1", MetricKind::Gauge), "cpu_ratio");
        assert_eq!(name("cpu.utilization", "1", UPDOWN), "cpu_utilization");
        assert_eq!(name("hits", "1", COUNTER), "hits_total");
        assert_eq!(name("cpu.utilization", "%", MetricKind::Gauge), "cpu_utilization_percent");
    }

    #[test]
    fn invalid_characters_collapse_and_digits_get_an_underscore() {
        assert_eq!(name("a..b--c__d", "", MetricKind::Gauge), "a_b_c_d");
        assert_eq!(name("__weird__", "", MetricKind::Gauge), "weird");
        assert_eq!(name("ns:sub:metric", "", MetricKind::Gauge), "ns_sub_metric");
        assert_eq!(name("2xx.responses", "", COUNTER), "_2xx_responses_total");
        assert_eq!(name("café.größe", "", MetricKind::Gauge), "caf_gr_e");
        assert_eq!(name("...", "", MetricKind::Gauge), "");
        for n in ["http.server.duration", "2xx", "ümlaut", "a/b c", "x.1"] {
            let got = name(n, "By/s", COUNTER);
            assert!(is_legacy_metric_name(&got), "{n:?} → {got:?}");
        }
    }

    #[test]
    fn label_names_are_sanitised_like_2_53() {
        assert_eq!(label_name("http.method", ESCAPE), "http_method");
        assert_eq!(label_name("0label", ESCAPE), "key_0label");
        assert_eq!(label_name("_private", ESCAPE), "key_private");
        assert_eq!(label_name("__reserved", ESCAPE), "__reserved");
        assert_eq!(label_name("a..b", ESCAPE), "a__b", "label names are not collapsed");
        assert_eq!(label_name(".dot", ESCAPE), "key_dot");
        assert_eq!(label_name("naïve", ESCAPE), "na_ve");
        assert_eq!(label_name("", ESCAPE), "");
        for key in ["0", "a.b", "_x", "ü", "k8s.pod.name", "9.9"] {
            let got = label_name(key, ESCAPE);
            assert!(is_legacy_label_name(&got), "{key:?} → {got:?}");
        }
        assert_eq!(label_name("http.method", UTF8), "http.method");
    }

    #[test]
    fn utf8_strategy_keeps_the_name_and_adds_missing_suffixes() {
        let utf8 = |n: &str, u: &str, k: MetricKind| metric_name(n, u, k, UTF8);
        assert_eq!(
            utf8("http.server.duration", "s", MetricKind::Histogram),
            "http.server.duration_seconds"
        );
        assert_eq!(utf8("net.io", "By/s", COUNTER), "net.io_bytes_per_second_total");
        assert_eq!(utf8("net.io_total", "By", COUNTER), "net.io_bytes_total");
        assert_eq!(utf8("memory_bytes", "By", MetricKind::Gauge), "memory_bytes");
        assert_eq!(utf8("cpu.util", "1", MetricKind::Gauge), "cpu.util_ratio");
        assert_eq!(utf8("cpu.util_ratio", "1", MetricKind::Gauge), "cpu.util_ratio");
        assert_eq!(utf8("größe", "", MetricKind::Gauge), "größe");
    }

    #[test]
    fn metadata_units_are_prometheus_words() {
        assert_eq!(metadata_unit("By/s", ESCAPE), "bytes_per_second");
        assert_eq!(metadata_unit("ms", ESCAPE), "milliseconds");
        assert_eq!(metadata_unit("1", ESCAPE), "");
        assert_eq!(metadata_unit("{requests}", ESCAPE), "");
        assert_eq!(metadata_unit("{requests}/s", ESCAPE), "per_second");
    }
}
