//! `alerting:` config: where alerts go and how much may wait, after Prometheus'
//! `alertmanager_config` (<https://prometheus.io/docs/prometheus/2.53/configuration/configuration/#alertmanager_config>)
//! and its `--alertmanager.notification-queue-capacity` flag.
//!
//! ```yaml
//! alerting:
//!   queue_capacity: 10000
//!   alert_relabel_configs: []                 # applied after the external labels
//!   alertmanagers:
//!     - urls: ["http://alertmanager:9093"]     # or static_configs + scheme + path_prefix
//!       timeout: 10s
//! ```
//!
//! Only Alertmanager API v2 over plain HTTP is spoken; `https` is rejected by [`validate`]
//! (this build has no TLS client), as is an Alertmanager entry without any target.
//!
//! [`validate`]: AlertingConfig::validate

use serde::{Deserialize, Serialize};

use crate::config::units::PromDuration;
use crate::config::ConfigError;
use crate::relabel::{RelabelConfig, Relabeler};

/// Prometheus' default `--alertmanager.notification-queue-capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Prometheus' alerts per request (`maxBatchSize`).
pub const DEFAULT_MAX_BATCH_SIZE: usize = 64;
/// Prometheus' default `alertmanager_config.timeout`.
pub const DEFAULT_TIMEOUT: PromDuration = PromDuration::from_secs(10);

fn default_queue_capacity() -> usize {
    DEFAULT_QUEUE_CAPACITY
}

fn default_max_batch_size() -> usize {
    DEFAULT_MAX_BATCH_SIZE
}

fn default_timeout() -> PromDuration {
    DEFAULT_TIMEOUT
}

fn default_scheme() -> String {
    "http".into()
}

fn default_api_version() -> String {
    "v2".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Every alert goes to every one of these.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
    /// Alerts waiting to be sent; when full, the oldest are dropped (and counted).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Most alerts in one request.
    #[serde(default = "default_max_batch_size")]
    pub max_batch_size: usize,
    /// Applied to every alert's labels after the external labels; an alert a rule drops is
    /// not sent (Prometheus' `alerting.alert_relabel_configs`).
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            alertmanagers: Vec::new(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            alert_relabel_configs: Vec::new(),
        }
    }
}

/// One group of Alertmanagers sharing scheme, path prefix and timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://host:9093`, or with a path prefix); `/api/v2/alerts` is appended.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `host:port` targets, combined with `scheme` and `path_prefix` (Prometheus' form).
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub path_prefix: String,
    /// Per request, retries included.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// Only `v2` (Alertmanager removed API v1 in 0.27).
    #[serde(default = "default_api_version")]
    pub api_version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
}

impl AlertmanagerConfig {
    /// The `POST` endpoints of this group: `<base>/api/v2/alerts` per URL or target.
    pub fn endpoints(&self) -> Vec<String> {
        let mut bases: Vec<String> =
            self.urls.iter().map(|url| url.trim_end_matches('/').to_owned()).collect();
        let prefix = self.path_prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() || prefix.starts_with('/') {
            prefix.to_owned()
        } else {
            format!("/{prefix}")
        };
        for target in self.static_configs.iter().flat_map(|s| &s.targets) {
            bases.push(format!("{}://{target}{prefix}", self.scheme));
        }
        bases.into_iter().map(|base| format!("{base}/api/v2/alerts")).collect()
    }
}

impl AlertingConfig {
    /// Problems of the `alerting` section at config path `base`.
    pub fn validate(&self, base: &str, errors: &mut Vec<ConfigError>) {
        let mut error = |path: String, message: String| errors.push(ConfigError { path, message });
        if self.queue_capacity == 0 {
            error(format!("{base}.queue_capacity"), "must be at least 1".into());
        }
        if self.max_batch_size == 0 {
            error(format!("{base}.max_batch_size"), "must be at least 1".into());
        }
        if let Err(e) = Relabeler::new(&self.alert_relabel_configs) {
            error(format!("{base}.alert_relabel_configs"), e.to_string());
        }
        for (index, am) in self.alertmanagers.iter().enumerate() {
            let at = format!("{base}.alertmanagers[{index}]");
            if am.api_version != "v2" {
                error(
                    format!("{at}.api_version"),
                    format!("{:?} is not supported: only v2 is", am.api_version),
                );
            }
            if am.scheme != "http" {
                error(
                    format!("{at}.scheme"),
                    format!(
                        "{:?} is not supported: only http (no TLS client in this build)",
                        am.scheme
                    ),
                );
            }
            if am.timeout.get().is_zero() {
                error(format!("{at}.timeout"), "must be more than 0".into());
            }
            let endpoints = am.endpoints();
            if endpoints.is_empty() {
                error(at.clone(), "needs at least one of urls or static_configs targets".into());
            }
            for (i, url) in am.urls.iter().enumerate() {
                match url::Url::parse(url) {
                    Ok(parsed) if parsed.scheme() == "http" && parsed.host().is_some() => {}
                    Ok(_) => error(
                        format!("{at}.urls[{i}]"),
                        format!("{url:?} is not an http:// URL with a host"),
                    ),
                    Err(e) => error(format!("{at}.urls[{i}]"), format!("{url:?}: {e}")),
                }
            }
            for endpoint in endpoints.iter().skip(am.urls.len()) {
                if let Err(e) = endpoint.parse::<http::Uri>() {
                    error(format!("{at}.static_configs"), format!("{endpoint:?}: {e}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_prometheus_defaults() {
        let config: AlertingConfig =
            serde_yaml::from_str("alertmanagers: [{urls: ['http://am:9093/']}]").unwrap();
        assert_eq!(config.queue_capacity, 10_000);
        assert_eq!(config.max_batch_size, 64);
        assert_eq!(config.alertmanagers[0].timeout, PromDuration::from_secs(10));
        assert_eq!(config.alertmanagers[0].endpoints(), ["http://am:9093/api/v2/alerts"]);
        let mut errors = Vec::new();
        config.validate("alerting", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn static_targets_take_scheme_and_prefix() {
        let config: AlertingConfig = serde_yaml::from_str(
            "alertmanagers: [{static_configs: [{targets: ['a:9093', 'b:9093']}], path_prefix: am}]",
        )
        .unwrap();
        assert_eq!(
            config.alertmanagers[0].endpoints(),
            ["http://a:9093/am/api/v2/alerts", "http://b:9093/am/api/v2/alerts"]
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(serde_yaml::from_str::<AlertingConfig>("alertmanager: []").is_err());
        assert!(serde_yaml::from_str::<AlertingConfig>("alertmanagers: [{url: x}]").is_err());
        let config: AlertingConfig = serde_yaml::from_str(
            "queue_capacity: 0\nalert_relabel_configs: [{source_labels: [a], regex: '('}]\nalertmanagers: [{scheme: https, api_version: v1}, {urls: ['ftp://x']}]",
        )
        .unwrap();
        let mut errors = Vec::new();
        config.validate("alerting", &mut errors);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "alerting.queue_capacity",
                "alerting.alert_relabel_configs",
                "alerting.alertmanagers[0].api_version",
                "alerting.alertmanagers[0].scheme",
                "alerting.alertmanagers[0]",
                "alerting.alertmanagers[1].urls[0]",
            ]
        );
    }
}
