//! Segmented AES-256-GCM streaming encryption: bounded memory for any length, authenticated
//! random access, and byte-for-byte compatibility with Google Tink's AES256_GCM_HKDF
//! streaming AEAD.
//!
//! Two tiers, as in `age`:
//!
//! - one-shot [`seal`] / [`open`] for data already in memory, and [`seal_in_place`] /
//!   [`open_in_place`] when it is in a `Vec` you own (no second, plaintext-sized buffer);
//! - streaming [`Encryptor`] (`Write`), [`Decryptor`] (`Read`) and [`SeekableDecryptor`]
//!   (`Read + Seek`, plus [`SeekableDecryptor::read_at`] for concurrent positional reads);
//! - with the `tokio` feature, their async twins in the `tokio` module.
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
//! # Parallelism
//!
//! [`Options::threads`] sets how many worker threads seal and open segments (`0`, the
//! default, is automatic; `1` is the sequential code path, unchanged). Output is byte-for-byte
//! the same for every setting, and so are errors.
//!
//! - **Pool.** Workers are the calling thread plus a persistent rayon pool of `workers - 1`
//!   threads (one pool per distinct count, built on first use; never rayon's global pool,
//!   whose idle threads would compete for the cores). Nothing is spawned per batch. I/O
//!   always stays on the caller's thread, so readers and writers need not be `Send`.
//! - **In memory** ([`Options::seal`], [`Options::open`]): each segment is sealed straight
//!   from the input into its place in the output by one worker (read, sealed and written
//!   while in that worker's cache). No memory beyond the output. [`Options::seal_in_place`]
//!   is one pipeline: workers seal segment after segment where it lies while the calling
//!   thread moves each sealed one to its place, still in cache. [`Options::open_in_place`]
//!   is the mirror image: workers open segments into a ring of scratch slots while the
//!   calling thread copies each opened one down.
//! - **Streams** ([`Encryptor`], [`Decryptor`]): each stream keeps a ring of `2 × workers`
//!   segment slots (and at least 256 KiB of plaintext) across `write`/`read` calls. An
//!   encryptor's caller copies plaintext into the next free slot and queues it when full;
//!   a decryptor's caller reads the next segment's ciphertext into it and queues it. Pool
//!   helpers seal or open queued slots in the background; the caller writes or releases
//!   them in stream order as they come, and does queued ones itself while the next is not
//!   ready. Nobody waits at a batch boundary,
//!   so 8 KiB writes and reads (`io::copy`) scale like large ones, and a helper returns as
//!   soon as nothing is queued, so an idle stream holds no pool thread. Given a large
//!   slice, an encryptor seals full segments straight from it (no copy) through the same
//!   slots.
//! - **Caller-owned buffers** ([`Encryptor::write_in_place`]): on one thread, full segments
//!   are sealed where they lie in the caller's buffer and written with their tag, so a
//!   provider that seals only in place (ring) streams at its in-place speed; `write` of a
//!   read-only slice must copy each segment first. With workers it is `write_all`.
//!   [`Encryptor::copy_from`] is `io::copy` from a reader through such a buffer.
//! - **Memory bound.** An encryptor holds at most its ring (plus tags); a decryptor a ring
//!   of ciphertext and one of plaintext, whatever the stream length (for 64 KiB segments
//!   and 2 workers: 256 KiB, and 512 KiB; `tests/parallel_memory.rs` checks this on
//!   256 MiB streams). Larger rings were no faster (docs/PERFORMANCE.md, "Tenth run").
//! - **Errors.** Results are taken in stream order: the first segment that fails decides
//!   the error, exactly as sequentially. A decryptor releases the segments before it and
//!   nothing from it on — plaintext of later segments that did authenticate is never
//!   returned, and is wiped from the slots.
//! - **Automatic.** [`std::thread::available_parallelism`] workers for inputs of at least
//!   [`PARALLEL_MIN_BYTES`] (1 MiB) spanning two or more segments; streams move to the pool
//!   once that much has gone through them. Below that, handing work to other threads costs
//!   more than it saves.
//!
//! # Security
//!
//! - Plaintext is released only from segments whose tag verified; end of stream is reported
//!   only after the final segment authenticated as final.
//! - Every segment is bound to the whole header and to the associated data.
//! - Keys ([`Key256`]) and plaintext buffers are zeroized on drop.
//! - A header's segment size is validated (and capped by [`Options::max_segment_size`])
//!   before anything is allocated from it.

mod batch_reader;
mod batch_writer;
mod decryptor;
mod encryptor;
mod error;
mod layout;
mod oneshot;
mod options;
mod parallel;
mod ring;
mod seekable;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use atrest_crypto::Key256;
pub use decryptor::Decryptor;
pub use encryptor::{COPY_CHUNK, Encryptor};
pub use error::{Error, HeaderError, MisuseError};
pub use layout::Layout;
pub use oneshot::{open, open_in_place, seal, seal_in_place};
pub use options::{
    DEFAULT_SEGMENT_SIZE, Format, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, Options, TINK_1MB, TINK_4KB,
    TINK_MAX_CIPHERTEXT_SEGMENT_SIZE, TINK_MIN_CIPHERTEXT_SEGMENT_SIZE,
};
pub use parallel::PARALLEL_MIN_BYTES;

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
