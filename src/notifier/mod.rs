//! Sending alerts to Alertmanager (API v2). (Being written: issue 5.)

use std::time::SystemTime;

use crate::model::labels::Labels;

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it (`postableAlert`).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: SystemTime,
    /// When the alert stops being active: the resolve time for a resolved alert, else a time a
    /// few evaluation intervals ahead so Alertmanager resolves it if updates stop (Prometheus
    /// sends `now + max(resend_delay, interval) * 4`).
    pub ends_at: SystemTime,
    pub generator_url: String,
}

/// Where the rule manager hands alerts to send. Must not block: implementations queue.
pub trait SendAlerts: Send + Sync {
    fn send(&self, alerts: Vec<Alert>);
}
