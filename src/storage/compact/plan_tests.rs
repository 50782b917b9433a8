use proptest::prelude::*;

use super::*;
use crate::config::PromDuration;

const HOUR: i64 = 3600 * 1000;
const BLOCK: i64 = 2 * HOUR;
/// 2024-01-10T00:00:00Z, a day boundary.
const T0: i64 = 19_732 * DAY_MS;

fn policy() -> Policy {
    Policy::new(&RetentionConfig::default(), &HeadConfig::default())
}

fn meta(id: &str, signal: StoredSignal, tier: Tier, min: i64, max: i64) -> BlockMeta {
    BlockMeta {
        version: 1,
        block_id: id.to_owned(),
        tenant: "t".to_owned(),
        signal,
        tier,
        schema_version: 1,
        min_time_ms: min,
        max_time_ms: max,
        rows: 1,
        series: 1,
        files: Vec::new(),
        created_ms: max,
        compaction_level: 0,
        sources: Vec::new(),
    }
}

fn raw(id: &str, min: i64, max: i64) -> BlockMeta {
    meta(id, StoredSignal::Metrics, Tier::Raw, min, max)
}

/// A head block of window `index` after `start` (ends 1 ms before the window does).
fn head_block(id: &str, signal: StoredSignal, start: i64, index: i64) -> BlockMeta {
    let min = start + index * BLOCK;
    meta(id, signal, Tier::Raw, min, min + BLOCK - 1)
}

fn ids(inputs: &[BlockMeta]) -> Vec<&str> {
    inputs.iter().map(|m| m.block_id.as_str()).collect()
}

/// A compact view of an action for table assertions.
fn describe(action: &Action) -> String {
    match action {
        Action::Downsample { inputs, from, to, day } => format!(
            "downsample {}->{} day {} {:?}",
            from.as_str(),
            to.as_str(),
            (day.start_ms - T0).div_euclid(DAY_MS),
            ids(inputs)
        ),
        Action::Merge { inputs, tier, window } => format!(
            "merge {} [{}h,{}h) {:?}",
            tier.as_str(),
            (window.start_ms - T0) / HOUR,
            (window.end_ms - T0) / HOUR,
            ids(inputs)
        ),
        Action::Delete { meta, reason } => format!("delete {} {reason:?}", meta.block_id),
    }
}

/// Applies actions the way the compactor does, returning the new block set.
fn apply(
    metas: &[BlockMeta],
    actions: &[Action],
    now_ms: i64,
    counter: &mut u64,
) -> Vec<BlockMeta> {
    let mut out = metas.to_vec();
    let mut new_block = |inputs: &[BlockMeta], tier: Tier, range: TimeRange| {
        *counter += 1;
        let mut m =
            meta(&format!("new{counter:04}"), inputs[0].signal, tier, range.min_ms, range.max_ms);
        m.created_ms = now_ms;
        m
    };
    for action in actions {
        match action {
            Action::Downsample { inputs, to, day, .. } => {
                let m = new_block(inputs, *to, TimeRange::downsampled(inputs, *day));
                out.push(m);
            }
            Action::Merge { inputs, tier, .. } => {
                let mut m = new_block(inputs, *tier, TimeRange::spanning(inputs));
                m.sources = merged_sources(inputs);
                m.compaction_level =
                    inputs.iter().map(|i| i.compaction_level).max().unwrap_or(0) + 1;
                out.push(m);
                out.retain(|b| !inputs.iter().any(|i| i.block_id == b.block_id));
            }
            Action::Delete { meta, .. } => out.retain(|b| b.block_id != meta.block_id),
        }
    }
    out
}

fn assert_settled(signal: StoredSignal, metas: &[BlockMeta], now_ms: i64, policy: &Policy) {
    let again: Vec<String> = plan(signal, metas, now_ms, policy).iter().map(describe).collect();
    assert!(again.is_empty(), "planning again after applying gave {again:#?}");
}

#[test]
fn table() {
    struct Case {
        name: &'static str,
        signal: StoredSignal,
        metas: Vec<BlockMeta>,
        now: i64,
        expected: Vec<&'static str>,
    }
    let mut superseding = raw("b", T0, T0 + BLOCK - 1);
    superseding.sources = vec!["a".into(), "gone".into()];
    let mut five_with_raw_sources =
        meta("f", StoredSignal::Metrics, Tier::FiveMinutes, T0, T0 + 10);
    five_with_raw_sources.sources = vec!["a".into()];
    let logs = StoredSignal::Logs;
    let traces = StoredSignal::Traces;
    let cases = vec![
        Case {
            name: "nothing",
            signal: StoredSignal::Metrics,
            metas: vec![],
            now: T0,
            expected: vec![],
        },
        Case {
            name: "open window: nothing yet",
            signal: StoredSignal::Metrics,
            metas: vec![raw("a", T0, T0 + 10), raw("b", T0 + 5, T0 + 20)],
            now: T0 + BLOCK + HOUR,
            expected: vec![],
        },
        Case {
            name: "closed window of an open day merges",
            signal: StoredSignal::Metrics,
            metas: vec![
                raw("a", T0, T0 + 10),
                raw("b", T0 + 5, T0 + 20),
                raw("c", T0 + BLOCK, T0 + BLOCK + 1),
            ],
            now: T0 + 2 * BLOCK + HOUR,
            expected: vec![r#"merge raw [0h,2h) ["a", "b"]"#],
        },
        Case {
            name: "superseded leftovers are deleted; other tiers' sources hide nothing",
            signal: StoredSignal::Metrics,
            metas: vec![raw("a", T0, T0 + BLOCK - 1), superseding, five_with_raw_sources],
            now: T0 + BLOCK,
            expected: vec!["delete a Superseded"],
        },
        Case {
            name: "closed day: downsample to both tiers from raw, merge the day",
            signal: StoredSignal::Metrics,
            metas: vec![
                head_block("a", StoredSignal::Metrics, T0, 0),
                head_block("b", StoredSignal::Metrics, T0, 11),
            ],
            now: T0 + DAY_MS + 3 * HOUR,
            expected: vec![
                r#"downsample raw->5m day 0 ["a", "b"]"#,
                r#"downsample raw->1h day 0 ["a", "b"]"#,
                r#"merge raw [0h,24h) ["a", "b"]"#,
            ],
        },
        Case {
            name: "day with 5m data but no 1h data: 1h from 5m",
            signal: StoredSignal::Metrics,
            metas: vec![
                raw("a", T0, T0 + HOUR),
                meta("f", StoredSignal::Metrics, Tier::FiveMinutes, T0, T0 + HOUR),
            ],
            now: T0 + 2 * DAY_MS,
            expected: vec![r#"downsample 5m->1h day 0 ["f"]"#],
        },
        Case {
            name: "backfilled day past 5m retention: 1h straight from raw, then raw expires",
            signal: StoredSignal::Metrics,
            metas: vec![raw("a", T0, T0 + HOUR)],
            now: T0 + 100 * DAY_MS,
            expected: vec![r#"downsample raw->1h day 0 ["a"]"#, "delete a Retention"],
        },
        Case {
            name: "duplicate 5m blocks of a day merge",
            signal: StoredSignal::Metrics,
            metas: vec![
                meta("f1", StoredSignal::Metrics, Tier::FiveMinutes, T0, T0 + HOUR),
                meta("f2", StoredSignal::Metrics, Tier::FiveMinutes, T0 + 5, T0 + 2 * HOUR),
                meta("h", StoredSignal::Metrics, Tier::OneHour, T0, T0 + 2 * HOUR),
            ],
            now: T0 + 3 * DAY_MS,
            expected: vec![r#"merge 5m [0h,24h) ["f1", "f2"]"#],
        },
        Case {
            name: "logs merge per window even once the day is over, and expire at 30 d",
            signal: logs,
            metas: vec![
                head_block("a", logs, T0, 0),
                head_block("b", logs, T0, 0),
                head_block("c", logs, T0, 1),
                head_block("old", logs, T0 - 40 * DAY_MS, 0),
            ],
            now: T0 + 2 * DAY_MS,
            expected: vec![r#"merge raw [0h,2h) ["a", "b"]"#, "delete old Retention"],
        },
        Case {
            name: "traces expire at 14 d, not before",
            signal: traces,
            metas: vec![
                meta("young", traces, Tier::Raw, T0 - 13 * DAY_MS, T0 - 13 * DAY_MS),
                meta("old", traces, Tier::Raw, T0 - 15 * DAY_MS, T0 - 15 * DAY_MS),
            ],
            now: T0,
            expected: vec!["delete old Retention"],
        },
        Case {
            name: "a block spanning two windows is left alone",
            signal: logs,
            metas: vec![
                meta("wide", logs, Tier::Raw, T0, T0 + BLOCK),
                head_block("a", logs, T0, 0),
            ],
            now: T0 + 2 * DAY_MS,
            expected: vec![],
        },
    ];
    for case in cases {
        let actions = plan(case.signal, &case.metas, case.now, &policy());
        let described: Vec<String> = actions.iter().map(describe).collect();
        assert_eq!(described, case.expected, "case {:?}", case.name);
        let mut counter = 0;
        let applied = apply(&case.metas, &actions, case.now, &mut counter);
        assert_settled(case.signal, &applied, case.now, &policy());
    }
}

#[test]
fn visible_drops_blocks_listed_as_sources_of_the_same_tier() {
    let mut merged = raw("m", T0, T0 + 20);
    merged.sources = vec!["a".into(), "b".into()];
    let metas = vec![raw("a", T0, T0 + 10), merged, raw("c", T0, T0 + 3)];
    let ids: Vec<&str> = visible(&metas).iter().map(|m| m.block_id.as_str()).collect();
    assert_eq!(ids, vec!["m", "c"]);
}

#[test]
fn merged_sources_are_transitive() {
    let mut b = raw("b", 0, 1);
    b.sources = vec!["a".into()];
    assert_eq!(merged_sources(&[b, raw("c", 0, 1)]), vec!["a", "b", "c"]);
}

/// A month of the defaults, hour by hour: two aggregators cut a block per 2 h window. Every day
/// gets its 5 m and 1 h data before any of its raw data expires, each plan settles, and raw data
/// is kept exactly 15 days past its end.
#[test]
fn defaults_over_a_month_downsample_every_day_before_raw_expires() {
    let policy = policy();
    let mut metas: Vec<BlockMeta> = Vec::new();
    let mut counter = 0;
    for hour in 0..(32 * 24) {
        let now = T0 + hour * HOUR;
        if hour % 2 == 0 && hour >= 2 {
            // The window that ended at `now` is cut and uploaded by both replicas.
            let window = (hour - 2) / 2;
            for replica in ["x", "y"] {
                metas.push(head_block(
                    &format!("{replica}{window:04}"),
                    StoredSignal::Metrics,
                    T0,
                    window,
                ));
            }
        }
        let actions = plan(StoredSignal::Metrics, &metas, now, &policy);
        for action in &actions {
            if let Action::Delete { meta, reason: DeleteReason::Retention } = action {
                assert_eq!(meta.tier, Tier::Raw, "hour {hour}");
                assert!(meta.max_time_ms < now - 15 * DAY_MS);
                assert!(meta.max_time_ms >= now - 15 * DAY_MS - HOUR, "deleted late, hour {hour}");
                for day in Window::days_of(meta) {
                    for tier in [Tier::FiveMinutes, Tier::OneHour] {
                        assert!(
                            metas.iter().any(|m| m.tier == tier && day.overlaps(m)),
                            "hour {hour}: raw {} expires before its {tier:?} data exists",
                            meta.block_id
                        );
                    }
                }
            }
        }
        metas = apply(&metas, &actions, now, &mut counter);
        assert_settled(StoredSignal::Metrics, &metas, now, &policy);
    }
    let days_downsampled = metas.iter().filter(|m| m.tier == Tier::OneHour).count();
    assert_eq!(days_downsampled, 31, "every closed day has one 1h block");
    let raw_days: BTreeSet<i64> = metas
        .iter()
        .filter(|m| m.tier == Tier::Raw)
        .map(|m| m.min_time_ms.div_euclid(DAY_MS))
        .collect();
    assert!(raw_days.len() <= 17, "raw kept about 15 days, got {}", raw_days.len());
}

#[test]
fn short_raw_retention_waits_for_the_day_to_be_downsampled() {
    let mut short = policy();
    short.retention.metrics.raw = PromDuration::from_secs(6 * 3600);
    let metas = vec![head_block("a", StoredSignal::Metrics, T0, 0)];
    let before_close = T0 + DAY_MS + HOUR;
    assert!(plan(StoredSignal::Metrics, &metas, before_close, &short).is_empty());
    let described: Vec<String> =
        plan(StoredSignal::Metrics, &metas, T0 + DAY_MS + short.grace_ms, &short)
            .iter()
            .map(describe)
            .collect();
    assert_eq!(
        described,
        vec![
            r#"downsample raw->5m day 0 ["a"]"#,
            r#"downsample raw->1h day 0 ["a"]"#,
            "delete a Retention"
        ]
    );
}

fn any_block() -> impl Strategy<Value = (u8, u8, i64, i64, u8)> {
    (0u8..3, 0u8..3, 0i64..(4 * DAY_MS / HOUR), 0i64..30, 0u8..4)
}

proptest! {
    #[test]
    fn applying_a_plan_settles(
        blocks in proptest::collection::vec(any_block(), 0..12),
        signal_index in 0usize..3,
        now_hours in 0i64..(40 * 24),
    ) {
        let signal = StoredSignal::ALL[signal_index];
        let mut metas: Vec<BlockMeta> = Vec::new();
        for (index, (tier, _, start_hour, length_hours, source)) in blocks.into_iter().enumerate() {
            let tier = if signal == StoredSignal::Metrics { Tier::ALL[usize::from(tier)] } else { Tier::Raw };
            let min = T0 + start_hour * HOUR;
            let mut m = meta(&format!("b{index:02}"), signal, tier, min, min + length_hours * HOUR / 4);
            if source > 0 && index > 0 {
                m.sources = vec![format!("b{:02}", index - usize::from(source).min(index))];
            }
            metas.push(m);
        }
        let now = T0 + now_hours * HOUR;
        let actions = plan(signal, &metas, now, &policy());
        prop_assert_eq!(&plan(signal, &metas, now, &policy()), &actions, "deterministic");
        let mut counter = 0;
        let applied = apply(&metas, &actions, now, &mut counter);
        let again: Vec<String> = plan(signal, &applied, now, &policy()).iter().map(describe).collect();
        prop_assert!(again.is_empty(), "{:?} then {:?}", actions.iter().map(describe).collect::<Vec<_>>(), again);
    }
}
