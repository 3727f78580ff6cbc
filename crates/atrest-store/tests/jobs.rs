//! Rewrap, scrub and shred jobs.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use atrest_envelope::{Header, KeyUnavailable};
use atrest_store::{EncryptedStore, Progress, TenantPrefix};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use common::{FailingStore, Fault, FaultKind, T0, key, keyring};

async fn versions(inner: &dyn ObjectStore, prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for (path, bytes) in common::inner_objects(inner).await {
        if path.as_ref().starts_with(prefix) {
            let (header, _) = Header::split_attached(&bytes).unwrap();
            out.push(header.wrapped_keys()[0].version);
        }
    }
    out
}

fn payload(i: usize) -> Vec<u8> {
    format!("object {i} ").repeat(i * 50 + 1).into_bytes()
}

#[tokio::test]
async fn rewrap_is_concurrent_idempotent_and_resumable() {
    let ring = keyring(&["tenant-acme", "tenant-globex"]);
    let store = EncryptedStore::new(FailingStore::new(), ring.clone(), TenantPrefix::new());
    for i in 0..40 {
        let tenant = if i % 4 == 0 { "globex" } else { "acme" };
        store
            .put(&format!("{tenant}/{i}").into(), payload(i).into())
            .await
            .unwrap();
    }
    assert_eq!(ring.write().rotate(&key("tenant-acme"), T0).unwrap(), 2);

    // Crash mid-way: the 11th write fails (as if the process died there).
    store.inner().fail(Fault {
        op: "put_opts",
        after: 10,
        kind: FaultKind::Network,
    });
    let acme = Path::from("acme");
    let progress = Progress::new();
    let first = store.rewrap(Some(&acme), 4, &progress).await.unwrap();
    assert_eq!(first.total, 30);
    assert_eq!(first.failed.len(), 1, "{:?}", first.failed);
    assert_eq!(first.rewritten, 29);
    let snapshot = progress.snapshot();
    assert_eq!(
        (snapshot.total, snapshot.done, snapshot.failed),
        (30, 30, 1)
    );
    assert_eq!(snapshot.bytes_rewritten, first.bytes_rewritten);
    // Every object is readable after the crash, old or new header.
    for i in 0..40 {
        let tenant = if i % 4 == 0 { "globex" } else { "acme" };
        let got = store.get(&format!("{tenant}/{i}").into()).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), payload(i).as_slice());
    }
    let mut v = versions(store.inner(), "acme/").await;
    v.sort_unstable();
    assert_eq!(v.iter().filter(|&&v| v == 1).count(), 1);

    // Resume: only the remaining object is written.
    let second = store
        .rewrap(Some(&acme), 4, &Progress::new())
        .await
        .unwrap();
    assert_eq!((second.rewritten, second.unchanged), (1, 29));
    assert!(second.failed.is_empty());
    // Idempotent: nothing left to do.
    let third = store
        .rewrap(Some(&acme), 4, &Progress::new())
        .await
        .unwrap();
    assert_eq!(
        (third.rewritten, third.unchanged, third.bytes_rewritten),
        (0, 30, 0)
    );
    assert!(
        versions(store.inner(), "acme/")
            .await
            .iter()
            .all(|&v| v == 2)
    );
    assert!(
        versions(store.inner(), "globex/")
            .await
            .iter()
            .all(|&v| v == 1)
    );

    // Bytes rewritten: whole objects (attached form), reported honestly.
    let stored: u64 = common::inner_objects(store.inner())
        .await
        .iter()
        .filter(|(p, _)| p.as_ref().starts_with("acme/"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(first.bytes_rewritten + second.bytes_rewritten, stored);

    // The old version can now be retired: everything still reads.
    ring.write()
        .set_min_decryption_version(&key("tenant-acme"), 2)
        .unwrap();
    let scrub = store.scrub(None, 4, &Progress::new()).await.unwrap();
    assert_eq!((scrub.total, scrub.ok), (40, 40), "{:?}", scrub.bad);
}

#[tokio::test]
async fn scrub_reports_the_tampered_object_and_keeps_going() {
    let ring = keyring(&["tenant-acme"]);
    let store = EncryptedStore::new(
        object_store::memory::InMemory::new(),
        ring,
        TenantPrefix::new(),
    );
    for i in 0..12 {
        store
            .put(&format!("acme/{i}").into(), payload(i).into())
            .await
            .unwrap();
    }
    let victim = Path::from("acme/7");
    common::flip_last_stored_byte(store.inner(), &victim, 0x40).await;
    let progress = Progress::new();
    let report = store
        .scrub(Some(&"acme".into()), 3, &progress)
        .await
        .unwrap();
    assert_eq!((report.total, report.ok), (12, 11));
    assert_eq!(report.bad.len(), 1);
    assert_eq!(report.bad[0].0, victim);
    assert!(report.bad[0].1.is_authentication(), "{}", report.bad[0].1);
    assert_eq!(progress.snapshot().failed, 1);
}

#[tokio::test]
async fn shred_makes_a_tenant_unrecoverable_and_spares_the_others() {
    let ring = keyring(&["tenant-acme", "tenant-globex"]);
    let store = EncryptedStore::new(
        object_store::memory::InMemory::new(),
        ring.clone(),
        TenantPrefix::new(),
    );
    for i in 0..6 {
        for tenant in ["acme", "globex"] {
            store
                .put(&format!("{tenant}/{i}").into(), payload(i).into())
                .await
                .unwrap();
        }
    }
    let report = store
        .shred(&ring, &key("tenant-acme"), &"acme".into(), 4)
        .await
        .unwrap();
    assert_eq!((report.objects, report.unrecoverable), (6, 6));
    assert!(report.readable.is_empty() && report.other.is_empty());
    let err = store.get(&"acme/3".into()).await.unwrap_err();
    let err = common::store_error(&err);
    assert_eq!(
        err.unavailable_reason(),
        Some(KeyUnavailable::Destroyed),
        "{err}"
    );
    let err = store.get_range(&"acme/3".into(), 0..3).await.unwrap_err();
    assert_eq!(
        common::store_error(&err).unavailable_reason(),
        Some(KeyUnavailable::Destroyed)
    );
    for i in 0..6 {
        let got = store.get(&format!("globex/{i}").into()).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), payload(i).as_slice());
    }
    // Rewrap cannot resurrect it either.
    let rewrap = store
        .rewrap(Some(&"acme".into()), 2, &Progress::new())
        .await
        .unwrap();
    assert_eq!(rewrap.failed.len(), 6);
}
