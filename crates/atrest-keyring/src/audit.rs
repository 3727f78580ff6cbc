//! Audit events: every key operation emits one `tracing` event.
//!
//! Target [`AUDIT_TARGET`]; fields `key_id` (`"*"` for whole-keyring operations such as
//! save and load), `version` (absent when not applicable), `operation` ([`Operation::as_str`]),
//! `outcome` (`"ok"`, `"denied"` for a refused operation or unusable key state, `"error"` for
//! data and I/O failures) and, on failure, `error` (the error's message). Administrative
//! operations log at INFO, successful wraps and unwraps at DEBUG (they are per blob), failures
//! at WARN.
//!
//! # Security
//! No field ever holds key material, a passphrase or a data key: only names, numbers and error
//! messages, which are written never to contain secrets. `tests/audit.rs` checks it.

use atrest_envelope::KeyId;

/// The `tracing` target of every audit event.
pub const AUDIT_TARGET: &str = "atrest::keyring::audit";

/// A key operation, as named in audit events and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `Keyring::create_key`.
    CreateKey,
    /// `Keyring::rotate` (also from `rotate_if_due`).
    Rotate,
    /// `Keyring::add_version`.
    AddVersion,
    /// `Keyring::promote`.
    Promote,
    /// `Keyring::set_min_encryption_version`.
    SetMinEncryptionVersion,
    /// `Keyring::set_min_decryption_version`.
    SetMinDecryptionVersion,
    /// `Keyring::set_rotation_policy`.
    SetRotationPolicy,
    /// `Keyring::disable`.
    Disable,
    /// `Keyring::enable`.
    Enable,
    /// `Keyring::schedule_destruction`.
    ScheduleDestruction,
    /// `Keyring::restore`.
    Restore,
    /// A version destroyed by `Keyring::destroy_due`.
    Destroy,
    /// `Keyring::shred`: every version of a key destroyed.
    Shred,
    /// `KeyWrapper::wrap`.
    Wrap,
    /// `KeyWrapper::unwrap`.
    Unwrap,
    /// Sealing the keyring to a file or bytes.
    Save,
    /// Opening a sealed keyring.
    Load,
    /// `insecure::export_version_material`.
    InsecureExport,
    /// `insecure::import_version_material`.
    InsecureImport,
}

impl Operation {
    /// The snake_case name used in audit events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateKey => "create_key",
            Self::Rotate => "rotate",
            Self::AddVersion => "add_version",
            Self::Promote => "promote",
            Self::SetMinEncryptionVersion => "set_min_encryption_version",
            Self::SetMinDecryptionVersion => "set_min_decryption_version",
            Self::SetRotationPolicy => "set_rotation_policy",
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::ScheduleDestruction => "schedule_destruction",
            Self::Restore => "restore",
            Self::Destroy => "destroy",
            Self::Shred => "shred",
            Self::Wrap => "wrap",
            Self::Unwrap => "unwrap",
            Self::Save => "save",
            Self::Load => "load",
            Self::InsecureExport => "insecure_export",
            Self::InsecureImport => "insecure_import",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an audited operation ended.
pub(crate) enum Outcome<'a> {
    /// It succeeded.
    Ok,
    /// It was refused (misuse, or a key state that forbids it).
    Denied(&'a dyn std::fmt::Display),
    /// Data or I/O failure.
    Failed(&'a dyn std::fmt::Display),
}

/// Emits one audit event. `key_id` is `None` for whole-keyring operations.
pub(crate) fn record(
    key_id: Option<&KeyId>,
    version: Option<u32>,
    operation: Operation,
    outcome: Outcome<'_>,
) {
    let key_id = key_id.map_or("*", KeyId::as_str);
    let per_blob = matches!(operation, Operation::Wrap | Operation::Unwrap);
    let operation = operation.as_str();
    match outcome {
        Outcome::Ok if per_blob => tracing::debug!(
            target: AUDIT_TARGET, key_id, version, operation, outcome = "ok"
        ),
        Outcome::Ok => tracing::info!(
            target: AUDIT_TARGET, key_id, version, operation, outcome = "ok"
        ),
        Outcome::Denied(error) => tracing::warn!(
            target: AUDIT_TARGET, key_id, version, operation, outcome = "denied",
            error = %error
        ),
        Outcome::Failed(error) => tracing::warn!(
            target: AUDIT_TARGET, key_id, version, operation, outcome = "error",
            error = %error
        ),
    }
}

/// Records the outcome of a keyring operation and passes its result through.
pub(crate) fn recorded<T>(
    key_id: &KeyId,
    version: Option<u32>,
    operation: Operation,
    result: Result<T, crate::Error>,
) -> Result<T, crate::Error> {
    match &result {
        Ok(_) => record(Some(key_id), version, operation, Outcome::Ok),
        Err(error) => record(Some(key_id), version, operation, Outcome::Denied(error)),
    }
    result
}
