//! The provider abstraction: plain values of `&'static dyn` components.

use core::fmt;

use crate::{Error, Key256};

/// Length of an AES-GCM nonce in bytes (96 bits, the only size atrest uses).
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag in bytes (128 bits, never truncated).
pub const TAG_LEN: usize = 16;
/// The most plaintext AES-GCM may process under one nonce: 2^36 - 32 bytes (NIST SP 800-38D).
pub const AES_GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

/// Checks a plaintext length against [`AES_GCM_MAX_PLAINTEXT`]; every provider's seal calls it.
///
/// # Errors
/// [`Error::LengthLimit`] if `len` exceeds the limit.
pub fn check_aes_gcm_len(len: usize) -> Result<(), Error> {
    match u64::try_from(len) {
        Ok(len) if len <= AES_GCM_MAX_PLAINTEXT => Ok(()),
        _ => Err(Error::LengthLimit),
    }
}

/// A 96-bit AES-GCM nonce.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// Wraps nonce bytes.
    pub const fn from_bytes(bytes: [u8; NONCE_LEN]) -> Self {
        Self(bytes)
    }

    /// The nonce bytes.
    pub const fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }
}

/// A 128-bit AES-GCM authentication tag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag([u8; TAG_LEN]);

impl Tag {
    /// Wraps tag bytes.
    pub const fn from_bytes(bytes: [u8; TAG_LEN]) -> Self {
        Self(bytes)
    }

    /// The tag bytes.
    pub const fn as_bytes(&self) -> &[u8; TAG_LEN] {
        &self.0
    }
}

/// A set of cryptographic components that atrest uses; pass one to choose a backend.
///
/// Each backend crate exposes a `const PROVIDER: CryptoProvider`; [`crate::DEFAULT_PROVIDER`]
/// is the pure-Rust one. Providers must produce byte-identical output for identical inputs,
/// so data written with one provider is read by any other.
#[derive(Clone, Copy)]
pub struct CryptoProvider {
    /// A short name for diagnostics and benchmark labels, e.g. `"rustcrypto"`.
    pub name: &'static str,
    /// AES-256-GCM with 96-bit nonces and 128-bit tags.
    pub aes256_gcm: &'static dyn Aes256Gcm,
    /// HKDF (RFC 5869) with HMAC-SHA256.
    pub hkdf_sha256: &'static dyn HkdfSha256,
    /// A cryptographically secure random source.
    pub random: &'static dyn SecureRandom,
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// AES-256-GCM: turns a key into a ready-to-use [`AeadKey`].
pub trait Aes256Gcm: Send + Sync {
    /// Expands `key` (AES key schedule, GHASH key) for sealing and opening.
    fn key(&self, key: &Key256) -> Box<dyn AeadKey>;
}

/// An expanded AES-256-GCM key. Implementations zeroize their key schedule on drop.
///
/// Every method takes the plaintext or ciphertext length from its buffers; tags are detached.
pub trait AeadKey: Send + Sync {
    /// Encrypts `buf` in place and returns the tag.
    ///
    /// # Errors
    /// [`Error::LengthLimit`] if `buf` exceeds [`AES_GCM_MAX_PLAINTEXT`].
    fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> Result<Tag, Error>;

    /// Encrypts `plaintext` into `out` (same length) and returns the tag, without touching
    /// `plaintext`: no copy is needed when the caller's data is read-only.
    ///
    /// # Errors
    /// [`Error::BufferLength`] if the lengths differ, [`Error::LengthLimit`] as above.
    fn seal_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Tag, Error>;

    /// Verifies `tag` over `buf` and only then decrypts it in place.
    ///
    /// # Errors
    /// [`Error::Authentication`] if the tag does not verify; `buf` then holds no plaintext:
    /// either the untouched ciphertext (providers that verify before decrypting, such as
    /// RustCrypto) or zeros (providers that decrypt and verify in one pass, such as ring).
    fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &Tag,
    ) -> Result<(), Error>;

    /// Verifies `tag` over `ciphertext` and only then decrypts it into `out` (same length).
    ///
    /// # Errors
    /// [`Error::Authentication`] if the tag does not verify (`out` then holds no plaintext:
    /// it is left as it was or zeroed), [`Error::BufferLength`] if the lengths differ.
    fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error>;
}

/// HKDF with HMAC-SHA256 (RFC 5869).
pub trait HkdfSha256: Send + Sync {
    /// Extract-then-expand: fills `okm` from `ikm`, `salt` and the concatenation of `info`
    /// (passed in pieces so callers need not allocate to concatenate).
    ///
    /// # Errors
    /// [`Error::LengthLimit`] if `okm` is longer than 255 * 32 bytes.
    fn derive(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<(), Error>;
}

/// A cryptographically secure random source.
pub trait SecureRandom: Send + Sync {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    /// [`Error::Random`] if the source fails.
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error>;
}
