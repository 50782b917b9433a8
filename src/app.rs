//! Process lifecycle: runtime, listener, signals and drain-order shutdown.
//!
//! Shutdown on SIGTERM or SIGINT, in data-flow order:
//! 1. `/-/ready` turns 503 and ingest refuses new requests with 503;
//! 2. the listener stops accepting and in-flight requests finish (graceful shutdown);
//! 3. the router closes the forward queues; shard workers send what they hold;
//! 4. if that takes longer than `server.shutdown_timeout`, workers stop retrying and count what
//!    they drop (`strata_forward_items_dropped_total{reason="shutdown"}`);
//! 5. exit 0.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::ingest::otlp::grpc;
use crate::server::{self, AppState};
use crate::telemetry::Catalog;
use crate::topology;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot load rules:\n  {}", .0.join("\n  "))]
    Rules(Vec<String>),
    #[error("http server failed: {0}")]
    Serve(std::io::Error),
}

/// Runs the daemon until a termination signal; returns after the drain.
pub fn run(config: Config) -> Result<(), AppError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-worker")
        .build()
        .map_err(AppError::Runtime)?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), AppError> {
    let catalog = Arc::new(Catalog::new());
    let mut pipeline = topology::build(&config, &catalog)?;
    let main_listener = bind(&config.server.http_listen_address).await?;
    let otlp = &config.ingest.otlp;
    let otlp_http_listener = match otlp.http_listen_address.as_str() {
        "" => None,
        address => Some(bind(address).await?),
    };
    // Not ready until the WAL replay has fed the head and the forward targets.
    let ready = Arc::new(AtomicBool::new(false));
    let grpc_listener = match otlp.grpc_listen_address.as_str() {
        "" => None,
        address => Some(bind(address).await?),
    };
    // Query and rules need stored data: every role but the agent.
    let engine = crate::promql::Engine::new(crate::promql::EngineOptions {
        default_subquery_step_ms: config.rules.evaluation_interval.get().as_millis() as i64,
        ..config.query.engine_options()
    });
    let stored: Option<Arc<crate::storage::query::StoredMetrics>> =
        pipeline.store.clone().map(|store| {
            Arc::new(crate::storage::query::StoredMetrics::new(
                store,
                tokio::runtime::Handle::current(),
            ))
        });
    let query = match (&stored, &pipeline.store) {
        (Some(stored), Some(store)) => Some(Arc::new(server::query::QueryApi::new(
            engine.clone(),
            stored.clone(),
            Arc::new(server::query::HeadQueryable::new(store.clone())),
            config.query.max_concurrency,
        ))),
        _ => None,
    };
    let notifier = crate::notifier::Notifier::new(
        &config.alerting,
        crate::model::labels::Labels::from_pairs(config.rules.external_labels.clone()),
        catalog.notifier(&config.alerting.endpoint_urls()),
    )
    .map_err(|e| AppError::Rules(vec![e.to_string()]))?;
    let rules = match &stored {
        Some(stored) => {
            let manager = crate::rules::Manager::new(
                config.rules.clone(),
                engine.clone(),
                stored.clone(),
                Arc::new(crate::route::rule_output::RouteSink::new(
                    pipeline.route.clone(),
                    tokio::runtime::Handle::current(),
                )),
                Arc::new(notifier.clone()),
            )
            .with_metrics(catalog.rules());
            let loader = manager.clone();
            tokio::task::spawn_blocking(move || loader.load_configured())
                .await
                .map_err(|e| AppError::Rules(vec![e.to_string()]))?
                .map_err(AppError::Rules)?;
            Some(manager)
        }
        None => None,
    };
    let state = AppState {
        remote_write: pipeline.remote_write.clone(),
        loki: pipeline.loki.clone(),
        otlp: pipeline.otlp.clone(),
        zipkin: pipeline.zipkin.clone(),
        translate_metrics: pipeline.translate_http.clone(),
        default_tenant: pipeline.default_tenant.clone(),
        route: pipeline.route.clone(),
        catalog: catalog.clone(),
        ready: ready.clone(),
        query: query.clone(),
        rules: rules.clone(),
    };
    tracing::info!(
        address = %local_address(&main_listener),
        otlp_http = %otlp_http_listener.as_ref().map(local_address).unwrap_or_default(),
        otlp_grpc = %grpc_listener.as_ref().map(local_address).unwrap_or_default(),
        role = ?config.role,
        version = env!("CARGO_PKG_VERSION"),
        "strata is listening"
    );

    // One shutdown signal for every listener: flips once, after ingest is closed.
    let (stop_tx, stop_rx) = watch::channel(false);
    // Storage upkeep (fsync timer, checkpoints, head cuts, uploads) stops only after the
    // forward queues drained, so the final checkpoint records what they delivered.
    let (storage_stop, storage_stop_rx) = watch::channel(false);
    let mut upkeep = vec![tokio::spawn(pipeline.durable.clone().run(storage_stop_rx.clone()))];
    if let Some(store) = &pipeline.store {
        upkeep.push(tokio::spawn(
            store.clone().run(pipeline.durable.clone(), storage_stop_rx.clone()),
        ));
    }
    if let (Some(store), true) = (&pipeline.store, config.storage.compactor.enabled) {
        upkeep.push(tokio::spawn(crate::storage::tiers::run(
            store.bucket().clone(),
            config.storage.clone(),
            catalog.storage(),
            storage_stop_rx.clone(),
        )));
    }
    // Rules and notifications stop with the listeners; the notifier sends what is queued.
    let mut rule_tasks = vec![tokio::spawn(notifier.run(stop_rx.clone()))];
    if let Some(manager) = rules.clone() {
        rule_tasks.push(tokio::spawn(reload_on_sighup(manager.clone(), stop_rx.clone())));
        let ready = ready.clone();
        let mut stop = stop_rx.clone();
        rule_tasks.push(tokio::spawn(async move {
            // Rules read the head: wait until the WAL replay has filled it.
            while !ready.load(Ordering::Acquire) {
                if *stop.borrow() {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), stop.changed()).await;
            }
            manager.run(stop).await;
        }));
    }
    let replay_route = pipeline.route.clone();
    let replay_ready = ready.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match replay_route.replay().await {
            Ok(report) => {
                tracing::info!(
                    records = report.records,
                    to_head = report.to_head,
                    to_targets = report.to_targets,
                    bad_records = report.bad_records,
                    seconds = started.elapsed().as_secs_f64(),
                    "wal replayed; ready"
                );
                replay_ready.store(true, Ordering::Release);
            }
            Err(err) => tracing::error!(error = %err, "wal replay stopped"),
        }
    });
    let route = pipeline.route.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: refusing new data, draining");
        ready.store(false, Ordering::Release);
        // Refuse new ingest right away, even on kept-alive connections.
        route.close().await;
        let _ = stop_tx.send(true);
    });

    let main_server = axum::serve(main_listener, server::router(state.clone()))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let otlp_http_server = async {
        match otlp_http_listener {
            Some(listener) => {
                axum::serve(listener, server::otlp_router(state.clone()))
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .await
            }
            None => Ok(()),
        }
    };
    let grpc_server = async {
        let Some(listener) = grpc_listener else { return Ok(()) };
        let routes = grpc::grpc_routes(
            pipeline.otlp.clone(),
            &pipeline.route,
            pipeline.translate_grpc.clone(),
        );
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stopped(stop_rx.clone()),
            )
            .await
            .map_err(|e| std::io::Error::other(format!("otlp grpc server: {e}")))
    };
    tokio::try_join!(main_server.into_future(), otlp_http_server, grpc_server)
        .map_err(AppError::Serve)?;

    for task in rule_tasks {
        let _ = task.await;
    }
    drain(&mut pipeline, config.server.shutdown_timeout.get()).await;
    let _ = storage_stop.send(true);
    for task in upkeep {
        let _ = task.await;
    }
    tracing::info!("shutdown complete");
    Ok(())
}

async fn bind(address: &str) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AppError::Listen { address: address.to_owned(), source })
}

fn local_address(listener: &tokio::net::TcpListener) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
}

/// Resolves once the shutdown signal has been given.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Waits for the forward workers, then aborts whatever is still retrying after `timeout`.
async fn drain(pipeline: &mut topology::Pipeline, timeout: Duration) {
    pipeline.route.close().await;
    let workers = std::mem::take(&mut pipeline.workers);
    let handles: Vec<_> = workers.into_iter().flat_map(|w| w.handles).collect();
    let all = futures_join(handles);
    tokio::pin!(all);
    if tokio::time::timeout(timeout, &mut all).await.is_err() {
        tracing::warn!(
            timeout_s = timeout.as_secs_f64(),
            "forward queues did not drain in time; dropping what is left"
        );
        // What is dropped now was not delivered: keep it outstanding in the WAL positions so
        // the next start re-sends it.
        pipeline.durable.freeze();
        let _ = pipeline.abort.send(true);
        // Workers stop at their next retry wait; give them a moment to account for drops.
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        if let Err(err) = handle.await {
            tracing::error!(error = %err, "a forward worker failed");
        }
    }
}

/// Reloads the rule files on every SIGHUP (as Prometheus does) until shutdown.
async fn reload_on_sighup(manager: crate::rules::Manager, stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => signal,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGHUP");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading rule files");
                    // Success and failure are both logged by reload_rules.
                    let _ = server::rules::reload_rules(&manager).await;
                }
                () = stopped(stop.clone()) => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = manager;
        stopped(stop).await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
