#![doc = include_str!("../README.md")]

pub mod audit;
mod codec;
mod error;
mod file;
pub mod insecure;
mod model;
mod policy;
mod root;
mod state;
mod status;
mod time;
mod wrap;

#[doc(hidden)]
pub mod fuzzing;

pub use atrest_envelope::{KeyId, KeyUnavailable, KeyWrapper, UnwrapError, WrapError, WrappedKey};
pub use audit::{AUDIT_TARGET, Operation};
pub use error::{Error, FileError, RootKeyError, RootKind};
pub use file::{FORMAT_VERSION, MAGIC, MAX_FILE_LEN, remove_stale_temp_files};
pub use model::{Keyring, MAX_KEYS, MAX_VERSIONS, RotationPolicy, VersionState};
pub use root::{
    Argon2Params, EnvRoot, KeyFileRoot, PassphraseRoot, RawKeyRoot, RootKey, RootParams,
};
pub use status::{KeyStatus, KeyringStatus, VersionInfo, VersionStatus};
pub use time::Timestamp;
