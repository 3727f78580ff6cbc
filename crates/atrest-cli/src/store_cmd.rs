//! `atrest store ...`: an atrest-store `EncryptedStore` over a local directory. Objects are
//! envelope-encrypted with the keyring's keys (by default key `tenant-<first path segment>`,
//! or one `--key` for everything) and bound to their path.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use atrest_keyring::KeyId;
use atrest_store::{
    Config, EncryptedStore, Headers, Progress, SharedKeyring, SingleKey, TenantPrefix,
};
use futures_util::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};

use crate::cli::{Global, StoreArgs, StoreCommand};
use crate::failure::{Code, Failure};
use crate::output::{Kind, Output, open_input};
use crate::root;
use crate::units::format_bytes;

type Store = EncryptedStore<Arc<dyn ObjectStore>>;

/// Runs a store subcommand.
///
/// # Errors
/// Keyring, store, key and I/O errors; exit 3 when `verify` finds bad objects.
pub(crate) fn run(global: &Global, args: StoreArgs) -> anyhow::Result<()> {
    let inner = open_inner(&args.store)?;
    let loaded = root::load(global)?;
    let root_key = loaded.root;
    let shared = Arc::new(SharedKeyring::new(loaded.keyring));
    let headers = if args.detached_headers {
        Headers::Detached
    } else {
        Headers::Attached
    };
    let config = Config::default()
        .headers(headers)
        .provider(args.provider.get());
    let store = match &args.key {
        Some(name) => {
            EncryptedStore::with_config(inner, shared.clone(), SingleKey(key_id(name)?), config)
        }
        None => EncryptedStore::with_config(inner, shared.clone(), TenantPrefix::new(), config),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        StoreCommand::Put { file, path } => runtime.block_on(put(&store, &file, &path)),
        StoreCommand::Get {
            path,
            output,
            force,
            range,
        } => runtime.block_on(get(&store, &path, &output, force, range)),
        StoreCommand::Ls { prefix } => runtime.block_on(ls(&store, prefix.as_deref())),
        StoreCommand::Rm { path } => runtime.block_on(async {
            store.delete(&object_path(&path)?).await?;
            println!("removed {path}");
            Ok(())
        }),
        StoreCommand::Rewrap {
            prefix,
            concurrency,
        } => {
            let prefix = prefix.as_deref().map(object_path).transpose()?;
            let progress = Progress::new();
            let report = with_progress(&progress, "rewrapping", || {
                runtime.block_on(store.rewrap(prefix.as_ref(), concurrency, &progress))
            })?;
            println!(
                "rewrap: {} objects, {} rewritten ({} written), {} already current, {} failed",
                report.total,
                report.rewritten,
                format_bytes(report.bytes_rewritten),
                report.unchanged,
                report.failed.len()
            );
            for (path, err) in &report.failed {
                println!("failed: {path}: {err}");
            }
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(Failure::new(
                    Code::Generic,
                    format!("{} objects could not be rewrapped", report.failed.len()),
                )
                .hint(
                    "they are untouched; fix the cause and run the rewrap again (it is idempotent)",
                )
                .into())
            }
        }
        StoreCommand::Gc { grace, concurrency } => {
            if !args.detached_headers {
                return Err(Failure::new(
                    Code::Usage,
                    "gc only applies to stores with detached headers",
                )
                .hint("add --detached-headers if this store uses them")
                .into());
            }
            let report = runtime.block_on(store.collect_garbage(grace, concurrency))?;
            println!(
                "gc: {} headers, {} in use, {} unused but recent, {} deleted, {} failed",
                report.headers,
                report.referenced,
                report.recent,
                report.deleted,
                report.failed.len()
            );
            for (path, err) in &report.failed {
                println!("failed: {path}: {err}");
            }
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(Failure::new(
                    Code::Generic,
                    format!("{} headers could not be deleted", report.failed.len()),
                )
                .hint("run gc again")
                .into())
            }
        }
        StoreCommand::Verify {
            prefix,
            concurrency,
        } => {
            let prefix = prefix.as_deref().map(object_path).transpose()?;
            let progress = Progress::new();
            let report = with_progress(&progress, "verifying", || {
                runtime.block_on(store.scrub(prefix.as_ref(), concurrency, &progress))
            })?;
            println!(
                "verify: {} objects, {} ok, {} bad",
                report.total,
                report.ok,
                report.bad.len()
            );
            for (path, err) in &report.bad {
                println!("bad: {path}: {err}");
            }
            if report.bad.is_empty() {
                Ok(())
            } else {
                Err(Failure::new(
                    Code::Integrity,
                    format!("{} objects failed verification", report.bad.len()),
                )
                .hint("restore them from a good copy")
                .into())
            }
        }
        StoreCommand::Shred {
            key,
            prefix,
            concurrency,
            yes,
        } => {
            if !yes {
                return Err(Failure::new(
                    Code::Usage,
                    format!("refusing to shred key '{key}' without --yes"),
                )
                .hint("every object under it becomes unrecoverable; add --yes to confirm")
                .into());
            }
            let id = key_id(&key)?;
            let prefix = object_path(&prefix)?;
            let report = runtime.block_on(store.shred(&shared, &id, &prefix, concurrency))?;
            shared
                .read()
                .save(&global.keyring, root_key.as_ref())
                .with_context(|| format!("saving keyring {}", global.keyring.display()))?;
            println!(
                "shred: key '{key}' destroyed; {} objects under {prefix}: {} unrecoverable, {} still readable (other keys), {} other errors",
                report.objects,
                report.unrecoverable,
                report.readable.len(),
                report.other.len()
            );
            Ok(())
        }
    }
}

/// The inner (ciphertext) store: a local directory, or `s3://bucket/prefix`.
fn open_inner(spec: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if let Some(rest) = spec.strip_prefix("s3://") {
        return s3(rest);
    }
    std::fs::create_dir_all(spec).with_context(|| format!("creating store directory {spec}"))?;
    let local =
        LocalFileSystem::new_with_prefix(spec).with_context(|| format!("opening store {spec}"))?;
    Ok(Arc::new(local))
}

/// `bucket/prefix` on S3; endpoint, region and credentials from the AWS_* variables.
#[cfg(feature = "s3")]
fn s3(rest: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Failure::new(Code::Usage, "expected --store s3://BUCKET[/PREFIX]").into());
    }
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .context("configuring S3 from the AWS_* environment variables")?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)))
    }
}

#[cfg(not(feature = "s3"))]
fn s3(_: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Err(
        Failure::new(Code::Usage, "this atrest was built without S3 support")
            .hint("rebuild it with `--features s3`, or give a local directory as --store")
            .into(),
    )
}

fn key_id(name: &str) -> anyhow::Result<KeyId> {
    KeyId::new(name)
        .map_err(|_| Failure::new(Code::Usage, format!("invalid key name '{name}'")).into())
}

fn object_path(path: &str) -> anyhow::Result<ObjectPath> {
    ObjectPath::parse(path).map_err(|err| {
        Failure::new(Code::Usage, format!("invalid object path '{path}': {err}")).into()
    })
}

async fn put(store: &Store, file: &str, path: &str) -> anyhow::Result<()> {
    let location = object_path(path)?;
    let mut input = open_input(file)?;
    let mut bytes = Vec::with_capacity(usize::try_from(input.len.unwrap_or(0)).unwrap_or(0));
    input
        .reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", input.name))?;
    let len = bytes.len() as u64;
    store.put(&location, bytes.into()).await?;
    println!("put {path} ({})", format_bytes(len));
    Ok(())
}

async fn get(
    store: &Store,
    path: &str,
    output: &str,
    force: bool,
    range: Option<(u64, u64)>,
) -> anyhow::Result<()> {
    let location = object_path(path)?;
    let bytes = match range {
        Some((start, end)) => store.get_range(&location, start..end).await?,
        None => store.get(&location).await?.bytes().await?,
    };
    let mut out = Output::create(output, force, Kind::Plaintext)?;
    out.write_all(&bytes).context("writing the object")?;
    out.commit()
}

async fn ls(store: &Store, prefix: Option<&str>) -> anyhow::Result<()> {
    let prefix = prefix.map(object_path).transpose()?;
    let mut objects: Vec<_> = store.list(prefix.as_ref()).try_collect().await?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    for meta in &objects {
        println!("{:>12}  {}", meta.size, meta.location);
    }
    Ok(())
}

/// Runs `job` with a live count on stderr when it is a terminal.
fn with_progress<T>(progress: &Progress, verb: &str, job: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return job();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let s = progress.snapshot();
                eprint!(
                    "\r{verb}: {}/{} objects, {} failed",
                    s.done, s.total, s.failed
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            eprint!("\r\x1b[2K");
        });
        let result = job();
        done.store(true, Ordering::Relaxed);
        result
    })
}
