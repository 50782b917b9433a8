//! The HTTP side of the remote-write sender: one POST per batch, and the classification of its
//! outcome the way Prometheus' sender does it (`storage/remote/client.go`): 2xx is success; 5xx,
//! 429 (when `retry_on_http_429`) and transport errors are retryable; every other status is a
//! permanent rejection.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::RemoteWriteTarget;
use crate::telemetry::ForwardMetrics;

/// Largest Retry-After honoured; beyond it the normal backoff applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of an error response body is kept for the log.
const MAX_ERROR_BODY: usize = 1024;

/// How a send went wrong.
#[derive(Debug)]
pub enum SendError {
    Retryable { reason: String, retry_after: Option<Duration> },
    Rejected { status: StatusCode, body: String },
}

/// Posts snappy-compressed remote-write bodies to one URL.
pub struct Sender {
    name: String,
    url: http::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    headers: HeaderMap,
    auth: Auth,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    retry_on_429: bool,
    metrics: ForwardMetrics,
}

enum Auth {
    None,
    Basic { username: String, password: Option<String>, password_file: Option<String> },
    Bearer(String),
    BearerFile(String),
}

impl Sender {
    /// `config` is validated (URL, headers) before this is called.
    pub fn new(config: &RemoteWriteTarget, name: String, metrics: ForwardMetrics) -> Self {
        let mut headers = HeaderMap::new();
        let (content_type, version) = match config.protocol_version {
            2 => (crate::ingest::remote_write::CONTENT_TYPE_V2, "2.0.0"),
            _ => ("application/x-protobuf", "0.1.0"),
        };
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static(version));
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("strata/", env!("CARGO_PKG_VERSION"))),
        );
        for (key, value) in &config.headers {
            if let (Ok(key), Ok(value)) =
                (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(value))
            {
                headers.insert(key, value);
            }
        }
        let auth = if let Some(basic) = &config.basic_auth {
            Auth::Basic {
                username: basic.username.clone(),
                password: basic.password.clone(),
                password_file: basic.password_file.clone(),
            }
        } else if let Some(token) = &config.bearer_token {
            Auth::Bearer(token.clone())
        } else if let Some(file) = &config.bearer_token_file {
            Auth::BearerFile(file.clone())
        } else {
            Auth::None
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.remote_timeout.get()));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self {
            name,
            url: config.url.parse().expect("validated url"),
            client,
            headers,
            auth,
            timeout: config.remote_timeout.get(),
            min_backoff: config.queue_config.min_backoff.get(),
            max_backoff: config.queue_config.max_backoff.get(),
            retry_on_429: config.queue_config.retry_on_http_429,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn min_backoff(&self) -> Duration {
        self.min_backoff
    }
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The Authorization header; `_file` secrets are read on every request so rotation works.
    fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        let value = match &self.auth {
            Auth::None => return Ok(None),
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::BearerFile(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read bearer_token_file {path:?}: {e}"))?;
                format!("Bearer {}", token.trim())
            }
            Auth::Basic { username, password, password_file } => {
                let password = match (password, password_file) {
                    (Some(password), _) => password.clone(),
                    (None, Some(path)) => std::fs::read_to_string(path)
                        .map_err(|e| format!("cannot read password_file {path:?}: {e}"))?
                        .trim()
                        .to_owned(),
                    (None, None) => String::new(),
                };
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                format!("Basic {encoded}")
            }
        };
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| "credentials contain characters not allowed in a header".to_owned())?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    /// One attempt.
    pub async fn post(&self, body: Bytes) -> Result<(), SendError> {
        let mut request = Request::post(self.url.clone())
            .body(Full::new(body))
            .map_err(|e| SendError::Retryable { reason: e.to_string(), retry_after: None })?;
        *request.headers_mut() = self.headers.clone();
        match self.authorization() {
            Ok(Some(value)) => {
                request.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Ok(None) => {}
            Err(reason) => return Err(SendError::Retryable { reason, retry_after: None }),
        }
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.client.request(request)).await;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        let response = match outcome {
            Err(_) => {
                self.metrics.requests_retry.inc();
                return Err(SendError::Retryable {
                    reason: format!("no response within remote_timeout {:?}", self.timeout),
                    retry_after: None,
                });
            }
            Ok(Err(err)) => {
                self.metrics.requests_retry.inc();
                return Err(SendError::Retryable {
                    reason: format!("request failed: {err}"),
                    retry_after: None,
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            self.metrics.requests_success.inc();
            // Drain the (normally empty) body so the connection goes back to the pool.
            let _ = read_capped(response.into_body()).await;
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_RETRY_AFTER);
        let body = match read_capped(response.into_body()).await {
            Some(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            None => "<error body too large or unreadable>".to_owned(),
        };
        let retryable = status.is_server_error()
            || (status == StatusCode::TOO_MANY_REQUESTS && self.retry_on_429);
        if retryable {
            self.metrics.requests_retry.inc();
            Err(SendError::Retryable { reason: format!("HTTP {status}: {body}"), retry_after })
        } else {
            self.metrics.requests_rejected.inc();
            Err(SendError::Rejected { status, body })
        }
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response body (None if larger or unreadable).
async fn read_capped(body: hyper::body::Incoming) -> Option<Bytes> {
    #[allow(clippy::disallowed_methods)] // capped by `Limited`
    let collected = Limited::new(body, MAX_ERROR_BODY).collect().await;
    collected.ok().map(http_body_util::Collected::to_bytes)
}
