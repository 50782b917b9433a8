//! Forward outputs. Each sink batches, shards by series, retries with capped backoff and keeps
//! its queues bounded; see each submodule for its protocol.

pub mod loki;
pub mod remote_write;
