//! The keyring: one key per tenant (`tenant-<name>`), shared with the encrypted store, sealed
//! in `keyring.atrest` under the root key and saved after every change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atrest::crypto::DEFAULT_PROVIDER;
use atrest::envelope::KeyId;
use atrest::keyring::{EnvRoot, KeyFileRoot, Keyring, RootKey, Timestamp};
use atrest::store::SharedKeyring;
use axum::http::StatusCode;
use tokio::sync::{Mutex, MutexGuard};

use super::error::{ApiError, ApiResult};

/// The shared keyring and where (and under what) it is persisted.
pub(crate) struct Keys {
    keyring: Arc<SharedKeyring>,
    root: Arc<dyn RootKey + Send + Sync>,
    path: PathBuf,
    /// Held across "change, then save": two saves racing could otherwise leave the older
    /// snapshot on disk (saves are atomic, but last-writer-wins).
    file: Mutex<()>,
}

/// Held while the keyring is changed and saved; see [`Keys::lock`].
pub(crate) struct FileLock<'a> {
    _guard: MutexGuard<'a, ()>,
}

impl Keys {
    /// Loads `keyring.atrest` from `data_dir`, or starts an empty one. The root key comes from
    /// `ATREST_ROOT_KEY` if `from_env`, else from `root.key`, generated (0600) on first start.
    pub(crate) fn open(data_dir: &Path, from_env: bool) -> Result<Self, String> {
        let path = data_dir.join("keyring.atrest");
        let exists = path
            .try_exists()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let root: Arc<dyn RootKey + Send + Sync> = if from_env {
            eprintln!("root key: from {}", EnvRoot::DEFAULT_VAR);
            Arc::new(EnvRoot::new())
        } else {
            let key_file = data_dir.join("root.key");
            if key_file.exists() {
                eprintln!("root key: {}", key_file.display());
                Arc::new(KeyFileRoot::new(key_file))
            } else if exists {
                return Err(format!(
                    "{} exists but {} does not: restore the root key file (or set {})",
                    path.display(),
                    key_file.display(),
                    EnvRoot::DEFAULT_VAR
                ));
            } else {
                let root = KeyFileRoot::generate(&key_file, DEFAULT_PROVIDER)
                    .map_err(|e| format!("cannot create the root key: {e}"))?;
                eprintln!(
                    "root key: generated {} (0600; back it up)",
                    key_file.display()
                );
                Arc::new(root)
            }
        };
        let keyring = if exists {
            // A save interrupted by a crash leaves a temp file next to the keyring.
            atrest::keyring::remove_stale_temp_files(&path)
                .map_err(|e| format!("cannot clean up next to the keyring: {e}"))?;
            Keyring::load(&path, &*root)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?
        } else {
            let keyring = Keyring::new();
            keyring
                .save(&path, &*root)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            keyring
        };
        Ok(Self {
            keyring: Arc::new(SharedKeyring::new(keyring)),
            root,
            path,
            file: Mutex::new(()),
        })
    }

    /// The keyring the store wraps and unwraps with.
    pub(crate) fn shared(&self) -> &Arc<SharedKeyring> {
        &self.keyring
    }

    /// Serializes keyring changes; hold it from the change until [`Keys::save`] returned.
    pub(crate) async fn lock(&self) -> FileLock<'_> {
        FileLock {
            _guard: self.file.lock().await,
        }
    }

    /// Seals the keyring to its file (atomically: temp file, fsync, rename).
    pub(crate) async fn save(&self, _lock: &FileLock<'_>) -> ApiResult<()> {
        let (keyring, root, path) = (
            Arc::clone(&self.keyring),
            Arc::clone(&self.root),
            self.path.clone(),
        );
        tokio::task::spawn_blocking(move || keyring.read().save(&path, &*root))
            .await
            .map_err(|e| ApiError::internal("keyring save task", &e))?
            .map_err(|e| ApiError::internal("keyring changed in memory but not saved", &e))
    }

    /// Applies `change` to the keyring and saves it.
    pub(crate) async fn change<R>(
        &self,
        change: impl FnOnce(&mut Keyring) -> Result<R, atrest::keyring::Error>,
    ) -> ApiResult<R> {
        let lock = self.lock().await;
        let result = change(&mut self.keyring.write()).map_err(keyring_error)?;
        self.save(&lock).await?;
        Ok(result)
    }

    /// Makes sure `tenant` has a usable key, creating it if needed. The caller holds `lock`
    /// (a sign-up creates the key, then the tenant's rows). A key left by a sign-up that
    /// failed after creating it is adopted; a shredded one is refused.
    pub(crate) async fn ensure_tenant_key(
        &self,
        lock: &FileLock<'_>,
        tenant: &str,
    ) -> ApiResult<()> {
        let key_id = tenant_key_id(tenant)?;
        {
            let mut keyring = self.keyring.write();
            if keyring.contains(&key_id) {
                let shredded = keyring
                    .status()
                    .keys
                    .iter()
                    .any(|k| k.key_id == key_id && k.shredded);
                return if shredded {
                    Err(ApiError::shredded())
                } else {
                    Ok(())
                };
            }
            keyring
                .create_key(&key_id, Timestamp::now())
                .map_err(keyring_error)?;
        }
        self.save(lock).await
    }
}

/// The key of a tenant, as `atrest::store::TenantPrefix` names it.
pub(crate) fn tenant_key_id(tenant: &str) -> ApiResult<KeyId> {
    KeyId::new(format!("tenant-{tenant}"))
        .map_err(|_| ApiError::bad_request("invalid_tenant", "not a valid tenant name"))
}

/// Keyring refusals (unknown key, shredded key ...) as API errors.
pub(crate) fn keyring_error(err: atrest::keyring::Error) -> ApiError {
    match err {
        atrest::keyring::Error::KeyNotFound(_) => ApiError::not_found("the tenant has no key"),
        atrest::keyring::Error::Shredded(_) | atrest::keyring::Error::Destroyed { .. } => {
            ApiError::shredded()
        }
        atrest::keyring::Error::TooManyVersions(_) | atrest::keyring::Error::TooManyKeys => {
            ApiError::new(StatusCode::CONFLICT, "keyring_full", err.to_string())
        }
        err => ApiError::internal("keyring", &err),
    }
}
