//! OpenBao / HashiCorp Vault [Transit] as the holder of atrest's key-encryption keys.
//!
//! - An atrest [`KeyId`] is a Transit key name; Transit key versions are KEK versions.
//! - [`KeyWrapper::generate`] is `POST {mount}/datakey/plaintext/{name}` (latest version);
//!   [`KeyWrapper::wrap`] is `encrypt`, [`KeyWrapper::unwrap`] is `decrypt`,
//!   [`KeyWrapper::rewrap`] is `rewrap` (for derived keys the data key never leaves the KMS).
//! - A [`WrappedKey`] holds the version from the `vault:vN:` prefix and the whole
//!   `vault:vN:...` string as its ciphertext bytes.
//! - Each wrap is bound to its [`WrapContext`] (see [`Binding`]): `context` for derived keys,
//!   `associated_data` for the others; unwrapping under another context fails with
//!   [`UnwrapError::Authentication`].
//! - Key states map to errors: a missing key is [`UnwrapError::KeyNotFound`], a version above
//!   the latest is [`UnwrapError::VersionNotFound`], a version below the key's
//!   `min_decryption_version` is [`UnwrapError::Unavailable`] with
//!   [`KeyUnavailable::Retired`] (or [`KeyUnavailable::Destroyed`] once trimmed away).
//! - Network failures, 429 and 5xx are retried a bounded number of times with exponential
//!   backoff and jitter ([`Retry`]), each request limited by a timeout; then the call fails
//!   with a `Backend` error whose [`Error`] names the KMS, its address, the operation and the
//!   key (never a token or key material).
//! - The client is synchronous with no async runtime of its own (ureq, rustls): calling it
//!   from inside a tokio runtime blocks that thread for the call but never panics.
//!
//! [`Builder::build`] puts the client behind [`CachingWrapper`], so sealing many blobs with
//! the same key and context asks Transit for one data key per cache entry; [`Root`] makes a
//! Transit key the root key of a local keyring file.
//!
//! ```no_run
//! use atrest_envelope::{Context, KeyId, seal, open};
//! use atrest_envelope::cache::CacheLimits;
//! use atrest_kms::transit::{Binding, Builder, Retry};
//! use std::time::Duration;
//!
//! // Vault policy for this client (AppRole or token):
//! //   path "transit/keys/tenant-*"              { capabilities = ["read"] }
//! //   path "transit/datakey/plaintext/tenant-*" { capabilities = ["update"] }
//! //   path "transit/decrypt/tenant-*"           { capabilities = ["update"] }
//! //   path "transit/rewrap/tenant-*"            { capabilities = ["update"] }
//! // and a key per tenant: `bao write -f transit/keys/tenant-acme derived=true`.
//! let wrapper = Builder::new("https://bao.internal:8200")
//!     .approle(std::env::var("ROLE_ID")?, std::env::var("SECRET_ID")?)
//!     .namespace("team-a")              // optional
//!     .mount("transit")                 // the default
//!     .timeout(Duration::from_secs(5))  // per request
//!     .retry(Retry::DEFAULT)            // 4 attempts, 100 ms .. 2 s backoff
//!     .binding(Binding::Auto)           // reads each key's `derived` flag once
//!     .cache_limits(CacheLimits::default())
//!     .build()?;                        // `build_uncached()` opts out of the cache
//!
//! let key = KeyId::new("tenant-acme")?;
//! let context = Context::new().with("tenant", "acme")?;
//! let blob = seal(&wrapper, &key, &context, b"invoice")?;
//! assert_eq!(open(&wrapper, &context, &blob)?, b"invoice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Transit]: https://openbao.org/api-docs/secret/transit/
//! [`CachingWrapper`]: atrest_envelope::cache::CachingWrapper

mod api;
mod builder;
mod error;
mod http;
mod root;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use atrest_crypto::Key256;
use atrest_envelope::{
    DataKeyRequest, KeyId, KeyUnavailable, KeyWrapper, MAX_WRAPPED_KEY_LEN, RewrapError,
    UnwrapError, WrapContext, WrapError, WrappedKey,
};
use serde::de::DeserializeOwned;

pub use builder::{Binding, Builder, Retry};
pub use error::{ConfigError, Error, ErrorKind};
pub use root::Root;

use api::{Bind, KeyInfo, Refusal};
use http::{Op, Transport};

/// Requests sent to the server by a [`Client`] and its clones, per operation (every attempt
/// counts, retries and AppRole logins included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallStats {
    /// `datakey/plaintext` requests ([`KeyWrapper::generate`]).
    pub datakey: u64,
    /// `encrypt` requests ([`KeyWrapper::wrap`]).
    pub encrypt: u64,
    /// `decrypt` requests ([`KeyWrapper::unwrap`]).
    pub decrypt: u64,
    /// `rewrap` requests ([`KeyWrapper::rewrap`]).
    pub rewrap: u64,
    /// `GET keys/{name}` requests ([`Binding::Auto`], retired-or-destroyed checks).
    pub read_key: u64,
    /// AppRole logins.
    pub login: u64,
}

impl CallStats {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.datakey + self.encrypt + self.decrypt + self.rewrap + self.read_key + self.login
    }
}

/// A Transit client: a [`KeyWrapper`] whose KEKs are Transit keys. Cheap to clone (clones
/// share the connection pool, token, key settings and counters).
///
/// Made by [`Builder`].
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    transport: Arc<Transport>,
    mount: String,
    binding: Binding,
    /// Whether each key is derived (fixed at key creation), for [`Binding::Auto`].
    derived: Mutex<HashMap<String, bool>>,
}

/// A failed Transit call, before it becomes a `WrapError` / `UnwrapError`.
enum Failure {
    Backend(Error),
    Refused {
        refusal: Refusal,
        status: u16,
        message: String,
    },
}

impl Client {
    /// A builder for the server at `address`; see [`Builder::new`].
    pub fn builder(address: impl Into<String>) -> Builder {
        Builder::new(address)
    }

    pub(crate) fn from_parts(transport: Arc<Transport>, mount: String, binding: Binding) -> Self {
        Self {
            shared: Arc::new(Shared {
                transport,
                mount,
                binding,
                derived: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The server address.
    pub fn address(&self) -> &str {
        self.shared.transport.address()
    }

    /// The Transit mount path.
    pub fn mount(&self) -> &str {
        &self.shared.mount
    }

    /// Requests sent so far, all operations.
    pub fn calls(&self) -> u64 {
        self.stats().total()
    }

    /// Requests sent so far, per operation.
    pub fn stats(&self) -> CallStats {
        self.shared.transport.counters().snapshot()
    }

    fn error(&self, op: Op, key: &str, kind: ErrorKind) -> Error {
        self.shared.transport.error(op, Some(key), kind)
    }

    /// Sends one Transit request and parses its `data`.
    fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        path: &str,
        body: Option<&[u8]>,
        key: &str,
        bind: Option<&Bind>,
    ) -> Result<T, Failure> {
        let path = format!("{}/{path}", self.shared.mount);
        let answer = self
            .shared
            .transport
            .send(op, &path, body, Some(key))
            .map_err(Failure::Backend)?;
        match answer.status {
            200..=299 => {
                let reply: api::Reply<T> = serde_json::from_slice(&answer.body).map_err(|e| {
                    Failure::Backend(self.error(op, key, ErrorKind::Protocol(e.to_string())))
                })?;
                if let Some(bind) = bind
                    && let Some(warning) = api::ignored_binding(reply.warnings.as_deref(), bind)
                {
                    return Err(Failure::Backend(self.error(
                        op,
                        key,
                        ErrorKind::BindingIgnored { warning },
                    )));
                }
                reply.data.ok_or_else(|| {
                    Failure::Backend(self.error(
                        op,
                        key,
                        ErrorKind::Protocol("answer has no 'data'".into()),
                    ))
                })
            }
            401 | 403 => Err(Failure::Backend(self.error(
                op,
                key,
                ErrorKind::PermissionDenied {
                    status: answer.status,
                    message: answer.message(),
                },
            ))),
            status => {
                let message = answer.message();
                Err(Failure::Refused {
                    refusal: api::refusal(status, &message),
                    status,
                    message,
                })
            }
        }
    }

    /// `GET {mount}/keys/{name}`.
    fn read_key(&self, name: &str) -> Result<KeyInfo, Failure> {
        let info: KeyInfo = self.call(Op::ReadKey, &format!("keys/{name}"), None, name, None)?;
        self.shared
            .derived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), info.derived);
        Ok(info)
    }

    /// How to bind a request for key `name` to `ctx`.
    fn bind(&self, name: &str, ctx: &WrapContext) -> Result<Bind, Failure> {
        let derived = match self.shared.binding {
            Binding::Context => true,
            Binding::AssociatedData => false,
            Binding::Auto => {
                let known = self
                    .shared
                    .derived
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(name)
                    .copied();
                match known {
                    Some(derived) => derived,
                    None => self.read_key(name)?.derived,
                }
            }
        };
        Ok(if derived {
            Bind::context(ctx.aad())
        } else {
            Bind::associated_data(ctx.aad())
        })
    }

    /// A `vault:vN:...` answer as a [`WrappedKey`], checked against `key_version`.
    fn wrapped(&self, op: Op, key_id: &KeyId, sealed: &api::Sealed) -> Result<WrappedKey, Error> {
        let bad = |what: &str| {
            self.error(
                op,
                key_id.as_str(),
                ErrorKind::Protocol(format!("ciphertext {what}")),
            )
        };
        let version = api::ciphertext_version(sealed.ciphertext.as_bytes())
            .ok_or_else(|| bad("is not of the form vault:vN:..."))?;
        if sealed.key_version.is_some_and(|v| v != u64::from(version)) {
            return Err(bad("prefix disagrees with key_version"));
        }
        if sealed.ciphertext.len() > MAX_WRAPPED_KEY_LEN {
            return Err(bad("is longer than an envelope header allows"));
        }
        Ok(WrappedKey {
            key_id: key_id.clone(),
            version,
            ciphertext: sealed.ciphertext.as_bytes().to_vec(),
        })
    }

    fn wrap_error(&self, op: Op, key_id: &KeyId, failure: Failure) -> WrapError {
        match failure {
            Failure::Backend(e) => WrapError::Backend(Box::new(e)),
            Failure::Refused {
                refusal: Refusal::KeyNotFound,
                ..
            } => WrapError::KeyNotFound(key_id.clone()),
            Failure::Refused {
                status, message, ..
            } => WrapError::Backend(Box::new(self.error(
                op,
                key_id.as_str(),
                ErrorKind::Rejected { status, message },
            ))),
        }
    }

    fn unwrap_error(&self, op: Op, wrapped: &WrappedKey, failure: Failure) -> UnwrapError {
        let key_id = wrapped.key_id.clone();
        let version = wrapped.version;
        match failure {
            Failure::Backend(e) => UnwrapError::Backend(Box::new(e)),
            Failure::Refused {
                refusal,
                status,
                message,
            } => match refusal {
                Refusal::KeyNotFound => UnwrapError::KeyNotFound(key_id),
                Refusal::Authentication => UnwrapError::Authentication,
                Refusal::VersionTooNew => UnwrapError::VersionNotFound { key_id, version },
                Refusal::VersionTooOld => {
                    let reason = self.too_old_reason(key_id.as_str(), version);
                    UnwrapError::Unavailable {
                        key_id,
                        version,
                        reason,
                    }
                }
                Refusal::Other => UnwrapError::Backend(Box::new(self.error(
                    op,
                    key_id.as_str(),
                    ErrorKind::Rejected { status, message },
                ))),
            },
        }
    }

    /// Below `min_available_version` the version was trimmed (its key material deleted);
    /// otherwise it is only below `min_decryption_version`. If the key cannot be read, say
    /// retired: that is what the server's message states.
    fn too_old_reason(&self, name: &str, version: u32) -> KeyUnavailable {
        match self.read_key(name) {
            Ok(info) if u64::from(version) < info.min_available_version => {
                KeyUnavailable::Destroyed
            }
            _ => KeyUnavailable::Retired,
        }
    }

    /// Checks a wrapped key before any request: a valid key name and a `vault:vN:` ciphertext
    /// whose N is the recorded version.
    fn check_wrapped<'a>(&self, wrapped: &'a WrappedKey) -> Result<&'a str, UnwrapError> {
        if !api::valid_key_name(wrapped.key_id.as_str()) {
            return Err(UnwrapError::KeyNotFound(wrapped.key_id.clone()));
        }
        let ciphertext =
            std::str::from_utf8(&wrapped.ciphertext).map_err(|_| UnwrapError::Authentication)?;
        if api::ciphertext_version(ciphertext.as_bytes()) != Some(wrapped.version) {
            return Err(UnwrapError::Authentication);
        }
        Ok(ciphertext)
    }
}

#[deny(clippy::missing_trait_methods)]
impl KeyWrapper for Client {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        let name = key_id.as_str();
        if !api::valid_key_name(name) {
            return Err(WrapError::KeyNotFound(key_id.clone()));
        }
        let op = Op::Encrypt;
        let bind = self
            .bind(name, ctx)
            .map_err(|f| self.wrap_error(op, key_id, f))?;
        let body = api::encrypt_body(data_key, &bind);
        let sealed: api::Sealed = self
            .call(
                op,
                &format!("encrypt/{name}"),
                Some(&body),
                name,
                Some(&bind),
            )
            .map_err(|f| self.wrap_error(op, key_id, f))?;
        self.wrapped(op, key_id, &sealed)
            .map_err(|e| WrapError::Backend(Box::new(e)))
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        let ciphertext = self.check_wrapped(wrapped)?;
        let name = wrapped.key_id.as_str();
        let op = Op::Decrypt;
        let bind = self
            .bind(name, ctx)
            .map_err(|f| self.unwrap_error(op, wrapped, f))?;
        let body = api::ciphertext_body(ciphertext, &bind);
        let opened: api::Opened = self
            .call(
                op,
                &format!("decrypt/{name}"),
                Some(&body),
                name,
                Some(&bind),
            )
            .map_err(|f| self.unwrap_error(op, wrapped, f))?;
        api::decode_key(&opened.plaintext).ok_or_else(|| {
            UnwrapError::Backend(Box::new(self.error(
                op,
                name,
                ErrorKind::Protocol("decrypted data key is not 32 bytes of base64".into()),
            )))
        })
    }

    fn generate(
        &self,
        key_id: &KeyId,
        ctx: &WrapContext,
        _request: &DataKeyRequest,
    ) -> Result<(Key256, WrappedKey), WrapError> {
        let name = key_id.as_str();
        if !api::valid_key_name(name) {
            return Err(WrapError::KeyNotFound(key_id.clone()));
        }
        let op = Op::Datakey;
        let bind = self
            .bind(name, ctx)
            .map_err(|f| self.wrap_error(op, key_id, f))?;
        let body = api::datakey_body(&bind);
        let sealed: api::Sealed = self
            .call(
                op,
                &format!("datakey/plaintext/{name}"),
                Some(&body),
                name,
                Some(&bind),
            )
            .map_err(|f| self.wrap_error(op, key_id, f))?;
        let protocol = |what: &str| {
            WrapError::Backend(Box::new(self.error(
                op,
                name,
                ErrorKind::Protocol(what.to_owned()),
            )))
        };
        let key = sealed
            .plaintext
            .as_deref()
            .and_then(|p| api::decode_key(p))
            .ok_or_else(|| protocol("datakey answer has no 32-byte plaintext"))?;
        let wrapped = self
            .wrapped(op, key_id, &sealed)
            .map_err(|e| WrapError::Backend(Box::new(e)))?;
        Ok((key, wrapped))
    }

    /// Transit `rewrap` for derived keys (the data key stays in the KMS); for keys bound by
    /// `associated_data`, which Transit's `rewrap` does not take, `decrypt` then `encrypt`.
    /// Every failure is reported as [`RewrapError::Unwrap`] except those of that `encrypt`.
    fn rewrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<WrappedKey, RewrapError> {
        let ciphertext = self.check_wrapped(wrapped)?;
        let name = wrapped.key_id.as_str();
        let op = Op::Rewrap;
        let bind = self
            .bind(name, ctx)
            .map_err(|f| self.unwrap_error(op, wrapped, f))?;
        if !bind.is_context() {
            let key = self.unwrap(wrapped, ctx)?;
            return Ok(self.wrap(&wrapped.key_id, &key, ctx)?);
        }
        let body = api::ciphertext_body(ciphertext, &bind);
        let sealed: api::Sealed = self
            .call(
                op,
                &format!("rewrap/{name}"),
                Some(&body),
                name,
                Some(&bind),
            )
            .map_err(|f| self.unwrap_error(op, wrapped, f))?;
        self.wrapped(op, &wrapped.key_id, &sealed)
            .map_err(|e| RewrapError::Unwrap(UnwrapError::Backend(Box::new(e))))
    }

    /// Forgets the key's settings read for [`Binding::Auto`] (they are read again on next
    /// use, e.g. after the key was deleted and created anew). The client caches no key
    /// material; the [`CachingWrapper`](atrest_envelope::cache::CachingWrapper) in front of it
    /// does, and forwards this call.
    fn forget(&self, key_id: &KeyId) {
        self.shared
            .derived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key_id.as_str());
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("transit::Client")
            .field("address", &self.address())
            .field("mount", &self.shared.mount)
            .field("binding", &self.shared.binding)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
