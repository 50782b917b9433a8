//! Tests of OTLP/HTTP body decoding: negotiation, capped gunzip, protobuf, and OTLP JSON
//! against the spec's examples and the JSON mapping's rules.

use std::io::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;

use super::*;
use crate::error::ErrorKind;

const TRACE_JSON: &str = include_str!("testdata/trace.json");
const LOGS_JSON: &str = include_str!("testdata/logs.json");
const METRICS_JSON: &str = include_str!("testdata/metrics.json");

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn json<T: OtlpRequest>(text: &str) -> Result<T, OtlpError> {
    decode_json(text.as_bytes())
}

#[test]
fn content_type_negotiation() {
    assert_eq!(Format::from_content_type(Some("application/x-protobuf")), Ok(Format::Protobuf));
    assert_eq!(
        Format::from_content_type(Some("Application/JSON; charset=utf-8")),
        Ok(Format::Json)
    );
    for bad in [None, Some(""), Some("text/plain"), Some("application/protobuf")] {
        let err = Format::from_content_type(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType, "{bad:?}");
    }
    assert_eq!(Format::Json.content_type(), "application/json");
}

#[test]
fn content_encoding_negotiation_and_gzip() {
    let body = Bytes::from_static(b"hello otlp");
    for identity in [None, Some(""), Some("identity")] {
        assert_eq!(decompress(identity, body.clone(), 100).unwrap(), body);
    }
    let zipped = Bytes::from(gzip(&body));
    assert_eq!(decompress(Some("gzip"), zipped.clone(), 100).unwrap(), body);
    assert_eq!(decompress(Some("GZIP"), zipped.clone(), 100).unwrap(), body);
    // Exactly at the limit is fine; one byte less is not.
    assert_eq!(decompress(Some("gzip"), zipped.clone(), body.len()).unwrap(), body);
    let err = decompress(Some("gzip"), zipped.clone(), body.len() - 1).unwrap_err();
    assert_eq!(err, OtlpError::TooLarge { limit: body.len() - 1 });
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    // Two members are read as one stream.
    let mut two = gzip(b"hello ");
    two.extend(gzip(b"otlp"));
    assert_eq!(decompress(Some("gzip"), Bytes::from(two), 100).unwrap(), "hello otlp");
    for unsupported in ["deflate", "br", "zstd", "snappy"] {
        let err = decompress(Some(unsupported), body.clone(), 100).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType, "{unsupported}");
    }
    let err = decompress(Some("gzip"), Bytes::from_static(b"not gzip at all"), 100).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    let truncated = zipped.slice(..zipped.len() - 6);
    let err = decompress(Some("gzip"), truncated, 100).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    // An uncompressed body over the limit.
    let err = decompress(None, body.clone(), 3).unwrap_err();
    assert_eq!(err, OtlpError::TooLarge { limit: 3 });
}

#[test]
fn gzip_bomb_stops_at_the_limit() {
    // 64 members of 1 MiB of zeros: ~64 KiB that inflate to 64 MiB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = encoder.finish().unwrap();
    let bomb: Vec<u8> = std::iter::repeat_n(member.as_slice(), 64).flatten().copied().collect();
    assert!(bomb.len() < 200 << 10, "{}", bomb.len());
    let err = gunzip_capped(&bomb, 2 << 20).unwrap_err();
    assert_eq!(err, OtlpError::TooLarge { limit: 2 << 20 });
}

#[test]
fn protobuf_bodies_decode_for_all_three_signals() {
    let request: ExportTraceServiceRequest = json(TRACE_JSON).unwrap();
    let body = Bytes::from(request.encode_to_vec());
    let decoded: ExportTraceServiceRequest =
        decode_body(Format::Protobuf, None, body.clone(), 1 << 20).unwrap();
    assert_eq!(decoded, request);
    let zipped = Bytes::from(gzip(&body));
    let decoded: ExportTraceServiceRequest =
        decode_body(Format::Protobuf, Some("gzip"), zipped, 1 << 20).unwrap();
    assert_eq!(decoded, request);
    let logs: ExportLogsServiceRequest = json(LOGS_JSON).unwrap();
    let decoded: ExportLogsServiceRequest =
        decode_body(Format::Protobuf, None, Bytes::from(logs.encode_to_vec()), 1 << 20).unwrap();
    assert_eq!(decoded, logs);
    let metrics: ExportMetricsServiceRequest = json(METRICS_JSON).unwrap();
    let decoded: ExportMetricsServiceRequest =
        decode_body(Format::Protobuf, None, Bytes::from(metrics.encode_to_vec()), 1 << 20).unwrap();
    assert_eq!(decoded, metrics);
    let err = decode_body::<ExportLogsServiceRequest>(
        Format::Protobuf,
        None,
        Bytes::from_static(&[0x0a, 0x05, 1]),
        100,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(
        err.to_string().starts_with("cannot decode ExportLogsServiceRequest (protobuf)"),
        "{err}"
    );
}

#[test]
fn truncated_protobuf_bodies_are_errors() {
    let request: ExportLogsServiceRequest = json(LOGS_JSON).unwrap();
    let body = request.encode_to_vec();
    // One top-level field: every non-empty strict prefix cuts it.
    for len in 1..body.len() {
        let result = decode_message::<ExportLogsServiceRequest>(
            Format::Protobuf,
            Bytes::copy_from_slice(&body[..len]),
        );
        assert!(result.is_err(), "prefix of {len} bytes decoded");
    }
}

#[test]
fn spec_trace_example_decodes() {
    let request: ExportTraceServiceRequest = json(TRACE_JSON).unwrap();
    let resource_spans = &request.resource_spans[0];
    let attributes = &resource_spans.resource.as_ref().unwrap().attributes;
    assert_eq!(attributes[0].key, "service.name");
    let scope_spans = &resource_spans.scope_spans[0];
    assert_eq!(scope_spans.scope.as_ref().unwrap().version, "1.0.0");
    let span = &scope_spans.spans[0];
    // Hex ids, upper case in the example.
    assert_eq!(
        span.trace_id,
        [
            0x5B, 0x8E, 0xFF, 0xF7, 0x98, 0x03, 0x81, 0x03, 0xD2, 0x69, 0xB6, 0x33, 0x81, 0x3F,
            0xC6, 0x0C
        ]
    );
    assert_eq!(span.span_id, [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74]);
    assert_eq!(span.parent_span_id, [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x73]);
    // fixed64 as JSON numbers, enum as an integer.
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.kind, 2);
    assert_eq!(
        span.attributes[0].value.as_ref().unwrap().value,
        Some(V::StringValue("some value".into()))
    );
}

#[test]
fn spec_logs_example_decodes_every_value_type() {
    let request: ExportLogsServiceRequest = json(LOGS_JSON).unwrap();
    let record = &request.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(record.severity_text, "Information");
    assert_eq!(record.span_id, [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74]);
    let values: Vec<_> = record
        .attributes
        .iter()
        .map(|kv| kv.value.as_ref().unwrap().value.clone().unwrap())
        .collect();
    assert_eq!(values[0], V::StringValue("some string".into()));
    assert_eq!(values[1], V::BoolValue(true));
    assert_eq!(values[2], V::IntValue(10));
    assert_eq!(values[3], V::DoubleValue(637.704));
    let V::ArrayValue(array) = &values[4] else { panic!("{:?}", values[4]) };
    assert_eq!(array.values.len(), 2);
    let V::KvlistValue(map) = &values[5] else { panic!("{:?}", values[5]) };
    assert_eq!(map.values[0].key, "some.map.key");
}

#[test]
fn spec_metrics_example_decodes() {
    let request: ExportMetricsServiceRequest = json(METRICS_JSON).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("{:?}", metrics[0]) };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 1);
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsDouble(5.0)));
    let Some(Data::Histogram(histogram)) = &metrics[2].data else { panic!("{:?}", metrics[2]) };
    let point = &histogram.data_points[0];
    assert_eq!(
        (point.count, point.sum, point.min, point.max),
        (3, Some(3.0), Some(1.0), Some(1.0))
    );
    assert_eq!(point.bucket_counts, [1, 1, 1]);
    assert_eq!(point.explicit_bounds, [1.0]);
}

#[test]
fn sixty_four_bit_integers_as_strings_or_numbers() {
    let as_strings = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"a","sum":{"dataPoints":[{"asInt":"-3","timeUnixNano":"1544712660300000000",
          "attributes":[{"key":"k","value":{"intValue":"9223372036854775807"}}]}]}},
        {"name":"h","histogram":{"dataPoints":[{"count":"3","bucketCounts":["1","2"],"explicitBounds":[1]}]}}
    ]}]}]}"#;
    let as_numbers = as_strings
        .replace(r#""-3""#, "-3")
        .replace(r#""1544712660300000000""#, "1544712660300000000")
        .replace(r#""9223372036854775807""#, "9223372036854775807")
        .replace(r#""3""#, "3")
        .replace(r#"["1","2"]"#, "[1,2]");
    let from_strings: ExportMetricsServiceRequest = json(as_strings).unwrap();
    let from_numbers: ExportMetricsServiceRequest = json(&as_numbers).unwrap();
    assert_eq!(from_strings, from_numbers);
    let metrics = &from_strings.resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Sum(sum)) = &metrics[0].data else { panic!() };
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsInt(-3)));
    assert_eq!(sum.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(
        sum.data_points[0].attributes[0].value.as_ref().unwrap().value,
        Some(V::IntValue(i64::MAX))
    );
    let Some(Data::Histogram(histogram)) = &metrics[1].data else { panic!() };
    assert_eq!(histogram.data_points[0].count, 3);
    assert_eq!(histogram.data_points[0].bucket_counts, [1, 2]);
    let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
         "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000}]}]}]}"#;
    let request: ExportTraceServiceRequest = json(spans).unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.trace_id[0], 0x5b, "lower-case hex too");
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let with_unknown = r#"{"futureTop":1,"resourceSpans":[{"futureResource":{"x":[1,2]},
        "resource":{"attributes":[{"key":"service.name","futureKv":true,
            "value":{"stringValue":"my.service","futureValue":"x"}}],"futureAttr":null},
        "scopeSpans":[{"futureScopeSpans":"x","scope":{"name":"my.library","future":{}},
          "spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
            "name":"s","futureSpanField":{"deep":[{"a":1}]},"kind":2,
            "status":{"code":1,"futureStatus":1}}]}]}]}"#;
    let request: ExportTraceServiceRequest = json(with_unknown).unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!((span.name.as_str(), span.kind), ("s", 2));
    assert_eq!(span.status.as_ref().unwrap().code, 1);
    let attribute = &request.resource_spans[0].resource.as_ref().unwrap().attributes[0];
    assert_eq!(attribute.value.as_ref().unwrap().value, Some(V::StringValue("my.service".into())));
    let metrics = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","futureMetric":{"a":1},
        "gauge":{"futureGauge":1,"dataPoints":[{"asDouble":1.5,"futurePoint":"x"}]}}]}]}]}"#;
    let request: ExportMetricsServiceRequest = json(metrics).unwrap();
    let metric = &request.resource_metrics[0].scope_metrics[0].metrics[0];
    let Some(Data::Gauge(gauge)) = &metric.data else { panic!("{metric:?}") };
    assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsDouble(1.5)));
}

#[test]
fn proto3_json_leniencies_are_normalised() {
    // null fields, `KeyValue` without key, arrayValue/kvlistValue without values, 32-bit
    // integers as strings, url-safe unpadded base64.
    let text = r#"{"resourceLogs":[{"resource":null,"scopeLogs":[{"scope":{"name":"s","attributes":null},
        "logRecords":[{"severityNumber":"9","flags":"1","droppedAttributesCount":"2","body":{"bytesValue":"-_8"},
          "attributes":[{"value":{"stringValue":"no key"}},{"key":"e","value":{"arrayValue":{}}},
            {"key":"m","value":{"kvlistValue":{}}},{"key":"n","value":null}]}]}]}]}"#;
    let request: ExportLogsServiceRequest = json(text).unwrap();
    let record = &request.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!((record.severity_number, record.flags, record.dropped_attributes_count), (9, 1, 2));
    assert_eq!(record.body.as_ref().unwrap().value, Some(V::BytesValue(vec![0xfb, 0xff])));
    assert_eq!(record.attributes[0].key, "");
    assert_eq!(record.attributes.len(), 4);
    assert!(request.resource_logs[0].resource.is_none());
    let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"3","name":null}]}]}]}"#;
    let request: ExportTraceServiceRequest = json(spans).unwrap();
    assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].kind, 3);
}

#[test]
fn malformed_json_is_a_bad_request_naming_the_message() {
    for text in [
        "",
        "{",
        "[]",
        r#"{"resourceSpans":{}}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
    ] {
        let err = json::<ExportTraceServiceRequest>(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{text}");
        assert!(
            err.to_string().starts_with("cannot decode ExportTraceServiceRequest (JSON)"),
            "{err}"
        );
    }
    // An empty object is an empty request.
    assert_eq!(json::<ExportTraceServiceRequest>("{}").unwrap(), Default::default());
}
