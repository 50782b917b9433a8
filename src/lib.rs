//! Strata: one binary that is both the node agent and the central aggregator of an
//! observability pipeline. See `DESIGN.md` in the shared docs and `README.md`.
//!
//! The modules below are listed in data-flow order; dependencies only point down the flow:
//!
//! ```text
//!  HTTP ingest ─► ingest (decode, caps, validation) ─► relabel ─► route ─► sinks (forward)
//! ```
//!
//! * [`error`]     the error kinds every stage shares (status mapping lives in `server`).
//! * [`config`]    YAML config: raw serde structs → `validate()` → runtime plan.
//! * [`model`]     the data passed between stages: labels and metric batches.
//! * [`ingest`]    protocol decoders: request bytes → validated batches.
//! * [`relabel`]   Prometheus `relabel_config` engine and its per-series result cache.
//! * [`route`]     fan-out of batches to forward targets with all-or-nothing admission.
//! * [`sinks`]     forward outputs (remote-write 1.0/2.0 sender: batching, sharding, retries).
//! * [`telemetry`] logging setup and the one catalog of Strata's own metrics.
//! * [`server`]    the HTTP router and the single error → status mapping.
//! * [`topology`]  the only place that knows which role wires what.
//! * [`app`]       runtime, signals and drain-order shutdown.

pub mod app;
pub mod config;
pub mod error;
pub mod ingest;
pub mod model;
pub mod relabel;
pub mod route;
pub mod server;
pub mod sinks;
pub mod telemetry;
pub mod topology;
