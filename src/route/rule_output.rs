//! Rule output (recording-rule samples, `ALERTS`, `ALERTS_FOR_STATE`) enters the pipeline like
//! any remote-write batch: WAL, head and every metrics forward target (Prometheus writes rule
//! output to its TSDB, and remote-write sends it on).

use std::sync::Arc;

use crate::model::labels::Labels;
use crate::model::metrics::{MetricBatch, Sample, Series};
use crate::rules::SampleSink;

use super::Router;

/// A [`SampleSink`] submitting to a [`Router`]. `append` blocks on the runtime `handle`: the
/// rule manager calls it from its blocking evaluation threads.
pub struct RouteSink {
    route: Arc<Router>,
    handle: tokio::runtime::Handle,
}

impl RouteSink {
    pub fn new(route: Arc<Router>, handle: tokio::runtime::Handle) -> Self {
        Self { route, handle }
    }
}

impl SampleSink for RouteSink {
    fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut batch = MetricBatch::with_capacity(samples.len(), samples.len());
        for (labels, timestamp_ms, value) in samples {
            let sample = Sample { timestamp_ms, value };
            batch.push(Arc::new(Series::new(labels)), &[sample], &[], &[], None, 0);
        }
        self.handle.block_on(self.route.submit_metrics(&batch)).map_err(|e| e.to_string())
    }
}
