//! OTLP metrics → Prometheus series: an `ExportMetricsServiceRequest` becomes one
//! [`MetricBatch`] that then takes the same relabel/forward path as remote-write input.
//!
//! The translation is the one Prometheus applies in its OTLP receiver, matched to
//! **Prometheus 2.53** (`storage/remote/otlptranslator/prometheusremotewrite/*.go` and
//! `storage/remote/otlptranslator/prometheus/normalize_{name,label}.go` of v2.53.3, read from
//! Debian's `prometheus_2.53.3+ds1.orig.tar.xz`), with the receiver's settings
//! (`AddMetricSuffixes: true`, no namespace, no external labels, no `_created` series):
//!
//! | OTLP | Prometheus |
//! |---|---|
//! | gauge | one sample per point |
//! | sum, cumulative, monotonic | counter: name gets `_total` |
//! | sum, cumulative, not monotonic | gauge |
//! | histogram, cumulative | `_bucket{le}` (cumulated counts, `+Inf` = count), `_sum` (when set), `_count` |
//! | exponential histogram, cumulative | native histogram ([`exponential`]) |
//! | summary | `{quantile}` series, `_sum`, `_count` |
//! | sum/histogram with delta or unspecified temporality | rejected (Prometheus: "invalid temporality and type combination") |
//!
//! Names: [`names`]; labels, `job`/`instance` and `target_info`: [`attributes`]. Timestamps are
//! nanoseconds cut to milliseconds. A point flagged `FLAG_NO_RECORDED_VALUE` becomes a stale
//! marker (`STALE_NAN_BITS`) in every series it produces. Exemplars (trace/span id as hex
//! `trace_id`/`span_id`, filtered attributes while all exemplar labels stay within 128 runes)
//! go on sums, exponential histograms and, for classic histograms, on the first `_bucket` whose
//! bound is at or above the exemplar's value; gauges and summaries carry none, as in 2.53.
//! Points that map to the same label set are one series with several samples.
//!
//! Instrumentation scope: Prometheus 2.53 adds no scope labels (3.x can add `otel_scope_*`
//! labels); neither does Strata.
//!
//! Beyond 2.53, kept compatible with what it stores:
//! * metadata: one [`MetricMetadata`] per family (name as above, type, description as help,
//!   unit as Prometheus words) and the same per series, so remote-write 1.0 and 2.0 targets get
//!   it (2.53's receiver drops OTLP metadata);
//! * `created_timestamp_ms` from `start_time_unix_nano` of counters, histograms and summaries;
//! * a point without `time_unix_nano` is stamped with `now_ms` (2.53 would write it at 0 and fail
//!   the request as out of bounds); `target_info` uses the latest such time of its resource;
//! * an exemplar's integer value is kept (2.53 reads only the double and writes 0), and its
//!   attribute keys are renamed like label names;
//! * one bad exponential histogram point rejects that point only (2.53 drops the rest of the
//!   metric's points too);
//! * `promote_resource_attributes`, `keep_identifying_resource_attributes` and the UTF-8
//!   translation strategy follow Prometheus 2.54+/3.x (see [`attributes`], [`names`]).
//!
//! Invariants: every series has `__name__`; label sets are [`Labels`] (sorted, unique, no empty
//! values); under the default strategy every name is a valid legacy Prometheus name; every
//! rejected point is counted in [`Translated::rejected_points`] with an error naming its metric.

pub mod attributes;
pub mod exponential;
pub mod names;
mod points;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, AggregationTemporality, Metric};

use self::attributes::{LabelMap, ResourceLabels};
use self::names::MetricKind;
use crate::config::OtlpMetricsConfig;
use crate::model::metrics::{Exemplar, Histogram, Sample, Series};
use crate::model::{
    Label, Labels, MetricBatch, MetricMetadata, MetricType, SeriesMetadata, METRIC_NAME,
};

/// The result of translating one request.
#[derive(Debug, Default)]
pub struct Translated {
    pub batch: MetricBatch,
    /// Data points that produced no series (delta temporality, unusable names, bad exponential
    /// histogram scales). OTLP `partial_success.rejected_data_points`.
    pub rejected_points: usize,
    /// One message per problem, naming the metric (OTLP `partial_success.error_message`).
    pub errors: Vec<String>,
}

/// Translates `request` as Prometheus' OTLP receiver would; `now_ms` stamps points that carry
/// no timestamp.
pub fn translate(
    request: &ExportMetricsServiceRequest,
    config: &OtlpMetricsConfig,
    now_ms: i64,
) -> Translated {
    let mut builder = Builder::new(config, now_ms);
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let labels = ResourceLabels::new(resource, config);
        builder.latest_ms = None;
        for scope_metrics in &resource_metrics.scope_metrics {
            for metric in &scope_metrics.metrics {
                builder.add_metric(metric, &labels);
            }
        }
        builder.add_target_info(resource, &labels);
    }
    builder.finish()
}

/// A series being assembled; pushed into the batch at the end so that points with the same
/// labels share one entry.
#[derive(Debug)]
struct PendingSeries {
    labels: Labels,
    samples: Vec<Sample>,
    histograms: Vec<Histogram>,
    exemplars: Vec<Exemplar>,
    metadata: Option<Arc<SeriesMetadata>>,
    created_timestamp_ms: i64,
}

/// What one metric's points share while they are translated.
struct MetricContext<'a> {
    otlp_name: &'a str,
    name: String,
    metadata: Arc<SeriesMetadata>,
    resource: &'a ResourceLabels,
}

struct Builder<'a> {
    config: &'a OtlpMetricsConfig,
    now_ms: i64,
    index: HashMap<Labels, usize>,
    series: Vec<PendingSeries>,
    metadata: Vec<MetricMetadata>,
    /// Latest point time (ms) of the current resource, for `target_info`.
    latest_ms: Option<i64>,
    rejected_points: usize,
    errors: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(config: &'a OtlpMetricsConfig, now_ms: i64) -> Self {
        Self {
            config,
            now_ms,
            index: HashMap::new(),
            series: Vec::new(),
            metadata: Vec::new(),
            latest_ms: None,
            rejected_points: 0,
            errors: Vec::new(),
        }
    }

    /// A point time in ms (`now_ms` when unset).
    fn point_ms(&self, time_unix_nano: u64) -> i64 {
        nanos_to_ms(time_unix_nano).unwrap_or(self.now_ms)
    }

    fn reject(&mut self, points: usize, message: String) {
        self.rejected_points += points;
        self.errors.push(message);
    }

    fn add_metric(&mut self, metric: &Metric, resource: &ResourceLabels) {
        let Some(data) = &metric.data else {
            self.errors
                .push(format!("metric {:?}: no data (unsupported metric type)", metric.name));
            return;
        };
        let (kind, points, temporality) = match data {
            Data::Gauge(g) => (MetricKind::Gauge, g.data_points.len(), None),
            Data::Sum(s) => (
                MetricKind::Sum { monotonic: s.is_monotonic },
                s.data_points.len(),
                Some(s.aggregation_temporality),
            ),
            Data::Histogram(h) => {
                (MetricKind::Histogram, h.data_points.len(), Some(h.aggregation_temporality))
            }
            Data::ExponentialHistogram(e) => (
                MetricKind::ExponentialHistogram,
                e.data_points.len(),
                Some(e.aggregation_temporality),
            ),
            Data::Summary(s) => (MetricKind::Summary, s.data_points.len(), None),
        };
        // Rejected points still count towards the resource's latest time, as in Prometheus.
        for time in point_times(data) {
            let ms = self.point_ms(time);
            self.latest_ms = Some(self.latest_ms.map_or(ms, |latest| latest.max(ms)));
        }
        if let Some(temporality) =
            temporality.filter(|t| *t != AggregationTemporality::Cumulative as i32)
        {
            let temporality = AggregationTemporality::try_from(temporality).map_or_else(
                |_| format!("unknown ({temporality})"),
                |t| t.as_str_name().to_owned(),
            );
            self.reject(
                points,
                format!(
                    "metric {:?}: invalid temporality and type combination ({} with {temporality}); \
                     {points} data points rejected",
                    metric.name,
                    kind_name(kind)
                ),
            );
            return;
        }
        let strategy = self.config.translation_strategy;
        let name = names::metric_name(&metric.name, &metric.unit, kind, strategy);
        if name.is_empty() {
            self.reject(
                points,
                format!(
                    "metric {:?}: name has no valid characters; {points} data points rejected",
                    metric.name
                ),
            );
            return;
        }
        if points == 0 {
            self.errors.push(format!("metric {:?}: no data points, dropped", metric.name));
            return;
        }
        let metadata = Arc::new(SeriesMetadata {
            metric_type: metric_type(kind),
            help: metric.description.clone(),
            unit: names::metadata_unit(&metric.unit, strategy),
        });
        if !self.metadata.iter().any(|m| m.family == name) {
            self.metadata.push(MetricMetadata {
                family: name.clone(),
                metric_type: metadata.metric_type,
                help: metadata.help.clone(),
                unit: metadata.unit.clone(),
            });
        }
        let ctx = MetricContext { otlp_name: &metric.name, name, metadata, resource };
        match data {
            Data::Gauge(g) => self.add_number_points(&ctx, &g.data_points, None),
            Data::Sum(s) => self.add_number_points(&ctx, &s.data_points, Some(s.is_monotonic)),
            Data::Histogram(h) => self.add_histogram_points(&ctx, &h.data_points),
            Data::ExponentialHistogram(e) => self.add_exponential_points(&ctx, &e.data_points),
            Data::Summary(s) => self.add_summary_points(&ctx, &s.data_points),
        }
    }

    fn add_target_info(&mut self, resource: &[KeyValue], labels: &ResourceLabels) {
        let Some(latest_ms) = self.latest_ms else { return };
        let Some(mut target) = labels.target_info_labels(resource, self.config) else { return };
        target.insert(METRIC_NAME.to_owned(), "target_info".to_owned());
        let index = self.series_index(target, None);
        self.series[index].samples.push(Sample { timestamp_ms: latest_ms, value: 1.0 });
    }

    /// The pending series for `labels`, created on first use.
    fn series_index(&mut self, labels: LabelMap, metadata: Option<&Arc<SeriesMetadata>>) -> usize {
        let labels =
            Labels::from_unsorted(labels.into_iter().map(|(n, v)| Label::new(n, v)).collect());
        debug_assert!(labels.metric_name().is_some_and(|n| !n.is_empty()), "series without a name");
        if let Some(&index) = self.index.get(&labels) {
            return index;
        }
        let index = self.series.len();
        self.index.insert(labels.clone(), index);
        self.series.push(PendingSeries {
            labels,
            samples: Vec::new(),
            histograms: Vec::new(),
            exemplars: Vec::new(),
            metadata: metadata.cloned(),
            created_timestamp_ms: 0,
        });
        index
    }

    fn finish(self) -> Translated {
        let samples = self.series.iter().map(|s| s.samples.len()).sum();
        let mut batch = MetricBatch::with_capacity(self.series.len(), samples);
        for pending in self.series {
            batch.push(
                Arc::new(Series::new(pending.labels)),
                &pending.samples,
                &pending.histograms,
                &pending.exemplars,
                pending.metadata,
                pending.created_timestamp_ms,
            );
        }
        batch.metadata = self.metadata;
        Translated { batch, rejected_points: self.rejected_points, errors: self.errors }
    }
}

/// OTLP nanoseconds → Prometheus milliseconds; `None` for 0 (unset).
fn nanos_to_ms(time_unix_nano: u64) -> Option<i64> {
    (time_unix_nano != 0).then_some((time_unix_nano as i64) / 1_000_000)
}

fn point_times(data: &Data) -> Vec<u64> {
    match data {
        Data::Gauge(g) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Data::Sum(s) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Data::Histogram(h) => h.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Data::ExponentialHistogram(e) => e.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Data::Summary(s) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
    }
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Gauge => "gauge",
        MetricKind::Sum { .. } => "sum",
        MetricKind::Histogram => "histogram",
        MetricKind::ExponentialHistogram => "exponential histogram",
        MetricKind::Summary => "summary",
    }
}

/// Prometheus' metadata type of an OTLP metric (2.53 `otelMetricTypeToPromMetricType`).
fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Gauge | MetricKind::Sum { monotonic: false } => MetricType::Gauge,
        MetricKind::Sum { monotonic: true } => MetricType::Counter,
        MetricKind::Histogram | MetricKind::ExponentialHistogram => MetricType::Histogram,
        MetricKind::Summary => MetricType::Summary,
    }
}
