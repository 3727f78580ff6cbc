//! The HTTP side of the Transit client: one blocking request at a time per call (ureq, no async
//! runtime, so it is safe to call from inside tokio), token and AppRole authentication,
//! bounded retries with exponential backoff and jitter, and call counters.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::builder::Retry;
use super::error::{Error, ErrorKind};

/// The largest response body read (Transit answers are a few hundred bytes).
const MAX_BODY: u64 = 1 << 20;
/// The longest server error message kept in an error.
const MAX_MESSAGE: usize = 300;

/// A Transit (or auth) operation, for counters and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Datakey,
    Encrypt,
    Decrypt,
    Rewrap,
    ReadKey,
    Login,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Datakey => "datakey",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Rewrap => "rewrap",
            Self::ReadKey => "read key",
            Self::Login => "AppRole login",
        }
    }
}

/// Requests sent, per operation (retries included).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    datakey: AtomicU64,
    encrypt: AtomicU64,
    decrypt: AtomicU64,
    rewrap: AtomicU64,
    read_key: AtomicU64,
    login: AtomicU64,
}

impl Counters {
    fn counter(&self, op: Op) -> &AtomicU64 {
        match op {
            Op::Datakey => &self.datakey,
            Op::Encrypt => &self.encrypt,
            Op::Decrypt => &self.decrypt,
            Op::Rewrap => &self.rewrap,
            Op::ReadKey => &self.read_key,
            Op::Login => &self.login,
        }
    }

    pub(crate) fn snapshot(&self) -> super::CallStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        super::CallStats {
            datakey: get(&self.datakey),
            encrypt: get(&self.encrypt),
            decrypt: get(&self.decrypt),
            rewrap: get(&self.rewrap),
            read_key: get(&self.read_key),
            login: get(&self.login),
        }
    }
}

/// How the client authenticates.
pub(crate) enum Auth {
    /// A fixed token (`X-Vault-Token`).
    Token(Zeroizing<String>),
    /// AppRole: log in at `auth/{mount}/login`, cache the client token until 3/4 of its
    /// lease has passed, log in again then or once on a 403.
    AppRole {
        mount: String,
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
        token: Mutex<Option<CachedToken>>,
    },
}

pub(crate) struct CachedToken {
    token: Zeroizing<String>,
    renew_after: Option<Instant>,
}

/// A response whose status was not retried.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl Answer {
    /// The server's `errors` array joined, whitespace collapsed, truncated; or the start of a
    /// non-JSON body.
    pub(crate) fn message(&self) -> String {
        error_message(&self.body)
    }
}

/// The HTTP transport shared by every clone of a client.
pub(crate) struct Transport {
    agent: ureq::Agent,
    address: String,
    namespace: Option<String>,
    auth: Auth,
    retry: Retry,
    counters: Counters,
}

enum Attempt {
    /// An answer that is not retried.
    Answer(Answer),
    /// No answer (connection, timeout): retry.
    Retryable(String),
    /// 429 or 5xx: retry.
    Status(u16, String),
    /// A local failure retrying cannot fix (TLS, redirect, bad request building).
    Fatal(String),
}

impl Transport {
    pub(crate) fn new(
        agent: ureq::Agent,
        address: String,
        namespace: Option<String>,
        auth: Auth,
        retry: Retry,
    ) -> Self {
        Self {
            agent,
            address,
            namespace,
            auth,
            retry,
            counters: Counters::default(),
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn error(&self, op: Op, key: Option<&str>, kind: ErrorKind) -> Error {
        Error::new(&self.address, op.name(), key, kind)
    }

    /// Sends `GET /v1/{path}` (no body) or `POST /v1/{path}` (with `body`), retrying
    /// transport failures, 429 and 5xx; on a 403 with AppRole, logs in again once.
    ///
    /// Returns the first answer that is not retried (2xx, 3xx, 4xx but 429), or an error
    /// naming the operation and key once the retries are spent.
    pub(crate) fn send(
        &self,
        op: Op,
        path: &str,
        body: Option<&[u8]>,
        key: Option<&str>,
    ) -> Result<Answer, Error> {
        let url = format!("{}/v1/{path}", self.address);
        let token = self.token(key)?;
        let answer = self.retrying(op, key, || self.once(op, &url, Some(&token), body))?;
        if answer.status != 403 || !matches!(self.auth, Auth::AppRole { .. }) {
            return Ok(answer);
        }
        // The cached token expired early or was revoked: log in once more.
        self.forget_token();
        let token = self.token(key)?;
        self.retrying(op, key, || self.once(op, &url, Some(&token), body))
    }

    /// Runs `once` until it gives an answer that is not retried, or the attempts are spent.
    fn retrying(
        &self,
        op: Op,
        key: Option<&str>,
        once: impl Fn() -> Attempt,
    ) -> Result<Answer, Error> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = match once() {
                Attempt::Answer(answer) => return Ok(answer),
                Attempt::Fatal(message) => {
                    return Err(self.error(op, key, ErrorKind::Client(message)));
                }
                Attempt::Status(status, message) => ErrorKind::Unavailable {
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    status,
                    message,
                },
                Attempt::Retryable(message) => ErrorKind::Unreachable {
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    message,
                },
            };
            if attempt >= self.retry.max_attempts() {
                return Err(self.error(op, key, last));
            }
            std::thread::sleep(self.retry.delay(attempt, jitter()));
        }
    }

    /// One request.
    fn once(&self, op: Op, url: &str, token: Option<&str>, body: Option<&[u8]>) -> Attempt {
        self.counters.counter(op).fetch_add(1, Ordering::Relaxed);
        let result = match body {
            Some(body) => {
                let mut request = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token);
                }
                if let Some(ns) = &self.namespace {
                    request = request.header("X-Vault-Namespace", ns.as_str());
                }
                request.send(body)
            }
            None => {
                let mut request = self.agent.get(url);
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token);
                }
                if let Some(ns) = &self.namespace {
                    request = request.header("X-Vault-Namespace", ns.as_str());
                }
                request.call()
            }
        };
        let mut response = match result {
            Ok(response) => response,
            Err(err) => return classify(err),
        };
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            return Attempt::Fatal(format!(
                "unexpected redirect (HTTP {status}) to {location}; point the client at \
                     the active node or enable request forwarding"
            ));
        }
        let body = match response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
        {
            Ok(body) => Zeroizing::new(body),
            Err(err) => return classify(err),
        };
        if status == 429 || status >= 500 {
            return Attempt::Status(status, error_message(&body));
        }
        Attempt::Answer(Answer { status, body })
    }

    fn forget_token(&self) {
        if let Auth::AppRole { token, .. } = &self.auth {
            *token.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// The token to send: the fixed one, or the cached AppRole token (logging in if there is
    /// none or it is due for renewal).
    fn token(&self, key: Option<&str>) -> Result<Zeroizing<String>, Error> {
        let (mount, role_id, secret_id, cache) = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
                token,
            } => (mount, role_id, secret_id, token),
        };
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.as_ref()
            && cached.renew_after.is_none_or(|t| Instant::now() < t)
        {
            return Ok(cached.token.clone());
        }
        *cache = None;
        let fresh = self.login(mount, role_id, secret_id, key)?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    fn login(
        &self,
        mount: &str,
        role_id: &str,
        secret_id: &str,
        key: Option<&str>,
    ) -> Result<CachedToken, Error> {
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        #[derive(Deserialize)]
        struct Reply {
            auth: Option<AuthReply>,
        }
        #[derive(Deserialize)]
        struct AuthReply {
            client_token: Zeroizing<String>,
            #[serde(default)]
            lease_duration: u64,
        }
        let mut body = Zeroizing::new(Vec::with_capacity(64 + secret_id.len() + role_id.len()));
        serde_json::to_writer(&mut *body, &Login { role_id, secret_id })
            .map_err(|e| self.error(Op::Login, key, ErrorKind::Client(e.to_string())))?;
        let url = format!("{}/v1/auth/{mount}/login", self.address);
        let answer = self.retrying(Op::Login, key, || {
            self.once(Op::Login, &url, None, Some(&body))
        })?;
        if !(200..300).contains(&answer.status) {
            return Err(self.error(
                Op::Login,
                key,
                ErrorKind::PermissionDenied {
                    status: answer.status,
                    message: answer.message(),
                },
            ));
        }
        let reply: Reply = serde_json::from_slice(&answer.body)
            .map_err(|e| self.error(Op::Login, key, ErrorKind::Protocol(e.to_string())))?;
        let auth = reply.auth.ok_or_else(|| {
            self.error(
                Op::Login,
                key,
                ErrorKind::Protocol("login answer has no 'auth'".into()),
            )
        })?;
        if auth.client_token.is_empty() || !auth.client_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(self.error(
                Op::Login,
                key,
                ErrorKind::Protocol("login answer has no usable client token".into()),
            ));
        }
        let renew_after = (auth.lease_duration > 0).then(|| {
            Instant::now() + Duration::from_millis(auth.lease_duration.saturating_mul(750))
        });
        Ok(CachedToken {
            token: auth.client_token,
            renew_after,
        })
    }
}

/// Connection failures, timeouts and broken bodies are retried; TLS and request-building
/// errors are not. (A rejected server certificate arrives as an I/O error of kind
/// `InvalidData`: retrying it cannot help.)
fn classify(err: ureq::Error) -> Attempt {
    use std::io::ErrorKind as Io;
    match err {
        ureq::Error::Io(ref e)
            if matches!(
                e.kind(),
                Io::InvalidData | Io::InvalidInput | Io::PermissionDenied
            ) =>
        {
            Attempt::Fatal(err.to_string())
        }
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => Attempt::Retryable(err.to_string()),
        other => Attempt::Fatal(other.to_string()),
    }
}

/// A pseudo-random number for backoff jitter (not for anything secret): std's per-instance
/// random hasher keys.
fn jitter() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(Instant::now())
}

/// The `errors` of an OpenBao/Vault error body, joined and tidied (Go's multierror adds
/// "1 error occurred:\n\t* ").
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let raw = match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e.errors.join("; "),
        Ok(_) => "(no error message)".to_owned(),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(MAX_MESSAGE)]).into_owned(),
    };
    let cleaned = raw
        .replace("error occurred:", "error occurred: ")
        .split_whitespace()
        .filter(|w| *w != "*")
        .collect::<Vec<_>>()
        .join(" ");
    let cleaned = cleaned
        .strip_prefix("1 error occurred: ")
        .map_or(cleaned.clone(), str::to_owned);
    if cleaned.chars().count() > MAX_MESSAGE {
        cleaned
            .chars()
            .take(MAX_MESSAGE)
            .chain("...".chars())
            .collect()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_tidied() {
        assert_eq!(
            error_message(br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            "permission denied"
        );
        assert_eq!(
            error_message(br#"{"errors":["encryption key not found"]}"#),
            "encryption key not found"
        );
        assert_eq!(error_message(br#"{"errors":[]}"#), "(no error message)");
        assert_eq!(error_message(b"bad gateway"), "bad gateway");
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000));
        assert_eq!(error_message(long.as_bytes()).len(), MAX_MESSAGE + 3);
    }
}
