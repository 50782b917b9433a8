//! Raw metric samples, Parquet schema v1 (`docs/storage-format.md`, "metrics/raw").
//!
//! One row per float sample or native histogram sample:
//!
//! | # | column | Arrow type | Parquet encoding |
//! |---|---|---|---|
//! | 0 | `metric_name` | Dictionary(Int32, Utf8) | dictionary, bloom filter |
//! | 1 | `labels` | Dictionary(Int32, Utf8), canonical JSON without `__name__` | dictionary |
//! | 2 | `series_hash` | UInt64, xxh3 as `model::metrics::Series::hash` | dictionary |
//! | 3 | `timestamp_ms` | Int64 | DELTA_BINARY_PACKED |
//! | 4 | `value` | Float64, null on histogram rows and integer-valued samples | BYTE_STREAM_SPLIT |
//! | 5 | `histogram` | Binary, prost `Histogram`, null on float rows | PLAIN |
//! | 6 | `value_int` | Int64: the sample value when it is an integer of magnitude ≤ 2^53 (not -0), else null | DELTA_BINARY_PACKED |
//!
//! Most Prometheus samples are integers (counters of requests and bytes, gauges of bytes and
//! counts; 88 % of loadgen's Kubernetes payload): as deltas between consecutive rows of a
//! series they take a few bits, where the float bytes of the same values take several bytes.
//! The conversion is exact both ways in that range, so values stay bit for bit.
//!
//! Native histograms are rows of their own (value null, histogram set) rather than a separate
//! file: the series columns and the time column then serve both kinds, and a reader that only
//! wants floats skips the histogram column chunk entirely (it is all nulls, a few bytes).
//!
//! Invariants: rows are sorted by (`metric_name`, `labels`, `timestamp_ms`); exactly one of
//! `value`, `value_int` and `histogram` is set per row; series with equal label sets given twice are merged.
//! Values are stored bit for bit (BYTE_STREAM_SPLIT only transposes bytes).

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{BinaryBuilder, Float64Builder, Int64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Encoding;
use parquet::schema::types::ColumnPath;
use prost::Message;

use super::common::{self, ascending, DictStr, RunDictBuilder, BATCH_ROWS};
use super::{BlockError, EncodedBlock};
use crate::model::labels::{Label, Labels, METRIC_NAME};
use crate::model::metrics::{encode_label, Histogram, Sample};
use crate::storage::{SeriesSamples, StoredSignal, Tier};

const SIGNAL: StoredSignal = StoredSignal::Metrics;
/// Rows per row group: small enough that a metric-name lookup skips most of a 2 h block, large
/// enough that each column chunk compresses well.
pub(super) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Values and timestamps are most of a metrics block; measured on node_exporter-like data
/// (`benches/blocks.rs`), level 9 saves ~12 % on timestamps over the default 3.
const VALUE_ZSTD_LEVEL: i32 = 9;

pub(super) const METRIC_NAME_COL: &str = "metric_name";
pub(super) const LABELS_COL: &str = "labels";
pub(super) const SERIES_HASH_COL: &str = "series_hash";
pub(super) const TIMESTAMP_COL: &str = "timestamp_ms";
const VALUE_COL: &str = "value";
const HISTOGRAM_COL: &str = "histogram";
const VALUE_INT_COL: &str = "value_int";

/// The value as an exact integer, when it is one that an `f64` holds exactly (|v| ≤ 2^53) and
/// converting back gives the same bits (so not -0.0; NaN and infinities are not integers).
fn exact_integer(value: f64) -> Option<i64> {
    const LIMIT: f64 = (1u64 << 53) as f64;
    if value.fract() == 0.0 && value.abs() <= LIMIT && !(value == 0.0 && value.is_sign_negative()) {
        Some(value as i64)
    } else {
        None
    }
}

/// The pinned Arrow schema of raw metric blocks, v1.
pub fn metrics_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = series_fields();
        fields.push(Field::new(VALUE_COL, DataType::Float64, true));
        fields.push(Field::new(HISTOGRAM_COL, DataType::Binary, true));
        fields.push(Field::new(VALUE_INT_COL, DataType::Int64, true));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The four leading columns shared with the downsampled schema.
pub(super) fn series_fields() -> Vec<Field> {
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    vec![
        Field::new(METRIC_NAME_COL, dict.clone(), false),
        Field::new(LABELS_COL, dict, false),
        Field::new(SERIES_HASH_COL, DataType::UInt64, false),
        Field::new(TIMESTAMP_COL, DataType::Int64, false),
    ]
}

/// Writer properties of the series columns (shared with the downsampled schema).
pub(super) fn series_properties(
    tier: Tier,
    row_group_rows: usize,
) -> parquet::file::properties::WriterPropertiesBuilder {
    common::base_properties(
        SIGNAL,
        tier,
        vec![ascending(0), ascending(1), ascending(3)],
        row_group_rows,
    )
    .set_column_bloom_filter_enabled(ColumnPath::from(METRIC_NAME_COL), true)
    .set_column_bloom_filter_fpp(ColumnPath::from(METRIC_NAME_COL), 0.01)
    .set_column_dictionary_enabled(ColumnPath::from(TIMESTAMP_COL), false)
    .set_column_encoding(ColumnPath::from(TIMESTAMP_COL), Encoding::DELTA_BINARY_PACKED)
}

/// A series' identity as stored: metric name, the other labels as canonical JSON, the hash.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SeriesKey {
    pub(super) name: String,
    pub(super) labels: String,
    pub(super) hash: u64,
}

impl SeriesKey {
    pub(super) fn of(labels: &Labels) -> Self {
        let mut encoded = Vec::new();
        for label in labels {
            encode_label(&mut encoded, label.name.as_bytes(), label.value.as_bytes());
        }
        Self {
            name: labels.metric_name().unwrap_or_default().to_owned(),
            labels: common::labels_json(labels.iter().filter(|l| l.name != METRIC_NAME)),
            hash: xxhash_rust::xxh3::xxh3_64(&encoded),
        }
    }
}

/// Indexes of `keys` grouped by equal key, groups in storage order.
pub(super) fn sorted_groups(keys: &[SeriesKey]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| (&keys[a].name, &keys[a].labels).cmp(&(&keys[b].name, &keys[b].labels)));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for index in order {
        match groups.last_mut() {
            Some(group)
                if keys[group[0]].name == keys[index].name
                    && keys[group[0]].labels == keys[index].labels =>
            {
                group.push(index)
            }
            _ => groups.push(vec![index]),
        }
    }
    groups
}

/// Column builders of one record batch of series rows.
#[derive(Default)]
pub(super) struct SeriesColumns {
    names: RunDictBuilder,
    labels: RunDictBuilder,
    hashes: Vec<u64>,
    pub(super) timestamps: Vec<i64>,
}

impl SeriesColumns {
    pub(super) fn push(&mut self, key: &SeriesKey, timestamp_ms: i64) {
        self.names.push(&key.name);
        self.labels.push(&key.labels);
        self.hashes.push(key.hash);
        self.timestamps.push(timestamp_ms);
    }

    pub(super) fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            self.names.finish(),
            self.labels.finish(),
            Arc::new(UInt64Array::from(std::mem::take(&mut self.hashes))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.timestamps))),
        ]
    }
}

enum Point<'a> {
    Float(f64),
    Histogram(&'a Histogram),
}

/// Encodes raw samples into one Parquet file (schema v1). Fails on empty input.
pub fn encode_metrics(series: &[SeriesSamples]) -> Result<EncodedBlock, BlockError> {
    encode_metrics_with(series, ROW_GROUP_ROWS)
}

pub(super) fn encode_metrics_with(
    series: &[SeriesSamples],
    row_group_rows: usize,
) -> Result<EncodedBlock, BlockError> {
    let keys: Vec<SeriesKey> = series.iter().map(|s| SeriesKey::of(&s.labels)).collect();
    let groups = sorted_groups(&keys);
    let schema = metrics_schema();
    let mut batches = Vec::new();
    let mut columns = SeriesColumns::default();
    let mut values = Float64Builder::new();
    let mut histograms = BinaryBuilder::new();
    let mut integers = Int64Builder::new();
    let (mut rows, mut series_count) = (0u64, 0u64);
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    let mut points: Vec<(i64, Point<'_>)> = Vec::new();
    for group in &groups {
        points.clear();
        for &index in group {
            let s = &series[index];
            points.extend(s.samples.iter().map(|p| (p.timestamp_ms, Point::Float(p.value))));
            points.extend(s.histograms.iter().map(|h| (h.timestamp, Point::Histogram(h))));
        }
        if points.is_empty() {
            continue;
        }
        // Stable: equal timestamps keep their input order.
        points.sort_by_key(|(t, _)| *t);
        series_count += 1;
        let key = &keys[group[0]];
        for (timestamp, point) in &points {
            columns.push(key, *timestamp);
            match point {
                Point::Float(v) => {
                    match exact_integer(*v) {
                        Some(integer) => {
                            values.append_null();
                            integers.append_value(integer);
                        }
                        None => {
                            values.append_value(*v);
                            integers.append_null();
                        }
                    }
                    histograms.append_null();
                }
                Point::Histogram(h) => {
                    values.append_null();
                    integers.append_null();
                    histograms.append_value(h.encode_to_vec());
                }
            }
            min_time = min_time.min(*timestamp);
            max_time = max_time.max(*timestamp);
            rows += 1;
            if columns.timestamps.len() >= BATCH_ROWS {
                batches.push(finish_batch(
                    &schema,
                    &mut columns,
                    &mut values,
                    &mut histograms,
                    &mut integers,
                )?);
            }
        }
    }
    if rows == 0 {
        return Err(BlockError::Empty { signal: SIGNAL.as_str() });
    }
    if !columns.timestamps.is_empty() {
        batches.push(finish_batch(
            &schema,
            &mut columns,
            &mut values,
            &mut histograms,
            &mut integers,
        )?);
    }
    let properties = series_properties(Tier::Raw, row_group_rows)
        .set_column_dictionary_enabled(ColumnPath::from(VALUE_COL), false)
        .set_column_encoding(ColumnPath::from(VALUE_COL), Encoding::BYTE_STREAM_SPLIT)
        .set_column_compression(ColumnPath::from(VALUE_COL), common::zstd(VALUE_ZSTD_LEVEL))
        .set_column_compression(ColumnPath::from(TIMESTAMP_COL), common::zstd(VALUE_ZSTD_LEVEL))
        .set_column_dictionary_enabled(ColumnPath::from(HISTOGRAM_COL), false)
        .set_column_dictionary_enabled(ColumnPath::from(VALUE_INT_COL), false)
        .set_column_encoding(ColumnPath::from(VALUE_INT_COL), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression(ColumnPath::from(VALUE_INT_COL), common::zstd(VALUE_ZSTD_LEVEL))
        .build();
    let data = common::write_file(SIGNAL, schema, properties, &batches)?;
    Ok(EncodedBlock {
        data,
        rows,
        series: series_count,
        min_time_ms: min_time,
        max_time_ms: max_time,
    })
}

fn finish_batch(
    schema: &SchemaRef,
    columns: &mut SeriesColumns,
    values: &mut Float64Builder,
    histograms: &mut BinaryBuilder,
    integers: &mut Int64Builder,
) -> Result<RecordBatch, BlockError> {
    let mut arrays = columns.finish();
    arrays.push(Arc::new(values.finish()));
    arrays.push(Arc::new(histograms.finish()));
    arrays.push(Arc::new(integers.finish()));
    RecordBatch::try_new(schema.clone(), arrays).map_err(BlockError::arrow(SIGNAL, "batch build"))
}

/// Decodes every sample of a raw metrics file.
pub fn decode_metrics(data: Bytes) -> Result<Vec<SeriesSamples>, BlockError> {
    decode_metrics_where(data, None, i64::MIN, i64::MAX)
}

/// Decodes the samples of `metric_name` (all names when `None`) with timestamps in
/// `[min_t, max_t]` (milliseconds, inclusive). Row groups whose statistics or metric-name
/// bloom filter rule them out are not read at all.
pub fn decode_metrics_where(
    data: Bytes,
    metric_name: Option<&str>,
    min_t: i64,
    max_t: i64,
) -> Result<Vec<SeriesSamples>, BlockError> {
    let (_, builder) = common::open(data, SIGNAL, false, metrics_schema())?;
    let row_groups = select_row_groups(&builder, metric_name, min_t, max_t)?;
    let batches = common::read_batches(SIGNAL, builder.with_row_groups(row_groups))?;
    let mut out: Vec<SeriesSamples> = Vec::new();
    for batch in &batches {
        decode_batch(batch, metric_name, min_t, max_t, &mut out)?;
    }
    Ok(out)
}

/// Row groups that may hold rows of `metric_name` within `[min_t, max_t]`: time statistics,
/// metric-name statistics, then the metric-name bloom filter.
pub(super) fn select_row_groups(
    builder: &ParquetRecordBatchReaderBuilder<Bytes>,
    metric_name: Option<&str>,
    min_t: i64,
    max_t: i64,
) -> Result<Vec<usize>, BlockError> {
    let metadata = builder.metadata().clone();
    let time_leaf = common::leaf_index(&metadata, TIMESTAMP_COL);
    let name_leaf = common::leaf_index(&metadata, METRIC_NAME_COL);
    let mut selected = Vec::new();
    for (index, row_group) in metadata.row_groups().iter().enumerate() {
        if let Some((lo, hi)) = time_leaf.and_then(|leaf| common::i64_range(row_group, leaf)) {
            if hi < min_t || lo > max_t {
                continue;
            }
        }
        if let (Some(name), Some(leaf)) = (metric_name, name_leaf) {
            if let Some((lo, hi)) = common::bytes_range(row_group, leaf) {
                if name.as_bytes() < lo || name.as_bytes() > hi {
                    continue;
                }
            }
            let bloom = builder
                .get_row_group_column_bloom_filter(index, leaf)
                .map_err(BlockError::parquet(SIGNAL, "bloom filter read"))?;
            if bloom.is_some_and(|filter| !filter.check(name)) {
                continue;
            }
        }
        selected.push(index);
    }
    Ok(selected)
}

/// Appends the rows of `batch` that pass the filter to `out`, starting a new series whenever
/// the (name, labels) pair changes.
fn decode_batch(
    batch: &RecordBatch,
    metric_name: Option<&str>,
    min_t: i64,
    max_t: i64,
    out: &mut Vec<SeriesSamples>,
) -> Result<(), BlockError> {
    let names = DictStr::of(batch, SIGNAL, METRIC_NAME_COL)?;
    let labels = DictStr::of(batch, SIGNAL, LABELS_COL)?;
    let timestamps = common::primitive::<Int64Type>(batch, SIGNAL, TIMESTAMP_COL)?;
    common::no_nulls(timestamps, SIGNAL, TIMESTAMP_COL)?;
    let values = common::primitive::<Float64Type>(batch, SIGNAL, VALUE_COL)?;
    let integers = common::primitive::<Int64Type>(batch, SIGNAL, VALUE_INT_COL)?;
    let histograms = common::column(batch, SIGNAL, HISTOGRAM_COL)?
        .as_binary_opt::<i32>()
        .ok_or_else(|| BlockError::column(SIGNAL, HISTOGRAM_COL, "not Binary"))?;
    // (name key, labels key) of the previous row of this batch: equal keys, same series.
    let mut previous: Option<(i32, i32)> = None;
    for row in 0..batch.num_rows() {
        let timestamp = timestamps.value(row);
        if timestamp < min_t || timestamp > max_t {
            continue;
        }
        if metric_name.is_some_and(|wanted| wanted != names.get(row)) {
            continue;
        }
        let row_key = (names.key(row), labels.key(row));
        if previous != Some(row_key) {
            previous = Some(row_key);
            let current = out.last().map(|s| SeriesKeyRef::of(&s.labels));
            let (name, labels_text) = (names.get(row), labels.get(row));
            if current.as_ref().is_none_or(|c| !c.matches(name, labels_text)) {
                let extra = (!name.is_empty()).then(|| Label::new(METRIC_NAME, name));
                let parsed = common::parse_labels_json(labels_text, extra)
                    .map_err(|reason| BlockError::column(SIGNAL, LABELS_COL, reason))?;
                out.push(SeriesSamples { labels: parsed, ..SeriesSamples::default() });
            }
        }
        let Some(series) = out.last_mut() else { continue };
        match (values.is_valid(row), integers.is_valid(row), histograms.is_valid(row)) {
            (true, false, false) => {
                series.samples.push(Sample { timestamp_ms: timestamp, value: values.value(row) })
            }
            (false, true, false) => series
                .samples
                .push(Sample { timestamp_ms: timestamp, value: integers.value(row) as f64 }),
            (false, false, true) => {
                let mut histogram = Histogram::decode(histograms.value(row)).map_err(|e| {
                    BlockError::column(SIGNAL, HISTOGRAM_COL, format!("row {row}: {e}"))
                })?;
                histogram.timestamp = timestamp;
                series.histograms.push(histogram);
            }
            _ => {
                return Err(BlockError::column(
                    SIGNAL,
                    VALUE_COL,
                    format!("row {row}: exactly one of value, value_int and histogram must be set"),
                ))
            }
        }
    }
    Ok(())
}

/// The stored identity of an already decoded series, for comparison with the next row.
struct SeriesKeyRef {
    name: String,
    labels: String,
}

impl SeriesKeyRef {
    fn of(labels: &Labels) -> Self {
        Self {
            name: labels.metric_name().unwrap_or_default().to_owned(),
            labels: common::labels_json(labels.iter().filter(|l| l.name != METRIC_NAME)),
        }
    }

    fn matches(&self, name: &str, labels: &str) -> bool {
        self.name == name && self.labels == labels
    }
}
