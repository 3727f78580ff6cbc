//! Errors, one enum per operation family: keyring operations (caller misuse), the sealed file
//! (bad bytes from storage, wrong root key, I/O) and root-key providers.
//!
//! No message ever contains key material or a passphrase.

use std::path::PathBuf;

use atrest_envelope::{KeyId, KeyUnavailable};

use crate::{Operation, Timestamp, VersionState};

/// A keyring operation was refused. Every variant is caller misuse or a state conflict; the
/// keyring is unchanged when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No key of that name.
    #[error("no key named '{0}'")]
    KeyNotFound(KeyId),
    /// `create_key` with a name that is already taken.
    #[error("a key named '{0}' already exists")]
    KeyExists(KeyId),
    /// The key exists but not that version.
    #[error("key '{key_id}' has no version {version}")]
    VersionNotFound {
        /// The key.
        key_id: KeyId,
        /// The missing version.
        version: u32,
    },
    /// The operation does not apply to a version in this state (e.g. enabling a destroyed
    /// version, restoring one that is not scheduled for destruction).
    #[error("cannot {operation} key '{key_id}' version {version}: it is {state}")]
    InvalidTransition {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: u32,
        /// What was asked.
        operation: Operation,
        /// The version's current state.
        state: VersionState,
    },
    /// The operation would leave the key without a primary that can encrypt: the primary
    /// cannot be scheduled for destruction (rotate or promote another version first, or
    /// [`crate::Keyring::shred`] the whole key).
    #[error("cannot {operation} key '{key_id}' version {version}: it is the primary")]
    PrimaryVersion {
        /// The key.
        key_id: KeyId,
        /// The primary version.
        version: u32,
        /// What was asked.
        operation: Operation,
    },
    /// `promote` of a version that may not encrypt (disabled, decrypt-only, retired, ...).
    #[error("cannot promote key '{key_id}' version {version}: {reason}")]
    NotPromotable {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: u32,
        /// Why it may not encrypt.
        reason: KeyUnavailable,
    },
    /// A minimum version above the primary (the primary must stay usable).
    #[error("key '{key_id}': minimum version {requested} is above the primary {primary}")]
    MinimumAbovePrimary {
        /// The key.
        key_id: KeyId,
        /// The requested minimum.
        requested: u32,
        /// The current primary.
        primary: u32,
    },
    /// `restore` after the destruction time: the window is closed.
    #[error("key '{key_id}' version {version}: destruction window closed at {at}")]
    RestoreWindowClosed {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: u32,
        /// When the window closed.
        at: Timestamp,
    },
    /// The version's material was destroyed (crypto-shredded); there is nothing to use.
    #[error("key '{key_id}' version {version} is destroyed: its material was wiped")]
    Destroyed {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: u32,
    },
    /// The key has been shredded (every version destroyed): it cannot rotate or change.
    #[error("key '{0}' has been shredded")]
    Shredded(KeyId),
    /// The key already has [`crate::MAX_VERSIONS`] versions.
    #[error("key '{0}' has too many versions")]
    TooManyVersions(KeyId),
    /// The keyring already has [`crate::MAX_KEYS`] keys.
    #[error("the keyring has too many keys")]
    TooManyKeys,
    /// The random source failed while generating key material.
    #[error("random source failed")]
    Random,
}

/// Reading or writing a sealed keyring file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file system failed.
    #[error("keyring file {path:?}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sealed payload did not authenticate: a wrong passphrase or root key, or a
    /// modified file. Deliberately one opaque variant.
    #[error("keyring file failed authentication (wrong root key or passphrase, or modified)")]
    Authentication,
    /// The bytes are not a keyring file this version can read (bad magic, lengths beyond the
    /// caps, trailing bytes, an inconsistent payload).
    #[error("malformed keyring file: {0}")]
    Malformed(&'static str),
    /// A keyring file format version this build does not know.
    #[error("unsupported keyring file format version {0}")]
    UnsupportedVersion(u16),
    /// The file was sealed under another kind of root key than the one given.
    #[error("keyring file is sealed under a {file} root, not a {given} root")]
    RootKindMismatch {
        /// The kind recorded in the file.
        file: RootKind,
        /// The kind of the root key given.
        given: RootKind,
    },
    /// The root-key provider failed.
    #[error(transparent)]
    RootKey(#[from] RootKeyError),
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// The kinds of root key a keyring file can be sealed under (stored in the file header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RootKind {
    /// A passphrase stretched by Argon2id with parameters stored in the file.
    Passphrase,
    /// 32 raw bytes (a key file or an environment variable: interchangeable).
    RawKey,
    /// An external key manager; the file stores its opaque parameters (e.g. a wrapped root).
    External,
}

impl std::fmt::Display for RootKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passphrase => "passphrase",
            Self::RawKey => "raw key",
            Self::External => "external",
        })
    }
}

/// A root-key provider could not produce the root key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootKeyError {
    /// The key file could not be read.
    #[error("root key file {path:?}: {source}")]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by its group or others; it must be mode 0600 or stricter.
    #[error(
        "root key file {path:?} has mode {mode:o}: it must not be group/world-accessible (chmod 600)"
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file holds neither 32 raw bytes nor 64 hex digits.
    #[error("root key file '{0}' must hold 32 raw bytes or 64 hex digits")]
    KeyFileFormat(PathBuf),
    /// The environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The environment variable holds neither 64 hex digits nor base64 of 32 bytes.
    #[error("environment variable {0} must hold 64 hex digits or base64 of 32 bytes")]
    EnvFormat(String),
    /// Argon2id parameters outside what this build accepts (too weak to write, or beyond
    /// the provider's limits when read from a file).
    #[error("Argon2id parameters out of range: {0}")]
    Argon2Params(&'static str),
    /// The key derivation failed.
    #[error("root key derivation failed")]
    Kdf,
    /// The root-key parameters stored in the file do not fit this provider.
    #[error("root key parameters do not match the provider")]
    ParamsMismatch,
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// An external key manager failed.
    #[error("external root key provider failed: {0}")]
    External(#[source] Box<dyn std::error::Error + Send + Sync>),
}
