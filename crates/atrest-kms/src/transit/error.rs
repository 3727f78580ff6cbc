//! Errors of the Transit client: what [`WrapError::Backend`](atrest_envelope::WrapError) and
//! [`UnwrapError::Backend`](atrest_envelope::UnwrapError) carry, and builder misuse.

use std::fmt;
use std::time::Duration;

/// A call to OpenBao / Vault Transit failed for a reason that is not a key state: the server
/// was unreachable or kept failing after the bounded retries, refused the credentials, or
/// answered something this client does not understand.
///
/// Its `Display` names the KMS, its address, the operation and the key; it never contains a
/// token, a secret id or key material.
#[derive(Debug)]
pub struct Error {
    address: String,
    operation: &'static str,
    key: Option<String>,
    kind: ErrorKind,
}

/// Why a Transit call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No answer: connection refused or reset, DNS failure, timeout, on every attempt.
    Unreachable {
        /// How many requests were sent.
        attempts: u32,
        /// How long the attempts and the waits between them took.
        elapsed: Duration,
        /// The last transport error.
        message: String,
    },
    /// The server kept answering 429 or 5xx (sealed, standby, overloaded, ...).
    Unavailable {
        /// How many requests were sent.
        attempts: u32,
        /// How long the attempts and the waits between them took.
        elapsed: Duration,
        /// The last HTTP status.
        status: u16,
        /// The server's error messages.
        message: String,
    },
    /// The token or the AppRole login was refused (403, or 400 from the login endpoint).
    PermissionDenied {
        /// The HTTP status.
        status: u16,
        /// The server's error messages.
        message: String,
    },
    /// The server rejected the request (a 4xx this client does not map to a key state).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's error messages.
        message: String,
    },
    /// The server ignored a parameter that binds the wrap to its context (an OpenBao/Vault
    /// too old for `associated_data` on this endpoint): the result would not be bound, so it
    /// was discarded.
    BindingIgnored {
        /// The server's warning.
        warning: String,
    },
    /// The answer could not be understood (bad JSON, missing field, unexpected ciphertext
    /// form, redirect).
    Protocol(String),
    /// TLS or another local, non-retryable failure of the HTTP client.
    Client(String),
}

impl Error {
    pub(crate) fn new(
        address: &str,
        operation: &'static str,
        key: Option<&str>,
        kind: ErrorKind,
    ) -> Self {
        Self {
            address: address.to_owned(),
            operation,
            key: key.map(str::to_owned),
            kind,
        }
    }

    /// The server address this client talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The Transit operation: `datakey`, `encrypt`, `decrypt`, `rewrap`, `read key`, `login`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The Transit key name, if the call was about one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Why it failed.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenBao/Vault Transit at {}: {}",
            self.address, self.operation
        )?;
        if let Some(key) = &self.key {
            write!(f, " with key '{key}'")?;
        }
        f.write_str(" failed: ")?;
        match &self.kind {
            ErrorKind::Unreachable {
                attempts,
                elapsed,
                message,
            } => write!(
                f,
                "unreachable after {attempts} attempt(s) in {:.1}s: {message}",
                elapsed.as_secs_f64()
            ),
            ErrorKind::Unavailable {
                attempts,
                elapsed,
                status,
                message,
            } => write!(
                f,
                "HTTP {status} after {attempts} attempt(s) in {:.1}s: {message}",
                elapsed.as_secs_f64()
            ),
            ErrorKind::PermissionDenied { status, message } => {
                write!(f, "permission denied (HTTP {status}): {message}")
            }
            ErrorKind::Rejected { status, message } => {
                write!(f, "rejected (HTTP {status}): {message}")
            }
            ErrorKind::BindingIgnored { warning } => write!(
                f,
                "the server ignored the context binding ({warning}); upgrade it or use a \
                 derived key"
            ),
            ErrorKind::Protocol(message) => write!(f, "unexpected answer: {message}"),
            ErrorKind::Client(message) => write!(f, "HTTP client error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// A [`Builder`](super::Builder) was given settings that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The address is not an `http://` or `https://` URL without path, query or fragment.
    #[error("Transit address must be http(s)://host[:port] (got '{0}')")]
    Address(String),
    /// A mount path (Transit or AppRole) is empty or has characters OpenBao/Vault does not
    /// allow in a path segment.
    #[error("invalid mount path '{0}'")]
    Mount(String),
    /// Neither a token nor an AppRole was configured.
    #[error("no authentication configured: call .token(..) or .approle(..)")]
    NoAuth,
    /// A token, role id, secret id or namespace with characters not allowed in an HTTP
    /// header (the value itself is not shown).
    #[error("{0} contains characters not allowed in an HTTP header")]
    HeaderValue(&'static str),
    /// The CA certificate PEM could not be parsed.
    #[error("CA certificate PEM could not be parsed: {0}")]
    CaCertificate(String),
    /// A retry policy with no attempt at all.
    #[error("retry policy must allow at least one attempt")]
    Retry,
}
