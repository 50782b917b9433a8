//! The compactor lease: at most one aggregator compacts a bucket at a time (`DESIGN.md` §1: no
//! home-made consensus). The lease is one small JSON object, `{"holder": …, "expires_ms": …}`,
//! changed only with the object store's conditional puts (`object_store::PutMode`, whose
//! semantics are HTTP preconditions, RFC 9110 §13):
//!
//! * **Conditional update** (S3, MinIO, R2, GCS, Azure, in-memory): read the object; if it is
//!   absent, `PutMode::Create` (`If-None-Match: *`); if it is expired or ours, `PutMode::Update`
//!   with the e-tag/version just read (`If-Match`). A concurrent writer makes our put fail with
//!   `AlreadyExists`/`Precondition`, so of several contenders exactly one wins.
//! * **Create-only generations** (`object_store::local::LocalFileSystem`, which in 0.13 answers
//!   `PutMode::Update` with `NotImplemented` but implements `Create` atomically with a hard
//!   link): the lease is the highest-numbered object `{key}/{generation:020}`. Taking or renewing
//!   it creates generation `n + 1` with `PutMode::Create`, so two contenders that read
//!   generation `n` race on one create and exactly one wins. The winner then lists again and
//!   gives up if a higher generation exists (a contender that read long ago may create an old,
//!   already cleaned-up number; it is never the highest). Older generations are deleted best
//!   effort; the highest is never deleted (release writes an expired generation instead), so
//!   numbers never restart. This serves two processes sharing a local or NFS directory too.
//!
//! The protocol is chosen once per [`Lease`] by probing the store (a put, then a conditional
//! update of a probe object next to the lease), so every process on one backend agrees.
//!
//! S3: object_store sends `If-None-Match`/`If-Match` when `aws_conditional_put` is `etag`, which
//! is the default in 0.13; it must not be set to `disabled` (puts then fail with
//! `NotImplemented`, reported as [`LeaseError::Unsupported`]). The store must honour those
//! headers: AWS S3 does (conditional writes, 2024), as do MinIO and Cloudflare R2; S3 emulators
//! such as moto honour them only in recent versions — check before relying on one for more than
//! one aggregator.
//!
//! Time: expiry uses the caller's clock (`now_ms`); clocks of aggregators must agree to well
//! within the lease duration. A holder renews by calling [`Lease::try_acquire`] again before
//! `expires_ms`, and must stop compacting when that returns `false`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {key}: object store request failed: {source}")]
    Store { key: String, source: object_store::Error },
    #[error("lease {key}: the object store supports no conditional create ({source}); for S3 keep aws_conditional_put at \"etag\"")]
    Unsupported { key: String, source: object_store::Error },
}

/// How the lease object is changed; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    ConditionalUpdate,
    CreateGenerations,
}

/// The lease object's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    expires_ms: i64,
}

/// What was read: the current record (if any, and if readable) and how to replace it.
#[derive(Debug)]
enum Observed {
    Absent,
    /// Conditional-update protocol: the object and its version.
    Versioned {
        record: Option<LeaseRecord>,
        version: UpdateVersion,
    },
    /// Generations protocol: the highest generation and its record.
    Generation {
        number: u64,
        record: Option<LeaseRecord>,
    },
}

pub struct Lease {
    store: Arc<dyn ObjectStore>,
    key: Path,
    holder: String,
    duration_ms: i64,
    protocol: OnceCell<Protocol>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).field("holder", &self.holder).finish()
    }
}

impl Lease {
    pub fn new(store: Arc<dyn ObjectStore>, key: Path, holder: String, duration: Duration) -> Self {
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self { store, key, holder, duration_ms, protocol: OnceCell::new() }
    }

    /// Skips probing when the protocol is known (every process on the bucket must use the same).
    pub fn with_protocol(self, protocol: Protocol) -> Self {
        Self { protocol: OnceCell::new_with(Some(protocol)), ..self }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The protocol in use, probing the store the first time.
    pub async fn protocol(&self) -> Result<Protocol, LeaseError> {
        self.protocol.get_or_try_init(|| self.probe()).await.copied()
    }

    /// Takes the lease if it is free or expired, renews it if it is ours. `true`: we hold it
    /// until `now_ms + duration`.
    pub async fn try_acquire(&self, now_ms: i64) -> Result<bool, LeaseError> {
        let observed = self.observe().await?;
        self.claim(observed, now_ms).await
    }

    /// Gives the lease up (if we hold it) so another aggregator can take it at once.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let observed = self.observe().await?;
        let ours = match &observed {
            Observed::Absent => false,
            Observed::Versioned { record, .. } | Observed::Generation { record, .. } => {
                record.as_ref().is_some_and(|r| r.holder == self.holder)
            }
        };
        if ours {
            // Expired since 1970: anyone may take it. Losing this race means it is not ours.
            self.write(observed, LeaseRecord { holder: self.holder.clone(), expires_ms: 0 })
                .await?;
        }
        Ok(())
    }

    async fn observe(&self) -> Result<Observed, LeaseError> {
        match self.protocol().await? {
            Protocol::ConditionalUpdate => match self.read(&self.key).await? {
                None => Ok(Observed::Absent),
                Some((record, version)) => Ok(Observed::Versioned { record, version }),
            },
            Protocol::CreateGenerations => {
                let Some(number) = self.highest_generation().await? else {
                    return Ok(Observed::Absent);
                };
                // Deleted since listing: it was not the highest any more; retry on next call
                // by reporting a record nobody may take.
                let record = match self.read(&self.generation(number)).await? {
                    Some((record, _)) => record,
                    None => Some(LeaseRecord { holder: String::new(), expires_ms: i64::MAX }),
                };
                Ok(Observed::Generation { number, record })
            }
        }
    }

    /// Decides on what was observed and, if the lease is free, expired or ours, writes it.
    async fn claim(&self, observed: Observed, now_ms: i64) -> Result<bool, LeaseError> {
        let takeable = match &observed {
            Observed::Absent => true,
            // An unreadable record is treated as expired: the conditional write still makes
            // only one contender win.
            Observed::Versioned { record, .. } | Observed::Generation { record, .. } => {
                record.as_ref().is_none_or(|r| r.holder == self.holder || r.expires_ms <= now_ms)
            }
        };
        if !takeable {
            return Ok(false);
        }
        let record = LeaseRecord {
            holder: self.holder.clone(),
            expires_ms: now_ms.saturating_add(self.duration_ms),
        };
        self.write(observed, record).await
    }

    /// Conditionally replaces what was observed with `record`; `false` if someone was faster.
    async fn write(&self, observed: Observed, record: LeaseRecord) -> Result<bool, LeaseError> {
        let body = PutPayload::from(serde_json::to_vec(&record).unwrap_or_default());
        let (location, mode, generation) = match observed {
            Observed::Absent => match self.protocol().await? {
                Protocol::ConditionalUpdate => (self.key.clone(), PutMode::Create, None),
                Protocol::CreateGenerations => (self.generation(1), PutMode::Create, Some(1)),
            },
            Observed::Versioned { version, .. } => {
                (self.key.clone(), PutMode::Update(version), None)
            }
            Observed::Generation { number, .. } => {
                (self.generation(number + 1), PutMode::Create, Some(number + 1))
            }
        };
        match self.store.put_opts(&location, body, mode.into()).await {
            Ok(_) => {}
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => return Ok(false),
            Err(source @ object_store::Error::NotImplemented { .. }) => {
                return Err(LeaseError::Unsupported { key: self.key.to_string(), source })
            }
            Err(source) => return Err(self.store_error(source)),
        }
        let Some(ours) = generation else { return Ok(true) };
        let highest = self.highest_generation().await?.unwrap_or(ours);
        if highest > ours {
            return Ok(false);
        }
        self.delete_generations_below(ours).await;
        Ok(true)
    }

    /// The record at `location` (None inside if unreadable) and its version; None if absent.
    async fn read(
        &self,
        location: &Path,
    ) -> Result<Option<(Option<LeaseRecord>, UpdateVersion)>, LeaseError> {
        let result = match self.store.get_opts(location, GetOptions::default()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(self.store_error(source)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(|source| self.store_error(source))?;
        let record = match serde_json::from_slice::<LeaseRecord>(&bytes) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::warn!(key = %location, %error, "unreadable compactor lease, treated as expired");
                None
            }
        };
        Ok(Some((record, version)))
    }

    fn generation(&self, number: u64) -> Path {
        self.key.clone().join(format!("{number:020}"))
    }

    async fn generations(&self) -> Result<Vec<(u64, Path)>, LeaseError> {
        let objects: Vec<_> = self
            .store
            .list(Some(&self.key))
            .try_collect()
            .await
            .map_err(|source| self.store_error(source))?;
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let number = object.location.filename()?.parse::<u64>().ok()?;
                Some((number, object.location))
            })
            .collect())
    }

    async fn highest_generation(&self) -> Result<Option<u64>, LeaseError> {
        Ok(self.generations().await?.into_iter().map(|(number, _)| number).max())
    }

    /// Best effort: a failure leaves garbage that the next winner removes.
    async fn delete_generations_below(&self, ours: u64) {
        let Ok(generations) = self.generations().await else { return };
        for (number, location) in generations {
            if number < ours {
                if let Err(error) = self.store.delete(&location).await {
                    tracing::debug!(key = %location, %error, "old lease generation not deleted");
                }
            }
        }
    }

    /// Whether the store supports `PutMode::Update`, tried on a probe object of our own.
    async fn probe(&self) -> Result<Protocol, LeaseError> {
        let probe = Path::from(format!("{}.probe", self.key)).join(self.holder.as_str());
        let put = self
            .store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(|source| self.store_error(source))?;
        let version = UpdateVersion { e_tag: put.e_tag, version: put.version };
        let update = self
            .store
            .put_opts(&probe, PutPayload::from_static(b"probe"), PutMode::Update(version).into())
            .await;
        if let Err(error) = self.store.delete(&probe).await {
            tracing::debug!(key = %probe, %error, "lease probe object not deleted");
        }
        match update {
            Ok(_) | Err(object_store::Error::Precondition { .. }) => {
                Ok(Protocol::ConditionalUpdate)
            }
            Err(object_store::Error::NotImplemented { .. }) => Ok(Protocol::CreateGenerations),
            Err(source) => Err(self.store_error(source)),
        }
    }

    fn store_error(&self, source: object_store::Error) -> LeaseError {
        LeaseError::Store { key: self.key.to_string(), source }
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
