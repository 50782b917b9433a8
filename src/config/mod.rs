//! Strata's YAML config: raw serde structs (`deny_unknown_fields`, typed units, named defaults)
//! → [`Config::validate`], whose errors quote the config path and the bad value.
//!
//! Loading is two-phase, like ripgrep's args: parse the text into a YAML tree, expand `${VAR}` in
//! string values ([`env`]), then deserialize with the path of any failure kept
//! (`serde_path_to_error`). Validation rejects anything that would change behaviour in a way the
//! user did not ask for; nothing is repaired silently. An absent file means the all-in-one
//! defaults ([`Config::default`]).
//!
//! The keys under `server`, `ingest.remote_write` and `forward.remote_write` are part of the user
//! contract; their names follow Prometheus' `remote_write` / `queue_config` where one exists.

pub mod env;
pub mod query;
pub mod signals;
pub mod storage;
pub mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::relabel::{NameValidation, RelabelConfig, Relabeler};
pub use query::QueryConfig;
pub use signals::{
    Compression, LokiIngestConfig, LokiTarget, OtlpIngestConfig, OtlpLogsConfig, OtlpMetricsConfig,
    OtlpProtocol, OtlpTarget, OtlpTranslationStrategy, ZipkinIngestConfig,
};
pub use storage::{FsyncPolicy, StorageConfig};
pub use units::{ByteSize, PromDuration};

/// A config problem: where (dotted path, `[i]` for list items) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// Every problem found in one config, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config {}:", self.source)?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Which part of the pipeline this process plays (`DESIGN.md` §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything in one process (the default).
    #[default]
    AllInOne,
    /// Node agent: receive, validate, relabel, forward.
    Agent,
    /// Central aggregator: receive (pushes from agents), WAL, head, blocks, compaction.
    Aggregator,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub role: Role,
    pub server: ServerConfig,
    pub ingest: IngestConfig,
    pub forward: ForwardConfig,
    pub storage: StorageConfig,
    pub query: QueryConfig,
    pub rules: crate::rules::RulesConfig,
    pub alerting: crate::notifier::AlertingConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The one HTTP listener for ingest, query and operations.
    pub http_listen_address: String,
    /// How long shutdown waits for forward queues to drain before dropping what is left.
    pub shutdown_timeout: PromDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "127.0.0.1:9700".into(),
            shutdown_timeout: PromDuration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub remote_write: RemoteWriteIngestConfig,
    pub loki: LokiIngestConfig,
    pub otlp: OtlpIngestConfig,
    pub zipkin: ZipkinIngestConfig,
    /// Tenant of log and trace data that arrives without `X-Scope-OrgID` (Loki's `fake`).
    pub default_tenant: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            remote_write: RemoteWriteIngestConfig::default(),
            loki: LokiIngestConfig::default(),
            otlp: OtlpIngestConfig::default(),
            zipkin: ZipkinIngestConfig::default(),
            default_tenant: crate::model::DEFAULT_TENANT.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteIngestConfig {
    /// Largest accepted request body, compressed (413 beyond).
    pub max_body_size: ByteSize,
    /// Largest accepted body after snappy decoding; checked against the snappy header before
    /// any allocation (413 beyond).
    pub max_decoded_size: ByteSize,
    /// Label name rules: `legacy` (`[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus 2.x) or `utf8`.
    pub label_name_validation: NameValidation,
    pub limits: SeriesLimits,
    /// Relabeling applied to every received series (Prometheus `relabel_config` list).
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Entries in the per-series validation + relabel result cache.
    pub relabel_cache_size: u64,
}

impl Default for RemoteWriteIngestConfig {
    fn default() -> Self {
        Self {
            max_body_size: ByteSize::mib(32),
            max_decoded_size: ByteSize::mib(128),
            label_name_validation: NameValidation::Legacy,
            limits: SeriesLimits::default(),
            metric_relabel_configs: Vec::new(),
            relabel_cache_size: 262_144,
        }
    }
}

/// Per-series limits; a series over one is rejected with a 400 naming it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeriesLimits {
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        Self {
            max_label_names_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    pub remote_write: Vec<RemoteWriteTarget>,
    pub loki: Vec<LokiTarget>,
    pub otlp: Vec<OtlpTarget>,
}

/// One remote-write destination, like a Prometheus `remote_write` entry.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteTarget {
    /// Name used in logs and as the `target` label of metrics; defaults to `remote_write_<i>`.
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// 1 (`prometheus.WriteRequest`) or 2 (`io.prometheus.write.v2.Request`).
    #[serde(default = "default_protocol_version")]
    pub protocol_version: u8,
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default = "default_true")]
    pub send_exemplars: bool,
    #[serde(default = "default_true")]
    pub send_native_histograms: bool,
    #[serde(default)]
    pub queue_config: QueueConfig,
}

fn default_protocol_version() -> u8 {
    1
}
pub(crate) fn default_remote_timeout() -> PromDuration {
    PromDuration::from_secs(30)
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
}

/// Batching, sharding and retry of one target. Names follow Prometheus' `queue_config`; the
/// shard count is fixed (`shards`) rather than resharded dynamically.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples (plus histograms and exemplars) each shard may hold; when full, ingest answers 503.
    pub capacity: usize,
    /// Parallel senders; series are assigned to a shard by their hash, so order per series holds.
    pub shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: PromDuration,
    pub min_backoff: PromDuration,
    pub max_backoff: PromDuration,
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 20_000,
            shards: 4,
            max_samples_per_send: 2_000,
            batch_send_deadline: PromDuration::from_secs(5),
            min_backoff: PromDuration::from_millis(30),
            max_backoff: PromDuration::from_secs(5),
            retry_on_http_429: true,
        }
    }
}

impl RemoteWriteTarget {
    /// The configured name, or `remote_write_<index>`.
    pub fn display_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("remote_write_{index}"))
    }
}

impl Config {
    /// Reads and parses `path` (with `${VAR}` expansion from the process environment).
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: source.clone(),
            errors: vec![ConfigError::new("<file>", format!("cannot read: {e}"))],
        })?;
        let mut config = Self::parse(&text, &source, &|name| std::env::var(name).ok())?;
        // As Prometheus does, relative rule file paths are relative to the config file.
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            for pattern in &mut config.rules.rule_files {
                if Path::new(pattern.as_str()).is_relative() {
                    *pattern = dir.join(pattern.as_str()).display().to_string();
                }
            }
        }
        Ok(config)
    }

    /// Parses YAML text; `lookup` resolves `${VAR}` references.
    pub fn parse(
        text: &str,
        source: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let fail = |path: &str, message: String| ConfigErrors {
            source: source.to_owned(),
            errors: vec![ConfigError::new(path, message)],
        };
        let mut tree: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| fail("<yaml>", e.to_string()))?;
        if tree.is_null() {
            return Ok(Self::default());
        }
        env::expand_tree(&mut tree, &mut Vec::new(), lookup).map_err(|e| fail("<env>", e))?;
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { "<root>".to_owned() } else { path };
            fail(&path, e.into_inner().to_string())
        })
    }

    /// Checks everything that parsing cannot: ranges, URLs, relabel rules, combinations.
    pub fn validate(&self, source: &str) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        if self.server.http_listen_address.parse::<SocketAddr>().is_err() {
            errors.push(ConfigError::new(
                "server.http_listen_address",
                format!(
                    "{:?} is not an address of the form host:port",
                    self.server.http_listen_address
                ),
            ));
        }
        self.validate_ingest(&mut errors);
        self.validate_forward(&mut errors);
        storage::validate_storage(&self.storage, &mut errors);
        self.query.validate(&mut errors);
        if let Err(message) = self.rules.validate("rules") {
            // The message starts with the path of the offending field.
            let (path, message) = message.split_once(": ").unwrap_or(("rules", &message));
            errors.push(ConfigError::new(path, message));
        }
        if self.role == Role::Agent && !self.rules.rule_files.is_empty() {
            errors.push(ConfigError::new(
                "rules.rule_files",
                "an agent keeps no data to evaluate rules over; run rules on an aggregator or all-in-one",
            ));
        }
        self.alerting.validate("alerting", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors { source: source.to_owned(), errors })
        }
    }

    fn validate_ingest(&self, errors: &mut Vec<ConfigError>) {
        let rw = &self.ingest.remote_write;
        let base = "ingest.remote_write";
        if rw.max_body_size.bytes() == 0 {
            errors
                .push(ConfigError::new(format!("{base}.max_body_size"), "must be greater than 0"));
        }
        if rw.max_decoded_size < rw.max_body_size {
            errors.push(ConfigError::new(
                format!("{base}.max_decoded_size"),
                format!(
                    "{} is smaller than max_body_size {}",
                    rw.max_decoded_size, rw.max_body_size
                ),
            ));
        }
        if rw.relabel_cache_size == 0 {
            errors.push(ConfigError::new(
                format!("{base}.relabel_cache_size"),
                "must be greater than 0",
            ));
        }
        let limits = &rw.limits;
        for (name, value) in [
            ("max_label_names_per_series", limits.max_label_names_per_series),
            ("max_label_name_length", limits.max_label_name_length),
            ("max_label_value_length", limits.max_label_value_length),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(
                    format!("{base}.limits.{name}"),
                    "must be greater than 0",
                ));
            }
        }
        if let Err(e) =
            Relabeler::with_validation(&rw.metric_relabel_configs, rw.label_name_validation)
        {
            errors.push(ConfigError::new(format!("{base}.metric_relabel_configs"), e.to_string()));
        }
        signals::validate_loki_ingest(&self.ingest.loki, errors);
        signals::validate_otlp_ingest(&self.ingest.otlp, errors);
        signals::validate_zipkin_ingest(&self.ingest.zipkin, errors);
        let tenant = &self.ingest.default_tenant;
        if tenant.is_empty() || http::HeaderValue::from_str(tenant).is_err() || tenant.contains('/')
        {
            errors.push(ConfigError::new(
                "ingest.default_tenant",
                format!("{tenant:?} is not a usable tenant id (non-empty, no '/', header-safe)"),
            ));
        }
    }

    fn validate_forward(&self, errors: &mut Vec<ConfigError>) {
        // Target names label metrics, so they are unique across every signal's targets.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut check_name = |name: String, base: &str, errors: &mut Vec<ConfigError>| {
            if let Some(previous) = names.insert(name.clone(), base.to_owned()) {
                errors.push(ConfigError::new(
                    format!("{base}.name"),
                    format!("{name:?} is already used by {previous}"),
                ));
            }
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                errors.push(ConfigError::new(
                    format!("{base}.name"),
                    format!("{name:?} may only contain letters, digits, '_' and '-'"),
                ));
            }
        };
        let validation = self.ingest.remote_write.label_name_validation;
        for (index, target) in self.forward.remote_write.iter().enumerate() {
            let base = format!("forward.remote_write[{index}]");
            check_name(target.display_name(index), &base, errors);
            if !matches!(target.protocol_version, 1 | 2) {
                errors.push(ConfigError::new(
                    format!("{base}.protocol_version"),
                    format!(
                        "{} is not a remote-write protocol version (1 or 2)",
                        target.protocol_version
                    ),
                ));
            }
            if let Err(e) = Relabeler::with_validation(&target.write_relabel_configs, validation) {
                errors
                    .push(ConfigError::new(format!("{base}.write_relabel_configs"), e.to_string()));
            }
            signals::validate_http_target(
                &signals::HttpTargetView {
                    base,
                    url: &target.url,
                    headers: &target.headers,
                    basic_auth: target.basic_auth.as_ref(),
                    bearer_token: target.bearer_token.is_some(),
                    bearer_token_file: target.bearer_token_file.is_some(),
                    remote_timeout: target.remote_timeout,
                    queue: &target.queue_config,
                    reserved_headers: &["x-prometheus-remote-write-version"],
                },
                errors,
            );
        }
        for (index, target) in self.forward.loki.iter().enumerate() {
            let base = format!("forward.loki[{index}]");
            check_name(target.display_name(index), &base, errors);
            signals::validate_loki_target(target, &base, errors);
        }
        for (index, target) in self.forward.otlp.iter().enumerate() {
            let base = format!("forward.otlp[{index}]");
            check_name(target.display_name(index), &base, errors);
            signals::validate_otlp_target(target, &base, errors);
        }
    }
}

pub(crate) fn validate_queue(queue: &QueueConfig, base: &str, errors: &mut Vec<ConfigError>) {
    for (name, value) in [
        ("capacity", queue.capacity),
        ("shards", queue.shards),
        ("max_samples_per_send", queue.max_samples_per_send),
    ] {
        if value == 0 {
            errors.push(ConfigError::new(format!("{base}.{name}"), "must be greater than 0"));
        }
    }
    if queue.shards > 256 {
        errors.push(ConfigError::new(
            format!("{base}.shards"),
            format!("{} is more than 256", queue.shards),
        ));
    }
    if queue.capacity < queue.max_samples_per_send {
        errors.push(ConfigError::new(
            format!("{base}.capacity"),
            format!(
                "{} is smaller than max_samples_per_send {}",
                queue.capacity, queue.max_samples_per_send
            ),
        ));
    }
    if queue.batch_send_deadline.get().is_zero() {
        errors.push(ConfigError::new(
            format!("{base}.batch_send_deadline"),
            "must be greater than 0",
        ));
    }
    if queue.min_backoff > queue.max_backoff {
        errors.push(ConfigError::new(
            format!("{base}.min_backoff"),
            format!("{} is greater than max_backoff {}", queue.min_backoff, queue.max_backoff),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, "test.yml", &|name| (name == "PASS").then(|| "hunter2".to_owned()))
    }

    #[test]
    fn relative_rule_files_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.yml");
        std::fs::write(&path, "rules: {rule_files: [rules/*.yml, /etc/strata/x.yml]}\n").unwrap();
        let config = Config::load(&path).unwrap();
        let expected = dir.path().join("rules/*.yml").display().to_string();
        assert_eq!(config.rules.rule_files, vec![expected, "/etc/strata/x.yml".to_owned()]);
    }

    /// `config/all-in-one.yml` claims to spell out the built-in defaults: keep it true.
    #[test]
    fn shipped_all_in_one_file_is_the_default() {
        let text = include_str!("../../config/all-in-one.yml");
        assert_eq!(parse(text).unwrap(), Config::default());
    }

    #[test]
    fn empty_file_is_all_in_one_default() {
        let config = parse("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.http_listen_address, "127.0.0.1:9700");
        config.validate("default").unwrap();
    }

    #[test]
    fn contract_keys_parse() {
        let config = parse(
            r#"
server:
  http_listen_address: 127.0.0.1:9701
ingest:
  remote_write:
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
forward:
  remote_write:
    - url: http://127.0.0.1:9090/api/v1/write
      protocol_version: 2
      write_relabel_configs: []
      headers: {X-Scope-OrgID: team-a}
      basic_auth: {username: u, password: "${PASS}"}
      queue_config: {max_samples_per_send: 500, batch_send_deadline: 1s}
"#,
        )
        .unwrap();
        config.validate("t").unwrap();
        let target = &config.forward.remote_write[0];
        assert_eq!(target.protocol_version, 2);
        assert_eq!(target.basic_auth.as_ref().unwrap().password.as_deref(), Some("hunter2"));
        assert_eq!(target.queue_config.batch_send_deadline, PromDuration::from_secs(1));
        assert_eq!(target.queue_config.shards, 4);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let err =
            parse("forward:\n  remote_write:\n    - url: http://a:1/\n      queue_confg: {}\n")
                .unwrap_err();
        assert_eq!(err.errors[0].path, "forward.remote_write[0].queue_confg");
        assert!(err.errors[0].message.contains("unknown field `queue_confg`"), "{err}");
    }

    #[test]
    fn bad_units_name_path_and_value() {
        let err = parse(
            "forward:\n  remote_write:\n    - url: http://a:1/\n      remote_timeout: 5 seconds\n",
        )
        .unwrap_err();
        assert_eq!(err.errors[0].path, "forward.remote_write[0].remote_timeout");
        assert!(err.errors[0].message.contains("5 seconds"), "{err}");
    }

    #[test]
    fn validation_collects_every_error() {
        let config = parse(
            r#"
server: {http_listen_address: "nowhere"}
forward:
  remote_write:
    - url: ftp://x/
      protocol_version: 3
      queue_config: {shards: 0}
      write_relabel_configs: [{action: hashmod, target_label: t}]
"#,
        )
        .unwrap();
        let err = config.validate("t").unwrap_err();
        let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"server.http_listen_address"), "{err}");
        assert!(paths.contains(&"forward.remote_write[0].url"), "{err}");
        assert!(paths.contains(&"forward.remote_write[0].protocol_version"), "{err}");
        assert!(paths.contains(&"forward.remote_write[0].queue_config.shards"), "{err}");
        assert!(paths.contains(&"forward.remote_write[0].write_relabel_configs"), "{err}");
        assert!(err.to_string().contains("\"ftp://x/\""), "{err}");
    }

    #[test]
    fn missing_env_var_is_an_error() {
        let err = parse(
            "forward:\n  remote_write:\n    - url: http://a:1/\n      bearer_token: ${NOPE}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("NOPE is not set"), "{err}");
    }
}
