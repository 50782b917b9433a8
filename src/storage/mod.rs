//! Storage (`DESIGN.md` §5). This build has the write-ahead log's file format, replay and repair
//! ([`wal`]); wiring it in front of acknowledgements, the head, Parquet blocks and tiers are the
//! storage issue's work.

pub mod wal;
