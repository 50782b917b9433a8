//! Strata: one binary that is both the node agent and the central aggregator of an
//! observability pipeline. See `DESIGN.md` in the shared docs and `README.md`.
//!
//! The modules below are listed in data-flow order; dependencies only point down the flow:
//!
//! ```text
//!  HTTP/gRPC ingest ─► ingest (decode, caps, validation) ─► relabel ─► route ─► sinks (forward)
//!  remote-write ─► metric batch ──────────────────────────────────────► remote_write targets
//!  OTLP metrics ─► (Prometheus OTLP translation) ─► metric batch ─────► remote_write targets
//!  Loki push, OTLP logs (Loki's mapping) ─► log batch ────────────────► loki targets
//!  OTLP traces, Zipkin (Collector's mapping) ─► trace batch ──────────► otlp targets
//!
//!  route: every batch ─► storage WAL record (then 2xx) ─► head (all-in-one, aggregator)
//!                                                    └─► targets, tracked per WAL position
//!  head ─(every block_duration)─► Parquet blocks ─► spool ─► bucket ─► compactor (5m, 1h, expiry)
//! ```
//!
//! * [`error`]     the error kinds every stage shares (status mapping lives in `server`).
//! * [`config`]    YAML config: raw serde structs → `validate()` → runtime plan.
//! * [`model`]     the data passed between stages: labels; metric, log and trace batches.
//! * [`ingest`]    protocol decoders: request bytes → validated batches (remote-write, Loki
//!   push, OTLP traces/metrics/logs, Zipkin).
//! * [`relabel`]   Prometheus `relabel_config` engine and its per-series result cache.
//! * [`route`]     fan-out of each signal's batches to its forward targets, all or nothing.
//! * [`sinks`]     forward outputs on one queue machinery (batching, sharding, retries):
//!   remote-write 1.0/2.0, Loki push, OTLP gRPC/HTTP.
//! * [`storage`]   WAL in front of every acknowledgement (records, per-consumer positions,
//!   replay, repair), the head, Parquet blocks, the object-store bucket, compaction and tiers.
//! * [`rules`]     Prometheus rule files: recording and alerting rules evaluated over the
//!   engine, alert templates, `ALERTS` state and restore, `check rules` / `test rules`.
//! * [`telemetry`] logging setup and the one catalog of Strata's own metrics.
//! * [`server`]    the HTTP routers (main and OTLP/HTTP) and the single error → status mapping;
//!   the OTLP/gRPC services live in `ingest::otlp::grpc`.
//! * [`topology`]  the only place that knows which role wires what.
//! * [`app`]       runtime, signals and drain-order shutdown.

pub mod app;
pub mod config;
pub mod error;
pub mod ingest;
pub mod model;
pub mod notifier;
pub mod promql;
pub mod relabel;
pub mod route;
pub mod rules;
pub mod server;
pub mod sinks;
pub mod storage;
pub mod telemetry;
pub mod topology;
