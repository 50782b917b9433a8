//! Config of the log and trace paths: Loki push and OTLP/Zipkin ingest (`ingest.loki`,
//! `ingest.otlp`, `ingest.zipkin`) and their forward targets (`forward.loki`, `forward.otlp`).
//!
//! Loki's names and defaults are kept where Loki has the same knob (`limits_config` in
//! `pkg/validation/limits.go`: `max_line_size` 256KB, `max_label_names_per_series` 15,
//! `max_label_name_length` 1024, `max_label_value_length` 2048, `reject_old_samples_max_age`
//! 1w, `creation_grace_period` 10m). Targets share [`QueueConfig`] with remote-write: its
//! `capacity` and `max_samples_per_send` count log entries or spans for these signals.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{validate_queue, BasicAuth, ByteSize, ConfigError, PromDuration, QueueConfig};
use crate::relabel::{NameValidation, RelabelConfig, Relabeler};

/// `ingest.loki`: `POST /loki/api/v1/push`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LokiIngestConfig {
    /// Largest accepted request body as sent (413 beyond).
    pub max_body_size: ByteSize,
    /// Largest body after snappy/gzip/deflate decoding, checked while decoding (413 beyond).
    pub max_decoded_size: ByteSize,
    /// Longest accepted line (Loki `max_line_size`); longer lines are rejected with 400 unless
    /// `max_line_size_truncate`.
    pub max_line_size: ByteSize,
    pub max_line_size_truncate: bool,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Reject entries older than `reject_old_samples_max_age` (Loki `reject_old_samples`).
    pub reject_old_samples: bool,
    pub reject_old_samples_max_age: PromDuration,
    /// Entries further than this in the future are rejected (Loki `creation_grace_period`).
    pub creation_grace_period: PromDuration,
    /// Per-tenant ingestion rate in bytes per second (line + structured metadata); over it a
    /// push gets 429. 0 turns the limit off (the default: an agent relays whatever its node
    /// produces; Loki's own default is 4MiB).
    pub ingestion_rate: ByteSize,
    /// Token-bucket burst for `ingestion_rate` (Loki `ingestion_burst_size_mb`).
    pub ingestion_burst_size: ByteSize,
    /// Relabeling of stream labels (Prometheus `relabel_config`).
    pub relabel_configs: Vec<RelabelConfig>,
    /// Entries in the per-stream validation + relabel result cache.
    pub relabel_cache_size: u64,
}

impl Default for LokiIngestConfig {
    fn default() -> Self {
        Self {
            max_body_size: ByteSize::mib(32),
            max_decoded_size: ByteSize::mib(128),
            max_line_size: ByteSize::kib(256),
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            reject_old_samples: true,
            reject_old_samples_max_age: PromDuration::from_secs(7 * 24 * 3600),
            creation_grace_period: PromDuration::from_secs(600),
            ingestion_rate: ByteSize::from_bytes(0),
            ingestion_burst_size: ByteSize::mib(6),
            relabel_configs: Vec::new(),
            relabel_cache_size: 65_536,
        }
    }
}

/// `ingest.otlp`: OTLP/gRPC and OTLP/HTTP for traces, metrics and logs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpIngestConfig {
    /// OTLP/gRPC listener; empty turns it off.
    pub grpc_listen_address: String,
    /// OTLP/HTTP listener (`/v1/traces`, `/v1/metrics`, `/v1/logs`; also served on the main
    /// HTTP listener); empty turns the extra listener off.
    pub http_listen_address: String,
    /// Largest gRPC message after decompression (`RESOURCE_EXHAUSTED` beyond).
    pub max_grpc_message_size: ByteSize,
    /// Largest HTTP body after decompression (413 beyond).
    pub max_http_body_size: ByteSize,
    /// Relabeling of trace and log resource attributes. Attribute keys are label names as they
    /// are (`service.name`); values of non-string attributes are their text form (decimal,
    /// `true`, base64, JSON for arrays and maps, as the Collector's `AsString`). See
    /// `ingest::otlp::attributes` for the whole mapping, both ways.
    pub resource_relabel_configs: Vec<RelabelConfig>,
    pub relabel_cache_size: u64,
    pub metrics: OtlpMetricsConfig,
    pub logs: OtlpLogsConfig,
}

impl Default for OtlpIngestConfig {
    fn default() -> Self {
        Self {
            grpc_listen_address: "127.0.0.1:4317".into(),
            http_listen_address: "127.0.0.1:4318".into(),
            max_grpc_message_size: ByteSize::mib(4),
            max_http_body_size: ByteSize::mib(20),
            resource_relabel_configs: Vec::new(),
            relabel_cache_size: 65_536,
            metrics: OtlpMetricsConfig::default(),
            logs: OtlpLogsConfig::default(),
        }
    }
}

/// How OTLP metrics become Prometheus series (Prometheus' `otlp` config block).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpMetricsConfig {
    /// Resource attributes copied onto every series as labels (Prometheus
    /// `promote_resource_attributes`).
    pub promote_resource_attributes: Vec<String>,
    /// Keep `service.name`, `service.namespace`, `service.instance.id` on `target_info` too
    /// (Prometheus `keep_identifying_resource_attributes`).
    pub keep_identifying_resource_attributes: bool,
    /// `underscore_escaping_with_suffixes` (Prometheus' default) or
    /// `no_utf8_escaping_with_suffixes` (names kept as UTF-8, suffixes added).
    pub translation_strategy: OtlpTranslationStrategy,
}

impl Default for OtlpMetricsConfig {
    fn default() -> Self {
        Self {
            promote_resource_attributes: Vec::new(),
            keep_identifying_resource_attributes: false,
            translation_strategy: OtlpTranslationStrategy::UnderscoreEscapingWithSuffixes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpTranslationStrategy {
    UnderscoreEscapingWithSuffixes,
    NoUtf8EscapingWithSuffixes,
}

/// How OTLP logs become Loki streams.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpLogsConfig {
    /// Resource attributes that become stream labels (dots → underscores, as Loki does); all
    /// other attributes become structured metadata. Default: Loki's
    /// `default_resource_attributes_as_index_labels`.
    pub stream_label_attributes: Vec<String>,
}

/// Loki 3's `distributor.otlp_config` default index labels.
pub const LOKI_DEFAULT_STREAM_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

impl Default for OtlpLogsConfig {
    fn default() -> Self {
        Self {
            stream_label_attributes: LOKI_DEFAULT_STREAM_ATTRIBUTES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// `ingest.zipkin`: `POST /api/v2/spans` (Zipkin v2 JSON).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZipkinIngestConfig {
    /// Largest body after decompression (413 beyond).
    pub max_body_size: ByteSize,
}

impl Default for ZipkinIngestConfig {
    fn default() -> Self {
        Self { max_body_size: ByteSize::mib(20) }
    }
}

/// One Loki push destination (`forward.loki[]`): protobuf + snappy to `url`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LokiTarget {
    /// Name in logs and the `target` label; defaults to `loki_<i>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Full push URL, e.g. `http://loki:3100/loki/api/v1/push`.
    pub url: String,
    /// `X-Scope-OrgID` to send; by default each batch's own tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default = "super::default_remote_timeout")]
    pub remote_timeout: PromDuration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// Relabeling of stream labels for this target.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub queue_config: QueueConfig,
}

/// How an OTLP target is spoken to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum OtlpProtocol {
    /// OTLP/gRPC: `endpoint` is `http://host:4317`.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP protobuf: `endpoint` is the base URL; `/v1/traces` is appended.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// One OTLP destination for traces (`forward.otlp[]`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpTarget {
    /// Name in logs and the `target` label; defaults to `otlp_<i>`.
    #[serde(default)]
    pub name: Option<String>,
    pub endpoint: String,
    #[serde(default)]
    pub protocol: OtlpProtocol,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default = "super::default_remote_timeout")]
    pub remote_timeout: PromDuration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// Relabeling of resource attributes for this target.
    #[serde(default)]
    pub resource_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub queue_config: QueueConfig,
}

impl LokiTarget {
    pub fn display_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("loki_{index}"))
    }
}

impl OtlpTarget {
    pub fn display_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("otlp_{index}"))
    }
}

pub(super) fn validate_loki_ingest(loki: &LokiIngestConfig, errors: &mut Vec<ConfigError>) {
    let base = "ingest.loki";
    positive(
        base,
        &[
            ("max_body_size", loki.max_body_size.bytes()),
            ("max_line_size", loki.max_line_size.bytes()),
            ("max_label_names_per_series", loki.max_label_names_per_series as u64),
            ("max_label_name_length", loki.max_label_name_length as u64),
            ("max_label_value_length", loki.max_label_value_length as u64),
            ("relabel_cache_size", loki.relabel_cache_size),
        ],
        errors,
    );
    if loki.max_decoded_size < loki.max_body_size {
        errors.push(ConfigError::new(
            format!("{base}.max_decoded_size"),
            format!(
                "{} is smaller than max_body_size {}",
                loki.max_decoded_size, loki.max_body_size
            ),
        ));
    }
    if loki.ingestion_rate.bytes() > 0 && loki.ingestion_burst_size < loki.max_line_size {
        errors.push(ConfigError::new(
            format!("{base}.ingestion_burst_size"),
            format!(
                "{} is smaller than max_line_size {}: a maximal line could never be accepted",
                loki.ingestion_burst_size, loki.max_line_size
            ),
        ));
    }
    relabel(
        &loki.relabel_configs,
        NameValidation::Legacy,
        &format!("{base}.relabel_configs"),
        errors,
    );
}

pub(super) fn validate_otlp_ingest(otlp: &OtlpIngestConfig, errors: &mut Vec<ConfigError>) {
    let base = "ingest.otlp";
    for (name, address) in [
        ("grpc_listen_address", &otlp.grpc_listen_address),
        ("http_listen_address", &otlp.http_listen_address),
    ] {
        if !address.is_empty() && address.parse::<SocketAddr>().is_err() {
            errors.push(ConfigError::new(
                format!("{base}.{name}"),
                format!(
                    "{address:?} is not an address of the form host:port (or empty to turn it off)"
                ),
            ));
        }
    }
    positive(
        base,
        &[
            ("max_grpc_message_size", otlp.max_grpc_message_size.bytes()),
            ("max_http_body_size", otlp.max_http_body_size.bytes()),
            ("relabel_cache_size", otlp.relabel_cache_size),
        ],
        errors,
    );
    relabel(
        &otlp.resource_relabel_configs,
        NameValidation::Utf8,
        &format!("{base}.resource_relabel_configs"),
        errors,
    );
}

pub(super) fn validate_zipkin_ingest(zipkin: &ZipkinIngestConfig, errors: &mut Vec<ConfigError>) {
    positive("ingest.zipkin", &[("max_body_size", zipkin.max_body_size.bytes())], errors);
}

/// What every HTTP forward target has in common, for [`validate_http_target`].
pub(super) struct HttpTargetView<'a> {
    pub base: String,
    pub url: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub basic_auth: Option<&'a BasicAuth>,
    pub bearer_token: bool,
    pub bearer_token_file: bool,
    pub remote_timeout: PromDuration,
    pub queue: &'a QueueConfig,
    /// Headers strata sets itself for this protocol (lowercase).
    pub reserved_headers: &'a [&'a str],
}

/// Checks URL, auth, headers, timeout and queue of one forward target.
pub(super) fn validate_http_target(target: &HttpTargetView<'_>, errors: &mut Vec<ConfigError>) {
    let base = &target.base;
    match target.url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
        Ok(uri) if uri.scheme_str() == Some("https") => errors.push(ConfigError::new(
            format!("{base}.url"),
            format!(
                "{:?}: https is not supported yet; terminate TLS in front of the receiver",
                target.url
            ),
        )),
        _ => errors.push(ConfigError::new(
            format!("{base}.url"),
            format!("{:?} is not an absolute http:// URL", target.url),
        )),
    }
    let auth_kinds = [target.basic_auth.is_some(), target.bearer_token, target.bearer_token_file];
    if auth_kinds.iter().filter(|set| **set).count() > 1 {
        errors.push(ConfigError::new(
            base.clone(),
            "at most one of basic_auth, bearer_token and bearer_token_file may be set",
        ));
    }
    if let Some(auth) = target.basic_auth {
        if auth.password.is_some() && auth.password_file.is_some() {
            errors.push(ConfigError::new(
                format!("{base}.basic_auth"),
                "at most one of password and password_file may be set",
            ));
        }
    }
    const ALWAYS_RESERVED: &[&str] = &[
        "authorization",
        "content-encoding",
        "content-type",
        "user-agent",
        "host",
        "content-length",
    ];
    for header in target.headers.keys() {
        let lower = header.to_ascii_lowercase();
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            errors.push(ConfigError::new(
                format!("{base}.headers"),
                format!("{header:?} is not a valid header name"),
            ));
        } else if ALWAYS_RESERVED.contains(&lower.as_str())
            || target.reserved_headers.contains(&lower.as_str())
        {
            errors.push(ConfigError::new(
                format!("{base}.headers"),
                format!("{header:?} is set by strata and cannot be overridden"),
            ));
        }
    }
    validate_queue(target.queue, &format!("{base}.queue_config"), errors);
    if target.remote_timeout.get().is_zero() {
        errors.push(ConfigError::new(format!("{base}.remote_timeout"), "must be greater than 0"));
    }
}

pub(super) fn validate_loki_target(target: &LokiTarget, base: &str, errors: &mut Vec<ConfigError>) {
    relabel(
        &target.relabel_configs,
        NameValidation::Legacy,
        &format!("{base}.relabel_configs"),
        errors,
    );
    if let Some(tenant) = &target.tenant_id {
        if tenant.is_empty() || http::HeaderValue::from_str(tenant).is_err() {
            errors.push(ConfigError::new(
                format!("{base}.tenant_id"),
                format!("{tenant:?} is not a usable X-Scope-OrgID value"),
            ));
        }
    }
    validate_http_target(
        &HttpTargetView {
            base: base.to_owned(),
            url: &target.url,
            headers: &target.headers,
            basic_auth: target.basic_auth.as_ref(),
            bearer_token: target.bearer_token.is_some(),
            bearer_token_file: target.bearer_token_file.is_some(),
            remote_timeout: target.remote_timeout,
            queue: &target.queue_config,
            reserved_headers: &["x-scope-orgid"],
        },
        errors,
    );
}

pub(super) fn validate_otlp_target(target: &OtlpTarget, base: &str, errors: &mut Vec<ConfigError>) {
    relabel(
        &target.resource_relabel_configs,
        NameValidation::Utf8,
        &format!("{base}.resource_relabel_configs"),
        errors,
    );
    validate_http_target(
        &HttpTargetView {
            base: base.to_owned(),
            url: &target.endpoint,
            headers: &target.headers,
            basic_auth: target.basic_auth.as_ref(),
            bearer_token: target.bearer_token.is_some(),
            bearer_token_file: target.bearer_token_file.is_some(),
            remote_timeout: target.remote_timeout,
            queue: &target.queue_config,
            reserved_headers: &["te", "grpc-encoding", "grpc-accept-encoding", "grpc-timeout"],
        },
        errors,
    );
    // The URL check above reports under `.url`; OTLP calls the key `endpoint`.
    for error in errors.iter_mut() {
        if error.path == format!("{base}.url") {
            error.path = format!("{base}.endpoint");
        }
    }
}

fn positive(base: &str, values: &[(&str, u64)], errors: &mut Vec<ConfigError>) {
    for (name, value) in values {
        if *value == 0 {
            errors.push(ConfigError::new(format!("{base}.{name}"), "must be greater than 0"));
        }
    }
}

fn relabel(
    configs: &[RelabelConfig],
    validation: NameValidation,
    path: &str,
    errors: &mut Vec<ConfigError>,
) {
    if let Err(e) = Relabeler::with_validation(configs, validation) {
        errors.push(ConfigError::new(path.to_owned(), e.to_string()));
    }
}
