//! Errors of the streaming layer.

use std::io;

/// Everything that can go wrong while encrypting or decrypting a stream.
///
/// Data errors ([`Error::Authentication`], [`Error::Truncated`], [`Error::TrailingData`],
/// [`Error::Header`]) mean the bytes from storage are not a valid stream for this key and
/// associated data. [`Error::Misuse`] means the caller asked for something impossible. No
/// message ever contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment failed authentication: wrong key or associated data, or the ciphertext was
    /// modified, reordered, duplicated or spliced from another stream. Deliberately opaque.
    #[error(
        "stream authentication failed (wrong key or associated data, or modified, reordered or spliced ciphertext)"
    )]
    Authentication,
    /// The stream ends before its final segment: the last segment present authenticated only
    /// as a non-final segment, or the data stops inside a header or tag.
    #[error("stream is truncated: it ends before its final segment")]
    Truncated,
    /// The final segment authenticated, but more bytes follow it.
    #[error("unexpected data after the final segment of the stream")]
    TrailingData,
    /// The stream header is malformed or names something this version does not support.
    #[error("invalid stream header: {0}")]
    Header(#[from] HeaderError),
    /// The caller asked for something the format or this API cannot do.
    #[error(transparent)]
    Misuse(#[from] MisuseError),
    /// A cryptographic primitive failed in a way that is not an authentication failure (for
    /// example the operating system's random source).
    #[error("cryptographic provider failure: {0}")]
    Crypto(atrest_crypto::Error),
    /// Reading or writing the underlying storage failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Why a stream header was rejected. Checked before anything is allocated from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The first bytes are not the atrest STREAM magic: this is not an atrest stream.
    #[error("not an atrest stream (bad magic bytes)")]
    Magic,
    /// The format version is not one this library reads.
    #[error("unsupported format version {0}")]
    Version(u8),
    /// The cipher suite id is not one this library knows.
    #[error("unsupported cipher suite {0}")]
    Suite(u8),
    /// The segment size is outside the range the format allows.
    #[error("segment size {0} is outside the format's range 4096..=16777216")]
    SegmentSize(u32),
    /// The segment size is valid but larger than this reader's configured cap.
    #[error("segment size {size} exceeds this reader's limit of {limit} bytes")]
    SegmentSizeAboveLimit {
        /// The segment size the header declares.
        size: u32,
        /// The reader's cap ([`crate::Options::max_segment_size`]).
        limit: u32,
    },
    /// A Tink header whose length byte is not the one AES256_GCM_HKDF uses (40).
    #[error("Tink header length byte is {0}, expected 40")]
    TinkHeaderLength(u8),
}

/// Caller mistakes, kept apart from errors caused by untrusted data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// The requested segment size is outside the allowed range.
    #[error("segment size {size} is outside {min}..={max}")]
    SegmentSize {
        /// What was asked for.
        size: u32,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// The plaintext would need more segments than the nonce counter can number. The writer
    /// stopped before reusing a nonce; everything accepted so far can still be finished.
    #[error("stream too long: the segment counter would overflow")]
    StreamTooLong,
    /// A plaintext range lies outside the stream (or its end is before its start).
    #[error("plaintext range {start}..{end} is outside the stream's {len} bytes")]
    RangeOutOfBounds {
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
        /// The stream's plaintext length.
        len: u64,
    },
    /// A seek to a negative or overflowing position.
    #[error("seek to an invalid position")]
    InvalidSeek,
    /// The encryptor or decryptor is unusable after an earlier error.
    #[error("the stream already failed; start a new one")]
    Poisoned,
}

impl From<Error> for io::Error {
    /// `Io` errors are passed through; every other error becomes `InvalidData` (or
    /// `InvalidInput` for caller misuse) wrapping the [`Error`], so callers can downcast.
    fn from(err: Error) -> Self {
        match err {
            Error::Io(err) => err,
            err @ Error::Misuse(_) => io::Error::new(io::ErrorKind::InvalidInput, err),
            err => io::Error::new(io::ErrorKind::InvalidData, err),
        }
    }
}

impl Error {
    /// True for errors caused by the caller ([`Error::Misuse`]) rather than by the data.
    pub fn is_misuse(&self) -> bool {
        matches!(self, Error::Misuse(_))
    }

    /// Recovers an [`Error`] that a `Read`/`Write` adapter wrapped in an `io::Error`.
    pub fn from_io(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            match err.into_inner().map(|inner| inner.downcast::<Error>()) {
                Some(Ok(inner)) => *inner,
                // Unreachable given the check above; keep the error rather than panic.
                Some(Err(other)) => Error::Io(io::Error::other(other)),
                None => Error::Io(io::Error::other("unknown I/O error")),
            }
        } else {
            Error::Io(err)
        }
    }
}
