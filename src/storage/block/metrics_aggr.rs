//! Downsampled metric points (tiers `5m` and `1h`), Parquet schema v1
//! (`docs/storage-format.md`, "metrics/5m and metrics/1h").
//!
//! One row per [`AggrPoint`]: the four series columns of the raw schema (`metric_name`,
//! `labels`, `series_hash`, `timestamp_ms`), then `count` (UInt64, DELTA_BINARY_PACKED) and
//! `sum`, `min`, `max`, `counter` (Float64, BYTE_STREAM_SPLIT). The aggregates follow Thanos'
//! downsampling (`pkg/compact/downsample`, see [`AggrPoint`]); the codec stores them as given.
//!
//! Invariants: rows sorted by (`metric_name`, `labels`, `timestamp_ms`); the tier is in the
//! key-value metadata and is never `raw`.

use std::sync::{Arc, LazyLock};

use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{Float64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::basic::Encoding;
use parquet::schema::types::ColumnPath;

use super::common::{self, DictStr, BATCH_ROWS};
use super::metrics::{self, SeriesColumns, SeriesKey, LABELS_COL, METRIC_NAME_COL, TIMESTAMP_COL};
use super::{BlockError, EncodedBlock};
use crate::model::labels::{Label, METRIC_NAME};
use crate::storage::{AggrPoint, SeriesAggr, StoredSignal, Tier};

const SIGNAL: StoredSignal = StoredSignal::Metrics;
const COUNT_COL: &str = "count";
const FLOAT_COLS: [&str; 4] = ["sum", "min", "max", "counter"];

/// The pinned Arrow schema of downsampled metric blocks, v1.
pub fn aggr_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = metrics::series_fields();
        fields.push(Field::new(COUNT_COL, DataType::UInt64, false));
        for name in FLOAT_COLS {
            fields.push(Field::new(name, DataType::Float64, false));
        }
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// Encodes downsampled points of `tier` (`5m` or `1h`). Fails on empty input or a raw tier.
pub fn encode_aggr(series: &[SeriesAggr], tier: Tier) -> Result<EncodedBlock, BlockError> {
    if tier == Tier::Raw {
        return Err(BlockError::NotDownsampled { tier: tier.as_str() });
    }
    let keys: Vec<SeriesKey> = series.iter().map(|s| SeriesKey::of(&s.labels)).collect();
    let schema = aggr_schema();
    let mut batches = Vec::new();
    let mut columns = AggrColumns::default();
    let (mut rows, mut series_count) = (0u64, 0u64);
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    let mut points: Vec<AggrPoint> = Vec::new();
    for group in metrics::sorted_groups(&keys) {
        points.clear();
        for &index in &group {
            points.extend_from_slice(&series[index].points);
        }
        if points.is_empty() {
            continue;
        }
        points.sort_by_key(|p| p.timestamp_ms);
        series_count += 1;
        for point in &points {
            columns.push(&keys[group[0]], point);
            min_time = min_time.min(point.timestamp_ms);
            max_time = max_time.max(point.timestamp_ms);
            rows += 1;
            if columns.series.timestamps.len() >= BATCH_ROWS {
                batches.push(columns.finish(&schema)?);
            }
        }
    }
    if rows == 0 {
        return Err(BlockError::Empty { signal: SIGNAL.as_str() });
    }
    if !columns.series.timestamps.is_empty() {
        batches.push(columns.finish(&schema)?);
    }
    let mut properties = metrics::series_properties(tier, metrics::ROW_GROUP_ROWS)
        .set_column_dictionary_enabled(ColumnPath::from(COUNT_COL), false)
        .set_column_encoding(ColumnPath::from(COUNT_COL), Encoding::DELTA_BINARY_PACKED);
    for name in FLOAT_COLS {
        properties = properties
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_encoding(ColumnPath::from(name), Encoding::BYTE_STREAM_SPLIT);
    }
    let data = common::write_file(SIGNAL, schema, properties.build(), &batches)?;
    Ok(EncodedBlock {
        data,
        rows,
        series: series_count,
        min_time_ms: min_time,
        max_time_ms: max_time,
    })
}

#[derive(Default)]
struct AggrColumns {
    series: SeriesColumns,
    counts: Vec<u64>,
    floats: [Vec<f64>; 4],
}

impl AggrColumns {
    fn push(&mut self, key: &SeriesKey, point: &AggrPoint) {
        self.series.push(key, point.timestamp_ms);
        self.counts.push(point.count);
        for (column, value) in
            self.floats.iter_mut().zip([point.sum, point.min, point.max, point.counter])
        {
            column.push(value);
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BlockError> {
        let mut arrays = self.series.finish();
        arrays.push(Arc::new(UInt64Array::from(std::mem::take(&mut self.counts))));
        for column in &mut self.floats {
            arrays.push(Arc::new(Float64Array::from(std::mem::take(column))));
        }
        RecordBatch::try_new(schema.clone(), arrays)
            .map_err(BlockError::arrow(SIGNAL, "batch build"))
    }
}

/// Decodes every point of a downsampled metrics file (its tier is in [`super::block_info`]).
pub fn decode_aggr(data: Bytes) -> Result<Vec<SeriesAggr>, BlockError> {
    let (_, builder) = common::open(data, SIGNAL, true, aggr_schema())?;
    let batches = common::read_batches(SIGNAL, builder)?;
    let mut out: Vec<SeriesAggr> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for batch in &batches {
        let names = DictStr::of(batch, SIGNAL, METRIC_NAME_COL)?;
        let labels = DictStr::of(batch, SIGNAL, LABELS_COL)?;
        let timestamps = common::primitive::<Int64Type>(batch, SIGNAL, TIMESTAMP_COL)?;
        let counts = common::primitive::<UInt64Type>(batch, SIGNAL, COUNT_COL)?;
        let mut floats = Vec::with_capacity(FLOAT_COLS.len());
        for name in FLOAT_COLS {
            let column = common::primitive::<Float64Type>(batch, SIGNAL, name)?;
            common::no_nulls(column, SIGNAL, name)?;
            floats.push(column);
        }
        common::no_nulls(timestamps, SIGNAL, TIMESTAMP_COL)?;
        common::no_nulls(counts, SIGNAL, COUNT_COL)?;
        for row in 0..batch.num_rows() {
            let (name, labels_text) = (names.get(row), labels.get(row));
            let same = current.as_ref().is_some_and(|(n, l)| n == name && l == labels_text);
            if !same {
                let extra = (!name.is_empty()).then(|| Label::new(METRIC_NAME, name));
                let parsed = common::parse_labels_json(labels_text, extra)
                    .map_err(|reason| BlockError::column(SIGNAL, LABELS_COL, reason))?;
                out.push(SeriesAggr { labels: parsed, points: Vec::new() });
                current = Some((name.to_owned(), labels_text.to_owned()));
            }
            let Some(series) = out.last_mut() else { continue };
            series.points.push(AggrPoint {
                timestamp_ms: timestamps.value(row),
                count: counts.value(row),
                sum: floats[0].value(row),
                min: floats[1].value(row),
                max: floats[2].value(row),
                counter: floats[3].value(row),
            });
        }
    }
    Ok(out)
}
