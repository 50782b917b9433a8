//! The one catalog of Strata's own metrics.
//!
//! Every metric is declared here, once, as `strata_<subsystem>_<name>_<unit>[_total]`
//! (convention: Vector's `docs/specs/instrumentation.md`, Prometheus' naming guide
//! <https://prometheus.io/docs/practices/naming/>). Label values come from bounded sets: protocol
//! names, configured target names, fixed reason enums; never error strings. Components get
//! handles resolved once at build time ([`Catalog::ingest`], [`Catalog::forward_target`]), so the
//! hot path increments an atomic, never looks up a label set.
//!
//! `prometheus-client` appends `_total` to counters itself, so counters are registered without it.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type CounterFamily = Family<Labels, Counter>;
type GaugeFamily = Family<Labels, Gauge>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Why ingest dropped items (samples, log entries, spans; a bounded set: the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestDropReason {
    /// The series failed validation or a limit (the request got a 400).
    Invalid,
    /// `metric_relabel_configs` dropped the series.
    Relabel,
    /// Relabeling left the series without a metric name.
    NoMetricName,
    /// Over the tenant's ingestion rate (the request got a 429).
    RateLimited,
}

impl IngestDropReason {
    pub const ALL: [IngestDropReason; 4] =
        [Self::Invalid, Self::Relabel, Self::NoMetricName, Self::RateLimited];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Relabel => "relabel",
            Self::NoMetricName => "no_metric_name",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Why a forward target dropped items (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardDropReason {
    /// `write_relabel_configs` dropped the series.
    Relabel,
    /// The receiver answered a non-retryable 4xx.
    Rejected,
    /// Shutdown's drain deadline passed with data still queued.
    Shutdown,
    /// The batch could not be encoded (cannot happen for valid input; counted, never silent).
    Encode,
}

impl ForwardDropReason {
    pub const ALL: [ForwardDropReason; 4] =
        [Self::Relabel, Self::Rejected, Self::Shutdown, Self::Encode];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relabel => "relabel",
            Self::Rejected => "rejected",
            Self::Shutdown => "shutdown",
            Self::Encode => "encode",
        }
    }
}

/// All of Strata's own metrics, registered in one registry served at `/metrics`.
pub struct Catalog {
    registry: Registry,
    declared: std::collections::BTreeSet<String>,
    ingest_requests: CounterFamily,
    ingest_request_duration: HistogramFamily,
    ingest_bytes: CounterFamily,
    ingest_samples_received: CounterFamily,
    ingest_histograms_received: CounterFamily,
    ingest_exemplars_received: CounterFamily,
    ingest_metadata_received: CounterFamily,
    ingest_log_entries_received: CounterFamily,
    ingest_log_bytes_received: CounterFamily,
    ingest_spans_received: CounterFamily,
    ingest_items_dropped: CounterFamily,
    relabel_cache_hits: CounterFamily,
    relabel_cache_misses: CounterFamily,
    relabel_cache_entries: GaugeFamily,
    forward_samples_sent: CounterFamily,
    forward_histograms_sent: CounterFamily,
    forward_exemplars_sent: CounterFamily,
    forward_log_entries_sent: CounterFamily,
    forward_spans_sent: CounterFamily,
    forward_items_dropped: CounterFamily,
    forward_requests: CounterFamily,
    forward_retries: CounterFamily,
    forward_request_duration: HistogramFamily,
    forward_queue_pushed: CounterFamily,
    forward_queue_popped: CounterFamily,
    forward_queue_length: GaugeFamily,
    forward_queue_capacity: GaugeFamily,
    forward_queue_full: CounterFamily,
    build_info: GaugeFamily,
    storage: super::storage::StorageFamilies,
    notifier: crate::notifier::NotifierFamilies,
    rules: crate::rules::metrics::RuleFamilies,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

/// Registers a family and records its exposed sample names (counters get `_total`, histograms
/// `_bucket`/`_sum`/`_count`) in `declared`, the list dashboards and alerts are checked against.
macro_rules! register {
    ($registry:expr, $declared:expr, $name:literal, $help:literal, $family:expr) => {{
        let family = $family;
        $registry.register($name, $help, family.clone());
        let kind = family_kind(&family);
        for suffix in kind {
            $declared.push(format!("{}{}", $name, suffix));
        }
        family
    }};
}

trait FamilyKind {
    const SUFFIXES: &'static [&'static str];
}
impl FamilyKind for CounterFamily {
    const SUFFIXES: &'static [&'static str] = &["_total"];
}
impl FamilyKind for GaugeFamily {
    const SUFFIXES: &'static [&'static str] = &[""];
}
impl FamilyKind for HistogramFamily {
    const SUFFIXES: &'static [&'static str] = &["_bucket", "_sum", "_count"];
}
fn family_kind<F: FamilyKind>(_: &F) -> &'static [&'static str] {
    F::SUFFIXES
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let mut declared: Vec<String> = Vec::new();
        let hist =
            || HistogramFamily::new_with_constructor(duration_histogram as fn() -> Histogram);
        let catalog =
            Catalog {
                ingest_requests: register!(
                    r,
                    declared,
                    "strata_ingest_requests",
                    "Ingest requests by protocol and HTTP status code.",
                    CounterFamily::default()
                ),
                ingest_request_duration: register!(
                    r,
                    declared,
                    "strata_ingest_request_duration_seconds",
                    "Time to handle an ingest request, from headers to response.",
                    hist()
                ),
                ingest_bytes: register!(
                    r,
                    declared,
                    "strata_ingest_received_bytes",
                    "Request body bytes received, as sent (compressed).",
                    CounterFamily::default()
                ),
                ingest_samples_received: register!(r, declared,
                "strata_ingest_samples_received",
                "Float samples received in decodable requests, before validation and relabeling.",
                CounterFamily::default()
            ),
                ingest_histograms_received: register!(
                    r,
                    declared,
                    "strata_ingest_histograms_received",
                    "Native histogram samples received.",
                    CounterFamily::default()
                ),
                ingest_exemplars_received: register!(
                    r,
                    declared,
                    "strata_ingest_exemplars_received",
                    "Exemplars received.",
                    CounterFamily::default()
                ),
                ingest_metadata_received: register!(
                    r,
                    declared,
                    "strata_ingest_metadata_received",
                    "Metric metadata entries received.",
                    CounterFamily::default()
                ),
                ingest_log_entries_received: register!(
                    r,
                    declared,
                    "strata_ingest_log_entries_received",
                    "Log entries received in decodable requests, before validation and relabeling.",
                    CounterFamily::default()
                ),
                ingest_log_bytes_received: register!(
                    r,
                    declared,
                    "strata_ingest_log_received_bytes",
                    "Bytes of log lines and structured metadata received.",
                    CounterFamily::default()
                ),
                ingest_spans_received: register!(
                    r,
                    declared,
                    "strata_ingest_spans_received",
                    "Spans received in decodable requests, before validation and relabeling.",
                    CounterFamily::default()
                ),
                ingest_items_dropped: register!(
                    r,
                    declared,
                    "strata_ingest_items_dropped",
                    "Samples, histogram samples, log entries or spans dropped at ingest, by protocol and reason.",
                    CounterFamily::default()
                ),
                relabel_cache_hits: register!(
                    r,
                    declared,
                    "strata_relabel_cache_hits",
                    "Series whose validation and relabel result came from the cache.",
                    CounterFamily::default()
                ),
                relabel_cache_misses: register!(
                    r,
                    declared,
                    "strata_relabel_cache_misses",
                    "Series validated and relabeled from scratch.",
                    CounterFamily::default()
                ),
                relabel_cache_entries: register!(
                    r,
                    declared,
                    "strata_relabel_cache_entries",
                    "Entries in a relabel result cache.",
                    GaugeFamily::default()
                ),
                forward_samples_sent: register!(
                    r,
                    declared,
                    "strata_forward_samples_sent",
                    "Float samples a forward target acknowledged with 2xx.",
                    CounterFamily::default()
                ),
                forward_histograms_sent: register!(
                    r,
                    declared,
                    "strata_forward_histograms_sent",
                    "Native histogram samples a forward target acknowledged with 2xx.",
                    CounterFamily::default()
                ),
                forward_exemplars_sent: register!(
                    r,
                    declared,
                    "strata_forward_exemplars_sent",
                    "Exemplars a forward target acknowledged with 2xx.",
                    CounterFamily::default()
                ),
                forward_log_entries_sent: register!(
                    r,
                    declared,
                    "strata_forward_log_entries_sent",
                    "Log entries a forward target acknowledged with 2xx.",
                    CounterFamily::default()
                ),
                forward_spans_sent: register!(
                    r,
                    declared,
                    "strata_forward_spans_sent",
                    "Spans a forward target acknowledged.",
                    CounterFamily::default()
                ),
                forward_items_dropped: register!(
                    r,
                    declared,
                    "strata_forward_items_dropped",
                    "Samples, histogram samples, log entries or spans a forward target dropped, by reason.",
                    CounterFamily::default()
                ),
                forward_requests: register!(
                    r,
                    declared,
                    "strata_forward_requests",
                    "Requests sent to a forward target, by outcome (success, retry, rejected).",
                    CounterFamily::default()
                ),
                forward_retries: register!(
                    r,
                    declared,
                    "strata_forward_retries",
                    "Retried sends to a forward target (5xx, 429, network errors).",
                    CounterFamily::default()
                ),
                forward_request_duration: register!(
                    r,
                    declared,
                    "strata_forward_request_duration_seconds",
                    "Duration of one send attempt to a forward target.",
                    hist()
                ),
                forward_queue_pushed: register!(
                    r,
                    declared,
                    "strata_forward_queue_pushed_items",
                    "Items (samples, histograms and exemplars; log entries; spans) pushed into a target's queue.",
                    CounterFamily::default()
                ),
                forward_queue_popped: register!(
                    r,
                    declared,
                    "strata_forward_queue_popped_items",
                    "Items taken off a target's queue (sent or dropped).",
                    CounterFamily::default()
                ),
                forward_queue_length: register!(
                    r,
                    declared,
                    "strata_forward_queue_length_items",
                    "Items currently queued for a target.",
                    GaugeFamily::default()
                ),
                forward_queue_capacity: register!(
                    r,
                    declared,
                    "strata_forward_queue_capacity_items",
                    "Items a target's queue can hold over all shards.",
                    GaugeFamily::default()
                ),
                forward_queue_full: register!(
                    r,
                    declared,
                    "strata_forward_queue_full",
                    "Ingest requests refused with 503 because a target's queue was full.",
                    CounterFamily::default()
                ),
                build_info: register!(
                    r,
                    declared,
                    "strata_build_info",
                    "Always 1; labels carry the version.",
                    GaugeFamily::default()
                ),
                storage: super::storage::StorageFamilies::register(&mut r, &mut declared),
                notifier: crate::notifier::NotifierFamilies::register(&mut r, &mut declared),
                rules: crate::rules::metrics::RuleFamilies::register(&mut r, &mut declared),
                registry: r,
                declared: std::collections::BTreeSet::new(),
            };
        let mut catalog = catalog;
        catalog.declared = declared.into_iter().collect();
        catalog
            .build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        catalog
    }

    /// The registry in Prometheus/OpenMetrics text form.
    /// Test helper: the value of the first exposed sample line starting with `needle`
    /// (e.g. `strata_forward_spans_sent_total{target="t"}`); panics if there is none.
    #[cfg(test)]
    pub fn sample_value(&self, needle: &str) -> f64 {
        let text = self.encode_text();
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle} not in\n{text}"))
    }

    pub fn encode_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Handles for the WAL, head, blocks and compactor.
    pub fn storage(&self) -> super::storage::StorageMetrics {
        self.storage.handles()
    }

    /// The rule manager's families.
    pub fn rules(&self) -> crate::rules::metrics::RuleFamilies {
        self.rules.clone()
    }

    /// Handles for the Alertmanager notifier sending to `alertmanagers` (endpoint URLs).
    pub fn notifier(&self, alertmanagers: &[String]) -> crate::notifier::NotifierMetrics {
        self.notifier.handles(alertmanagers)
    }

    /// Handles for one ingest protocol (`remote_write_v1`, `remote_write_v2`, `loki_push`,
    /// `otlp_grpc`, `otlp_http`, `zipkin`).
    pub fn ingest(&self, protocol: &'static str) -> IngestMetrics {
        let p = vec![("protocol", protocol.to_owned())];
        IngestMetrics {
            protocol,
            requests: self.ingest_requests.clone(),
            duration: self.ingest_request_duration.get_or_create_owned(&p),
            bytes: self.ingest_bytes.get_or_create_owned(&p),
            samples: self.ingest_samples_received.get_or_create_owned(&p),
            histograms: self.ingest_histograms_received.get_or_create_owned(&p),
            exemplars: self.ingest_exemplars_received.get_or_create_owned(&p),
            metadata: self.ingest_metadata_received.get_or_create_owned(&p),
            log_entries: self.ingest_log_entries_received.get_or_create_owned(&p),
            log_bytes: self.ingest_log_bytes_received.get_or_create_owned(&p),
            spans: self.ingest_spans_received.get_or_create_owned(&p),
            dropped: IngestDropReason::ALL.map(|reason| {
                self.ingest_items_dropped.get_or_create_owned(&vec![
                    ("protocol", protocol.to_owned()),
                    ("reason", reason.as_str().to_owned()),
                ])
            }),
        }
    }

    /// Handles for one relabel cache (`ingest` or `forward:<target>`).
    pub fn relabel_cache(&self, cache: &str) -> RelabelCacheMetrics {
        let c = vec![("cache", cache.to_owned())];
        RelabelCacheMetrics {
            hits: self.relabel_cache_hits.get_or_create_owned(&c),
            misses: self.relabel_cache_misses.get_or_create_owned(&c),
            entries: self.relabel_cache_entries.get_or_create_owned(&c),
        }
    }

    /// Handles for one forward target.
    pub fn forward_target(&self, target: &str) -> ForwardMetrics {
        let t = vec![("target", target.to_owned())];
        let outcome = |o: &str| vec![("target", target.to_owned()), ("outcome", o.to_owned())];
        ForwardMetrics {
            samples_sent: self.forward_samples_sent.get_or_create_owned(&t),
            histograms_sent: self.forward_histograms_sent.get_or_create_owned(&t),
            exemplars_sent: self.forward_exemplars_sent.get_or_create_owned(&t),
            log_entries_sent: self.forward_log_entries_sent.get_or_create_owned(&t),
            spans_sent: self.forward_spans_sent.get_or_create_owned(&t),
            dropped: ForwardDropReason::ALL.map(|reason| {
                self.forward_items_dropped.get_or_create_owned(&vec![
                    ("target", target.to_owned()),
                    ("reason", reason.as_str().to_owned()),
                ])
            }),
            requests_success: self.forward_requests.get_or_create_owned(&outcome("success")),
            requests_retry: self.forward_requests.get_or_create_owned(&outcome("retry")),
            requests_rejected: self.forward_requests.get_or_create_owned(&outcome("rejected")),
            retries: self.forward_retries.get_or_create_owned(&t),
            duration: self.forward_request_duration.get_or_create_owned(&t),
            queue_pushed: self.forward_queue_pushed.get_or_create_owned(&t),
            queue_popped: self.forward_queue_popped.get_or_create_owned(&t),
            queue_length: self.forward_queue_length.get_or_create_owned(&t),
            queue_capacity: self.forward_queue_capacity.get_or_create_owned(&t),
            queue_full: self.forward_queue_full.get_or_create_owned(&t),
        }
    }
}

/// Metric handles of one ingest protocol.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    pub protocol: &'static str,
    requests: CounterFamily,
    pub duration: Histogram,
    pub bytes: Counter,
    pub samples: Counter,
    pub histograms: Counter,
    pub exemplars: Counter,
    pub metadata: Counter,
    pub log_entries: Counter,
    pub log_bytes: Counter,
    pub spans: Counter,
    dropped: [Counter; 4],
}

impl IngestMetrics {
    pub fn dropped(&self, reason: IngestDropReason) -> &Counter {
        &self.dropped[reason as usize]
    }

    /// Counts one finished request by status code (a bounded set: the codes Strata answers).
    pub fn request_done(&self, code: u16) {
        self.requests
            .get_or_create(&vec![
                ("protocol", self.protocol.to_owned()),
                ("code", code.to_string()),
            ])
            .inc();
    }
}

/// Metric handles of one relabel cache.
#[derive(Clone, Debug)]
pub struct RelabelCacheMetrics {
    pub hits: Counter,
    pub misses: Counter,
    pub entries: Gauge,
}

/// Metric handles of one forward target.
#[derive(Clone, Debug)]
pub struct ForwardMetrics {
    pub samples_sent: Counter,
    pub histograms_sent: Counter,
    pub exemplars_sent: Counter,
    pub log_entries_sent: Counter,
    pub spans_sent: Counter,
    dropped: [Counter; 4],
    pub requests_success: Counter,
    pub requests_retry: Counter,
    pub requests_rejected: Counter,
    pub retries: Counter,
    pub duration: Histogram,
    pub queue_pushed: Counter,
    pub queue_popped: Counter,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
    pub queue_full: Counter,
}

impl ForwardMetrics {
    pub fn dropped(&self, reason: ForwardDropReason) -> &Counter {
        &self.dropped[reason as usize]
    }
}

/// Shared handle to the catalog.
pub type SharedCatalog = Arc<Catalog>;

/// Names of every sample series the catalog declares (`_total`, `_bucket`, ... included):
/// what dashboards and alert rules may refer to.
pub fn exposed_metric_names(catalog: &Catalog) -> std::collections::BTreeSet<String> {
    catalog.declared.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_match_the_exposition() {
        let catalog = Catalog::new();
        let ingest = catalog.ingest("remote_write_v1");
        ingest.request_done(204);
        catalog.forward_target("t");
        catalog.relabel_cache("ingest");
        let storage = catalog.storage();
        storage.consumer_outstanding("head").set(0);
        storage.block_written("metrics", "raw");
        storage.block_deleted("metrics");
        storage.compactor_action("merge");
        catalog.notifier(&["http://alertmanager:9093/api/v2/alerts".to_owned()]);
        catalog.rules().evaluated("rules.yml;group", 2, 1, 0.01, 1_000);
        let text = catalog.encode_text();
        for name in exposed_metric_names(&catalog) {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{name} declared but not exposed"
            );
        }
    }

    #[test]
    fn every_name_follows_the_convention() {
        let catalog = Catalog::new();
        catalog.ingest("remote_write_v1");
        catalog.forward_target("t");
        catalog.relabel_cache("ingest");
        let names = exposed_metric_names(&catalog);
        assert!(names.contains("strata_ingest_samples_received_total"));
        assert!(names.contains("strata_forward_request_duration_seconds_bucket"));
        for name in &names {
            assert!(name.starts_with("strata_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }
}
