//! What every schema shares: writer properties, the key-value metadata check, label-set
//! columns (canonical JSON in a run-friendly dictionary), typed column access on read and
//! row-group pruning from column-chunk statistics.
//!
//! Invariant: a file is only decoded after [`open`] checked its `strata.*` key-value metadata
//! against the expected signal and [`SCHEMA_VERSION`], and after the reader was given the pinned
//! Arrow schema, so column types seen by the decoders are exactly the documented ones.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{
    KeyValue, PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData,
    SortingColumn,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::file::statistics::Statistics;

use super::{BlockError, KEY_SCHEMA_VERSION, KEY_SIGNAL, KEY_TIER, SCHEMA_VERSION};
use crate::model::labels::{Label, Labels};
use crate::storage::{StoredSignal, Tier};

/// Rows per Arrow record batch handed to the writer (bounds encode memory per batch).
pub(super) const BATCH_ROWS: usize = 64 * 1024;
/// Default zstd level of every column (lines and span bodies use a higher one).
pub(super) const ZSTD_DEFAULT: i32 = 3;

/// What a file holds, from its key-value metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub signal: StoredSignal,
    pub tier: Tier,
    pub schema_version: u32,
}

/// Reads the footer of `data` and the `strata.*` key-value metadata (any version, so tools
/// can report a file this build cannot decode).
pub fn block_info(data: &Bytes) -> Result<(BlockInfo, Arc<ParquetMetaData>), BlockError> {
    let metadata = ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .parse_and_finish(data)
        .map_err(|source| BlockError::Parquet { signal: "strata", stage: "footer read", source })?;
    let value = |key: &'static str| -> Result<String, BlockError> {
        metadata
            .file_metadata()
            .key_value_metadata()
            .and_then(|kvs| kvs.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.clone())
            .ok_or(BlockError::MissingMetadata { key })
    };
    let signal_text = value(KEY_SIGNAL)?;
    let signal = StoredSignal::parse(&signal_text).ok_or_else(|| BlockError::WrongKind {
        key: KEY_SIGNAL,
        found: signal_text.clone(),
        expected: "metrics, logs or traces".into(),
    })?;
    let tier_text = value(KEY_TIER)?;
    let tier = Tier::parse(&tier_text).ok_or_else(|| BlockError::WrongKind {
        key: KEY_TIER,
        found: tier_text.clone(),
        expected: "raw, 5m or 1h".into(),
    })?;
    let version_text = value(KEY_SCHEMA_VERSION)?;
    let schema_version = version_text.parse::<u32>().map_err(|_| BlockError::UnknownVersion {
        found: version_text.clone(),
        supported: SCHEMA_VERSION,
    })?;
    Ok((BlockInfo { signal, tier, schema_version }, Arc::new(metadata)))
}

/// Properties shared by every schema: zstd, page statistics (column + offset indexes), the
/// `strata.*` key-value metadata and the declared sort order. Callers add per-column encodings.
pub(super) fn base_properties(
    signal: StoredSignal,
    tier: Tier,
    sorting: Vec<SortingColumn>,
    row_group_rows: usize,
) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(zstd(ZSTD_DEFAULT))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_dictionary_page_size_limit(4 * 1024 * 1024)
        .set_sorting_columns(Some(sorting))
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(KEY_SCHEMA_VERSION.to_owned(), SCHEMA_VERSION.to_string()),
            KeyValue::new(KEY_SIGNAL.to_owned(), signal.as_str().to_owned()),
            KeyValue::new(KEY_TIER.to_owned(), tier.as_str().to_owned()),
        ]))
}

pub(super) fn zstd(level: i32) -> Compression {
    // Levels 1..=22 are valid; the constants passed here are within that range.
    Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
}

/// `SortingColumn` for the column at `index` (ascending, nulls first).
pub(super) fn ascending(index: usize) -> SortingColumn {
    SortingColumn { column_idx: index as i32, descending: false, nulls_first: true }
}

/// Writes `batches` with `properties` into one in-memory Parquet file.
pub(super) fn write_file(
    signal: StoredSignal,
    schema: SchemaRef,
    properties: WriterProperties,
    batches: &[RecordBatch],
) -> Result<Bytes, BlockError> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(properties))
        .map_err(BlockError::parquet(signal, "writer setup"))?;
    for batch in batches {
        writer.write(batch).map_err(BlockError::parquet(signal, "write"))?;
    }
    writer.close().map_err(BlockError::parquet(signal, "footer write"))?;
    Ok(Bytes::from(out))
}

/// Checks the key-value metadata of `data` (signal, version, and tier when `downsampled` says
/// which kind is wanted) and returns a reader builder that yields the pinned `schema`.
pub(super) fn open(
    data: Bytes,
    signal: StoredSignal,
    downsampled: bool,
    schema: SchemaRef,
) -> Result<(BlockInfo, ParquetRecordBatchReaderBuilder<Bytes>), BlockError> {
    let (info, _) = block_info(&data)?;
    if info.schema_version != SCHEMA_VERSION {
        return Err(BlockError::UnknownVersion {
            found: info.schema_version.to_string(),
            supported: SCHEMA_VERSION,
        });
    }
    if info.signal != signal {
        return Err(BlockError::WrongKind {
            key: KEY_SIGNAL,
            found: info.signal.as_str().into(),
            expected: signal.as_str().into(),
        });
    }
    if downsampled == (info.tier == Tier::Raw) {
        return Err(BlockError::WrongKind {
            key: KEY_TIER,
            found: info.tier.as_str().into(),
            expected: if downsampled { "5m or 1h" } else { "raw" }.into(),
        });
    }
    let options = ArrowReaderOptions::new()
        .with_schema(schema)
        .with_page_index_policy(PageIndexPolicy::Optional);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(data, options)
        .map_err(BlockError::parquet(signal, "schema check"))?;
    Ok((info, builder))
}

/// Reads every batch of `builder` (already restricted to the wanted row groups).
pub(super) fn read_batches(
    signal: StoredSignal,
    builder: ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>, BlockError> {
    let reader =
        builder.with_batch_size(BATCH_ROWS).build().map_err(BlockError::parquet(signal, "read"))?;
    reader.map(|batch| batch.map_err(BlockError::arrow(signal, "read"))).collect()
}

// ---------------------------------------------------------------------------------------------
// Label sets
// ---------------------------------------------------------------------------------------------

/// The canonical JSON object of `labels` (keys in label order, i.e. sorted by name).
pub(super) fn labels_json<'a>(labels: impl Iterator<Item = &'a Label>) -> String {
    let mut out = String::from("{");
    for (index, label) in labels.enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_json_string(&mut out, &label.name);
        out.push(':');
        push_json_string(&mut out, &label.value);
    }
    out.push('}');
    out
}

fn push_json_string(out: &mut String, text: &str) {
    // Serializing a &str into a String cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// Parses a [`labels_json`] object back, adding `extra` (e.g. `__name__`) when given.
pub(super) fn parse_labels_json(json: &str, extra: Option<Label>) -> Result<Labels, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("bad label set {json:?}: {e}"))?;
    let mut labels = Vec::with_capacity(map.len() + 1);
    labels.extend(extra);
    for (name, value) in map {
        let serde_json::Value::String(value) = value else {
            return Err(format!("label {name} of {json:?} is not a string"));
        };
        labels.push(Label { name, value });
    }
    Ok(Labels::from_unsorted(labels))
}

/// Builds a `Dictionary(Int32, Utf8)` column for values that come in runs (rows sorted by
/// them): a value is added to the dictionary only when it differs from the previous row's.
#[derive(Default)]
pub(super) struct RunDictBuilder {
    values: Vec<String>,
    keys: Vec<i32>,
}

impl RunDictBuilder {
    pub(super) fn push(&mut self, value: &str) {
        if self.values.last().map(String::as_str) != Some(value) {
            self.values.push(value.to_owned());
        }
        self.keys.push(self.values.len() as i32 - 1);
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        let keys = Int32Array::from(std::mem::take(&mut self.keys));
        let values: ArrayRef = Arc::new(StringArray::from(std::mem::take(&mut self.values)));
        // Keys are indexes into `values` by construction.
        Arc::new(DictionaryArray::<Int32Type>::new(keys, values))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading columns
// ---------------------------------------------------------------------------------------------

pub(super) fn column<'a>(
    batch: &'a RecordBatch,
    signal: StoredSignal,
    name: &'static str,
) -> Result<&'a ArrayRef, BlockError> {
    batch.column_by_name(name).ok_or_else(|| BlockError::column(signal, name, "missing"))
}

/// A `Dictionary(Int32, Utf8)` column of a batch.
pub(super) struct DictStr<'a> {
    keys: &'a Int32Array,
    values: &'a StringArray,
}

impl<'a> DictStr<'a> {
    pub(super) fn of(
        batch: &'a RecordBatch,
        signal: StoredSignal,
        name: &'static str,
    ) -> Result<Self, BlockError> {
        let array = column(batch, signal, name)?;
        let dict = array
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| BlockError::column(signal, name, "not a Dictionary(Int32, Utf8)"))?;
        let values = dict
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| BlockError::column(signal, name, "dictionary values are not Utf8"))?;
        if dict.null_count() > 0 {
            return Err(BlockError::column(signal, name, "holds nulls"));
        }
        Ok(Self { keys: dict.keys(), values })
    }

    pub(super) fn key(&self, row: usize) -> i32 {
        self.keys.value(row)
    }

    pub(super) fn get(&self, row: usize) -> &'a str {
        self.values.value(self.keys.value(row) as usize)
    }
}

/// A non-null primitive column of a batch.
pub(super) fn primitive<'a, T: arrow_array::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    signal: StoredSignal,
    name: &'static str,
) -> Result<&'a arrow_array::PrimitiveArray<T>, BlockError> {
    let array = column(batch, signal, name)?;
    let typed = array.as_primitive_opt::<T>().ok_or_else(|| {
        BlockError::column(signal, name, format!("unexpected type {}", array.data_type()))
    })?;
    Ok(typed)
}

pub(super) fn no_nulls(
    array: &dyn Array,
    signal: StoredSignal,
    name: &'static str,
) -> Result<(), BlockError> {
    if array.null_count() > 0 {
        return Err(BlockError::column(signal, name, "holds nulls"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Row-group pruning
// ---------------------------------------------------------------------------------------------

/// Index of the leaf column named `name` (top-level primitive columns only).
pub(super) fn leaf_index(metadata: &ParquetMetaData, name: &str) -> Option<usize> {
    metadata.file_metadata().schema_descr().columns().iter().position(|c| c.path().string() == name)
}

/// `(min, max)` of an INT64 column chunk, when its statistics carry them.
pub(super) fn i64_range(row_group: &RowGroupMetaData, leaf: usize) -> Option<(i64, i64)> {
    match row_group.column(leaf).statistics()? {
        Statistics::Int64(stats) => Some((*stats.min_opt()?, *stats.max_opt()?)),
        _ => None,
    }
}

/// `(min, max)` bytes of a BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY column chunk. Truncated bounds stay
/// conservative (the minimum is a prefix, the maximum is rounded up), so range checks may keep a
/// row group they could skip, never the reverse.
pub(super) fn bytes_range(row_group: &RowGroupMetaData, leaf: usize) -> Option<(&[u8], &[u8])> {
    let stats = row_group.column(leaf).statistics()?;
    Some((stats.min_bytes_opt()?, stats.max_bytes_opt()?))
}

/// Milliseconds of a nanosecond timestamp, rounded down.
pub(super) fn ns_to_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}
