//! Realistic remote-write payloads for the benches: Kubernetes pod metrics as a Prometheus
//! scraping kubelet/cAdvisor and application pods sends them (about 11 labels per series,
//! long pod/container/image values), 2,000 samples per request like Prometheus' default
//! `max_samples_per_send`.

#![allow(dead_code)]

use std::sync::Arc;

use strata::model::{Labels, MetricBatch, Sample, Series};
use strata::sinks::remote_write::encode::{encode_v1, encode_v2, EncodeOptions};

pub const OPTIONS: EncodeOptions =
    EncodeOptions { send_exemplars: true, send_native_histograms: true };

/// A metric family: its name and its extra labels with their possible values.
type Family = (&'static str, &'static [(&'static str, &'static [&'static str])]);

const FAMILIES: [Family; 5] = [
    ("http_requests_total", &[("code", &["200", "404", "500"]), ("method", &["GET", "POST"])]),
    (
        "http_request_duration_seconds_bucket",
        &[
            ("le", &["0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"]),
            ("handler", &["/api/v1/orders", "/healthz"]),
        ],
    ),
    (
        "container_memory_working_set_bytes",
        &[
            ("id", &["/kubepods/burstable/pod7d9f8b6c-5d2e-4c1a-9f1e-2b3c4d5e6f70/3f1e"]),
            ("image", &["registry.example.com/shop/checkout:1.42.0"]),
        ],
    ),
    (
        "container_cpu_usage_seconds_total",
        &[("cpu", &["total"]), ("image", &["registry.example.com/shop/checkout:1.42.0"])],
    ),
    ("kube_pod_status_phase", &[("phase", &["Running", "Pending", "Failed"])]),
];

/// `count` distinct series with realistic labels.
pub fn series(count: usize) -> Vec<Arc<Series>> {
    let mut out = Vec::with_capacity(count);
    let mut i = 0usize;
    while out.len() < count {
        let (name, extra) = FAMILIES[i % FAMILIES.len()];
        let pod = i / 40;
        let mut labels = vec![
            ("__name__".to_owned(), name.to_owned()),
            ("job".to_owned(), "kubernetes-pods".to_owned()),
            ("namespace".to_owned(), format!("shop-{}", pod % 7)),
            ("pod".to_owned(), format!("checkout-service-7d9f8b6c5d-{:05x}", pod)),
            ("container".to_owned(), "checkout".to_owned()),
            ("instance".to_owned(), format!("10.42.{}.{}:8080", pod / 250 % 250, pod % 250)),
            (
                "node".to_owned(),
                format!("ip-10-0-{}-{}.eu-west-1.compute.internal", pod % 16, pod % 200),
            ),
            ("endpoint".to_owned(), "http-metrics".to_owned()),
        ];
        let mut rest = i / FAMILIES.len();
        for (label, values) in extra {
            labels.push(((*label).to_owned(), values[rest % values.len()].to_owned()));
            rest /= values.len();
        }
        out.push(Arc::new(Series::new(Labels::from_pairs(labels))));
        i += 1;
    }
    out
}

/// One request's batch: `samples` series with one sample each.
pub fn batch(series: &[Arc<Series>], timestamp_ms: i64) -> MetricBatch {
    let mut batch = MetricBatch::with_capacity(series.len(), series.len());
    for (index, s) in series.iter().enumerate() {
        let value = (index as f64) * 1.5 + (timestamp_ms as f64) / 1000.0;
        batch.push(s.clone(), &[Sample { timestamp_ms, value }], &[], &[], None, 0);
    }
    batch
}

/// The batch as a snappy-compressed request body of the given protocol version.
pub fn body(batch: &MetricBatch, version: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    if version == 2 {
        encode_v2(std::slice::from_ref(batch), OPTIONS, &mut raw);
    } else {
        encode_v1(std::slice::from_ref(batch), OPTIONS, &mut raw);
    }
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}
