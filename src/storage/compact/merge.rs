//! Merging the contents of several blocks of one tier into one sorted, duplicate-free set.
//!
//! Peer semantics: Prometheus' vertical compaction (`tsdb/compact.go` with
//! `storage.NewCompactingChunkSeriesMerger`) merges overlapping blocks series by series, and a
//! sample at a timestamp that several blocks hold is kept once. Here the inputs are ordered by the
//! caller (the planner orders blocks by time, then id), and on equal timestamps the **first input
//! wins** — deterministic, and for replicated data the copies are equal anyway.
//!
//! * Metric series ([`SeriesSamples`], [`SeriesAggr`]) and log streams are matched by labels;
//!   samples, histograms and points are merged by time with duplicate timestamps dropped.
//! * Log entries are merged by time; an entry is dropped only when an entry with the same time,
//!   line and structured metadata is already kept (Loki's dedupe of identical entries, since
//!   distinct lines may share a timestamp). Entries with equal times keep input order.
//! * Spans are grouped by trace id; a span id seen in an earlier input drops later copies; the
//!   result is ordered by trace id, then start time (input order on ties).
//!
//! Invariants (debug-asserted on input, guaranteed on output): series/streams sorted by labels
//! and unique; samples/points/entries sorted by time; spans sorted by (trace id, start).
//! The merge walks the inputs' heads (a k-way merge over the few blocks of one window), so it
//! is linear in the data for a fixed number of inputs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::model::logs::LogEntry;
use crate::storage::{LogStreamData, SeriesAggr, SeriesSamples, SpanRecord};

/// Merges raw metric blocks: series by labels, samples and histograms by time.
pub fn merge_series(inputs: Vec<Vec<SeriesSamples>>) -> Vec<SeriesSamples> {
    debug_assert!(inputs.iter().all(|input| sorted_unique(input, |s| &s.labels)));
    merge_groups(
        inputs,
        |s: &SeriesSamples| &s.labels,
        |parts, out| {
            let mut parts = parts.into_iter().flatten();
            let Some(first) = parts.next() else { return };
            let labels = first.labels;
            let mut samples = vec![first.samples];
            let mut histograms = vec![first.histograms];
            for part in parts {
                samples.push(part.samples);
                histograms.push(part.histograms);
            }
            out.push(SeriesSamples {
                labels,
                samples: merge_runs(samples, |s| s.timestamp_ms, Ties::FirstWins),
                histograms: merge_runs(histograms, |h| h.timestamp, Ties::FirstWins),
            });
        },
    )
}

/// Merges downsampled blocks of one tier: series by labels, points by time.
pub fn merge_aggr(inputs: Vec<Vec<SeriesAggr>>) -> Vec<SeriesAggr> {
    debug_assert!(inputs.iter().all(|input| sorted_unique(input, |s| &s.labels)));
    merge_groups(
        inputs,
        |s: &SeriesAggr| &s.labels,
        |parts, out| {
            let mut parts = parts.into_iter().flatten();
            let Some(first) = parts.next() else { return };
            let labels = first.labels;
            let runs = std::iter::once(first.points).chain(parts.map(|p| p.points)).collect();
            out.push(SeriesAggr {
                labels,
                points: merge_runs(runs, |p| p.timestamp_ms, Ties::FirstWins),
            });
        },
    )
}

/// Merges log blocks: streams by labels, entries by time, identical entries once.
pub fn merge_logs(inputs: Vec<Vec<LogStreamData>>) -> Vec<LogStreamData> {
    debug_assert!(inputs.iter().all(|input| sorted_unique(input, |s| &s.labels)));
    merge_groups(
        inputs,
        |s: &LogStreamData| &s.labels,
        |parts, out| {
            let mut parts = parts.into_iter().flatten();
            let Some(first) = parts.next() else { return };
            let labels = first.labels;
            let runs = std::iter::once(first.entries).chain(parts.map(|p| p.entries)).collect();
            let entries = dedupe_identical(merge_runs(runs, |e| e.timestamp_ns, Ties::KeepAll));
            out.push(LogStreamData { labels, entries });
        },
    )
}

/// Merges trace blocks: spans by trace id, a span id once (first input wins), then by start.
pub fn merge_spans(inputs: Vec<Vec<SpanRecord>>) -> Vec<SpanRecord> {
    debug_assert!(inputs.iter().all(|input| input.windows(2).all(|w| (
        w[0].trace_id,
        w[0].start_unix_nano
    ) <= (
        w[1].trace_id,
        w[1].start_unix_nano
    ))));
    merge_groups(
        inputs,
        |s: &SpanRecord| &s.trace_id,
        |parts, out| {
            let mut seen = HashSet::new();
            let runs = parts
                .into_iter()
                .map(|part| part.into_iter().filter(|span| seen.insert(span.span_id)).collect())
                .collect();
            out.extend(merge_runs(runs, |s| s.start_unix_nano, Ties::KeepAll));
        },
    )
}

fn sorted_unique<T, K: Ord + ?Sized>(items: &[T], key: impl Fn(&T) -> &K) -> bool {
    items.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

/// Walks the inputs (each sorted by `key`) in key order. For each key, `emit` gets the run of
/// items with that key from every input holding it, in input order, and appends the result.
fn merge_groups<T, K: Ord + ?Sized>(
    inputs: Vec<Vec<T>>,
    key: impl Fn(&T) -> &K,
    mut emit: impl FnMut(Vec<Vec<T>>, &mut Vec<T>),
) -> Vec<T> {
    let capacity = inputs.iter().map(Vec::len).max().unwrap_or(0);
    let mut heads: Vec<std::vec::IntoIter<T>> = inputs.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(capacity);
    // Inputs whose head holds the smallest key, in input order, and the length of that run.
    let mut members: Vec<(usize, usize)> = Vec::with_capacity(heads.len());
    loop {
        members.clear();
        for index in 0..heads.len() {
            let Some(candidate) = heads[index].as_slice().first() else { continue };
            let Some(&(best, _)) = members.first() else {
                members.push((index, 0));
                continue;
            };
            match key(candidate).cmp(key(&heads[best].as_slice()[0])) {
                std::cmp::Ordering::Less => {
                    members.clear();
                    members.push((index, 0));
                }
                std::cmp::Ordering::Equal => members.push((index, 0)),
                std::cmp::Ordering::Greater => {}
            }
        }
        let Some(&(first, _)) = members.first() else { break };
        let group_key = key(&heads[first].as_slice()[0]);
        for (index, run) in members.iter_mut() {
            *run =
                heads[*index].as_slice().iter().take_while(|item| key(item) == group_key).count();
        }
        let parts = members.iter().map(|&(index, run)| heads[index].by_ref().take(run).collect());
        emit(parts.collect(), &mut out);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ties {
    /// Equal keys across or within runs: keep the first (lowest input index) only.
    FirstWins,
    /// Keep every item; equal keys come out in input order.
    KeepAll,
}

/// K-way merge of runs each sorted by `key`.
fn merge_runs<T, K: Ord + Copy>(runs: Vec<Vec<T>>, key: impl Fn(&T) -> K, ties: Ties) -> Vec<T> {
    let total = runs.iter().map(Vec::len).sum();
    let mut heads: Vec<std::vec::IntoIter<T>> = runs.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(total);
    loop {
        let mut best: Option<(usize, K)> = None;
        for (index, head) in heads.iter().enumerate() {
            let Some(item) = head.as_slice().first() else { continue };
            let item_key = key(item);
            if best.is_none_or(|(_, best_key)| item_key < best_key) {
                best = Some((index, item_key));
            }
        }
        let Some((index, best_key)) = best else { break };
        out.extend(heads[index].next());
        if ties == Ties::FirstWins {
            for head in &mut heads {
                while head.as_slice().first().is_some_and(|item| key(item) == best_key) {
                    head.next();
                }
            }
        }
    }
    out
}

/// Drops an entry when an identical one (time, line, metadata) with the same time was kept.
/// `entries` is sorted by time, so identical entries sit in the same equal-time run; entries are
/// hashed only inside runs longer than one.
fn dedupe_identical(entries: Vec<LogEntry>) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = Vec::with_capacity(entries.len());
    let mut run_start = 0;
    // Hash of (line, metadata) → positions in `out` of kept entries of the current run.
    let mut kept: HashMap<u64, Vec<usize>> = HashMap::new();
    for entry in entries {
        if out.last().is_none_or(|last| last.timestamp_ns != entry.timestamp_ns) {
            run_start = out.len();
            kept.clear();
            out.push(entry);
            continue;
        }
        if kept.is_empty() {
            for (position, kept_entry) in out.iter().enumerate().skip(run_start) {
                kept.entry(entry_hash(kept_entry)).or_default().push(position);
            }
        }
        let bucket = kept.entry(entry_hash(&entry)).or_default();
        if bucket.iter().any(|&position| out[position] == entry) {
            continue;
        }
        bucket.push(out.len());
        out.push(entry);
    }
    out
}

fn entry_hash(entry: &LogEntry) -> u64 {
    let mut hasher = DefaultHasher::new();
    entry.line.hash(&mut hasher);
    entry.structured_metadata.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
