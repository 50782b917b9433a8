//! Metric data passed from ingest through relabeling to routing and the forward sinks.
//!
//! A [`MetricBatch`] is a flat, append-only structure: one [`SeriesEntry`] per series, whose
//! samples, histograms and exemplars are ranges into the batch's shared vectors. Splitting a
//! batch per shard is a copy of small ranges, not of per-series vectors, and a batch costs a
//! handful of allocations whatever its size.
//!
//! The identity of a series is an [`Arc<Series>`]: labels plus what every consumer needs again
//! and again (a stable hash for sharding and the labels pre-encoded in remote-write wire form),
//! computed once on a relabel-cache miss and shared read-only afterwards.
//!
//! Values are `f64` carried bit for bit: a Prometheus stale marker (`0x7ff0000000000002`) is
//! never canonicalised.

use std::ops::Range;
use std::sync::Arc;

use super::labels::Labels;
use super::wire;

/// Bits of the Prometheus stale-marker NaN.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One float sample.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

impl PartialEq for Sample {
    /// Bitwise on the value, so NaNs (and stale markers) compare as they are on the wire.
    fn eq(&self, other: &Self) -> bool {
        self.timestamp_ms == other.timestamp_ms && self.value.to_bits() == other.value.to_bits()
    }
}

/// An exemplar attached to a series' samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// Metric type, with the numbering of both remote-write versions (they agree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    #[default]
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

impl MetricType {
    pub fn from_i32(value: i32) -> Option<Self> {
        Some(match value {
            0 => Self::Unknown,
            1 => Self::Counter,
            2 => Self::Gauge,
            3 => Self::Histogram,
            4 => Self::GaugeHistogram,
            5 => Self::Summary,
            6 => Self::Info,
            7 => Self::StateSet,
            _ => return None,
        })
    }
}

/// Metadata of a metric family (remote-write 1.0 sends these per family).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    pub family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// Metadata attached to one series (remote-write 2.0 sends these per series).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesMetadata {
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// A native histogram sample: the remote-write `Histogram` message (same fields in 1.0 and 2.0;
/// `custom_values` exists only in 2.0). Kept as a prost message so it round-trips field for
/// field, integer and float flavours alike.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "HistogramCount", tags = "1, 2")]
    pub count: Option<HistogramCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "HistogramZeroCount", tags = "6, 7")]
    pub zero_count: Option<HistogramZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    #[prost(uint64, tag = "1")]
    Int(u64),
    #[prost(double, tag = "2")]
    Float(f64),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    #[prost(uint64, tag = "6")]
    Int(u64),
    #[prost(double, tag = "7")]
    Float(f64),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// The identity of a series, shared read-only by every stage after relabeling.
#[derive(Debug, PartialEq, Eq)]
pub struct Series {
    pub labels: Labels,
    /// xxh3 of `encoded`: stable across processes and versions, so it can pick shards and (later)
    /// Kafka partitions.
    pub hash: u64,
    /// The labels as remote-write 1.0 `TimeSeries.labels` fields (`repeated Label labels = 1`),
    /// ready to be copied into an outgoing request. Also the canonical key of relabel caches.
    pub encoded: Box<[u8]>,
}

impl Series {
    pub fn new(labels: Labels) -> Self {
        let mut encoded =
            Vec::with_capacity(labels.iter().map(|l| l.name.len() + l.value.len() + 6).sum());
        for label in &labels {
            encode_label(&mut encoded, label.name.as_bytes(), label.value.as_bytes());
        }
        let hash = xxhash_rust::xxh3::xxh3_64(&encoded);
        Self { labels, hash, encoded: encoded.into_boxed_slice() }
    }
}

/// Appends one `TimeSeries.labels` field (`Label{name = 1, value = 2}` as field 1).
#[inline]
pub fn encode_label(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let body = 1
        + wire::varint_len(name.len() as u64)
        + name.len()
        + 1
        + wire::varint_len(value.len() as u64)
        + value.len();
    out.push(0x0a);
    wire::put_varint(out, body as u64);
    out.push(0x0a);
    wire::put_varint(out, name.len() as u64);
    out.extend_from_slice(name);
    out.push(0x12);
    wire::put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// One series of a batch; its data are ranges into the batch's vectors.
#[derive(Clone, Debug)]
pub struct SeriesEntry {
    pub series: Arc<Series>,
    pub samples: Range<u32>,
    pub histograms: Range<u32>,
    pub exemplars: Range<u32>,
    pub metadata: Option<Arc<SeriesMetadata>>,
    /// Remote-write 2.0 `created_timestamp`; 0 when unknown.
    pub created_timestamp_ms: i64,
}

/// A borrowed view of one series and its data.
#[derive(Clone, Copy, Debug)]
pub struct SeriesView<'a> {
    pub series: &'a Arc<Series>,
    pub samples: &'a [Sample],
    pub histograms: &'a [Histogram],
    pub exemplars: &'a [Exemplar],
    pub metadata: Option<&'a Arc<SeriesMetadata>>,
    pub created_timestamp_ms: i64,
}

impl SeriesView<'_> {
    /// Items that count against queue capacity and `max_samples_per_send`.
    pub fn items(&self) -> usize {
        self.samples.len() + self.histograms.len() + self.exemplars.len()
    }
}

/// Metric data on its way through the pipeline.
#[derive(Clone, Debug, Default)]
pub struct MetricBatch {
    entries: Vec<SeriesEntry>,
    samples: Vec<Sample>,
    histograms: Vec<Histogram>,
    exemplars: Vec<Exemplar>,
    /// Family metadata (remote-write 1.0 style), not tied to a series of this batch.
    pub metadata: Vec<MetricMetadata>,
}

fn range(start: usize, end: usize) -> Range<u32> {
    debug_assert!(end <= u32::MAX as usize, "batch larger than 4G items");
    start as u32..end as u32
}

impl MetricBatch {
    pub fn with_capacity(series: usize, samples: usize) -> Self {
        Self {
            entries: Vec::with_capacity(series),
            samples: Vec::with_capacity(samples),
            ..Self::default()
        }
    }

    /// Appends a series with its data.
    pub fn push(
        &mut self,
        series: Arc<Series>,
        samples: &[Sample],
        histograms: &[Histogram],
        exemplars: &[Exemplar],
        metadata: Option<Arc<SeriesMetadata>>,
        created_timestamp_ms: i64,
    ) {
        let sample_start = self.samples.len();
        self.samples.extend_from_slice(samples);
        let histogram_start = self.histograms.len();
        self.histograms.extend_from_slice(histograms);
        let exemplar_start = self.exemplars.len();
        self.exemplars.extend_from_slice(exemplars);
        self.entries.push(SeriesEntry {
            series,
            samples: range(sample_start, self.samples.len()),
            histograms: range(histogram_start, self.histograms.len()),
            exemplars: range(exemplar_start, self.exemplars.len()),
            metadata,
            created_timestamp_ms,
        });
    }

    /// Appends a view (possibly of another batch) under a different series identity.
    pub fn push_view(&mut self, series: Arc<Series>, view: &SeriesView<'_>) {
        self.push(
            series,
            view.samples,
            view.histograms,
            view.exemplars,
            view.metadata.cloned(),
            view.created_timestamp_ms,
        );
    }

    pub fn view<'a>(&'a self, entry: &'a SeriesEntry) -> SeriesView<'a> {
        SeriesView {
            series: &entry.series,
            samples: &self.samples[entry.samples.start as usize..entry.samples.end as usize],
            histograms: &self.histograms
                [entry.histograms.start as usize..entry.histograms.end as usize],
            exemplars: &self.exemplars
                [entry.exemplars.start as usize..entry.exemplars.end as usize],
            metadata: entry.metadata.as_ref(),
            created_timestamp_ms: entry.created_timestamp_ms,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = SeriesView<'_>> + '_ {
        self.entries.iter().map(|entry| self.view(entry))
    }

    pub fn series_count(&self) -> usize {
        self.entries.len()
    }
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
    pub fn histogram_count(&self) -> usize {
        self.histograms.len()
    }
    pub fn exemplar_count(&self) -> usize {
        self.exemplars.len()
    }
    /// Samples + histograms + exemplars: what queue capacity is measured in.
    pub fn items(&self) -> usize {
        self.samples.len() + self.histograms.len() + self.exemplars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.metadata.is_empty()
    }

    /// Splits into batches of at most `max_items` items each, at series boundaries (a single
    /// series with more items than that travels alone). Family metadata goes with the first.
    pub fn split_by_items(self, max_items: usize) -> Vec<MetricBatch> {
        if self.items() <= max_items {
            return vec![self];
        }
        let mut pieces = Vec::new();
        let mut current = MetricBatch { metadata: self.metadata.clone(), ..MetricBatch::default() };
        for view in self.iter() {
            if current.items() > 0 && current.items() + view.items() > max_items {
                pieces.push(std::mem::take(&mut current));
            }
            current.push_view(view.series.clone(), &view);
        }
        if !current.is_empty() {
            pieces.push(current);
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_encoding_is_the_v1_label_wire_form() {
        let series = Series::new(Labels::from_pairs([("__name__", "up"), ("job", "node")]));
        // field 1 LEN, Label{1: "__name__", 2: "up"}, then the second label.
        let mut expected = vec![0x0a, 14, 0x0a, 8];
        expected.extend_from_slice(b"__name__");
        expected.extend_from_slice(&[0x12, 2]);
        expected.extend_from_slice(b"up");
        expected.extend_from_slice(&[0x0a, 11, 0x0a, 3]);
        expected.extend_from_slice(b"job");
        expected.extend_from_slice(&[0x12, 4]);
        expected.extend_from_slice(b"node");
        assert_eq!(&*series.encoded, &expected[..]);
    }

    #[test]
    fn batch_views_slice_their_ranges_and_keep_nan_bits() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut batch = MetricBatch::default();
        let a = Arc::new(Series::new(Labels::from_pairs([("__name__", "a")])));
        let b = Arc::new(Series::new(Labels::from_pairs([("__name__", "b")])));
        batch.push(
            a,
            &[Sample { timestamp_ms: 1, value: 1.0 }, Sample { timestamp_ms: 2, value: stale }],
            &[],
            &[],
            None,
            0,
        );
        batch.push(b, &[Sample { timestamp_ms: 3, value: 3.0 }], &[], &[], None, 0);
        let views: Vec<_> = batch.iter().collect();
        assert_eq!(views[0].samples.len(), 2);
        assert_eq!(views[0].samples[1].value.to_bits(), STALE_NAN_BITS);
        assert_eq!(views[1].samples, &[Sample { timestamp_ms: 3, value: 3.0 }]);
        assert_eq!(batch.items(), 3);
        let pieces = batch.clone().split_by_items(2);
        assert_eq!(pieces.iter().map(MetricBatch::items).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(
            batch.split_by_items(1).len(),
            2,
            "a series larger than the limit travels alone"
        );
    }
}
