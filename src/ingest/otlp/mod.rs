//! OTLP ingest (traces, metrics, logs over gRPC and HTTP); `metrics` turns OTLP metrics into
//! Prometheus series.

pub mod metrics;
