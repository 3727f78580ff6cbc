//! Shared test fixtures: keyrings, stores, a failure-injecting inner store.

#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(clippy::unwrap_used, reason = "test fixtures")]
#![allow(clippy::indexing_slicing, reason = "test fixtures")]
#![allow(clippy::panic, reason = "test fixtures fail by panicking")]

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atrest_keyring::{KeyId, Keyring, Timestamp};
use atrest_store::{EncryptedStore, SharedKeyring, SingleKey};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    UploadPart,
};

pub(crate) const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

pub(crate) fn key(id: &str) -> KeyId {
    KeyId::new(id).unwrap()
}

/// A keyring holding `keys`, each at version 1.
pub(crate) fn keyring(keys: &[&str]) -> Arc<SharedKeyring> {
    let mut ring = Keyring::new();
    for id in keys {
        ring.create_key(&key(id), T0).unwrap();
    }
    Arc::new(SharedKeyring::new(ring))
}

/// An encrypted store with every object under key `conformance`.
pub(crate) fn single_key_store<S: ObjectStore>(
    inner: S,
) -> (EncryptedStore<S>, Arc<SharedKeyring>) {
    let ring = keyring(&["conformance"]);
    let store = EncryptedStore::new(inner, ring.clone(), SingleKey(key("conformance")));
    (store, ring)
}

/// As [`single_key_store`], with detached headers.
pub(crate) fn detached_store<S: ObjectStore>(inner: S) -> (EncryptedStore<S>, Arc<SharedKeyring>) {
    let ring = keyring(&["conformance"]);
    let config = atrest_store::Config::default().headers(atrest_store::Headers::Detached);
    let store =
        EncryptedStore::with_config(inner, ring.clone(), SingleKey(key("conformance")), config);
    (store, ring)
}

/// The [`atrest_store::Error`] inside an `object_store::Error`.
pub(crate) fn store_error(err: &object_store::Error) -> &atrest_store::Error {
    atrest_store::Error::from_object_store(err)
        .unwrap_or_else(|| panic!("not an EncryptedStore error: {err:?}"))
}

/// Every inner object's bytes, by path.
pub(crate) async fn inner_objects(inner: &dyn ObjectStore) -> Vec<(Path, Bytes)> {
    let metas: Vec<ObjectMeta> = inner
        .list(None)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = inner
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.push((meta.location, bytes));
    }
    out
}

/// Flips the bits of `mask` in the last stored byte of `path`, behind the store's back.
pub(crate) async fn flip_last_stored_byte(inner: &dyn ObjectStore, path: &Path, mask: u8) {
    let mut raw = inner
        .get(path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    *raw.last_mut().expect("a stored object is never empty") ^= mask;
    inner.put(path, raw.into()).await.unwrap();
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Which call of the inner store fails, and how.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    /// `put_opts`, `put_multipart_opts`, `put_part`, `complete`, `get_opts`, `get_range`
    /// (a get_opts with a range), `list`, `delete`, `copy_opts`.
    pub(crate) op: &'static str,
    /// Skip this many matching calls before failing.
    pub(crate) after: usize,
    pub(crate) kind: FaultKind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum FaultKind {
    Network,
    NotFound,
    Precondition,
}

/// InMemory with injected failures.
#[derive(Debug, Default)]
pub(crate) struct FailingStore {
    pub(crate) inner: Arc<InMemory>,
    faults: Arc<Mutex<Vec<Fault>>>,
}

impl FailingStore {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn fail(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    pub(crate) fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }

    fn check(faults: &Mutex<Vec<Fault>>, op: &str, path: &str) -> object_store::Result<()> {
        let mut faults = faults.lock().unwrap();
        let Some(index) = faults.iter().position(|f| f.op == op) else {
            return Ok(());
        };
        if faults[index].after > 0 {
            faults[index].after -= 1;
            return Ok(());
        }
        // Each fault fires once.
        let fault = faults.remove(index);
        let path = path.to_owned();
        let source = format!("injected {op} failure").into();
        Err(match fault.kind {
            FaultKind::Network => object_store::Error::Generic {
                store: "FailingStore",
                source,
            },
            FaultKind::NotFound => object_store::Error::NotFound { path, source },
            FaultKind::Precondition => object_store::Error::Precondition { path, source },
        })
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore")
    }
}

#[derive(Debug)]
struct FailingUpload {
    path: String,
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Mutex<Vec<Fault>>>,
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl MultipartUpload for FailingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if let Err(e) = FailingStore::check(&self.faults, "put_part", &self.path) {
            return Box::pin(async move { Err(e) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        FailingStore::check(&self.faults, "complete", &self.path)?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Self::check(&self.faults, "put_opts", location.as_ref())?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Self::check(&self.faults, "put_multipart_opts", location.as_ref())?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FailingUpload {
            path: location.to_string(),
            inner,
            faults: Arc::clone(&self.faults),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.range.is_some() {
            "get_range"
        } else {
            "get_opts"
        };
        Self::check(&self.faults, op, location.as_ref())?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        Self::check(&self.faults, "get_range", location.as_ref())?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(e) = Self::check(&self.faults, "delete", "") {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = Self::check(&self.faults, "list", "") {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        Self::check(&self.faults, "copy_opts", from.as_ref())?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Uses `ObjectStoreExt` so the import is exercised in every test binary.
pub(crate) async fn put(store: &dyn ObjectStore, path: &str, data: &[u8]) {
    store
        .put(&Path::from(path), PutPayload::from(data.to_vec()))
        .await
        .unwrap();
}
