//! Sending alerts to Alertmanager (API v2), after Prometheus' notifier (`notifier/notifier.go`,
//! 2.53):
//!
//! * the rule manager hands alerts to [`SendAlerts::send`], which never blocks: they join a
//!   bounded queue (`alerting.queue_capacity`); when it is full the oldest alerts are dropped
//!   and counted (`strata_notifications_dropped_total`), as Prometheus does;
//! * [`Notifier::run`] takes batches of up to `max_batch_size` (64) alerts and `POST`s each,
//!   as a JSON array of `postableAlert`s ([`wire`]), to `/api/v2/alerts` of **every**
//!   configured Alertmanager at once;
//! * a failed request (transport error, 5xx, 429) is retried with doubling backoff within the
//!   Alertmanager's `timeout`; other statuses are not retried. Failures are logged and counted
//!   per Alertmanager; a batch no Alertmanager took is counted as dropped (the rule manager
//!   re-sends firing alerts every resend delay, as Prometheus' does);
//! * external labels are added to alerts that lack them, then `alert_relabel_configs` apply
//!   (an alert they drop is not sent), before queueing;
//! * on shutdown what is queued is sent once more, without retries.
//!
//! Invariant: the queue lock is never held across an `.await`.

pub mod config;
pub mod metrics;
pub mod wire;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{watch, Notify};

pub use config::{AlertingConfig, AlertmanagerConfig, StaticConfig};
pub use metrics::{NotifierFamilies, NotifierMetrics};

use crate::model::labels::Labels;
use crate::relabel::Relabeler;

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: SystemTime,
    /// When the alert stops being active: the resolve time for a resolved alert, else a time a
    /// few evaluation intervals ahead so Alertmanager resolves it if updates stop (Prometheus
    /// sends `now + max(resend_delay, interval) * 4`). `UNIX_EPOCH` leaves it out.
    pub ends_at: SystemTime,
    pub generator_url: String,
}

/// Where the rule manager hands alerts to send. Must not block: implementations queue.
pub trait SendAlerts: Send + Sync {
    fn send(&self, alerts: Vec<Alert>);
}

/// First wait before retrying a failed request; doubled per attempt.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How much of an error response is kept for the log.
const MAX_ERROR_BODY: usize = 1024;

/// A notifier that cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("alertmanager endpoint {url:?}: {reason}")]
pub struct NotifierError {
    pub url: String,
    pub reason: String,
}

/// One Alertmanager endpoint.
#[derive(Debug)]
struct Endpoint {
    url: String,
    uri: Uri,
    timeout: Duration,
}

struct Shared {
    queue: Mutex<VecDeque<Alert>>,
    capacity: usize,
    max_batch_size: usize,
    external_labels: Labels,
    relabel: Relabeler,
    more: Notify,
    endpoints: Vec<Endpoint>,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: NotifierMetrics,
}

/// The Alertmanager client: a queue and the task that empties it. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.shared.endpoints.iter().map(|e| e.url.as_str()).collect();
        f.debug_struct("Notifier").field("alertmanagers", &urls).finish()
    }
}

impl AlertingConfig {
    /// Every Alertmanager endpoint, in config order: the `alertmanager` label values of the
    /// notifier's metrics.
    pub fn endpoint_urls(&self) -> Vec<String> {
        self.alertmanagers.iter().flat_map(AlertmanagerConfig::endpoints).collect()
    }
}

impl Notifier {
    /// A notifier for a validated `config`. `metrics` come from
    /// [`NotifierFamilies::handles`] of [`AlertingConfig::endpoint_urls`]; `external_labels`
    /// are added to every alert that does not have them.
    pub fn new(
        config: &AlertingConfig,
        external_labels: Labels,
        metrics: NotifierMetrics,
    ) -> Result<Self, NotifierError> {
        let mut endpoints = Vec::new();
        for am in &config.alertmanagers {
            for url in am.endpoints() {
                let uri = url
                    .parse::<Uri>()
                    .map_err(|e| NotifierError { url: url.clone(), reason: e.to_string() })?;
                endpoints.push(Endpoint { url, uri, timeout: am.timeout.get() });
            }
        }
        if metrics.sent.len() != endpoints.len() || metrics.errors.len() != endpoints.len() {
            return Err(NotifierError {
                url: String::new(),
                reason: format!(
                    "metric handles for {} alertmanagers, {} configured",
                    metrics.sent.len(),
                    endpoints.len()
                ),
            });
        }
        let relabel = Relabeler::new(&config.alert_relabel_configs).map_err(|e| NotifierError {
            url: String::new(),
            reason: format!("alert_relabel_configs: {e}"),
        })?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        metrics.queue_capacity.set(config.queue_capacity as i64);
        Ok(Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                capacity: config.queue_capacity.max(1),
                max_batch_size: config.max_batch_size.max(1),
                external_labels,
                relabel,
                more: Notify::new(),
                endpoints,
                client,
                metrics,
            }),
        })
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.lock_queue().len()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Alert>> {
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_batch(&self) -> Vec<Alert> {
        let mut queue = self.lock_queue();
        let take = queue.len().min(self.shared.max_batch_size);
        let batch: Vec<Alert> = queue.drain(..take).collect();
        self.shared.metrics.queue_length.set(queue.len() as i64);
        batch
    }

    /// Sends queued alerts until `stop` turns true, then sends what is left once.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = *stop.borrow();
            loop {
                let batch = self.next_batch();
                if batch.is_empty() {
                    break;
                }
                self.send_batch(&batch, !stopping).await;
            }
            if stopping {
                return;
            }
            tokio::select! {
                () = self.shared.more.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The sender is gone: treat as stop.
                        let batch = self.next_batch();
                        if !batch.is_empty() {
                            self.send_batch(&batch, false).await;
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Posts one batch to every Alertmanager at once.
    async fn send_batch(&self, batch: &[Alert], retry: bool) {
        let body = Bytes::from(wire::encode(batch));
        let count = batch.len() as u64;
        let sends = self.shared.endpoints.iter().map(|endpoint| {
            let body = body.clone();
            async move { self.post(endpoint, body, retry).await }
        });
        let outcomes = futures_util::future::join_all(sends).await;
        let mut delivered = false;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let endpoint = &self.shared.endpoints[index];
            match outcome {
                Ok(()) => {
                    delivered = true;
                    self.shared.metrics.sent[index].inc_by(count);
                }
                Err(reason) => {
                    self.shared.metrics.errors[index].inc_by(count);
                    tracing::warn!(
                        alertmanager = %endpoint.url,
                        alerts = count,
                        error = %reason,
                        "error sending alerts"
                    );
                }
            }
        }
        if !delivered && !self.shared.endpoints.is_empty() {
            self.shared.metrics.dropped.inc_by(count);
            tracing::error!(alerts = count, "no alertmanager took the alerts; dropped");
        }
    }

    /// One endpoint, retrying what may succeed later, all within the endpoint's timeout.
    async fn post(&self, endpoint: &Endpoint, body: Bytes, retry: bool) -> Result<(), String> {
        let attempts = async {
            let mut backoff = MIN_BACKOFF;
            loop {
                match self.attempt(endpoint, body.clone()).await {
                    Ok(()) => return Ok(()),
                    Err((reason, retryable)) if !retry || !retryable => return Err(reason),
                    Err((reason, _)) => {
                        tracing::debug!(alertmanager = %endpoint.url, error = %reason, "retrying");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        };
        match tokio::time::timeout(endpoint.timeout, attempts).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no success within timeout {:?}", endpoint.timeout)),
        }
    }

    /// One request: `Err((why, retryable))` unless Alertmanager answered 2xx.
    async fn attempt(&self, endpoint: &Endpoint, body: Bytes) -> Result<(), (String, bool)> {
        let request = Request::post(endpoint.uri.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("Strata/", env!("CARGO_PKG_VERSION"))),
            )
            .body(Full::new(body))
            .map_err(|e| (e.to_string(), false))?;
        let response = self
            .shared
            .client
            .request(request)
            .await
            .map_err(|e| (format!("request failed: {e}"), true))?;
        let status = response.status();
        #[allow(clippy::disallowed_methods)] // capped by `Limited`
        let body = Limited::new(response.into_body(), MAX_ERROR_BODY).collect().await;
        if status.is_success() {
            return Ok(());
        }
        let text = body
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_else(|_| "<error body too large or unreadable>".into());
        let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        Err((format!("HTTP {status}: {text}"), retryable))
    }

    /// Adds the external labels an alert lacks.
    fn with_external_labels(&self, alert: &mut Alert) {
        if self.shared.external_labels.is_empty() {
            return;
        }
        let mut builder = alert.labels.builder();
        for label in self.shared.external_labels.iter() {
            if builder.get(&label.name).is_none() {
                builder.set(&label.name, label.value.clone());
            }
        }
        alert.labels = builder.build();
    }
}

impl SendAlerts for Notifier {
    fn send(&self, mut alerts: Vec<Alert>) {
        if self.shared.endpoints.is_empty() || alerts.is_empty() {
            return;
        }
        for alert in &mut alerts {
            self.with_external_labels(alert);
        }
        if !self.shared.relabel.is_empty() {
            alerts.retain_mut(|alert| match self.shared.relabel.process(&alert.labels) {
                Some(labels) => {
                    alert.labels = labels;
                    true
                }
                None => false,
            });
            if alerts.is_empty() {
                return;
            }
        }
        let capacity = self.shared.capacity;
        let metrics = &self.shared.metrics;
        if alerts.len() > capacity {
            // More than fit at all: keep the newest.
            let excess = alerts.len() - capacity;
            alerts.drain(..excess);
            metrics.dropped.inc_by(excess as u64);
        }
        let mut queue = self.lock_queue();
        let overflow = (queue.len() + alerts.len()).saturating_sub(capacity);
        if overflow > 0 {
            queue.drain(..overflow);
            metrics.dropped.inc_by(overflow as u64);
            tracing::warn!(dropped = overflow, "alert queue full; dropped the oldest alerts");
        }
        queue.extend(alerts);
        metrics.queue_length.set(queue.len() as i64);
        drop(queue);
        self.shared.more.notify_one();
    }
}

#[cfg(test)]
mod tests;
