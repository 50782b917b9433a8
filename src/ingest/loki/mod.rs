//! Loki push receive (`POST /loki/api/v1/push`): content negotiation, capped decompression,
//! decoding (protobuf or JSON), Loki's validation, the per-tenant ingestion rate limit and
//! stream relabeling, producing a [`LogBatch`].
//!
//! Spec: Loki's push API <https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs>
//! and, for exact behaviour, Loki 3.x `pkg/loghttp/push/push.go` (bodies), `pkg/push/push.proto`
//! (protobuf), `pkg/loghttp/entry.go` (JSON), `pkg/distributor/distributor.go` `Push` and
//! `validator.go` (validation and rate limit), `pkg/validation/validate.go` (messages).
//!
//! The stages, in Loki's order:
//!
//! 1. [`body`]: headers → format and transfer encoding (415 otherwise); gzip/deflate and snappy
//!    are undone with the decoded size capped by `max_decoded_size` (413).
//! 2. [`decode`] / [`json`]: zero-copy walk; lines are `Bytes` slices of the decoded body. A
//!    malformed body is a 400 naming the byte offset (protobuf) or stream/value (JSON). A push
//!    without streams is refused ("error at least one valid stream is required for ingestion";
//!    Loki answers it with 422, which Strata has no error kind for: 400).
//! 3. Per stream with entries (streams without entries are skipped, as Loki does): its labels as
//!    sent (selector bytes; for JSON the label bytes in order) are looked up in a
//!    [`SeriesCache`]; only a miss parses the selector ([`selector`]), validates the labels
//!    ([`validate`]) and relabels them (`relabel_configs`). The cached verdict is keep (the
//!    relabeled `Arc<Stream>`), dropped by relabeling (or relabeled to no labels at all: Loki
//!    cannot store a stream without labels, and it is the operator's rules, not the client, that
//!    emptied it), or invalid with Loki's message. Relabeled label names are checked again
//!    (`labelmap` can write any name): a name Loki cannot parse rejects the stream, as
//!    Prometheus rejects a scraped series whose relabeled names are invalid.
//! 4. Entries of kept streams: lines over `max_line_size` are truncated first when
//!    `max_line_size_truncate`, then the timestamp and line-length rules apply per entry, with
//!    `now_ns` given by the caller.
//! 5. Streams that end up with the same labels (relabeling, or the same stream sent twice) are
//!    merged into one [`StreamEntries`], entries in the order received.
//! 6. The rate limit ([`rate`]) takes the bytes of everything that would be accepted; over it the
//!    whole push is refused with 429 and Loki's message, and nothing of it is kept.
//!
//! **Partially invalid pushes.** As in Loki's distributor, streams and entries that break a rule
//! are dropped and named, and the valid rest of the same push is accepted:
//! [`LokiReceived::rejection_message`] is the 400 body the server sends after forwarding the
//! batch. Senders never retry a 400, so this loses nothing that could have been kept.
//!
//! Differences from Loki, all deliberate: unparsable stream labels reject that stream, not the
//! whole push (recent Loki fails the whole request while parsing); `service_name` discovery,
//! log-level detection, structured-metadata limits, per-stream rate limits and stream sharding
//! are not done here (they belong to Loki's storage side). See [`body`] for headers.

pub mod body;
pub mod decode;
pub mod json;
pub mod rate;
pub mod selector;
pub mod validate;

use std::collections::hash_map::Entry as MapEntry;
use std::sync::Arc;

// ahash: a per-request map on the hot path; SipHash costs several times more.
use ahash::AHashMap as HashMap;
use bytes::Bytes;

use crate::config::LokiIngestConfig;
use crate::model::logs::{push_go_quoted, selector_of};
use crate::model::{Label, LogBatch, LogEntry, Stream, StreamEntries, Tenant};
use crate::relabel::{CacheTally, NameValidation, RelabelError, Relabeler, SeriesCache};
use crate::telemetry::{Catalog, IngestDropReason, IngestMetrics};
use decode::{json_label_pairs, DecodedPush, DecodedStream, StreamLabels, JSON_LABELS_START};
use validate::{echo, validate_stream, EntryRules, StreamLimits};

use super::IngestError;

/// Loki's `MissingStreamsErrorMsg`.
pub const NO_STREAMS: &str = "error at least one valid stream is required for ingestion";

/// How many distinct rejection messages a 400 body lists.
const MAX_LISTED: usize = 10;

/// The cached verdict for one stream's labels as sent.
#[derive(Clone, Debug)]
enum Verdict {
    Keep(Arc<KeptStream>),
    Dropped,
    Invalid(Arc<str>),
}

#[derive(Debug)]
struct KeptStream {
    /// The stream after relabeling: what the batch carries.
    stream: Arc<Stream>,
    /// The canonical selector of the labels as received, when relabeling changed them: entry
    /// messages name the stream the client sent, as Loki's do.
    received_as: Option<Box<str>>,
}

impl KeptStream {
    fn name(&self) -> &str {
        self.received_as.as_deref().unwrap_or(&self.stream.selector)
    }
}

/// One distinct rejection message and how many times it occurred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub message: String,
    pub count: usize,
}

/// What one push turned into.
#[derive(Debug)]
pub struct LokiReceived {
    /// The accepted streams and entries.
    pub batch: LogBatch,
    /// Streams refused for their labels (all their entries are counted in `rejected_entries`).
    pub rejected_streams: usize,
    /// Entries refused, for their stream's labels or on their own.
    pub rejected_entries: usize,
    /// The first [`MAX_LISTED`] distinct messages, in the order they occurred.
    pub rejections: Vec<Rejection>,
    /// Rejections not counted in `rejections` (they came after the list was full).
    pub unlisted_rejections: usize,
}

impl LokiReceived {
    fn new(tenant: Tenant, streams: usize) -> Self {
        let mut batch = LogBatch::new(tenant);
        batch.streams.reserve(streams);
        Self {
            batch,
            rejected_streams: 0,
            rejected_entries: 0,
            rejections: Vec::new(),
            unlisted_rejections: 0,
        }
    }

    /// The 400 body when something was rejected: Loki's grouped form ("N errors like: …"),
    /// at most [`MAX_LISTED`] distinct messages.
    pub fn rejection_message(&self) -> Option<String> {
        if self.rejected_entries == 0 {
            return None;
        }
        let mut message = format!(
            "{} entries rejected ({} accepted): ",
            self.rejected_entries,
            self.batch.entry_count()
        );
        for (index, rejection) in self.rejections.iter().enumerate() {
            if index > 0 {
                message.push_str("; ");
            }
            if rejection.count > 1 {
                message.push_str(&format!("{} errors like: ", rejection.count));
            }
            message.push_str(&rejection.message);
        }
        if self.unlisted_rejections > 0 {
            message.push_str(&format!("; and {} more errors", self.unlisted_rejections));
        }
        Some(message)
    }

    /// Records one problem; `message` is only built while the list has room.
    fn reject(&mut self, message: impl FnOnce() -> String) {
        if self.rejections.len() >= MAX_LISTED {
            self.unlisted_rejections += 1;
            return;
        }
        let message = message();
        match self.rejections.iter_mut().find(|r| r.message == message) {
            Some(rejection) => rejection.count += 1,
            None => self.rejections.push(Rejection { message, count: 1 }),
        }
    }
}

/// The Loki push receiver's processing stage (no HTTP here; see `server.rs`).
pub struct LokiIngest {
    config: LokiIngestConfig,
    stream_limits: StreamLimits,
    relabeler: Relabeler,
    cache: SeriesCache<Verdict>,
    limiter: Option<rate::RateLimiter>,
    metrics: IngestMetrics,
}

impl std::fmt::Debug for LokiIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiIngest").field("cache", &self.cache).finish()
    }
}

impl LokiIngest {
    pub fn new(config: &LokiIngestConfig, catalog: &Catalog) -> Result<Self, RelabelError> {
        let relabeler =
            Relabeler::with_validation(&config.relabel_configs, NameValidation::Legacy)?;
        Ok(Self {
            config: config.clone(),
            stream_limits: StreamLimits::from_config(config),
            relabeler,
            cache: SeriesCache::new(
                usize::try_from(config.relabel_cache_size).unwrap_or(usize::MAX),
                catalog.relabel_cache("loki_push"),
            ),
            limiter: rate::RateLimiter::new(
                config.ingestion_rate.bytes(),
                config.ingestion_burst_size.bytes(),
            ),
            metrics: catalog.ingest("loki_push"),
        })
    }

    pub fn max_body_size(&self) -> usize {
        self.config.max_body_size.as_usize()
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Decodes (capped), validates and relabels one push body.
    pub fn receive(
        &self,
        tenant: &Tenant,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Bytes,
        now_ns: i64,
    ) -> Result<LokiReceived, IngestError> {
        self.metrics.bytes.inc_by(body.len() as u64);
        let (format, encoding) = body::negotiate(content_type, content_encoding)?;
        let limit = self.max_body_size();
        if body.len() > limit {
            return Err(IngestError::BodyTooLarge { limit });
        }
        let decoded_limit = self.config.max_decoded_size.as_usize();
        let unwrapped = body::decode_transfer(body, encoding, decoded_limit)?;
        let message = match format {
            body::Format::Protobuf => {
                Bytes::from(super::snappy_decompress_capped(&unwrapped, decoded_limit)?)
            }
            body::Format::Json => unwrapped,
        };
        let mut push = DecodedPush::default();
        match format {
            body::Format::Protobuf => {
                decode::decode_push_request(&message, &mut push).map_err(|e| IngestError::Decode {
                    what: "logproto.PushRequest",
                    detail: e.to_string(),
                })
            }
            body::Format::Json => json::decode_push_json(&message, &mut push)
                .map_err(|e| IngestError::Decode { what: "loki push json", detail: e.to_string() }),
        }?;
        if push.streams.is_empty() {
            return Err(IngestError::Invalid(NO_STREAMS.to_owned()));
        }
        self.process(tenant, push, now_ns)
    }

    fn process(
        &self,
        tenant: &Tenant,
        push: DecodedPush<'_>,
        now_ns: i64,
    ) -> Result<LokiReceived, IngestError> {
        let rules = EntryRules::new(&self.config, now_ns);
        let mut received = LokiReceived::new(tenant.clone(), push.streams.len());
        let mut tally = CacheTally::default();
        let mut dropped = [0u64; IngestDropReason::ALL.len()];
        let (mut entries_in, mut bytes_in) = (0u64, 0u64);
        // Stream hash → index in the batch, to merge streams with the same labels.
        let mut slots: HashMap<u64, usize> = HashMap::with_capacity(push.streams.len());
        let DecodedPush { streams, json_labels } = push;

        for DecodedStream { labels, mut entries } in streams {
            if entries.is_empty() {
                continue;
            }
            let count = entries.len() as u64;
            entries_in += count;
            bytes_in += entries.iter().map(|e| e.size() as u64).sum::<u64>();
            let key: &[u8] = match &labels {
                StreamLabels::Selector(selector) => selector,
                StreamLabels::Json(range) => &json_labels[range.clone()],
            };
            let verdict = match labels {
                // Never a valid selector (not UTF-8), and the first byte of JSON label keys:
                // keep such bytes out of the cache so they cannot hit a JSON stream's verdict.
                StreamLabels::Selector(_) if key.first() == Some(&JSON_LABELS_START) => {
                    self.evaluate_selector(key)
                }
                StreamLabels::Selector(_) => {
                    self.cache.lookup(key, &mut tally, || self.evaluate_selector(key))
                }
                StreamLabels::Json(_) => {
                    self.cache.lookup(key, &mut tally, || self.evaluate_json(key))
                }
            };
            let kept = match verdict {
                Verdict::Keep(kept) => kept,
                Verdict::Dropped => {
                    dropped[IngestDropReason::Relabel as usize] += count;
                    continue;
                }
                Verdict::Invalid(message) => {
                    dropped[IngestDropReason::Invalid as usize] += count;
                    received.rejected_streams += 1;
                    received.rejected_entries += entries.len();
                    received.reject(|| message.to_string());
                    continue;
                }
            };
            let before = entries.len();
            entries.retain_mut(|entry| {
                rules.truncate(entry);
                match rules.check(entry) {
                    Ok(()) => true,
                    Err(problem) => {
                        received.reject(|| rules.message(problem, kept.name(), entry));
                        false
                    }
                }
            });
            let rejected = before - entries.len();
            received.rejected_entries += rejected;
            dropped[IngestDropReason::Invalid as usize] += rejected as u64;
            if !entries.is_empty() {
                merge_into(&mut received.batch, &mut slots, &kept.stream, entries);
            }
        }
        self.cache.record(tally);
        self.metrics.log_entries.inc_by(entries_in);
        self.metrics.log_bytes.inc_by(bytes_in);

        let result = self.rate_limit(tenant, &received, now_ns);
        if result.is_err() {
            dropped[IngestDropReason::RateLimited as usize] += received.batch.entry_count() as u64;
        }
        for reason in IngestDropReason::ALL {
            if dropped[reason as usize] > 0 {
                self.metrics.dropped(reason).inc_by(dropped[reason as usize]);
            }
        }
        result.map(|()| received)
    }

    /// Loki's per-tenant limit over what would be accepted; 429 with Loki's message.
    fn rate_limit(
        &self,
        tenant: &Tenant,
        received: &LokiReceived,
        now_ns: i64,
    ) -> Result<(), IngestError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        let bytes = received.batch.byte_size();
        if limiter.try_take(tenant, bytes as u64, now_ns) {
            return Ok(());
        }
        Err(IngestError::RateLimited(format!(
            "ingestion rate limit exceeded for user {} (limit: {} bytes/sec) while attempting to \
             ingest '{}' lines totaling '{}' bytes, reduce log volume or raise \
             ingest.loki.ingestion_rate / ingestion_burst_size",
            echo(tenant),
            limiter.bytes_per_second(),
            received.batch.entry_count(),
            bytes
        )))
    }

    /// A protobuf stream's selector bytes → verdict (a cache miss).
    fn evaluate_selector(&self, key: &[u8]) -> Verdict {
        let Ok(text) = std::str::from_utf8(key) else {
            return Verdict::Invalid(
                format!(
                    "error parsing labels '{}' with error: labels are not valid UTF-8",
                    echo(&String::from_utf8_lossy(key))
                )
                .into(),
            );
        };
        let mut parsed = Vec::new();
        if let Err(err) = selector::parse_selector(text, &mut parsed) {
            return Verdict::Invalid(
                format!("error parsing labels '{}' with error: {err}", echo(text)).into(),
            );
        }
        self.evaluate_labels(text, parsed)
    }

    /// A JSON stream's label key → verdict (a cache miss). Loki turns the JSON object into a Go
    /// map (last duplicate wins) and prints it as a selector sorted by name
    /// (`LabelSet.String()`), which is what its messages show; names must be valid label names.
    fn evaluate_json(&self, key: &[u8]) -> Verdict {
        let mut pairs: Vec<Label> = json_label_pairs(key)
            .map(|(name, value)| {
                Label::new(String::from_utf8_lossy(name), String::from_utf8_lossy(value))
            })
            .collect();
        pairs.sort_by(|a, b| a.name.cmp(&b.name)); // stable: equal names stay in sent order
        let mut labels: Vec<Label> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match labels.last_mut() {
                Some(last) if last.name == pair.name => *last = pair,
                _ => labels.push(pair),
            }
        }
        let mut shown = String::from("{");
        for (index, label) in labels.iter().enumerate() {
            if index > 0 {
                shown.push_str(", ");
            }
            shown.push_str(&label.name);
            shown.push('=');
            push_go_quoted(&mut shown, &label.value);
        }
        shown.push('}');
        if let Some(bad) =
            labels.iter().find(|l| !NameValidation::Legacy.is_valid_label_name(&l.name))
        {
            return Verdict::Invalid(
                format!(
                    "error parsing labels '{}' with error: invalid label name {:?}: must match \
                     [a-zA-Z_][a-zA-Z0-9_]*",
                    echo(&shown),
                    echo(&bad.name)
                )
                .into(),
            );
        }
        self.evaluate_labels(&shown, labels)
    }

    /// Validates and relabels parsed labels.
    fn evaluate_labels(&self, shown: &str, parsed: Vec<Label>) -> Verdict {
        let input = match validate_stream(shown, parsed, &self.stream_limits) {
            Ok(labels) => labels,
            Err(message) => return Verdict::Invalid(message.into()),
        };
        if self.relabeler.is_empty() {
            let stream = Arc::new(Stream::new(input));
            return Verdict::Keep(Arc::new(KeptStream { stream, received_as: None }));
        }
        let Some(output) = self.relabeler.process(&input) else { return Verdict::Dropped };
        if output.is_empty() {
            return Verdict::Dropped;
        }
        // `labelmap` and templated `target_label`s are not name-checked (Prometheus does not
        // either); a stream whose selector Loki cannot parse must not be forwarded, as recent
        // Loki refuses a whole push over one such stream.
        if let Some(bad) =
            output.iter().find(|l| !NameValidation::Legacy.is_valid_label_name(&l.name))
        {
            return Verdict::Invalid(
                format!(
                    "stream '{}': relabel_configs produced the invalid label name {:?}",
                    echo(shown),
                    echo(&bad.name)
                )
                .into(),
            );
        }
        let received_as = (output != input).then(|| selector_of(&input).into_boxed_str());
        Verdict::Keep(Arc::new(KeptStream { stream: Arc::new(Stream::new(output)), received_as }))
    }
}

/// Adds a stream's entries to the batch, appending to an earlier stream with the same labels.
fn merge_into(
    batch: &mut LogBatch,
    slots: &mut HashMap<u64, usize>,
    stream: &Arc<Stream>,
    mut entries: Vec<LogEntry>,
) {
    match slots.entry(stream.hash) {
        MapEntry::Occupied(slot) => {
            let existing = &mut batch.streams[*slot.get()];
            if Arc::ptr_eq(&existing.stream, stream) || existing.stream.labels == stream.labels {
                existing.entries.append(&mut entries);
                return;
            }
            // A 64-bit hash collision between different label sets: keep them apart.
        }
        MapEntry::Vacant(slot) => {
            slot.insert(batch.streams.len());
        }
    }
    batch.streams.push(StreamEntries { stream: stream.clone(), entries });
}

#[cfg(test)]
mod tests;
