//! What a WAL record holds: one accepted batch of one signal, after ingest validation and
//! relabeling, exactly as it was routed. Replay rebuilds the batch and feeds the head and
//! every forward target whose acknowledged position is before it.
//!
//! Format version 1 (a contract: a change needs a new version byte and a compatibility test).
//! The record kind ([`KIND_METRICS`], [`KIND_LOGS`], [`KIND_TRACES`]) is the WAL frame's kind
//! byte; the payload starts with the format version, then (`uv` = unsigned LEB128 varint,
//! `sv` = zigzag varint, `str`/`bytes` = `uv` length + bytes, `labels` = `bytes` holding
//! remote-write 1.0 `Label` fields, `[x]` = `uv` count then that many `x`):
//!
//! ```text
//! metrics: 1 | [series] | [family]
//!   series = labels | [sample] | [bytes histogram (prost)] | [exemplar] | metadata | sv created_ms
//!   sample = sv timestamp delta from the previous sample of the series (first: from 0) | u64 LE bits
//!   exemplar = labels | u64 LE value bits | sv timestamp_ms
//!   metadata = u8 0 | u8 1, u8 type, str help, str unit
//!   family = str name | u8 type | str help | str unit
//! logs:    1 | str tenant | [stream]
//!   stream = labels | [entry];  entry = sv timestamp_ns | bytes line | [str name, str value]
//! traces:  1 | str tenant | [resource]
//!   resource = bytes Resource (protobuf) | str schema_url | bytes scope_spans fields | uv span count
//! ```
//!
//! With `storage.wal.compression: snappy` (the default) the payload is a snappy block and the
//! frame's kind byte has [`FLAG_SNAPPY`] set. Float values are stored as their bits, so stale
//! markers survive. What a record does not
//! keep: nothing of a metric batch is dropped; 2.0 per-series metadata is kept per series.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use crate::model::labels::{Label, Labels};
use crate::model::logs::{LogBatch, LogEntry, Stream, StreamEntries, Tenant};
use crate::model::metrics::{
    encode_label, Exemplar, Histogram, MetricBatch, MetricMetadata, MetricType, Sample, Series,
    SeriesMetadata,
};
use crate::model::traces::{ResourceSpans, TraceBatch, TraceResource};
use crate::model::wire::{put_varint, Reader, WireError, LEN};

pub const KIND_METRICS: u8 = 1;
pub const KIND_LOGS: u8 = 2;
pub const KIND_TRACES: u8 = 3;
/// Set in the frame's kind byte when the payload is a snappy block (`storage.wal.compression`).
pub const FLAG_SNAPPY: u8 = 0x80;
const VERSION: u8 = 1;

/// A record that does not decode: the WAL checksum held, so this is a format mismatch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("wal record of kind {kind}: unsupported format version {version}")]
    Version { kind: u8, version: u8 },
    #[error("wal record of kind {kind}: unknown record kind")]
    Kind { kind: u8 },
    #[error("wal record of kind {kind} at byte {offset}: {what}")]
    Malformed { kind: u8, offset: usize, what: String },
}

/// A decoded record.
#[derive(Debug)]
pub enum Batch {
    Metrics(MetricBatch),
    Logs(LogBatch),
    Traces(TraceBatch),
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_labels(out: &mut Vec<u8>, labels: &Labels, scratch: &mut Vec<u8>) {
    scratch.clear();
    for label in labels {
        encode_label(scratch, label.name.as_bytes(), label.value.as_bytes());
    }
    put_bytes(out, scratch);
}

/// Appends the record payload of a metric batch to `out`.
pub fn encode_metrics(batch: &MetricBatch, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_varint(out, batch.series_count() as u64);
    let mut scratch = Vec::new();
    for view in batch.iter() {
        put_bytes(out, &view.series.encoded);
        put_varint(out, view.samples.len() as u64);
        let mut previous = 0i64;
        for sample in view.samples {
            put_varint(out, zigzag(sample.timestamp_ms.wrapping_sub(previous)));
            out.extend_from_slice(&sample.value.to_bits().to_le_bytes());
            previous = sample.timestamp_ms;
        }
        put_varint(out, view.histograms.len() as u64);
        for histogram in view.histograms {
            put_bytes(out, &histogram.encode_to_vec());
        }
        put_varint(out, view.exemplars.len() as u64);
        for exemplar in view.exemplars {
            put_labels(out, &exemplar.labels, &mut scratch);
            out.extend_from_slice(&exemplar.value.to_bits().to_le_bytes());
            put_varint(out, zigzag(exemplar.timestamp_ms));
        }
        match view.metadata {
            None => out.push(0),
            Some(metadata) => {
                out.push(1);
                out.push(metadata.metric_type as u8);
                put_bytes(out, metadata.help.as_bytes());
                put_bytes(out, metadata.unit.as_bytes());
            }
        }
        put_varint(out, zigzag(view.created_timestamp_ms));
    }
    put_varint(out, batch.metadata.len() as u64);
    for family in &batch.metadata {
        put_bytes(out, family.family.as_bytes());
        out.push(family.metric_type as u8);
        put_bytes(out, family.help.as_bytes());
        put_bytes(out, family.unit.as_bytes());
    }
}

/// Appends the record payload of a log batch to `out`.
pub fn encode_logs(batch: &LogBatch, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_bytes(out, batch.tenant.as_bytes());
    put_varint(out, batch.streams.len() as u64);
    let mut scratch = Vec::new();
    for stream in &batch.streams {
        put_labels(out, &stream.stream.labels, &mut scratch);
        put_varint(out, stream.entries.len() as u64);
        for entry in &stream.entries {
            put_varint(out, zigzag(entry.timestamp_ns));
            put_bytes(out, &entry.line);
            put_varint(out, entry.structured_metadata.len() as u64);
            for label in &entry.structured_metadata {
                put_bytes(out, label.name.as_bytes());
                put_bytes(out, label.value.as_bytes());
            }
        }
    }
}

/// Appends the record payload of a trace batch to `out`.
pub fn encode_traces(batch: &TraceBatch, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_bytes(out, batch.tenant.as_bytes());
    put_varint(out, batch.resources.len() as u64);
    for resource in &batch.resources {
        put_bytes(out, &resource.resource.encoded);
        put_bytes(out, resource.schema_url.as_bytes());
        put_bytes(out, &resource.scope_spans);
        put_varint(out, resource.span_count as u64);
    }
}

/// Compresses an encoded payload for the WAL: returns the frame kind (with [`FLAG_SNAPPY`])
/// and the bytes to append.
pub fn compress(kind: u8, payload: &[u8]) -> (u8, Vec<u8>) {
    match snap::raw::Encoder::new().compress_vec(payload) {
        Ok(compressed) => (kind | FLAG_SNAPPY, compressed),
        // Cannot happen below snappy's 4 GiB limit (records are capped far lower); stay plain.
        Err(_) => (kind, payload.to_vec()),
    }
}

/// Decodes a WAL frame: decompresses when [`FLAG_SNAPPY`] is set (refusing a claimed size over
/// the WAL's record limit), then decodes the payload of the kind.
pub fn decode_frame(kind: u8, payload: Vec<u8>) -> Result<Batch, RecordError> {
    if kind & FLAG_SNAPPY == 0 {
        return decode(kind, &Bytes::from(payload));
    }
    let plain_kind = kind & !FLAG_SNAPPY;
    let malformed = |what: String| RecordError::Malformed { kind: plain_kind, offset: 0, what };
    #[allow(clippy::disallowed_methods)] // the cap check is right here
    let len = snap::raw::decompress_len(&payload).map_err(|e| malformed(e.to_string()))?;
    // A frame passed its CRC, so a lying header is a bug, not an attack; still, never allocate
    // more than a record may hold or than snappy can expand to (64 bytes per 3-byte copy).
    if len > super::wal::MAX_RECORD || len > payload.len().saturating_mul(64) {
        return Err(malformed(format!("claims {len} bytes decompressed")));
    }
    let mut plain = vec![0; len];
    let written = snap::raw::Decoder::new()
        .decompress(&payload, &mut plain)
        .map_err(|e| malformed(e.to_string()))?;
    plain.truncate(written);
    decode(plain_kind, &Bytes::from(plain))
}

/// Decodes a record payload of `kind`. Lines and span bytes are slices of `payload`.
pub fn decode(kind: u8, payload: &Bytes) -> Result<Batch, RecordError> {
    let mut cursor = Cursor { payload, at: 0, kind };
    let version = cursor.u8()?;
    if version != VERSION {
        return Err(RecordError::Version { kind, version });
    }
    match kind {
        KIND_METRICS => cursor.metrics().map(Batch::Metrics),
        KIND_LOGS => cursor.logs().map(Batch::Logs),
        KIND_TRACES => cursor.traces().map(Batch::Traces),
        _ => Err(RecordError::Kind { kind }),
    }
}

struct Cursor<'a> {
    payload: &'a Bytes,
    at: usize,
    kind: u8,
}

impl Cursor<'_> {
    fn error(&self, what: impl Into<String>) -> RecordError {
        RecordError::Malformed { kind: self.kind, offset: self.at, what: what.into() }
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        let byte = *self.payload.get(self.at).ok_or_else(|| self.error("unexpected end"))?;
        self.at += 1;
        Ok(byte)
    }

    fn u64_le(&mut self) -> Result<u64, RecordError> {
        let bytes = self
            .payload
            .get(self.at..self.at + 8)
            .ok_or_else(|| self.error("unexpected end in a fixed64"))?;
        self.at += 8;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let mut reader = Reader::new(&self.payload[self.at..], self.at);
        let value = reader.varint().map_err(|e| self.error(e.to_string()))?;
        self.at += reader.position();
        Ok(value)
    }

    /// A count that cannot exceed the bytes left (every counted item takes at least one).
    fn count(&mut self) -> Result<usize, RecordError> {
        let count = self.varint()?;
        if count > (self.payload.len() - self.at) as u64 {
            return Err(self.error(format!("count {count} exceeds the record")));
        }
        Ok(count as usize)
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.varint()? as usize;
        let end = self.at.checked_add(len).filter(|&end| end <= self.payload.len());
        let Some(end) = end else { return Err(self.error("length past the end")) };
        let bytes = self.payload.slice(self.at..end);
        self.at = end;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error("string is not UTF-8"))
    }

    fn labels(&mut self) -> Result<Labels, RecordError> {
        let bytes = self.bytes()?;
        decode_labels(&bytes).map_err(|e| self.error(format!("labels: {e}")))
    }

    fn metric_type(&mut self) -> Result<MetricType, RecordError> {
        let number = self.u8()?;
        MetricType::from_i32(i32::from(number))
            .ok_or_else(|| self.error(format!("metric type {number}")))
    }

    fn metrics(&mut self) -> Result<MetricBatch, RecordError> {
        let series_count = self.count()?;
        let mut batch = MetricBatch::with_capacity(series_count, 0);
        let mut samples = Vec::new();
        let mut histograms = Vec::new();
        let mut exemplars = Vec::new();
        for _ in 0..series_count {
            let labels = self.labels()?;
            samples.clear();
            let mut timestamp = 0i64;
            for _ in 0..self.count()? {
                timestamp = timestamp.wrapping_add(unzigzag(self.varint()?));
                let value = f64::from_bits(self.u64_le()?);
                samples.push(Sample { timestamp_ms: timestamp, value });
            }
            histograms.clear();
            for _ in 0..self.count()? {
                let bytes = self.bytes()?;
                let histogram =
                    Histogram::decode(bytes).map_err(|e| self.error(format!("histogram: {e}")))?;
                histograms.push(histogram);
            }
            exemplars.clear();
            for _ in 0..self.count()? {
                let labels = self.labels()?;
                let value = f64::from_bits(self.u64_le()?);
                let timestamp_ms = unzigzag(self.varint()?);
                exemplars.push(Exemplar { labels, value, timestamp_ms });
            }
            let metadata = match self.u8()? {
                0 => None,
                _ => Some(Arc::new(SeriesMetadata {
                    metric_type: self.metric_type()?,
                    help: self.string()?,
                    unit: self.string()?,
                })),
            };
            let created = unzigzag(self.varint()?);
            let series = Arc::new(Series::new(labels));
            batch.push(series, &samples, &histograms, &exemplars, metadata, created);
        }
        for _ in 0..self.count()? {
            batch.metadata.push(MetricMetadata {
                family: self.string()?,
                metric_type: self.metric_type()?,
                help: self.string()?,
                unit: self.string()?,
            });
        }
        Ok(batch)
    }

    fn tenant(&mut self) -> Result<Tenant, RecordError> {
        Ok(Tenant::from(self.string()?))
    }

    fn logs(&mut self) -> Result<LogBatch, RecordError> {
        let mut batch = LogBatch::new(self.tenant()?);
        for _ in 0..self.count()? {
            let stream = Arc::new(Stream::new(self.labels()?));
            let entry_count = self.count()?;
            let mut entries = Vec::with_capacity(entry_count);
            for _ in 0..entry_count {
                let timestamp_ns = unzigzag(self.varint()?);
                let line = self.bytes()?;
                let mut structured_metadata = Vec::new();
                for _ in 0..self.count()? {
                    structured_metadata.push(Label::new(self.string()?, self.string()?));
                }
                entries.push(LogEntry { timestamp_ns, line, structured_metadata });
            }
            batch.streams.push(StreamEntries { stream, entries });
        }
        Ok(batch)
    }

    fn traces(&mut self) -> Result<TraceBatch, RecordError> {
        let mut batch = TraceBatch::new(self.tenant()?);
        for _ in 0..self.count()? {
            let encoded = self.bytes()?;
            let resource =
                opentelemetry_proto::tonic::resource::v1::Resource::decode(encoded.clone())
                    .map_err(|e| self.error(format!("resource: {e}")))?;
            let hash = xxhash_rust::xxh3::xxh3_64(&encoded);
            let schema_url = self.string()?;
            let scope_spans = self.bytes()?;
            let span_count = self.varint()? as usize;
            batch.resources.push(ResourceSpans {
                resource: Arc::new(TraceResource { resource, encoded, hash }),
                schema_url,
                scope_spans,
                span_count,
            });
        }
        Ok(batch)
    }
}

/// Parses remote-write 1.0 `Label` fields (what [`Series::encoded`] holds) into labels.
pub fn decode_labels(bytes: &[u8]) -> Result<Labels, WireError> {
    let mut labels = Vec::new();
    let mut reader = Reader::new(bytes, 0);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        if field != 1 || wire_type != LEN {
            reader.skip(wire_type)?;
            continue;
        }
        let (body, offset) = reader.bytes()?;
        let mut inner = Reader::new(body, offset);
        let (mut name, mut value) = (String::new(), String::new());
        while !inner.is_empty() {
            let (field, wire_type) = inner.key()?;
            match (field, wire_type) {
                (1, LEN) => name = utf8(inner.bytes()?.0, &inner)?,
                (2, LEN) => value = utf8(inner.bytes()?.0, &inner)?,
                _ => inner.skip(wire_type)?,
            }
        }
        labels.push(Label { name, value });
    }
    Ok(Labels::from_unsorted(labels))
}

fn utf8(bytes: &[u8], reader: &Reader<'_>) -> Result<String, WireError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| reader.error("label is not UTF-8"))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
