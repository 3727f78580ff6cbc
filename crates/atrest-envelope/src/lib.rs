//! Envelope encryption: a fresh data key per blob, wrapped by versioned key-encryption keys.
//!
//! (Work in progress: the header format and the blob API land with issue 4.)

mod kek;

pub use kek::{KeyId, KeyUnavailable, KeyWrapper, UnwrapError, WrapError, WrappedKey, local};
