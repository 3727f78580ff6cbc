//! Binding to the location, tamper detection, sizes, ranged reads.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]
#![allow(clippy::indexing_slicing, reason = "tests")]
#![allow(clippy::cast_possible_truncation, reason = "test sizes are small")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use atrest_store::{Config, EncryptedStore, TenantPrefix};
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use common::{keyring, single_key_store, store_error};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn small_segments(inner: InMemory) -> EncryptedStore<InMemory> {
    let ring = keyring(&["tenant-acme", "tenant-globex"]);
    let config = Config::default().segment_size(4096).unwrap();
    EncryptedStore::with_config(inner, ring, TenantPrefix::new(), config)
}

async fn read_err(store: &dyn ObjectStore, path: &Path) -> object_store::Error {
    match store.get(path).await {
        Err(e) => e,
        Ok(r) => r.bytes().await.unwrap_err(),
    }
}

#[tokio::test]
async fn moved_or_copied_behind_the_back_fails_authentication() {
    let store = small_segments(InMemory::new());
    let a = Path::from("acme/a.pdf");
    store.put(&a, data(10_000).into()).await.unwrap();
    // Behind the store's back: the raw bytes copied and renamed inside the inner store.
    store.inner().copy(&a, &"acme/b.pdf".into()).await.unwrap();
    store
        .inner()
        .copy(&a, &"globex/a.pdf".into())
        .await
        .unwrap();
    for path in ["acme/b.pdf", "globex/a.pdf"] {
        let err = read_err(&store, &path.into()).await;
        let err = store_error(&err);
        assert!(
            err.is_authentication() || err.open_error().is_some(),
            "{err}"
        );
        assert_eq!(err.path(), Some(path));
    }
    let err = read_err(&store, &"acme/b.pdf".into()).await;
    assert!(store_error(&err).is_authentication(), "{err}");
    let err = store
        .get_range(&"acme/b.pdf".into(), 5000..5010)
        .await
        .unwrap_err();
    assert!(store_error(&err).is_authentication(), "{err}");
    // Through the store, copy and rename work.
    store.copy(&a, &"acme/c.pdf".into()).await.unwrap();
    store.rename(&a, &"globex/d.pdf".into()).await.unwrap();
    for path in ["acme/c.pdf", "globex/d.pdf"] {
        let got = store
            .get(&path.into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), data(10_000).as_slice());
    }
}

#[tokio::test]
async fn any_tampered_byte_is_an_authentication_error_never_wrong_bytes() {
    let store = small_segments(InMemory::new());
    let path = Path::from("acme/t.bin");
    let plaintext = data(9000); // three segments of 4096
    store.put(&path, plaintext.clone().into()).await.unwrap();
    let original = store
        .inner()
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let positions = (0..original.len()).step_by(37).chain([original.len() - 1]);
    for at in positions {
        let mut bytes = original.to_vec();
        bytes[at] ^= 0x01;
        store.inner().put(&path, bytes.into()).await.unwrap();
        let err = read_err(&store, &path).await;
        let err = store_error(&err);
        assert!(err.open_error().is_some(), "byte {at}: {err}");
        // Ranged reads of every segment fail or return the right bytes (a flip in another
        // segment is not read), never wrong bytes.
        for range in [0..10, 4090..4100, 8990..9000] {
            match store.get_range(&path, range.clone()).await {
                Ok(got) => assert_eq!(
                    got.as_ref(),
                    &plaintext[range.start as usize..range.end as usize],
                    "byte {at}"
                ),
                Err(e) => assert!(store_error(&e).open_error().is_some(), "byte {at}: {e}"),
            }
        }
    }
    // Truncated by a whole segment: caught.
    store
        .inner()
        .put(&path, original.slice(..original.len() - 100).into())
        .await
        .unwrap();
    let err = read_err(&store, &path).await;
    assert!(store_error(&err).open_error().is_some(), "{err}");
}

#[tokio::test]
async fn sizes_and_ranges_at_segment_boundaries() {
    let store = small_segments(InMemory::new());
    for len in [0usize, 1, 4095, 4096, 4097, 8192, 8193, 20_000] {
        let path = Path::from(format!("acme/len-{len}"));
        let plaintext = Bytes::from(data(len));
        store.put(&path, plaintext.clone().into()).await.unwrap();
        assert_eq!(store.head(&path).await.unwrap().size, len as u64);
        let stored = store.inner().head(&path).await.unwrap().size;
        assert_eq!(store.stored_size(&path, len as u64).unwrap(), stored);
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap(),
            plaintext
        );
        let mut ranges = vec![];
        for a in [0u64, 1, 4095, 4096, 4097, 8191, 8192] {
            for b in [a + 1, a + 2, a + 4096, a + 5000, len as u64] {
                if a < b && b <= len as u64 {
                    ranges.push(a..b);
                }
            }
        }
        for r in &ranges {
            let got = store.get_range(&path, r.clone()).await.unwrap();
            assert_eq!(
                got,
                plaintext.slice(r.start as usize..r.end as usize),
                "{len} {r:?}"
            );
        }
        if !ranges.is_empty() {
            let got = store.get_ranges(&path, &ranges).await.unwrap();
            for (r, got) in ranges.iter().zip(got) {
                assert_eq!(got, plaintext.slice(r.start as usize..r.end as usize));
            }
            let suffix = store
                .get_opts(
                    &path,
                    GetOptions::new().with_range(Some(GetRange::Suffix(3000))),
                )
                .await
                .unwrap();
            assert_eq!(suffix.meta.size, len as u64);
            let start = len.saturating_sub(3000);
            assert_eq!(suffix.bytes().await.unwrap(), plaintext.slice(start..));
        }
    }
    let listed: Vec<_> = futures_util::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
        .await
        .unwrap();
    for meta in listed {
        let len: usize = meta
            .location
            .as_ref()
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(meta.size, len as u64);
    }
}

#[tokio::test]
async fn tenants_are_bound_and_keyed_apart() {
    let store = small_segments(InMemory::new());
    store
        .put(&"acme/x".into(), PutPayload::from_static(b"acme data"))
        .await
        .unwrap();
    let raw = store
        .inner()
        .get(&"acme/x".into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (header, _) = atrest_envelope::Header::split_attached(&raw).unwrap();
    assert_eq!(header.wrapped_keys()[0].key_id.as_str(), "tenant-acme");
    assert_eq!(header.context().get(b"tenant"), Some(&b"acme"[..]));
    assert_eq!(header.context().get(b"location"), Some(&b"acme/x"[..]));
    // A tenant without a key cannot write.
    let err = store
        .put(&"initech/x".into(), PutPayload::from_static(b"no key"))
        .await
        .unwrap_err();
    assert!(
        matches!(store_error(&err), atrest_store::Error::Seal { path, .. } if path == "initech/x"),
        "{err}"
    );
    assert!(store.inner().head(&"initech/x".into()).await.is_err());
}

#[tokio::test]
async fn multipart_upload_in_many_parts_round_trips() {
    let ring = keyring(&["conformance"]);
    let config = Config::default().part_size(256 << 10);
    let store = Arc::new(EncryptedStore::with_config(
        InMemory::new(),
        ring,
        atrest_store::SingleKey(common::key("conformance")),
        config,
    ));
    let path = Path::from("big");
    let mut upload = store.put_multipart(&path).await.unwrap();
    let chunk = data(100_000);
    for _ in 0..40 {
        upload.put_part(chunk.clone().into()).await.unwrap();
    }
    upload.complete().await.unwrap();
    let got = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), 4_000_000);
    assert_eq!(&got[..100_000], chunk.as_slice());
    let (single, _ring) = single_key_store(InMemory::new());
    single.put(&path, chunk.clone().into()).await.unwrap();
    assert_eq!(single.head(&path).await.unwrap().size, 100_000);
}

/// AES-GCM keys expanded through [`COUNTING`]: proves a store seals and opens with the
/// provider its `Config` names.
static KEYS_EXPANDED: AtomicUsize = AtomicUsize::new(0);

struct CountingAesGcm;

impl atrest_crypto::Aes256Gcm for CountingAesGcm {
    fn key(&self, key: &atrest_crypto::Key256) -> Box<dyn atrest_crypto::AeadKey> {
        KEYS_EXPANDED.fetch_add(1, Ordering::SeqCst);
        atrest_crypto::rustcrypto::PROVIDER.aes256_gcm.key(key)
    }
}

/// RustCrypto, with a counter on key expansion.
static COUNTING: atrest_crypto::CryptoProvider = atrest_crypto::CryptoProvider {
    name: "counting",
    aes256_gcm: &CountingAesGcm,
    ..atrest_crypto::rustcrypto::PROVIDER
};

#[tokio::test]
async fn a_store_uses_the_provider_its_config_names() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ring = keyring(&["tenant-acme"]);
    let plain = EncryptedStore::with_config(
        Arc::clone(&inner),
        ring.clone(),
        TenantPrefix::new(),
        Config::default(),
    );
    let counting = EncryptedStore::with_config(
        inner,
        ring,
        TenantPrefix::new(),
        Config::default().provider(&COUNTING),
    );
    let path = Path::from("acme/a.bin");
    let before = KEYS_EXPANDED.load(Ordering::SeqCst);
    plain.put(&path, data(1000).into()).await.unwrap();
    plain.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        KEYS_EXPANDED.load(Ordering::SeqCst),
        before,
        "not configured"
    );
    counting.put(&path, data(1000).into()).await.unwrap();
    let after_put = KEYS_EXPANDED.load(Ordering::SeqCst);
    assert!(after_put > before, "put seals with the configured provider");
    let got = counting.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, data(1000));
    assert!(
        KEYS_EXPANDED.load(Ordering::SeqCst) > after_put,
        "get opens with the configured provider"
    );
}

#[tokio::test]
async fn stores_on_either_provider_read_each_others_objects() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ring = keyring(&["tenant-acme"]);
    let config = Config::default().segment_size(4096).unwrap();
    let rustcrypto = EncryptedStore::with_config(
        Arc::clone(&inner),
        ring.clone(),
        TenantPrefix::new(),
        config,
    );
    let fast = EncryptedStore::with_config(
        inner,
        ring,
        TenantPrefix::new(),
        config.provider(&atrest_ring::PROVIDER),
    );
    let body = data(50_000);
    let stores: [&dyn ObjectStore; 2] = [&rustcrypto, &fast];
    for (writer, name) in [(0, "acme/by-rustcrypto.bin"), (1, "acme/by-ring.bin")] {
        let path = Path::from(name);
        stores[writer]
            .put(&path, PutPayload::from(body.clone()))
            .await
            .unwrap();
        for reader in stores {
            let got = reader.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(got, body, "{name}");
            // A range across a segment boundary, opened from the middle of the object.
            let got = reader.get_range(&path, 8_000..12_500).await.unwrap();
            assert_eq!(got, body[8_000..12_500], "{name}");
        }
    }
    // Same key, same provider-independent format: a tampered byte fails on both.
    let path = Path::from("acme/by-ring.bin");
    common::flip_last_stored_byte(rustcrypto.inner().as_ref(), &path, 1).await;
    for reader in stores {
        let err = read_err(reader, &path).await;
        assert!(store_error(&err).is_authentication(), "{err}");
    }
}
