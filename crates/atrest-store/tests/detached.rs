//! Detached headers (`Headers::Detached`): the inner object at `p` is a 40-byte stub naming a
//! sidecar under `.atrest-headers/`, then the body. Round trips, header-only rotation,
//! tampering, garbage (failed commits, orphans), the reserved prefix, a crash mid-rewrap and
//! mixing placements over one inner store.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]
#![allow(clippy::indexing_slicing, reason = "tests")]
#![allow(clippy::cast_possible_truncation, reason = "test sizes are small")]

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use atrest_envelope::{Header, KeyUnavailable, Malformed, UnwrapError};
use atrest_store::{
    Config, DETACHED_HEADERS, EncryptedStore, Error, GarbageReport, Headers, Progress,
    SharedKeyring, SingleKey,
};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    UpdateVersion,
};

use common::{FailingStore, Fault, FaultKind, T0, inner_objects, key, keyring, store_error};

/// Magic `89 'a' 't' 'd'`, stub version 1, three zero bytes.
const STUB_PREFIX: [u8; 8] = [0x89, b'a', b't', b'd', 1, 0, 0, 0];
const STUB_LEN: usize = 40;
/// The body's stream magic and version bytes, right after the stub.
const STREAM_MAGIC: [u8; 4] = [0x89, b'a', b't', b'r'];
/// Sidecars of objects under key `conformance` at short paths are about 230 bytes.
const MAX_SIDECAR: usize = 400;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Detached headers, 4 KiB segments (multi-segment objects stay small), 5000-byte upload
/// parts (several inner parts per upload), copies above 8000 bytes streamed through a
/// multipart upload.
fn small_config() -> Config {
    Config::default()
        .segment_size(4096)
        .unwrap()
        .headers(Headers::Detached)
        .part_size(5000)
        .copy_in_memory_limit(8000)
}

fn small_store<S: ObjectStore>(inner: S) -> (EncryptedStore<S>, Arc<SharedKeyring>) {
    let ring = keyring(&["conformance"]);
    let store = EncryptedStore::with_config(
        inner,
        ring.clone(),
        SingleKey(key("conformance")),
        small_config(),
    );
    (store, ring)
}

fn failing_store() -> (EncryptedStore<FailingStore>, Arc<SharedKeyring>) {
    small_store(FailingStore::new())
}

fn fault(op: &'static str, after: usize, kind: FaultKind) -> Fault {
    Fault { op, after, kind }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `.atrest-headers/<first byte hex>/<id hex>`.
fn sidecar_path(id: &[u8]) -> Path {
    assert_eq!(id.len(), 32);
    let hex = hex(id);
    Path::from(format!("{DETACHED_HEADERS}/{}/{hex}", &hex[..2]))
}

async fn raw(inner: &dyn ObjectStore, path: &Path) -> Bytes {
    inner.get(path).await.unwrap().bytes().await.unwrap()
}

/// The sidecar path the stub of the inner object at `location` names, and its bytes.
async fn sidecar_of(inner: &dyn ObjectStore, location: &Path) -> (Path, Bytes) {
    let object = raw(inner, location).await;
    assert_eq!(object[..8], STUB_PREFIX, "{location}");
    let sidecar = sidecar_path(&object[8..STUB_LEN]);
    let bytes = raw(inner, &sidecar).await;
    (sidecar, bytes)
}

fn is_sidecar(path: &Path) -> bool {
    path.as_ref().starts_with(&format!("{DETACHED_HEADERS}/"))
}

/// Every sidecar of the inner store, sorted by path.
async fn sidecars(inner: &dyn ObjectStore) -> Vec<(Path, Bytes)> {
    let mut out: Vec<_> = inner_objects(inner)
        .await
        .into_iter()
        .filter(|(path, _)| is_sidecar(path))
        .collect();
    out.sort();
    out
}

/// Every inner object that is not a sidecar, sorted by path.
async fn bodies(inner: &dyn ObjectStore) -> Vec<(Path, Bytes)> {
    let mut out: Vec<_> = inner_objects(inner)
        .await
        .into_iter()
        .filter(|(path, _)| !is_sidecar(path))
        .collect();
    out.sort();
    out
}

/// Every object starts with a stub naming an existing sidecar, and every sidecar is named
/// by exactly one object. Returns the number of objects.
async fn assert_one_sidecar_per_object(inner: &dyn ObjectStore) -> usize {
    let present: BTreeSet<Path> = sidecars(inner).await.into_iter().map(|(p, _)| p).collect();
    let objects = bodies(inner).await;
    let mut named = BTreeSet::new();
    for (path, bytes) in &objects {
        assert_eq!(bytes[..8], STUB_PREFIX, "{path}");
        assert!(named.insert(sidecar_path(&bytes[8..STUB_LEN])), "{path}");
    }
    assert_eq!(named, present);
    objects.len()
}

/// Checks the detached layout of the object at `location` and returns its parsed header.
async fn assert_layout(inner: &dyn ObjectStore, location: &Path) -> Header {
    let object = raw(inner, location).await;
    assert_eq!(object[..8], STUB_PREFIX, "{location}");
    assert_eq!(object[STUB_LEN..STUB_LEN + 4], STREAM_MAGIC, "{location}");
    let (sidecar, bytes) = sidecar_of(inner, location).await;
    assert!(bytes.len() <= MAX_SIDECAR, "{sidecar}: {}", bytes.len());
    let header = Header::parse(&bytes).unwrap();
    assert_eq!(header.blob_id()[..], object[8..STUB_LEN]);
    assert_eq!(header.segment_size(), 4096);
    assert_eq!(
        header.context().get(b"location"),
        Some(location.as_ref().as_bytes())
    );
    assert_eq!(header.wrapped_keys().len(), 1);
    assert_eq!(header.wrapped_keys()[0].key_id.as_str(), "conformance");
    header
}

async fn read(store: &dyn ObjectStore, path: &Path) -> Bytes {
    store.get(path).await.unwrap().bytes().await.unwrap()
}

/// The error of a whole-object read, whether the open or the body stream fails.
async fn read_err(store: &dyn ObjectStore, path: &Path) -> object_store::Error {
    match store.get(path).await {
        Err(err) => err,
        Ok(result) => match result.bytes().await {
            Err(err) => err,
            Ok(bytes) => panic!("{path} read {} bytes, expected an error", bytes.len()),
        },
    }
}

/// The envelope error of a failed decryption.
fn open_error(err: &object_store::Error) -> &atrest_envelope::Error {
    store_error(err)
        .open_error()
        .unwrap_or_else(|| panic!("not a decryption error: {err:?}"))
}

fn assert_authentication(err: &object_store::Error) {
    assert!(
        matches!(open_error(err), atrest_envelope::Error::Authentication),
        "{err:?}"
    );
}

fn assert_missing_header(err: &object_store::Error, location: &Path, sidecar: &Path) {
    assert!(
        matches!(
            store_error(err),
            Error::MissingHeader { path, header }
                if path == location.as_ref() && header == sidecar.as_ref()
        ),
        "{err:?}"
    );
}

fn assert_not_encrypted(err: &object_store::Error, location: &Path) {
    assert!(
        matches!(store_error(err), Error::NotEncrypted { path, .. } if path == location.as_ref()),
        "{err:?}"
    );
}

async fn listed(store: &dyn ObjectStore, prefix: Option<&Path>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = store
        .list(prefix)
        .map_ok(|meta| (meta.location.to_string(), meta.size))
        .try_collect()
        .await
        .unwrap();
    out.sort();
    out
}

fn counts(report: &GarbageReport) -> (u64, u64, u64, u64) {
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (
        report.headers,
        report.referenced,
        report.recent,
        report.deleted,
    )
}

// 1. Round trips ---------------------------------------------------------------------------

#[tokio::test]
async fn round_trip_over_in_memory() {
    let (store, _ring) = small_store(InMemory::new());
    round_trip(&store).await;
}

#[tokio::test]
async fn round_trip_over_local_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _ring) = small_store(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    round_trip(&store).await;
    // The sidecars are files under `.atrest-headers/<fan>/` of the directory.
    let (sidecar, _) = sidecar_of(store.inner(), &"docs/report.bin".into()).await;
    assert!(dir.path().join(sidecar.as_ref()).is_file(), "{sidecar}");
}

async fn round_trip<S: ObjectStore>(store: &EncryptedStore<S>) {
    let inner: &dyn ObjectStore = store.inner();
    let p = Path::from("docs/report.bin");
    let plaintext = Bytes::from(data(10_000, 0)); // segments of 4096, 4096, 1808
    store.put(&p, plaintext.clone().into()).await.unwrap();
    assert_eq!(read(store, &p).await, plaintext);
    assert_eq!(store.head(&p).await.unwrap().size, 10_000);
    let stored = inner.head(&p).await.unwrap().size;
    assert_eq!(
        stored,
        40 + 42 + 10_000 + 3 * 16,
        "stub, stream header, tags"
    );
    assert_eq!(store.stored_size(&p, 10_000).unwrap(), stored);
    assert_eq!(store.plaintext_size(&p, stored).unwrap(), 10_000);
    let header = assert_layout(inner, &p).await;
    assert_eq!(header.wrapped_keys()[0].version, 1);

    let ranges = [
        0..1,
        4095..4097,
        4096..8192,
        4000..9000,
        8191..8193,
        9999..10_000,
        0..10_000,
    ];
    for r in &ranges {
        let got = store.get_range(&p, r.clone()).await.unwrap();
        assert_eq!(
            got,
            plaintext.slice(r.start as usize..r.end as usize),
            "{r:?}"
        );
    }
    let got = store.get_ranges(&p, &ranges).await.unwrap();
    for (r, got) in ranges.iter().zip(got) {
        assert_eq!(
            got,
            plaintext.slice(r.start as usize..r.end as usize),
            "{r:?}"
        );
    }
    let suffix = store
        .get_opts(
            &p,
            GetOptions::new().with_range(Some(GetRange::Suffix(5000))),
        )
        .await
        .unwrap();
    assert_eq!(suffix.meta.size, 10_000);
    assert_eq!(suffix.range, 5000..10_000);
    assert_eq!(suffix.bytes().await.unwrap(), plaintext.slice(5000..));

    // Empty object: stub, stream header and one empty final segment.
    let empty = Path::from("docs/empty");
    store.put(&empty, PutPayload::default()).await.unwrap();
    assert!(read(store, &empty).await.is_empty());
    assert_eq!(store.head(&empty).await.unwrap().size, 0);
    assert_eq!(inner.head(&empty).await.unwrap().size, 40 + 42 + 16);
    assert_layout(inner, &empty).await;

    // Multipart: several plaintext parts, several inner parts (part size 5000).
    let m = Path::from("docs/multi.bin");
    let mut upload = store.put_multipart(&m).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..5u8 {
        let part = data(3000 + usize::from(i) * 777, i);
        expected.extend_from_slice(&part);
        upload.put_part(part.into()).await.unwrap();
    }
    upload.complete().await.unwrap();
    assert_eq!(read(store, &m).await.as_ref(), expected.as_slice());
    assert_eq!(store.head(&m).await.unwrap().size, expected.len() as u64);
    let got = store.get_range(&m, 4000..12_000).await.unwrap();
    assert_eq!(got.as_ref(), &expected[4000..12_000]);
    assert_layout(inner, &m).await;

    // Copy (10 000 bytes: streamed through a multipart upload) and a small copy (in
    // memory): re-encrypted for the destination, with a blob id of its own.
    let c = Path::from("docs/copy.bin");
    store.copy(&p, &c).await.unwrap();
    assert_eq!(read(store, &c).await, plaintext);
    let copied = assert_layout(inner, &c).await;
    assert_ne!(copied.blob_id(), header.blob_id());
    let e2 = Path::from("docs/empty-copy");
    store.copy(&empty, &e2).await.unwrap();
    assert!(read(store, &e2).await.is_empty());
    assert_layout(inner, &e2).await;
    // Copies that must not overwrite: refused, and no header left behind (both paths).
    for from in [&p, &empty] {
        let err = store.copy_if_not_exists(from, &c).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{err:?}"
        );
    }
    assert_eq!(assert_one_sidecar_per_object(inner).await, 5);

    // Rename: the source and its header are gone.
    let r = Path::from("docs/renamed.bin");
    store.rename(&m, &r).await.unwrap();
    assert_eq!(read(store, &r).await.as_ref(), expected.as_slice());
    assert_layout(inner, &r).await;
    let err = store.head(&m).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    assert_eq!(assert_one_sidecar_per_object(inner).await, 5);

    // Listing shows the objects with plaintext sizes, never a header.
    let expected_listing = vec![
        ("docs/copy.bin".to_owned(), 10_000),
        ("docs/empty".to_owned(), 0),
        ("docs/empty-copy".to_owned(), 0),
        ("docs/renamed.bin".to_owned(), expected.len() as u64),
        ("docs/report.bin".to_owned(), 10_000),
    ];
    assert_eq!(listed(store, None).await, expected_listing);

    // Delete: the object, then its header.
    store.delete(&c).await.unwrap();
    let err = store.get(&c).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    assert_eq!(assert_one_sidecar_per_object(inner).await, 4);
}

// 2. Rotation rewrites header bytes only ---------------------------------------------------

#[tokio::test]
async fn rotation_rewrites_only_the_headers_in_memory() {
    let (store, ring) = common::detached_store(InMemory::new());
    rotation_rewrites_only_the_headers(&store, &ring).await;
}

/// LocalFileSystem has no conditional PUT: the rewrap falls back to plain overwrites.
#[tokio::test]
async fn rotation_rewrites_only_the_headers_local_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let inner = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let (store, ring) = common::detached_store(inner);
    rotation_rewrites_only_the_headers(&store, &ring).await;
}

async fn rotation_rewrites_only_the_headers<S: ObjectStore>(
    store: &EncryptedStore<S>,
    ring: &SharedKeyring,
) {
    const MIB: usize = 1 << 20;
    let inner: &dyn ObjectStore = store.inner();
    let paths = ["a/1", "a/2", "b/1"];
    for (i, path) in paths.iter().enumerate() {
        store
            .put(&(*path).into(), data(MIB, i as u8).into())
            .await
            .unwrap();
    }
    let bodies_before = bodies(inner).await;
    let sidecars_before = sidecars(inner).await;
    assert_eq!(sidecars_before.len(), 3);
    assert_eq!(ring.write().rotate(&key("conformance"), T0).unwrap(), 2);

    // First only under a/, then everything.
    let progress = Progress::new();
    let first = store.rewrap(Some(&"a".into()), 4, &progress).await.unwrap();
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!((first.total, first.rewritten, first.unchanged), (2, 2, 0));
    let snapshot = progress.snapshot();
    assert_eq!((snapshot.total, snapshot.done, snapshot.failed), (2, 2, 0));
    assert_eq!(snapshot.bytes_rewritten, first.bytes_rewritten);
    let second = store.rewrap(None, 4, &Progress::new()).await.unwrap();
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(
        (second.total, second.rewritten, second.unchanged),
        (3, 1, 2)
    );

    // Bytes rewritten: exactly the new headers, a few hundred bytes per 1 MiB object.
    let sidecars_after = sidecars(inner).await;
    let header_bytes: u64 = sidecars_after.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(first.bytes_rewritten + second.bytes_rewritten, header_bytes);
    assert!(first.bytes_rewritten / first.rewritten <= MAX_SIDECAR as u64);
    assert!(second.bytes_rewritten <= MAX_SIDECAR as u64);

    // The bodies are byte-identical; each sidecar changed in place, under version 2, with
    // the same blob, context and commitment.
    assert_eq!(bodies(inner).await, bodies_before);
    assert_eq!(sidecars_after.len(), 3);
    for ((path, old), (same, new)) in sidecars_before.iter().zip(&sidecars_after) {
        assert_eq!(path, same);
        assert_ne!(old, new, "{path}");
        assert!(new.len() <= MAX_SIDECAR, "{path}: {}", new.len());
        let (old, new) = (Header::parse(old).unwrap(), Header::parse(new).unwrap());
        assert_eq!(old.wrapped_keys()[0].version, 1);
        assert_eq!(new.wrapped_keys()[0].version, 2);
        assert_eq!(new.blob_id(), old.blob_id());
        assert_eq!(new.context(), old.context());
        assert_eq!(new.commitment(), old.commitment());
    }
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(
            read(store, &(*path).into()).await.as_ref(),
            data(MIB, i as u8).as_slice(),
            "{path}"
        );
    }
    // The new headers alone open everything: retire version 1.
    ring.write()
        .set_min_decryption_version(&key("conformance"), 2)
        .unwrap();
    for (i, path) in paths.iter().enumerate() {
        let got = store
            .get_range(&(*path).into(), 500_000..600_000)
            .await
            .unwrap();
        assert_eq!(
            got.as_ref(),
            &data(MIB, i as u8)[500_000..600_000],
            "{path}"
        );
    }

    // Idempotent: nothing written the second time.
    let third = store.rewrap(None, 4, &Progress::new()).await.unwrap();
    assert!(third.failed.is_empty(), "{:?}", third.failed);
    assert_eq!(
        (
            third.total,
            third.rewritten,
            third.unchanged,
            third.bytes_rewritten
        ),
        (3, 0, 3, 0)
    );
    assert_eq!(sidecars(inner).await, sidecars_after);
    assert_eq!(bodies(inner).await, bodies_before);
}

// 3. Old and new header both open the body -------------------------------------------------

#[tokio::test]
async fn old_and_new_header_both_open_the_body() {
    let (store, ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("ledger.bin");
    let plaintext = Bytes::from(data(100_000, 3));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    let (sidecar, old) = sidecar_of(inner, &p).await;
    assert_eq!(ring.write().rotate(&key("conformance"), T0).unwrap(), 2);
    let report = store.rewrap(None, 2, &Progress::new()).await.unwrap();
    assert_eq!((report.rewritten, report.failed.len()), (1, 0));
    let (same, new) = sidecar_of(inner, &p).await;
    assert_eq!(same, sidecar);
    assert_ne!(old, new);
    assert_eq!(Header::parse(&new).unwrap().wrapped_keys()[0].version, 2);

    // The old header written back (version 1 is still allowed to decrypt) opens the body.
    inner.put(&sidecar, old.clone().into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
    let got = store.get_range(&p, 50_000..60_000).await.unwrap();
    assert_eq!(got, plaintext.slice(50_000..60_000));
    // The rewrap sees the old version again and rewrites it.
    let report = store.rewrap(None, 2, &Progress::new()).await.unwrap();
    assert_eq!((report.rewritten, report.unchanged), (1, 0));

    // Once version 1 is retired, only the new header opens it.
    inner.put(&sidecar, old.into()).await.unwrap();
    ring.write()
        .set_min_decryption_version(&key("conformance"), 2)
        .unwrap();
    let err = read_err(&store, &p).await;
    assert_eq!(
        store_error(&err).unavailable_reason(),
        Some(KeyUnavailable::Retired),
        "{err:?}"
    );
    inner.put(&sidecar, new.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
}

// 4. Tampering -----------------------------------------------------------------------------

#[tokio::test]
async fn a_changed_stub_is_a_missing_header_or_not_encrypted() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("acme/p.bin");
    let plaintext = Bytes::from(data(10_000, 1));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    let original = raw(inner, &p).await;

    // A bit of the blob id: the stub names a sidecar that does not exist.
    for at in [8, 20, 39] {
        let mut bytes = original.to_vec();
        bytes[at] ^= 0x04;
        let named = sidecar_path(&bytes[8..STUB_LEN]);
        inner.put(&p, bytes.into()).await.unwrap();
        assert_missing_header(&read_err(&store, &p).await, &p, &named);
        let err = store.get_range(&p, 5000..5010).await.unwrap_err();
        assert_missing_header(&err, &p, &named);
        let err = store
            .get_ranges(&p, &[0..10, 9000..9010])
            .await
            .unwrap_err();
        assert_missing_header(&err, &p, &named);
    }
    // Magic, version, reserved bytes: not a detached-header object.
    for (at, value) in [(0, 0x88), (3, b'e'), (4, 2), (5, 1), (7, 1)] {
        let mut bytes = original.to_vec();
        bytes[at] = value;
        inner.put(&p, bytes.into()).await.unwrap();
        assert_not_encrypted(&read_err(&store, &p).await, &p);
        let err = store.get_range(&p, 0..10).await.unwrap_err();
        assert_not_encrypted(&err, &p);
    }
    inner.put(&p, original.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
}

#[tokio::test]
async fn another_objects_stub_and_body_fail_authentication() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let (p, q) = (Path::from("acme/p.bin"), Path::from("acme/q.bin"));
    let plaintext = Bytes::from(data(10_000, 1));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    store.put(&q, data(10_000, 2).into()).await.unwrap();
    let p_raw = raw(inner, &p).await;

    // Spliced: q's stub and body at p (so p names q's sidecar, which exists and matches).
    inner.put(&p, raw(inner, &q).await.into()).await.unwrap();
    assert_authentication(&read_err(&store, &p).await);
    assert_authentication(&store.get_range(&p, 5000..5010).await.unwrap_err());
    // Copied behind the store's back.
    let x = Path::from("acme/x.bin");
    inner.copy(&q, &x).await.unwrap();
    assert_authentication(&read_err(&store, &x).await);
    assert_authentication(&store.get_range(&x, 0..10).await.unwrap_err());
    // A rewrap refuses to rotate a misplaced header.
    let report = store.rewrap(None, 2, &Progress::new()).await.unwrap();
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    for (path, err) in &report.failed {
        assert!(path == &p || path == &x, "{path}");
        assert!(err.is_authentication(), "{err:?}");
    }

    inner.delete(&x).await.unwrap();
    inner.put(&p, p_raw.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
}

#[tokio::test]
async fn every_flipped_sidecar_bit_is_a_decryption_error_never_wrong_bytes() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("acme/p.bin");
    let plaintext = Bytes::from(data(10_000, 1));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    let (sidecar, header) = sidecar_of(inner, &p).await;
    let len = header.len();

    // The exact error of the interesting fields.
    let flipped = |at: usize| {
        let mut bytes = header.to_vec();
        bytes[at] ^= 0x01;
        Bytes::from(bytes)
    };
    // Last byte of the wrapped data key (just before the 32-byte tag).
    inner.put(&sidecar, flipped(len - 33).into()).await.unwrap();
    let err = read_err(&store, &p).await;
    assert!(
        matches!(
            open_error(&err),
            atrest_envelope::Error::Unwrap {
                version: 1,
                source: UnwrapError::Authentication,
                ..
            }
        ),
        "{err:?}"
    );
    // The header tag.
    inner.put(&sidecar, flipped(len - 1).into()).await.unwrap();
    assert_authentication(&read_err(&store, &p).await);
    // The blob id inside the header (bytes 10..42): no longer the stub's.
    inner.put(&sidecar, flipped(10).into()).await.unwrap();
    assert_authentication(&read_err(&store, &p).await);
    // The magic.
    inner.put(&sidecar, flipped(0).into()).await.unwrap();
    let err = read_err(&store, &p).await;
    assert!(
        matches!(
            open_error(&err),
            atrest_envelope::Error::Malformed(Malformed::Magic)
        ),
        "{err:?}"
    );
    // Trailing bytes after the header.
    let mut longer = header.to_vec();
    longer.push(0);
    inner.put(&sidecar, longer.into()).await.unwrap();
    let err = read_err(&store, &p).await;
    assert!(
        matches!(
            open_error(&err),
            atrest_envelope::Error::Malformed(Malformed::TrailingBytes)
        ),
        "{err:?}"
    );

    // Every bit position: a decryption error, or (only inside the stored context, which the
    // reader replaces with the context of the path it reads) the right bytes.
    let context_len = usize::from(u16::from_be_bytes([header[42], header[43]]));
    let context = 44..44 + context_len;
    for at in 0..len {
        for bit in [0x01, 0x80] {
            let mut bytes = header.to_vec();
            bytes[at] ^= bit;
            inner.put(&sidecar, bytes.into()).await.unwrap();
            let whole = match store.get(&p).await {
                Ok(result) => result.bytes().await,
                Err(err) => Err(err),
            };
            let ranged = store.get_range(&p, 4090..4100).await;
            for (result, expected) in [
                (whole, plaintext.clone()),
                (ranged, plaintext.slice(4090..4100)),
            ] {
                match result {
                    Ok(got) => {
                        assert!(context.contains(&at), "byte {at} bit {bit:#x} accepted");
                        assert_eq!(got, expected, "byte {at} bit {bit:#x}");
                    }
                    Err(err) => {
                        assert!(
                            matches!(store_error(&err), Error::Open { path, .. } if path == p.as_ref()),
                            "byte {at} bit {bit:#x}: {err:?}"
                        );
                    }
                }
            }
        }
    }
    inner.put(&sidecar, header.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
}

#[tokio::test]
async fn swapped_sidecars_fail_authentication() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let (p, q) = (Path::from("acme/p.bin"), Path::from("acme/q.bin"));
    store.put(&p, data(10_000, 1).into()).await.unwrap();
    store.put(&q, data(10_000, 2).into()).await.unwrap();
    let (p_sidecar, p_header) = sidecar_of(inner, &p).await;
    let (q_sidecar, q_header) = sidecar_of(inner, &q).await;
    inner
        .put(&p_sidecar, q_header.clone().into())
        .await
        .unwrap();
    inner
        .put(&q_sidecar, p_header.clone().into())
        .await
        .unwrap();
    for path in [&p, &q] {
        let err = read_err(&store, path).await;
        assert_authentication(&err);
        assert_eq!(store_error(&err).path(), Some(path.as_ref()));
        assert_authentication(&store.get_range(path, 0..10).await.unwrap_err());
    }
    inner
        .put(&p_sidecar, p_header.clone().into())
        .await
        .unwrap();
    inner.put(&q_sidecar, q_header.into()).await.unwrap();
    assert_eq!(read(&store, &q).await.as_ref(), data(10_000, 2).as_slice());

    // The header of an earlier version of p (same path, so its tag still verifies) at the
    // sidecar path of the current version: refused as the wrong blob's header before any
    // body byte is read.
    let v2 = Bytes::from(data(10_000, 3));
    store.put(&p, v2.clone().into()).await.unwrap();
    let (current, current_header) = sidecar_of(inner, &p).await;
    assert_ne!(current, p_sidecar);
    inner.put(&current, p_header.into()).await.unwrap();
    assert_authentication(&read_err(&store, &p).await);
    assert_authentication(&store.get_range(&p, 0..10).await.unwrap_err());
    inner.put(&current, current_header.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, v2);
}

#[tokio::test]
async fn a_truncated_body_is_an_error_never_wrong_bytes() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("acme/p.bin");
    let plaintext = Bytes::from(data(10_000, 1));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    let original = raw(inner, &p).await;
    let len = original.len(); // 40 + 42 + 3 * 16 + 10 000
    let last_segment = 1808 + 16;
    for cut in [
        1,
        16,
        100,
        last_segment,
        last_segment + 1,
        last_segment + 4112,
        len - 82, // stub and stream header only
        len - 81,
        len - 40, // the stub only
        len - 39,
        len,
    ] {
        inner
            .put(&p, original.slice(..len - cut).into())
            .await
            .unwrap();
        // A whole read always fails as a decryption error.
        let err = read_err(&store, &p).await;
        let open = open_error(&err);
        if cut == 1 {
            assert!(
                matches!(
                    open,
                    atrest_envelope::Error::Body(atrest_stream::Error::Authentication)
                ),
                "cut {cut}: {open:?}"
            );
        }
        if cut == last_segment {
            // Exactly the final segment missing: a valid length, caught as truncation.
            assert!(
                matches!(
                    open,
                    atrest_envelope::Error::Body(atrest_stream::Error::Truncated)
                ),
                "cut {cut}: {open:?}"
            );
        }
        // Ranged reads fail or return the right bytes (a segment before the cut is intact).
        for r in [0..10, 4090..4100, 9990..10_000] {
            if let Ok(got) = store.get_range(&p, r.clone()).await {
                assert_eq!(
                    got,
                    plaintext.slice(r.start as usize..r.end as usize),
                    "cut {cut} {r:?}"
                );
            }
        }
    }
    inner.put(&p, original.into()).await.unwrap();
    assert_eq!(read(&store, &p).await, plaintext);
}

#[tokio::test]
async fn a_deleted_sidecar_is_a_missing_header() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let (p, q) = (Path::from("acme/p.bin"), Path::from("acme/q.bin"));
    store.put(&p, data(10_000, 1).into()).await.unwrap();
    store.put(&q, data(10_000, 2).into()).await.unwrap();
    let (sidecar, _) = sidecar_of(inner, &p).await;
    inner.delete(&sidecar).await.unwrap();

    assert_missing_header(&read_err(&store, &p).await, &p, &sidecar);
    let err = store.get_range(&p, 5000..5010).await.unwrap_err();
    assert_missing_header(&err, &p, &sidecar);
    let err = store.get_ranges(&p, &[0..1, 9000..9010]).await.unwrap_err();
    assert_missing_header(&err, &p, &sidecar);
    // head and list read no header: the object is still listed with its size.
    assert_eq!(store.head(&p).await.unwrap().size, 10_000);

    let scrub = store.scrub(None, 2, &Progress::new()).await.unwrap();
    assert_eq!((scrub.total, scrub.ok), (2, 1));
    assert_eq!(scrub.bad.len(), 1);
    assert_eq!(scrub.bad[0].0, p);
    assert!(
        matches!(&scrub.bad[0].1, Error::MissingHeader { header, .. } if header == sidecar.as_ref()),
        "{:?}",
        scrub.bad[0].1
    );
    let rewrap = store.rewrap(None, 2, &Progress::new()).await.unwrap();
    assert_eq!((rewrap.unchanged, rewrap.failed.len()), (1, 1));
    assert!(
        matches!(&rewrap.failed[0].1, Error::MissingHeader { path, .. } if path == p.as_ref()),
        "{:?}",
        rewrap.failed[0].1
    );

    // The store can still delete it.
    store.delete(&p).await.unwrap();
    assert_eq!(assert_one_sidecar_per_object(inner).await, 1);
}

// 5. Garbage -------------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_commit_leaves_no_object_and_no_header() {
    let (store, _ring) = failing_store();
    let p = Path::from("f/p");
    // PUT order: the sidecar (call 1), then the object (call 2, the commit). Fail either.
    for after in [0, 1] {
        store
            .inner()
            .fail(fault("put_opts", after, FaultKind::Network));
        let err = store.put(&p, data(10_000, 0).into()).await.unwrap_err();
        assert!(
            matches!(
                &err,
                object_store::Error::Generic {
                    store: "FailingStore",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            inner_objects(store.inner()).await.is_empty(),
            "after {after}"
        );
        let err = store.head(&p).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { .. }),
            "{err:?}"
        );
    }

    // A failed overwrite: the old object and its header stay, the new header is gone.
    let v1 = Bytes::from(data(10_000, 1));
    store.put(&p, v1.clone().into()).await.unwrap();
    let before = sidecars(store.inner()).await;
    assert_eq!(before.len(), 1);
    store.inner().fail(fault("put_opts", 1, FaultKind::Network));
    store.put(&p, data(5000, 2).into()).await.unwrap_err();
    assert_eq!(read(&store, &p).await, v1);
    assert_eq!(sidecars(store.inner()).await, before);

    // Conditional PUTs that lose.
    let err = store
        .put_opts(&p, data(5000, 2).into(), PutMode::Create.into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err:?}"
    );
    let stale = UpdateVersion {
        e_tag: Some("\"999\"".to_owned()),
        version: None,
    };
    let err = store
        .put_opts(&p, data(5000, 2).into(), PutMode::Update(stale).into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );
    assert_eq!(read(&store, &p).await, v1);
    assert_eq!(sidecars(store.inner()).await, before);

    // One that wins replaces the header.
    let meta = store.head(&p).await.unwrap();
    let current = UpdateVersion {
        e_tag: meta.e_tag,
        version: meta.version,
    };
    let v3 = Bytes::from(data(7000, 3));
    store
        .put_opts(&p, v3.clone().into(), PutMode::Update(current).into())
        .await
        .unwrap();
    assert_eq!(read(&store, &p).await, v3);
    let after = sidecars(store.inner()).await;
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
    assert_eq!(assert_one_sidecar_per_object(store.inner()).await, 1);
}

#[tokio::test]
async fn a_failed_multipart_upload_leaves_no_object_and_no_header() {
    let (store, _ring) = failing_store();
    let p = Path::from("f/multi");
    let upload_parts = |parts: usize| {
        let store = store.clone();
        let p = p.clone();
        async move {
            let mut upload = store.put_multipart(&p).await?;
            for i in 0..parts {
                if let Err(err) = upload.put_part(data(6000, i as u8).into()).await {
                    upload.abort().await.unwrap();
                    return Err(err);
                }
            }
            upload.complete().await
        }
    };

    // The inner completion fails (after the sidecar was written).
    store.inner().fail(fault("complete", 0, FaultKind::Network));
    let err = upload_parts(3).await.unwrap_err();
    assert!(
        matches!(
            &err,
            object_store::Error::Generic {
                store: "FailingStore",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(inner_objects(store.inner()).await.is_empty());
    // An inner part fails (sent by put_part or by complete, as the encryptor batches
    // segments): no header was ever written.
    store.inner().fail(fault("put_part", 0, FaultKind::Network));
    upload_parts(3).await.unwrap_err();
    assert!(inner_objects(store.inner()).await.is_empty());
    // The sidecar PUT in complete fails.
    store.inner().fail(fault("put_opts", 0, FaultKind::Network));
    upload_parts(3).await.unwrap_err();
    assert!(inner_objects(store.inner()).await.is_empty());
    let err = store.head(&p).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );

    // Over an existing object: it and its header stay.
    upload_parts(2).await.unwrap();
    let before = sidecars(store.inner()).await;
    let old = read(&store, &p).await;
    store.inner().fail(fault("complete", 0, FaultKind::Network));
    upload_parts(3).await.unwrap_err();
    assert_eq!(read(&store, &p).await, old);
    assert_eq!(sidecars(store.inner()).await, before);
    // A successful overwrite replaces the header.
    upload_parts(3).await.unwrap();
    assert_eq!(store.head(&p).await.unwrap().size, 18_000);
    assert_ne!(sidecars(store.inner()).await, before);
    assert_eq!(assert_one_sidecar_per_object(store.inner()).await, 1);
}

#[tokio::test]
async fn orphans_are_collected_after_the_grace_period() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    for i in 0..4u8 {
        store
            .put(&format!("g/{i}").into(), data(5000, i).into())
            .await
            .unwrap();
    }
    let report = store.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(counts(&report), (4, 4, 0, 0));

    // Plant an orphan: a real header copied under an id no stub names.
    let (_, header) = sidecar_of(inner, &"g/0".into()).await;
    let orphan = sidecar_path(&[0x5a; 32]);
    inner.put(&orphan, header.into()).await.unwrap();
    let report = store
        .collect_garbage(Duration::from_secs(3600), 4)
        .await
        .unwrap();
    assert_eq!(counts(&report), (5, 4, 1, 0), "young: kept");
    assert!(inner.head(&orphan).await.is_ok());
    let report = store.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(counts(&report), (5, 4, 0, 1));
    let err = inner.head(&orphan).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    for i in 0..4u8 {
        let got = read(&store, &format!("g/{i}").into()).await;
        assert_eq!(got.as_ref(), data(5000, i).as_slice());
    }
    assert_eq!(assert_one_sidecar_per_object(inner).await, 4);
    let report = store.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(counts(&report), (4, 4, 0, 0));

    // An attached store has no detached headers to collect.
    let (attached, _ring) = common::single_key_store(InMemory::new());
    attached.put(&"a".into(), data(10, 0).into()).await.unwrap();
    let report = attached.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(counts(&report), (0, 0, 0, 0));
}

#[tokio::test]
async fn headers_left_by_failed_cleanups_are_collected() {
    let (store, _ring) = failing_store();
    let p = Path::from("g/p");
    store.put(&p, data(5000, 1).into()).await.unwrap();

    // The overwrite commits but deleting the replaced header fails: one orphan.
    store.inner().fail(fault("delete", 0, FaultKind::Network));
    let v2 = Bytes::from(data(6000, 2));
    store.put(&p, v2.clone().into()).await.unwrap();
    assert_eq!(sidecars(store.inner()).await.len(), 2);
    // The commit fails and deleting the new header fails too: a second orphan.
    store.inner().fail(fault("put_opts", 1, FaultKind::Network));
    store.inner().fail(fault("delete", 0, FaultKind::Network));
    store.put(&p, data(7000, 3).into()).await.unwrap_err();
    assert_eq!(sidecars(store.inner()).await.len(), 3);
    // A delete removes the object but not its header: a third.
    let q = Path::from("g/q");
    store.put(&q, data(100, 4).into()).await.unwrap();
    store.inner().fail(fault("delete", 1, FaultKind::Network));
    store.delete(&q).await.unwrap();
    assert!(store.head(&q).await.is_err());
    assert_eq!(sidecars(store.inner()).await.len(), 4);
    assert_eq!(read(&store, &p).await, v2);

    // The collection's own deletion fails: reported, nothing else deleted wrongly.
    store.inner().fail(fault("delete", 0, FaultKind::Network));
    let report = store.collect_garbage(Duration::ZERO, 1).await.unwrap();
    assert_eq!(
        (
            report.headers,
            report.referenced,
            report.recent,
            report.deleted
        ),
        (4, 1, 0, 2)
    );
    assert_eq!(report.failed.len(), 1);
    let (path, err) = &report.failed[0];
    assert!(is_sidecar(path), "{path}");
    assert!(
        matches!(err, Error::Store { path: p, source }
            if p == path.as_ref()
                && matches!(**source, object_store::Error::Generic { store: "FailingStore", .. })),
        "{err:?}"
    );
    // Rerun: done.
    let report = store.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(counts(&report), (2, 1, 0, 1));
    assert_eq!(assert_one_sidecar_per_object(store.inner()).await, 1);
    assert_eq!(read(&store, &p).await, v2);
}

#[tokio::test]
async fn overwrites_keep_exactly_one_header() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("o/p");
    let mut seen = BTreeSet::new();
    for i in 0..3u8 {
        store.put(&p, data(9000, i).into()).await.unwrap();
        let (sidecar, _) = sidecar_of(inner, &p).await;
        assert!(seen.insert(sidecar), "a fresh blob id per write");
        assert_eq!(sidecars(inner).await.len(), 1);
    }
    assert_eq!(read(&store, &p).await.as_ref(), data(9000, 2).as_slice());
    // Overwritten by a multipart upload, a copy and a rename.
    let mut upload = store.put_multipart(&p).await.unwrap();
    upload.put_part(data(12_000, 7).into()).await.unwrap();
    upload.complete().await.unwrap();
    assert_eq!(sidecars(inner).await.len(), 1);
    let q = Path::from("o/q");
    store.put(&q, data(20_000, 8).into()).await.unwrap();
    store.copy(&q, &p).await.unwrap();
    assert_eq!(sidecars(inner).await.len(), 2);
    store.put(&q, data(100, 9).into()).await.unwrap();
    store.rename(&q, &p).await.unwrap();
    assert_eq!(read(&store, &p).await.as_ref(), data(100, 9).as_slice());
    assert_eq!(assert_one_sidecar_per_object(inner).await, 1);
    let report = store.collect_garbage(Duration::ZERO, 2).await.unwrap();
    assert_eq!(counts(&report), (1, 1, 0, 0));
}

// 6. Reserved prefix -----------------------------------------------------------------------

#[tokio::test]
async fn the_header_prefix_is_reserved_and_hidden() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("docs/a");
    let plaintext = Bytes::from(data(5000, 1));
    store.put(&p, plaintext.clone().into()).await.unwrap();
    // Only the first segment is reserved.
    let nested = Path::from("docs/.atrest-headers/b");
    store.put(&nested, data(10, 2).into()).await.unwrap();
    store
        .put(&"acme/x".into(), data(10, 3).into())
        .await
        .unwrap();
    let (sidecar, header) = sidecar_of(inner, &p).await;

    for reserved in [
        Path::from(".atrest-headers/x"),
        Path::from(DETACHED_HEADERS),
        sidecar.clone(),
    ] {
        let check = |err: object_store::Error| {
            assert!(
                matches!(store_error(&err), Error::ReservedPath { path, prefix }
                    if path == reserved.as_ref() && *prefix == DETACHED_HEADERS),
                "{reserved}: {err:?}"
            );
        };
        check(store.put(&reserved, data(10, 0).into()).await.unwrap_err());
        check(store.put_multipart(&reserved).await.unwrap_err());
        check(store.get(&reserved).await.unwrap_err());
        check(store.head(&reserved).await.unwrap_err());
        check(store.get_range(&reserved, 0..1).await.unwrap_err());
        check(
            store
                .get_ranges(&reserved, &[0..1, 2..3])
                .await
                .unwrap_err(),
        );
        check(store.delete(&reserved).await.unwrap_err());
        check(store.copy(&p, &reserved).await.unwrap_err());
        check(store.copy(&reserved, &p).await.unwrap_err());
        check(store.copy_if_not_exists(&p, &reserved).await.unwrap_err());
        check(store.rename(&p, &reserved).await.unwrap_err());
        check(store.rename(&reserved, &p).await.unwrap_err());
        check(store.rename_if_not_exists(&p, &reserved).await.unwrap_err());
    }
    // Nothing moved: the header is intact and the object reads.
    assert_eq!(raw(inner, &sidecar).await, header);
    assert_eq!(read(&store, &p).await, plaintext);
    let err = inner.head(&".atrest-headers/x".into()).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );

    // Listings never show the headers.
    assert_eq!(inner_objects(inner).await.len(), 6);
    let visible = vec![
        ("acme/x".to_owned(), 10),
        ("docs/.atrest-headers/b".to_owned(), 10),
        ("docs/a".to_owned(), 5000),
    ];
    assert_eq!(listed(&store, None).await, visible);
    assert!(
        listed(&store, Some(&DETACHED_HEADERS.into()))
            .await
            .is_empty()
    );
    let mut after: Vec<String> = store
        .list_with_offset(None, &"-".into())
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    after.sort();
    assert_eq!(after, ["acme/x", "docs/.atrest-headers/b", "docs/a"]);
    let root = store.list_with_delimiter(None).await.unwrap();
    assert_eq!(
        root.common_prefixes,
        [Path::from("acme"), Path::from("docs")]
    );
    assert!(root.objects.is_empty());
    let headers = store
        .list_with_delimiter(Some(&DETACHED_HEADERS.into()))
        .await
        .unwrap();
    assert!(headers.common_prefixes.is_empty() && headers.objects.is_empty());
    let docs = store
        .list_with_delimiter(Some(&"docs".into()))
        .await
        .unwrap();
    assert_eq!(docs.common_prefixes, [Path::from("docs/.atrest-headers")]);
    assert_eq!(docs.objects.len(), 1);
    assert_eq!(
        (docs.objects[0].location.as_ref(), docs.objects[0].size),
        ("docs/a", 5000)
    );

    // A store with attached headers has no reserved prefix.
    let (attached, _ring) = common::single_key_store(InMemory::new());
    let anywhere = Path::from(".atrest-headers/x");
    attached.put(&anywhere, data(10, 4).into()).await.unwrap();
    assert_eq!(
        read(&attached, &anywhere).await.as_ref(),
        data(10, 4).as_slice()
    );
}

// 7. Crash mid-rewrap ----------------------------------------------------------------------

#[tokio::test]
async fn a_rewrap_killed_midway_leaves_everything_readable_and_resumes() {
    let (store, ring) = failing_store();
    let paths: Vec<Path> = (0..10).map(|i| Path::from(format!("r/{i}"))).collect();
    for (i, path) in paths.iter().enumerate() {
        store
            .put(path, data(20_000 + i * 1000, i as u8).into())
            .await
            .unwrap();
    }
    let bodies_before = bodies(store.inner()).await;
    assert_eq!(ring.write().rotate(&key("conformance"), T0).unwrap(), 2);

    // The 4th sidecar PUT fails (a rewrap's only PUTs are sidecars).
    store.inner().fail(fault("put_opts", 3, FaultKind::Network));
    let progress = Progress::new();
    let first = store.rewrap(None, 4, &progress).await.unwrap();
    assert_eq!((first.total, first.rewritten, first.unchanged), (10, 9, 0));
    assert_eq!(first.failed.len(), 1, "{:?}", first.failed);
    let (failed, err) = &first.failed[0];
    let (failed_sidecar, _) = sidecar_of(store.inner(), failed).await;
    assert!(
        matches!(err, Error::Store { path, source }
            if path == failed_sidecar.as_ref()
                && matches!(**source, object_store::Error::Generic { store: "FailingStore", .. })),
        "{err:?}"
    );
    let snapshot = progress.snapshot();
    assert_eq!(
        (snapshot.total, snapshot.done, snapshot.failed),
        (10, 10, 1)
    );
    assert_eq!(snapshot.bytes_rewritten, first.bytes_rewritten);

    // Every object reads (the failed one under its old header); the bodies never changed.
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(
            read(&store, path).await.as_ref(),
            data(20_000 + i * 1000, i as u8).as_slice()
        );
        let (_, header) = sidecar_of(store.inner(), path).await;
        let version = Header::parse(&header).unwrap().wrapped_keys()[0].version;
        assert_eq!(version, if path == failed { 1 } else { 2 }, "{path}");
    }
    assert_eq!(bodies(store.inner()).await, bodies_before);

    // Resume: only the failed one is written; then nothing.
    let second = store.rewrap(None, 4, &Progress::new()).await.unwrap();
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!((second.rewritten, second.unchanged), (1, 9));
    let third = store.rewrap(None, 4, &Progress::new()).await.unwrap();
    assert_eq!(
        (third.rewritten, third.unchanged, third.failed.len()),
        (0, 10, 0)
    );
    ring.write()
        .set_min_decryption_version(&key("conformance"), 2)
        .unwrap();
    let scrub = store.scrub(None, 4, &Progress::new()).await.unwrap();
    assert_eq!((scrub.total, scrub.ok), (10, 10), "{:?}", scrub.bad);
    assert_eq!(bodies(store.inner()).await, bodies_before);
    assert_eq!(assert_one_sidecar_per_object(store.inner()).await, 10);
}

// 8. Mixed placements over one inner store -------------------------------------------------

#[tokio::test]
async fn each_placement_refuses_the_others_objects_as_not_encrypted() {
    let inner: Arc<InMemory> = Arc::new(InMemory::new());
    let ring = keyring(&["conformance"]);
    let attached = EncryptedStore::with_config(
        Arc::clone(&inner),
        ring.clone(),
        SingleKey(key("conformance")),
        Config::default().segment_size(4096).unwrap(),
    );
    let detached = EncryptedStore::with_config(
        Arc::clone(&inner),
        ring,
        SingleKey(key("conformance")),
        small_config(),
    );
    let (d, a) = (
        Path::from("written/detached"),
        Path::from("written/attached"),
    );
    detached.put(&d, data(10_000, 1).into()).await.unwrap();
    attached.put(&a, data(10_000, 2).into()).await.unwrap();

    for (store, path) in [
        (&attached as &dyn ObjectStore, &d),
        (&detached as &dyn ObjectStore, &a),
    ] {
        assert_not_encrypted(&read_err(store, path).await, path);
        assert_not_encrypted(&store.get_range(path, 0..10).await.unwrap_err(), path);
        assert_not_encrypted(&store.get_range(path, 9000..9010).await.unwrap_err(), path);
        let err = store.get_ranges(path, &[0..10, 20..30]).await.unwrap_err();
        assert_not_encrypted(&err, path);
    }
    assert_eq!(
        read(&detached, &d).await.as_ref(),
        data(10_000, 1).as_slice()
    );
    assert_eq!(
        read(&attached, &a).await.as_ref(),
        data(10_000, 2).as_slice()
    );
    // A detached store's jobs report the attached object rather than touch it.
    let scrub = detached.scrub(None, 2, &Progress::new()).await.unwrap();
    assert_eq!((scrub.total, scrub.ok, scrub.bad.len()), (2, 1, 1));
    assert!(
        matches!(&scrub.bad[0].1, Error::NotEncrypted { path, .. } if path == a.as_ref()),
        "{:?}",
        scrub.bad[0].1
    );
    let report = detached.collect_garbage(Duration::ZERO, 2).await.unwrap();
    assert_eq!(counts(&report), (1, 1, 0, 0));
    // An attached store listing a bucket with detached headers trips over the sidecars.
    let listing: Vec<object_store::Result<ObjectMeta>> = attached.list(None).collect().await;
    assert_eq!(listing.len(), 3);
    let sidecar_errors = listing
        .iter()
        .filter_map(|meta| meta.as_ref().err())
        .inspect(|err| {
            assert!(
                matches!(store_error(err), Error::NotEncrypted { path, .. }
                    if path.starts_with(".atrest-headers/")),
                "{err:?}"
            );
        })
        .count();
    assert_eq!(sidecar_errors, 1);
}

#[tokio::test]
async fn paginated_listings_hide_the_headers() {
    let (store, _ring) = small_store(ScriptedStore::default());
    for i in 0..5u8 {
        store
            .put(
                &format!("a/{i}").into(),
                data(1000 * usize::from(i), i).into(),
            )
            .await
            .unwrap();
    }
    // Inner paths sort `.atrest-headers/...` first: the first pages hold only sidecars.
    let mut pages = 0;
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let opts = PaginatedListOptions {
            max_keys: Some(3),
            page_token: token.take(),
            ..PaginatedListOptions::default()
        };
        let page = store.list_paginated(None, opts).await.unwrap();
        pages += 1;
        for meta in page.result.objects {
            seen.push((meta.location.to_string(), meta.size));
        }
        match page.page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4, "10 inner paths, 3 a page");
    let expected: Vec<(String, u64)> = (0..5u64).map(|i| (format!("a/{i}"), 1000 * i)).collect();
    assert_eq!(seen, expected);
    let headers = store
        .list_paginated(Some(DETACHED_HEADERS), PaginatedListOptions::default())
        .await
        .unwrap();
    assert!(headers.result.objects.is_empty() && headers.page_token.is_none());
}

// Regressions: data-loss bugs found in review ---------------------------------------------

/// InMemory with a paginated listing (pages of `max_keys` paths in path order, no
/// delimiter), whose next PUT outside the header prefix can be applied and then reported
/// failed, as a request that timed out after the server committed it.
#[derive(Debug, Default)]
struct ScriptedStore {
    inner: InMemory,
    lose_next: AtomicBool,
}

impl fmt::Display for ScriptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptedStore")
    }
}

#[async_trait]
impl PaginatedListStore for ScriptedStore {
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> object_store::Result<PaginatedListResult> {
        assert!(opts.delimiter.is_none(), "not implemented by this fixture");
        let prefix = prefix.map(Path::from);
        let mut objects: Vec<ObjectMeta> = self.inner.list(prefix.as_ref()).try_collect().await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let after = opts.page_token.or(opts.offset);
        objects.retain(|meta| {
            after
                .as_deref()
                .is_none_or(|after| meta.location.as_ref() > after)
        });
        let max = opts.max_keys.unwrap_or(usize::MAX);
        let page_token = (objects.len() > max).then(|| objects[max - 1].location.to_string());
        objects.truncate(max);
        Ok(PaginatedListResult {
            result: ListResult {
                common_prefixes: Vec::new(),
                objects,
                extensions: object_store::Extensions::default(),
            },
            page_token,
        })
    }
}

#[async_trait]
impl ObjectStore for ScriptedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        if !is_sidecar(location) && self.lose_next.swap(false, Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "ScriptedStore",
                source: "timed out (the write was applied)".into(),
            });
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
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
        self.inner.copy_opts(from, to, options).await
    }
}

/// A commit that fails *after* the inner store applied it (a timeout, a lost response) must
/// not delete the header the committed object names: that would leave the new stub and body
/// with no header anywhere, unrecoverable. `commit_detached` deletes the new header only if
/// the object demonstrably does not name it.
#[tokio::test]
async fn a_lost_commit_acknowledgement_does_not_destroy_the_object() {
    let (store, _ring) = small_store(ScriptedStore::default());
    let p = Path::from("ack/p");
    let (v1, v2) = (Bytes::from(data(5000, 1)), Bytes::from(data(5000, 2)));
    store.put(&p, v1.clone().into()).await.unwrap();
    store.inner().lose_next.store(true, Ordering::SeqCst);
    store.put(&p, v2.clone().into()).await.unwrap_err();
    // Either version may be there; an unreadable object is data loss.
    match store.get(&p).await {
        Ok(result) => {
            let got = result.bytes().await.unwrap();
            assert!(got == v1 || got == v2);
        }
        Err(err) => panic!("the object at {p} is lost: {err}"),
    }
}

/// A raw copy of `q` made behind the store's back (unreadable at `x`, as designed), deleted
/// or overwritten through the store, must not take `q`'s header with it: only a header that
/// names the path is deleted with the object.
#[tokio::test]
async fn deleting_or_overwriting_a_raw_copy_spares_the_original() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let plaintext = Bytes::from(data(10_000, 2));
    let mut lost = Vec::new();
    for cleanup in ["delete", "overwrite"] {
        let q = Path::from(format!("acme/{cleanup}/q.bin"));
        let x = Path::from(format!("acme/{cleanup}/x.bin"));
        store.put(&q, plaintext.clone().into()).await.unwrap();
        inner.copy(&q, &x).await.unwrap();
        assert_authentication(&read_err(&store, &x).await);
        if cleanup == "delete" {
            store.delete(&x).await.unwrap();
        } else {
            store.put(&x, data(10, 0).into()).await.unwrap();
        }
        match store.get(&q).await {
            Ok(result) => assert_eq!(result.bytes().await.unwrap(), plaintext),
            Err(err) => lost.push(format!("{cleanup} of {x} destroyed {q}: {err}")),
        }
    }
    assert!(lost.is_empty(), "{lost:#?}");
}

/// Paths under the header prefix that are not canonical header names (junk, an upper-case
/// look-alike of a referenced header) are never deleted and never count as references.
#[tokio::test]
async fn collect_garbage_leaves_foreign_paths_alone() {
    let (store, _ring) = small_store(InMemory::new());
    let inner = store.inner();
    let p = Path::from("g/p");
    store.put(&p, data(5000, 1).into()).await.unwrap();
    let sidecar = inner
        .list(Some(&Path::from(DETACHED_HEADERS)))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .remove(0)
        .location;
    let look_alike = Path::from(
        sidecar
            .as_ref()
            .to_uppercase()
            .replace(&DETACHED_HEADERS.to_uppercase(), DETACHED_HEADERS),
    );
    assert_ne!(look_alike, sidecar);
    let junk = Path::from(format!("{DETACHED_HEADERS}/junk"));
    for path in [&look_alike, &junk] {
        inner
            .put(path, Bytes::from_static(b"x").into())
            .await
            .unwrap();
    }
    let report = store.collect_garbage(Duration::ZERO, 4).await.unwrap();
    assert_eq!(
        (
            report.headers,
            report.referenced,
            report.deleted,
            report.foreign
        ),
        (3, 1, 0, 2)
    );
    for path in [&look_alike, &junk, &sidecar] {
        inner.head(path).await.unwrap();
    }
    assert_eq!(
        store.get(&p).await.unwrap().bytes().await.unwrap(),
        data(5000, 1)
    );
}
