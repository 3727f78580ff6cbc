//! Times the rewrap job over N objects on the local filesystem:
//! `cargo run --release -p atrest-store --example rewrap_bench -- [N] [SIZE] [CONCURRENCY]
//! [attached|detached]` (defaults: 20000 objects of 1024 bytes, 64 at once, attached).
//!
//! The objects go to a fresh directory under `$TMPDIR`. On ext4, creating many files soon
//! after deleting many (an earlier run's cleanup) is slower: the inode allocator skips
//! recently freed inodes. Leave a minute between runs, or compare with `TMPDIR=/dev/shm`.

#![allow(clippy::unwrap_used, reason = "example")]

use std::sync::Arc;
use std::time::Instant;

use atrest_keyring::{KeyId, Keyring, Timestamp};
use atrest_store::{Config, EncryptedStore, Headers, Progress, SharedKeyring, TenantPrefix};
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .take(3)
        .map(|a| a.parse::<usize>().unwrap());
    let n = args.next().unwrap_or(20_000);
    let size = args.next().unwrap_or(1024);
    let concurrency = args.next().unwrap_or(64);
    let headers = match std::env::args().nth(4).as_deref() {
        None | Some("attached") => Headers::Attached,
        Some("detached") => Headers::Detached,
        Some(other) => {
            eprintln!("placement must be attached or detached, not {other}");
            std::process::exit(2);
        }
    };

    let dir = std::env::temp_dir().join(format!("atrest-rewrap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = KeyId::new("tenant-bench").unwrap();
    let ring = Arc::new(SharedKeyring::new(Keyring::new()));
    ring.write().create_key(&key, Timestamp::now()).unwrap();
    let store = EncryptedStore::with_config(
        LocalFileSystem::new_with_prefix(&dir).unwrap(),
        ring.clone(),
        TenantPrefix::new(),
        Config::default().headers(headers),
    );

    let payload = vec![0x5au8; size];
    let started = Instant::now();
    futures_util::stream::iter(0..n)
        .map(|i| {
            let store = &store;
            let payload = payload.clone();
            async move {
                let path = Path::from(format!("bench/{:02}/{i}", i % 64));
                store.put(&path, payload.into()).await.unwrap();
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    println!(
        "put {n} objects of {size} B ({headers:?} headers) in {:?}",
        started.elapsed()
    );

    ring.write().rotate(&key, Timestamp::now()).unwrap();
    let progress = Progress::new();
    let started = Instant::now();
    let report = store
        .rewrap(Some(&Path::from("bench")), concurrency, &progress)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(report.failed.is_empty(), "{:?}", report.failed.first());
    println!(
        "rewrap: {} objects in {elapsed:?} = {:.0} objects/s, {} bytes rewritten ({:.0} B/object)",
        report.rewritten,
        report.rewritten as f64 / elapsed.as_secs_f64(),
        report.bytes_rewritten,
        report.bytes_rewritten as f64 / report.rewritten.max(1) as f64,
    );
    let started = Instant::now();
    let again = store
        .rewrap(Some(&Path::from("bench")), concurrency, &Progress::new())
        .await
        .unwrap();
    println!(
        "rerun (idempotent): {} unchanged in {:?}",
        again.unchanged,
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

use futures_util::StreamExt;
