//! The notifier's part of the metric catalog, named after Prometheus' own
//! (`prometheus_notifications_*`): registered by [`Catalog::new`](crate::telemetry::Catalog::new)
//! into the one registry, handles resolved once per Alertmanager when the notifier is built.
//! The `alertmanager` label is the endpoint URL from the config (a bounded set).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::telemetry::register;

type Labels = Vec<(&'static str, String)>;
type CounterFamily = Family<Labels, Counter>;
type GaugeFamily = Family<Labels, Gauge>;

/// The notifier families.
#[derive(Clone, Default)]
pub struct NotifierFamilies {
    sent: CounterFamily,
    errors: CounterFamily,
    dropped: CounterFamily,
    queue_length: GaugeFamily,
    queue_capacity: GaugeFamily,
}

impl NotifierFamilies {
    pub fn register(r: &mut Registry, d: &mut Vec<String>) -> Self {
        let c = CounterFamily::default;
        let g = GaugeFamily::default;
        Self {
            sent: register(
                r,
                d,
                "strata_notifications_sent",
                "Alerts sent, by Alertmanager.",
                "_total",
                c(),
            ),
            errors: register(
                r,
                d,
                "strata_notifications_errors",
                "Alerts whose request to an Alertmanager failed after retries, by Alertmanager.",
                "_total",
                c(),
            ),
            dropped: register(
                r,
                d,
                "strata_notifications_dropped",
                "Alerts dropped: the queue was full, or no Alertmanager took them.",
                "_total",
                c(),
            ),
            queue_length: register(
                r,
                d,
                "strata_notifications_queue_length",
                "Alerts waiting to be sent.",
                "",
                g(),
            ),
            queue_capacity: register(
                r,
                d,
                "strata_notifications_queue_capacity",
                "Most alerts that may wait to be sent.",
                "",
                g(),
            ),
        }
    }

    /// Handles for a notifier sending to `alertmanagers` (endpoint URLs).
    pub fn handles(&self, alertmanagers: &[String]) -> NotifierMetrics {
        let by = |url: &String| vec![("alertmanager", url.clone())];
        NotifierMetrics {
            sent: alertmanagers.iter().map(|url| self.sent.get_or_create_owned(&by(url))).collect(),
            errors: alertmanagers
                .iter()
                .map(|url| self.errors.get_or_create_owned(&by(url)))
                .collect(),
            dropped: self.dropped.get_or_create_owned(&vec![]),
            queue_length: self.queue_length.get_or_create_owned(&vec![]),
            queue_capacity: self.queue_capacity.get_or_create_owned(&vec![]),
        }
    }
}

/// Handles of one notifier; `sent` and `errors` are indexed like its Alertmanagers.
#[derive(Clone, Debug, Default)]
pub struct NotifierMetrics {
    pub sent: Vec<Counter>,
    pub errors: Vec<Counter>,
    pub dropped: Counter,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
}

impl NotifierMetrics {
    /// Handles registered nowhere (tests, or a notifier built outside the catalog).
    pub fn unregistered(alertmanagers: usize) -> Self {
        Self {
            // One counter each: cloning a `Counter` would share its value.
            sent: (0..alertmanagers).map(|_| Counter::default()).collect(),
            errors: (0..alertmanagers).map(|_| Counter::default()).collect(),
            ..Self::default()
        }
    }
}
