//! `DecodedWrite::decode` on arbitrary (already snappy-decoded) bodies.
//!
//! Input: first byte picks the version (even: 1.0, odd: 2.0), the rest is the body. On success
//! every span and range the decoder produced must be usable the way `receive` uses them: labels
//! via `labels_of` / `parse_label_region`, samples, histograms and exemplars by range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::ingest::remote_write::decode::{parse_label_region, DecodedWrite, Version};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let version = if selector & 1 == 0 { Version::V1 } else { Version::V2 };
    let mut decoded = DecodedWrite::default();
    if decoded.decode(body, version).is_err() {
        return;
    }
    for series in &decoded.series {
        let labels = decoded.labels_of(body, series);
        if let Some(region) = series.label_bytes {
            assert!(series.labels.is_empty(), "a 1.0 label region comes with no stored labels");
            let mut parsed = Vec::new();
            let direct = parse_label_region(body, region, &mut parsed);
            assert_eq!(direct.is_ok(), labels.is_ok(), "labels_of disagrees with the region parse");
            if let Ok(labels) = &labels {
                assert_eq!(labels, &parsed);
            }
        }
        for label in labels.iter().flatten() {
            let _ = (label.name.get(body), label.value.get(body));
        }
        let _ = &decoded.samples[series.samples.start as usize..series.samples.end as usize];
        let _ =
            &decoded.histograms[series.histograms.start as usize..series.histograms.end as usize];
        for exemplar in
            &decoded.exemplars[series.exemplars.start as usize..series.exemplars.end as usize]
        {
            for label in
                &decoded.labels[exemplar.labels.start as usize..exemplar.labels.end as usize]
            {
                let _ = (label.name.get(body), label.value.get(body));
            }
        }
        if let Some(metadata) = series.metadata {
            let _ = (metadata.help.get(body), metadata.unit.get(body));
        }
    }
    // Decoding again into the same (warm) value gives the same result.
    let first = (decoded.series.clone(), decoded.labels.clone(), decoded.samples.len());
    decoded.decode(body, version).expect("second decode of the same body");
    assert_eq!(first, (decoded.series.clone(), decoded.labels.clone(), decoded.samples.len()));
});
