//! Errors as the operator sees them: one line saying what went wrong, an optional hint saying
//! what to do, and a documented exit code.
//!
//! Commands return `anyhow::Error`. [`report`] finds the first error in the chain it knows
//! (an explicit [`Failure`], or an error of an atrest crate, or an I/O error) to choose the
//! exit code and the hint, and prints the whole chain on one line without repeating itself.

use std::fmt;
use std::io;

use atrest_envelope::{KeyUnavailable, UnwrapError, WrapError};
use atrest_keyring::{FileError, RootKeyError};

/// The process exit codes (also in `--help` and README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// Anything not covered below.
    Generic = 1,
    /// The command line is wrong: unknown flag, bad value, missing root-key source.
    Usage = 2,
    /// Authentication or integrity failure: modified or truncated data, wrong encryption
    /// context, wrong passphrase or root key, not an atrest file, password mismatch.
    Integrity = 3,
    /// The key is not available: no keyring file, unknown key or version, or a version that
    /// is retired, disabled, scheduled for destruction or destroyed.
    KeyUnavailable = 4,
    /// Reading or writing a file (or stdin/stdout) failed.
    Io = 5,
}

impl Code {
    /// The numeric exit status.
    pub(crate) fn status(self) -> u8 {
        self as u8
    }
}

/// An error with a chosen exit code and hint.
#[derive(Debug)]
pub(crate) struct Failure {
    code: Code,
    message: String,
    hint: Option<String>,
}

impl Failure {
    /// A failure with an exit code and a one-line message.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what the operator should do about it.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints `error: ...` (and `hint: ...`) on stderr and returns the exit status.
pub(crate) fn report(err: &anyhow::Error) -> u8 {
    let (code, hint) = classify(err);
    eprintln!("error: {}", one_line(err));
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    code.status()
}

/// The chain of messages, outermost first, on one line. A message already contained in the
/// one before it (a `#[from]` source that its wrapper prints too) is skipped.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        // object_store's wrapper only prefixes "Generic <store> error: " to ours.
        if let Some(object_store::Error::Generic { .. }) = cause.downcast_ref() {
            continue;
        }
        let text = cause.to_string().replace(['\n', '\r'], " ");
        if parts.last().is_some_and(|last| last.contains(&text)) || text.is_empty() {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// The exit code and hint for the first error in the chain that decides them.
fn classify(err: &anyhow::Error) -> (Code, Option<String>) {
    for cause in err.chain() {
        if let Some(found) = classify_one(cause) {
            return found;
        }
    }
    (Code::Generic, None)
}

type Classified = Option<(Code, Option<String>)>;

fn classify_one(cause: &(dyn std::error::Error + 'static)) -> Classified {
    if let Some(failure) = cause.downcast_ref::<Failure>() {
        return Some((failure.code, failure.hint.clone()));
    }
    if let Some(err) = cause.downcast_ref::<atrest_envelope::Error>() {
        return Some(envelope(err));
    }
    if let Some(err) = cause.downcast_ref::<atrest_stream::Error>() {
        return Some(stream(err));
    }
    if let Some(err) = cause.downcast_ref::<FileError>() {
        return Some(keyring_file(err));
    }
    if let Some(err) = cause.downcast_ref::<RootKeyError>() {
        return Some(root_key(err));
    }
    if let Some(err) = cause.downcast_ref::<atrest_keyring::Error>() {
        return Some(keyring_op(err));
    }
    if let Some(err) = cause.downcast_ref::<UnwrapError>() {
        return Some(unwrap(err));
    }
    if let Some(err) = cause.downcast_ref::<WrapError>() {
        return Some(wrap(err));
    }
    if let Some(err) = cause.downcast_ref::<atrest_password::Error>() {
        let code = if err.is_stored_data() {
            Code::Usage
        } else {
            Code::Generic
        };
        return Some((code, None));
    }
    if let Some(object_store::Error::NotFound { .. }) = cause.downcast_ref::<object_store::Error>()
    {
        return Some((
            Code::Generic,
            Some("see the objects with `atrest store ls`".into()),
        ));
    }
    match cause.downcast_ref::<atrest_store::Error>() {
        Some(atrest_store::Error::NotEncrypted { .. }) => {
            return Some((
                Code::Integrity,
                Some(
                    "was the store written with a different --detached-headers setting? \
                     Otherwise the object was modified; restore it from a good copy"
                        .into(),
                ),
            ));
        }
        Some(atrest_store::Error::MissingHeader { .. }) => {
            return Some((
                Code::Integrity,
                Some("the object's header was deleted behind the store's back".into()),
            ));
        }
        Some(atrest_store::Error::ReservedPath { .. }) => return Some((Code::Usage, None)),
        _ => {}
    }
    if let Some(atrest_store::Error::NoKey { .. }) = cause.downcast_ref::<atrest_store::Error>() {
        return Some((
            Code::KeyUnavailable,
            Some(
                "objects go under TENANT/...: create key `tenant-TENANT`, or pass --key NAME"
                    .into(),
            ),
        ));
    }
    if let Some(err) = cause.downcast_ref::<io::Error>() {
        // Readers and writers of atrest streams wrap their errors in `InvalidData`.
        if let Some(found) = err.get_ref().and_then(|inner| classify_one(inner)) {
            return Some(found);
        }
        return Some((Code::Io, None));
    }
    None
}

const CONTEXT_HINT: &str = "check that every --context k=v matches what the file was encrypted \
     with (`atrest inspect FILE` shows it); otherwise the file was modified or belongs elsewhere";
const TAMPER_HINT: &str = "the data was modified, truncated or is not what it claims to be; \
     restore it from a good copy";

fn envelope(err: &atrest_envelope::Error) -> (Code, Option<String>) {
    use atrest_envelope::Error as E;
    match err {
        E::Malformed(_) | E::Limit(_) => (
            Code::Integrity,
            Some("this is not an atrest envelope (try `atrest inspect FILE`)".into()),
        ),
        E::Unwrap { source, .. } => unwrap(source),
        E::CommitmentMismatch => (Code::Integrity, Some(TAMPER_HINT.into())),
        E::Authentication => (Code::Integrity, Some(CONTEXT_HINT.into())),
        E::Body(body) => stream(body),
        E::Wrap(wrap_err) => wrap(wrap_err),
        E::Misuse(_) => (Code::Usage, None),
        E::Io(_) => (Code::Io, None),
        _ => (Code::Generic, None),
    }
}

fn stream(err: &atrest_stream::Error) -> (Code, Option<String>) {
    use atrest_stream::Error as E;
    match err {
        E::Authentication => (Code::Integrity, Some(CONTEXT_HINT.into())),
        E::Truncated | E::TrailingData | E::Header(_) => {
            (Code::Integrity, Some(TAMPER_HINT.into()))
        }
        E::Misuse(_) => (Code::Usage, None),
        E::Io(_) => (Code::Io, None),
        _ => (Code::Generic, None),
    }
}

fn unavailable_hint(key_id: &str, version: u32, reason: KeyUnavailable) -> Option<String> {
    match reason {
        KeyUnavailable::Disabled => Some(format!(
            "enable it again with `atrest keyring enable {key_id} {version}`"
        )),
        KeyUnavailable::ScheduledForDestruction => Some(format!(
            "cancel the destruction with `atrest keyring restore {key_id} {version}` before the window closes"
        )),
        KeyUnavailable::Destroyed => Some(
            "nothing can decrypt this data any more; restore it from a plaintext backup if one exists"
                .into(),
        ),
        KeyUnavailable::DecryptOnly => Some(format!(
            "rotate the key with `atrest keyring rotate {key_id}`"
        )),
        _ => None,
    }
}

fn unwrap(err: &UnwrapError) -> (Code, Option<String>) {
    match err {
        UnwrapError::Unavailable {
            key_id,
            version,
            reason,
        } => (
            Code::KeyUnavailable,
            unavailable_hint(key_id.as_str(), *version, *reason),
        ),
        UnwrapError::KeyNotFound(_) | UnwrapError::VersionNotFound { .. } => (
            Code::KeyUnavailable,
            Some(
                "is this the keyring the data was encrypted with? (--keyring, `atrest keyring status`)"
                    .into(),
            ),
        ),
        UnwrapError::Authentication => (Code::Integrity, Some(TAMPER_HINT.into())),
        _ => (Code::Generic, None),
    }
}

fn wrap(err: &WrapError) -> (Code, Option<String>) {
    match err {
        WrapError::KeyNotFound(key_id) => (
            Code::KeyUnavailable,
            Some(format!(
                "create it with `atrest keyring create-key {key_id}` (see `atrest keyring status`)"
            )),
        ),
        WrapError::Unavailable {
            key_id,
            version,
            reason,
        } => (
            Code::KeyUnavailable,
            unavailable_hint(key_id.as_str(), *version, *reason),
        ),
        WrapError::InvalidKeyId => (Code::Usage, None),
        _ => (Code::Generic, None),
    }
}

fn keyring_file(err: &FileError) -> (Code, Option<String>) {
    match err {
        FileError::Authentication => (
            Code::Integrity,
            Some(
                "check ATREST_PASSPHRASE, ATREST_ROOT_KEY or --key-file; a modified keyring file must be restored from a backup".into(),
            ),
        ),
        FileError::RootKindMismatch { file, .. } => (
            Code::Usage,
            Some(match file {
                atrest_keyring::RootKind::Passphrase => {
                    "this keyring is sealed under a passphrase: drop --key-file and ATREST_ROOT_KEY, \
                     and give the passphrase (ATREST_PASSPHRASE or the prompt)"
                        .to_owned()
                }
                _ => "this keyring is sealed under a raw root key: give --key-file PATH or \
                      ATREST_ROOT_KEY"
                    .to_owned(),
            }),
        ),
        FileError::Malformed(_) | FileError::UnsupportedVersion(_) => (
            Code::Integrity,
            Some("this is not a keyring file this version of atrest can read".into()),
        ),
        FileError::RootKey(root) => root_key(root),
        FileError::Io { .. } => (Code::Io, None),
        _ => (Code::Generic, None),
    }
}

fn root_key(err: &RootKeyError) -> (Code, Option<String>) {
    match err {
        RootKeyError::KeyFileIo { .. } => (Code::Io, None),
        RootKeyError::KeyFilePermissions { .. } => (Code::Generic, None),
        RootKeyError::KeyFileFormat(_) | RootKeyError::EnvFormat(_) => (Code::Usage, None),
        RootKeyError::EnvMissing(_) => (Code::Usage, None),
        _ => (Code::Generic, None),
    }
}

fn keyring_op(err: &atrest_keyring::Error) -> (Code, Option<String>) {
    use atrest_keyring::Error as E;
    match err {
        E::KeyNotFound(_) | E::VersionNotFound { .. } => (
            Code::KeyUnavailable,
            Some("see the keys and versions with `atrest keyring status`".into()),
        ),
        E::Destroyed { .. } | E::Shredded(_) => (Code::KeyUnavailable, None),
        E::KeyExists(_) => (Code::Generic, None),
        E::PrimaryVersion { key_id, .. } => (
            Code::Generic,
            Some(format!(
                "rotate first (`atrest keyring rotate {key_id}`), or shred the whole key"
            )),
        ),
        _ => (Code::Generic, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_one_line_without_repeats() {
        let err = anyhow::Error::new(atrest_envelope::Error::Body(
            atrest_stream::Error::Authentication,
        ))
        .context("decrypting in.bin");
        let line = one_line(&err);
        assert_eq!(
            line.matches("stream authentication failed").count(),
            1,
            "{line}"
        );
        assert!(
            line.starts_with("decrypting in.bin: envelope body: "),
            "{line}"
        );
        assert_eq!(classify(&err).0, Code::Integrity);
    }

    #[test]
    fn destroyed_key_is_unavailable() {
        let key_id = atrest_envelope::KeyId::new("t").expect("key id");
        let err = anyhow::Error::new(atrest_envelope::Error::Unwrap {
            key_id: key_id.clone(),
            version: 1,
            source: UnwrapError::Unavailable {
                key_id,
                version: 1,
                reason: KeyUnavailable::Destroyed,
            },
        });
        assert_eq!(classify(&err).0, Code::KeyUnavailable);
        assert!(one_line(&err).contains("unrecoverable"));
    }

    #[test]
    fn io_errors_wrapping_stream_errors_are_integrity() {
        let io = io::Error::new(io::ErrorKind::InvalidData, atrest_stream::Error::Truncated);
        assert_eq!(classify(&anyhow::Error::new(io)).0, Code::Integrity);
        let plain = io::Error::new(io::ErrorKind::NotFound, "gone");
        assert_eq!(classify(&anyhow::Error::new(plain)).0, Code::Io);
    }
}
