//! Errors of the encrypting store and its jobs.

use atrest_envelope::KeyUnavailable;

/// Everything the encrypting layer itself can report. Errors of the inner store (not found,
/// precondition, network ...) pass through unchanged as `object_store::Error`s; this type
/// travels inside `object_store::Error::Generic` (store `"EncryptedStore"`), so callers
/// recover it with [`Error::from_object_store`].
///
/// Every variant names the object's path. No message contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key selector could not choose a key or context for this path (caller misuse).
    #[error("no key for object {path}: {reason}")]
    NoKey {
        /// The object's path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Encrypting failed: the key holder refused or failed to wrap the data key, or the
    /// envelope could not be built.
    #[error("cannot encrypt object {path}: {source}")]
    Seal {
        /// The object's path.
        path: String,
        /// The envelope error.
        #[source]
        source: Box<atrest_envelope::Error>,
    },
    /// Decrypting failed: authentication (tampered bytes, or an object moved or copied behind
    /// the store's back), a key that cannot unwrap (destroyed, disabled ...), truncation.
    #[error("cannot decrypt object {path}: {source}")]
    Open {
        /// The object's path.
        path: String,
        /// The envelope error.
        #[source]
        source: Box<atrest_envelope::Error>,
    },
    /// The inner object cannot be an object this store wrote (too short for a header and a
    /// body, or a length no stream has).
    #[error("object {path} is not an atrest envelope: {reason}")]
    NotEncrypted {
        /// The object's path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A requested plaintext range is outside the object.
    #[error("range {start}..{end} is outside object {path} ({len} bytes)")]
    Range {
        /// The object's path.
        path: String,
        /// Requested start.
        start: u64,
        /// Requested end.
        end: u64,
        /// Plaintext length.
        len: u64,
    },
    /// The inner store failed during a job (rewrap, scrub, shred).
    #[error("inner store failed for {path}: {source}")]
    Store {
        /// The object's path.
        path: String,
        /// The inner store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The header this store built does not have the length its size arithmetic assumes
    /// (the key holder's wrapped keys are not [`crate::Config::wrapped_key_len`] bytes).
    #[error(
        "header for {path} is {actual} bytes, the store expects {expected}: configure wrapped_key_len"
    )]
    HeaderShape {
        /// The object's path.
        path: String,
        /// Header length the store computed.
        expected: usize,
        /// Header length the envelope produced.
        actual: usize,
    },
    /// The path is under [`crate::DETACHED_HEADERS`], where a store with detached headers
    /// keeps its sidecars; objects cannot be read or written there through the store.
    #[error("{path} is under the reserved prefix {prefix}/ (detached headers)")]
    ReservedPath {
        /// The path.
        path: String,
        /// The reserved first segment.
        prefix: &'static str,
    },
    /// The object's stub names a detached header that does not exist (deleted behind the
    /// store's back, or the object is being replaced and stayed so on every attempt).
    #[error("object {path}: its detached header {header} is missing")]
    MissingHeader {
        /// The object's path.
        path: String,
        /// The sidecar path the stub names.
        header: String,
    },
    /// A job's key operation failed (for example shredding an unknown key).
    #[error("keyring: {0}")]
    Keyring(#[source] Box<atrest_keyring::Error>),
}

/// The `store` name in `object_store::Error::Generic` errors made by this crate.
pub const STORE_NAME: &str = "EncryptedStore";

impl Error {
    /// The [`Error`] inside an `object_store::Error` made by this store, if it is one.
    pub fn from_object_store(err: &object_store::Error) -> Option<&Error> {
        match err {
            object_store::Error::Generic { store, source } if *store == STORE_NAME => {
                source.downcast_ref::<Error>()
            }
            _ => None,
        }
    }

    /// The envelope error of a failed decryption, if this is one.
    pub fn open_error(&self) -> Option<&atrest_envelope::Error> {
        match self {
            Error::Open { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True if decryption failed authentication: modified header or body, wrong location
    /// (moved or copied behind the store's back), or bytes of another object.
    pub fn is_authentication(&self) -> bool {
        matches!(
            self.open_error(),
            Some(
                atrest_envelope::Error::Authentication
                    | atrest_envelope::Error::CommitmentMismatch
                    | atrest_envelope::Error::Body(atrest_stream::Error::Authentication)
            )
        )
    }

    /// Why the key could not unwrap the object's data key, if that is why decryption failed
    /// (e.g. [`KeyUnavailable::Destroyed`] after a shred).
    pub fn unavailable_reason(&self) -> Option<KeyUnavailable> {
        match self.open_error() {
            Some(atrest_envelope::Error::Unwrap {
                source: atrest_envelope::UnwrapError::Unavailable { reason, .. },
                ..
            }) => Some(*reason),
            _ => None,
        }
    }

    /// The path of the object concerned, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::NoKey { path, .. }
            | Error::Seal { path, .. }
            | Error::Open { path, .. }
            | Error::NotEncrypted { path, .. }
            | Error::Range { path, .. }
            | Error::Store { path, .. }
            | Error::HeaderShape { path, .. }
            | Error::ReservedPath { path, .. }
            | Error::MissingHeader { path, .. } => Some(path),
            Error::Keyring(_) => None,
        }
    }

    pub(crate) fn open(path: &object_store::path::Path, source: atrest_envelope::Error) -> Self {
        Error::Open {
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    pub(crate) fn seal(path: &object_store::path::Path, source: atrest_envelope::Error) -> Self {
        Error::Seal {
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    pub(crate) fn reserved(path: &object_store::path::Path) -> Self {
        Error::ReservedPath {
            path: path.to_string(),
            prefix: crate::DETACHED_HEADERS,
        }
    }

    pub(crate) fn store(path: &object_store::path::Path, source: object_store::Error) -> Self {
        // An error this store made already names the path: unwrap it rather than nest it.
        match source {
            object_store::Error::Generic { store, source } if store == STORE_NAME => {
                match source.downcast::<Error>() {
                    Ok(inner) => *inner,
                    Err(other) => Error::Store {
                        path: path.to_string(),
                        source: Box::new(object_store::Error::Generic {
                            store,
                            source: other,
                        }),
                    },
                }
            }
            other => Error::Store {
                path: path.to_string(),
                source: Box::new(other),
            },
        }
    }
}

impl From<Error> for object_store::Error {
    fn from(err: Error) -> Self {
        match err {
            // Inner-store errors keep their own variant (NotFound, Precondition ...).
            Error::Store { source, .. } => *source,
            err => object_store::Error::Generic {
                store: STORE_NAME,
                source: Box::new(err),
            },
        }
    }
}
