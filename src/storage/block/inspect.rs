//! Looking inside a block file without knowing its kind in advance: a description of the
//! Parquet footer (schema, row groups, per-column compression, encodings, sizes, bloom filters,
//! statistics) and a full verification (decode, count, time range, sort order). Used by
//! `strata blocks inspect|verify`.
//!
//! Invariant: verification decodes with the same functions queries use, so a file that passes
//! here is one queries can read.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::Serialize;

use super::common::{self, BlockInfo};
use super::{decode_aggr, decode_logs, decode_metrics, decode_traces, BlockError, SCHEMA_VERSION};
use crate::storage::{StoredSignal, Tier};

/// The footer of a Parquet file, for people.
#[derive(Clone, Debug, Serialize)]
pub struct FileDescription {
    pub signal: Option<String>,
    pub tier: Option<String>,
    pub schema_version: Option<u32>,
    pub created_by: Option<String>,
    pub rows: i64,
    pub key_value_metadata: Vec<(String, String)>,
    /// The Parquet schema in its message syntax.
    pub schema: String,
    pub row_groups: Vec<RowGroupDescription>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RowGroupDescription {
    pub rows: i64,
    pub compressed_bytes: i64,
    pub uncompressed_bytes: i64,
    pub columns: Vec<ColumnDescription>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ColumnDescription {
    pub path: String,
    pub physical_type: String,
    pub compression: String,
    pub encodings: Vec<String>,
    pub compressed_bytes: i64,
    pub uncompressed_bytes: i64,
    pub bloom_filter: bool,
    pub page_index: bool,
    pub statistics: Option<String>,
}

/// Describes the footer of `data`; works on any Parquet file (the `strata.*` fields are `None`
/// when absent).
pub fn describe(data: &Bytes) -> Result<FileDescription, BlockError> {
    let metadata = read_footer(data)?;
    let info = common::block_info(data).ok().map(|(info, _)| info);
    let file = metadata.file_metadata();
    let mut schema = Vec::new();
    parquet::schema::printer::print_schema(&mut schema, file.schema());
    let key_value_metadata = file
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter(|kv| kv.key != "ARROW:schema")
                .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let row_groups = metadata
        .row_groups()
        .iter()
        .map(|rg| RowGroupDescription {
            rows: rg.num_rows(),
            compressed_bytes: rg.compressed_size(),
            uncompressed_bytes: rg.total_byte_size(),
            columns: rg
                .columns()
                .iter()
                .map(|c| ColumnDescription {
                    path: c.column_path().string(),
                    physical_type: format!("{:?}", c.column_type()),
                    compression: c.compression().to_string(),
                    encodings: c.encodings().map(|e| format!("{e:?}")).collect(),
                    compressed_bytes: c.compressed_size(),
                    uncompressed_bytes: c.uncompressed_size(),
                    bloom_filter: c.bloom_filter_offset().is_some(),
                    page_index: c.column_index_offset().is_some()
                        && c.offset_index_offset().is_some(),
                    statistics: c.statistics().map(|s| truncate(&s.to_string(), 200)),
                })
                .collect(),
        })
        .collect();
    Ok(FileDescription {
        signal: info.map(|i| i.signal.as_str().to_owned()),
        tier: info.map(|i| i.tier.as_str().to_owned()),
        schema_version: info.map(|i| i.schema_version),
        created_by: file.created_by().map(str::to_owned),
        rows: file.num_rows(),
        key_value_metadata,
        schema: String::from_utf8_lossy(&schema).into_owned(),
        row_groups,
    })
}

fn read_footer(
    data: &Bytes,
) -> Result<std::sync::Arc<parquet::file::metadata::ParquetMetaData>, BlockError> {
    parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(data)
        .map(std::sync::Arc::new)
        .map_err(|source| BlockError::Parquet { signal: "strata", stage: "footer read", source })
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a full decode of a file found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub signal: StoredSignal,
    pub tier: Tier,
    pub rows: u64,
    pub series: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Sort-order violations (empty when the file is sorted as its schema requires).
    pub unsorted: Vec<String>,
}

/// Decodes all of `data` with the decoder its metadata names and recomputes what `meta.json`
/// claims about it.
pub fn verify(data: Bytes) -> Result<Verified, BlockError> {
    let (info, _) = common::block_info(&data)?;
    if info.schema_version != SCHEMA_VERSION {
        return Err(BlockError::UnknownVersion {
            found: info.schema_version.to_string(),
            supported: SCHEMA_VERSION,
        });
    }
    let mut check = Check::new(info);
    match (info.signal, info.tier) {
        (StoredSignal::Metrics, Tier::Raw) => {
            let series = decode_metrics(data)?;
            let mut previous: Option<String> = None;
            for s in &series {
                check.series_key(&mut previous, stored_order_key(&s.labels));
                let mut times: Vec<i64> = s.samples.iter().map(|p| p.timestamp_ms).collect();
                // Floats and histograms interleave by time in the file; each list is in file order.
                check.times(&s.labels.to_string(), &times);
                let histogram_times: Vec<i64> = s.histograms.iter().map(|h| h.timestamp).collect();
                check.times(&s.labels.to_string(), &histogram_times);
                times.extend(histogram_times);
                check.rows(&times, 1);
            }
        }
        (StoredSignal::Metrics, _) => {
            let series = decode_aggr(data)?;
            let mut previous: Option<String> = None;
            for s in &series {
                check.series_key(&mut previous, stored_order_key(&s.labels));
                let times: Vec<i64> = s.points.iter().map(|p| p.timestamp_ms).collect();
                check.times(&s.labels.to_string(), &times);
                check.rows(&times, 1);
            }
        }
        (StoredSignal::Logs, _) => {
            let streams = decode_logs(data)?;
            let mut previous: Option<String> = None;
            for s in &streams {
                check.series_key(&mut previous, common::labels_json(s.labels.iter()));
                let times: Vec<i64> = s.entries.iter().map(|e| e.timestamp_ns).collect();
                check.times(&s.labels.to_string(), &times);
                check.rows(&times, 1_000_000);
            }
        }
        (StoredSignal::Traces, _) => {
            let spans = decode_traces(data)?;
            let mut previous: Option<[u8; 16]> = None;
            for (index, span) in spans.iter().enumerate() {
                if previous != Some(span.trace_id) {
                    check.verified.series += 1;
                    previous = Some(span.trace_id);
                }
                if index > 0 {
                    let before = &spans[index - 1];
                    if (before.trace_id, before.start_unix_nano, before.span_id)
                        > (span.trace_id, span.start_unix_nano, span.span_id)
                    {
                        check.unsorted(format!("span {index} sorts before the span above it"));
                    }
                }
                let start = (span.start_unix_nano / 1_000_000) as i64;
                let end = (span.end_unix_nano.max(span.start_unix_nano) / 1_000_000) as i64;
                check.verified.rows += 1;
                check.verified.min_time_ms = check.verified.min_time_ms.min(start);
                check.verified.max_time_ms = check.verified.max_time_ms.max(end);
            }
        }
    }
    Ok(check.verified)
}

/// A string that sorts like the (`metric_name`, `labels`) columns of the metric schemas.
fn stored_order_key(labels: &crate::model::labels::Labels) -> String {
    let key = super::metrics::SeriesKey::of(labels);
    format!("{}\u{0}{}", key.name, key.labels)
}

struct Check {
    verified: Verified,
}

impl Check {
    fn new(info: BlockInfo) -> Self {
        Self {
            verified: Verified {
                signal: info.signal,
                tier: info.tier,
                rows: 0,
                series: 0,
                min_time_ms: i64::MAX,
                max_time_ms: i64::MIN,
                unsorted: Vec::new(),
            },
        }
    }

    fn unsorted(&mut self, what: String) {
        // A handful of examples says enough.
        if self.verified.unsorted.len() < 5 {
            self.verified.unsorted.push(what);
        }
    }

    /// Series come out of the decoder in file order; each must sort after the previous one.
    fn series_key(&mut self, previous: &mut Option<String>, key: String) {
        self.verified.series += 1;
        if previous.as_ref().is_some_and(|p| *p >= key) {
            self.unsorted(format!("series {key} is not after the series before it"));
        }
        *previous = Some(key);
    }

    fn times(&mut self, series: &str, times: &[i64]) {
        if let Some(at) = times.windows(2).position(|w| w[0] > w[1]) {
            let mut what = String::new();
            let _ =
                write!(what, "series {series}: timestamp {} after {}", times[at + 1], times[at]);
            self.unsorted(what);
        }
    }

    /// Counts rows and widens the time range; `divisor` turns the unit into milliseconds.
    fn rows(&mut self, times: &[i64], divisor: i64) {
        self.verified.rows += times.len() as u64;
        for &t in times {
            let ms = t.div_euclid(divisor);
            self.verified.min_time_ms = self.verified.min_time_ms.min(ms);
            self.verified.max_time_ms = self.verified.max_time_ms.max(ms);
        }
    }
}
