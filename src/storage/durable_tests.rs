use super::*;
use crate::config::ByteSize;
use crate::telemetry::Catalog;

fn config(fsync: FsyncPolicy, segment: u64, max: u64) -> WalConfig {
    WalConfig {
        fsync,
        segment_size: ByteSize::from_bytes(segment),
        max_size: ByteSize::from_bytes(max),
        ..WalConfig::default()
    }
}

fn open(dir: &Path, config: &WalConfig) -> Arc<Durable> {
    Durable::open(dir, config, Catalog::new().storage()).unwrap().0
}

async fn append(durable: &Durable, payload: &[u8]) -> Position {
    let _gate = durable.gate().await;
    let position = durable.append(1, payload).unwrap();
    durable.commit(position).await.unwrap();
    position
}

#[tokio::test]
async fn consumers_resume_from_their_own_saved_positions() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(FsyncPolicy::Always, 1 << 16, 1 << 30);
    let durable = open(dir.path(), &config);
    let (fast, start) = durable.consumer("forward/fast", false);
    let (slow, _) = durable.consumer("forward/slow", false);
    let first = append(&durable, b"one").await;
    let second = append(&durable, b"two").await;
    assert_eq!(start, Position { segment: 0, offset: 0 }, "no positions file: from the start");
    assert!(first > start);
    // `fast` delivered both records; `slow` still holds the second.
    drop(fast.register(first));
    drop(fast.register(second));
    let slow_ack = slow.register(second);
    drop(slow.register(first));
    durable.checkpoint().await.unwrap();
    drop(slow_ack);
    drop(durable);

    let reopened = open(dir.path(), &config);
    let (_, fast_resume) = reopened.consumer("forward/fast", false);
    let (_, slow_resume) = reopened.consumer("forward/slow", false);
    let (_, new_resume) = reopened.consumer("forward/new", false);
    let end = reopened.wal.lock().unwrap().end();
    assert_eq!(fast_resume, end);
    assert_eq!(slow_resume, second, "resumes at the record it had not finished");
    assert_eq!(new_resume, end);
    let replay: Vec<_> = reopened.read_from(slow_resume).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0].payload, b"two");
}

#[tokio::test]
async fn checkpoints_delete_segments_every_consumer_is_past() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(FsyncPolicy::Interval, 64 * 1024, 1 << 30);
    let durable = open(dir.path(), &config);
    let (tracker, _) = durable.consumer("head", true);
    let payload = vec![7u8; 20 * 1024];
    let mut acks = Vec::new();
    for _ in 0..10 {
        let position = append(&durable, &payload).await;
        acks.push(tracker.register(position));
    }
    let segments = || std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    let before = segments();
    assert!(before >= 3, "{before} segments");
    durable.checkpoint().await.unwrap();
    assert_eq!(segments(), before, "nothing is deleted while the first record is outstanding");
    acks.drain(..8);
    durable.checkpoint().await.unwrap();
    assert!(segments() < before);
    let left: Vec<_> = durable
        .read_from(Position { segment: 0, offset: 0 })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(left.len() >= 2 && left.len() < 10, "{} records left", left.len());
}

#[tokio::test]
async fn a_full_wal_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let durable = open(dir.path(), &config(FsyncPolicy::Interval, 64 * 1024, 64 * 1024));
    let _gate = durable.gate().await;
    let big = vec![1u8; 40 * 1024];
    durable.append(1, &big).unwrap();
    durable.append(1, &big).unwrap();
    let err = durable.append(1, &big).unwrap_err();
    assert!(matches!(err, DurableError::Full { .. }), "{err}");
    assert!(err.to_string().contains("the WAL is full"), "{err}");
}
