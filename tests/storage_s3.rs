//! Blocks in a real S3-compatible server: moto's `moto_server` (PyPI `moto[server]`, pinned in
//! `tests/clients/requirements.txt`, installed into `.peers/venv` by `scripts/install-peers.sh`;
//! `STRATA_TEST_MOTO_SERVER` overrides the path). The bucket goes through `object_store`'s S3
//! client exactly as in production: a small block (single PUT), a block above the multipart
//! threshold (S3 multipart upload), listing, reading back, decoding, deleting; then the
//! `strata blocks list|verify` commands against the same `s3://` URL.
//!
//! Without moto_server the test is skipped with a printed reason, or fails when `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use common::{free_port, moto};
use strata::config::storage::TierObjects;
use strata::model::labels::Labels;
use strata::model::metrics::Sample;
use strata::storage::block::{
    decode_metrics, decode_traces, encode_metrics, encode_traces, EncodedBlock, DATA_FILE,
    SCHEMA_VERSION,
};
use strata::storage::bucket::{new_block_id, BlockFilter, Bucket, MULTIPART_THRESHOLD};
use strata::storage::{BlockMeta, SeriesSamples, SpanRecord, StoredSignal, Tier};

const BUCKET: &str = "strata-test";

fn meta(tenant: &str, signal: StoredSignal, block: &EncodedBlock) -> BlockMeta {
    BlockMeta {
        version: 1,
        block_id: new_block_id(),
        tenant: tenant.into(),
        signal,
        tier: Tier::Raw,
        schema_version: SCHEMA_VERSION,
        min_time_ms: block.min_time_ms,
        max_time_ms: block.max_time_ms,
        rows: block.rows,
        series: block.series,
        files: Vec::new(),
        created_ms: 1_709_294_400_000,
        compaction_level: 0,
        sources: Vec::new(),
    }
}

fn small_metrics() -> EncodedBlock {
    let series: Vec<SeriesSamples> = (0..20)
        .map(|i| SeriesSamples {
            labels: Labels::from_pairs([
                ("__name__", "up".to_owned()),
                ("instance", format!("h{i}")),
            ]),
            samples: (0..120)
                .map(|t| Sample { timestamp_ms: 1_709_294_400_000 + t * 15_000, value: 1.0 })
                .collect(),
            histograms: Vec::new(),
        })
        .collect();
    encode_metrics(&series).expect("encode metrics")
}

/// Spans with incompressible 4 KiB bodies, so the file is larger than the multipart threshold.
fn big_traces() -> (Vec<SpanRecord>, EncodedBlock) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let spans: Vec<SpanRecord> = (0..2_800u64)
        .map(|i| {
            let body: Vec<u8> = (0..512).flat_map(|_| random().to_le_bytes()).collect();
            SpanRecord {
                trace_id: u128::from(i / 7).to_be_bytes(),
                span_id: (i + 1).to_be_bytes(),
                parent_span_id: Vec::new(),
                name: "GET /".into(),
                kind: 2,
                start_unix_nano: 1_709_294_400_000_000_000 + i * 1_000_000,
                end_unix_nano: 1_709_294_400_000_000_000 + i * 1_000_000 + 500_000,
                status_code: 0,
                service_name: "api".into(),
                resource: Bytes::from_static(b"resource"),
                scope: Bytes::from_static(b"scope"),
                span: Bytes::from(body),
            }
        })
        .collect();
    let block = encode_traces(&spans).expect("encode traces");
    (spans, block)
}

fn run_strata(args: &[&str]) -> (bool, String, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_strata")).args(args).output().expect("run strata");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_s3_compatible_storage() {
    let Some(bin) = moto::moto_server() else { return };
    let port = free_port();
    let _moto = moto::start(&bin, port, BUCKET).await;
    let url = format!("s3://{BUCKET}/prefix");
    let options = moto::options(port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let client = common::http_client();
    let bucket =
        Bucket::from_config(&url, &options, std::path::Path::new("unused")).expect("bucket");

    // A small block (single PUT) with lifecycle tags and a storage class (accepted by the
    // server; moto answers unsigned HEADs of tagged objects with 403, so they are not read back).
    let small = small_metrics();
    let objects = TierObjects {
        storage_class: Some("STANDARD_IA".into()),
        tags: BTreeMap::from([("tier".to_owned(), "raw".to_owned())]),
    };
    let small_meta = bucket
        .put_block(
            meta("team-a", StoredSignal::Metrics, &small),
            vec![(DATA_FILE.into(), small.data.clone())],
            Some(&objects),
        )
        .await
        .expect("put small block");
    // A block above the multipart threshold.
    let (spans, big) = big_traces();
    assert!(big.data.len() > MULTIPART_THRESHOLD + 2 * 1024 * 1024, "{} bytes", big.data.len());
    let big_meta = bucket
        .put_block(
            meta("team-b", StoredSignal::Traces, &big),
            vec![(DATA_FILE.into(), big.data.clone())],
            None,
        )
        .await
        .expect("put big block");

    // The big object was assembled from parts: S3 ETags of multipart objects end in -<parts>.
    let big_key = bucket.file_key(&big_meta, DATA_FILE);
    let head = client
        .head(format!("{endpoint}/{BUCKET}/{big_key}"))
        .send()
        .await
        .expect("HEAD big object");
    let etag =
        head.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(etag.trim_matches('"').contains('-'), "not a multipart ETag: {etag:?}");
    let listed = bucket.list_blocks(&BlockFilter::default()).await.expect("list");
    assert_eq!(listed, vec![small_meta.clone(), big_meta.clone()]);
    assert_eq!(bucket.tenants().await.expect("tenants"), ["team-a", "team-b"]);
    let traces_only = BlockFilter { signal: Some(StoredSignal::Traces), ..BlockFilter::default() };
    assert_eq!(
        bucket.list_blocks(&traces_only).await.expect("list traces"),
        vec![big_meta.clone()]
    );

    let small_data = bucket.get_file(&small_meta, DATA_FILE).await.expect("get small");
    assert_eq!(decode_metrics(small_data).expect("decode metrics").len(), 20);
    let big_data = bucket.get_file(&big_meta, DATA_FILE).await.expect("get big");
    assert_eq!(big_data, big.data);
    assert_eq!(decode_traces(big_data).expect("decode traces").len(), spans.len());

    // The command line against the same bucket.
    let mut common_args: Vec<String> = vec!["--bucket".into(), url.clone()];
    for (key, value) in &options {
        common_args.push("--bucket-option".into());
        common_args.push(format!("{key}={value}"));
    }
    let with = |command: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["blocks".into()];
        args.extend(command.iter().map(|s| s.to_string()));
        args.extend(common_args.iter().cloned());
        args
    };
    let run = |command: &[&str]| {
        let args = with(command);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_strata(&refs)
    };
    let (ok, stdout, stderr) = run(&["list"]);
    assert!(ok, "blocks list failed: {stderr}");
    assert!(
        stdout.contains(&small_meta.block_id) && stdout.contains(&big_meta.block_id),
        "{stdout}"
    );
    assert!(stdout.contains("total raw: 2 blocks"), "{stdout}");
    let (ok, stdout, stderr) = run(&["verify"]);
    assert!(ok, "blocks verify failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("2 blocks verified, 0 bad"), "{stdout}");
    let (ok, stdout, stderr) = run(&["inspect", &big_meta.block_id, "--output", "json"]);
    assert!(ok, "blocks inspect failed: {stderr}");
    let inspected: serde_json::Value = serde_json::from_str(&stdout).expect("inspect json");
    assert_eq!(inspected["meta"]["block_id"], big_meta.block_id.as_str());
    assert_eq!(inspected["files"][0]["parquet"]["signal"], "traces");

    bucket.delete_block(&big_meta).await.expect("delete");
    assert_eq!(bucket.list_blocks(&BlockFilter::default()).await.expect("list"), vec![small_meta]);
    assert!(bucket.get_file(&big_meta, DATA_FILE).await.is_err(), "data deleted too");
    let (ok, stdout, _) = run(&["verify", "--tenant", "team-a"]);
    assert!(ok && stdout.contains("1 blocks verified, 0 bad"), "{stdout}");
}
