//! The only place that knows which role wires what (`DESIGN.md` §1).
//!
//! | role | wiring in this build |
//! |---|---|
//! | `all-in-one` | remote-write, Loki push, OTLP (traces, metrics, logs) and Zipkin ingest → relabel → route → WAL → head (cut into blocks in the local or configured bucket, compacted) and every configured forward target of the signal |
//! | `agent` | the same without head and blocks: the WAL is the disk buffer of the forward targets; an agent without forward targets is a config error (it would drop data) |
//! | `aggregator` | like `all-in-one` (pushes from agents in; Kafka comes with its issue) |

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, ConfigErrors, Role};
use crate::ingest::loki::LokiIngest;
use crate::ingest::otlp::grpc::TranslateMetrics;
use crate::ingest::otlp::{metrics as otlp_metrics, OtlpIngest, ResourceRelabeler};
use crate::ingest::remote_write::RemoteWriteIngest;
use crate::ingest::zipkin::ZipkinIngest;
use crate::model::Tenant;
use crate::route::{Durability, Resume};
use crate::route::{Router, Targets};
use crate::sinks::queue::Workers;
use crate::sinks::{loki, otlp, remote_write, ForwardTarget};
use crate::storage::bucket::Bucket;
use crate::storage::durable::Durable;
use crate::storage::store::Store;
use crate::telemetry::Catalog;

/// A wired pipeline: the stages the server calls and the background workers to drain.
pub struct Pipeline {
    pub remote_write: Arc<RemoteWriteIngest>,
    pub loki: Arc<LokiIngest>,
    pub otlp: Arc<OtlpIngest>,
    pub zipkin: Arc<ZipkinIngest>,
    /// OTLP metrics → validated, relabeled series, for the HTTP and the gRPC receiver.
    pub translate_http: TranslateMetrics,
    pub translate_grpc: TranslateMetrics,
    pub default_tenant: Tenant,
    pub route: Arc<Router>,
    pub workers: Vec<Workers>,
    /// Set to true when the shutdown deadline passes: sinks stop retrying and drop the rest.
    pub abort: watch::Sender<bool>,
    /// The WAL (every role) and the store (roles that keep data).
    pub durable: Arc<Durable>,
    pub store: Option<Arc<Store>>,
}

/// Builds the pipeline for `config` (already validated) on the current runtime.
pub fn build(config: &Config, catalog: &Catalog) -> Result<Pipeline, ConfigErrors> {
    let fail = |path: String, message: String| ConfigErrors {
        source: "config".into(),
        errors: vec![ConfigError { path, message }],
    };
    let forward = &config.forward;
    if config.role == Role::Agent
        && forward.remote_write.is_empty()
        && forward.loki.is_empty()
        && forward.otlp.is_empty()
    {
        return Err(fail(
            "forward".into(),
            "an agent needs at least one forward target (remote_write, loki or otlp)".into(),
        ));
    }
    let ingest_config = &config.ingest.remote_write;
    let remote_write =
        Arc::new(RemoteWriteIngest::new(ingest_config, catalog).map_err(|e| {
            fail("ingest.remote_write.metric_relabel_configs".into(), e.to_string())
        })?);
    let loki = LokiIngest::new(&config.ingest.loki, catalog)
        .map_err(|e| fail("ingest.loki.relabel_configs".into(), e.to_string()))?;
    let otlp = OtlpIngest::new(&config.ingest.otlp, &config.ingest.default_tenant, catalog)
        .map_err(|e| fail("ingest.otlp.resource_relabel_configs".into(), e.to_string()))?;
    let translate_http = translate_metrics(&remote_write, config, otlp.http_metrics().clone());
    let translate_grpc = translate_metrics(&remote_write, config, otlp.grpc_metrics().clone());
    let (abort, abort_rx) = watch::channel(false);
    let mut targets = Targets::default();
    let mut workers = Vec::new();
    for (index, target_config) in config.forward.remote_write.iter().enumerate() {
        let name = target_config.display_name(index);
        let (target, target_workers) = remote_write::Target::start(
            target_config,
            name,
            ingest_config.label_name_validation,
            ingest_config.relabel_cache_size as usize,
            catalog,
            &abort_rx,
        )
        .map_err(|e| {
            fail(format!("forward.remote_write[{index}].write_relabel_configs"), e.to_string())
        })?;
        targets.metrics.push(target);
        workers.push(target_workers);
    }
    for (index, target_config) in config.forward.loki.iter().enumerate() {
        let (target, target_workers) = loki::Target::start(
            target_config,
            target_config.display_name(index),
            config.ingest.loki.relabel_cache_size as usize,
            catalog,
            &abort_rx,
        )
        .map_err(|e| fail(format!("forward.loki[{index}].relabel_configs"), e.to_string()))?;
        targets.logs.push(target);
        workers.push(target_workers);
    }
    for (index, target_config) in config.forward.otlp.iter().enumerate() {
        let name = target_config.display_name(index);
        let rewrite = if target_config.resource_relabel_configs.is_empty() {
            None
        } else {
            let relabeler = ResourceRelabeler::new(
                &target_config.resource_relabel_configs,
                config.ingest.otlp.relabel_cache_size as usize,
                catalog,
                &format!("forward:{name}"),
            )
            .map_err(|e| {
                fail(format!("forward.otlp[{index}].resource_relabel_configs"), e.to_string())
            })?;
            let rewrite: otlp::ResourceRewrite =
                Box::new(move |resource| relabeler.relabel_one(resource));
            Some(rewrite)
        };
        let (target, target_workers) =
            otlp::Target::start(target_config, name, rewrite, catalog, &abort_rx);
        targets.traces.push(target);
        workers.push(target_workers);
    }
    let storage = &config.storage;
    let storage_metrics = catalog.storage();
    let data_dir = std::path::PathBuf::from(&storage.path);
    let (durable, repair) = Durable::open(&data_dir, &storage.wal, storage_metrics.clone())
        .map_err(|e| fail("storage.path".into(), e.to_string()))?;
    if let Some((position, why)) = &repair.cut_at {
        tracing::warn!(
            segment = position.segment,
            offset = position.offset,
            reason = %why,
            deleted_segments = ?repair.deleted_segments,
            "wal repaired: cut at the first bad record, everything before it kept"
        );
    }
    let mut resume = Resume::default();
    track(&durable, &mut targets.metrics, &mut resume.metrics);
    track(&durable, &mut targets.logs, &mut resume.logs);
    track(&durable, &mut targets.traces, &mut resume.traces);
    let store = if config.role == Role::Agent {
        None
    } else {
        let bucket = Bucket::from_config(
            &storage.bucket_url,
            &storage.bucket_options,
            &data_dir.join("blocks"),
        )
        .map_err(|e| fail("storage.bucket_url".into(), e.to_string()))?;
        let store = Store::open(
            storage,
            &durable,
            Arc::new(bucket),
            &config.ingest.default_tenant,
            storage_metrics,
        )
        .map_err(|e| fail("storage.path".into(), e.to_string()))?;
        Some(Arc::new(store))
    };
    let compress = storage.wal.compression == crate::config::storage::WalCompression::Snappy;
    let durability =
        Durability { durable: durable.clone(), store: store.clone(), resume, compress };
    Ok(Pipeline {
        remote_write,
        loki: Arc::new(loki),
        otlp: Arc::new(otlp),
        zipkin: Arc::new(ZipkinIngest::new(&config.ingest.zipkin, catalog)),
        translate_http,
        translate_grpc,
        default_tenant: config.ingest.default_tenant.as_str().into(),
        route: Arc::new(Router::with_durability(targets, Some(durability))),
        workers,
        abort,
        durable,
        store,
    })
}

/// Makes each target a WAL consumer (`forward/<name>`) and notes where it resumes.
fn track<T: ForwardTarget>(
    durable: &Durable,
    targets: &mut [T],
    resume: &mut Vec<crate::storage::wal::Position>,
) {
    for target in targets {
        let name = format!("forward/{}", target.queue().name());
        let (tracker, from) = durable.consumer(&name, false);
        target.queue_mut().set_tracker(tracker);
        resume.push(from);
    }
}

/// OTLP metrics → Prometheus series (Prometheus' OTLP translation), then the same validation,
/// `metric_relabel_configs` and cache as remote-write series. Returns the batch to route, the
/// data points rejected on the way and why.
fn translate_metrics(
    remote_write: &Arc<RemoteWriteIngest>,
    config: &Config,
    metrics: crate::telemetry::IngestMetrics,
) -> TranslateMetrics {
    let remote_write = remote_write.clone();
    let translation = config.ingest.otlp.metrics.clone();
    Arc::new(move |request| {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let translated = otlp_metrics::translate(request, &translation, now_ms);
        metrics.samples.inc_by(translated.batch.sample_count() as u64);
        metrics.histograms.inc_by(translated.batch.histogram_count() as u64);
        metrics.exemplars.inc_by(translated.batch.exemplar_count() as u64);
        if translated.rejected_points > 0 {
            metrics
                .dropped(crate::telemetry::IngestDropReason::Invalid)
                .inc_by(translated.rejected_points as u64);
        }
        let received = remote_write.admit_batch(&translated.batch, &metrics);
        let mut problems = translated.errors;
        problems.extend(received.rejection_message());
        let rejected = (translated.rejected_points + received.rejected_samples) as u64;
        let message = (!problems.is_empty()).then(|| problems.join("; "));
        (received.batch, rejected, message)
    })
}
