//! OTLP/HTTP response bodies, in the encoding of the request (spec "OTLP/HTTP Response": "The
//! server MUST use the same Content-Type in the response as it received in the request").
//!
//! * Success: `Export{Trace,Metrics,Logs}ServiceResponse`; `partial_success` is set only when
//!   something was rejected ("The server MUST leave the partial_success field unset in case of
//!   a successful response"). In JSON, `rejected_*` (int64) is a decimal string as the proto3
//!   JSON mapping writes 64-bit integers; a full success is `{}`.
//! * Failure (4xx/5xx): a `google.rpc.Status` with `code` (the gRPC code matching the failure;
//!   the spec says clients ignore it) and `message` (the error text). 429 and 503 also get a
//!   `Retry-After` of [`RETRY_AFTER_SECONDS`].

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;

use super::{Accepted, Format, OtlpError};
use crate::error::ErrorKind;
use crate::model::{LogBatch, TraceBatch};

/// Seconds a throttled client is asked to wait (`Retry-After`, gRPC `RetryInfo`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// A response body and its Content-Type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// `ExportTraceServiceResponse` for an accepted request.
pub fn traces(accepted: &Accepted<TraceBatch>, format: Format) -> Reply {
    let partial = partial(accepted.rejected, accepted.message.as_deref());
    match format {
        Format::Protobuf => protobuf(&ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected_spans, error_message)| {
                ExportTracePartialSuccess { rejected_spans, error_message }
            }),
        }),
        Format::Json => json_partial("rejectedSpans", partial),
    }
}

/// `ExportLogsServiceResponse` for an accepted request.
pub fn logs(accepted: &Accepted<LogBatch>, format: Format) -> Reply {
    let partial = partial(accepted.rejected, accepted.message.as_deref());
    match format {
        Format::Protobuf => protobuf(&ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected_log_records, error_message)| {
                ExportLogsPartialSuccess { rejected_log_records, error_message }
            }),
        }),
        Format::Json => json_partial("rejectedLogRecords", partial),
    }
}

/// `ExportMetricsServiceResponse` for a translated request.
pub fn metrics(rejected_data_points: u64, message: Option<&str>, format: Format) -> Reply {
    let partial = partial(rejected_data_points, message);
    match format {
        Format::Protobuf => protobuf(&ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected_data_points, error_message)| {
                ExportMetricsPartialSuccess { rejected_data_points, error_message }
            }),
        }),
        Format::Json => json_partial("rejectedDataPoints", partial),
    }
}

/// The `google.rpc.Status` body of a failed request.
pub fn error(err: &OtlpError, format: Format) -> Reply {
    status(grpc_code(err.kind()), &err.to_string(), format)
}

/// A `google.rpc.Status` body.
pub fn status(code: tonic::Code, message: &str, format: Format) -> Reply {
    match format {
        Format::Protobuf => protobuf(&tonic_types::Status {
            code: code as i32,
            message: message.to_owned(),
            details: Vec::new(),
        }),
        Format::Json => Reply {
            content_type: format.content_type(),
            body: json!({ "code": code as i32, "message": message }).to_string().into_bytes(),
        },
    }
}

/// `Retry-After` seconds for a failure the client should retry (429, 503), `None` otherwise.
pub fn retry_after(kind: ErrorKind) -> Option<u64> {
    match kind {
        ErrorKind::RateLimited | ErrorKind::Unavailable => Some(RETRY_AFTER_SECONDS),
        ErrorKind::BadRequest | ErrorKind::TooLarge | ErrorKind::UnsupportedMediaType => None,
    }
}

/// The gRPC code of a failure kind: the OTLP spec's choices (`INVALID_ARGUMENT` for bad data,
/// `RESOURCE_EXHAUSTED` for over-size, `UNAVAILABLE` for "retry later").
pub fn grpc_code(kind: ErrorKind) -> tonic::Code {
    match kind {
        ErrorKind::BadRequest | ErrorKind::UnsupportedMediaType => tonic::Code::InvalidArgument,
        ErrorKind::TooLarge | ErrorKind::RateLimited => tonic::Code::ResourceExhausted,
        ErrorKind::Unavailable => tonic::Code::Unavailable,
    }
}

/// `(rejected as i64, message)` when the response needs a `partial_success`.
fn partial(rejected: u64, message: Option<&str>) -> Option<(i64, String)> {
    if rejected == 0 && message.is_none() {
        return None;
    }
    Some((i64::try_from(rejected).unwrap_or(i64::MAX), message.unwrap_or_default().to_owned()))
}

fn protobuf(message: &impl Message) -> Reply {
    Reply { content_type: Format::Protobuf.content_type(), body: message.encode_to_vec() }
}

fn json_partial(field: &str, partial: Option<(i64, String)>) -> Reply {
    let body = match partial {
        None => json!({}),
        Some((rejected, message)) => json!({
            "partialSuccess": { field: rejected.to_string(), "errorMessage": message }
        }),
    };
    Reply { content_type: Format::Json.content_type(), body: body.to_string().into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(rejected: u64, message: Option<&str>) -> Accepted<TraceBatch> {
        Accepted {
            batch: TraceBatch::new("t".into()),
            rejected,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn full_success_leaves_partial_success_unset() {
        let reply = traces(&accepted(0, None), Format::Protobuf);
        assert_eq!(reply.content_type, "application/x-protobuf");
        let decoded = ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap();
        assert_eq!(decoded.partial_success, None);
        assert_eq!(traces(&accepted(0, None), Format::Json).body, b"{}");
    }

    #[test]
    fn partial_success_in_both_encodings() {
        let reply = traces(&accepted(2, Some("2 spans rejected")), Format::Protobuf);
        let decoded = ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap();
        assert_eq!(
            decoded.partial_success,
            Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "2 spans rejected".into()
            })
        );
        let reply = traces(&accepted(2, Some("why")), Format::Json);
        assert_eq!(reply.content_type, "application/json");
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(value, json!({"partialSuccess": {"rejectedSpans": "2", "errorMessage": "why"}}));
        let reply = metrics(5, None, Format::Json);
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(value["partialSuccess"]["rejectedDataPoints"], "5");
        let reply = metrics(5, Some("x"), Format::Protobuf);
        let decoded = ExportMetricsServiceResponse::decode(reply.body.as_slice()).unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_data_points, 5);
    }

    #[test]
    fn errors_are_google_rpc_status() {
        let err = OtlpError::Decode { what: "X", format: "protobuf", detail: "bad".into() };
        let reply = error(&err, Format::Protobuf);
        let status = tonic_types::Status::decode(reply.body.as_slice()).unwrap();
        assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
        assert_eq!(status.message, "cannot decode X (protobuf): bad");
        let reply = error(&OtlpError::TooLarge { limit: 5 }, Format::Json);
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(value["code"], tonic::Code::ResourceExhausted as i32);
        assert!(value["message"].as_str().unwrap().contains("limit of 5 bytes"));
        assert_eq!(retry_after(ErrorKind::Unavailable), Some(RETRY_AFTER_SECONDS));
        assert_eq!(retry_after(ErrorKind::BadRequest), None);
    }
}
