//! Jobs over every object under a prefix: rewrap (move to the current primary KEK
//! versions), scrub (authenticate everything), shred (destroy a tenant's key and prove its
//! objects unrecoverable); and garbage collection of detached headers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use atrest_envelope::{Header, KeyId, KeyUnavailable, RewrapPlan, rewrap_header};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, UpdateVersion,
};

use crate::config::Headers;
use crate::detached::{self, DETACHED_HEADERS, STUB_LEN};
use crate::error::Error;
use crate::select::CONTEXT_LOCATION;
use crate::shared::SharedKeyring;
use crate::store::{EncryptedStore, read_sidecar, read_stub};

/// Objects up to this stored size are read whole by the rewrap job; larger ones have their
/// header read first, so an object already under the primary costs one small read.
const READ_WHOLE_BELOW: u64 = 64 << 10;
/// Attempts per object when it changes under the rewrap job.
const REWRAP_ATTEMPTS: usize = 3;

/// Live progress of a job, readable from another task while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    bytes_rewritten: AtomicU64,
}

/// A point-in-time copy of a [`Progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Objects found under the prefix (known once listing finished).
    pub total: u64,
    /// Objects processed (successfully or not).
    pub done: u64,
    /// Objects that failed.
    pub failed: u64,
    /// Bytes written to the inner store by the rewrap job.
    pub bytes_rewritten: u64,
}

impl Progress {
    /// A fresh counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current counts.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            total: self.total.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes_rewritten: self.bytes_rewritten.load(Ordering::Relaxed),
        }
    }
}

/// What a rewrap job did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Objects under the prefix.
    pub total: u64,
    /// Objects rewritten with a new header.
    pub rewritten: u64,
    /// Objects already wrapped under the primary versions (or deleted meanwhile): untouched.
    pub unchanged: u64,
    /// Bytes written to the inner store. With attached headers (no partial overwrite) a
    /// rewritten object costs its whole stored size (new header plus unchanged body bytes);
    /// with detached headers only its new header.
    pub bytes_rewritten: u64,
    /// Objects that could not be rewrapped, with why. They are untouched and still readable
    /// if they were before.
    pub failed: Vec<(Path, Error)>,
}

/// What [`EncryptedStore::collect_garbage`] found and did.
#[derive(Debug, Default)]
pub struct GarbageReport {
    /// Detached headers in the store when the job started.
    pub headers: u64,
    /// Headers named by an object's stub: kept.
    pub referenced: u64,
    /// Unreferenced headers younger than the grace period (an upload may be about to
    /// commit them): kept.
    pub recent: u64,
    /// Unreferenced headers deleted.
    pub deleted: u64,
    /// Paths under the prefix that are not header names: left alone.
    pub foreign: u64,
    /// Headers whose deletion failed, with why (retry the job).
    pub failed: Vec<(Path, Error)>,
}

/// What a scrub found.
#[derive(Debug, Default)]
pub struct ScrubReport {
    /// Objects under the prefix.
    pub total: u64,
    /// Objects that decrypted and authenticated completely.
    pub ok: u64,
    /// Objects that did not, with why.
    pub bad: Vec<(Path, Error)>,
}

/// What a shred did and proved.
#[derive(Debug)]
pub struct ShredReport {
    /// The destroyed key.
    pub key_id: KeyId,
    /// Objects under the prefix.
    pub objects: u64,
    /// Objects that now fail with [`KeyUnavailable::Destroyed`].
    pub unrecoverable: u64,
    /// Objects that still decrypt (not under the shredded key).
    pub readable: Vec<Path>,
    /// Objects that failed for another reason.
    pub other: Vec<(Path, Error)>,
}

enum Rewrapped {
    Unchanged,
    Rewritten(u64),
}

impl<S: ObjectStore> EncryptedStore<S> {
    async fn list_all(&self, prefix: Option<&Path>) -> Result<Vec<ObjectMeta>, Error> {
        let root = Path::default();
        let mut objects: Vec<ObjectMeta> = self
            .inner()
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| Error::store(prefix.unwrap_or(&root), e))?;
        objects.retain(|meta| !self.is_reserved(&meta.location));
        Ok(objects)
    }

    /// Moves every object under `prefix` to the current primary version of its key: a new
    /// header, the body bytes unchanged, written back in one PUT (conditional on the ETag
    /// read when the inner store supports it, so a concurrent overwrite is never undone).
    /// With attached headers that PUT rewrites the whole object; with detached headers it
    /// rewrites only the sidecar, and both the old and the new header open the body.
    ///
    /// Concurrent (`concurrency` objects at once), idempotent (objects already under the
    /// primary are not written), resumable (every PUT is atomic: a job killed at any point
    /// leaves each object either old or new, both readable; rerun it to finish).
    ///
    /// # Errors
    /// [`Error::Store`] if listing fails. Per-object failures are in the report.
    pub async fn rewrap(
        &self,
        prefix: Option<&Path>,
        concurrency: usize,
        progress: &Progress,
    ) -> Result<RewrapReport, Error> {
        let objects = self.list_all(prefix).await?;
        progress
            .total
            .store(objects.len() as u64, Ordering::Relaxed);
        let update = Arc::new(AtomicBool::new(true));
        let mut report = RewrapReport {
            total: objects.len() as u64,
            ..RewrapReport::default()
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut results = stream::iter(objects)
            .map(|meta| {
                let (this, update, runtime) = (self.clone(), Arc::clone(&update), runtime.clone());
                async move {
                    let location = meta.location.clone();
                    let work = async move { this.rewrap_one(&meta, &update).await };
                    // On a runtime, a task per object spreads unwrap/wrap over every core.
                    let result = match runtime {
                        Some(runtime) => match runtime.spawn(work).await {
                            Ok(result) => result,
                            Err(join) => Err(Error::store(&location, join.into())),
                        },
                        None => work.await,
                    };
                    (location, result)
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((location, result)) = results.next().await {
            progress.done.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(Rewrapped::Unchanged) => report.unchanged += 1,
                Ok(Rewrapped::Rewritten(bytes)) => {
                    report.rewritten += 1;
                    report.bytes_rewritten += bytes;
                    progress.bytes_rewritten.fetch_add(bytes, Ordering::Relaxed);
                }
                Err(err) => {
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                    report.failed.push((location, err));
                }
            }
        }
        Ok(report)
    }

    async fn read_inner(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> Result<Option<(Bytes, UpdateVersion)>, Error> {
        match self.inner().get_opts(location, options).await {
            Ok(result) => {
                let version = UpdateVersion {
                    e_tag: result.meta.e_tag.clone(),
                    version: result.meta.version.clone(),
                };
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|e| Error::store(location, e))?;
                Ok(Some((bytes, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store(location, e)),
        }
    }

    async fn rewrap_one(&self, meta: &ObjectMeta, update: &AtomicBool) -> Result<Rewrapped, Error> {
        if self.config().headers == Headers::Detached {
            return self.rewrap_detached(&meta.location, update).await;
        }
        let location = &meta.location;
        let open = |e| Error::open(location, e);
        for _ in 0..REWRAP_ATTEMPTS {
            let mut whole = None;
            let prefix = if meta.size <= READ_WHOLE_BELOW {
                let Some((object, version)) =
                    self.read_inner(location, GetOptions::default()).await?
                else {
                    return Ok(Rewrapped::Unchanged);
                };
                whole = Some(version);
                object
            } else {
                let range = GetRange::Bounded(0..atrest_envelope::MAX_HEADER_LEN as u64);
                let options = GetOptions::new().with_range(Some(range));
                match self.read_inner(location, options).await? {
                    Some((prefix, _)) => prefix,
                    None => return Ok(Rewrapped::Unchanged),
                }
            };
            let (header, _) = Header::split_attached(&prefix).map_err(open)?;
            let Some(new) = self.rotated(location, &header)? else {
                return Ok(Rewrapped::Unchanged);
            };
            let (object, version) = match whole {
                Some(version) => (prefix, version),
                None => {
                    let options = GetOptions::new();
                    match self.read_inner(location, options).await? {
                        Some(read) => read,
                        None => return Ok(Rewrapped::Unchanged),
                    }
                }
            };
            let (current, body) = Header::split_attached(&object).map_err(open)?;
            if current != header {
                continue; // Changed between the two reads.
            }
            let new_bytes = new.to_bytes();
            let mut out = BytesMut::with_capacity(new_bytes.len() + body.len());
            out.extend_from_slice(&new_bytes);
            out.extend_from_slice(body);
            let written = out.len() as u64;
            let mode = if update.load(Ordering::Relaxed) {
                PutMode::Update(version)
            } else {
                PutMode::Overwrite
            };
            match self
                .inner()
                .put_opts(location, out.freeze().into(), mode.into())
                .await
            {
                Ok(_) => return Ok(Rewrapped::Rewritten(written)),
                Err(object_store::Error::NotImplemented { .. })
                    if update.load(Ordering::Relaxed) =>
                {
                    // No conditional PUT in this inner store (local filesystem, S3 without
                    // conditional put configured): fall back to plain overwrites.
                    update.store(false, Ordering::Relaxed);
                }
                Err(object_store::Error::Precondition { .. }) => {}
                Err(err) => return Err(Error::store(location, err)),
            }
        }
        Err(Error::Store {
            path: location.to_string(),
            source: Box::new(object_store::Error::Precondition {
                path: location.to_string(),
                source: "object kept changing during rewrap".into(),
            }),
        })
    }

    /// Rewraps the sidecar of one detached-header object.
    async fn rewrap_detached(
        &self,
        location: &Path,
        update: &AtomicBool,
    ) -> Result<Rewrapped, Error> {
        let mut missing = None;
        for _ in 0..REWRAP_ATTEMPTS {
            let options = GetOptions::new().with_range(Some(GetRange::Bounded(0..STUB_LEN)));
            let Some((stub, _)) = self.read_inner(location, options).await? else {
                return Ok(Rewrapped::Unchanged); // Deleted meanwhile.
            };
            let id = detached::parse_stub(location, &stub)?;
            let (header, version) = match read_sidecar(self.inner(), location, &id).await {
                Ok(found) => found,
                Err(err @ Error::MissingHeader { .. }) => {
                    // Replaced meanwhile (its old header deleted): read the new stub.
                    missing = Some(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            let Some(new) = self.rotated(location, &header)? else {
                return Ok(Rewrapped::Unchanged);
            };
            let bytes = new.to_bytes();
            let written = bytes.len() as u64;
            let mode = if update.load(Ordering::Relaxed) {
                PutMode::Update(version)
            } else {
                PutMode::Overwrite
            };
            let sidecar = detached::sidecar_path(&id);
            match self
                .inner()
                .put_opts(&sidecar, Bytes::from(bytes).into(), mode.into())
                .await
            {
                Ok(_) => return Ok(Rewrapped::Rewritten(written)),
                Err(object_store::Error::NotImplemented { .. })
                    if update.load(Ordering::Relaxed) =>
                {
                    update.store(false, Ordering::Relaxed);
                }
                Err(object_store::Error::Precondition { .. }) => {}
                Err(err) => return Err(Error::store(&sidecar, err)),
            }
        }
        Err(missing.unwrap_or_else(|| Error::Store {
            path: location.to_string(),
            source: Box::new(object_store::Error::Precondition {
                path: location.to_string(),
                source: "header kept changing during rewrap".into(),
            }),
        }))
    }

    /// The header `header` of the object at `location` rewrapped under the current primary
    /// versions; `None` if it already is.
    fn rotated(&self, location: &Path, header: &Header) -> Result<Option<Header>, Error> {
        let open = |e| Error::open(location, e);
        // The key holder re-wraps under the header's *stored* wrap context, and the header
        // tag is not checked by a rotation; make sure the stored context names this
        // location, so a misplaced object is reported rather than rotated in place.
        if header.context().get(CONTEXT_LOCATION.as_bytes()) != Some(location.as_ref().as_bytes()) {
            return Err(open(atrest_envelope::Error::Authentication));
        }
        let new = rewrap_header(
            header,
            &**self.keys(),
            &RewrapPlan::Rotate,
            &self.config().envelope,
        )
        .map_err(open)?;
        let versions = |h: &Header| -> Vec<(KeyId, u32)> {
            h.wrapped_keys()
                .iter()
                .map(|w| (w.key_id.clone(), w.version))
                .collect()
        };
        Ok((versions(&new) != versions(header)).then_some(new))
    }

    /// Deletes detached headers no object names any more, if older than `grace`: left
    /// behind by uploads that failed after writing their header, by deletes and overwrites
    /// whose cleanup failed, or by a rewrap that raced an overwrite on a store without
    /// conditional PUT. `grace` must exceed the longest time between an upload writing its
    /// header and committing its object (a single PUT or multipart completion; an hour is
    /// generous). Does nothing with attached headers.
    ///
    /// Reads the stub of every object in the store. Any read error other than "not found"
    /// stops the job before it deletes anything.
    ///
    /// # Errors
    /// [`Error::Store`] if listing or a stub read fails.
    pub async fn collect_garbage(
        &self,
        grace: std::time::Duration,
        concurrency: usize,
    ) -> Result<GarbageReport, Error> {
        let mut report = GarbageReport::default();
        if self.config().headers != Headers::Detached {
            return Ok(report);
        }
        let started = unix_millis(std::time::SystemTime::now());
        let prefix = Path::from(DETACHED_HEADERS);
        // Headers first: one written after this listing is never a candidate.
        let headers: Vec<ObjectMeta> = self
            .inner()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::store(&prefix, e))?;
        report.headers = headers.len() as u64;
        let objects = self.list_all(None).await?;
        let referenced: HashSet<[u8; atrest_envelope::BLOB_ID_LEN]> = stream::iter(objects)
            .map(|meta| async move { self.stub_of(&meta.location).await })
            .buffer_unordered(concurrency.max(1))
            .try_filter_map(|id| async move { Ok(id) })
            .try_collect()
            .await?;
        let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut doomed = Vec::new();
        for meta in headers {
            match detached::sidecar_id(&meta.location) {
                None => report.foreign += 1,
                Some(id) if referenced.contains(&id) => report.referenced += 1,
                Some(_)
                    if started.saturating_sub(meta.last_modified.timestamp_millis()) < grace =>
                {
                    report.recent += 1;
                }
                Some(_) => doomed.push(meta.location),
            }
        }
        let mut deletions = stream::iter(doomed)
            .map(|path| async move {
                let result = self.inner().delete(&path).await;
                (path, result)
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((path, result)) = deletions.next().await {
            match result {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                Err(err) => report.failed.push((path.clone(), Error::store(&path, err))),
            }
        }
        Ok(report)
    }

    /// The blob id in the stub of the object at `location`: `None` if it is gone or is not
    /// a detached-header object; an error if it cannot be read.
    async fn stub_of(
        &self,
        location: &Path,
    ) -> Result<Option<[u8; atrest_envelope::BLOB_ID_LEN]>, Error> {
        read_stub(self.inner(), location)
            .await
            .map_err(|e| Error::store(location, e))
    }

    /// Decrypts and authenticates every object under `prefix` completely (header, every
    /// segment, the final segment as final), reporting the bad ones without stopping.
    ///
    /// # Errors
    /// [`Error::Store`] if listing fails.
    pub async fn scrub(
        &self,
        prefix: Option<&Path>,
        concurrency: usize,
        progress: &Progress,
    ) -> Result<ScrubReport, Error> {
        let objects = self.list_all(prefix).await?;
        progress
            .total
            .store(objects.len() as u64, Ordering::Relaxed);
        let mut report = ScrubReport {
            total: objects.len() as u64,
            ..ScrubReport::default()
        };
        let mut results = stream::iter(objects)
            .map(|meta| async move {
                let result = self.verify(&meta.location).await;
                (meta.location, result)
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((location, result)) = results.next().await {
            progress.done.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(()) => report.ok += 1,
                Err(err) => {
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                    report.bad.push((location, err));
                }
            }
        }
        Ok(report)
    }

    /// Reads the whole object at `location`, authenticating every byte, and discards it.
    ///
    /// # Errors
    /// The decryption or inner-store error.
    pub async fn verify(&self, location: &Path) -> Result<(), Error> {
        let result = self
            .get_opts(location, GetOptions::default())
            .await
            .map_err(|e| Error::store(location, e))?;
        let mut body = result.into_stream();
        while let Some(chunk) = body.next().await {
            chunk.map_err(|e| Error::store(location, e))?;
        }
        Ok(())
    }

    /// Crypto-shreds `key_id` in `keyring` (which must be the key holder of this store),
    /// then proves every object under `prefix` unrecoverable: each must fail to open with
    /// [`KeyUnavailable::Destroyed`]. Persist the keyring afterwards (`Keyring::save`) so
    /// the key material leaves its file too.
    ///
    /// # Errors
    /// [`Error::Keyring`] if the key does not exist; [`Error::Store`] if listing fails.
    pub async fn shred(
        &self,
        keyring: &SharedKeyring,
        key_id: &KeyId,
        prefix: &Path,
        concurrency: usize,
    ) -> Result<ShredReport, Error> {
        keyring
            .write()
            .shred(key_id)
            .map_err(|e| Error::Keyring(Box::new(e)))?;
        // A data-key cache in front of the keyring must not keep the shredded key alive.
        self.keys().forget(key_id);
        let objects = self.list_all(Some(prefix)).await?;
        let mut report = ShredReport {
            key_id: key_id.clone(),
            objects: objects.len() as u64,
            unrecoverable: 0,
            readable: Vec::new(),
            other: Vec::new(),
        };
        let mut results = stream::iter(objects)
            .map(|meta| async move {
                let result = self.get_opts(&meta.location, GetOptions::default()).await;
                (meta.location, result.map(drop))
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((location, result)) = results.next().await {
            match result.map_err(|e| Error::store(&location, e)) {
                Ok(()) => report.readable.push(location),
                Err(err) if err.unavailable_reason() == Some(KeyUnavailable::Destroyed) => {
                    report.unrecoverable += 1;
                }
                Err(err) => report.other.push((location, err)),
            }
        }
        Ok(report)
    }
}

/// Milliseconds since the Unix epoch (0 before it), comparable with
/// `ObjectMeta::last_modified`.
fn unix_millis(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
