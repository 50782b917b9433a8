//! Per-tenant ingestion rate limit: a token bucket over entry bytes (line + structured
//! metadata, [`LogEntry::size`](crate::model::LogEntry::size)), Loki's `ingestion_rate_mb` /
//! `ingestion_burst_size_mb` with the "local" strategy (`pkg/distributor/distributor.go`: one
//! `AllowN(now, tenant, validatedLineSize)` per push; a push over the limit is refused whole
//! with a 429 and nothing of it is kept).
//!
//! Semantics of `golang.org/x/time/rate` that Loki relies on: a bucket starts full (`burst`
//! tokens), refills at `rate` tokens per second up to `burst`, and a request for more tokens than
//! are available takes none (there is no debt), so a push larger than `burst` never passes.
//!
//! Invariants: time is the caller's (`now_ns`), so the limiter is deterministic under test; a
//! clock that steps back refills nothing; the tenant map is bounded by evicting buckets that
//! have refilled completely (indistinguishable from a fresh one) once it holds
//! [`SWEEP_AT`] tenants.

use std::sync::{Mutex, PoisonError};

// ahash: one lookup per push on the hot path.
use ahash::AHashMap as HashMap;

use crate::model::Tenant;

/// Tenant count at which full buckets are swept out.
const SWEEP_AT: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated_ns: i64,
}

/// Token buckets per tenant.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_second: u64,
    burst: u64,
    buckets: Mutex<HashMap<Tenant, Bucket>>,
}

impl RateLimiter {
    /// `None` when `bytes_per_second` is 0 (no limit).
    pub fn new(bytes_per_second: u64, burst: u64) -> Option<Self> {
        (bytes_per_second > 0).then(|| Self {
            bytes_per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes `bytes` tokens from `tenant`'s bucket at `now_ns`; false (and nothing taken) when
    /// there are not that many.
    pub fn try_take(&self, tenant: &Tenant, bytes: u64, now_ns: i64) -> bool {
        if bytes == 0 {
            return true;
        }
        // A panic elsewhere while holding the lock cannot leave a bucket half-updated (every
        // update is two plain stores), so a poisoned map is still sound.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&**tenant) {
            if buckets.len() >= SWEEP_AT {
                buckets.retain(|_, bucket| !self.is_full(bucket, now_ns));
            }
            buckets
                .insert(tenant.clone(), Bucket { tokens: self.burst as f64, updated_ns: now_ns });
        }
        let Some(bucket) = buckets.get_mut(&**tenant) else { return false };
        self.refill(bucket, now_ns);
        let wanted = bytes as f64;
        if wanted > bucket.tokens {
            return false;
        }
        bucket.tokens -= wanted;
        true
    }

    fn refill(&self, bucket: &mut Bucket, now_ns: i64) {
        if now_ns <= bucket.updated_ns {
            return;
        }
        let elapsed_s = (now_ns - bucket.updated_ns) as f64 / 1e9;
        bucket.tokens =
            (bucket.tokens + elapsed_s * self.bytes_per_second as f64).min(self.burst as f64);
        bucket.updated_ns = now_ns;
    }

    fn is_full(&self, bucket: &Bucket, now_ns: i64) -> bool {
        let mut refilled = *bucket;
        self.refill(&mut refilled, now_ns);
        refilled.tokens >= self.burst as f64
    }

    #[cfg(test)]
    fn tenants(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn zero_rate_means_no_limiter() {
        assert!(RateLimiter::new(0, 100).is_none());
    }

    #[test]
    fn bucket_starts_full_refills_at_rate_and_takes_nothing_when_short() {
        let limiter = RateLimiter::new(1000, 2000).unwrap();
        let tenant: Tenant = "a".into();
        assert!(limiter.try_take(&tenant, 1500, 0));
        assert!(!limiter.try_take(&tenant, 600, 0), "500 left");
        assert!(limiter.try_take(&tenant, 500, 0), "a refused push took nothing");
        assert!(!limiter.try_take(&tenant, 1, 0));
        assert!(limiter.try_take(&tenant, 100, SECOND / 10), "0.1 s refills 100 bytes");
        assert!(!limiter.try_take(&tenant, 1, SECOND / 10));
        // Refill stops at the burst.
        assert!(!limiter.try_take(&tenant, 2001, 100 * SECOND));
        assert!(limiter.try_take(&tenant, 2000, 100 * SECOND));
    }

    #[test]
    fn tenants_have_separate_buckets() {
        let limiter = RateLimiter::new(10, 100).unwrap();
        assert!(limiter.try_take(&"a".into(), 100, 0));
        assert!(!limiter.try_take(&"a".into(), 1, 0));
        assert!(limiter.try_take(&"b".into(), 100, 0));
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let limiter = RateLimiter::new(1000, 1000).unwrap();
        let tenant: Tenant = "a".into();
        assert!(limiter.try_take(&tenant, 1000, 10 * SECOND));
        assert!(!limiter.try_take(&tenant, 1, 5 * SECOND));
        assert!(limiter.try_take(&tenant, 1000, 11 * SECOND));
    }

    #[test]
    fn full_buckets_are_swept_when_many_tenants_appear() {
        let limiter = RateLimiter::new(1000, 1000).unwrap();
        for i in 0..SWEEP_AT {
            assert!(limiter.try_take(&format!("t{i}").into(), 1000, 0));
        }
        assert_eq!(limiter.tenants(), SWEEP_AT);
        // One second later every bucket is full again: the next new tenant sweeps them.
        assert!(limiter.try_take(&"new".into(), 1, SECOND));
        assert_eq!(limiter.tenants(), 1);
        // Empty buckets are kept: their state still matters.
        let limiter = RateLimiter::new(1, 1000).unwrap();
        for i in 0..SWEEP_AT {
            assert!(limiter.try_take(&format!("t{i}").into(), 1000, 0));
        }
        assert!(limiter.try_take(&"new".into(), 1, SECOND));
        assert_eq!(limiter.tenants(), SWEEP_AT + 1);
        assert!(!limiter.try_take(&"t0".into(), 2, SECOND));
    }
}
