//! The rule manager: loads rule files, evaluates groups on their schedule, writes output,
//! sends alerts, and answers `/api/v1/rules` and `/api/v1/alerts` (see [`super::api`]).
//!
//! Follows Prometheus 3.x `rules/manager.go` and `cmd/prometheus/main.go` (`sendAlerts`):
//! * `load` validates every file before anything changes; on any error the old groups stay and
//!   the errors are returned (for `/-/reload` and SIGHUP). Unchanged rules keep their alert
//!   state across a reload (`CopyState`); groups that disappear get stale markers for the series
//!   they wrote. Alert state is restored from `ALERTS_FOR_STATE` only for groups of the first
//!   load (Prometheus' default, `--rules.alert.restore-new-rule-groups` unset);
//! * a group's first evaluation is at its next aligned tick; missed ticks are skipped;
//! * alerts go out with external labels added where the alert lacks them, `startsAt` = the
//!   firing time, `endsAt` = the resolve time or `validUntil`, and `generatorURL` =
//!   `external_url + /graph?g0.expr=…&g0.tab=1`. External labels are not written to `ALERTS`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::config::units::PromDuration;
use crate::model::labels::Labels;
use crate::notifier::{Alert, SendAlerts};
use crate::promql::{Engine, Queryable};

use super::alerting::TemplateContext;
use super::file;
use super::group::{AlertToSend, Group};
use super::{query_vector, template_query, SampleSink};

/// The `rules:` section of the config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule file paths or globs (`rules/*.yml`).
    pub rule_files: Vec<String>,
    /// Interval of groups that set none (Prometheus' `global.evaluation_interval`).
    pub evaluation_interval: PromDuration,
    /// Added to alerts sent to Alertmanager (not to stored `ALERTS`).
    pub external_labels: BTreeMap<String, String>,
    /// Prefix of `generatorURL` and the `externalURL` template value.
    pub external_url: String,
    /// Firing alerts are re-sent this often (`--rules.alert.resend-delay`).
    pub resend_delay: PromDuration,
    /// How long an outage may last for alert state to be restored (`--rules.alert.for-outage-tolerance`).
    pub outage_tolerance: PromDuration,
    /// Least time a restored alert waits before firing (`--rules.alert.for-grace-period`).
    pub for_grace_period: PromDuration,
}

pub const DEFAULT_EVALUATION_INTERVAL: PromDuration = PromDuration::from_secs(60);
pub const DEFAULT_RESEND_DELAY: PromDuration = PromDuration::from_secs(60);
pub const DEFAULT_OUTAGE_TOLERANCE: PromDuration = PromDuration::from_secs(3600);
pub const DEFAULT_FOR_GRACE_PERIOD: PromDuration = PromDuration::from_secs(600);

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            resend_delay: DEFAULT_RESEND_DELAY,
            outage_tolerance: DEFAULT_OUTAGE_TOLERANCE,
            for_grace_period: DEFAULT_FOR_GRACE_PERIOD,
        }
    }
}

impl RulesConfig {
    /// Checks what parsing cannot; `path` is where this section sits in the config.
    pub fn validate(&self, path: &str) -> Result<(), String> {
        if self.evaluation_interval.get().is_zero() {
            return Err(format!("{path}.evaluation_interval: must be greater than 0"));
        }
        for name in self.external_labels.keys() {
            if !file::is_valid_label_name(name) {
                return Err(format!("{path}.external_labels: {name:?} is not a valid label name"));
            }
        }
        if !self.external_url.is_empty() {
            url::Url::parse(&self.external_url)
                .map_err(|e| format!("{path}.external_url: {:?}: {e}", self.external_url))?;
        }
        for pattern in &self.rule_files {
            glob::Pattern::new(pattern)
                .map_err(|e| format!("{path}.rule_files: {pattern:?}: {e}"))?;
        }
        Ok(())
    }

    fn external_labels(&self) -> Labels {
        Labels::from_pairs(self.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

fn millis(duration: PromDuration) -> i64 {
    duration.get().as_millis() as i64
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// Loads and evaluates rule groups. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

struct Inner {
    config: RulesConfig,
    engine: Engine,
    storage: Arc<dyn Queryable>,
    sink: Arc<dyn SampleSink>,
    alerts: Arc<dyn SendAlerts>,
    context: TemplateContext,
    /// In file order, then group order within the file.
    groups: RwLock<Vec<Arc<Mutex<Group>>>>,
    /// Set after the first successful load: later loads do not restore alert state.
    loaded_once: Mutex<bool>,
    /// Wakes the run loop after a reload.
    changed: Notify,
    metrics: super::metrics::RuleFamilies,
}

impl Manager {
    pub fn new(
        config: RulesConfig,
        engine: Engine,
        storage: Arc<dyn Queryable>,
        sink: Arc<dyn SampleSink>,
        alerts: Arc<dyn SendAlerts>,
    ) -> Self {
        let context = TemplateContext {
            external_labels: config.external_labels(),
            external_url: config.external_url.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                config,
                engine,
                storage,
                sink,
                alerts,
                context,
                groups: RwLock::new(Vec::new()),
                loaded_once: Mutex::new(false),
                changed: Notify::new(),
                metrics: super::metrics::RuleFamilies::default(),
            }),
        }
    }

    /// Reports evaluations into the catalog's rule families (before the manager is cloned).
    pub fn with_metrics(mut self, metrics: super::metrics::RuleFamilies) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics = metrics,
            None => tracing::warn!("rules: metrics attached after the manager was shared; ignored"),
        }
        self
    }

    pub fn config(&self) -> &RulesConfig {
        &self.inner.config
    }

    /// Loads the configured `rule_files`.
    pub fn load_configured(&self) -> Result<(), Vec<String>> {
        let files = self.inner.config.rule_files.clone();
        self.load(&files)
    }

    /// Expands the globs, parses and validates every file, then replaces the loaded groups. On
    /// any error nothing changes and every error is returned.
    pub fn load(&self, patterns: &[String]) -> Result<(), Vec<String>> {
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut errors = Vec::new();
        for pattern in patterns {
            match glob::glob(pattern) {
                Ok(found) => {
                    let mut matched: Vec<PathBuf> = found.filter_map(Result::ok).collect();
                    matched.sort();
                    paths.extend(matched);
                }
                Err(e) => errors.push(format!("{pattern:?}: {e}")),
            }
        }
        paths.dedup();
        let restore = !*self.inner.loaded_once.lock().unwrap_or_else(|e| e.into_inner());
        let default_interval = millis(self.inner.config.evaluation_interval);
        let mut new_groups = Vec::new();
        for path in &paths {
            let name = path.display().to_string();
            match file::load_file(path, false) {
                Ok(rule_file) => {
                    for spec in &rule_file.groups {
                        match Group::from_spec(&name, spec, default_interval, restore) {
                            Ok(group) => new_groups.push(group),
                            Err(e) => errors.push(format!("{name}: {e}")),
                        }
                    }
                }
                Err(file_errors) => errors.extend(file_errors.iter().map(ToString::to_string)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut current = self.inner.groups.write().unwrap_or_else(|e| e.into_inner());
        let mut old: HashMap<(String, String), Arc<Mutex<Group>>> = current
            .iter()
            .map(|g| {
                let group = g.lock().unwrap_or_else(|e| e.into_inner());
                ((group.file.clone(), group.name.clone()), Arc::clone(g))
            })
            .collect();
        for group in &mut new_groups {
            if let Some(previous) = old.remove(&(group.file.clone(), group.name.clone())) {
                let previous = previous.lock().unwrap_or_else(|e| e.into_inner());
                group.copy_state_from(&previous);
            }
        }
        // Groups that went away: their series end now.
        let now = now_ms();
        for removed in old.values() {
            let markers = removed.lock().unwrap_or_else(|e| e.into_inner()).stale_markers(now);
            if !markers.is_empty() {
                if let Err(e) = self.inner.sink.append(markers) {
                    tracing::warn!(error = %e, "rules: writing stale markers of a removed group failed");
                }
            }
        }
        *current = new_groups.into_iter().map(|g| Arc::new(Mutex::new(g))).collect();
        drop(current);
        *self.inner.loaded_once.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.inner.changed.notify_one();
        Ok(())
    }

    /// The loaded groups, for the API.
    pub(super) fn groups(&self) -> Vec<Arc<Mutex<Group>>> {
        self.inner.groups.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Evaluates groups on their schedule until `shutdown` turns true. Evaluations run on the
    /// blocking pool: the engine is synchronous and may be slow.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut next_due: HashMap<(String, String), i64> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = now_ms();
            let groups = self.groups();
            let mut keys = Vec::with_capacity(groups.len());
            let mut wake_at = now + 3_600_000;
            for group in groups {
                let (key, interval, aligned) = {
                    let g = group.lock().unwrap_or_else(|e| e.into_inner());
                    ((g.file.clone(), g.name.clone()), g.interval_ms.max(1), g.eval_timestamp(now))
                };
                keys.push(key.clone());
                let due = *next_due.entry(key.clone()).or_insert(aligned + interval);
                if due <= now {
                    // Skip missed ticks: evaluate at the latest one.
                    let missed = (now - due) / interval;
                    let ts = due + missed * interval;
                    let manager = self.clone();
                    let task = tokio::task::spawn_blocking(move || manager.evaluate(&group, ts));
                    if let Err(e) = task.await {
                        tracing::error!(error = %e, "rules: group evaluation panicked");
                    }
                    next_due.insert(key, ts + interval);
                    wake_at = wake_at.min(ts + interval);
                } else {
                    wake_at = wake_at.min(due);
                }
            }
            next_due.retain(|key, _| keys.contains(key));
            let sleep = Duration::from_millis((wake_at - now_ms()).max(0) as u64);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.inner.changed.notified() => {}
                changed = shutdown.changed() => {
                    // The sender is gone: nobody can ask us to stop any more, so stop now.
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// One evaluation of `group` at tick `ts` (blocking): output written, alerts sent, alert
    /// state restored after the first evaluation of a group from the first load.
    pub fn evaluate(&self, group: &Mutex<Group>, ts: i64) {
        let inner = &self.inner;
        let storage: &dyn Queryable = inner.storage.as_ref();
        let query = |expr: &promql_parser::parser::Expr, t: i64| {
            query_vector(&inner.engine, storage, expr, t)
        };
        let template_fn = |text: &str| template_query(&inner.engine, storage, text, ts);
        let append = |samples: Vec<(Labels, i64, f64)>| inner.sink.append(samples);
        let mut group = group.lock().unwrap_or_else(|e| e.into_inner());
        let to_send = group.eval(
            ts,
            now_ms(),
            &query,
            Some(&template_fn),
            &inner.context,
            &append,
            millis(inner.config.resend_delay),
        );
        let failed = group.statuses().filter(|s| s.last_error.is_some()).count();
        inner.metrics.evaluated(
            &format!("{};{}", group.file, group.name),
            group.rules.len(),
            failed,
            group.evaluation_seconds,
            ts,
        );
        if group.should_restore {
            group.restore_for_state(
                ts,
                storage,
                millis(inner.config.outage_tolerance),
                millis(inner.config.for_grace_period),
            );
        }
        drop(group);
        if !to_send.is_empty() {
            inner.alerts.send(to_send.iter().map(|a| self.notification(a)).collect());
        }
    }

    /// Prometheus' `sendAlerts`: the Alertmanager form of an alert.
    fn notification(&self, item: &AlertToSend) -> Alert {
        let alert = &item.alert;
        let mut builder = alert.labels.builder();
        for label in &self.inner.context.external_labels {
            if builder.get(&label.name).is_none() {
                builder.set(&label.name, label.value.clone());
            }
        }
        let ends_at_ms =
            if alert.resolved_at_ms != 0 { alert.resolved_at_ms } else { alert.valid_until_ms };
        Alert {
            labels: builder.build(),
            annotations: alert.annotations.clone(),
            starts_at: system_time(alert.fired_at_ms),
            ends_at: system_time(ends_at_ms),
            generator_url: generator_url(&self.inner.config.external_url, &item.expr),
        }
    }
}

/// `external_url + /graph?g0.expr=<query-escaped expr>&g0.tab=1` (`strutil.TableLinkForExpression`).
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let escaped: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!("{}/graph?g0.expr={escaped}&g0.tab=1", external_url.trim_end_matches('/'))
}
