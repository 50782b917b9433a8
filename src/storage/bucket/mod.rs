//! The bucket: where blocks live, over any `object_store` backend (local directory, S3-compatible,
//! GCS, Azure, in-memory), following `DESIGN.md` §5 and `docs/storage-format.md`.
//!
//! Key layout (under the URL's own prefix, if any):
//!
//! ```text
//! {tenant}/{signal}/{tier}/{yyyy-mm-dd}/{block_id}/data.parquet
//! {tenant}/{signal}/{tier}/{yyyy-mm-dd}/{block_id}/meta.json
//! ```
//!
//! where the day is the UTC day of the block's `min_time_ms`, so bucket lifecycle rules and
//! storage classes can target a tenant, signal or tier by prefix.
//!
//! Invariants:
//! * a block is visible exactly when its `meta.json` exists: [`Bucket::put_block`] uploads every
//!   data file first (multipart above [`MULTIPART_THRESHOLD`]) and `meta.json` last;
//!   [`Bucket::delete_block`] removes `meta.json` first, so readers never see half a block (the
//!   object-store analogue of Thanos' "meta.json is uploaded last" rule,
//!   `pkg/block/block.go` `Upload`);
//! * tenant names are restricted to Loki's tenant-id characters, so keys need no escaping and
//!   list back to the same names;
//! * block ids sort by creation time (12 hex digits of milliseconds, 16 random hex digits).

pub mod cli;
mod time;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, TagSet, WriteMultipart,
};

pub use time::{rfc3339_ms, utc_day};

use crate::config::storage::TierObjects;
use crate::storage::{BlockFile, BlockMeta, StoredSignal, Tier};

/// Files larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
/// Size of one multipart part (S3 wants at least 5 MiB except for the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight per upload.
const PART_CONCURRENCY: usize = 4;
/// `meta.json` reads in flight while listing.
const META_CONCURRENCY: usize = 16;
/// The name of the file that makes a block visible.
pub const META_FILE: &str = "meta.json";

/// Why a bucket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("bucket url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("local bucket directory {path}: {source}")]
    LocalDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("object store {operation} {key}: {source}")]
    Store {
        operation: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("meta.json at {key}: {reason}")]
    Meta { key: String, reason: String },
    #[error("block {block_id}: {reason}")]
    InvalidBlock { block_id: String, reason: String },
}

impl BucketError {
    fn store(operation: &'static str, key: &Path) -> impl Fn(object_store::Error) -> Self {
        let key = key.to_string();
        move |source| Self::Store { operation, key: key.clone(), source }
    }
}

/// Which blocks a listing returns; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFilter {
    pub tenant: Option<String>,
    pub signal: Option<StoredSignal>,
    pub tier: Option<Tier>,
}

/// Blocks in one object store, under one key prefix.
#[derive(Clone, Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Local directories reject object attributes (storage class); they are skipped there.
    attributes_supported: bool,
    description: String,
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Bucket {
    /// Opens the bucket of `storage.bucket_url`: empty → the local directory `default_dir`
    /// (created); a plain path or `file://` URL → that local directory (created); any other URL
    /// (`s3://bucket/prefix`, `gs://`, `az://`, `memory://`) → `object_store::parse_url_opts`
    /// with `options`, keeping the URL's path as key prefix.
    pub fn from_config(
        url: &str,
        options: &BTreeMap<String, String>,
        default_dir: &std::path::Path,
    ) -> Result<Self, BucketError> {
        if url.is_empty() {
            return Self::local(default_dir);
        }
        if !url.contains("://") {
            return Self::local(std::path::Path::new(url));
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| BucketError::Url { url: url.to_owned(), reason: e.to_string() })?;
        if parsed.scheme() == "file" {
            let dir = parsed.to_file_path().map_err(|()| BucketError::Url {
                url: url.to_owned(),
                reason: "not a local absolute path".into(),
            })?;
            return Self::local(&dir);
        }
        check_options(&parsed, options)
            .map_err(|reason| BucketError::Url { url: url.to_owned(), reason })?;
        let (store, prefix) = object_store::parse_url_opts(&parsed, options.iter())
            .map_err(|e| BucketError::Url { url: url.to_owned(), reason: e.to_string() })?;
        Ok(Self {
            store: Arc::from(store),
            prefix,
            attributes_supported: true,
            description: url.to_owned(),
        })
    }

    /// A bucket in the local directory `dir` (created when missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, BucketError> {
        let shown = dir.display().to_string();
        std::fs::create_dir_all(dir)
            .map_err(|source| BucketError::LocalDir { path: shown.clone(), source })?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BucketError::Url { url: shown.clone(), reason: e.to_string() })?
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::default(),
            attributes_supported: false,
            description: shown,
        })
    }

    /// A bucket over any store (tests use `object_store::memory::InMemory`).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, attributes_supported: bool) -> Self {
        let description = format!("{store}/{prefix}");
        Self { store, prefix, attributes_supported, description }
    }

    /// The underlying store (the compactor lease writes next to the blocks).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `relative` (slash-separated) under the bucket's prefix.
    pub fn key(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), |key, part| key.join(part))
    }

    /// `{prefix}/{tenant}/{signal}/{tier}/{day}/{block_id}`.
    pub fn block_prefix(&self, meta: &BlockMeta) -> Path {
        self.prefix
            .clone()
            .join(meta.tenant.as_str())
            .join(meta.signal.as_str())
            .join(meta.tier.as_str())
            .join(utc_day(meta.min_time_ms))
            .join(meta.block_id.as_str())
    }

    /// Key of a block's `meta.json`.
    pub fn meta_key(&self, meta: &BlockMeta) -> Path {
        self.block_prefix(meta).join(META_FILE)
    }

    /// Key of one of a block's files.
    pub fn file_key(&self, meta: &BlockMeta, name: &str) -> Path {
        self.block_prefix(meta).join(name)
    }

    /// Uploads `files`, then the block's `meta.json` with `files` filled in (name and size), and
    /// returns that meta. `tier_objects` adds tags and the storage class to every object.
    pub async fn put_block(
        &self,
        mut meta: BlockMeta,
        files: Vec<(String, Bytes)>,
        tier_objects: Option<&TierObjects>,
    ) -> Result<BlockMeta, BucketError> {
        validate_tenant(&meta.tenant).map_err(|reason| BucketError::InvalidBlock {
            block_id: meta.block_id.clone(),
            reason,
        })?;
        validate_block_id(&meta.block_id).map_err(|reason| BucketError::InvalidBlock {
            block_id: meta.block_id.clone(),
            reason,
        })?;
        if files.is_empty() || files.iter().any(|(name, _)| !valid_file_name(name)) {
            return Err(BucketError::InvalidBlock {
                block_id: meta.block_id.clone(),
                reason: "needs at least one data file, named without '/' and not meta.json".into(),
            });
        }
        let (tags, attributes) = self.object_options(tier_objects);
        meta.files = files
            .iter()
            .map(|(name, data)| BlockFile { name: name.clone(), size: data.len() as u64 })
            .collect();
        for (name, data) in files {
            let key = self.file_key(&meta, &name);
            self.upload(&key, data, &tags, &attributes).await?;
        }
        let key = self.meta_key(&meta);
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| BucketError::Meta { key: key.to_string(), reason: e.to_string() })?;
        self.upload(&key, Bytes::from(json), &tags, &attributes).await?;
        Ok(meta)
    }

    fn object_options(&self, tier_objects: Option<&TierObjects>) -> (TagSet, Attributes) {
        let mut tags = TagSet::default();
        let mut attributes = Attributes::new();
        if let Some(objects) = tier_objects {
            for (key, value) in &objects.tags {
                tags.push(key, value);
            }
            if let (Some(class), true) = (&objects.storage_class, self.attributes_supported) {
                attributes.insert(Attribute::StorageClass, class.clone().into());
            }
        }
        (tags, attributes)
    }

    async fn upload(
        &self,
        key: &Path,
        data: Bytes,
        tags: &TagSet,
        attributes: &Attributes,
    ) -> Result<(), BucketError> {
        if data.len() <= MULTIPART_THRESHOLD {
            let options = PutOptions {
                tags: tags.clone(),
                attributes: attributes.clone(),
                ..PutOptions::default()
            };
            self.store
                .put_opts(key, PutPayload::from(data), options)
                .await
                .map_err(BucketError::store("put", key))?;
            return Ok(());
        }
        let options = PutMultipartOptions {
            tags: tags.clone(),
            attributes: attributes.clone(),
            ..PutMultipartOptions::default()
        };
        let upload = self
            .store
            .put_multipart_opts(key, options)
            .await
            .map_err(BucketError::store("multipart start", key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut rest = data;
        while !rest.is_empty() {
            if let Err(source) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                // Best effort: the upload failed already; leftover parts expire by bucket policy.
                let _ = writer.abort().await;
                return Err(BucketError::Store {
                    operation: "multipart part",
                    key: key.to_string(),
                    source,
                });
            }
            let part = rest.split_to(rest.len().min(PART_SIZE));
            writer.put(part);
        }
        writer.finish().await.map_err(BucketError::store("multipart complete", key))?;
        Ok(())
    }

    /// Keys of the `meta.json` files of the blocks `filter` selects, in key order.
    pub async fn list_meta_keys(&self, filter: &BlockFilter) -> Result<Vec<Path>, BucketError> {
        // List below the deepest prefix the filter fixes.
        let mut prefix = self.prefix.clone();
        if let Some(tenant) = &filter.tenant {
            prefix = prefix.join(tenant.as_str());
            if let Some(signal) = filter.signal {
                prefix = prefix.join(signal.as_str());
                if let Some(tier) = filter.tier {
                    prefix = prefix.join(tier.as_str());
                }
            }
        }
        let base_depth = self.prefix.parts_count();
        let mut keys: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_err(BucketError::store("list", &prefix))
            .try_filter_map(|object| async move {
                let parts: Vec<String> = object
                    .location
                    .parts()
                    .skip(base_depth)
                    .map(|p| p.as_ref().to_owned())
                    .collect();
                let wanted = parts.len() == 6
                    && parts[5] == META_FILE
                    && filter.tenant.as_ref().is_none_or(|t| *t == parts[0])
                    && filter.signal.is_none_or(|s| s.as_str() == parts[1])
                    && filter.tier.is_none_or(|t| t.as_str() == parts[2]);
                Ok(wanted.then_some(object.location))
            })
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// Reads and parses one `meta.json`.
    pub async fn read_meta(&self, key: &Path) -> Result<BlockMeta, BucketError> {
        let data = self.get_key(key).await?;
        serde_json::from_slice(&data)
            .map_err(|e| BucketError::Meta { key: key.to_string(), reason: e.to_string() })
    }

    /// The blocks `filter` selects (those whose `meta.json` exists), ordered by tenant, signal,
    /// tier, start time and id.
    pub async fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>, BucketError> {
        let keys = self.list_meta_keys(filter).await?;
        // Owned keys and a boxed future keep this future `Send` for axum handlers (borrowed
        // keys run into rustc's higher-ranked lifetime limits with `buffered`).
        let mut metas: Vec<BlockMeta> = futures_util::stream::iter(keys)
            .map(|key| -> futures_util::future::BoxFuture<'_, _> {
                Box::pin(async move { self.read_meta(&key).await })
            })
            .buffered(META_CONCURRENCY)
            .try_collect()
            .await?;
        metas.sort_by(|a, b| {
            (&a.tenant, a.signal, a.tier, a.min_time_ms, &a.block_id).cmp(&(
                &b.tenant,
                b.signal,
                b.tier,
                b.min_time_ms,
                &b.block_id,
            ))
        });
        Ok(metas)
    }

    /// The content of file `name` of a block.
    pub async fn get_file(&self, meta: &BlockMeta, name: &str) -> Result<Bytes, BucketError> {
        self.get_key(&self.file_key(meta, name)).await
    }

    /// Size of an object, `None` when it does not exist.
    pub async fn object_size(&self, key: &Path) -> Result<Option<u64>, BucketError> {
        match self.store.head(key).await {
            Ok(object) => Ok(Some(object.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => {
                Err(BucketError::Store { operation: "head", key: key.to_string(), source })
            }
        }
    }

    async fn get_key(&self, key: &Path) -> Result<Bytes, BucketError> {
        let result = self.store.get(key).await.map_err(BucketError::store("get", key))?;
        result.bytes().await.map_err(BucketError::store("get body", key))
    }

    /// Removes a block: `meta.json` first (the block disappears at once), then its files.
    /// Files already gone are not an error.
    pub async fn delete_block(&self, meta: &BlockMeta) -> Result<(), BucketError> {
        let meta_key = self.meta_key(meta);
        delete_if_present(self.store.as_ref(), &meta_key).await?;
        for file in &meta.files {
            delete_if_present(self.store.as_ref(), &self.file_key(meta, &file.name)).await?;
        }
        Ok(())
    }

    /// Tenants with at least one object in the bucket.
    pub async fn tenants(&self) -> Result<Vec<String>, BucketError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(BucketError::store("list", &self.prefix))?;
        let mut tenants: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            // `_lease/` (the compactor lease) and other `_`-names are Strata's, not tenants.
            .filter(|name| !name.starts_with('_'))
            .collect();
        tenants.sort();
        Ok(tenants)
    }
}

async fn delete_if_present(store: &dyn ObjectStore, key: &Path) -> Result<(), BucketError> {
    match store.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => {
            Err(BucketError::Store { operation: "delete", key: key.to_string(), source })
        }
    }
}

/// `parse_url_opts` ignores keys it does not know; a misspelt option must not silently change
/// where blocks go, so every key is checked against the backend's own option names.
fn check_options(url: &url::Url, options: &BTreeMap<String, String>) -> Result<(), String> {
    let scheme = object_store::ObjectStoreScheme::parse(url).map_err(|e| e.to_string())?.0;
    for key in options.keys() {
        let known = match scheme {
            object_store::ObjectStoreScheme::AmazonS3 => {
                key.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok()
            }
            _ => false,
        };
        if !known {
            return Err(format!("unknown bucket option {key:?} for this URL scheme"));
        }
    }
    Ok(())
}

/// Loki's tenant-id rules: 1..=150 characters of `[A-Za-z0-9!\-_.*'()]`, not `.` or `..`.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    if tenant.is_empty() || tenant.len() > 150 || tenant == "." || tenant == ".." {
        return Err(format!("tenant {tenant:?} must be 1 to 150 characters, not . or .."));
    }
    if let Some(bad) = tenant.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "tenant {tenant:?} contains {bad:?}; allowed: A-Z a-z 0-9 ! - _ . * ' ( )"
        ));
    }
    Ok(())
}

fn validate_block_id(id: &str) -> Result<(), String> {
    if id.len() == 28 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(format!("block id {id:?} is not 28 lowercase hex digits"))
    }
}

fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && name != META_FILE && !name.contains('/') && name != "." && name != ".."
}

/// A new block id: 12 hex digits of the current Unix time in milliseconds, then 16 hex digits
/// of randomness (xxh3 over the clock's nanoseconds, a process-wide counter, the process id and
/// a stack address), so ids sort by creation time and do not collide across writers.
pub fn new_block_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let millis = (now.as_millis() as u64) & 0xffff_ffff_ffff;
    let local = 0u8;
    let mut seed = Vec::with_capacity(32);
    seed.extend_from_slice(&now.as_nanos().to_le_bytes());
    seed.extend_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seed.extend_from_slice(&(std::ptr::addr_of!(local) as usize).to_le_bytes());
    let random = xxhash_rust::xxh3::xxh3_64(&seed);
    format!("{millis:012x}{random:016x}")
}
