//! The metrics head: series identity, compressed float samples, native histograms and family
//! metadata of the recent past, modelled on Prometheus' head block (`tsdb/head.go`,
//! `tsdb/head_append.go`, `tsdb/head_read.go`).
//!
//! Layout and locking:
//! * Series live in [`STRIPES`] stripes chosen by the low bits of `Series::hash` (an xxh3 of the
//!   labels), each behind its own `RwLock`: an open-addressing table from hash to the stripe's
//!   series (equal hashes are told apart by comparing labels), the series' sample chunks
//!   ([`SampleChunks`]) and the stripe's counters. Appends write-lock one stripe per series.
//! * The [`Index`] (symbols, label sets, postings) sits behind one `RwLock`; appends read it to
//!   compare labels and write it only to create a series. Lock order is always stripe, then
//!   index; queries take the index alone, release it, then take stripes one at a time.
//! * A series is created while its stripe is write-locked, so two appenders cannot create it
//!   twice, and a query that finds a fresh ref in the index waits on that stripe until the
//!   series' samples are in place.
//!
//! What is kept:
//! * Float samples: Gorilla chunks of 120 samples. Per series, a timestamp older than the last
//!   is dropped and counted out of order; the same timestamp with the same value bits is a
//!   duplicate (ignored, as Prometheus does), with another value out of order.
//! * Native histograms: kept whole per series in a `Vec`, uncompressed (they are rare next to
//!   floats, and their flushing to blocks takes them as they came), with the same ordering
//!   rules on their own timeline, compared with `==` on the message.
//! * Metadata: the latest per metric family (remote-write 1.0 family metadata by family name,
//!   2.0 series metadata by the series' `__name__`).
//! * Exemplars are not stored; [`AppendStats::exemplars_ignored`] counts them.
//!
//! There is no time-based truncation: the caller replaces the whole head every block duration
//! and flushes the old one, which stays readable (every method takes `&self`).

use std::sync::{Mutex, RwLock};

use ahash::AHashMap;

use super::chunk::{Rejected, SampleChunks};
use super::index::{Index, SeriesRef};
use super::matcher::LabelMatcher;
use super::paged::PagedVec;
use super::{lock, read, write};
use crate::model::labels::Labels;
use crate::model::metrics::{Histogram, MetricBatch, Sample, Series, SeriesMetadata};
use crate::storage::SeriesSamples;

/// Number of lock stripes (a power of two).
pub const STRIPES: usize = 64;
const STRIPE_BITS: u32 = STRIPES.trailing_zeros();
const EMPTY_SLOT: u32 = u32::MAX;

/// What one append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendStats {
    pub series_created: usize,
    pub samples: usize,
    pub histograms: usize,
    /// Samples and histograms dropped: older than the series' last, or at its time with
    /// another value.
    pub out_of_order: usize,
    /// Samples and histograms identical to the series' last: ignored, not an error.
    pub duplicates: usize,
    /// Exemplars are not stored by the head.
    pub exemplars_ignored: usize,
}

/// Totals over the head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub series: u64,
    pub samples: u64,
    pub histograms: u64,
    /// Float chunks, open ones included.
    pub chunks: u64,
    /// Smallest and largest timestamp over samples and histograms; `None` when empty.
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
}

/// One series' data.
#[derive(Debug)]
struct MemSeries {
    hash: u64,
    series_ref: SeriesRef,
    chunks: SampleChunks,
    /// Native histograms in time order; boxed since most series have none (8 bytes, not a
    /// 24-byte empty `Vec`, per series).
    histograms: Option<Box<Histograms>>,
}

#[derive(Debug, Default)]
struct Histograms(Vec<Histogram>);

/// Open addressing from series hash to a stripe-local series index (linear probing, load at
/// most 3/4). Entries are never removed.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<u32>,
    len: usize,
}

impl Slots {
    fn start(&self, hash: u64) -> usize {
        // The low bits chose the stripe; use the next ones.
        (hash >> STRIPE_BITS) as usize & (self.slots.len() - 1)
    }

    fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.start(hash);
        loop {
            match self.slots[at] {
                EMPTY_SLOT => return None,
                local if is_it(local) => return Some(local),
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn insert(&mut self, hash: u64, local: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            // Sizes stay powers of two: probing masks the start.
            let size = (self.slots.len() * 2).max(16);
            let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; size]);
            for entry in old.into_iter().filter(|&e| e != EMPTY_SLOT) {
                self.place(hash_of(entry), entry);
            }
        }
        self.place(hash, local);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, local: u32) {
        let mask = self.slots.len() - 1;
        let mut at = self.start(hash);
        while self.slots[at] != EMPTY_SLOT {
            at = (at + 1) & mask;
        }
        self.slots[at] = local;
    }
}

#[derive(Debug)]
struct Stripe {
    series: PagedVec<MemSeries>,
    slots: Slots,
    samples: u64,
    histograms: u64,
    chunks: u64,
    min_t: i64,
    max_t: i64,
}

impl Default for Stripe {
    fn default() -> Self {
        Self {
            series: PagedVec::default(),
            slots: Slots::default(),
            samples: 0,
            histograms: 0,
            chunks: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }
}

impl Stripe {
    fn note_time(&mut self, t: i64) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
    }
}

/// Recent metric data: series index with postings, compressed chunks, histograms, metadata.
#[derive(Debug)]
pub struct MetricsHead {
    stripes: Box<[RwLock<Stripe>]>,
    index: RwLock<Index>,
    metadata: Mutex<AHashMap<String, SeriesMetadata>>,
}

impl Default for MetricsHead {
    fn default() -> Self {
        Self::new()
    }
}

fn location(stripe: usize, local: usize) -> u32 {
    let local = u32::try_from(local).ok().filter(|l| *l < 1 << (32 - STRIPE_BITS));
    (local.expect("over 64M series in one stripe") << STRIPE_BITS) | stripe as u32
}

fn split_location(location: u32) -> (usize, usize) {
    ((location as usize) & (STRIPES - 1), (location >> STRIPE_BITS) as usize)
}

impl MetricsHead {
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| RwLock::default()).collect(),
            index: RwLock::default(),
            metadata: Mutex::default(),
        }
    }

    /// Appends a batch; safe to call from several threads at once.
    pub fn append(&self, batch: &MetricBatch) -> AppendStats {
        let mut stats =
            AppendStats { exemplars_ignored: batch.exemplar_count(), ..AppendStats::default() };
        if !batch.metadata.is_empty() {
            let mut metadata = lock(&self.metadata);
            for family in &batch.metadata {
                let latest = SeriesMetadata {
                    metric_type: family.metric_type,
                    help: family.help.clone(),
                    unit: family.unit.clone(),
                };
                remember(&mut metadata, &family.family, latest);
            }
        }
        let mut last_metadata: Option<*const SeriesMetadata> = None;
        for view in batch.iter() {
            if let Some(meta) = view.metadata {
                // Consecutive series of one family usually share the metadata `Arc`.
                if last_metadata != Some(std::sync::Arc::as_ptr(meta)) {
                    last_metadata = Some(std::sync::Arc::as_ptr(meta));
                    if let Some(name) = view.series.labels.metric_name() {
                        remember(&mut lock(&self.metadata), name, SeriesMetadata::clone(meta));
                    }
                }
            }
            if view.samples.is_empty() && view.histograms.is_empty() {
                continue;
            }
            self.append_series(view.series, view.samples, view.histograms, &mut stats);
        }
        stats
    }

    fn append_series(
        &self,
        series: &Series,
        samples: &[Sample],
        histograms: &[Histogram],
        stats: &mut AppendStats,
    ) {
        let stripe_index = series.hash as usize & (STRIPES - 1);
        let mut stripe = write(&self.stripes[stripe_index]);
        let found = {
            let index = read(&self.index);
            let stripe = &*stripe;
            stripe.slots.find(series.hash, |local| {
                let candidate = stripe.series.get(local as usize);
                candidate.hash == series.hash
                    && index.labels_equal(candidate.series_ref, &series.labels)
            })
        };
        let local = match found {
            Some(local) => local as usize,
            None => {
                let local = stripe.series.len();
                let series_ref =
                    write(&self.index).add(&series.labels, location(stripe_index, local));
                stripe.series.push(MemSeries {
                    hash: series.hash,
                    series_ref,
                    chunks: SampleChunks::default(),
                    histograms: None,
                });
                let stripe = &mut *stripe;
                let all = &stripe.series;
                stripe.slots.insert(series.hash, local as u32, |l| all.get(l as usize).hash);
                stats.series_created += 1;
                local
            }
        };
        let stripe = &mut *stripe;
        let mem = stripe.series.get_mut(local);
        let chunks_before = mem.chunks.chunk_count();
        let (mut min_t, mut max_t, mut appended) = (i64::MAX, i64::MIN, 0u64);
        for sample in samples {
            match mem.chunks.push(sample.timestamp_ms, sample.value.to_bits()) {
                Ok(()) => {
                    appended += 1;
                    min_t = min_t.min(sample.timestamp_ms);
                    max_t = max_t.max(sample.timestamp_ms);
                }
                Err(Rejected::Duplicate) => stats.duplicates += 1,
                Err(Rejected::OutOfOrder) => stats.out_of_order += 1,
            }
        }
        let mut histograms_appended = 0u64;
        for histogram in histograms {
            let kept = &mut mem.histograms.get_or_insert_with(Box::default).0;
            match kept.last() {
                Some(last) if histogram.timestamp < last.timestamp => stats.out_of_order += 1,
                Some(last) if histogram.timestamp == last.timestamp => {
                    if last == histogram {
                        stats.duplicates += 1;
                    } else {
                        stats.out_of_order += 1;
                    }
                }
                _ => {
                    kept.push(histogram.clone());
                    histograms_appended += 1;
                    min_t = min_t.min(histogram.timestamp);
                    max_t = max_t.max(histogram.timestamp);
                }
            }
        }
        stripe.chunks += (mem.chunks.chunk_count() - chunks_before) as u64;
        stripe.samples += appended;
        stripe.histograms += histograms_appended;
        if appended + histograms_appended > 0 {
            stripe.note_time(min_t);
            stripe.note_time(max_t);
        }
        stats.samples += appended as usize;
        stats.histograms += histograms_appended as usize;
    }

    /// The series every matcher matches with their samples and histograms in
    /// `[min_t, max_t]` (milliseconds, inclusive), sorted by labels. Series without data in
    /// the range are left out.
    pub fn select(&self, matchers: &[LabelMatcher], min_t: i64, max_t: i64) -> Vec<SeriesSamples> {
        let found: Vec<(Labels, u32)> = {
            let index = read(&self.index);
            let refs = index.postings_for_matchers(matchers);
            refs.into_iter().map(|r| (index.labels(r), index.location(r))).collect()
        };
        let mut out = Vec::with_capacity(found.len());
        for (labels, location) in found {
            let (samples, histograms) = self.series_data(location, min_t, max_t);
            if !samples.is_empty() || !histograms.is_empty() {
                out.push(SeriesSamples { labels, samples, histograms });
            }
        }
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn series_data(&self, location: u32, min_t: i64, max_t: i64) -> (Vec<Sample>, Vec<Histogram>) {
        let (stripe_index, local) = split_location(location);
        let stripe = read(&self.stripes[stripe_index]);
        let mem = stripe.series.get(local);
        let samples = mem
            .chunks
            .iter_from(min_t)
            .skip_while(|&(t, _)| t < min_t)
            .take_while(|&(t, _)| t <= max_t)
            .map(|(timestamp_ms, bits)| Sample { timestamp_ms, value: f64::from_bits(bits) })
            .collect();
        let histograms = mem
            .histograms
            .iter()
            .flat_map(|h| h.0.iter())
            .filter(|h| (min_t..=max_t).contains(&h.timestamp))
            .cloned()
            .collect();
        (samples, histograms)
    }

    /// Every series with all its data, sorted by labels (for flushing a frozen head).
    pub fn all_series(&self) -> Vec<SeriesSamples> {
        self.select(&[], i64::MIN, i64::MAX)
    }

    /// Label sets of the series every matcher matches, sorted; no time filter.
    pub fn series(&self, matchers: &[LabelMatcher]) -> Vec<Labels> {
        let index = read(&self.index);
        let mut out: Vec<Labels> =
            index.postings_for_matchers(matchers).into_iter().map(|r| index.labels(r)).collect();
        drop(index);
        out.sort_unstable();
        out
    }

    /// Label names, sorted: of every series, or of those every matcher matches.
    pub fn label_names(&self, matchers: &[LabelMatcher]) -> Vec<String> {
        let index = read(&self.index);
        if matchers.is_empty() {
            return index.label_names(None);
        }
        let refs = index.postings_for_matchers(matchers);
        index.label_names(Some(&refs))
    }

    /// Values of label `name`, sorted: over every series, or over those every matcher matches.
    pub fn label_values(&self, name: &str, matchers: &[LabelMatcher]) -> Vec<String> {
        let index = read(&self.index);
        if matchers.is_empty() {
            return index.label_values(name, None);
        }
        let refs = index.postings_for_matchers(matchers);
        index.label_values(name, Some(&refs))
    }

    /// The latest metadata per metric family, sorted by family name.
    pub fn metadata(&self) -> Vec<(String, SeriesMetadata)> {
        let mut out: Vec<_> =
            lock(&self.metadata).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn stats(&self) -> HeadStats {
        let mut stats =
            HeadStats { series: read(&self.index).len() as u64, ..HeadStats::default() };
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for stripe in self.stripes.iter() {
            let stripe = read(stripe);
            stats.samples += stripe.samples;
            stats.histograms += stripe.histograms;
            stats.chunks += stripe.chunks;
            min_t = min_t.min(stripe.min_t);
            max_t = max_t.max(stripe.max_t);
        }
        if min_t <= max_t {
            stats.min_time_ms = Some(min_t);
            stats.max_time_ms = Some(max_t);
        }
        stats
    }
}

/// Stores `latest` for `name` unless it is already what is stored.
fn remember(metadata: &mut AHashMap<String, SeriesMetadata>, name: &str, latest: SeriesMetadata) {
    match metadata.get_mut(name) {
        Some(stored) if *stored == latest => {}
        Some(stored) => *stored = latest,
        None => {
            metadata.insert(name.to_owned(), latest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_grow_in_powers_of_two_and_find_every_entry() {
        let hashes: Vec<u64> =
            (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let mut slots = Slots::default();
        for (local, &hash) in hashes.iter().enumerate() {
            slots.insert(hash, local as u32, |l| hashes[l as usize]);
            assert!(slots.slots.len().is_power_of_two());
            assert!(slots.len * 4 <= slots.slots.len() * 3);
        }
        for (local, &hash) in hashes.iter().enumerate() {
            assert_eq!(slots.find(hash, |l| l == local as u32), Some(local as u32));
        }
        assert_eq!(slots.find(12345, |_| false), None);
    }
}
