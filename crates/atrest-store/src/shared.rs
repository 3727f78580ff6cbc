//! A keyring shared between a store (which wraps and unwraps) and operators (who rotate and
//! shred).

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use atrest_envelope::{KeyWrapper, UnwrapError, WrapContext, WrapError, WrappedKey};
use atrest_keyring::Keyring;
use atrest_stream::Key256;

/// A [`Keyring`] behind a read-write lock: the store wraps and unwraps under the read lock,
/// key operations (create, rotate, shred) take the write lock.
#[derive(Debug, Default)]
pub struct SharedKeyring(RwLock<Keyring>);

impl SharedKeyring {
    /// Shares `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self(RwLock::new(keyring))
    }

    /// Read access (status, persisting with `Keyring::save`).
    pub fn read(&self) -> RwLockReadGuard<'_, Keyring> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access (create_key, rotate, shred ...).
    pub fn write(&self) -> RwLockWriteGuard<'_, Keyring> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyWrapper for SharedKeyring {
    fn wrap(
        &self,
        key_id: &atrest_envelope::KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        self.read().wrap(key_id, data_key, ctx)
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        self.read().unwrap(wrapped, ctx)
    }
}
