//! `storage:` — the WAL, the head, blocks in an object store and the tier policy
//! (`DESIGN.md` §5). Defaults are the platform's retention policy (`PLATFORM.md`): metrics raw
//! 15 d, 5 m downsampled 90 d, 1 h downsampled 7 y; logs 30 d; traces 14 d.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ByteSize, ConfigError, PromDuration};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Local directory for the WAL, the upload spool and sink positions.
    pub path: String,
    /// Object store for blocks: a directory path or `file://`, `s3://bucket/prefix`, `gs://`,
    /// `az://` URL (credentials from the usual environment variables of each cloud). Empty:
    /// `<path>/blocks`.
    pub bucket_url: String,
    /// Extra `object_store` options (e.g. `aws_endpoint`, `aws_allow_http`, `aws_region`).
    pub bucket_options: BTreeMap<String, String>,
    pub wal: WalConfig,
    pub head: HeadConfig,
    pub retention: RetentionConfig,
    pub compactor: CompactorConfig,
    /// Optional per-tier object tags / storage class for bucket lifecycle rules, keyed by tier
    /// name (`raw`, `5m`, `1h`).
    pub tier_objects: BTreeMap<String, TierObjects>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: "./data".into(),
            bucket_url: String::new(),
            bucket_options: BTreeMap::new(),
            wal: WalConfig::default(),
            head: HeadConfig::default(),
            retention: RetentionConfig::default(),
            compactor: CompactorConfig::default(),
            tier_objects: BTreeMap::new(),
        }
    }
}

/// When the WAL is fsynced. `interval` (the default) acknowledges after the write reached the
/// OS — safe against a process crash or kill -9 — and fsyncs at least every `fsync_interval`,
/// bounding what a power failure can lose. `always` fsyncs before every acknowledgement (group
/// commit: concurrent requests share one fsync).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    #[default]
    Interval,
    Always,
}

/// How WAL records are compressed (Prometheus compresses its WAL with snappy by default too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalCompression {
    #[default]
    Snappy,
    None,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    pub fsync: FsyncPolicy,
    pub compression: WalCompression,
    pub fsync_interval: PromDuration,
    pub segment_size: ByteSize,
    /// Ingest answers 503 once the WAL holds more than this (forward targets far behind).
    pub max_size: ByteSize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Interval,
            compression: WalCompression::Snappy,
            fsync_interval: PromDuration::from_secs(1),
            segment_size: ByteSize::mib(64),
            max_size: ByteSize::mib(8192),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadConfig {
    /// How much recent data the head holds before it is cut into blocks (Prometheus' 2 h).
    pub block_duration: PromDuration,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self { block_duration: PromDuration::from_secs(2 * 3600) }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub metrics: MetricsRetention,
    /// Raw log blocks.
    pub logs: PromDuration,
    /// Raw trace blocks.
    pub traces: PromDuration,
}

const DAY: u64 = 24 * 3600;

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            metrics: MetricsRetention::default(),
            logs: PromDuration::from_secs(30 * DAY),
            traces: PromDuration::from_secs(14 * DAY),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsRetention {
    pub raw: PromDuration,
    #[serde(rename = "5m")]
    pub five_minutes: PromDuration,
    #[serde(rename = "1h")]
    pub one_hour: PromDuration,
}

impl Default for MetricsRetention {
    fn default() -> Self {
        Self {
            raw: PromDuration::from_secs(15 * DAY),
            five_minutes: PromDuration::from_secs(90 * DAY),
            one_hour: PromDuration::from_secs(2555 * DAY),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// Whether this process may compact (it still has to win the lease).
    pub enabled: bool,
    /// How often the compactor looks for work.
    pub interval: PromDuration,
    /// How long a won lease is valid without renewal.
    pub lease_duration: PromDuration,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: PromDuration::from_secs(300),
            lease_duration: PromDuration::from_secs(120),
        }
    }
}

/// How objects of one tier are written, for bucket lifecycle rules.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierObjects {
    /// S3 storage class (`STANDARD_IA`, `GLACIER_IR`, …); applied as the `x-amz-storage-class`
    /// attribute where the store supports it.
    pub storage_class: Option<String>,
    /// Object tags.
    pub tags: BTreeMap<String, String>,
}

pub(super) fn validate_storage(storage: &StorageConfig, errors: &mut Vec<ConfigError>) {
    let base = "storage";
    if storage.path.is_empty() {
        errors.push(ConfigError::new(format!("{base}.path"), "must not be empty"));
    }
    if storage.wal.fsync_interval.get().is_zero() {
        errors
            .push(ConfigError::new(format!("{base}.wal.fsync_interval"), "must be greater than 0"));
    }
    if storage.wal.segment_size.bytes() < 64 * 1024 {
        errors.push(ConfigError::new(
            format!("{base}.wal.segment_size"),
            format!("{} is below the minimum of 64KiB", storage.wal.segment_size),
        ));
    }
    if storage.wal.max_size < storage.wal.segment_size {
        errors.push(ConfigError::new(
            format!("{base}.wal.max_size"),
            format!(
                "{} is smaller than segment_size {}",
                storage.wal.max_size, storage.wal.segment_size
            ),
        ));
    }
    let block = storage.head.block_duration.get().as_secs();
    if !(60..=DAY).contains(&block) || DAY % block != 0 {
        errors.push(ConfigError::new(
            format!("{base}.head.block_duration"),
            "must be at least 1m, at most 24h, and divide a day evenly (e.g. 30m, 1h, 2h)",
        ));
    }
    let r = &storage.retention;
    for (name, value) in [
        ("metrics.raw", r.metrics.raw),
        ("metrics.5m", r.metrics.five_minutes),
        ("metrics.1h", r.metrics.one_hour),
        ("logs", r.logs),
        ("traces", r.traces),
    ] {
        if value.get().is_zero() {
            errors.push(ConfigError::new(
                format!("{base}.retention.{name}"),
                "must be greater than 0",
            ));
        }
    }
    if storage.compactor.interval.get().is_zero() {
        errors
            .push(ConfigError::new(format!("{base}.compactor.interval"), "must be greater than 0"));
    }
    if storage.compactor.lease_duration.get().as_secs() < 10 {
        errors.push(ConfigError::new(
            format!("{base}.compactor.lease_duration"),
            "must be at least 10s",
        ));
    }
    for tier in storage.tier_objects.keys() {
        if !["raw", "5m", "1h"].contains(&tier.as_str()) {
            errors.push(ConfigError::new(
                format!("{base}.tier_objects.{tier}"),
                "unknown tier; use raw, 5m or 1h",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn errors(text: &str) -> Vec<String> {
        let config = Config::parse(text, "t.yml", &|_| None).expect("parses");
        match config.validate("t.yml") {
            Ok(()) => Vec::new(),
            Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_the_platform_retention_and_validate() {
        let config = Config::default();
        let retention = &config.storage.retention;
        assert_eq!(retention.metrics.raw.get().as_secs(), 15 * 86_400);
        assert_eq!(retention.metrics.five_minutes.get().as_secs(), 90 * 86_400);
        assert_eq!(retention.metrics.one_hour.get().as_secs(), 2555 * 86_400);
        assert_eq!(retention.logs.get().as_secs(), 30 * 86_400);
        assert_eq!(retention.traces.get().as_secs(), 14 * 86_400);
        assert_eq!(config.storage.wal.fsync_interval.get().as_secs(), 1);
        assert!(errors("").is_empty());
    }

    #[test]
    fn bad_values_are_named_with_their_path() {
        let found = errors(
            "storage:\n  wal: {segment_size: 1KiB, fsync_interval: 0s}\n  head: {block_duration: 7m}\n  \
             retention: {metrics: {5m: 0s}}\n  tier_objects: {2h: {}}\n",
        );
        for needle in [
            "storage.wal.segment_size: 1KiB is below the minimum",
            "storage.wal.fsync_interval: must be greater than 0",
            "storage.head.block_duration: must be at least 1m",
            "storage.retention.metrics.5m: must be greater than 0",
            "storage.tier_objects.2h: unknown tier",
        ] {
            assert!(found.iter().any(|e| e.starts_with(needle)), "{needle} not in {found:#?}");
        }
        let typo = Config::parse("storage: {wal: {fsnyc: always}}", "t.yml", &|_| None);
        assert!(typo.is_err(), "unknown keys are rejected");
    }
}
