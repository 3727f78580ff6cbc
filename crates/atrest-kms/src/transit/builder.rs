//! Configuring a Transit client: address, authentication, mount, namespace, TLS roots,
//! timeout, retries, binding and cache limits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atrest_envelope::cache::{CacheLimits, CachingWrapper};
use zeroize::Zeroizing;

use super::Client;
use super::error::ConfigError;
use super::http::{Auth, Transport};

/// Bounded retries with exponential backoff and jitter.
///
/// A request is retried after a connection failure, a timeout, or an HTTP 429 or 5xx answer;
/// never after another 4xx. Before attempt `n + 1` the client sleeps a random duration in
/// `[d/2, d]` where `d = min(max_backoff, initial_backoff * 2^(n-1))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Retry {
    /// 4 attempts, backoff from 100 ms doubling up to 2 s (at most 0.7 s of waiting).
    pub const DEFAULT: Self = Self {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    };

    /// A single attempt, no retry.
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// `max_attempts` requests in all (at least 1), waiting from `initial_backoff` doubling
    /// up to `max_backoff` between them.
    pub const fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            max_attempts,
            initial_backoff,
            max_backoff,
        }
    }

    /// Requests in all, the first included.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest a call can take with this policy and a per-request `timeout`: every
    /// attempt timing out plus the longest waits. (An AppRole login, when due, is bounded
    /// the same way.)
    pub fn worst_case(&self, timeout: Duration) -> Duration {
        let waits: Duration = (1..self.max_attempts)
            .map(|n| self.backoff(n))
            .fold(Duration::ZERO, |a, b| a.saturating_add(b));
        timeout
            .saturating_mul(self.max_attempts)
            .saturating_add(waits)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The wait after attempt `attempt` (1-based), with equal jitter from `random`.
    pub(crate) fn delay(&self, attempt: u32, random: u64) -> Duration {
        let full = u64::try_from(self.backoff(attempt).as_nanos()).unwrap_or(u64::MAX);
        let half = full / 2;
        Duration::from_nanos(half + random % (full - half + 1))
    }
}

impl Default for Retry {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a wrap is bound to its [`WrapContext`](atrest_envelope::WrapContext).
///
/// - Derived keys (`derived: true`): Transit derives a key per `context`; this client sends
///   `context = base64(SHA-256(ctx.aad()))`. The AAD already starts with atrest's magic,
///   version and suite, so it is domain-separated; hashing keeps requests short whatever the
///   context size. Server-side `rewrap` works (the data key never leaves the KMS).
/// - Other AEAD keys (`aes256-gcm96`, ...): this client sends
///   `associated_data = base64(ctx.aad())`. OpenBao/Vault's `rewrap` endpoint takes no
///   associated data, so [`KeyWrapper::rewrap`](atrest_envelope::KeyWrapper::rewrap) then
///   decrypts and encrypts again through this process (the data key passes through its
///   memory, zeroized after). Prefer derived keys.
///
/// Either way, unwrapping under another context fails with
/// [`UnwrapError::Authentication`](atrest_envelope::UnwrapError::Authentication).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binding {
    /// Read each key's settings once (`GET {mount}/keys/{name}`, needs `read` on that path)
    /// and pick `context` for derived keys, `associated_data` otherwise. The read also makes
    /// a missing key [`KeyNotFound`](atrest_envelope::WrapError::KeyNotFound) before any
    /// `encrypt`, which would otherwise create the key on servers that allow upserts.
    #[default]
    Auto,
    /// Every key is derived: send `context`, never read key settings.
    Context,
    /// No key is derived: send `associated_data`, never read key settings.
    AssociatedData,
}

/// Builds a Transit [`Client`]; [`Builder::build`] returns it inside a
/// [`CachingWrapper`] (the default for a remote KMS), [`Builder::build_uncached`] without.
///
/// ```no_run
/// use atrest_kms::transit::Builder;
/// let wrapper = Builder::new("https://bao.internal:8200")
///     .approle("role-id", "secret-id")
///     .mount("transit")
///     .build()?;
/// # Ok::<(), atrest_kms::transit::ConfigError>(())
/// ```
pub struct Builder {
    address: String,
    auth: Option<AuthConfig>,
    approle_mount: String,
    namespace: Option<String>,
    mount: String,
    timeout: Duration,
    retry: Retry,
    binding: Binding,
    ca_pem: Option<Vec<u8>>,
    cache_limits: CacheLimits,
}

enum AuthConfig {
    Token(Zeroizing<String>),
    AppRole {
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
    },
}

impl Builder {
    /// A client for the server at `address` (`http(s)://host[:port]`), Transit mounted at
    /// `transit`, 10 s per request, [`Retry::DEFAULT`], [`Binding::Auto`], the webpki roots
    /// for `https`, [`CacheLimits::default`]. Set a token or an AppRole before building.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            auth: None,
            approle_mount: "approle".into(),
            namespace: None,
            mount: "transit".into(),
            timeout: Duration::from_secs(10),
            retry: Retry::DEFAULT,
            binding: Binding::Auto,
            ca_pem: None,
            cache_limits: CacheLimits::default(),
        }
    }

    /// From the environment the `bao`/`vault` CLIs use: `BAO_ADDR` or `VAULT_ADDR`
    /// (default `https://127.0.0.1:8200`), `BAO_TOKEN` or `VAULT_TOKEN`, `BAO_NAMESPACE` or
    /// `VAULT_NAMESPACE`.
    pub fn from_env() -> Self {
        let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok());
        let mut builder = Self::new(
            var(["BAO_ADDR", "VAULT_ADDR"]).unwrap_or_else(|| "https://127.0.0.1:8200".into()),
        );
        if let Some(token) = var(["BAO_TOKEN", "VAULT_TOKEN"]) {
            builder = builder.token(token);
        }
        if let Some(ns) = var(["BAO_NAMESPACE", "VAULT_NAMESPACE"]) {
            builder = builder.namespace(ns);
        }
        builder
    }

    /// Authenticates every request with this token (`X-Vault-Token`).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(AuthConfig::Token(Zeroizing::new(token.into())));
        self
    }

    /// Authenticates with AppRole: logs in at `auth/approle/login` (see
    /// [`Builder::approle_mount`]), caches the client token for 3/4 of its lease, logs in
    /// again then, and once after a 403 (a token revoked early).
    #[must_use]
    pub fn approle(mut self, role_id: impl Into<String>, secret_id: impl Into<String>) -> Self {
        self.auth = Some(AuthConfig::AppRole {
            role_id: Zeroizing::new(role_id.into()),
            secret_id: Zeroizing::new(secret_id.into()),
        });
        self
    }

    /// Where the AppRole auth method is mounted (default `approle`).
    #[must_use]
    pub fn approle_mount(mut self, mount: impl Into<String>) -> Self {
        self.approle_mount = mount.into();
        self
    }

    /// Sends `X-Vault-Namespace` (Vault Enterprise / OpenBao namespaces).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Where the Transit engine is mounted (default `transit`).
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// The limit for one request, connect to last body byte (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy (default [`Retry::DEFAULT`]).
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// How wraps are bound to their context (default [`Binding::Auto`]).
    #[must_use]
    pub fn binding(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }

    /// Trusts only the CA certificate(s) in this PEM for `https` (instead of the webpki
    /// roots).
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Limits of the data-key cache that [`Builder::build`] puts in front of the client.
    #[must_use]
    pub fn cache_limits(mut self, limits: CacheLimits) -> Self {
        self.cache_limits = limits;
        self
    }

    /// The client behind a data-key cache (the default for a remote KMS: sealing many blobs
    /// with the same key and context calls `datakey` once per cache entry, not per blob).
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable address, mount, credential or CA certificate.
    pub fn build(self) -> Result<CachingWrapper<Client>, ConfigError> {
        let limits = self.cache_limits;
        Ok(CachingWrapper::new(self.build_uncached()?, limits))
    }

    /// The client alone: every `generate`/`unwrap` is a request to the server.
    ///
    /// # Errors
    /// As [`Builder::build`].
    pub fn build_uncached(self) -> Result<Client, ConfigError> {
        let address = check_address(&self.address)?;
        let mount = check_mount(&self.mount)?;
        let approle_mount = check_mount(&self.approle_mount)?;
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Retry);
        }
        if let Some(ns) = &self.namespace {
            check_header(ns, "namespace")?;
        }
        let auth = match self.auth.ok_or(ConfigError::NoAuth)? {
            AuthConfig::Token(token) => {
                check_header(&token, "token")?;
                Auth::Token(token)
            }
            AuthConfig::AppRole { role_id, secret_id } => {
                check_header(&role_id, "role id")?;
                check_header(&secret_id, "secret id")?;
                Auth::AppRole {
                    mount: approle_mount,
                    role_id,
                    secret_id,
                    token: Mutex::new(None),
                }
            }
        };
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(pem) = &self.ca_pem {
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                match item.map_err(|e| ConfigError::CaCertificate(e.to_string()))? {
                    ureq::tls::PemItem::Certificate(cert) => certs.push(cert),
                    _ => continue,
                }
            }
            if certs.is_empty() {
                return Err(ConfigError::CaCertificate(
                    "no certificate in the PEM".into(),
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never follow a redirect with the token; a standby without request forwarding
            // is reported instead.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(self.timeout))
            .tls_config(tls.build())
            .user_agent(concat!("atrest-kms/", env!("CARGO_PKG_VERSION")))
            .build();
        let transport = Transport::new(
            ureq::Agent::new_with_config(config),
            address,
            self.namespace,
            auth,
            self.retry,
        );
        Ok(Client::from_parts(Arc::new(transport), mount, self.binding))
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("address", &self.address)
            .field(
                "auth",
                &match self.auth {
                    None => "none",
                    Some(AuthConfig::Token(_)) => "token [REDACTED]",
                    Some(AuthConfig::AppRole { .. }) => "approle [REDACTED]",
                },
            )
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

fn check_address(address: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::Address(address.to_owned());
    let trimmed = address.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(bad)?;
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

/// A mount path: segments of `[A-Za-z0-9_.-]` separated by `/`, leading/trailing `/` removed.
pub(crate) fn check_mount(mount: &str) -> Result<String, ConfigError> {
    let trimmed = mount.trim_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::Mount(mount.to_owned()))
    }
}

fn check_header(value: &str, what: &'static str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::HeaderValue(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_is_bounded_and_jittered() {
        let r = Retry::DEFAULT;
        assert_eq!(r.backoff(1), Duration::from_millis(100));
        assert_eq!(r.backoff(2), Duration::from_millis(200));
        assert_eq!(r.backoff(3), Duration::from_millis(400));
        assert_eq!(r.backoff(10), Duration::from_secs(2));
        assert_eq!(r.backoff(200), Duration::from_secs(2));
        for random in [0, 1, 12345, u64::MAX] {
            let d = r.delay(3, random);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
        assert_ne!(r.delay(3, 1), r.delay(3, 99_999_999));
        assert_eq!(
            r.worst_case(Duration::from_secs(1)),
            Duration::from_millis(4700)
        );
        assert_eq!(
            Retry::NONE.worst_case(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(Retry::NONE.delay(1, 7), Duration::ZERO);
    }

    #[test]
    fn addresses_and_mounts_are_checked() {
        assert_eq!(
            check_address("http://127.0.0.1:8200/").expect("ok"),
            "http://127.0.0.1:8200"
        );
        assert!(check_address("https://bao.example:8200").is_ok());
        for bad in [
            "127.0.0.1:8200",
            "ftp://x",
            "http://",
            "http://h/v1",
            "http://u@h",
            "http://h?x",
        ] {
            assert!(
                matches!(check_address(bad), Err(ConfigError::Address(_))),
                "{bad}"
            );
        }
        assert_eq!(check_mount("/transit/").expect("ok"), "transit");
        assert_eq!(check_mount("team-a/transit").expect("ok"), "team-a/transit");
        for bad in [
            "", "/", "a//b", "../sys", "a/../b", "tr ansit", "t?x", "t%2f",
        ] {
            assert!(
                matches!(check_mount(bad), Err(ConfigError::Mount(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn builder_rejects_bad_settings_without_leaking_them() {
        let err = Builder::new("http://127.0.0.1:1").build_uncached();
        assert!(matches!(err, Err(ConfigError::NoAuth)));
        let err = Builder::new("http://127.0.0.1:1")
            .token("s.secret\ntoken")
            .build_uncached();
        assert!(matches!(err, Err(ConfigError::HeaderValue("token"))));
        let err = Builder::new("http://127.0.0.1:1")
            .token("t")
            .retry(Retry::new(0, Duration::ZERO, Duration::ZERO))
            .build_uncached();
        assert!(matches!(err, Err(ConfigError::Retry)));
        let err = Builder::new("http://127.0.0.1:1")
            .token("t")
            .ca_certificate_pem("not a pem")
            .build_uncached();
        assert!(matches!(err, Err(ConfigError::CaCertificate(_))));
        let b = Builder::new("http://127.0.0.1:1").approle("role", "very-secret-id");
        let debug = format!("{b:?}");
        assert!(!debug.contains("very-secret-id"), "{debug}");
    }
}
