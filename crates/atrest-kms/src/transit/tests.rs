//! Client behaviour against a scripted HTTP server on 127.0.0.1 (no OpenBao needed): retries,
//! timeouts, authentication, error mapping. The real-server suite is tests/transit.rs.

#![allow(clippy::panic, reason = "a failing test panics")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrest_crypto::Key256;
use atrest_envelope::{
    Context, DataKeyRequest, KeyId, KeyWrapper, UnwrapError, WrapContext, WrapError, WrappedKey,
};

use super::{Binding, Builder, Client, Error, ErrorKind, Retry};

/// A request as the fake server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    token: Option<String>,
    namespace: Option<String>,
    body: String,
}

type Script = dyn Fn(&Seen, usize) -> Option<(u16, String)> + Send + Sync;

/// Serves each connection with `script(request, index)`: `Some((status, body))`, or `None`
/// to never answer.
fn fake(script: Box<Script>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let (mut len, mut token, mut namespace) = (0usize, None, None);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((&header, ""));
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => len = value.parse().unwrap_or(0),
                    "x-vault-token" => token = Some(value),
                    "x-vault-namespace" => namespace = Some(value),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let request = Seen {
                method,
                path,
                token,
                namespace,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let index = {
                let mut log = log.lock().expect("lock");
                log.push(request.clone());
                log.len() - 1
            };
            match script(&request, index) {
                Some((status, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nLocation: http://elsewhere.invalid/\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                None => {
                    // Hold the connection open without answering.
                    std::thread::sleep(Duration::from_secs(5));
                }
            }
        }
    });
    (addr, seen)
}

fn datakey_ok(version: u32) -> String {
    format!(
        r#"{{"data":{{"ciphertext":"vault:v{version}:AAAA","key_version":{version},
        "plaintext":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}},"warnings":null}}"#
    )
}

fn fast() -> Retry {
    Retry::new(4, Duration::from_millis(1), Duration::from_millis(5))
}

fn client(addr: &str) -> Client {
    Builder::new(addr)
        .token("s.test-token")
        .binding(Binding::Context)
        .retry(fast())
        .timeout(Duration::from_secs(2))
        .build_uncached()
        .expect("client")
}

fn key() -> KeyId {
    KeyId::new("tenant-1").expect("id")
}

fn ctx() -> WrapContext {
    WrapContext::new(&Context::new().with("tenant", "one").expect("ctx"))
}

fn request() -> DataKeyRequest {
    DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None)
}

fn backend<'a>(err: &'a (dyn std::error::Error + 'static)) -> &'a Error {
    err.downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("not a transit::Error: {err}"))
}

fn wrap_backend(result: Result<(Key256, WrappedKey), WrapError>) -> String {
    match result {
        Err(WrapError::Backend(e)) => e.to_string(),
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[test]
fn retries_5xx_and_429_then_succeeds() {
    let (addr, seen) = fake(Box::new(|_, i| {
        Some(match i {
            0 => (503, r#"{"errors":["Vault is sealed"]}"#.into()),
            1 => (500, "oops".into()),
            2 => (429, r#"{"errors":["standby"]}"#.into()),
            _ => (200, datakey_ok(3)),
        })
    }));
    let client = client(&addr);
    let (key, wrapped) = client
        .generate(&key(), &ctx(), &request())
        .expect("generate");
    assert_eq!(key, Key256::from_bytes([1; 32]));
    assert_eq!(wrapped.version, 3);
    assert_eq!(wrapped.ciphertext, b"vault:v3:AAAA");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 4);
    assert_eq!(client.stats().datakey, 4);
    assert_eq!(seen[3].method, "POST");
    assert_eq!(seen[3].path, "/v1/transit/datakey/plaintext/tenant-1");
    assert_eq!(seen[3].token.as_deref(), Some("s.test-token"));
    assert_eq!(seen[3].namespace, None);
    let body: serde_json::Value = serde_json::from_str(&seen[3].body).expect("json");
    assert_eq!(body["bits"], 256);
    assert!(body["context"].is_string() && body.get("associated_data").is_none());
}

#[test]
fn gives_up_after_the_bounded_attempts_naming_kms_and_key() {
    let (addr, seen) = fake(Box::new(|_, _| Some((502, "bad gateway".into()))));
    let err = client(&addr)
        .generate(&key(), &ctx(), &request())
        .expect_err("fails");
    let WrapError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    let e = backend(source.as_ref());
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unavailable {
                attempts: 4,
                status: 502,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        (e.key(), e.operation(), e.address()),
        (Some("tenant-1"), "datakey", &*addr)
    );
    let text = err.to_string();
    assert!(
        text.contains("OpenBao/Vault Transit at http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("'tenant-1'") && text.contains("bad gateway"),
        "{text}"
    );
    assert!(!text.contains("s.test-token"), "{text}");
    assert_eq!(seen.lock().expect("lock").len(), 4);
}

#[test]
fn no_retry_on_4xx_other_than_429() {
    let (addr, seen) = fake(Box::new(|r, _| {
        Some(if r.path.contains("datakey") {
            (400, r#"{"errors":["something odd"]}"#.into())
        } else if r.path.contains("encrypt") {
            (400, r#"{"errors":["encryption key not found"]}"#.into())
        } else {
            (404, r#"{"errors":[]}"#.into())
        })
    }));
    let c = client(&addr);
    let text = wrap_backend(c.generate(&key(), &ctx(), &request()));
    assert!(
        text.contains("rejected (HTTP 400): something odd"),
        "{text}"
    );
    assert_eq!(c.stats().datakey, 1);
    assert!(matches!(
        c.wrap(&key(), &Key256::from_bytes([2; 32]), &ctx()),
        Err(WrapError::KeyNotFound(k)) if k == key()
    ));
    assert_eq!(c.stats().encrypt, 1);
    // Binding::Auto reads the key first: 404 is KeyNotFound, no encrypt sent.
    let auto = Builder::new(&addr)
        .token("t")
        .retry(fast())
        .build_uncached()
        .expect("client");
    assert!(matches!(
        auto.wrap(&key(), &Key256::from_bytes([2; 32]), &ctx()),
        Err(WrapError::KeyNotFound(_))
    ));
    assert_eq!((auto.stats().read_key, auto.stats().encrypt), (1, 0));
    assert_eq!(seen.lock().expect("lock").len(), 3);
}

#[test]
fn unreachable_server_fails_within_the_bound() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let retry = Retry::new(4, Duration::from_millis(20), Duration::from_millis(100));
    let timeout = Duration::from_secs(1);
    let c = Builder::new(format!("http://127.0.0.1:{port}"))
        .token("t")
        .retry(retry)
        .timeout(timeout)
        .binding(Binding::AssociatedData)
        .build_uncached()
        .expect("client");
    let start = Instant::now();
    let wrapped = WrappedKey {
        key_id: key(),
        version: 1,
        ciphertext: b"vault:v1:AAAA".to_vec(),
    };
    let err = c.unwrap(&wrapped, &ctx()).expect_err("down");
    assert!(start.elapsed() <= retry.worst_case(timeout));
    // At least the backoff waits: 10+20+40 ms (half of 20, 40, 80).
    assert!(start.elapsed() >= Duration::from_millis(70));
    let UnwrapError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(
        backend(source.as_ref()).kind(),
        ErrorKind::Unreachable { attempts: 4, .. }
    ));
    assert!(
        err.to_string()
            .contains("decrypt with key 'tenant-1' failed: unreachable")
    );
}

#[test]
fn request_timeout_is_enforced() {
    let (addr, _) = fake(Box::new(|_, _| None));
    let c = Builder::new(&addr)
        .token("t")
        .binding(Binding::Context)
        .retry(Retry::new(
            2,
            Duration::from_millis(1),
            Duration::from_millis(1),
        ))
        .timeout(Duration::from_millis(300))
        .build_uncached()
        .expect("client");
    let start = Instant::now();
    let text = wrap_backend(c.generate(&key(), &ctx(), &request()));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("unreachable after 2 attempt(s)"), "{text}");
}

#[test]
fn approle_logs_in_caches_and_logs_in_again_once_on_403() {
    let (addr, seen) = fake(Box::new(|r, _| {
        Some(if r.path == "/v1/auth/approle/login" {
            let n = if r.body.contains("good-secret") { 1 } else { 0 };
            if n == 0 {
                (400, r#"{"errors":["invalid role or secret ID"]}"#.into())
            } else {
                (
                    200,
                    r#"{"auth":{"client_token":"s.from-login","lease_duration":3600}}"#.into(),
                )
            }
        } else if r.token.as_deref() == Some("s.from-login") && r.path.ends_with("/fresh") {
            (200, datakey_ok(1))
        } else {
            (
                403,
                r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#.into(),
            )
        })
    }));
    let c = Builder::new(&addr)
        .approle("role-1", "good-secret")
        .namespace("team-a")
        .binding(Binding::Context)
        .retry(fast())
        .build_uncached()
        .expect("client");
    let fresh = KeyId::new("fresh").expect("id");
    c.generate(&fresh, &ctx(), &request()).expect("ok");
    c.generate(&fresh, &ctx(), &request()).expect("ok");
    assert_eq!(c.stats().login, 1, "token cached");
    // Always 403: one new login, then a PermissionDenied error.
    let text = wrap_backend(c.generate(&key(), &ctx(), &request()));
    assert!(
        text.contains("permission denied (HTTP 403): permission denied"),
        "{text}"
    );
    assert_eq!((c.stats().login, c.stats().datakey), (2, 4));
    {
        let seen = seen.lock().expect("lock");
        assert!(
            seen.iter()
                .all(|r| r.namespace.as_deref() == Some("team-a"))
        );
        assert!(seen[0].token.is_none(), "login carries no token");
    }
    // A refused login is not retried and does not show the secret id.
    let bad = Builder::new(&addr)
        .approle("role-1", "wrong-secret")
        .binding(Binding::Context)
        .retry(fast())
        .build_uncached()
        .expect("client");
    let text = wrap_backend(bad.generate(&fresh, &ctx(), &request()));
    assert!(text.contains("AppRole login with key 'fresh' failed: permission denied (HTTP 400)"));
    assert!(
        !text.contains("wrong-secret") && !text.contains("role-1"),
        "{text}"
    );
    assert_eq!(bad.stats().login, 1);
}

#[test]
fn answers_are_checked() {
    let (addr, _) = fake(Box::new(|r, _| {
        Some(match r.path.rsplit('/').next().unwrap_or_default() {
            "mismatch" => (
                200,
                r#"{"data":{"ciphertext":"vault:v2:AAAA","key_version":1,"plaintext":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}}"#.into(),
            ),
            "short" => (
                200,
                r#"{"data":{"ciphertext":"vault:v1:AAAA","key_version":1,"plaintext":"AQEB"}}"#.into(),
            ),
            "ignored" => (
                200,
                r#"{"data":{"ciphertext":"vault:v1:AAAA","key_version":1,"plaintext":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="},"warnings":["Endpoint ignored these unrecognized parameters: [context]"]}"#.into(),
            ),
            "nodata" => (200, r#"{"data":null}"#.into()),
            "redirect" => (307, String::new()),
            _ => (200, "not json".into()),
        })
    }));
    let c = client(&addr);
    let generate =
        |name: &str| wrap_backend(c.generate(&KeyId::new(name).expect("id"), &ctx(), &request()));
    assert!(generate("mismatch").contains("prefix disagrees with key_version"));
    assert!(generate("short").contains("no 32-byte plaintext"));
    assert!(generate("ignored").contains("ignored the context binding"));
    assert!(generate("nodata").contains("no 'data'"));
    assert!(generate("garbage").contains("unexpected answer"));
    let text = generate("redirect");
    assert!(text.contains("unexpected redirect (HTTP 307)"), "{text}");
    assert_eq!(c.stats().datakey, 6, "nothing retried");
}

#[test]
fn malformed_wraps_and_names_fail_before_any_request() {
    let (addr, _) = fake(Box::new(|_, _| Some((500, String::new()))));
    let c = client(&addr);
    let wrapped = |name: &str, version: u32, ct: &[u8]| WrappedKey {
        key_id: KeyId::new(name).expect("id"),
        version,
        ciphertext: ct.to_vec(),
    };
    for (w, auth) in [
        (wrapped("k", 2, b"vault:v1:AAAA"), true),
        (wrapped("k", 1, b"vault:v1:"), true),
        (wrapped("k", 1, b"garbage"), true),
        (wrapped("k", 1, &[0xff, 0xfe]), true),
        (wrapped("../sys/raw", 1, b"vault:v1:AAAA"), false),
    ] {
        match c.unwrap(&w, &ctx()) {
            Err(UnwrapError::Authentication) if auth => {}
            Err(UnwrapError::KeyNotFound(_)) if !auth => {}
            other => panic!("{w:?}: {other:?}"),
        }
    }
    let bad = KeyId::new("a/b").expect("id");
    assert!(matches!(
        c.generate(&bad, &ctx(), &request()),
        Err(WrapError::KeyNotFound(_))
    ));
    assert!(matches!(
        c.wrap(&bad, &Key256::from_bytes([0; 32]), &ctx()),
        Err(WrapError::KeyNotFound(_))
    ));
    assert_eq!(c.calls(), 0);
    assert!(!format!("{c:?}").contains("s.test-token"));
}
