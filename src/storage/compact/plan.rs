//! Compaction planning: which blocks of one tenant and signal to merge, downsample or delete.
//! Pure (no I/O, no clock): the same metas, time and policy always give the same actions, and
//! once the actions are applied, planning again at the same time gives none.
//!
//! Peers: Thanos' compactor (`pkg/compact/compact.go`, the `DefaultGrouper` and
//! `tsdbBasedPlanner` in `pkg/compact/planner.go`, retention in `pkg/compact/retention.go`,
//! downsampling in `cmd/thanos/downsample.go`) and Prometheus' `tsdb/compact.go` level ranges.
//!
//! Rules, in the order the actions are returned (and must be executed):
//!
//! 1. **Downsample** (metrics only), per UTC day once the day is *closed* (`now ≥ day end +
//!    grace`): raw → 5 m when no 5 m block overlaps the day; → 1 h when no 1 h block overlaps
//!    it, from the day's 5 m blocks if they exist, else straight from raw (raw → 1 h equals
//!    raw → 5 m → 1 h, see `downsample`). A tier is skipped for a day whose output would already
//!    be past that tier's retention. Thanos downsamples blocks once they span 40 h (5 m) and
//!    10 d (1 h); working per complete day gives each day its 5 m and 1 h data about a day after
//!    it ends, long before raw data expires (defaults: raw 15 d). Downsampling never deletes its
//!    inputs: every tier keeps its own retention.
//! 2. **Merge** ≥ 2 visible blocks of one tier whose time ranges fall in one window:
//!    * raw metrics: a UTC day once it is closed (Thanos' 2 h → day-sized levels); before that,
//!      each closed `block_duration` window (`now ≥ window end + grace`), which joins the blocks
//!      several aggregators or restarts cut for the same window;
//!    * raw logs and traces: closed `block_duration` windows only — they are never downsampled
//!      and a day of logs is too large to merge through memory;
//!    * 5 m and 1 h: a UTC day (duplicates after a lost lease or a retried downsample).
//!
//!    Blocks past retention are not merged; a block spanning two windows is left as it is.
//! 3. **Delete** every block listed in the `sources` of another block of its tier (left over by
//!    a crash between writing a compaction and deleting its inputs; [`visible`] already hides
//!    it from readers), and every visible block past its tier's retention (`max_time_ms < now -
//!    retention`). A raw metrics block past retention is kept until each day it overlaps is
//!    closed (so it was downsampled), unless its data is past the 5 m and 1 h retention too; a
//!    5 m block likewise waits for its day's 1 h data. So a raw retention shorter than a day
//!    plus grace is stretched to that, rather than losing data the coarser tiers should keep.
//!
//! The grace period waits for late blocks: the head cuts a window's block only after the window
//! ends (Prometheus cuts at 1.5 × the block range), then uploads it. Data arriving after a day
//! was downsampled stays raw-only for that day.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::config::storage::{HeadConfig, RetentionConfig};
use crate::storage::{BlockMeta, StoredSignal, Tier};

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// What the planner needs from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub retention: RetentionConfig,
    /// The head's block duration; divides a day (checked by config validation).
    pub block_duration_ms: i64,
    /// How long after a window or day ends its blocks are treated as complete.
    pub grace_ms: i64,
}

impl Policy {
    /// Grace is one block duration (the head may hold a window up to half a block past its end,
    /// as Prometheus does) plus an hour for upload and clock skew.
    pub fn new(retention: &RetentionConfig, head: &HeadConfig) -> Self {
        let block_duration_ms = duration_ms(head.block_duration.get());
        Self {
            retention: retention.clone(),
            block_duration_ms,
            grace_ms: block_duration_ms + 3600 * 1000,
        }
    }

    /// How long blocks of `signal` in `tier` are kept.
    pub fn retention_ms(&self, signal: StoredSignal, tier: Tier) -> i64 {
        let retention = match (signal, tier) {
            (StoredSignal::Metrics, Tier::Raw) => self.retention.metrics.raw,
            (StoredSignal::Metrics, Tier::FiveMinutes) => self.retention.metrics.five_minutes,
            (StoredSignal::Metrics, Tier::OneHour) => self.retention.metrics.one_hour,
            (StoredSignal::Logs, _) => self.retention.logs,
            (StoredSignal::Traces, _) => self.retention.traces,
        };
        duration_ms(retention.get())
    }

    /// Blocks whose `max_time_ms` is below this are past retention.
    fn cutoff_ms(&self, now_ms: i64, signal: StoredSignal, tier: Tier) -> i64 {
        now_ms.saturating_sub(self.retention_ms(signal, tier))
    }

    fn is_closed(&self, window: Window, now_ms: i64) -> bool {
        now_ms >= window.end_ms.saturating_add(self.grace_ms)
    }
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A half-open time window `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// The window of `width_ms` (aligned to the epoch) that contains `time_ms`.
    pub fn aligned(time_ms: i64, width_ms: i64) -> Self {
        let start_ms = time_ms.div_euclid(width_ms) * width_ms;
        Self { start_ms, end_ms: start_ms + width_ms }
    }

    /// The UTC day containing `time_ms`.
    pub fn day(time_ms: i64) -> Self {
        Self::aligned(time_ms, DAY_MS)
    }

    /// The aligned window of `width_ms` holding the whole block, if one does.
    fn holding(meta: &BlockMeta, width_ms: i64) -> Option<Self> {
        let window = Self::aligned(meta.min_time_ms, width_ms);
        window.contains(meta.max_time_ms).then_some(window)
    }

    pub fn contains(self, time_ms: i64) -> bool {
        self.start_ms <= time_ms && time_ms < self.end_ms
    }

    pub fn overlaps(self, meta: &BlockMeta) -> bool {
        meta.min_time_ms < self.end_ms && meta.max_time_ms >= self.start_ms
    }

    /// The UTC days a block's time range touches.
    fn days_of(meta: &BlockMeta) -> impl Iterator<Item = Window> {
        let first = meta.min_time_ms.div_euclid(DAY_MS);
        let last = meta.max_time_ms.div_euclid(DAY_MS);
        (first..=last).map(|day| Window { start_ms: day * DAY_MS, end_ms: (day + 1) * DAY_MS })
    }
}

/// An inclusive time range, as in `meta.json` (`min_time_ms`, `max_time_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub min_ms: i64,
    pub max_ms: i64,
}

impl TimeRange {
    /// The range spanning all `inputs` (at least one).
    pub fn spanning(inputs: &[BlockMeta]) -> Self {
        debug_assert!(!inputs.is_empty());
        Self {
            min_ms: inputs.iter().map(|m| m.min_time_ms).min().unwrap_or(0),
            max_ms: inputs.iter().map(|m| m.max_time_ms).max().unwrap_or(0),
        }
    }

    /// The range a downsampled block of `inputs` restricted to `day` claims.
    pub fn downsampled(inputs: &[BlockMeta], day: Window) -> Self {
        let all = Self::spanning(inputs);
        Self { min_ms: all.min_ms.max(day.start_ms), max_ms: all.max_ms.min(day.end_ms - 1) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeleteReason {
    /// Past the retention of its signal and tier.
    Retention,
    /// Replaced by a block that lists it in `sources`.
    Superseded,
}

/// One step of compaction. Inputs are ordered by time, then block id.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Aggregate the data of `inputs` (tier `from`) within `day` into one new `to` block.
    Downsample {
        inputs: Vec<BlockMeta>,
        from: Tier,
        to: Tier,
        day: Window,
    },
    /// Write the merge of `inputs` as one block, then delete the inputs.
    Merge {
        inputs: Vec<BlockMeta>,
        tier: Tier,
        window: Window,
    },
    Delete {
        meta: BlockMeta,
        reason: DeleteReason,
    },
}

/// The blocks readers should use: all but those listed in the `sources` of another block of the
/// same tier. (Downsampled blocks never list sources, and a tier never replaces another's.)
pub fn visible(metas: &[BlockMeta]) -> Vec<&BlockMeta> {
    let replaced: HashSet<(Tier, &str)> = metas
        .iter()
        .flat_map(|m| m.sources.iter().map(move |source| (m.tier, source.as_str())))
        .collect();
    metas.iter().filter(|m| !replaced.contains(&(m.tier, m.block_id.as_str()))).collect()
}

/// The `sources` of a block replacing `inputs`: their ids and, transitively, their sources, so a
/// leftover input stays hidden even after the intermediate block is itself replaced.
pub fn merged_sources(inputs: &[BlockMeta]) -> Vec<String> {
    let all: BTreeSet<&str> = inputs
        .iter()
        .flat_map(|m| {
            std::iter::once(m.block_id.as_str()).chain(m.sources.iter().map(String::as_str))
        })
        .collect();
    all.into_iter().map(str::to_owned).collect()
}

/// Plans the compaction of the blocks `metas` of one tenant and `signal`.
pub fn plan(
    signal: StoredSignal,
    metas: &[BlockMeta],
    now_ms: i64,
    policy: &Policy,
) -> Vec<Action> {
    debug_assert!(metas.iter().all(|m| m.signal == signal));
    let mut live = visible(metas);
    live.sort_by(|a, b| by_time(a, b));
    let mut actions = Vec::new();
    if signal == StoredSignal::Metrics {
        plan_downsampling(&live, now_ms, policy, &mut actions);
    }
    plan_merges(signal, &live, now_ms, policy, &mut actions);

    let live_ids: HashSet<&str> = live.iter().map(|m| m.block_id.as_str()).collect();
    let mut superseded: Vec<&BlockMeta> =
        metas.iter().filter(|m| !live_ids.contains(m.block_id.as_str())).collect();
    superseded.sort_by(|a, b| a.block_id.cmp(&b.block_id));
    actions.extend(
        superseded
            .into_iter()
            .map(|m| Action::Delete { meta: m.clone(), reason: DeleteReason::Superseded }),
    );
    let mut expired: Vec<&BlockMeta> =
        live.iter().copied().filter(|m| may_expire(signal, m, now_ms, policy)).collect();
    expired.sort_by(|a, b| a.block_id.cmp(&b.block_id));
    actions.extend(
        expired
            .into_iter()
            .map(|m| Action::Delete { meta: m.clone(), reason: DeleteReason::Retention }),
    );
    actions
}

fn by_time(a: &BlockMeta, b: &BlockMeta) -> std::cmp::Ordering {
    (a.min_time_ms, a.max_time_ms, &a.block_id).cmp(&(b.min_time_ms, b.max_time_ms, &b.block_id))
}

fn past_retention(signal: StoredSignal, meta: &BlockMeta, now_ms: i64, policy: &Policy) -> bool {
    meta.max_time_ms < policy.cutoff_ms(now_ms, signal, meta.tier)
}

/// Past retention, and no coarser tier still waits for its data.
fn may_expire(signal: StoredSignal, meta: &BlockMeta, now_ms: i64, policy: &Policy) -> bool {
    if !past_retention(signal, meta, now_ms, policy) {
        return false;
    }
    let coarser: &[Tier] = match (signal, meta.tier) {
        (StoredSignal::Metrics, Tier::Raw) => &[Tier::FiveMinutes, Tier::OneHour],
        (StoredSignal::Metrics, Tier::FiveMinutes) => &[Tier::OneHour],
        _ => &[],
    };
    let coarser_expired =
        coarser.iter().all(|&tier| meta.max_time_ms < policy.cutoff_ms(now_ms, signal, tier));
    coarser_expired || Window::days_of(meta).all(|day| policy.is_closed(day, now_ms))
}

fn plan_downsampling(live: &[&BlockMeta], now_ms: i64, policy: &Policy, actions: &mut Vec<Action>) {
    let signal = StoredSignal::Metrics;
    let days: BTreeSet<Window> = live
        .iter()
        .filter(|m| m.tier != Tier::OneHour)
        .flat_map(|m| Window::days_of(m))
        .filter(|&day| policy.is_closed(day, now_ms))
        .collect();
    for day in days {
        let in_day = |tier: Tier| -> Vec<BlockMeta> {
            live.iter().filter(|m| m.tier == tier && day.overlaps(m)).map(|&m| m.clone()).collect()
        };
        let raw = in_day(Tier::Raw);
        let five = in_day(Tier::FiveMinutes);
        let hour = in_day(Tier::OneHour);
        let wanted = |inputs: &[BlockMeta], to: Tier| {
            TimeRange::downsampled(inputs, day).max_ms >= policy.cutoff_ms(now_ms, signal, to)
        };
        if five.is_empty() && !raw.is_empty() && wanted(&raw, Tier::FiveMinutes) {
            actions.push(Action::Downsample {
                inputs: raw.clone(),
                from: Tier::Raw,
                to: Tier::FiveMinutes,
                day,
            });
        }
        if !hour.is_empty() {
            continue;
        }
        let (inputs, from) =
            if five.is_empty() { (raw, Tier::Raw) } else { (five, Tier::FiveMinutes) };
        if !inputs.is_empty() && wanted(&inputs, Tier::OneHour) {
            actions.push(Action::Downsample { inputs, from, to: Tier::OneHour, day });
        }
    }
}

fn plan_merges(
    signal: StoredSignal,
    live: &[&BlockMeta],
    now_ms: i64,
    policy: &Policy,
    actions: &mut Vec<Action>,
) {
    let mut groups: BTreeMap<(Tier, Window), Vec<BlockMeta>> = BTreeMap::new();
    for &meta in live {
        if past_retention(signal, meta, now_ms, policy) {
            continue;
        }
        let Some(window) = merge_window(signal, meta, now_ms, policy) else { continue };
        groups.entry((meta.tier, window)).or_default().push(meta.clone());
    }
    for ((tier, window), inputs) in groups {
        if inputs.len() >= 2 {
            actions.push(Action::Merge { inputs, tier, window });
        }
    }
}

/// The window a block is merged within now, if any (see the module docs).
fn merge_window(
    signal: StoredSignal,
    meta: &BlockMeta,
    now_ms: i64,
    policy: &Policy,
) -> Option<Window> {
    if meta.tier != Tier::Raw {
        return Window::holding(meta, DAY_MS);
    }
    if signal == StoredSignal::Metrics {
        if let Some(day) = Window::holding(meta, DAY_MS) {
            if policy.is_closed(day, now_ms) {
                return Some(day);
            }
        }
    }
    Window::holding(meta, policy.block_duration_ms).filter(|&w| policy.is_closed(w, now_ms))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
