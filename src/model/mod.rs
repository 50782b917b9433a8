//! The data passed between pipeline stages: label sets, metric batches, and the protobuf wire
//! primitives that ingest decoders and sink encoders share.

pub mod labels;
pub mod metrics;
pub mod wire;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use metrics::{
    Exemplar, Histogram, MetricBatch, MetricMetadata, MetricType, Sample, Series, SeriesMetadata,
    SeriesView, STALE_NAN_BITS,
};
