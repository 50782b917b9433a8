use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use super::*;

const MINUTE: Duration = Duration::from_secs(60);
const MINUTE_MS: i64 = 60_000;

fn key() -> Path {
    Path::from("compactor/lease")
}

/// The stores and protocols every lease test runs against: the in-memory store with both
/// protocols, and a local directory (probed: create-only generations).
fn backends(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn ObjectStore>, Option<Protocol>)> {
    let local: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
    vec![
        ("memory", Arc::new(InMemory::new()), None),
        ("memory generations", Arc::new(InMemory::new()), Some(Protocol::CreateGenerations)),
        ("local", local, None),
    ]
}

fn lease(store: &Arc<dyn ObjectStore>, protocol: Option<Protocol>, holder: &str) -> Lease {
    let lease = Lease::new(Arc::clone(store), key(), holder.to_owned(), MINUTE);
    match protocol {
        Some(protocol) => lease.with_protocol(protocol),
        None => lease,
    }
}

#[tokio::test]
async fn probing_picks_update_where_supported_and_generations_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    assert_eq!(lease(&memory, None, "a").protocol().await.unwrap(), Protocol::ConditionalUpdate);

    // object_store 0.13's LocalFileSystem: Create works, Update is not implemented.
    let local = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let probe = Path::from("p");
    let put = local.put(&probe, PutPayload::from_static(b"x")).await.unwrap();
    let update = PutMode::Update(UpdateVersion { e_tag: put.e_tag, version: put.version });
    let result = local.put_opts(&probe, PutPayload::from_static(b"y"), update.into()).await;
    assert!(matches!(result, Err(object_store::Error::NotImplemented { .. })), "{result:?}");
    let result =
        local.put_opts(&probe, PutPayload::from_static(b"y"), PutMode::Create.into()).await;
    assert!(matches!(result, Err(object_store::Error::AlreadyExists { .. })), "{result:?}");

    let local: Arc<dyn ObjectStore> = Arc::new(local);
    assert_eq!(lease(&local, None, "a").protocol().await.unwrap(), Protocol::CreateGenerations);
    let leftovers: Vec<_> = local.list(None).try_collect().await.unwrap();
    assert_eq!(leftovers.len(), 1, "only the test's own object; the probe is gone: {leftovers:?}");
}

#[tokio::test]
async fn of_two_contenders_that_read_the_same_state_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store, protocol) in backends(dir.path()) {
        let a = lease(&store, protocol, "a");
        let b = lease(&store, protocol, "b");
        // Free lease: both read "absent", then both write.
        let (seen_by_a, seen_by_b) = (a.observe().await.unwrap(), b.observe().await.unwrap());
        assert!(a.claim(seen_by_a, 0).await.unwrap(), "{name}");
        assert!(!b.claim(seen_by_b, 0).await.unwrap(), "{name}: b must lose");
        // Expired lease: both read a's expired record, then both write.
        let later = 2 * MINUTE_MS;
        let (seen_by_a, seen_by_b) = (a.observe().await.unwrap(), b.observe().await.unwrap());
        assert!(b.claim(seen_by_b, later).await.unwrap(), "{name}");
        assert!(!a.claim(seen_by_a, later).await.unwrap(), "{name}: a must lose");
        assert!(b.try_acquire(later + 1).await.unwrap(), "{name}: b holds it");
        assert!(!a.try_acquire(later + 1).await.unwrap(), "{name}: a does not");
    }
}

#[tokio::test]
async fn holder_renews_others_wait_for_expiry_and_release_frees_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store, protocol) in backends(dir.path()) {
        let a = lease(&store, protocol, "a");
        let b = lease(&store, protocol, "b");
        assert!(a.try_acquire(0).await.unwrap(), "{name}");
        assert!(!b.try_acquire(30_000).await.unwrap(), "{name}: held by a");
        assert!(a.try_acquire(50_000).await.unwrap(), "{name}: renewal, now until 110 s");
        assert!(!b.try_acquire(100_000).await.unwrap(), "{name}: the renewal counts");
        assert!(b.try_acquire(110_000).await.unwrap(), "{name}: expired: taken over");
        assert!(!a.try_acquire(110_001).await.unwrap(), "{name}: a lost it");
        b.release().await.unwrap();
        a.release().await.unwrap(); // not a's: no effect
        assert!(a.try_acquire(110_002).await.unwrap(), "{name}: released: free at once");
    }
}

/// A contender that read generation n long ago may create n + 1 after it was cleaned up; the
/// check after creating must make it lose, since a higher generation exists.
#[tokio::test]
async fn a_stale_generation_create_loses() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = lease(&store, Some(Protocol::CreateGenerations), "a");
    let b = lease(&store, Some(Protocol::CreateGenerations), "b");
    let slow = lease(&store, Some(Protocol::CreateGenerations), "slow");
    assert!(a.try_acquire(0).await.unwrap());
    let stale = slow.observe().await.unwrap(); // generation 1, expired at 60 s
    assert!(b.try_acquire(MINUTE_MS).await.unwrap()); // generation 2, deletes 1
    assert!(b.try_acquire(MINUTE_MS + 1).await.unwrap()); // generation 3, deletes 2
    assert!(!slow.claim(stale, MINUTE_MS + 2).await.unwrap(), "creates 2, but 3 exists");
    assert!(b.try_acquire(MINUTE_MS + 3).await.unwrap());
    assert!(!slow.try_acquire(MINUTE_MS + 3).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_contenders_yield_one_holder() {
    let dir = tempfile::tempdir().unwrap();
    for (name, store, protocol) in backends(dir.path()) {
        for round in 0..5i64 {
            // Every round starts after the previous holder's lease expired.
            let now = round * 10 * MINUTE_MS;
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let contender = lease(&store, protocol, &format!("c{i}"));
                    tokio::spawn(async move { contender.try_acquire(now).await.unwrap() })
                })
                .collect();
            let mut winners = 0;
            for task in tasks {
                winners += usize::from(task.await.unwrap());
            }
            assert_eq!(winners, 1, "{name} round {round}");
        }
    }
}
