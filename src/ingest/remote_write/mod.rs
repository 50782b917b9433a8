//! Prometheus remote-write receive: content negotiation, capped decoding, validation and
//! `metric_relabel_configs`, producing a [`MetricBatch`].
//!
//! Specs: 1.0 <https://prometheus.io/docs/specs/prw/remote_write_spec/>, 2.0
//! <https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/> (negotiation by Content-Type,
//! `X-Prometheus-Remote-Write-*-Written` response headers).
//!
//! Per series, the label bytes (re-encoded into one contiguous key) are looked up in a
//! [`SeriesCache`]; only a miss validates ([`validate`]) and relabels. The cached verdict is one
//! of: keep as `Arc<Series>`, dropped by relabeling, or invalid with its message.
//!
//! **Partially invalid requests.** Series that break a rule are rejected and named in a 400; the
//! valid rest of the same request is accepted and forwarded. This is what Prometheus' own
//! receiver does for per-sample errors (it commits what it can and answers 400), and it is the
//! only choice that loses nothing: senders never retry a 400, so rejecting the whole request
//! would silently drop the valid series too, while accepting them cannot create duplicates.

pub mod decode;
pub mod validate;

// ahash: these maps are per request on the hot path; SipHash costs several times more.
use ahash::AHashMap as HashMap;
use std::sync::Arc;

use crate::config::{RemoteWriteIngestConfig, SeriesLimits};
use crate::model::{Exemplar, Label, Labels, MetricBatch, MetricType, Series, SeriesMetadata};
use crate::relabel::{CacheTally, NameValidation, Relabeler, SeriesCache};
use crate::telemetry::{Catalog, IngestDropReason, IngestMetrics};
pub use decode::{DecodedWrite, Version};

use super::IngestError;

/// Content-Type of remote-write 2.0 requests.
pub const CONTENT_TYPE_V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// Content-Type of remote-write 1.0 requests (the `proto` parameter is optional for 1.0).
pub const CONTENT_TYPE_V1: &str = "application/x-protobuf";

/// Picks the message type from `Content-Type` and checks `Content-Encoding`, as the 2.0 spec
/// asks receivers to: a missing Content-Type means 1.0; a missing Content-Encoding means snappy
/// (what Prometheus' receiver assumes); anything else is 415.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Version, IngestError> {
    if let Some(encoding) = content_encoding {
        if !encoding.trim().eq_ignore_ascii_case("snappy") {
            return Err(IngestError::UnsupportedMediaType {
                header: "content-encoding",
                value: encoding.to_owned(),
                expected:
                    "remote-write bodies must be snappy-compressed (content-encoding: snappy)",
            });
        }
    }
    let Some(content_type) = content_type else { return Ok(Version::V1) };
    let mut parts = content_type.split(';').map(str::trim);
    let media_type = parts.next().unwrap_or_default();
    if !media_type.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(unsupported_type(content_type));
    }
    let mut version = Version::V1;
    for parameter in parts {
        let Some((key, value)) = parameter.split_once('=') else { continue };
        if key.trim().eq_ignore_ascii_case("proto") {
            version = match value.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Version::V1,
                "io.prometheus.write.v2.Request" => Version::V2,
                _ => return Err(unsupported_type(content_type)),
            };
        }
    }
    Ok(version)
}

fn unsupported_type(value: &str) -> IngestError {
    IngestError::UnsupportedMediaType {
        header: "content-type",
        value: value.to_owned(),
        expected: "expected application/x-protobuf with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request",
    }
}

/// (type, help, unit) of 2.0 series metadata, borrowed from the body.
type MetadataKey<'a> = (i32, &'a [u8], &'a [u8]);

/// Decompression buffers larger than this are released after the request that grew them.
const SCRATCH_KEEP_BYTES: usize = 16 << 20;

/// Buffers reused from request to request (one per runtime thread in the server): the
/// decompressed body, the decoded spans and the cache-key buffer.
#[derive(Debug, Default)]
pub struct Scratch {
    body: Vec<u8>,
    decoded: DecodedWrite,
    key: Vec<u8>,
}

/// The cached verdict for one input label set.
#[derive(Clone, Debug)]
enum Verdict {
    Keep(Arc<Series>),
    Dropped(IngestDropReason),
    Invalid(Arc<str>),
}

/// What one request turned into.
#[derive(Debug, Default)]
pub struct Received {
    pub batch: MetricBatch,
    /// Rejected series: how many, their samples + histograms, and the first few messages.
    pub rejected_series: usize,
    pub rejected_samples: usize,
    pub rejections: Vec<String>,
}

/// How many rejection messages a 400 body lists.
const MAX_LISTED_REJECTIONS: usize = 10;

impl Received {
    /// The 400 body when some series were rejected.
    pub fn rejection_message(&self) -> Option<String> {
        if self.rejected_series == 0 {
            return None;
        }
        let mut message = format!(
            "{} series ({} samples) rejected, the valid rest of the request was accepted: {}",
            self.rejected_series,
            self.rejected_samples,
            self.rejections.join("; ")
        );
        if self.rejected_series > self.rejections.len() {
            message
                .push_str(&format!("; and {} more", self.rejected_series - self.rejections.len()));
        }
        Some(message)
    }
}

/// The remote-write receiver's processing stage (no HTTP here; see `server.rs`).
pub struct RemoteWriteIngest {
    config: RemoteWriteIngestConfig,
    relabeler: Relabeler,
    cache: SeriesCache<Verdict>,
    metrics_v1: IngestMetrics,
    metrics_v2: IngestMetrics,
}

impl std::fmt::Debug for RemoteWriteIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteIngest").field("cache", &self.cache).finish()
    }
}

impl RemoteWriteIngest {
    pub fn new(
        config: &RemoteWriteIngestConfig,
        catalog: &Catalog,
    ) -> Result<Self, crate::relabel::RelabelError> {
        let relabeler = Relabeler::with_validation(
            &config.metric_relabel_configs,
            config.label_name_validation,
        )?;
        Ok(Self {
            config: config.clone(),
            relabeler,
            cache: SeriesCache::new(
                config.relabel_cache_size as usize,
                catalog.relabel_cache("ingest"),
            ),
            metrics_v1: catalog.ingest("remote_write_v1"),
            metrics_v2: catalog.ingest("remote_write_v2"),
        })
    }

    pub fn metrics(&self, version: Version) -> &IngestMetrics {
        match version {
            Version::V1 => &self.metrics_v1,
            Version::V2 => &self.metrics_v2,
        }
    }

    pub fn max_body_size(&self) -> usize {
        self.config.max_body_size.as_usize()
    }

    /// Decompresses (capped), decodes, validates and relabels one request body.
    pub fn receive(
        &self,
        compressed: &[u8],
        version: Version,
        scratch: &mut Scratch,
    ) -> Result<Received, IngestError> {
        let metrics = self.metrics(version);
        metrics.bytes.inc_by(compressed.len() as u64);
        let Scratch { body, decoded, key } = scratch;
        super::snappy_decompress_into(compressed, self.config.max_decoded_size.as_usize(), body)?;
        decoded.decode(body, version).map_err(|e| IngestError::Decode {
            what: match version {
                Version::V1 => "prometheus.WriteRequest",
                Version::V2 => "io.prometheus.write.v2.Request",
            },
            detail: e.to_string(),
        })?;
        let received = self.process(body, decoded, key, metrics);
        if body.capacity() > SCRATCH_KEEP_BYTES {
            // One unusually large request must not pin its buffer on this thread for good.
            *body = Vec::new();
        }
        Ok(received)
    }

    fn process(
        &self,
        body: &[u8],
        decoded: &DecodedWrite,
        key: &mut Vec<u8>,
        metrics: &IngestMetrics,
    ) -> Received {
        metrics.samples.inc_by(decoded.samples.len() as u64);
        metrics.histograms.inc_by(decoded.histograms.len() as u64);
        metrics.exemplars.inc_by(decoded.exemplars.len() as u64);
        let series_metadata = decoded.series.iter().filter(|s| s.metadata.is_some()).count();
        metrics.metadata.inc_by((decoded.metadata.len() + series_metadata) as u64);

        let mut received = Received {
            batch: MetricBatch::with_capacity(decoded.series.len(), decoded.samples.len()),
            ..Received::default()
        };
        received.batch.metadata.extend(decoded.metadata.iter().cloned());
        let mut tally = CacheTally::default();
        let mut exemplars = Vec::new();
        // Per request, the same (type, help, unit) repeats for every series of a family.
        let mut metadata_seen: HashMap<MetadataKey<'_>, Arc<SeriesMetadata>> = HashMap::new();
        let mut dropped = [0u64; IngestDropReason::ALL.len()];

        for raw in &decoded.series {
            let labels = &decoded.labels[raw.labels.start as usize..raw.labels.end as usize];
            // The label fields as they are in the body, or re-encoded when they are not
            // contiguous there (2.0, or unusual 1.0 encoders): either identifies the set exactly.
            let key_bytes: &[u8] = match raw.label_bytes {
                Some(span) => span.get(body),
                None => {
                    key.clear();
                    for label in labels {
                        crate::model::metrics::encode_label(
                            key,
                            label.name.get(body),
                            label.value.get(body),
                        );
                    }
                    key
                }
            };
            let verdict = self.cache.lookup(key_bytes, &mut tally, || match raw.label_bytes {
                None => self.evaluate(body, labels),
                // A miss on a 1.0 label region: only now parse its labels.
                Some(region) => {
                    let mut parsed = Vec::with_capacity(16);
                    match decode::parse_label_region(body, region, &mut parsed) {
                        Ok(()) => self.evaluate(body, &parsed),
                        Err(err) => Verdict::Invalid(format!("series labels: {err}").into()),
                    }
                }
            });
            let items = (raw.samples.len() + raw.histograms.len()) as u64;
            let series = match verdict {
                Verdict::Keep(series) => series,
                Verdict::Dropped(reason) => {
                    dropped[reason as usize] += items;
                    continue;
                }
                Verdict::Invalid(message) => {
                    dropped[IngestDropReason::Invalid as usize] += items;
                    received.reject(&message, items as usize);
                    continue;
                }
            };
            exemplars.clear();
            if let Err(message) = self.exemplars(body, decoded, raw, &mut exemplars) {
                dropped[IngestDropReason::Invalid as usize] += items;
                received.reject(&format!("{}: {message}", series.labels), items as usize);
                continue;
            }
            let metadata = raw.metadata.map(|m| {
                metadata_seen
                    .entry((m.metric_type, m.help.get(body), m.unit.get(body)))
                    .or_insert_with(|| {
                        Arc::new(SeriesMetadata {
                            metric_type: MetricType::from_i32(m.metric_type).unwrap_or_default(),
                            help: String::from_utf8_lossy(m.help.get(body)).into_owned(),
                            unit: String::from_utf8_lossy(m.unit.get(body)).into_owned(),
                        })
                    })
                    .clone()
            });
            received.batch.push(
                series,
                &decoded.samples[raw.samples.start as usize..raw.samples.end as usize],
                &decoded.histograms[raw.histograms.start as usize..raw.histograms.end as usize],
                &exemplars,
                metadata,
                raw.created_timestamp_ms,
            );
        }
        self.cache.record(tally);
        for reason in IngestDropReason::ALL {
            if dropped[reason as usize] > 0 {
                metrics.dropped(reason).inc_by(dropped[reason as usize]);
            }
        }
        received
    }

    /// Validates and relabels one label set (a cache miss).
    fn evaluate(&self, body: &[u8], labels: &[decode::RawLabel]) -> Verdict {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len());
        for label in labels {
            let (Ok(name), Ok(value)) = (
                std::str::from_utf8(label.name.get(body)),
                std::str::from_utf8(label.value.get(body)),
            ) else {
                let shown = String::from_utf8_lossy(label.name.get(body)).into_owned();
                return Verdict::Invalid(
                    format!("label {shown:?} has a name or value that is not valid UTF-8").into(),
                );
            };
            pairs.push((name, value));
        }
        self.evaluate_pairs(&pairs)
    }

    /// Validates and relabels one label set given as UTF-8 pairs.
    fn evaluate_pairs(&self, pairs: &[(&str, &str)]) -> Verdict {
        let input = match validate::validate_series(
            pairs,
            &self.config.limits,
            self.config.label_name_validation,
        ) {
            Ok(labels) => labels,
            Err(rule) => {
                return Verdict::Invalid(
                    format!("series {}: {rule}", validate::describe(pairs)).into(),
                )
            }
        };
        let output = if self.relabeler.is_empty() {
            input
        } else {
            match self.relabeler.process(&input) {
                Some(labels) => labels,
                None => return Verdict::Dropped(IngestDropReason::Relabel),
            }
        };
        if output.metric_name().is_none() {
            return Verdict::Dropped(IngestDropReason::NoMetricName);
        }
        Verdict::Keep(Arc::new(Series::new(output)))
    }

    /// Converts a series' exemplars to owned values; fails on labels that are not UTF-8.
    fn exemplars(
        &self,
        body: &[u8],
        decoded: &DecodedWrite,
        raw: &decode::RawSeries,
        out: &mut Vec<Exemplar>,
    ) -> Result<(), String> {
        for exemplar in &decoded.exemplars[raw.exemplars.start as usize..raw.exemplars.end as usize]
        {
            let mut labels = Vec::with_capacity(exemplar.labels.len());
            for label in
                &decoded.labels[exemplar.labels.start as usize..exemplar.labels.end as usize]
            {
                let (Ok(name), Ok(value)) = (
                    std::str::from_utf8(label.name.get(body)),
                    std::str::from_utf8(label.value.get(body)),
                ) else {
                    return Err("exemplar label is not valid UTF-8".into());
                };
                if self.config.label_name_validation == NameValidation::Legacy
                    && !validate::is_legacy_label_name(name)
                {
                    return Err(format!("invalid exemplar label name {name:?}"));
                }
                labels.push(Label::new(name, value));
            }
            out.push(Exemplar {
                labels: Labels::from_unsorted(labels),
                value: exemplar.value,
                timestamp_ms: exemplar.timestamp_ms,
            });
        }
        Ok(())
    }

    /// Runs a batch decoded by another protocol (OTLP metrics) through the same validation,
    /// `metric_relabel_configs` and result cache as remote-write series, so every metric input
    /// reaches routing the same way. Drops are counted in `metrics` (the caller's protocol).
    pub fn admit_batch(&self, batch: &MetricBatch, metrics: &IngestMetrics) -> Received {
        let mut received = Received {
            batch: MetricBatch::with_capacity(batch.series_count(), batch.sample_count()),
            ..Received::default()
        };
        received.batch.metadata.extend(batch.metadata.iter().cloned());
        let mut tally = CacheTally::default();
        let mut dropped = [0u64; IngestDropReason::ALL.len()];
        for view in batch.iter() {
            let verdict = self.cache.lookup(&view.series.encoded, &mut tally, || {
                let pairs: Vec<(&str, &str)> = view
                    .series
                    .labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect();
                self.evaluate_pairs(&pairs)
            });
            let items = (view.samples.len() + view.histograms.len()) as u64;
            match verdict {
                Verdict::Keep(series) => received.batch.push_view(series, &view),
                Verdict::Dropped(reason) => dropped[reason as usize] += items,
                Verdict::Invalid(message) => {
                    dropped[IngestDropReason::Invalid as usize] += items;
                    received.reject(&message, items as usize);
                }
            }
        }
        self.cache.record(tally);
        for reason in IngestDropReason::ALL {
            if dropped[reason as usize] > 0 {
                metrics.dropped(reason).inc_by(dropped[reason as usize]);
            }
        }
        received
    }

    pub fn limits(&self) -> &SeriesLimits {
        &self.config.limits
    }
}

impl Received {
    fn reject(&mut self, message: &str, items: usize) {
        self.rejected_series += 1;
        self.rejected_samples += items;
        if self.rejections.len() < MAX_LISTED_REJECTIONS {
            self.rejections.push(message.to_owned());
        }
    }
}

#[cfg(test)]
mod tests;
