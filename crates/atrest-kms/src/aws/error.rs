//! What a failed KMS call becomes: the specific `atrest_envelope` variant where KMS says why
//! (missing key, disabled key, bad ciphertext), else an [`AwsKmsError`] in `Backend`.

use std::fmt;

use atrest_envelope::KeyUnavailable;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// A KMS operation, as named in the AWS KMS API reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `GenerateDataKey` ([`atrest_envelope::KeyWrapper::generate`]).
    GenerateDataKey,
    /// `Encrypt` ([`atrest_envelope::KeyWrapper::wrap`]).
    Encrypt,
    /// `Decrypt` ([`atrest_envelope::KeyWrapper::unwrap`]).
    Decrypt,
    /// `ReEncrypt` ([`atrest_envelope::KeyWrapper::rewrap`]).
    ReEncrypt,
    /// `DescribeKey` (only after a `KMSInvalidStateException`, to name the key's state).
    DescribeKey,
    /// Building the client (configuration, runtime).
    Configure,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GenerateDataKey => "GenerateDataKey",
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::ReEncrypt => "ReEncrypt",
            Self::DescribeKey => "DescribeKey",
            Self::Configure => "configuration",
        })
    }
}

/// How a KMS call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// No answer in time: the attempt or operation timeout passed (after retries).
    Timeout,
    /// The request could not be sent or its answer not read (connection refused or reset,
    /// DNS, TLS), after retries.
    Network,
    /// KMS answered with an error (throttling, internal error, access denied, ...); see
    /// [`AwsKmsError::code`].
    Service,
    /// KMS answered something the SDK could not parse, or an answer atrest cannot use.
    Response,
    /// The request could not be built, or the client is misconfigured (no region, ...).
    Client,
}

/// A failure talking to AWS KMS, carried by `WrapError::Backend`, `UnwrapError::Backend` and
/// `RootKeyError::External` (downcast the boxed source to read it).
///
/// Its message names the KMS, its endpoint, the operation and the key, never a credential
/// or key material.
#[derive(Clone, Debug, thiserror::Error)]
#[error("AWS KMS at {endpoint}: {operation}{} failed: {detail}", key_part(.key_id.as_deref()))]
pub struct AwsKmsError {
    endpoint: String,
    operation: Operation,
    key_id: Option<String>,
    kind: FailureKind,
    code: Option<String>,
    detail: String,
}

fn key_part(key: Option<&str>) -> String {
    key.map(|k| format!(" with key '{k}'")).unwrap_or_default()
}

impl AwsKmsError {
    pub(crate) fn new(
        endpoint: &str,
        operation: Operation,
        key_id: Option<&str>,
        failure: Failure,
    ) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            operation,
            key_id: key_id.map(str::to_owned),
            kind: failure.kind,
            code: failure.code,
            detail: failure.detail,
        }
    }

    /// The KMS endpoint (the configured URL, or the regional AWS endpoint).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The key the operation was for, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// How it failed.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The KMS error code (`ThrottlingException`, `AccessDeniedException`, ...), if KMS
    /// answered with one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

/// A failed call as the async side reports it, before it is tied to a key.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: None,
            detail: detail.into(),
        }
    }

    /// Keeps the error's code, message and cause chain. Never the raw HTTP response (the
    /// SDK's `Debug` of it would print headers).
    pub(crate) fn from_sdk<E, R>(err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let kind = match err {
            SdkError::TimeoutError(_) => FailureKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_timeout() => FailureKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_user() => FailureKind::Client,
            SdkError::DispatchFailure(_) => FailureKind::Network,
            SdkError::ResponseError(_) => FailureKind::Response,
            SdkError::ServiceError(_) => FailureKind::Service,
            _ => FailureKind::Client,
        };
        let code = err.code().map(str::to_owned);
        let message = err.message().map(str::to_owned);
        let detail = match (&code, &message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            _ => DisplayErrorContext(err).to_string(),
        };
        Self {
            kind,
            code,
            message,
            detail,
        }
    }

    pub(crate) fn class(&self) -> Class {
        classify(self.code.as_deref())
    }
}

/// What a KMS error code means for atrest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `NotFoundException`: no such key (or alias).
    NotFound,
    /// `DisabledException`: the key is disabled.
    Disabled,
    /// `KMSInvalidStateException`: the key is in a state that forbids the operation (pending
    /// deletion, pending import, ...); `DescribeKey` tells which.
    InvalidState,
    /// `InvalidCiphertextException` / `IncorrectKeyException`: the ciphertext is not valid
    /// under this key and encryption context.
    Authentication,
    /// Anything else: a backend failure.
    Other,
}

pub(crate) fn classify(code: Option<&str>) -> Class {
    match code {
        Some("NotFoundException") => Class::NotFound,
        Some("DisabledException") => Class::Disabled,
        Some("KMSInvalidStateException") => Class::InvalidState,
        Some("InvalidCiphertextException" | "IncorrectKeyException") => Class::Authentication,
        _ => Class::Other,
    }
}

/// The atrest reason for a KMS key state (`DescribeKey`'s `KeyState`), if the state is one
/// atrest names. `PendingImport` (imported material deleted or expired), `Unavailable`
/// (custom key store disconnected), `Creating` and `Updating` stay backend failures.
pub(crate) fn state_reason(state: &str) -> Option<KeyUnavailable> {
    match state {
        "Disabled" => Some(KeyUnavailable::Disabled),
        "PendingDeletion" | "PendingReplicaDeletion" => {
            Some(KeyUnavailable::ScheduledForDestruction)
        }
        _ => None,
    }
}

/// The reason a `KMSInvalidStateException` message gives, when `DescribeKey` could not tell
/// (e.g. no `kms:DescribeKey` permission). KMS says "... is pending deletion." and
/// "... is disabled.".
pub(crate) fn message_reason(message: Option<&str>) -> Option<KeyUnavailable> {
    let message = message?.to_ascii_lowercase();
    if message.contains("pending deletion") || message.contains("pendingdeletion") {
        Some(KeyUnavailable::ScheduledForDestruction)
    } else if message.contains("disabled") {
        Some(KeyUnavailable::Disabled)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_specific_variant() {
        assert_eq!(classify(Some("NotFoundException")), Class::NotFound);
        assert_eq!(classify(Some("DisabledException")), Class::Disabled);
        assert_eq!(
            classify(Some("KMSInvalidStateException")),
            Class::InvalidState
        );
        assert_eq!(
            classify(Some("InvalidCiphertextException")),
            Class::Authentication
        );
        assert_eq!(
            classify(Some("IncorrectKeyException")),
            Class::Authentication
        );
        for other in [
            "ThrottlingException",
            "KMSInternalException",
            "AccessDeniedException",
            "KeyUnavailableException",
            "DependencyTimeoutException",
            "InvalidKeyUsageException",
        ] {
            assert_eq!(classify(Some(other)), Class::Other, "{other}");
        }
        assert_eq!(classify(None), Class::Other);
    }

    #[test]
    fn states_and_messages_name_the_reason() {
        assert_eq!(state_reason("Disabled"), Some(KeyUnavailable::Disabled));
        assert_eq!(
            state_reason("PendingDeletion"),
            Some(KeyUnavailable::ScheduledForDestruction)
        );
        for other in [
            "Enabled",
            "PendingImport",
            "Unavailable",
            "Creating",
            "Updating",
        ] {
            assert_eq!(state_reason(other), None, "{other}");
        }
        assert_eq!(
            message_reason(Some(
                "arn:aws:kms:us-east-1:111122223333:key/1234 is pending deletion."
            )),
            Some(KeyUnavailable::ScheduledForDestruction)
        );
        assert_eq!(
            message_reason(Some(
                "arn:aws:kms:us-east-1:111122223333:key/1234 is disabled."
            )),
            Some(KeyUnavailable::Disabled)
        );
        assert_eq!(message_reason(Some("is pending import.")), None);
        assert_eq!(message_reason(None), None);
    }

    #[test]
    fn message_names_kms_endpoint_operation_and_key() {
        let err = AwsKmsError::new(
            "http://127.0.0.1:4566",
            Operation::Decrypt,
            Some("arn:aws:kms:us-east-1:111122223333:key/k"),
            Failure::new(FailureKind::Network, "dispatch failure: connection refused"),
        );
        assert_eq!(
            err.to_string(),
            "AWS KMS at http://127.0.0.1:4566: Decrypt with key \
             'arn:aws:kms:us-east-1:111122223333:key/k' failed: dispatch failure: connection refused"
        );
        assert_eq!(err.kind(), FailureKind::Network);
        let no_key = AwsKmsError::new(
            "https://kms.eu-west-1.amazonaws.com",
            Operation::Configure,
            None,
            Failure::new(FailureKind::Client, "no region"),
        );
        assert_eq!(
            no_key.to_string(),
            "AWS KMS at https://kms.eu-west-1.amazonaws.com: configuration failed: no region"
        );
    }
}
