//! Loki push output: `logproto.PushRequest` protobuf (Loki `pkg/push/push.proto`), snappy block
//! compressed, `POST`ed to a Loki-compatible `/loki/api/v1/push`. The encoder writes straight from
//! [`LogBatch`](crate::model::LogBatch) streams and entries; lines are copied from the shared
//! buffers they were received in, once, into the outgoing body.

pub mod encode;
