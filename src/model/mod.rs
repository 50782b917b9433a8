//! The data passed between pipeline stages: label sets, metric, log and trace batches, and the
//! protobuf wire primitives that ingest decoders and sink encoders share.

pub mod labels;
pub mod logs;
pub mod metrics;
pub mod traces;
pub mod wire;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use logs::{LogBatch, LogEntry, Stream, StreamEntries, Tenant, DEFAULT_TENANT};
pub use metrics::{
    Exemplar, Histogram, MetricBatch, MetricMetadata, MetricType, Sample, Series, SeriesMetadata,
    SeriesView, STALE_NAN_BITS,
};
pub use traces::{ResourceSpans, TraceBatch, TraceResource};
