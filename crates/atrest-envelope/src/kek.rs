//! The boundary between envelopes and whatever holds key-encryption keys (KEKs).
//!
//! An envelope never sees KEK material: it asks a [`KeyWrapper`] to wrap a fresh data key under
//! the primary version of a named key, and to unwrap a [`WrappedKey`] it finds in a header. The
//! local keyring (`atrest-keyring`) implements it with [`local::wrap`] / [`local::unwrap`];
//! external KMSs (Vault Transit, AWS KMS) implement it by calling the KMS.

use atrest_crypto::{CryptoProvider, Key256};
use zeroize::Zeroize;

use crate::context::Context;
use crate::header::{MAGIC, SUITE, VERSION};

/// The name of a key in a keyring, e.g. one per tenant: `"tenant-42"`.
///
/// 1..=255 bytes of UTF-8 (it is stored in headers with a one-byte length).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The longest key id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates and wraps a key id.
    ///
    /// # Errors
    /// [`WrapError::InvalidKeyId`] if `id` is empty or longer than 255 bytes.
    pub fn new(id: impl Into<String>) -> Result<Self, WrapError> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(WrapError::InvalidKeyId);
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A data key wrapped by one version of a named KEK, as stored in an envelope header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Which key wrapped it.
    pub key_id: KeyId,
    /// Which version of that key.
    pub version: u32,
    /// The wrapped data key (opaque to the envelope; its format is the wrapper's).
    pub ciphertext: Vec<u8>,
}

/// Why a key version cannot be used right now. Each is a deliberate state, not corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyUnavailable {
    /// Below the key's `min_decryption_version`: retired, no longer allowed to decrypt.
    #[error("retired (below the minimum decryption version)")]
    Retired,
    /// Disabled by an operator (reversible).
    #[error("disabled")]
    Disabled,
    /// Scheduled for destruction; restorable until the window ends, unusable meanwhile.
    #[error("scheduled for destruction")]
    ScheduledForDestruction,
    /// Destroyed: the key material was wiped (crypto-shredded). Data under it is gone for good.
    #[error("destroyed: its key material was wiped, data encrypted under it is unrecoverable")]
    Destroyed,
    /// The version may decrypt but not encrypt (below `min_encryption_version`).
    #[error("decrypt-only")]
    DecryptOnly,
}

/// Wrapping a data key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WrapError {
    /// A key id that is empty or longer than 255 bytes.
    #[error("key id must be 1..=255 bytes")]
    InvalidKeyId,
    /// No key of that name.
    #[error("no key named '{0}'")]
    KeyNotFound(KeyId),
    /// The key has no version that may encrypt.
    #[error("key '{key_id}' version {version} cannot encrypt: {reason}")]
    Unavailable {
        /// The key.
        key_id: KeyId,
        /// The version that was asked for (the primary).
        version: u32,
        /// Why it cannot be used.
        reason: KeyUnavailable,
    },
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// The key store or KMS failed (I/O, network, ...). The message names the backend.
    #[error("key backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Unwrapping a data key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnwrapError {
    /// No key of that name.
    #[error("no key named '{0}'")]
    KeyNotFound(KeyId),
    /// The key exists but not that version.
    #[error("key '{key_id}' has no version {version}")]
    VersionNotFound {
        /// The key.
        key_id: KeyId,
        /// The missing version.
        version: u32,
    },
    /// The version exists but may not decrypt now (retired, disabled, destroyed, ...).
    #[error("key '{key_id}' version {version} cannot decrypt: {reason}")]
    Unavailable {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: u32,
        /// Why it cannot be used.
        reason: KeyUnavailable,
    },
    /// The wrapped key did not authenticate under that KEK version: corrupted or not
    /// wrapped by it.
    #[error("wrapped data key failed authentication")]
    Authentication,
    /// The key store or KMS failed (I/O, network, ...).
    #[error("key backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a wrap is bound to: the blob's context entries that are not excluded from the wrap
/// (see [`Context::exclude_from_wrap`]; by default all of them), as pairs (for a KMS
/// encryption context) and as canonical bytes (the AAD of a local AEAD wrap).
///
/// ```text
/// aad = magic (89 61 74 65) || version (01) || suite (01) || u16(len(entries)) || entries
/// ```
///
/// where `entries` is the canonical context encoding of the bound entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapContext {
    context: Context,
    aad: Vec<u8>,
}

impl WrapContext {
    /// A wrap context binding every entry of `context` (exclusions in `context` are ignored:
    /// the caller chose these pairs).
    pub fn new(context: &Context) -> Self {
        let mut aad = Vec::with_capacity(8 + context.encoded_len());
        aad.extend_from_slice(&MAGIC);
        aad.push(VERSION);
        aad.push(SUITE);
        // Context lengths were checked when it was built or decoded (at most 4096).
        let len = u16::try_from(context.encoded_len()).unwrap_or(u16::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        context.encode(&mut aad);
        Self {
            context: context.without_exclusions(),
            aad,
        }
    }

    /// The bound pairs.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The canonical bytes of the bound pairs (equal for equal pairs).
    pub fn aad(&self) -> &[u8] {
        &self.aad
    }
}

/// What an envelope asks of [`KeyWrapper::generate`].
#[derive(Clone, Copy, Debug)]
pub struct DataKeyRequest {
    provider: &'static CryptoProvider,
    plaintext_len: Option<u64>,
}

impl DataKeyRequest {
    /// A request for a data key from `provider`'s random source, for a blob of
    /// `plaintext_len` bytes if known.
    pub fn new(provider: &'static CryptoProvider, plaintext_len: Option<u64>) -> Self {
        Self {
            provider,
            plaintext_len,
        }
    }

    /// The crypto provider (its random source makes local data keys).
    pub fn provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// The blob's plaintext length, if the caller knows it (for caches with a byte limit).
    pub fn plaintext_len(&self) -> Option<u64> {
        self.plaintext_len
    }
}

/// Re-wrapping a data key failed: either its unwrap or its new wrap.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError {
    /// The existing wrap could not be unwrapped.
    #[error(transparent)]
    Unwrap(#[from] UnwrapError),
    /// The new wrap could not be made.
    #[error(transparent)]
    Wrap(#[from] WrapError),
}

/// Holds key-encryption keys and wraps/unwraps data keys with them.
///
/// A wrap is bound to a [`WrapContext`]; unwrapping with a different one must fail with
/// [`UnwrapError::Authentication`]. Implementations: the local keyring (`atrest-keyring`),
/// KMS clients (`atrest-kms`), and [`crate::cache::CachingWrapper`] around any of them.
pub trait KeyWrapper {
    /// Wraps `data_key` under the current primary version of `key_id`.
    ///
    /// # Errors
    /// [`WrapError::KeyNotFound`], [`WrapError::Unavailable`] if the key cannot encrypt,
    /// [`WrapError::Backend`] for store or KMS failures.
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError>;

    /// Unwraps a data key wrapped by [`KeyWrapper::wrap`] with any version that may still
    /// decrypt.
    ///
    /// # Errors
    /// See [`UnwrapError`]: each key state has its own error.
    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError>;

    /// A fresh data key and its wrap under the primary version of `key_id`.
    ///
    /// The default draws 256 random bits from the request's provider and calls
    /// [`KeyWrapper::wrap`]; a KMS overrides it with its own data-key call, a cache returns a
    /// recent key for the same key and context.
    ///
    /// # Errors
    /// As [`KeyWrapper::wrap`]; [`WrapError::Random`] if the random source fails.
    fn generate(
        &self,
        key_id: &KeyId,
        ctx: &WrapContext,
        request: &DataKeyRequest,
    ) -> Result<(Key256, WrappedKey), WrapError> {
        let mut bytes = [0u8; 32];
        let filled = request.provider().random.fill(&mut bytes);
        let key = Key256::from_bytes(bytes);
        bytes.zeroize();
        filled.map_err(|_| WrapError::Random)?;
        let wrapped = self.wrap(key_id, &key, ctx)?;
        Ok((key, wrapped))
    }

    /// Re-wraps a data key under the current primary version of `wrapped.key_id`.
    ///
    /// The default unwraps and wraps again; a KMS overrides it so the data key never leaves
    /// the KMS.
    ///
    /// # Errors
    /// [`RewrapError::Unwrap`] or [`RewrapError::Wrap`].
    fn rewrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<WrappedKey, RewrapError> {
        let key = self.unwrap(wrapped, ctx)?;
        Ok(self.wrap(&wrapped.key_id, &key, ctx)?)
    }

    /// Drops anything remembered about `key_id` (cached data keys, unwrapped keys). Call it
    /// after rotating, disabling or destroying that key, so revocation takes effect at once.
    /// The default does nothing (nothing is cached).
    fn forget(&self, key_id: &KeyId) {
        let _ = key_id;
    }
}

macro_rules! forward_key_wrapper {
    ($($ty:ty),*) => {$(
        impl<W: KeyWrapper + ?Sized> KeyWrapper for $ty {
            fn wrap(
                &self,
                key_id: &KeyId,
                data_key: &Key256,
                ctx: &WrapContext,
            ) -> Result<WrappedKey, WrapError> {
                (**self).wrap(key_id, data_key, ctx)
            }
            fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
                (**self).unwrap(wrapped, ctx)
            }
            fn generate(
                &self,
                key_id: &KeyId,
                ctx: &WrapContext,
                request: &DataKeyRequest,
            ) -> Result<(Key256, WrappedKey), WrapError> {
                (**self).generate(key_id, ctx, request)
            }
            fn rewrap(
                &self,
                wrapped: &WrappedKey,
                ctx: &WrapContext,
            ) -> Result<WrappedKey, RewrapError> {
                (**self).rewrap(wrapped, ctx)
            }
            fn forget(&self, key_id: &KeyId) {
                (**self).forget(key_id);
            }
        }
    )*};
}

forward_key_wrapper!(&W, Box<W>, std::sync::Arc<W>);

/// The local wrapping algorithm, for KEKs whose material is in this process (the keyring).
/// Specified in docs/FORMAT.md ("Local key wrap").
///
/// ```text
/// wrap_salt = 32 random bytes
/// wrap_key  = HKDF-SHA256(salt = wrap_salt, ikm = KEK,
///                         info = "atrest envelope v1 local wrap" || u8(len(key_id)) || key_id
///                                || u32(version) || aad, L = 32)
/// wrapped   = wrap_salt || AES-256-GCM(wrap_key, nonce = 0^96, aad = "", data_key)   (80 bytes)
/// ```
///
/// Every wrap uses a fresh key, so the all-zero nonce is never reused under one key unless two
/// 256-bit salts collide: the 2^32-messages-per-key limit of random-nonce AES-GCM does not
/// apply, and a KEK version can wrap far more than 2^32 data keys (after 2^64 wraps the chance
/// of any salt collision is below 2^-128).
pub mod local {
    use atrest_crypto::{CryptoProvider, Key256, NONCE_LEN, Nonce, TAG_LEN, Tag};
    use zeroize::Zeroize;

    use super::{KeyId, UnwrapError, WrapError};

    /// Length of a locally wrapped data key.
    pub const WRAPPED_LEN: usize = SALT_LEN + 32 + TAG_LEN;
    const SALT_LEN: usize = 32;
    const LABEL: &[u8] = b"atrest envelope v1 local wrap";

    fn wrap_key(
        provider: &CryptoProvider,
        kek: &Key256,
        salt: &[u8],
        key_id: &KeyId,
        version: u32,
        aad: &[u8],
    ) -> Option<Key256> {
        let id = key_id.as_str().as_bytes();
        let id_len = [u8::try_from(id.len()).ok()?];
        let mut okm = [0u8; 32];
        let info: [&[u8]; 5] = [LABEL, &id_len, id, &version.to_be_bytes(), aad];
        let ok = provider
            .hkdf_sha256
            .derive(salt, kek.expose_secret(), &info, &mut okm)
            .is_ok();
        let key = Key256::from_bytes(okm);
        okm.zeroize();
        ok.then_some(key)
    }

    /// Wraps `data_key` under `kek` (version `version` of `key_id`), bound to `aad`.
    ///
    /// # Errors
    /// [`WrapError::Random`] if the random source fails.
    pub fn wrap(
        provider: &CryptoProvider,
        kek: &Key256,
        key_id: &KeyId,
        version: u32,
        data_key: &Key256,
        aad: &[u8],
    ) -> Result<Vec<u8>, WrapError> {
        let mut out = vec![0u8; WRAPPED_LEN];
        provider
            .random
            .fill(&mut out[..SALT_LEN])
            .map_err(|_| WrapError::Random)?;
        let key = wrap_key(provider, kek, &out[..SALT_LEN], key_id, version, aad)
            .ok_or(WrapError::InvalidKeyId)?;
        let (salt_and_key, tag) = out.split_at_mut(SALT_LEN + 32);
        let body = &mut salt_and_key[SALT_LEN..];
        body.copy_from_slice(data_key.expose_secret());
        let t = provider
            .aes256_gcm
            .key(&key)
            .seal_in_place(&Nonce::from_bytes([0; NONCE_LEN]), &[], body)
            .map_err(|_| WrapError::Random)?;
        tag.copy_from_slice(t.as_bytes());
        Ok(out)
    }

    /// Unwraps a data key made by [`wrap`] with the same KEK, key id, version and `aad`.
    ///
    /// # Errors
    /// [`UnwrapError::Authentication`] if `wrapped` is malformed, was made with another KEK,
    /// key id, version or `aad`, or was modified.
    pub fn unwrap(
        provider: &CryptoProvider,
        kek: &Key256,
        key_id: &KeyId,
        version: u32,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Key256, UnwrapError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(UnwrapError::Authentication);
        }
        let key = wrap_key(provider, kek, &wrapped[..SALT_LEN], key_id, version, aad)
            .ok_or(UnwrapError::Authentication)?;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&wrapped[SALT_LEN + 32..]);
        let mut data_key = [0u8; 32];
        let opened = provider.aes256_gcm.key(&key).open_to(
            &Nonce::from_bytes([0; NONCE_LEN]),
            &[],
            &wrapped[SALT_LEN..SALT_LEN + 32],
            &Tag::from_bytes(tag),
            &mut data_key,
        );
        let result = opened.map(|()| Key256::from_bytes(data_key));
        data_key.zeroize();
        result.map_err(|_| UnwrapError::Authentication)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const P: &CryptoProvider = atrest_crypto::DEFAULT_PROVIDER;

        #[test]
        fn round_trip_and_binding() {
            let kek = Key256::from_bytes([1; 32]);
            let dk = Key256::from_bytes([2; 32]);
            let id = KeyId::new("tenant-1").expect("valid id");
            let w = wrap(P, &kek, &id, 3, &dk, b"blob").expect("wrap");
            assert_eq!(w.len(), WRAPPED_LEN);
            assert_eq!(unwrap(P, &kek, &id, 3, &w, b"blob").expect("unwrap"), dk);
            let other = KeyId::new("tenant-2").expect("valid id");
            for bad in [
                unwrap(P, &Key256::from_bytes([9; 32]), &id, 3, &w, b"blob"),
                unwrap(P, &kek, &other, 3, &w, b"blob"),
                unwrap(P, &kek, &id, 4, &w, b"blob"),
                unwrap(P, &kek, &id, 3, &w, b"other blob"),
                unwrap(P, &kek, &id, 3, &w[..79], b"blob"),
            ] {
                assert!(matches!(bad, Err(UnwrapError::Authentication)));
            }
            for i in 0..w.len() {
                let mut t = w.clone();
                t[i] ^= 0x80;
                assert!(matches!(
                    unwrap(P, &kek, &id, 3, &t, b"blob"),
                    Err(UnwrapError::Authentication)
                ));
            }
            let again = wrap(P, &kek, &id, 3, &dk, b"blob").expect("wrap");
            assert_ne!(w, again, "fresh salt per wrap");
        }
    }
}
