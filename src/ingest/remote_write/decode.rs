//! Zero-copy decoding of remote-write request bodies (after snappy).
//!
//! Specs: remote-write 1.0 <https://prometheus.io/docs/specs/prw/remote_write_spec/>
//! (`prometheus.WriteRequest`, `prompb/remote.proto` + `prompb/types.proto`) and 2.0
//! <https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/> (`io.prometheus.write.v2.Request`,
//! `prompb/io/prometheus/write/v2/types.proto`). Field numbers below are from those files.
//!
//! The decoder walks the wire format once and records label names and values as [`Span`]s into
//! the body: no `String` per label. 2.0 symbol references are resolved to spans here, so later
//! stages see the same shape for both versions. UTF-8 is *not* checked here: it is checked on a
//! relabel-cache miss (`validate`), and a cache hit means the exact same bytes were checked
//! before. Everything else that can be wrong with the framing (lengths, wire types, symbol
//! references, odd `labels_refs`) is an error naming the byte offset.
//!
//! Native histograms and metadata are rare and decoded with prost / by hand into owned values.

use std::ops::Range;

use prost::Message;

use crate::model::wire::{Reader, WireError, FIXED64, LEN, VARINT};
use crate::model::{Histogram, MetricMetadata, MetricType, Sample};

/// Which remote-write message a body holds (chosen by Content-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A byte range of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    fn new(start: usize, len: usize) -> Self {
        Self { start: start as u32, len: len as u32 }
    }
    #[inline]
    pub fn get<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.start as usize..(self.start + self.len) as usize]
    }
}

/// A label as two spans of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLabel {
    pub name: Span,
    pub value: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RawExemplar {
    pub labels: Range<u32>,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// 2.0 per-series metadata, strings as spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawSeriesMetadata {
    pub metric_type: i32,
    pub help: Span,
    pub unit: Span,
}

/// One series: ranges into the vectors of [`DecodedWrite`].
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    pub labels: Range<u32>,
    /// 1.0 only: the bytes of the series' label fields when they are contiguous in the body
    /// (they are for every encoder seen in practice). They identify the label set exactly, so
    /// they serve as the relabel-cache key without being copied. When set, `labels` is empty
    /// and the labels are parsed on demand with [`parse_label_region`].
    pub label_bytes: Option<Span>,
    pub samples: Range<u32>,
    pub histograms: Range<u32>,
    pub exemplars: Range<u32>,
    pub metadata: Option<RawSeriesMetadata>,
    pub created_timestamp_ms: i64,
}

/// A decoded request. Reusable: [`DecodedWrite::clear`] keeps the allocations.
#[derive(Clone, Debug, Default)]
pub struct DecodedWrite {
    pub series: Vec<RawSeries>,
    pub labels: Vec<RawLabel>,
    pub samples: Vec<Sample>,
    pub histograms: Vec<Histogram>,
    pub exemplars: Vec<RawExemplar>,
    /// 1.0 family metadata.
    pub metadata: Vec<MetricMetadata>,
    /// 2.0 symbol table (scratch).
    symbols: Vec<Span>,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("invalid remote-write 2.0 request at byte {offset}: {what}")]
    Symbols { offset: usize, what: String },
    #[error("invalid native histogram at byte {offset}: {what}")]
    Histogram { offset: usize, what: String },
    #[error("invalid metadata at byte {offset}: {what}")]
    Metadata { offset: usize, what: &'static str },
}

impl DecodedWrite {
    pub fn clear(&mut self) {
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.histograms.clear();
        self.exemplars.clear();
        self.metadata.clear();
        self.symbols.clear();
    }

    /// Decodes `body` (already snappy-decoded) as `version`, replacing the current content.
    pub fn decode(&mut self, body: &[u8], version: Version) -> Result<(), DecodeError> {
        self.clear();
        if body.len() > u32::MAX as usize {
            return Err(WireError { offset: 0, what: "body larger than 4 GiB" }.into());
        }
        match version {
            Version::V1 => self.decode_v1(body),
            Version::V2 => self.decode_v2(body),
        }
    }

    fn decode_v1(&mut self, body: &[u8]) -> Result<(), DecodeError> {
        let mut reader = Reader::new(body, 0);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                1 => {
                    reader.expect(wire_type, LEN)?;
                    let (bytes, offset) = reader.bytes()?;
                    self.decode_v1_series(bytes, offset)?;
                }
                3 => {
                    reader.expect(wire_type, LEN)?;
                    let (bytes, offset) = reader.bytes()?;
                    self.metadata.push(decode_v1_metadata(bytes, offset)?);
                }
                _ => reader.skip(wire_type)?,
            }
        }
        Ok(())
    }

    fn decode_v1_series(&mut self, bytes: &[u8], base: usize) -> Result<(), DecodeError> {
        let sample_start = self.samples.len();
        let histogram_start = self.histograms.len();
        let exemplar_start = self.exemplars.len();
        let mut reader = Reader::new(bytes, base);
        // The label fields' byte range, while they are contiguous. Label contents are not
        // parsed here: the region is the relabel-cache key, and only a cache miss needs the
        // individual labels ([`parse_label_region`]).
        let mut label_region: Option<(usize, usize)> = None;
        let mut labels_contiguous = true;
        while !reader.is_empty() {
            let field_start = reader.offset();
            let (field, wire_type) = reader.key()?;
            match field {
                1 => {
                    reader.expect(wire_type, LEN)?;
                    // Consecutive label fields in one tight loop; their contents are not
                    // parsed here.
                    reader.skip_len_run(0x0a)?;
                    let field_end = reader.offset();
                    label_region = match label_region {
                        None => Some((field_start, field_end)),
                        Some((start, end)) => {
                            labels_contiguous &= end == field_start;
                            Some((start, field_end))
                        }
                    };
                }
                2 => {
                    reader.expect(wire_type, LEN)?;
                    let (sample, offset) = reader.bytes()?;
                    self.samples.push(decode_sample(sample, offset)?);
                }
                3 => {
                    reader.expect(wire_type, LEN)?;
                    let (exemplar, offset) = reader.bytes()?;
                    self.decode_exemplar_v1(exemplar, offset)?;
                }
                4 => {
                    reader.expect(wire_type, LEN)?;
                    let (histogram, offset) = reader.bytes()?;
                    self.histograms.push(decode_histogram(histogram, offset)?);
                }
                _ => reader.skip(wire_type)?,
            }
        }
        let label_start = self.labels.len();
        let label_bytes = match label_region {
            Some((start, end)) if labels_contiguous => Some(Span::new(start, end - start)),
            _ => {
                // Interleaved with other fields (no known encoder does this): parse the labels
                // now, in a second walk, so they stay contiguous in `self.labels`.
                let mut again = Reader::new(bytes, base);
                while !again.is_empty() {
                    let (field, wire_type) = again.key()?;
                    if field == 1 {
                        let (label, offset) = again.bytes()?;
                        self.labels.push(decode_label(label, offset)?);
                    } else {
                        again.skip(wire_type)?;
                    }
                }
                None
            }
        };
        self.series.push(RawSeries {
            labels: range(label_start, self.labels.len()),
            label_bytes,
            samples: range(sample_start, self.samples.len()),
            histograms: range(histogram_start, self.histograms.len()),
            exemplars: range(exemplar_start, self.exemplars.len()),
            metadata: None,
            created_timestamp_ms: 0,
        });
        Ok(())
    }

    fn decode_exemplar_v1(&mut self, bytes: &[u8], base: usize) -> Result<(), DecodeError> {
        let label_start = self.labels.len();
        let mut value = 0.0;
        let mut timestamp_ms = 0;
        let mut reader = Reader::new(bytes, base);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                1 => {
                    reader.expect(wire_type, LEN)?;
                    let (label, offset) = reader.bytes()?;
                    self.labels.push(decode_label(label, offset)?);
                }
                2 => {
                    reader.expect(wire_type, FIXED64)?;
                    value = reader.double()?;
                }
                3 => {
                    reader.expect(wire_type, VARINT)?;
                    timestamp_ms = reader.varint()? as i64;
                }
                _ => reader.skip(wire_type)?,
            }
        }
        self.exemplars.push(RawExemplar {
            labels: range(label_start, self.labels.len()),
            value,
            timestamp_ms,
        });
        Ok(())
    }

    fn decode_v2(&mut self, body: &[u8]) -> Result<(), DecodeError> {
        // Symbols may come after the series that reference them, so first collect the symbol
        // table and the series' positions, then decode the series.
        let mut series_spans: Vec<Span> = Vec::new();
        let mut reader = Reader::new(body, 0);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                4 => {
                    reader.expect(wire_type, LEN)?;
                    let (symbol, offset) = reader.bytes()?;
                    self.symbols.push(Span::new(offset, symbol.len()));
                }
                5 => {
                    reader.expect(wire_type, LEN)?;
                    let (bytes, offset) = reader.bytes()?;
                    series_spans.push(Span::new(offset, bytes.len()));
                }
                _ => reader.skip(wire_type)?,
            }
        }
        if !series_spans.is_empty() || !self.symbols.is_empty() {
            match self.symbols.first() {
                Some(first) if first.len == 0 => {}
                _ => {
                    return Err(DecodeError::Symbols {
                        offset: 0,
                        what: "the symbols table must start with the empty string".into(),
                    })
                }
            }
        }
        for span in series_spans {
            self.decode_v2_series(span.get(body), span.start as usize)?;
        }
        Ok(())
    }

    fn symbol(&self, reference: u64, offset: usize) -> Result<Span, DecodeError> {
        usize::try_from(reference).ok().and_then(|r| self.symbols.get(r)).copied().ok_or_else(
            || DecodeError::Symbols {
                offset,
                what: format!(
                    "symbol reference {reference} is out of range (table has {} symbols)",
                    self.symbols.len()
                ),
            },
        )
    }

    /// Decodes `labels_refs` (packed or not) into label spans.
    fn push_label_refs(&mut self, refs: &[u64], offset: usize) -> Result<(), DecodeError> {
        if refs.len() % 2 != 0 {
            return Err(DecodeError::Symbols {
                offset,
                what: format!("labels_refs has odd length {}", refs.len()),
            });
        }
        for pair in refs.chunks_exact(2) {
            let name = self.symbol(pair[0], offset)?;
            let value = self.symbol(pair[1], offset)?;
            self.labels.push(RawLabel { name, value });
        }
        Ok(())
    }

    fn decode_v2_series(&mut self, bytes: &[u8], base: usize) -> Result<(), DecodeError> {
        let sample_start = self.samples.len();
        let histogram_start = self.histograms.len();
        let exemplar_start = self.exemplars.len();
        let mut refs: Vec<u64> = Vec::new();
        let mut metadata = None;
        let mut created_timestamp_ms = 0;
        let mut reader = Reader::new(bytes, base);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                1 => read_uint_field(&mut reader, wire_type, &mut refs)?,
                2 => {
                    reader.expect(wire_type, LEN)?;
                    let (sample, offset) = reader.bytes()?;
                    self.samples.push(decode_sample(sample, offset)?);
                }
                3 => {
                    reader.expect(wire_type, LEN)?;
                    let (histogram, offset) = reader.bytes()?;
                    self.histograms.push(decode_histogram(histogram, offset)?);
                }
                4 => {
                    reader.expect(wire_type, LEN)?;
                    let (exemplar, offset) = reader.bytes()?;
                    self.decode_exemplar_v2(exemplar, offset)?;
                }
                5 => {
                    reader.expect(wire_type, LEN)?;
                    let (meta, offset) = reader.bytes()?;
                    metadata = Some(self.decode_v2_metadata(meta, offset)?);
                }
                6 => {
                    reader.expect(wire_type, VARINT)?;
                    created_timestamp_ms = reader.varint()? as i64;
                }
                _ => reader.skip(wire_type)?,
            }
        }
        // Exemplar labels were pushed while walking the fields; the series' own labels are
        // resolved last so they stay contiguous.
        let label_start = self.labels.len();
        self.push_label_refs(&refs, base)?;
        self.series.push(RawSeries {
            labels: range(label_start, self.labels.len()),
            label_bytes: None,
            samples: range(sample_start, self.samples.len()),
            histograms: range(histogram_start, self.histograms.len()),
            exemplars: range(exemplar_start, self.exemplars.len()),
            metadata,
            created_timestamp_ms,
        });
        Ok(())
    }

    fn decode_exemplar_v2(&mut self, bytes: &[u8], base: usize) -> Result<(), DecodeError> {
        let mut refs = Vec::new();
        let mut value = 0.0;
        let mut timestamp_ms = 0;
        let mut reader = Reader::new(bytes, base);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                1 => read_uint_field(&mut reader, wire_type, &mut refs)?,
                2 => {
                    reader.expect(wire_type, FIXED64)?;
                    value = reader.double()?;
                }
                3 => {
                    reader.expect(wire_type, VARINT)?;
                    timestamp_ms = reader.varint()? as i64;
                }
                _ => reader.skip(wire_type)?,
            }
        }
        let label_start = self.labels.len();
        self.push_label_refs(&refs, base)?;
        self.exemplars.push(RawExemplar {
            labels: range(label_start, self.labels.len()),
            value,
            timestamp_ms,
        });
        Ok(())
    }

    fn decode_v2_metadata(
        &self,
        bytes: &[u8],
        base: usize,
    ) -> Result<RawSeriesMetadata, DecodeError> {
        let mut metadata = RawSeriesMetadata::default();
        let mut reader = Reader::new(bytes, base);
        while !reader.is_empty() {
            let (field, wire_type) = reader.key()?;
            match field {
                1 => {
                    reader.expect(wire_type, VARINT)?;
                    metadata.metric_type = reader.varint()? as i32;
                }
                3 => {
                    reader.expect(wire_type, VARINT)?;
                    let offset = reader.offset();
                    metadata.help = self.symbol(reader.varint()?, offset)?;
                }
                4 => {
                    reader.expect(wire_type, VARINT)?;
                    let offset = reader.offset();
                    metadata.unit = self.symbol(reader.varint()?, offset)?;
                }
                _ => reader.skip(wire_type)?,
            }
        }
        Ok(metadata)
    }

    /// A series' labels whether stored or on demand (for tests and cold paths; the hot path
    /// uses the region as a cache key and parses only on a miss).
    pub fn labels_of(&self, body: &[u8], series: &RawSeries) -> Result<Vec<RawLabel>, DecodeError> {
        match series.label_bytes {
            Some(region) => {
                let mut out = Vec::new();
                parse_label_region(body, region, &mut out)?;
                Ok(out)
            }
            None => {
                Ok(self.labels[series.labels.start as usize..series.labels.end as usize].to_vec())
            }
        }
    }

    /// Totals, for the request's counters.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

fn range(start: usize, end: usize) -> Range<u32> {
    start as u32..end as u32
}

/// Reads a `repeated uint32` field, packed (LEN) or one value per key (VARINT).
fn read_uint_field(
    reader: &mut Reader<'_>,
    wire_type: u8,
    out: &mut Vec<u64>,
) -> Result<(), DecodeError> {
    match wire_type {
        VARINT => out.push(reader.varint()?),
        LEN => {
            let (packed, offset) = reader.bytes()?;
            let mut inner = Reader::new(packed, offset);
            while !inner.is_empty() {
                out.push(inner.varint()?);
            }
        }
        _ => return Err(reader.error("unexpected wire type for labels_refs").into()),
    }
    Ok(())
}

/// Parses the labels of a 1.0 label region (`RawSeries::label_bytes`) into `out`.
pub fn parse_label_region(
    body: &[u8],
    region: Span,
    out: &mut Vec<RawLabel>,
) -> Result<(), DecodeError> {
    let mut reader = Reader::new(region.get(body), region.start as usize);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        // The region holds label fields only (that is how it was delimited).
        debug_assert_eq!(field, 1);
        reader.expect(wire_type, LEN)?;
        let (label, offset) = reader.bytes()?;
        out.push(decode_label(label, offset)?);
    }
    Ok(())
}

#[inline]
fn decode_label(bytes: &[u8], base: usize) -> Result<RawLabel, DecodeError> {
    // Fast path for the canonical encoding of short strings:
    // [0x0a, n, name; 0x12, m, value] with n, m < 128.
    if let [0x0a, name_len, rest @ ..] = bytes {
        let name_len = usize::from(*name_len);
        if name_len < 0x80 {
            if let Some(&[0x12, value_len]) = rest.get(name_len..name_len + 2) {
                let value_len = usize::from(value_len);
                if value_len < 0x80 && rest.len() == name_len + 2 + value_len {
                    return Ok(RawLabel {
                        name: Span::new(base + 2, name_len),
                        value: Span::new(base + 4 + name_len, value_len),
                    });
                }
            }
        }
    }
    let mut name = Span::default();
    let mut value = Span::default();
    let mut reader = Reader::new(bytes, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => {
                reader.expect(wire_type, LEN)?;
                let (text, offset) = reader.bytes()?;
                name = Span::new(offset, text.len());
            }
            2 => {
                reader.expect(wire_type, LEN)?;
                let (text, offset) = reader.bytes()?;
                value = Span::new(offset, text.len());
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(RawLabel { name, value })
}

#[inline]
fn decode_sample(bytes: &[u8], base: usize) -> Result<Sample, DecodeError> {
    // Fast path for the canonical encoding: [0x09, value (8 bytes), 0x10, timestamp varint].
    if let [0x09, v0, v1, v2, v3, v4, v5, v6, v7, 0x10, rest @ ..] = bytes {
        let mut reader = Reader::new(rest, base + 10);
        if let Ok(timestamp) = reader.varint() {
            if reader.is_empty() {
                let value =
                    f64::from_bits(u64::from_le_bytes([*v0, *v1, *v2, *v3, *v4, *v5, *v6, *v7]));
                return Ok(Sample { timestamp_ms: timestamp as i64, value });
            }
        }
    }
    let mut sample = Sample { timestamp_ms: 0, value: 0.0 };
    let mut reader = Reader::new(bytes, base);
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => {
                reader.expect(wire_type, FIXED64)?;
                sample.value = reader.double()?;
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                sample.timestamp_ms = reader.varint()? as i64;
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(sample)
}

fn decode_histogram(bytes: &[u8], offset: usize) -> Result<Histogram, DecodeError> {
    Histogram::decode(bytes).map_err(|e| DecodeError::Histogram { offset, what: e.to_string() })
}

fn decode_v1_metadata(bytes: &[u8], base: usize) -> Result<MetricMetadata, DecodeError> {
    let mut metadata = MetricMetadata::default();
    let mut reader = Reader::new(bytes, base);
    let text = |bytes: &[u8], offset: usize| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Metadata { offset, what: "string is not valid UTF-8" })
    };
    while !reader.is_empty() {
        let (field, wire_type) = reader.key()?;
        match field {
            1 => {
                reader.expect(wire_type, VARINT)?;
                let offset = reader.offset();
                let raw = reader.varint()? as i32;
                metadata.metric_type = MetricType::from_i32(raw)
                    .ok_or(DecodeError::Metadata { offset, what: "unknown metric type" })?;
            }
            2 | 4 | 5 => {
                reader.expect(wire_type, LEN)?;
                let (bytes, offset) = reader.bytes()?;
                let value = text(bytes, offset)?;
                match field {
                    2 => metadata.family = value,
                    4 => metadata.help = value,
                    _ => metadata.unit = value,
                }
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(metadata)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
