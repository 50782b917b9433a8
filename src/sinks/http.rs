//! The HTTP transport every HTTP forward target uses: one POST per batch, and the
//! classification of its outcome. Remote-write classifies as Prometheus' sender does
//! (`storage/remote/client.go`): 2xx success; 5xx and 429 (when `retry_on_http_429`) and
//! transport errors retryable; any other status a permanent rejection. OTLP/HTTP narrows the
//! retryable statuses to 429, 502, 503 and 504 (OTLP spec, "Failures" of OTLP/HTTP).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::queue::{SendError, Transport};
use crate::config::BasicAuth;
use crate::telemetry::ForwardMetrics;

/// Largest Retry-After honoured; beyond it the normal backoff applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How much of an error response body is kept for the log.
const MAX_ERROR_BODY: usize = 1024;

/// Which non-2xx statuses are worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Prometheus remote-write: every 5xx, and 429 when `retry_on_429`.
    RemoteWrite { retry_on_429: bool },
    /// OTLP/HTTP: 429, 502, 503, 504.
    Otlp,
}

impl RetryPolicy {
    fn is_retryable(self, status: StatusCode) -> bool {
        match self {
            Self::RemoteWrite { retry_on_429 } => {
                status.is_server_error()
                    || (status == StatusCode::TOO_MANY_REQUESTS && retry_on_429)
            }
            Self::Otlp => matches!(status.as_u16(), 429 | 502 | 503 | 504),
        }
    }
}

/// Credentials of a target, from the Prometheus-style config keys.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Basic { username: String, password: Option<String>, password_file: Option<String> },
    Bearer(String),
    BearerFile(String),
}

impl Auth {
    /// From the three mutually exclusive keys (validated before).
    pub fn from_config(
        basic_auth: Option<&BasicAuth>,
        bearer_token: Option<&String>,
        bearer_token_file: Option<&String>,
    ) -> Self {
        if let Some(basic) = basic_auth {
            Self::Basic {
                username: basic.username.clone(),
                password: basic.password.clone(),
                password_file: basic.password_file.clone(),
            }
        } else if let Some(token) = bearer_token {
            Self::Bearer(token.clone())
        } else if let Some(file) = bearer_token_file {
            Self::BearerFile(file.clone())
        } else {
            Self::None
        }
    }
}

/// Everything one HTTP target needs to send.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    pub url: http::Uri,
    /// Content-Type, Content-Encoding, protocol headers and the user's `headers`.
    pub headers: HeaderMap,
    pub auth: Auth,
    pub timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry: RetryPolicy,
}

/// The config keys every HTTP forward target shares, borrowed from its config struct.
pub struct TargetKeys<'a> {
    pub url: &'a str,
    pub basic_auth: Option<&'a BasicAuth>,
    pub bearer_token: Option<&'a String>,
    pub bearer_token_file: Option<&'a String>,
    pub remote_timeout: crate::config::PromDuration,
    pub queue: &'a crate::config::QueueConfig,
    pub headers: &'a std::collections::BTreeMap<String, String>,
}

impl HttpTarget {
    /// A target from its config keys (validated before), protocol headers and retry policy.
    pub fn from_keys(
        keys: &TargetKeys<'_>,
        protocol_headers: HeaderMap,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            url: keys.url.parse().expect("validated url"),
            headers: protocol_headers,
            auth: Auth::from_config(keys.basic_auth, keys.bearer_token, keys.bearer_token_file),
            timeout: keys.remote_timeout.get(),
            min_backoff: keys.queue.min_backoff.get(),
            max_backoff: keys.queue.max_backoff.get(),
            retry,
        }
        .with_user_headers(keys.headers)
    }

    /// Adds the user's `headers` (validated: names and values usable, none reserved).
    pub fn with_user_headers(
        mut self,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        for (key, value) in headers {
            if let (Ok(key), Ok(value)) =
                (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(value))
            {
                self.headers.insert(key, value);
            }
        }
        self.headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("strata/", env!("CARGO_PKG_VERSION"))),
        );
        self
    }
}

/// Posts encoded bodies to one URL.
pub struct Sender {
    name: String,
    target: HttpTarget,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: ForwardMetrics,
}

impl Sender {
    pub fn new(target: HttpTarget, name: String, metrics: ForwardMetrics) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(target.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self { name, target, client, metrics }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Authorization header; `_file` secrets are read on every request so rotation works.
    fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        let value = match &self.target.auth {
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

    /// One attempt; `extra` headers (e.g. the tenant) are added to the target's own.
    pub async fn post(&self, body: Bytes, extra: &HeaderMap) -> Result<(), SendError> {
        let mut request = Request::post(self.target.url.clone())
            .body(Full::new(body))
            .map_err(|e| SendError::Retryable { reason: e.to_string(), retry_after: None })?;
        *request.headers_mut() = self.target.headers.clone();
        for (name, value) in extra {
            request.headers_mut().insert(name, value.clone());
        }
        match self.authorization() {
            Ok(Some(value)) => {
                request.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Ok(None) => {}
            Err(reason) => return Err(SendError::Retryable { reason, retry_after: None }),
        }
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.target.timeout, self.client.request(request)).await;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        let response = match outcome {
            Err(_) => {
                self.metrics.requests_retry.inc();
                return Err(SendError::Retryable {
                    reason: format!("no response within remote_timeout {:?}", self.target.timeout),
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
        if self.target.retry.is_retryable(status) {
            self.metrics.requests_retry.inc();
            Err(SendError::Retryable { reason: format!("HTTP {status}: {body}"), retry_after })
        } else {
            self.metrics.requests_rejected.inc();
            Err(SendError::Rejected { status: status.to_string(), body })
        }
    }
}

impl Transport for Sender {
    type Extra = HeaderMap;

    fn name(&self) -> &str {
        &self.name
    }
    fn min_backoff(&self) -> Duration {
        self.target.min_backoff
    }
    fn max_backoff(&self) -> Duration {
        self.target.max_backoff
    }
    async fn send(&self, body: Bytes, extra: &HeaderMap) -> Result<(), SendError> {
        self.post(body, extra).await
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response body (None if larger or unreadable).
async fn read_capped(body: hyper::body::Incoming) -> Option<Bytes> {
    #[allow(clippy::disallowed_methods)] // capped by `Limited`
    let collected = Limited::new(body, MAX_ERROR_BODY).collect().await;
    collected.ok().map(http_body_util::Collected::to_bytes)
}
