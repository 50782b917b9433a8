//! The store: the head that ingest appends to, and the path from a full head to blocks in the
//! object store (`DESIGN.md` §5; Prometheus' head compaction and Thanos' shipper are the
//! models).
//!
//! ```text
//! append ─► generation (Head + the ack of its first WAL record)
//! cut (every head.block_duration, aligned to the clock; or POST /api/v1/admin/storage/flush)
//!   ─► frozen generation ─► per tenant × signal × time window: Parquet on the CPU pool
//!   ─► spool/<block>/ (local, fsynced) ─► head.json: flushed_until = WAL end at the cut
//!   ─► drop the generation's ack (the WAL can be checkpointed past it)
//!   ─► upload (data files, meta.json last) ─► remove from the spool
//! ```
//!
//! Invariants:
//! * Data leaves the WAL's protection only once it is in the spool on local disk: a crash at
//!   any point either replays the records into the head again or finds the block in the spool
//!   (and `head.json` says replay starts after it, so nothing is counted twice).
//! * The object store being unreachable only delays uploads: spooled blocks are retried every
//!   few seconds, in order, and the frozen head stays queryable until its blocks are visible.
//! * The cut happens under the WAL gate's exclusive side, so every record is in exactly one
//!   generation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::block::{self, EncodedBlock};
use super::bucket::{new_block_id, Bucket};
use super::durable::Durable;
use super::head::Head;
use super::positions::{Ack, Tracker};
use super::wal::Position;
use super::{
    now_ms, stopped, BlockMeta, LogStreamData, SeriesSamples, SpanRecord, StoredSignal, Tier,
};
use crate::config::StorageConfig;
use crate::model::{LogBatch, MetricBatch, TraceBatch};
use crate::telemetry::StorageMetrics;

/// The WAL consumer name of the head.
pub const CONSUMER: &str = "storage/head";
const DATA_FILE: &str = "data.parquet";

/// A store failure (spool, encoding, upload).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("spool {path}: {source}")]
    Spool { path: PathBuf, source: std::io::Error },
    #[error("encoding {signal} block for tenant {tenant:?}: {detail}")]
    Encode { tenant: String, signal: &'static str, detail: String },
    #[error("uploading block {block_id}: {detail}")]
    Upload { block_id: String, detail: String },
}

fn spool_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Spool { path: path.to_owned(), source }
}

/// One head and the WAL record that opened it.
#[derive(Debug, Default)]
pub struct Generation {
    pub head: Head,
    first: Mutex<Option<Ack>>,
}

/// `head.json`: where replay into the head starts (after the last spooled generation).
#[derive(Serialize, Deserialize)]
struct HeadFile {
    version: u32,
    flushed_until: [u64; 2],
}

/// What a cut produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    pub blocks: usize,
    pub rows: u64,
}

/// The head and block writer of a data directory.
pub struct Store {
    current: RwLock<Arc<Generation>>,
    /// Generations cut but not yet visible in the bucket (still served by queries).
    frozen: Mutex<Vec<Arc<Generation>>>,
    tracker: Arc<Tracker>,
    resume: Position,
    dir: PathBuf,
    bucket: Arc<Bucket>,
    config: StorageConfig,
    /// Tenant of metric series (remote-write carries none).
    metrics_tenant: String,
    flush_lock: tokio::sync::Mutex<()>,
    /// Wakes the upload loop (after a cut); uploads run only there, one at a time.
    upload_now: tokio::sync::Notify,
    metrics: StorageMetrics,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens the store of `config.path`: registers the head as a WAL consumer and reads where
    /// replay into the head starts.
    pub fn open(
        config: &StorageConfig,
        durable: &Durable,
        bucket: Arc<Bucket>,
        metrics_tenant: &str,
        metrics: StorageMetrics,
    ) -> Result<Self, StoreError> {
        let dir = PathBuf::from(&config.path);
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).map_err(spool_error(&spool))?;
        for entry in std::fs::read_dir(&spool).map_err(spool_error(&spool))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                // An interrupted spool write: its generation is still in the WAL.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let (tracker, saved) = durable.consumer(CONSUMER, true);
        let head_file = dir.join("head.json");
        let flushed = match std::fs::read(&head_file) {
            Ok(bytes) => serde_json::from_slice::<HeadFile>(&bytes)
                .map(|f| Position { segment: f.flushed_until[0], offset: f.flushed_until[1] })
                .ok(),
            Err(_) => None,
        };
        let resume = flushed.map_or(saved, |flushed| flushed.max(saved));
        Ok(Self {
            current: RwLock::new(Arc::new(Generation::default())),
            frozen: Mutex::new(Vec::new()),
            tracker,
            resume,
            dir,
            bucket,
            config: config.clone(),
            metrics_tenant: metrics_tenant.to_owned(),
            flush_lock: tokio::sync::Mutex::new(()),
            upload_now: tokio::sync::Notify::new(),
            metrics,
        })
    }

    /// Where WAL replay into the head starts.
    pub fn resume(&self) -> Position {
        self.resume
    }

    /// The tenant metric series are stored under.
    pub fn metrics_tenant(&self) -> &str {
        &self.metrics_tenant
    }

    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }

    /// The generation being appended to and those cut but not yet uploaded, newest first.
    pub fn generations(&self) -> Vec<Arc<Generation>> {
        let mut all = vec![self.current.read().expect("head lock").clone()];
        all.extend(self.frozen.lock().expect("frozen lock").iter().rev().cloned());
        all
    }

    fn generation(&self, position: Position) -> Arc<Generation> {
        let generation = self.current.read().expect("head lock").clone();
        let mut first = generation.first.lock().expect("ack lock");
        if first.is_none() {
            *first = Some(self.tracker.register(position));
        }
        drop(first);
        generation
    }

    /// Appends a routed batch (call under the WAL gate, with its record's position).
    pub fn append_metrics(&self, batch: &MetricBatch, position: Position) {
        let stats = self.generation(position).head.metrics.append(batch);
        self.metrics.head_items[0].inc_by((stats.samples + stats.histograms) as i64);
    }

    pub fn append_logs(&self, batch: &LogBatch, position: Position) {
        let appended = self.generation(position).head.logs.append(batch);
        self.metrics.head_items[1].inc_by(appended as i64);
    }

    pub fn append_traces(&self, batch: &TraceBatch, position: Position) {
        match self.generation(position).head.traces.append(batch) {
            Ok(appended) => {
                self.metrics.head_items[2].inc_by(appended as i64);
            }
            // Spans were validated at ingest; a decode failure here is a bug, never silent.
            Err(err) => tracing::error!(error = %err, "trace batch did not decode into the head"),
        }
    }

    /// Cuts the head: a fresh generation takes appends, the old one is written to blocks and
    /// spooled; the upload loop ([`Store::run`]) is woken to upload them. `durable` provides
    /// the exclusive gate.
    pub async fn flush(&self, durable: &Durable) -> Result<FlushReport, StoreError> {
        let _one_at_a_time = self.flush_lock.lock().await;
        let (old, wal_end) = {
            let _exclusive = durable.gate_exclusive().await;
            let mut current = self.current.write().expect("head lock");
            let old = std::mem::replace(&mut *current, Arc::new(Generation::default()));
            (old, durable.end())
        };
        self.frozen.lock().expect("frozen lock").push(old.clone());
        for gauge in &self.metrics.head_items {
            gauge.set(0);
        }
        let encode_from = old.clone();
        let tenant = self.metrics_tenant.clone();
        let block_ms = self.config.head.block_duration.get().as_millis() as i64;
        let blocks = tokio::task::spawn_blocking(move || {
            encode_generation(&encode_from.head, &tenant, block_ms)
        })
        .await
        .map_err(|e| StoreError::Encode {
            tenant: String::new(),
            signal: "all",
            detail: e.to_string(),
        })??;
        let mut report = FlushReport::default();
        for (meta, encoded) in &blocks {
            report.blocks += 1;
            report.rows += meta.rows;
            self.spool_block(meta, encoded)?;
        }
        self.write_head_file(wal_end)?;
        // The data is on local disk now: the WAL may be checkpointed past this generation.
        old.first.lock().expect("ack lock").take();
        self.metrics.spool_blocks.set(self.spooled()?.len() as i64);
        self.upload_now.notify_one();
        Ok(report)
    }

    fn spool_block(&self, meta: &BlockMeta, encoded: &EncodedBlock) -> Result<(), StoreError> {
        let spool = self.dir.join("spool");
        let staging = spool.join(format!(".{}", meta.block_id));
        let done = spool.join(&meta.block_id);
        std::fs::create_dir_all(&staging).map_err(spool_error(&staging))?;
        write_synced(&staging.join(DATA_FILE), &encoded.data)?;
        let meta_json = serde_json::to_vec_pretty(meta).expect("meta serializes");
        write_synced(&staging.join("meta.json"), &meta_json)?;
        std::fs::rename(&staging, &done).map_err(spool_error(&done))?;
        sync_dir(&spool)
    }

    fn write_head_file(&self, flushed_until: Position) -> Result<(), StoreError> {
        let file =
            HeadFile { version: 1, flushed_until: [flushed_until.segment, flushed_until.offset] };
        let path = self.dir.join("head.json");
        let temporary = self.dir.join("head.json.tmp");
        write_synced(&temporary, &serde_json::to_vec(&file).expect("serializes"))?;
        std::fs::rename(&temporary, &path).map_err(spool_error(&path))?;
        sync_dir(&self.dir)
    }

    /// Blocks waiting in the spool.
    pub fn spool_len(&self) -> usize {
        self.spooled().map(|s| s.len()).unwrap_or(0)
    }

    /// Spooled block directories, oldest first.
    fn spooled(&self) -> Result<Vec<PathBuf>, StoreError> {
        let spool = self.dir.join("spool");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&spool).map_err(spool_error(&spool))? {
            let entry = entry.map_err(spool_error(&spool))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            found.push(entry.path());
        }
        found.sort();
        Ok(found)
    }

    /// Uploads every spooled block; returns how many are left (failures are retried later).
    pub async fn upload_spool(&self) -> usize {
        let entries = match self.spooled() {
            Ok(entries) => entries,
            Err(err) => {
                tracing::error!(error = %err, "cannot list the spool");
                return usize::MAX;
            }
        };
        let mut left = 0;
        for entry in entries {
            if let Err(err) = self.upload_one(&entry).await {
                self.metrics.upload_failures.inc();
                tracing::warn!(error = %err, "block upload failed; kept in the spool for retry");
                left += 1;
            }
        }
        self.metrics.spool_blocks.set(left as i64);
        if left == 0 {
            // Everything cut so far is visible in the bucket.
            self.frozen.lock().expect("frozen lock").clear();
        }
        left
    }

    async fn upload_one(&self, entry: &Path) -> Result<(), StoreError> {
        let read = |name: &str| -> Result<Vec<u8>, StoreError> {
            let path = entry.join(name);
            std::fs::read(&path).map_err(spool_error(&path))
        };
        let meta: BlockMeta = serde_json::from_slice(&read("meta.json")?).map_err(|e| {
            StoreError::Spool { path: entry.join("meta.json"), source: std::io::Error::other(e) }
        })?;
        let data = Bytes::from(read(DATA_FILE)?);
        let size = data.len() as u64;
        let tier_objects = self.config.tier_objects.get(meta.tier.as_str());
        let uploaded = self
            .bucket
            .put_block(meta.clone(), vec![(DATA_FILE.to_owned(), data)], tier_objects)
            .await
            .map_err(|e| StoreError::Upload {
                block_id: meta.block_id.clone(),
                detail: e.to_string(),
            })?;
        self.metrics.block_written(uploaded.signal.as_str(), uploaded.tier.as_str());
        self.metrics.block_bytes_written[uploaded.signal.index()].inc_by(size);
        std::fs::remove_dir_all(entry).map_err(spool_error(entry))?;
        Ok(())
    }

    /// Cuts the head at every multiple of `head.block_duration` (wall clock) and uploads what
    /// is spooled — after each cut, and every few seconds while anything is left — until
    /// `stop`. An unreachable store only delays uploads (object_store retries each request
    /// with backoff too).
    pub async fn run(
        self: Arc<Self>,
        durable: Arc<Durable>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let block = self.config.head.block_duration.get();
        let mut retry = tokio::time::interval(Duration::from_secs(5));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_cut = until_next_multiple(block);
            tokio::select! {
                () = tokio::time::sleep(next_cut) => {
                    match self.flush(&durable).await {
                        Ok(report) => tracing::info!(blocks = report.blocks, rows = report.rows, "head cut into blocks"),
                        Err(err) => tracing::error!(error = %err, "head cut failed; its data stays in the WAL"),
                    }
                }
                _ = retry.tick() => {
                    self.upload_spool().await;
                    let stats = self.current.read().expect("head lock").head.stats();
                    self.metrics.head_series[0].set(stats.metrics.series as i64);
                    self.metrics.head_series[1].set(stats.logs.streams as i64);
                    self.metrics.head_series[2].set(stats.traces.traces as i64);
                }
                () = self.upload_now.notified() => {
                    self.upload_spool().await;
                }
                () = stopped(&mut stop) => break,
            }
        }
    }
}

fn until_next_multiple(period: Duration) -> Duration {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let period_ms = period.as_millis().max(1);
    let into = now.as_millis() % period_ms;
    Duration::from_millis((period_ms - into) as u64)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(spool_error(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(spool_error(path))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(spool_error(dir))
}

/// Start of the `block_ms` window holding `timestamp_ms`.
fn window_of(timestamp_ms: i64, block_ms: i64) -> i64 {
    timestamp_ms.div_euclid(block_ms) * block_ms
}

fn meta_for(
    tenant: &str,
    signal: StoredSignal,
    encoded: &EncodedBlock,
    schema_version: u32,
) -> BlockMeta {
    BlockMeta {
        version: 1,
        block_id: new_block_id(),
        tenant: tenant.to_owned(),
        signal,
        tier: Tier::Raw,
        schema_version,
        min_time_ms: encoded.min_time_ms,
        max_time_ms: encoded.max_time_ms,
        rows: encoded.rows,
        series: encoded.series,
        files: Vec::new(),
        created_ms: now_ms(),
        compaction_level: 0,
        sources: Vec::new(),
    }
}

/// Encodes a frozen head: one block per tenant, signal and time window.
fn encode_generation(
    head: &Head,
    metrics_tenant: &str,
    block_ms: i64,
) -> Result<Vec<(BlockMeta, EncodedBlock)>, StoreError> {
    let mut blocks = Vec::new();
    let encode_error = |tenant: &str, signal: &'static str| {
        let tenant = tenant.to_owned();
        move |e: block::BlockError| StoreError::Encode { tenant, signal, detail: e.to_string() }
    };
    for series in split_series(head.metrics.all_series(), block_ms).into_values() {
        let encoded =
            block::encode_metrics(&series).map_err(encode_error(metrics_tenant, "metrics"))?;
        if encoded.rows > 0 {
            let meta =
                meta_for(metrics_tenant, StoredSignal::Metrics, &encoded, block::SCHEMA_VERSION);
            blocks.push((meta, encoded));
        }
    }
    for tenant in head.logs.tenants() {
        for streams in split_streams(head.logs.all_streams(&tenant), block_ms).into_values() {
            let encoded = block::encode_logs(&streams).map_err(encode_error(&tenant, "logs"))?;
            blocks.push((
                meta_for(&tenant, StoredSignal::Logs, &encoded, block::SCHEMA_VERSION),
                encoded,
            ));
        }
    }
    for tenant in head.traces.tenants() {
        for spans in split_spans(head.traces.all_spans(&tenant), block_ms).into_values() {
            let encoded = block::encode_traces(&spans).map_err(encode_error(&tenant, "traces"))?;
            blocks.push((
                meta_for(&tenant, StoredSignal::Traces, &encoded, block::SCHEMA_VERSION),
                encoded,
            ));
        }
    }
    Ok(blocks)
}

/// Splits series data by time window; each window keeps series order.
fn split_series(all: Vec<SeriesSamples>, block_ms: i64) -> BTreeMap<i64, Vec<SeriesSamples>> {
    let mut windows: BTreeMap<i64, Vec<SeriesSamples>> = BTreeMap::new();
    for series in all {
        let mut parts: BTreeMap<i64, SeriesSamples> = BTreeMap::new();
        for sample in &series.samples {
            parts
                .entry(window_of(sample.timestamp_ms, block_ms))
                .or_insert_with(|| SeriesSamples {
                    labels: series.labels.clone(),
                    ..SeriesSamples::default()
                })
                .samples
                .push(*sample);
        }
        for histogram in &series.histograms {
            parts
                .entry(window_of(histogram.timestamp, block_ms))
                .or_insert_with(|| SeriesSamples {
                    labels: series.labels.clone(),
                    ..SeriesSamples::default()
                })
                .histograms
                .push(histogram.clone());
        }
        for (window, part) in parts {
            windows.entry(window).or_default().push(part);
        }
    }
    windows
}

fn split_streams(all: Vec<LogStreamData>, block_ms: i64) -> BTreeMap<i64, Vec<LogStreamData>> {
    let mut windows: BTreeMap<i64, Vec<LogStreamData>> = BTreeMap::new();
    for stream in all {
        let mut parts: BTreeMap<i64, LogStreamData> = BTreeMap::new();
        for entry in stream.entries {
            let window = window_of(entry.timestamp_ns.div_euclid(1_000_000), block_ms);
            parts
                .entry(window)
                .or_insert_with(|| LogStreamData {
                    labels: stream.labels.clone(),
                    entries: Vec::new(),
                })
                .entries
                .push(entry);
        }
        for (window, part) in parts {
            windows.entry(window).or_default().push(part);
        }
    }
    windows
}

fn split_spans(all: Vec<SpanRecord>, block_ms: i64) -> BTreeMap<i64, Vec<SpanRecord>> {
    let mut windows: BTreeMap<i64, Vec<SpanRecord>> = BTreeMap::new();
    for span in all {
        let window = window_of((span.start_unix_nano / 1_000_000) as i64, block_ms);
        windows.entry(window).or_default().push(span);
    }
    windows
}
