//! Log entries, Parquet schema v1 (`docs/storage-format.md`, "logs/raw").
//!
//! One row per entry, Loki's data model (`logproto.PushRequest`: stream labels, entries of
//! timestamp, line and structured metadata):
//!
//! | # | column | Arrow type | Parquet encoding |
//! |---|---|---|---|
//! | 0 | `stream_labels` | Dictionary(Int32, Utf8), canonical JSON of the stream's labels | dictionary |
//! | 1 | `stream_hash` | UInt64, xxh3 of the selector as `model::logs::Stream::hash` | dictionary |
//! | 2 | `timestamp_ns` | Int64 | DELTA_BINARY_PACKED |
//! | 3 | `line` | Binary | DELTA_LENGTH_BYTE_ARRAY, zstd level 9 |
//! | 4 | `structured_metadata` | Map(Utf8, Utf8), entries in the order sent | dictionary keys and values |
//!
//! Structured metadata is a Parquet MAP (a repeated key/value group): names such as
//! `trace_id` repeat on every row and dictionary-encode to a few bits, order and duplicates are
//! kept as Loki received them, and any Parquet reader sees real key/value pairs.
//!
//! Invariants: rows sorted by (`stream_labels`, `timestamp_ns`), equal timestamps in input
//! order; lines are bytes, never re-encoded.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{BinaryBuilder, MapBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use parquet::basic::Encoding;
use parquet::schema::types::ColumnPath;

use super::common::{self, ascending, DictStr, RunDictBuilder, BATCH_ROWS};
use super::{BlockError, EncodedBlock};
use crate::model::labels::Label;
use crate::model::logs::{selector_of, LogEntry};
use crate::storage::{LogStreamData, StoredSignal, Tier};

const SIGNAL: StoredSignal = StoredSignal::Logs;
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Lines are most of a log block's bytes; a higher zstd level than the default pays for itself
/// there. Measured on 100k app lines (`benches/blocks.rs`): level 9 stores 16.5 % of the raw
/// bytes, level 19 14.4 % but encodes at ~1.3 MB/s, too slow for a 2 h block of a busy tenant.
const LINE_ZSTD_LEVEL: i32 = 9;
/// Larger line pages give zstd a longer window of similar lines.
const LINE_PAGE_BYTES: usize = 4 * 1024 * 1024;

const STREAM_COL: &str = "stream_labels";
const HASH_COL: &str = "stream_hash";
const TIMESTAMP_COL: &str = "timestamp_ns";
const LINE_COL: &str = "line";
const METADATA_COL: &str = "structured_metadata";

fn metadata_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("keys", DataType::Utf8, false),
        Field::new("values", DataType::Utf8, true),
    ]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// The pinned Arrow schema of log blocks, v1.
pub fn logs_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new(STREAM_COL, dict, false),
            Field::new(HASH_COL, DataType::UInt64, false),
            Field::new(TIMESTAMP_COL, DataType::Int64, false),
            Field::new(LINE_COL, DataType::Binary, false),
            Field::new(METADATA_COL, metadata_type(), false),
        ]))
    });
    SCHEMA.clone()
}

struct Columns {
    streams: RunDictBuilder,
    hashes: Vec<u64>,
    timestamps: Vec<i64>,
    lines: BinaryBuilder,
    metadata: MapBuilder<StringBuilder, StringBuilder>,
}

impl Columns {
    fn new() -> Self {
        Self {
            streams: RunDictBuilder::default(),
            hashes: Vec::new(),
            timestamps: Vec::new(),
            lines: BinaryBuilder::new(),
            metadata: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
        }
    }

    fn push(&mut self, stream: &str, hash: u64, entry: &LogEntry) -> Result<(), BlockError> {
        self.streams.push(stream);
        self.hashes.push(hash);
        self.timestamps.push(entry.timestamp_ns);
        self.lines.append_value(&entry.line);
        for label in &entry.structured_metadata {
            self.metadata.keys().append_value(&label.name);
            self.metadata.values().append_value(&label.value);
        }
        self.metadata.append(true).map_err(BlockError::arrow(SIGNAL, "structured metadata"))
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BlockError> {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                self.streams.finish(),
                Arc::new(UInt64Array::from(std::mem::take(&mut self.hashes))),
                Arc::new(Int64Array::from(std::mem::take(&mut self.timestamps))),
                Arc::new(self.lines.finish()),
                Arc::new(self.metadata.finish()),
            ],
        )
        .map_err(BlockError::arrow(SIGNAL, "batch build"))
    }
}

/// Encodes log streams into one Parquet file (schema v1). Fails on empty input.
pub fn encode_logs(streams: &[LogStreamData]) -> Result<EncodedBlock, BlockError> {
    let keys: Vec<String> = streams.iter().map(|s| common::labels_json(s.labels.iter())).collect();
    let mut order: Vec<usize> = (0..streams.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let schema = logs_schema();
    let mut batches = Vec::new();
    let mut columns = Columns::new();
    let (mut rows, mut stream_count) = (0u64, 0u64);
    let (mut min_ns, mut max_ns) = (i64::MAX, i64::MIN);
    let mut entries: Vec<&LogEntry> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        // One group: every input stream with the same label set.
        let key = &keys[order[start]];
        let end = start + order[start..].iter().take_while(|&&i| &keys[i] == key).count();
        entries.clear();
        for &index in &order[start..end] {
            entries.extend(streams[index].entries.iter());
        }
        let labels = &streams[order[start]].labels;
        start = end;
        if entries.is_empty() {
            continue;
        }
        entries.sort_by_key(|e| e.timestamp_ns);
        stream_count += 1;
        let hash = xxhash_rust::xxh3::xxh3_64(selector_of(labels).as_bytes());
        for entry in &entries {
            columns.push(key, hash, entry)?;
            min_ns = min_ns.min(entry.timestamp_ns);
            max_ns = max_ns.max(entry.timestamp_ns);
            rows += 1;
            if columns.timestamps.len() >= BATCH_ROWS {
                batches.push(columns.finish(&schema)?);
            }
        }
    }
    if rows == 0 {
        return Err(BlockError::Empty { signal: SIGNAL.as_str() });
    }
    if !columns.timestamps.is_empty() {
        batches.push(columns.finish(&schema)?);
    }
    let line = ColumnPath::from(LINE_COL);
    let properties = common::base_properties(
        SIGNAL,
        Tier::Raw,
        vec![ascending(0), ascending(2)],
        ROW_GROUP_ROWS,
    )
    .set_column_dictionary_enabled(ColumnPath::from(TIMESTAMP_COL), false)
    .set_column_encoding(ColumnPath::from(TIMESTAMP_COL), Encoding::DELTA_BINARY_PACKED)
    .set_column_dictionary_enabled(line.clone(), false)
    .set_column_encoding(line.clone(), Encoding::DELTA_LENGTH_BYTE_ARRAY)
    .set_column_compression(line.clone(), common::zstd(LINE_ZSTD_LEVEL))
    .set_column_data_page_size_limit(line, LINE_PAGE_BYTES)
    .build();
    let data = common::write_file(SIGNAL, schema, properties, &batches)?;
    Ok(EncodedBlock {
        data,
        rows,
        series: stream_count,
        min_time_ms: common::ns_to_ms(min_ns),
        max_time_ms: common::ns_to_ms(max_ns),
    })
}

/// Decodes every entry of a log file.
pub fn decode_logs(data: Bytes) -> Result<Vec<LogStreamData>, BlockError> {
    decode_logs_where(data, i64::MIN, i64::MAX)
}

/// Decodes the entries with `timestamp_ns` in `[min_ns, max_ns]` (inclusive); row groups whose
/// time statistics lie outside are not read.
pub fn decode_logs_where(
    data: Bytes,
    min_ns: i64,
    max_ns: i64,
) -> Result<Vec<LogStreamData>, BlockError> {
    let (_, builder) = common::open(data, SIGNAL, false, logs_schema())?;
    let metadata = builder.metadata().clone();
    let time_leaf = common::leaf_index(&metadata, TIMESTAMP_COL);
    let row_groups: Vec<usize> = (0..metadata.num_row_groups())
        .filter(|&index| {
            let range =
                time_leaf.and_then(|leaf| common::i64_range(metadata.row_group(index), leaf));
            range.is_none_or(|(lo, hi)| hi >= min_ns && lo <= max_ns)
        })
        .collect();
    let batches = common::read_batches(SIGNAL, builder.with_row_groups(row_groups))?;
    let mut out: Vec<LogStreamData> = Vec::new();
    let mut current: Option<String> = None;
    for batch in &batches {
        let streams = DictStr::of(batch, SIGNAL, STREAM_COL)?;
        let timestamps = common::primitive::<Int64Type>(batch, SIGNAL, TIMESTAMP_COL)?;
        common::no_nulls(timestamps, SIGNAL, TIMESTAMP_COL)?;
        let lines = common::column(batch, SIGNAL, LINE_COL)?
            .as_binary_opt::<i32>()
            .ok_or_else(|| BlockError::column(SIGNAL, LINE_COL, "not Binary"))?;
        common::no_nulls(lines, SIGNAL, LINE_COL)?;
        let metadata = common::column(batch, SIGNAL, METADATA_COL)?
            .as_map_opt()
            .ok_or_else(|| BlockError::column(SIGNAL, METADATA_COL, "not a Map"))?;
        let meta_keys = metadata
            .keys()
            .as_string_opt::<i32>()
            .ok_or_else(|| BlockError::column(SIGNAL, METADATA_COL, "keys are not Utf8"))?;
        let meta_values = metadata
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| BlockError::column(SIGNAL, METADATA_COL, "values are not Utf8"))?;
        let offsets = metadata.value_offsets();
        for row in 0..batch.num_rows() {
            let timestamp = timestamps.value(row);
            if timestamp < min_ns || timestamp > max_ns {
                continue;
            }
            let stream = streams.get(row);
            if current.as_deref() != Some(stream) {
                let labels = common::parse_labels_json(stream, None)
                    .map_err(|reason| BlockError::column(SIGNAL, STREAM_COL, reason))?;
                out.push(LogStreamData { labels, entries: Vec::new() });
                current = Some(stream.to_owned());
            }
            let Some(target) = out.last_mut() else { continue };
            let (first, last) = (offsets[row] as usize, offsets[row + 1] as usize);
            let structured_metadata = (first..last)
                .map(|i| Label::new(meta_keys.value(i), meta_values.value(i)))
                .collect();
            target.entries.push(LogEntry {
                timestamp_ns: timestamp,
                line: Bytes::copy_from_slice(lines.value(row)),
                structured_metadata,
            });
        }
    }
    Ok(out)
}
