//! Encoding of outgoing remote-write requests, 1.0 and 2.0, straight from [`MetricBatch`]es.
//!
//! Field numbers: `prompb/types.proto` (1.0) and `prompb/io/prometheus/write/v2/types.proto`
//! (2.0). 1.0 series copy their labels from `Series::encoded` (already in wire form); 2.0 builds a
//! per-request symbol table (`""` first, as the spec requires). Lengths are computed before
//! writing, so the output is canonical protobuf and written in one pass.
//!
//! Conversions between versions: 1.0 family metadata becomes 2.0 per-series metadata for series
//! of that family in the same request (by name, with `_total`, `_bucket`, `_sum`, `_count`,
//! `_created`, `_info` stripped); 2.0 per-series metadata becomes 1.0 family metadata, one entry
//! per family per request. 2.0 `created_timestamp` has no 1.0 field and is not sent in 1.0.

use std::borrow::Borrow;
// ahash: these maps are per request on the hot path; SipHash costs several times more.
use ahash::AHashMap as HashMap;

use prost::Message;

use crate::model::metrics::encode_label;
use crate::model::wire::{
    put_bytes, put_double, put_int64, put_key, put_varint, varint_len, LEN, VARINT,
};
use crate::model::{Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesView};

/// What to include besides float samples.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
}

#[inline]
fn sample_len(sample: &Sample) -> usize {
    let mut len = 0;
    if sample.value.to_bits() != 0 {
        len += 9;
    }
    if sample.timestamp_ms != 0 {
        len += 1 + varint_len(sample.timestamp_ms as u64);
    }
    len
}

#[inline]
fn put_sample(out: &mut Vec<u8>, field: u32, sample: &Sample) {
    let len = sample_len(sample);
    put_key(out, field, LEN);
    put_varint(out, len as u64);
    if sample.value.to_bits() != 0 {
        out.push(0x09);
        out.extend_from_slice(&sample.value.to_bits().to_le_bytes());
    }
    if sample.timestamp_ms != 0 {
        out.push(0x10);
        put_varint(out, sample.timestamp_ms as u64);
    }
}

fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// The metric family a series name belongs to, for metadata matching.
pub fn family_name(name: &str) -> &str {
    for suffix in ["_bucket", "_count", "_sum", "_total", "_created", "_info"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            return stripped;
        }
    }
    name
}

/// 1.0 `WriteRequest.timeseries` fields encoded ahead of time. 1.0 requests are plain
/// concatenations of such fields (plus family metadata), so a forward target encodes each series
/// once, at admission, while its data is still in cache, and the shard worker only concatenates
/// and compresses ([`write_v1_request`]).
#[derive(Debug, Default)]
pub struct EncodedV1 {
    pub bytes: Vec<u8>,
    pub samples: usize,
    pub histograms: usize,
    pub exemplars: usize,
    /// Family metadata to send with these series (1.0 style, one entry per family).
    pub metadata: Vec<MetricMetadata>,
}

impl EncodedV1 {
    /// Appends one series (with `options` applied) and, if it carries 2.0 per-series metadata,
    /// the family metadata derived from it.
    pub fn push(&mut self, view: &SeriesView<'_>, options: EncodeOptions) {
        put_v1_series(&mut self.bytes, view, options);
        self.samples += view.samples.len();
        if options.send_native_histograms {
            self.histograms += view.histograms.len();
        }
        if options.send_exemplars {
            self.exemplars += view.exemplars.len();
        }
        // Only series that carry metadata look at their labels: touching the label strings of
        // every series costs cache misses on the hot path.
        let with_name = view.metadata.and_then(|m| Some((m, view.series.labels.metric_name()?)));
        if let Some((meta, name)) = with_name {
            let family = family_name(name);
            if !self.metadata.iter().any(|m| m.family == family) {
                self.metadata.push(MetricMetadata {
                    family: family.to_owned(),
                    metric_type: meta.metric_type,
                    help: meta.help.clone(),
                    unit: meta.unit.clone(),
                });
            }
        }
    }

    /// Items as counted against queue capacity and `max_samples_per_send`.
    pub fn items(&self) -> usize {
        self.samples + self.histograms + self.exemplars
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.metadata.is_empty()
    }
}

/// Writes a 1.0 `prometheus.WriteRequest` (before snappy) from pre-encoded chunks into `out`;
/// metadata is de-duplicated by family (the first entry of a family wins).
pub fn write_v1_request<'a>(
    chunks: impl IntoIterator<Item = &'a EncodedV1> + Clone,
    out: &mut Vec<u8>,
) {
    out.clear();
    for chunk in chunks.clone() {
        out.extend_from_slice(&chunk.bytes);
    }
    put_v1_metadata_once(out, chunks.into_iter().flat_map(|chunk| chunk.metadata.iter()));
}

/// Appends `WriteRequest.metadata` fields, one per family (the first entry of a family wins).
fn put_v1_metadata_once<'a>(out: &mut Vec<u8>, metadata: impl Iterator<Item = &'a MetricMetadata>) {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for meta in metadata {
        if seen.insert(meta.family.as_str(), ()).is_none() {
            put_v1_metadata(out, meta);
        }
    }
}

/// Encodes a 1.0 `prometheus.WriteRequest` (before snappy) into `out`. Family metadata of the
/// batches comes first, then families derived from 2.0 per-series metadata.
pub fn encode_v1<B: Borrow<MetricBatch>>(batches: &[B], options: EncodeOptions, out: &mut Vec<u8>) {
    // Encode straight into `out` (no intermediate copy), then append the metadata.
    let mut encoded = EncodedV1 { bytes: std::mem::take(out), ..EncodedV1::default() };
    encoded.bytes.clear();
    for batch in batches {
        for view in batch.borrow().iter() {
            encoded.push(&view, options);
        }
    }
    *out = std::mem::take(&mut encoded.bytes);
    let family = batches.iter().flat_map(|b| b.borrow().metadata.iter());
    put_v1_metadata_once(out, family.chain(encoded.metadata.iter()));
}

fn put_v1_series(out: &mut Vec<u8>, view: &SeriesView<'_>, options: EncodeOptions) {
    let mut body = view.series.encoded.len();
    body += view.samples.iter().map(|s| field_len(sample_len(s))).sum::<usize>();
    let exemplars: &[_] = if options.send_exemplars { view.exemplars } else { &[] };
    let histograms: &[_] = if options.send_native_histograms { view.histograms } else { &[] };
    let exemplar_bodies: Vec<Vec<u8>> = exemplars.iter().map(encode_v1_exemplar).collect();
    body += exemplar_bodies.iter().map(|e| field_len(e.len())).sum::<usize>();
    body += histograms.iter().map(|h| field_len(h.encoded_len())).sum::<usize>();
    put_key(out, 1, LEN);
    put_varint(out, body as u64);
    out.extend_from_slice(&view.series.encoded);
    for sample in view.samples {
        put_sample(out, 2, sample);
    }
    for exemplar in &exemplar_bodies {
        put_bytes(out, 3, exemplar);
    }
    for histogram in histograms {
        put_key(out, 4, LEN);
        put_varint(out, histogram.encoded_len() as u64);
        histogram.encode_raw(out);
    }
}

fn encode_v1_exemplar(exemplar: &crate::model::Exemplar) -> Vec<u8> {
    let mut out = Vec::new();
    for label in &exemplar.labels {
        encode_label(&mut out, label.name.as_bytes(), label.value.as_bytes());
    }
    put_exemplar_value(&mut out, exemplar);
    out
}

/// `Exemplar.value = 2` and `Exemplar.timestamp = 3`, identical in 1.0 and 2.0.
fn put_exemplar_value(out: &mut Vec<u8>, exemplar: &crate::model::Exemplar) {
    put_double(out, 2, exemplar.value);
    put_int64(out, 3, exemplar.timestamp_ms);
}

fn put_v1_metadata(out: &mut Vec<u8>, meta: &MetricMetadata) {
    let mut body = Vec::new();
    if meta.metric_type != MetricType::Unknown {
        put_key(&mut body, 1, VARINT);
        put_varint(&mut body, meta.metric_type as u64);
    }
    for (field, text) in [(2, &meta.family), (4, &meta.help), (5, &meta.unit)] {
        if !text.is_empty() {
            put_bytes(&mut body, field, text.as_bytes());
        }
    }
    put_bytes(out, 3, &body);
}

/// A 2.0 symbol table under construction.
#[derive(Default)]
struct Symbols<'a> {
    index: HashMap<&'a str, u32>,
    table: Vec<&'a str>,
}

impl<'a> Symbols<'a> {
    fn new() -> Self {
        let mut symbols = Self::default();
        symbols.get("");
        symbols
    }
    fn get(&mut self, text: &'a str) -> u32 {
        if let Some(&reference) = self.index.get(text) {
            return reference;
        }
        let reference = self.table.len() as u32;
        self.table.push(text);
        self.index.insert(text, reference);
        reference
    }
}

fn put_refs(out: &mut Vec<u8>, field: u32, refs: &[u32]) {
    if refs.is_empty() {
        return;
    }
    let len: usize = refs.iter().map(|r| varint_len(u64::from(*r))).sum();
    put_key(out, field, LEN);
    put_varint(out, len as u64);
    for reference in refs {
        put_varint(out, u64::from(*reference));
    }
}

fn label_refs<'a>(symbols: &mut Symbols<'a>, labels: &'a Labels, refs: &mut Vec<u32>) {
    refs.clear();
    for label in labels {
        refs.push(symbols.get(&label.name));
        refs.push(symbols.get(&label.value));
    }
}

/// Encodes a 2.0 `io.prometheus.write.v2.Request` (before snappy) into `out`.
pub fn encode_v2<B: Borrow<MetricBatch>>(batches: &[B], options: EncodeOptions, out: &mut Vec<u8>) {
    out.clear();
    let mut family_metadata: HashMap<&str, &MetricMetadata> = HashMap::new();
    for batch in batches {
        for meta in &batch.borrow().metadata {
            family_metadata.insert(meta.family.as_str(), meta);
        }
    }
    let mut symbols = Symbols::new();
    let mut series_bytes: Vec<u8> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut refs: Vec<u32> = Vec::new();
    for batch in batches {
        for view in batch.borrow().iter() {
            body.clear();
            label_refs(&mut symbols, &view.series.labels, &mut refs);
            put_refs(&mut body, 1, &refs);
            for sample in view.samples {
                put_sample(&mut body, 2, sample);
            }
            if options.send_native_histograms {
                for histogram in view.histograms {
                    put_key(&mut body, 3, LEN);
                    put_varint(&mut body, histogram.encoded_len() as u64);
                    histogram.encode_raw(&mut body);
                }
            }
            if options.send_exemplars {
                for exemplar in view.exemplars {
                    let mut exemplar_body = Vec::new();
                    label_refs(&mut symbols, &exemplar.labels, &mut refs);
                    put_refs(&mut exemplar_body, 1, &refs);
                    put_exemplar_value(&mut exemplar_body, exemplar);
                    put_bytes(&mut body, 4, &exemplar_body);
                }
            }
            let metadata = match view.metadata {
                Some(meta) => Some((meta.metric_type, meta.help.as_str(), meta.unit.as_str())),
                None => view
                    .series
                    .labels
                    .metric_name()
                    .and_then(|name| {
                        family_metadata.get(family_name(name)).or_else(|| family_metadata.get(name))
                    })
                    .map(|m| (m.metric_type, m.help.as_str(), m.unit.as_str())),
            };
            if let Some((metric_type, help, unit)) = metadata {
                let mut meta_body = Vec::new();
                if metric_type != MetricType::Unknown {
                    put_key(&mut meta_body, 1, VARINT);
                    put_varint(&mut meta_body, metric_type as u64);
                }
                let help_ref = symbols.get(help);
                let unit_ref = symbols.get(unit);
                if help_ref != 0 {
                    put_key(&mut meta_body, 3, VARINT);
                    put_varint(&mut meta_body, u64::from(help_ref));
                }
                if unit_ref != 0 {
                    put_key(&mut meta_body, 4, VARINT);
                    put_varint(&mut meta_body, u64::from(unit_ref));
                }
                put_bytes(&mut body, 5, &meta_body);
            }
            if view.created_timestamp_ms != 0 {
                put_key(&mut body, 6, VARINT);
                put_varint(&mut body, view.created_timestamp_ms as u64);
            }
            put_bytes(&mut series_bytes, 5, &body);
        }
    }
    for symbol in &symbols.table {
        put_bytes(out, 4, symbol.as_bytes());
    }
    out.extend_from_slice(&series_bytes);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ingest::remote_write::decode::{DecodedWrite, Version};
    use crate::model::metrics::{BucketSpan, HistogramCount};
    use crate::model::{Exemplar, Histogram, Series, SeriesMetadata, STALE_NAN_BITS};

    const OPTIONS: EncodeOptions =
        EncodeOptions { send_exemplars: true, send_native_histograms: true };

    fn batch() -> MetricBatch {
        let mut batch = MetricBatch::default();
        let up = Arc::new(Series::new(Labels::from_pairs([("__name__", "up"), ("job", "node")])));
        let requests = Arc::new(Series::new(Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("code", "200"),
        ])));
        let hist = Arc::new(Series::new(Labels::from_pairs([("__name__", "latency_seconds")])));
        batch.push(
            up,
            &[
                Sample { timestamp_ms: 1000, value: 1.0 },
                Sample { timestamp_ms: 2000, value: f64::from_bits(STALE_NAN_BITS) },
            ],
            &[],
            &[],
            None,
            0,
        );
        batch.push(
            requests,
            &[Sample { timestamp_ms: 1000, value: 0.0 }],
            &[],
            &[Exemplar {
                labels: Labels::from_pairs([("trace_id", "abc")]),
                value: 0.25,
                timestamp_ms: 999,
            }],
            Some(Arc::new(SeriesMetadata {
                metric_type: MetricType::Counter,
                help: "requests".into(),
                unit: String::new(),
            })),
            500,
        );
        batch.push(
            hist,
            &[],
            &[Histogram {
                count: Some(HistogramCount::Int(4)),
                sum: 1.5,
                schema: 1,
                positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
                positive_deltas: vec![2, 0],
                timestamp: 1000,
                ..Histogram::default()
            }],
            &[],
            None,
            0,
        );
        batch.metadata.push(MetricMetadata {
            family: "up".into(),
            metric_type: MetricType::Gauge,
            help: "is up".into(),
            unit: String::new(),
        });
        batch
    }

    fn round_trip(version: Version) -> (Vec<u8>, DecodedWrite) {
        let batch = batch();
        let mut out = Vec::new();
        match version {
            Version::V1 => encode_v1(std::slice::from_ref(&batch), OPTIONS, &mut out),
            Version::V2 => encode_v2(std::slice::from_ref(&batch), OPTIONS, &mut out),
        }
        let mut decoded = DecodedWrite::default();
        decoded.decode(&out, version).unwrap();
        (out, decoded)
    }

    fn labels_of(body: &[u8], decoded: &DecodedWrite, series: usize) -> Vec<(String, String)> {
        decoded
            .labels_of(body, &decoded.series[series])
            .unwrap()
            .iter()
            .map(|l| {
                (
                    String::from_utf8(l.name.get(body).to_vec()).unwrap(),
                    String::from_utf8(l.value.get(body).to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn both_versions_round_trip_through_the_decoder() {
        for version in [Version::V1, Version::V2] {
            let (body, decoded) = round_trip(version);
            assert_eq!(decoded.series.len(), 3, "{version:?}");
            assert_eq!(
                labels_of(&body, &decoded, 0),
                [("__name__".into(), "up".into()), ("job".into(), "node".into())]
            );
            assert_eq!(decoded.samples.len(), 3);
            assert_eq!(
                decoded.samples[1].value.to_bits(),
                STALE_NAN_BITS,
                "{version:?}: stale marker bits"
            );
            assert_eq!(
                decoded.samples[2],
                Sample { timestamp_ms: 1000, value: 0.0 },
                "zero values survive"
            );
            assert_eq!(decoded.exemplars.len(), 1);
            assert_eq!(decoded.exemplars[0].value, 0.25);
            assert_eq!(decoded.histograms, batch().iter().nth(2).unwrap().histograms);
        }
    }

    #[test]
    fn v1_output_carries_family_and_converted_metadata() {
        let (_, decoded) = round_trip(Version::V1);
        let mut families: Vec<(&str, MetricType)> =
            decoded.metadata.iter().map(|m| (m.family.as_str(), m.metric_type)).collect();
        families.sort();
        assert_eq!(families, [("http_requests", MetricType::Counter), ("up", MetricType::Gauge)]);
    }

    #[test]
    fn v2_output_attaches_metadata_and_created_timestamp() {
        let (body, decoded) = round_trip(Version::V2);
        let up_meta = decoded.series[0].metadata.expect("family metadata attached to up");
        assert_eq!(up_meta.metric_type, MetricType::Gauge as i32);
        assert_eq!(up_meta.help.get(&body), b"is up");
        assert_eq!(decoded.series[1].created_timestamp_ms, 500);
    }

    #[test]
    fn v1_matches_prost_encoding_of_the_same_message() {
        // An independent encoder (prost derive) must produce the same bytes for samples+labels.
        #[derive(Clone, PartialEq, prost::Message)]
        struct Label {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(string, tag = "2")]
            value: String,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct PSample {
            #[prost(double, tag = "1")]
            value: f64,
            #[prost(int64, tag = "2")]
            timestamp: i64,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct TimeSeries {
            #[prost(message, repeated, tag = "1")]
            labels: Vec<Label>,
            #[prost(message, repeated, tag = "2")]
            samples: Vec<PSample>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct WriteRequest {
            #[prost(message, repeated, tag = "1")]
            timeseries: Vec<TimeSeries>,
        }
        let mut batch = MetricBatch::default();
        let series = Arc::new(Series::new(Labels::from_pairs([
            ("__name__", "x"),
            ("a", "b".repeat(200).as_str()),
        ])));
        batch.push(
            series,
            &[
                Sample { timestamp_ms: -5, value: 2.5 },
                Sample { timestamp_ms: 1_700_000_000_000, value: 0.0 },
            ],
            &[],
            &[],
            None,
            0,
        );
        let mut ours = Vec::new();
        encode_v1(std::slice::from_ref(&batch), OPTIONS, &mut ours);
        let expected = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: "x".into() },
                    Label { name: "a".into(), value: "b".repeat(200) },
                ],
                samples: vec![
                    PSample { value: 2.5, timestamp: -5 },
                    PSample { value: 0.0, timestamp: 1_700_000_000_000 },
                ],
            }],
        };
        assert_eq!(ours, expected.encode_to_vec());
    }
}
