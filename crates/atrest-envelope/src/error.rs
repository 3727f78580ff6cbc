//! Errors of the envelope layer.

use std::io;

use crate::kek::{KeyId, UnwrapError, WrapError};

/// Everything that can go wrong while sealing, opening or rewrapping an envelope.
///
/// Data errors ([`Error::Malformed`], [`Error::Limit`], [`Error::Unwrap`],
/// [`Error::CommitmentMismatch`], [`Error::Authentication`], [`Error::Body`]) mean the bytes
/// from storage (or the caller's context) do not form a valid envelope for this key holder.
/// [`Error::Misuse`] means the caller asked for something impossible; [`Error::Wrap`] that the
/// key holder refused or failed to wrap. No message ever contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The header bytes are not a well-formed envelope v1 header.
    #[error("malformed envelope header: {0}")]
    Malformed(#[from] Malformed),
    /// The header declares something larger than the format (or this reader) allows. Checked
    /// before anything is allocated from it.
    #[error("envelope header exceeds a limit: {0}")]
    Limit(#[from] LimitExceeded),
    /// No wrapped data key in the header could be unwrapped. This is the most specific of the
    /// failures (see docs/FORMAT.md, "Choosing a wrapped key"): a backend failure, then an
    /// unavailable version (retired, disabled, destroyed, ...), then a wrapped key that did
    /// not authenticate, then a missing version, then an unknown key.
    #[error("cannot unwrap the data key (key '{key_id}' version {version}): {source}")]
    Unwrap {
        /// The key named by the wrapped key whose error is reported.
        key_id: KeyId,
        /// Its version.
        version: u32,
        /// Why it could not be unwrapped.
        #[source]
        source: UnwrapError,
    },
    /// A wrapped key unwrapped, but to a data key that does not match the header's key
    /// commitment: the header was crafted to make different key holders see different data
    /// keys. Reported before any header tag or body segment is checked.
    #[error("the unwrapped data key does not match the header's key commitment")]
    CommitmentMismatch,
    /// The header tag did not verify: the header was modified, or the caller's encryption
    /// context differs from the one the blob was sealed with. Deliberately opaque.
    #[error("envelope header authentication failed (modified header or wrong encryption context)")]
    Authentication,
    /// The body (an atrest STREAM v1 stream) failed: authentication, truncation, trailing
    /// data, a malformed stream header, or I/O while reading it.
    #[error("envelope body: {0}")]
    Body(#[from] atrest_stream::Error),
    /// The key holder could not wrap the data key (unknown key, no version that may
    /// encrypt, backend failure).
    #[error("cannot wrap the data key: {0}")]
    Wrap(#[from] WrapError),
    /// The caller asked for something the format or this API cannot do.
    #[error(transparent)]
    Misuse(#[from] MisuseError),
    /// A cryptographic primitive failed in a way that is not an authentication failure (for
    /// example the operating system's random source).
    #[error("cryptographic provider failure: {0}")]
    Crypto(atrest_crypto::Error),
    /// Reading or writing header bytes failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Which part of a header is malformed. Every variant is a data error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The first bytes are not the envelope magic `89 61 74 65`.
    #[error("not an atrest envelope (bad magic bytes)")]
    Magic,
    /// A format version this library does not read.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// A suite id this library does not know.
    #[error("unsupported envelope suite {0}")]
    Suite(u8),
    /// A segment size outside `4096..=16777216`.
    #[error("segment size {0} is outside 4096..=16777216")]
    SegmentSize(u32),
    /// The bytes end inside the header.
    #[error("header is truncated")]
    Truncated,
    /// A context entry runs past the end of the context, or the context has a zero-length key.
    #[error("context entry is malformed")]
    ContextEntry,
    /// Context keys are not in strictly ascending byte order (unsorted or duplicated).
    #[error("context keys are not strictly ascending (unsorted or duplicate)")]
    ContextOrder,
    /// The wrap scope selects context entries the context does not have.
    #[error("wrap scope names context entries that do not exist")]
    WrapScope,
    /// The header holds no wrapped key.
    #[error("header holds no wrapped key")]
    NoWrappedKeys,
    /// A wrapped key's key id is empty or not UTF-8.
    #[error("wrapped key has an invalid key id")]
    KeyId,
    /// A wrapped key has no bytes.
    #[error("wrapped key is empty")]
    EmptyWrappedKey,
    /// Two wrapped keys name the same key id and version.
    #[error("two wrapped keys name the same key id and version")]
    DuplicateWrappedKey,
    /// Bytes follow the header tag where a header had to end.
    #[error("unexpected bytes after the header")]
    TrailingBytes,
}

/// A header field larger than the format or the reader allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The encoded context is longer than [`crate::MAX_CONTEXT_LEN`].
    #[error("context is {len} bytes, the limit is {max}")]
    ContextLen {
        /// Declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More context entries than [`crate::MAX_CONTEXT_ENTRIES`].
    #[error("context has more than {max} entries")]
    ContextEntries {
        /// The limit.
        max: usize,
    },
    /// More wrapped keys than [`crate::MAX_WRAPPED_KEYS`].
    #[error("{count} wrapped keys, the limit is {max}")]
    WrappedKeys {
        /// Declared count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A wrapped key longer than [`crate::MAX_WRAPPED_KEY_LEN`].
    #[error("wrapped key is {len} bytes, the limit is {max}")]
    WrappedKeyLen {
        /// Declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A valid segment size above this reader's configured cap
    /// ([`crate::Options::max_segment_size`]).
    #[error("segment size {size} exceeds this reader's limit of {limit} bytes")]
    SegmentSize {
        /// What the header declares.
        size: u32,
        /// The reader's cap.
        limit: u32,
    },
}

/// Caller mistakes, kept apart from errors caused by untrusted data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// A context key that is empty or longer than 255 bytes.
    #[error("context keys must be 1..=255 bytes")]
    ContextKey,
    /// The same context key given twice.
    #[error("duplicate context key")]
    DuplicateContextKey,
    /// [`crate::Context::exclude_from_wrap`] named a key the context does not hold.
    #[error("no context entry with that key")]
    UnknownContextKey,
    /// The context would exceed a format limit.
    #[error(transparent)]
    ContextTooLarge(LimitExceeded),
    /// A segment size outside `4096..=16777216`.
    #[error("segment size {0} is outside 4096..=16777216")]
    SegmentSize(u32),
    /// The key holder returned a wrapped key the header cannot store (empty, or longer than
    /// [`crate::MAX_WRAPPED_KEY_LEN`]), or one naming a different key than was asked for.
    #[error("the key wrapper returned a wrapped key the header cannot store")]
    WrappedKeyShape,
    /// No key id to wrap the data key with.
    #[error("at least one key id is needed to wrap the data key")]
    NoKeyIds,
    /// The same key id given twice.
    #[error("key id '{0}' given twice")]
    DuplicateKeyId(KeyId),
    /// A rewrap would leave more than [`crate::MAX_WRAPPED_KEYS`] wrapped keys.
    #[error("a header holds at most {max} wrapped keys")]
    TooManyWrappedKeys {
        /// The limit.
        max: usize,
    },
    /// A rewrap would remove every wrapped key, making the blob unreadable.
    #[error("refusing to remove the last wrapped key")]
    LastWrappedKey,
    /// A rewrap asked to remove a wrapped key the header does not hold.
    #[error("the header holds no wrapped key for '{0}'")]
    NoSuchWrappedKey(KeyId),
}

impl From<atrest_crypto::Error> for Error {
    fn from(err: atrest_crypto::Error) -> Self {
        Error::Crypto(err)
    }
}

impl From<Error> for io::Error {
    /// `Io` errors are passed through; every other error becomes `InvalidData` (or
    /// `InvalidInput` for caller misuse) wrapping the [`Error`], so callers can downcast.
    fn from(err: Error) -> Self {
        match err {
            Error::Io(err) => err,
            Error::Body(body) => io::Error::from(body),
            err @ Error::Misuse(_) => io::Error::new(io::ErrorKind::InvalidInput, err),
            err => io::Error::new(io::ErrorKind::InvalidData, err),
        }
    }
}

impl Error {
    /// True for errors caused by the caller rather than by the data.
    pub fn is_misuse(&self) -> bool {
        match self {
            Error::Misuse(_) => true,
            Error::Body(body) => body.is_misuse(),
            _ => false,
        }
    }

    /// Recovers an [`Error`] from an `io::Error` made by a body reader or writer (a wrapped
    /// [`atrest_stream::Error`] becomes [`Error::Body`]).
    pub fn from_io(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            match err.into_inner().map(|inner| inner.downcast::<Error>()) {
                Some(Ok(inner)) => return *inner,
                Some(Err(other)) => return Error::Io(io::Error::other(other)),
                None => return Error::Io(io::Error::other("unknown I/O error")),
            }
        }
        match atrest_stream::Error::from_io(err) {
            atrest_stream::Error::Io(err) => Error::Io(err),
            other => Error::Body(other),
        }
    }
}
