//! Arbitrary query text parsed and evaluated (instant and range) over a small in-memory data
//! set: the engine must answer or fail with an error, never panic, loop or blow up memory
//! (the sample limit is low on purpose).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use strata::model::Labels;
use strata::promql::{Engine, EngineOptions, MemStorage, Point};

fn storage() -> &'static MemStorage {
    static STORAGE: OnceLock<MemStorage> = OnceLock::new();
    STORAGE.get_or_init(|| {
        let mut storage = MemStorage::new();
        for (name, job, step) in [("a_total", "x", 1.0), ("a_total", "y", 2.0), ("b", "x", -0.5)] {
            let labels = Labels::from_pairs([("__name__", name), ("job", job), ("le", "1")]);
            let points = (0..40).map(|i| Point { t: i * 15_000, v: i as f64 * step });
            storage.add(labels, points);
        }
        storage
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if query.len() > 512 {
        return;
    }
    let engine = Engine::new(EngineOptions {
        max_samples: 100_000,
        timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    });
    let _ = engine.instant_query(storage(), query, 300_000);
    let _ = engine.range_query(storage(), query, 0, 600_000, 30_000);
});
