//! The bucket against two backends, the same checks for both (object_store's own conformance
//! style): a local directory in a tempdir and `InMemory`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::cli::{self, BlocksCommand, Output};
use super::*;
use crate::model::labels::Labels;
use crate::model::metrics::Sample;
use crate::storage::block::{decode_metrics, encode_metrics, DATA_FILE, SCHEMA_VERSION};
use crate::storage::SeriesSamples;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn block(tenant: &str, signal: StoredSignal, tier: Tier, min_time_ms: i64) -> BlockMeta {
    BlockMeta {
        version: 1,
        block_id: new_block_id(),
        tenant: tenant.into(),
        signal,
        tier,
        schema_version: SCHEMA_VERSION,
        min_time_ms,
        max_time_ms: min_time_ms + 1000,
        rows: 0,
        series: 0,
        files: Vec::new(),
        created_ms: 0,
        compaction_level: 0,
        sources: Vec::new(),
    }
}

/// A real metrics block: meta filled from the encoded file.
fn metrics_block(tenant: &str, start_ms: i64) -> (BlockMeta, Bytes) {
    let series = vec![SeriesSamples {
        labels: Labels::from_pairs([("__name__", "up"), ("job", tenant)]),
        samples: (0..10)
            .map(|i| Sample { timestamp_ms: start_ms + i * 15_000, value: 1.0 })
            .collect(),
        histograms: Vec::new(),
    }];
    let encoded = encode_metrics(&series).unwrap();
    let mut meta = block(tenant, StoredSignal::Metrics, Tier::Raw, encoded.min_time_ms);
    meta.max_time_ms = encoded.max_time_ms;
    meta.rows = encoded.rows;
    meta.series = encoded.series;
    (meta, encoded.data)
}

async fn conformance(bucket: &Bucket) {
    // 2024-03-01 and 2024-03-02 (UTC).
    let (a, a_data) = metrics_block("team-a", 1_709_294_400_000);
    let (b, b_data) = metrics_block("team-b", 1_709_380_800_000);
    let stored_a =
        bucket.put_block(a.clone(), vec![(DATA_FILE.into(), a_data.clone())], None).await.unwrap();
    assert_eq!(
        stored_a.files,
        vec![BlockFile { name: DATA_FILE.into(), size: a_data.len() as u64 }]
    );
    let key = bucket.meta_key(&stored_a).to_string();
    assert!(
        key.ends_with(&format!("team-a/metrics/raw/2024-03-01/{}/meta.json", a.block_id)),
        "{key}"
    );
    let objects = TierObjects {
        storage_class: Some("STANDARD_IA".into()),
        tags: BTreeMap::from([("tier".into(), "raw".into())]),
    };
    let stored_b = bucket
        .put_block(b.clone(), vec![(DATA_FILE.into(), b_data)], Some(&objects))
        .await
        .unwrap();

    let all = bucket.list_blocks(&BlockFilter::default()).await.unwrap();
    assert_eq!(all, vec![stored_a.clone(), stored_b.clone()]);
    let only_b = BlockFilter { tenant: Some("team-b".into()), ..BlockFilter::default() };
    assert_eq!(bucket.list_blocks(&only_b).await.unwrap(), vec![stored_b.clone()]);
    let logs = BlockFilter { signal: Some(StoredSignal::Logs), ..BlockFilter::default() };
    assert!(bucket.list_blocks(&logs).await.unwrap().is_empty());
    let raw_a = BlockFilter {
        tenant: Some("team-a".into()),
        signal: Some(StoredSignal::Metrics),
        tier: Some(Tier::Raw),
    };
    assert_eq!(bucket.list_blocks(&raw_a).await.unwrap(), vec![stored_a.clone()]);
    assert_eq!(bucket.tenants().await.unwrap(), vec!["team-a".to_owned(), "team-b".to_owned()]);

    let data = bucket.get_file(&stored_a, DATA_FILE).await.unwrap();
    assert_eq!(data, a_data);
    assert_eq!(decode_metrics(data).unwrap()[0].samples.len(), 10);

    bucket.delete_block(&stored_a).await.unwrap();
    assert_eq!(bucket.list_blocks(&BlockFilter::default()).await.unwrap(), vec![stored_b.clone()]);
    assert!(bucket.get_file(&stored_a, DATA_FILE).await.is_err());
    // Deleting again is not an error.
    bucket.delete_block(&stored_a).await.unwrap();
}

#[test]
fn local_directory_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blocks");
    let bucket = Bucket::from_config("", &BTreeMap::new(), &root).unwrap();
    assert!(root.is_dir());
    runtime().block_on(conformance(&bucket));
    // A plain path and a file:// URL open the same directory.
    let by_path =
        Bucket::from_config(root.to_str().unwrap(), &BTreeMap::new(), dir.path()).unwrap();
    let url = format!("file://{}", root.display());
    let by_url = Bucket::from_config(&url, &BTreeMap::new(), dir.path()).unwrap();
    runtime().block_on(async {
        assert_eq!(by_path.list_blocks(&BlockFilter::default()).await.unwrap().len(), 1);
        assert_eq!(by_url.list_blocks(&BlockFilter::default()).await.unwrap().len(), 1);
    });
}

#[test]
fn in_memory_bucket_with_prefix() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let bucket = Bucket::new(store.clone(), Path::from("some/prefix"), true);
    runtime().block_on(async {
        conformance(&bucket).await;
        // Everything lives under the prefix.
        let keys: Vec<String> = futures_util::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.location.to_string())
            .collect();
        assert!(!keys.is_empty() && keys.iter().all(|k| k.starts_with("some/prefix/")), "{keys:?}");
    });
}

#[test]
fn multipart_upload_above_threshold_round_trips() {
    let bucket = Bucket::new(Arc::new(InMemory::new()), Path::default(), true);
    let big: Bytes =
        (0..MULTIPART_THRESHOLD + 3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let meta = block("t", StoredSignal::Logs, Tier::Raw, 0);
    runtime().block_on(async {
        let stored =
            bucket.put_block(meta, vec![("data.parquet".into(), big.clone())], None).await.unwrap();
        assert_eq!(bucket.get_file(&stored, "data.parquet").await.unwrap(), big);
    });
}

#[test]
fn blocks_without_meta_json_are_invisible() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let bucket = Bucket::new(store.clone(), Path::default(), true);
    let meta = block("t", StoredSignal::Metrics, Tier::Raw, 0);
    runtime().block_on(async {
        // A data file whose upload never got its meta.json (a crash between the two).
        let orphan = bucket.file_key(&meta, DATA_FILE);
        store.put(&orphan, PutPayload::from_static(b"partial")).await.unwrap();
        assert!(bucket.list_blocks(&BlockFilter::default()).await.unwrap().is_empty());
    });
}

#[test]
fn bad_input_is_refused() {
    let bucket = Bucket::new(Arc::new(InMemory::new()), Path::default(), true);
    runtime().block_on(async {
        let bad_tenant = block("a/b", StoredSignal::Metrics, Tier::Raw, 0);
        let err = bucket.put_block(bad_tenant, vec![("x".into(), Bytes::new())], None).await;
        assert!(err.unwrap_err().to_string().contains("tenant \"a/b\""));
        let mut bad_id = block("a", StoredSignal::Metrics, Tier::Raw, 0);
        bad_id.block_id = "nope".into();
        assert!(bucket.put_block(bad_id, vec![("x".into(), Bytes::new())], None).await.is_err());
        let no_files = block("a", StoredSignal::Metrics, Tier::Raw, 0);
        assert!(bucket.put_block(no_files, Vec::new(), None).await.is_err());
    });
    assert!(Bucket::from_config("s3://", &BTreeMap::new(), std::path::Path::new(".")).is_err());
    let unknown = BTreeMap::from([("no_such_option".to_owned(), "1".to_owned())]);
    assert!(Bucket::from_config("s3://b/p", &unknown, std::path::Path::new(".")).is_err());
}

#[test]
fn block_ids_sort_by_time_and_differ() {
    let first = new_block_id();
    let second = new_block_id();
    assert_eq!(first.len(), 28);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(first, second);
    assert!(first[..12] <= second[..12]);
    assert!(validate_block_id(&first).is_ok());
}

#[test]
fn verify_names_each_bad_block() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::local(dir.path()).unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let run = |command: BlocksCommand, output: Output| {
        let mut out = Vec::new();
        let good =
            cli::run(&command, &url, &BTreeMap::new(), &BlockFilter::default(), output, &mut out)
                .unwrap();
        (good, String::from_utf8(out).unwrap())
    };
    let (good_meta, good_data) = metrics_block("good", 1_709_294_400_000);
    let (lying_meta, lying_data) = metrics_block("lying", 1_709_294_400_000);
    let (truncated_meta, truncated_data) = metrics_block("truncated", 1_709_294_400_000);
    let (good_id, lying_id, truncated_id) =
        (good_meta.block_id.clone(), lying_meta.block_id.clone(), truncated_meta.block_id.clone());
    runtime().block_on(async {
        bucket.put_block(good_meta, vec![(DATA_FILE.into(), good_data)], None).await.unwrap();
        let mut lying = lying_meta;
        lying.rows += 1;
        bucket.put_block(lying, vec![(DATA_FILE.into(), lying_data)], None).await.unwrap();
        let stored = bucket
            .put_block(truncated_meta, vec![(DATA_FILE.into(), truncated_data.clone())], None)
            .await
            .unwrap();
        // Overwrite the data with a shorter, broken copy.
        let key = bucket.file_key(&stored, DATA_FILE);
        let cut = truncated_data.slice(..truncated_data.len() / 2);
        bucket.store.put(&key, PutPayload::from(cut)).await.unwrap();
    });

    let (good, text) = run(BlocksCommand::Verify, Output::Text);
    assert!(!good, "{text}");
    assert!(text.contains(&format!("ok   {good_id}")), "{text}");
    assert!(
        text.contains(&format!("BAD  {lying_id}")) && text.contains("rows: data has 10"),
        "{text}"
    );
    assert!(text.contains(&format!("BAD  {truncated_id}")) && text.contains("size"), "{text}");
    assert!(text.contains("3 blocks verified, 2 bad"), "{text}");

    let (_, json) = run(BlocksCommand::Verify, Output::Json);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["bad"], 2);

    let (listed, text) = run(BlocksCommand::List, Output::Text);
    assert!(listed);
    assert!(text.contains("tier raw") && text.contains("total raw: 3 blocks, 31 rows"), "{text}");
    assert!(text.contains("2024-03-01T12:00:00.000Z"), "{text}");

    let (_, text) = run(BlocksCommand::Inspect { block_id: good_id.clone() }, Output::Text);
    assert!(text.contains("strata.schema_version = 1"), "{text}");
    assert!(text.contains("metric_name") && text.contains("bloom=yes"), "{text}");
    let (_, json) = run(BlocksCommand::Inspect { block_id: good_id }, Output::Json);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["files"][0]["parquet"]["signal"], "metrics");
}
