//! Segmented AES-256-GCM streaming encryption: bounded memory for any length, authenticated
//! random access, and byte-for-byte compatibility with Google Tink's AES256_GCM_HKDF
//! streaming AEAD.
//!
//! Two tiers, as in `age`:
//!
//! - one-shot [`seal`] / [`open`] for data already in memory;
//! - streaming [`Encryptor`] (`Write`), [`Decryptor`] (`Read`) and [`SeekableDecryptor`]
//!   (`Read + Seek`, plus [`SeekableDecryptor::read_at`] for concurrent positional reads).
//!
//! The byte format (atrest STREAM v1) is specified in `docs/FORMAT.md`: a 42-byte header
//! (magic, version, suite, segment size, random salt), a per-stream key derived with
//! HKDF-SHA256 from the data key, the salt, the header and the caller's associated data, and
//! segments sealed with a 64-bit counter plus a last-segment flag as nonce. [`Options::tink`]
//! selects Tink's format instead; the engine is the same.
//!
//! ```
//! use atrest_stream::{Key256, open, seal};
//!
//! let key = Key256::generate(atrest_crypto::DEFAULT_PROVIDER)?;
//! let sealed = seal(&key, b"tenant=acme;object=invoice-17", b"attachment bytes")?;
//! let opened = open(&key, b"tenant=acme;object=invoice-17", &sealed)?;
//! assert_eq!(opened, b"attachment bytes");
//!
//! // The associated data must match: a blob moved to another object does not decrypt.
//! let moved = open(&key, b"tenant=acme;object=invoice-18", &sealed);
//! assert!(matches!(moved, Err(atrest_stream::Error::Authentication)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! - Plaintext is released only from segments whose tag verified; end of stream is reported
//!   only after the final segment authenticated as final.
//! - Every segment is bound to the whole header and to the associated data.
//! - Keys ([`Key256`]) and plaintext buffers are zeroized on drop.
//! - A header's segment size is validated (and capped by [`Options::max_segment_size`])
//!   before anything is allocated from it.

mod decryptor;
mod encryptor;
mod error;
mod layout;
mod oneshot;
mod options;
mod parallel;
mod seekable;

pub use atrest_crypto::Key256;
pub use decryptor::Decryptor;
pub use encryptor::Encryptor;
pub use error::{Error, HeaderError, MisuseError};
pub use layout::Layout;
pub use oneshot::{open, seal};
pub use parallel::PARALLEL_MIN_BYTES;
pub use options::{
    DEFAULT_SEGMENT_SIZE, Format, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, Options, TINK_1MB, TINK_4KB,
    TINK_MAX_CIPHERTEXT_SEGMENT_SIZE, TINK_MIN_CIPHERTEXT_SEGMENT_SIZE,
};

impl Options {
    /// Starts an [`Encryptor`] with these options.
    ///
    /// # Errors
    /// As [`Encryptor::new`].
    pub fn encryptor<W: std::io::Write>(
        &self,
        inner: W,
        key: &Key256,
        aad: &[u8],
    ) -> Result<Encryptor<W>, Error> {
        Encryptor::with_options(inner, key, aad, self)
    }

    /// Starts a [`Decryptor`] with these options.
    ///
    /// # Errors
    /// As [`Decryptor::new`].
    pub fn decryptor<R: std::io::Read>(
        &self,
        inner: R,
        key: &Key256,
        aad: &[u8],
    ) -> Result<Decryptor<R>, Error> {
        Decryptor::with_options(inner, key, aad, self)
    }

    /// Opens a [`SeekableDecryptor`] with these options.
    ///
    /// # Errors
    /// As [`SeekableDecryptor::new`].
    pub fn seekable_decryptor<R: std::io::Read + std::io::Seek>(
        &self,
        inner: R,
        key: &Key256,
        aad: &[u8],
    ) -> Result<SeekableDecryptor<R>, Error> {
        SeekableDecryptor::with_options(inner, key, aad, self)
    }
}
pub use seekable::SeekableDecryptor;
