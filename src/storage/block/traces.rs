//! Spans, Parquet schema v1 (`docs/storage-format.md`, "traces/raw").
//!
//! One row per span, the fields of [`SpanRecord`]; lookups and listings read the columns, the
//! whole OTLP `Span` (as received) is kept in `span` for trace-by-id answers:
//!
//! | # | column | Arrow type | Parquet encoding |
//! |---|---|---|---|
//! | 0 | `trace_id` | FixedSizeBinary(16) | PLAIN, bloom filter |
//! | 1 | `span_id` | FixedSizeBinary(8) | PLAIN |
//! | 2 | `parent_span_id` | Binary (empty for a root span) | PLAIN |
//! | 3 | `name` | Dictionary(Int32, Utf8) | dictionary |
//! | 4 | `kind` | Int32 (OTLP `SpanKind`) | dictionary |
//! | 5 | `start_unix_nano` | UInt64 | dictionary, fallback PLAIN |
//! | 6 | `end_unix_nano` | UInt64 | dictionary, fallback PLAIN |
//! | 7 | `status_code` | Int32 (OTLP `Status.StatusCode`) | dictionary |
//! | 8 | `service_name` | Dictionary(Int32, Utf8) | dictionary |
//! | 9 | `resource` | Binary, OTLP `Resource` encoding | dictionary (few distinct per block) |
//! | 10 | `scope` | Binary, OTLP `InstrumentationScope` encoding | dictionary |
//! | 11 | `span` | Binary, OTLP `Span` encoding | PLAIN, zstd level 6 |
//!
//! Trace-by-id ([`find_trace`]) follows Tempo's vParquet approach (one bloom filter over trace
//! ids, row groups sorted by trace id): row-group min/max statistics of `trace_id`, then its
//! bloom filter, decide which row groups are read at all.
//!
//! Invariants: rows sorted by (`trace_id`, `start_unix_nano`, `span_id`); the block's time range
//! runs from the earliest start to the latest end.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{BinaryBuilder, FixedSizeBinaryBuilder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt64Type};
use arrow_array::{Array, Int32Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::schema::types::ColumnPath;

use super::common::{self, ascending, DictStr, BATCH_ROWS};
use super::{BlockError, EncodedBlock};
use crate::storage::{SpanRecord, StoredSignal, Tier};

const SIGNAL: StoredSignal = StoredSignal::Traces;
const ROW_GROUP_ROWS: usize = 64 * 1024;
const SPAN_ZSTD_LEVEL: i32 = 6;

const TRACE_ID: &str = "trace_id";
const SPAN_ID: &str = "span_id";
const PARENT: &str = "parent_span_id";
const NAME: &str = "name";
const KIND: &str = "kind";
const START: &str = "start_unix_nano";
const END: &str = "end_unix_nano";
const STATUS: &str = "status_code";
const SERVICE: &str = "service_name";
const RESOURCE: &str = "resource";
const SCOPE: &str = "scope";
const SPAN: &str = "span";

/// The pinned Arrow schema of trace blocks, v1.
pub fn traces_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new(TRACE_ID, DataType::FixedSizeBinary(16), false),
            Field::new(SPAN_ID, DataType::FixedSizeBinary(8), false),
            Field::new(PARENT, DataType::Binary, false),
            Field::new(NAME, dict.clone(), false),
            Field::new(KIND, DataType::Int32, false),
            Field::new(START, DataType::UInt64, false),
            Field::new(END, DataType::UInt64, false),
            Field::new(STATUS, DataType::Int32, false),
            Field::new(SERVICE, dict, false),
            Field::new(RESOURCE, DataType::Binary, false),
            Field::new(SCOPE, DataType::Binary, false),
            Field::new(SPAN, DataType::Binary, false),
        ]))
    });
    SCHEMA.clone()
}

struct Columns {
    trace_ids: FixedSizeBinaryBuilder,
    span_ids: FixedSizeBinaryBuilder,
    parents: BinaryBuilder,
    names: StringDictionaryBuilder<Int32Type>,
    kinds: Vec<i32>,
    starts: Vec<u64>,
    ends: Vec<u64>,
    statuses: Vec<i32>,
    services: StringDictionaryBuilder<Int32Type>,
    resources: BinaryBuilder,
    scopes: BinaryBuilder,
    spans: BinaryBuilder,
}

impl Columns {
    fn new() -> Self {
        Self {
            trace_ids: FixedSizeBinaryBuilder::new(16),
            span_ids: FixedSizeBinaryBuilder::new(8),
            parents: BinaryBuilder::new(),
            names: StringDictionaryBuilder::new(),
            kinds: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            statuses: Vec::new(),
            services: StringDictionaryBuilder::new(),
            resources: BinaryBuilder::new(),
            scopes: BinaryBuilder::new(),
            spans: BinaryBuilder::new(),
        }
    }

    fn push(&mut self, span: &SpanRecord) -> Result<(), BlockError> {
        let fixed = BlockError::arrow(SIGNAL, "id column");
        self.trace_ids.append_value(span.trace_id).map_err(fixed)?;
        let fixed = BlockError::arrow(SIGNAL, "id column");
        self.span_ids.append_value(span.span_id).map_err(fixed)?;
        self.parents.append_value(&span.parent_span_id);
        self.names.append_value(&span.name);
        self.kinds.push(span.kind);
        self.starts.push(span.start_unix_nano);
        self.ends.push(span.end_unix_nano);
        self.statuses.push(span.status_code);
        self.services.append_value(&span.service_name);
        self.resources.append_value(&span.resource);
        self.scopes.append_value(&span.scope);
        self.spans.append_value(&span.span);
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BlockError> {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(self.trace_ids.finish()),
                Arc::new(self.span_ids.finish()),
                Arc::new(self.parents.finish()),
                Arc::new(self.names.finish()),
                Arc::new(Int32Array::from(std::mem::take(&mut self.kinds))),
                Arc::new(UInt64Array::from(std::mem::take(&mut self.starts))),
                Arc::new(UInt64Array::from(std::mem::take(&mut self.ends))),
                Arc::new(Int32Array::from(std::mem::take(&mut self.statuses))),
                Arc::new(self.services.finish()),
                Arc::new(self.resources.finish()),
                Arc::new(self.scopes.finish()),
                Arc::new(self.spans.finish()),
            ],
        )
        .map_err(BlockError::arrow(SIGNAL, "batch build"))
    }
}

/// Encodes spans into one Parquet file (schema v1). Fails on empty input.
pub fn encode_traces(spans: &[SpanRecord]) -> Result<EncodedBlock, BlockError> {
    if spans.is_empty() {
        return Err(BlockError::Empty { signal: SIGNAL.as_str() });
    }
    let mut order: Vec<&SpanRecord> = spans.iter().collect();
    order.sort_by(|a, b| {
        (a.trace_id, a.start_unix_nano, a.span_id).cmp(&(b.trace_id, b.start_unix_nano, b.span_id))
    });
    let schema = traces_schema();
    let mut batches = Vec::new();
    let mut columns = Columns::new();
    let mut traces = 0u64;
    let (mut min_ns, mut max_ns) = (u64::MAX, 0u64);
    let mut previous_trace: Option<[u8; 16]> = None;
    for span in &order {
        if previous_trace != Some(span.trace_id) {
            traces += 1;
            previous_trace = Some(span.trace_id);
        }
        min_ns = min_ns.min(span.start_unix_nano);
        max_ns = max_ns.max(span.end_unix_nano.max(span.start_unix_nano));
        columns.push(span)?;
        if columns.kinds.len() >= BATCH_ROWS {
            batches.push(columns.finish(&schema)?);
        }
    }
    if !columns.kinds.is_empty() {
        batches.push(columns.finish(&schema)?);
    }
    let mut properties = common::base_properties(
        SIGNAL,
        Tier::Raw,
        vec![ascending(0), ascending(5), ascending(1)],
        ROW_GROUP_ROWS,
    )
    .set_column_bloom_filter_enabled(ColumnPath::from(TRACE_ID), true)
    .set_column_bloom_filter_fpp(ColumnPath::from(TRACE_ID), 0.01)
    .set_column_compression(ColumnPath::from(SPAN), common::zstd(SPAN_ZSTD_LEVEL));
    for unique in [TRACE_ID, SPAN_ID, PARENT, SPAN] {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(unique), false);
    }
    let data = common::write_file(SIGNAL, schema, properties.build(), &batches)?;
    Ok(EncodedBlock {
        data,
        rows: spans.len() as u64,
        series: traces,
        min_time_ms: nanos_to_ms(min_ns),
        max_time_ms: nanos_to_ms(max_ns),
    })
}

fn nanos_to_ms(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

/// Decodes every span of a trace file, in storage order.
pub fn decode_traces(data: Bytes) -> Result<Vec<SpanRecord>, BlockError> {
    let (_, builder) = common::open(data, SIGNAL, false, traces_schema())?;
    let batches = common::read_batches(SIGNAL, builder)?;
    let mut out = Vec::new();
    for batch in &batches {
        decode_batch(batch, None, &mut out)?;
    }
    Ok(out)
}

/// The spans of one trace. Only row groups whose `trace_id` statistics include the id and whose
/// bloom filter may contain it are read.
pub fn find_trace(data: Bytes, trace_id: &[u8; 16]) -> Result<Vec<SpanRecord>, BlockError> {
    let (_, builder) = common::open(data, SIGNAL, false, traces_schema())?;
    let row_groups = candidate_row_groups(&builder, trace_id)?;
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    let batches = common::read_batches(SIGNAL, builder.with_row_groups(row_groups))?;
    let mut out = Vec::new();
    for batch in &batches {
        decode_batch(batch, Some(trace_id), &mut out)?;
    }
    Ok(out)
}

pub(super) fn candidate_row_groups(
    builder: &parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<Bytes>,
    trace_id: &[u8; 16],
) -> Result<Vec<usize>, BlockError> {
    let metadata = builder.metadata().clone();
    let Some(leaf) = common::leaf_index(&metadata, TRACE_ID) else {
        return Err(BlockError::column(SIGNAL, TRACE_ID, "missing"));
    };
    let mut selected = Vec::new();
    for (index, row_group) in metadata.row_groups().iter().enumerate() {
        if let Some((lo, hi)) = common::bytes_range(row_group, leaf) {
            if &trace_id[..] < lo || &trace_id[..] > hi {
                continue;
            }
        }
        let bloom = builder
            .get_row_group_column_bloom_filter(index, leaf)
            .map_err(BlockError::parquet(SIGNAL, "bloom filter read"))?;
        if bloom.is_some_and(|filter| !filter.check(&trace_id[..])) {
            continue;
        }
        selected.push(index);
    }
    Ok(selected)
}

fn decode_batch(
    batch: &RecordBatch,
    only: Option<&[u8; 16]>,
    out: &mut Vec<SpanRecord>,
) -> Result<(), BlockError> {
    let fixed = |name: &'static str, width: i32| {
        let array = common::column(batch, SIGNAL, name)?
            .as_fixed_size_binary_opt()
            .filter(|a| a.value_length() == width)
            .ok_or_else(|| {
                BlockError::column(SIGNAL, name, format!("not FixedSizeBinary({width})"))
            })?;
        common::no_nulls(array, SIGNAL, name)?;
        Ok::<_, BlockError>(array)
    };
    let binary = |name: &'static str| {
        let array = common::column(batch, SIGNAL, name)?
            .as_binary_opt::<i32>()
            .ok_or_else(|| BlockError::column(SIGNAL, name, "not Binary"))?;
        common::no_nulls(array, SIGNAL, name)?;
        Ok::<_, BlockError>(array)
    };
    let trace_ids = fixed(TRACE_ID, 16)?;
    let span_ids = fixed(SPAN_ID, 8)?;
    let (parents, resources, scopes, spans) =
        (binary(PARENT)?, binary(RESOURCE)?, binary(SCOPE)?, binary(SPAN)?);
    let names = DictStr::of(batch, SIGNAL, NAME)?;
    let services = DictStr::of(batch, SIGNAL, SERVICE)?;
    let kinds = common::primitive::<Int32Type>(batch, SIGNAL, KIND)?;
    let statuses = common::primitive::<Int32Type>(batch, SIGNAL, STATUS)?;
    let starts = common::primitive::<UInt64Type>(batch, SIGNAL, START)?;
    let ends = common::primitive::<UInt64Type>(batch, SIGNAL, END)?;
    for (array, name) in
        [(kinds as &dyn Array, KIND), (statuses, STATUS), (starts, START), (ends, END)]
    {
        common::no_nulls(array, SIGNAL, name)?;
    }
    for row in 0..batch.num_rows() {
        let trace_id: [u8; 16] = trace_ids
            .value(row)
            .try_into()
            .map_err(|_| BlockError::column(SIGNAL, TRACE_ID, "not 16 bytes"))?;
        if only.is_some_and(|wanted| *wanted != trace_id) {
            continue;
        }
        let span_id: [u8; 8] = span_ids
            .value(row)
            .try_into()
            .map_err(|_| BlockError::column(SIGNAL, SPAN_ID, "not 8 bytes"))?;
        out.push(SpanRecord {
            trace_id,
            span_id,
            parent_span_id: parents.value(row).to_vec(),
            name: names.get(row).to_owned(),
            kind: kinds.value(row),
            start_unix_nano: starts.value(row),
            end_unix_nano: ends.value(row),
            status_code: statuses.value(row),
            service_name: services.get(row).to_owned(),
            resource: Bytes::copy_from_slice(resources.value(row)),
            scope: Bytes::copy_from_slice(scopes.value(row)),
            span: Bytes::copy_from_slice(spans.value(row)),
        });
    }
    Ok(())
}
