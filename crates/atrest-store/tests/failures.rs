//! Inner-store failures surface as clear errors with the path; failed or cancelled uploads
//! leave nothing visible.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use atrest_store::EncryptedStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use common::{FailingStore, Fault, FaultKind, key, keyring};

fn store() -> EncryptedStore<FailingStore> {
    let ring = keyring(&["k"]);
    let config = atrest_store::Config::default().part_size(64 << 10);
    EncryptedStore::with_config(
        FailingStore::new(),
        ring,
        atrest_store::SingleKey(key("k")),
        config,
    )
}

fn fault(op: &'static str, after: usize, kind: FaultKind) -> Fault {
    Fault { op, after, kind }
}

async fn invisible(store: &EncryptedStore<FailingStore>, path: &Path) {
    let err = store.head(path).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    let listed = futures_util::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
        .await
        .unwrap();
    assert!(listed.iter().all(|m| &m.location != path), "{listed:?}");
}

#[tokio::test]
async fn inner_errors_keep_their_kind_and_path() {
    let store = store();
    let path = Path::from("docs/a.txt");
    let err = store.get(&path).await.unwrap_err();
    assert!(
        matches!(&err, object_store::Error::NotFound { path: p, .. } if p == "docs/a.txt"),
        "{err}"
    );
    store.put(&path, vec![7u8; 200_000].into()).await.unwrap();

    store
        .inner()
        .fail(fault("get_opts", 0, FaultKind::Precondition));
    let err = store.get(&path).await.unwrap_err();
    assert!(
        matches!(&err, object_store::Error::Precondition { path: p, .. } if p == "docs/a.txt"),
        "{err}"
    );
    store.inner().clear();

    // The body read of a ranged get fails after the header read succeeded.
    store
        .inner()
        .fail(fault("get_range", 1, FaultKind::Network));
    let err = store.get_range(&path, 150_000..150_010).await.unwrap_err();
    assert!(
        err.to_string().contains("injected get_range failure"),
        "{err}"
    );
    store.inner().clear();
    assert_eq!(
        store
            .get_range(&path, 150_000..150_003)
            .await
            .unwrap()
            .as_ref(),
        [7, 7, 7]
    );

    // The object vanishes between the header read and the body read: retried, then reported.
    store
        .inner()
        .fail(fault("get_range", 1, FaultKind::NotFound));
    assert_eq!(
        store
            .get_range(&path, 150_000..150_003)
            .await
            .unwrap()
            .as_ref(),
        [7, 7, 7]
    );
    store.inner().clear();

    store.inner().fail(fault("put_opts", 0, FaultKind::Network));
    let err = store
        .put(&"docs/b.txt".into(), "x".into())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("injected put_opts failure"),
        "{err}"
    );
    invisible(&store, &"docs/b.txt".into()).await;
}

#[tokio::test]
async fn failed_or_cancelled_uploads_leave_nothing_visible() {
    let store = store();
    let chunk = vec![1u8; 50_000];

    // A part fails.
    let path = Path::from("up/part-fails");
    store.inner().fail(fault("put_part", 1, FaultKind::Network));
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    let mut failed = false;
    // The encryptor may hold a few segments before ciphertext reaches the inner upload.
    for _ in 0..20 {
        failed |= upload.put_part(chunk.clone().into()).await.is_err();
    }
    assert!(failed);
    upload.abort().await.unwrap();
    invisible(&store, &path).await;
    store.inner().clear();

    // Completing fails.
    let path = Path::from("up/complete-fails");
    store.inner().fail(fault("complete", 0, FaultKind::Network));
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    assert!(upload.complete().await.is_err());
    invisible(&store, &path).await;
    store.inner().clear();

    // Cancelled: dropped before complete.
    let path = Path::from("up/dropped");
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    drop(upload);
    invisible(&store, &path).await;

    // Aborted.
    let path = Path::from("up/aborted");
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(chunk.clone().into()).await.unwrap();
    upload.abort().await.unwrap();
    invisible(&store, &path).await;

    // A copy whose write fails leaves no destination.
    store
        .put(&"up/src".into(), chunk.clone().into())
        .await
        .unwrap();
    store.inner().fail(fault("put_opts", 0, FaultKind::Network));
    assert!(
        store
            .copy(&"up/src".into(), &"up/dst".into())
            .await
            .is_err()
    );
    invisible(&store, &"up/dst".into()).await;
    store.inner().clear();
    let inner: &dyn ObjectStore = store.inner();
    assert!(inner.head(&"up/src".into()).await.is_ok());
}
