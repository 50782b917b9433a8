use std::io::Write;

use bytes::Bytes;

use super::*;
use crate::config::{ByteSize, PromDuration};
use crate::error::ErrorKind;
use crate::model::wire::{put_bytes, put_key, put_varint, VARINT};
use crate::model::DEFAULT_TENANT;

const SECOND: i64 = 1_000_000_000;
const NOW: i64 = 1_700_000_000 * SECOND;
const PROTOBUF: Option<&str> = Some("application/x-protobuf");
const JSON: Option<&str> = Some("application/json");

fn tenant() -> Tenant {
    DEFAULT_TENANT.into()
}

fn new_ingest(config: &LokiIngestConfig) -> (LokiIngest, Catalog) {
    let catalog = Catalog::new();
    (LokiIngest::new(config, &catalog).unwrap(), catalog)
}

/// A `logproto.PushRequest` with selectors written as given (so invalid ones can be sent);
/// entries are `(timestamp, line)`.
fn raw_push(streams: &[(&str, &[(i64, &str)])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (selector, entries) in streams {
        let mut stream = Vec::new();
        put_bytes(&mut stream, 1, selector.as_bytes());
        for (timestamp_ns, line) in *entries {
            let mut timestamp = Vec::new();
            put_key(&mut timestamp, 1, VARINT);
            put_varint(&mut timestamp, timestamp_ns.div_euclid(SECOND) as u64);
            put_key(&mut timestamp, 2, VARINT);
            put_varint(&mut timestamp, timestamp_ns.rem_euclid(SECOND) as u64);
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, &timestamp);
            put_bytes(&mut entry, 2, line.as_bytes());
            put_bytes(&mut stream, 2, &entry);
        }
        put_bytes(&mut body, 1, &stream);
    }
    body
}

fn snappy(body: &[u8]) -> Bytes {
    Bytes::from(snap::raw::Encoder::new().compress_vec(body).unwrap())
}

fn gzip(body: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

fn receive(ingest: &LokiIngest, body: Bytes) -> Result<LokiReceived, IngestError> {
    ingest.receive(&tenant(), PROTOBUF, None, body, NOW)
}

/// `(selector, [(timestamp, line)])` per stream of a batch.
fn summary(batch: &LogBatch) -> Vec<(String, Vec<(i64, String)>)> {
    batch
        .streams
        .iter()
        .map(|s| {
            let entries = s
                .entries
                .iter()
                .map(|e| (e.timestamp_ns, String::from_utf8(e.line.to_vec()).unwrap()))
                .collect();
            (s.stream.selector.to_string(), entries)
        })
        .collect()
}

fn owned(streams: &[(&str, &[(i64, &str)])]) -> Vec<(String, Vec<(i64, String)>)> {
    streams
        .iter()
        .map(|(s, e)| ((*s).to_owned(), e.iter().map(|(t, l)| (*t, (*l).to_owned())).collect()))
        .collect()
}

#[test]
fn protobuf_push_is_accepted_and_counted() {
    let (ingest, catalog) = new_ingest(&LokiIngestConfig::default());
    let body = raw_push(&[
        (r#"{env="prod", app="api"}"#, &[(NOW, "GET /a"), (NOW + 1, "GET /b")]),
        ("{app=`web`}", &[(NOW - SECOND, "hello")]),
    ]);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert_eq!(received.batch.tenant.as_ref(), DEFAULT_TENANT);
    assert_eq!(
        summary(&received.batch),
        owned(&[
            (r#"{app="api", env="prod"}"#, &[(NOW, "GET /a"), (NOW + 1, "GET /b")]),
            (r#"{app="web"}"#, &[(NOW - SECOND, "hello")]),
        ])
    );
    assert_eq!(received.rejection_message(), None);
    let text = catalog.encode_text();
    for expected in [
        "strata_ingest_log_entries_received_total{protocol=\"loki_push\"} 3",
        "strata_ingest_log_received_bytes_total{protocol=\"loki_push\"} 17",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn json_gzip_and_deflate_bodies_give_the_same_batch() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    let proto = raw_push(&[(r#"{app="api"}"#, &[(NOW, "a \"quoted\" line"), (NOW + 5, "b")])]);
    let json = format!(
        r#"{{"streams":[{{"stream":{{"app":"api"}},"values":[["{NOW}","a \"quoted\" line"],["{}","b"]]}}]}}"#,
        NOW + 5
    );
    let expected = summary(&receive(&ingest, snappy(&proto)).unwrap().batch);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate.write_all(json.as_bytes()).unwrap();
    let deflate = Bytes::from(deflate.finish().unwrap());
    let cases: [(Option<&str>, Option<&str>, Bytes); 6] = [
        (JSON, None, Bytes::from(json.clone())),
        (Some("application/json; charset=utf-8"), Some("gzip"), gzip(json.as_bytes())),
        (JSON, Some("deflate"), deflate),
        (None, None, snappy(&proto)),
        (PROTOBUF, Some("snappy"), snappy(&proto)),
        (PROTOBUF, Some("gzip"), gzip(&snappy(&proto))),
    ];
    for (content_type, encoding, body) in cases {
        let received = ingest.receive(&tenant(), content_type, encoding, body, NOW).unwrap();
        assert_eq!(summary(&received.batch), expected, "{content_type:?} {encoding:?}");
    }
}

#[test]
fn invalid_streams_are_rejected_and_the_valid_rest_is_kept() {
    let config = LokiIngestConfig { max_label_names_per_series: 2, ..LokiIngestConfig::default() };
    let (ingest, catalog) = new_ingest(&config);
    let body = raw_push(&[
        (r#"{app="ok"}"#, &[(NOW, "kept")]),
        (r#"{app=~"x"}"#, &[(NOW, "a"), (NOW, "b")]),
        ("{}", &[(NOW, "c")]),
        (r#"{a="1", b="2", c="3"}"#, &[(NOW, "d")]),
        (r#"{a="1", a="2"}"#, &[(NOW, "e")]),
        ("{bad=\"\u{0}\"} x", &[]), // no entries: skipped without a look at its labels
    ]);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert_eq!(summary(&received.batch), owned(&[(r#"{app="ok"}"#, &[(NOW, "kept")])]));
    assert_eq!((received.rejected_streams, received.rejected_entries), (4, 5));
    let message = received.rejection_message().unwrap();
    for expected in [
        "5 entries rejected (1 accepted): ",
        "error parsing labels '{app=~\"x\"}' with error: only '=' is allowed between a label \
         name and its value at byte 4",
        "; error at least one label pair is required per stream",
        "; entry for stream '{a=\"1\", b=\"2\", c=\"3\"}' has 3 label names; limit 2",
        "; stream '{a=\"1\", a=\"2\"}' has duplicate label name: 'a'",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert!(catalog.encode_text().contains(
        "strata_ingest_items_dropped_total{protocol=\"loki_push\",reason=\"invalid\"} 5"
    ));
    // All streams invalid: nothing accepted, still a (400) rejection and not an error.
    let received = receive(&ingest, snappy(&raw_push(&[("{}", &[(NOW, "x")])]))).unwrap();
    assert!(received.batch.is_empty());
    assert!(received.rejection_message().is_some());
}

#[test]
fn entry_rules_reject_single_entries_with_lokis_messages() {
    let config = LokiIngestConfig {
        max_line_size: ByteSize::from_bytes(8),
        reject_old_samples_max_age: PromDuration::from_secs(3600),
        creation_grace_period: PromDuration::from_secs(60),
        ..LokiIngestConfig::default()
    };
    let (ingest, _) = new_ingest(&config);
    let body = raw_push(&[(
        r#"{app="x"}"#,
        &[
            (NOW, "fine"),
            (NOW - 3601 * SECOND, "old"),
            (NOW + 61 * SECOND, "new"),
            (NOW, "much too long"),
            (NOW + 60 * SECOND, "edge"),
        ],
    )]);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert_eq!(
        summary(&received.batch),
        owned(&[(r#"{app="x"}"#, &[(NOW, "fine"), (NOW + 60 * SECOND, "edge")])])
    );
    assert_eq!((received.rejected_streams, received.rejected_entries), (0, 3));
    assert_eq!(
        received.rejection_message().unwrap(),
        "3 entries rejected (2 accepted): entry for stream '{app=\"x\"}' has timestamp too old: \
         2023-11-14T21:13:19Z, oldest acceptable timestamp is: 2023-11-14T21:13:20Z; entry for \
         stream '{app=\"x\"}' has timestamp too new: 2023-11-14T22:14:21Z; max entry size '8' \
         bytes exceeded for stream '{app=\"x\"}' while adding an entry with length '13' bytes"
    );
    // With truncation the long line is cut and kept.
    let config = LokiIngestConfig { max_line_size_truncate: true, ..config };
    let (ingest, _) = new_ingest(&config);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert_eq!(received.rejected_entries, 2);
    assert_eq!(received.batch.streams[0].entries[1].line, Bytes::from_static(b"much too"));
}

#[test]
fn rejection_message_groups_repeats_and_caps_the_list() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    let streams: Vec<String> = (0..40).map(|i| format!("{{app=\"x\", l{i}=}}")).collect();
    let mut raw: Vec<(&str, &[(i64, &str)])> = vec![("{}", &[(NOW, "a")]), ("{}", &[(NOW, "b")])];
    raw.extend(streams.iter().map(|s| (s.as_str(), &[(NOW, "x")][..])));
    let received = receive(&ingest, snappy(&raw_push(&raw))).unwrap();
    assert_eq!(received.rejected_entries, 42);
    assert_eq!(received.rejections.len(), MAX_LISTED);
    let message = received.rejection_message().unwrap();
    assert!(message.contains("2 errors like: error at least one label pair"), "{message}");
    assert!(message.ends_with("; and 31 more errors"), "{message}");
    assert!(message.len() < 2_000, "{}", message.len());
}

#[test]
fn over_the_rate_the_whole_push_is_refused() {
    let config = LokiIngestConfig {
        ingestion_rate: ByteSize::from_bytes(100),
        ingestion_burst_size: ByteSize::from_bytes(150),
        ..LokiIngestConfig::default()
    };
    let (ingest, catalog) = new_ingest(&config);
    let line = "x".repeat(50);
    let push = |lines: usize| {
        let entries: Vec<(i64, &str)> =
            (0..lines).map(|i| (NOW + i as i64, line.as_str())).collect();
        snappy(&raw_push(&[(r#"{app="a"}"#, &entries), ("{}", &[(NOW, "invalid")])]))
    };
    assert_eq!(receive(&ingest, push(2)).unwrap().batch.entry_count(), 2);
    let err = receive(&ingest, push(2)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        err.to_string(),
        "ingestion rate limit exceeded for user fake (limit: 100 bytes/sec) while attempting to \
         ingest '2' lines totaling '100' bytes, reduce log volume or raise \
         ingest.loki.ingestion_rate / ingestion_burst_size"
    );
    let text = catalog.encode_text();
    assert!(
        text.contains(
            "strata_ingest_items_dropped_total{protocol=\"loki_push\",reason=\"rate_limited\"} 2"
        ),
        "{text}"
    );
    // Another tenant has its own bucket; time refills this one.
    assert!(ingest.receive(&"other".into(), PROTOBUF, None, push(3), NOW).is_ok());
    assert!(ingest.receive(&tenant(), PROTOBUF, None, push(2), NOW + SECOND).is_ok());
    // Larger than the burst: never accepted.
    assert!(ingest.receive(&tenant(), PROTOBUF, None, push(4), NOW + 100 * SECOND).is_err());
}

#[test]
fn relabeling_drops_keeps_maps_and_merges_streams() {
    let config: LokiIngestConfig = serde_yaml::from_str(
        r#"
relabel_configs:
  - source_labels: [level]
    regex: debug
    action: drop
  - regex: k8s_(.*)
    action: labelmap
  - regex: k8s_.*|filename
    action: labeldrop
"#,
    )
    .unwrap();
    let (ingest, catalog) = new_ingest(&config);
    let body = snappy(&raw_push(&[
        (r#"{app="a", level="debug"}"#, &[(NOW, "dropped"), (NOW, "dropped too")]),
        (r#"{app="a", k8s_pod="p1", filename="/x.log"}"#, &[(NOW, "one")]),
        (r#"{app="a", k8s_pod="p1", filename="/y.log"}"#, &[(NOW + 1, "two")]),
        (r#"{app="a", k8s_pod="p1", filename="/y.log"}"#, &[(NOW + 9 * 3600 * SECOND, "late")]),
    ]));
    for round in 0..2 {
        let received = receive(&ingest, body.clone()).unwrap();
        assert_eq!(
            summary(&received.batch),
            owned(&[(r#"{app="a", pod="p1"}"#, &[(NOW, "one"), (NOW + 1, "two")])]),
            "round {round}"
        );
        // Entry messages name the stream as it was received.
        let message = received.rejection_message().unwrap();
        assert!(
            message.contains("stream '{app=\"a\", filename=\"/y.log\", k8s_pod=\"p1\"}'"),
            "{message}"
        );
    }
    let text = catalog.encode_text();
    for expected in [
        "strata_ingest_items_dropped_total{protocol=\"loki_push\",reason=\"relabel\"} 4",
        "strata_relabel_cache_misses_total{cache=\"loki_push\"} 3",
        "strata_relabel_cache_hits_total{cache=\"loki_push\"} 5",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn relabeling_to_an_invalid_label_name_rejects_the_stream() {
    let config: LokiIngestConfig =
        serde_yaml::from_str("relabel_configs: [{action: labelmap, regex: 'k8s_(.*)'}]").unwrap();
    let (ingest, _) = new_ingest(&config);
    let body = raw_push(&[
        (r#"{app="a", k8s_="p"}"#, &[(NOW, "x")]),
        (r#"{app="b", k8s_pod="p"}"#, &[(NOW, "y")]),
    ]);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert_eq!(
        summary(&received.batch),
        owned(&[(r#"{app="b", k8s_pod="p", pod="p"}"#, &[(NOW, "y")])])
    );
    assert_eq!(
        received.rejection_message().unwrap(),
        "1 entries rejected (1 accepted): stream '{app=\"a\", k8s_=\"p\"}': relabel_configs \
         produced the invalid label name \"\""
    );
}

#[test]
fn relabeling_to_no_labels_drops_the_stream() {
    let config: LokiIngestConfig =
        serde_yaml::from_str("relabel_configs: [{action: labeldrop, regex: '.*'}]").unwrap();
    let (ingest, _) = new_ingest(&config);
    let received = receive(&ingest, snappy(&raw_push(&[(r#"{a="1"}"#, &[(NOW, "x")])]))).unwrap();
    assert!(received.batch.is_empty());
    assert_eq!(received.rejection_message(), None, "not the client's fault: no 400");
}

#[test]
fn json_label_semantics_follow_lokis_map() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    let json = |stream: &str| {
        Bytes::from(format!(r#"{{"streams":[{{"stream":{stream},"values":[["{NOW}","l"]]}}]}}"#))
    };
    let accepted = |stream: &str| {
        let received = ingest.receive(&tenant(), JSON, None, json(stream), NOW).unwrap();
        (summary(&received.batch).into_iter().map(|s| s.0).collect::<Vec<_>>(), received)
    };
    let (selectors, _) = accepted(r#"{"b":"1","a":"x","a":"2","e":""}"#);
    assert_eq!(selectors, [r#"{a="2", b="1"}"#], "last duplicate wins, empty values dropped");
    let (selectors, received) = accepted(r#"{"app-name":"x"}"#);
    assert!(selectors.is_empty());
    let message = received.rejection_message().unwrap();
    assert!(
        message.contains(r#"error parsing labels '{app-name="x"}' with error: invalid label name"#),
        "{message}"
    );
    let (selectors, received) = accepted("{}");
    assert!(selectors.is_empty());
    assert!(received.rejection_message().unwrap().contains(validate::MISSING_LABELS));
}

#[test]
fn protobuf_selector_bytes_cannot_hit_a_json_verdict() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    let json = format!(r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{NOW}","l"]]}}]}}"#);
    assert!(!ingest
        .receive(&tenant(), JSON, None, Bytes::from(json), NOW)
        .unwrap()
        .batch
        .is_empty());
    // The same key bytes as a protobuf selector: not UTF-8, so refused.
    let mut body = Vec::new();
    let mut stream = Vec::new();
    put_bytes(&mut stream, 1, b"\xffa\xfeb\xff");
    let mut entry = Vec::new();
    put_bytes(&mut entry, 2, b"l");
    put_bytes(&mut stream, 2, &entry);
    put_bytes(&mut body, 1, &stream);
    let received = receive(&ingest, snappy(&body)).unwrap();
    assert!(received.batch.is_empty());
    assert!(received.rejection_message().unwrap().contains("not valid UTF-8"));
}

#[test]
fn pushes_without_streams_are_refused_and_empty_streams_skipped() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    for (content_type, body) in
        [(JSON, Bytes::from_static(br#"{"streams":[]}"#)), (PROTOBUF, snappy(&[]))]
    {
        let err = ingest.receive(&tenant(), content_type, None, body, NOW).unwrap_err();
        assert_eq!(err, IngestError::Invalid(NO_STREAMS.to_owned()));
    }
    let received = receive(&ingest, snappy(&raw_push(&[("not a selector", &[])]))).unwrap();
    assert!(received.batch.is_empty());
    assert_eq!(received.rejection_message(), None);
}

#[test]
fn caps_and_media_types() {
    let config = LokiIngestConfig {
        max_body_size: ByteSize::from_bytes(4096),
        max_decoded_size: ByteSize::from_bytes(8192),
        ..LokiIngestConfig::default()
    };
    let (ingest, _) = new_ingest(&config);
    let kind = |content_type, encoding, body| {
        ingest.receive(&tenant(), content_type, encoding, body, NOW).unwrap_err().kind()
    };
    assert_eq!(kind(PROTOBUF, None, Bytes::from(vec![0u8; 4097])), ErrorKind::TooLarge);
    let big = raw_push(&[(r#"{a="1"}"#, &[(NOW, &"x".repeat(10_000))])]);
    assert_eq!(kind(PROTOBUF, None, snappy(&big)), ErrorKind::TooLarge);
    assert_eq!(kind(PROTOBUF, Some("gzip"), gzip(&snappy(&big))), ErrorKind::TooLarge);
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert_eq!(kind(JSON, Some("gzip"), bomb), ErrorKind::TooLarge);
    assert_eq!(kind(Some("text/plain"), None, snappy(&big)), ErrorKind::UnsupportedMediaType);
    assert_eq!(kind(JSON, Some("snappy"), snappy(b"{}")), ErrorKind::UnsupportedMediaType);
    assert_eq!(kind(PROTOBUF, Some("zstd"), snappy(&big)), ErrorKind::UnsupportedMediaType);
    assert_eq!(kind(PROTOBUF, None, Bytes::from_static(b"\x01\x02")), ErrorKind::BadRequest);
    let err = ingest
        .receive(
            &tenant(),
            JSON,
            None,
            Bytes::from_static(br#"{"streams":[{"values":[[1]]}]}"#),
            NOW,
        )
        .unwrap_err();
    assert!(
        err.to_string().starts_with("cannot decode loki push json: stream 0, value 0:"),
        "{err}"
    );
}

/// Every prefix of a valid body, in every format, is an error (or, for an uncompressed
/// protobuf cut between streams, a shorter valid push), never a panic.
#[test]
fn every_truncated_body_is_an_error_never_a_panic() {
    let (ingest, _) = new_ingest(&LokiIngestConfig::default());
    let proto = raw_push(&[
        (r#"{app="a"}"#, &[(NOW, "one"), (NOW + 1, "two")]),
        (r#"{app="b"}"#, &[(NOW, "three")]),
    ]);
    let json = format!(r#"{{"streams":[{{"stream":{{"app":"a"}},"values":[["{NOW}","one"]]}}]}}"#);
    let bodies: [(Option<&str>, Option<&str>, Bytes); 4] = [
        (PROTOBUF, None, snappy(&proto)),
        (PROTOBUF, Some("gzip"), gzip(&snappy(&proto))),
        (JSON, None, Bytes::from(json.clone())),
        (JSON, Some("gzip"), gzip(json.as_bytes())),
    ];
    for (content_type, encoding, body) in bodies {
        assert!(ingest.receive(&tenant(), content_type, encoding, body.clone(), NOW).is_ok());
        for len in 0..body.len() {
            let result = ingest.receive(&tenant(), content_type, encoding, body.slice(..len), NOW);
            let err = result.expect_err("a truncated body must not decode");
            assert_ne!(err.kind(), ErrorKind::RateLimited, "{len}: {err}");
        }
    }
}

#[test]
fn the_receiver_is_shared_across_threads() {
    fn check<T: Send + Sync>() {}
    check::<LokiIngest>();
    check::<LokiReceived>();
    check::<IngestError>();
}
