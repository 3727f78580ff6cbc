//! `atrest_kms::transit` against a real OpenBao: the dev server that `.ci/interop.d/openbao.sh`
//! starts on 127.0.0.1 (`ATREST_BAO_ADDR`, `ATREST_BAO_TOKEN`), and, for the outage tests,
//! servers this file starts and kills itself (`ATREST_BAO_BIN`, integrated storage in a
//! scratch directory so keys survive a restart). Ignored unless that script runs it:
//! `cargo test -p atrest-kms --features transit --test transit -- --ignored`.

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use atrest_crypto::Key256;
use atrest_envelope::cache::CacheLimits;
use atrest_envelope::{
    Context, DataKeyRequest, Error as EnvelopeError, Header, KeyId, KeyUnavailable, KeyWrapper,
    RewrapError, RewrapPlan, UnwrapError, WrapContext, WrapError, WrappedKey, open, open_detached,
    rewrap, seal, seal_detached,
};
use atrest_keyring::{FileError, Keyring, RootKeyError, Timestamp};
use atrest_kms::transit::{Binding, Builder, Client, ErrorKind, Retry, Root};
use serde_json::{Value, json};

const IGNORE: &str = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set ({IGNORE})"))
}

/// A plain HTTP client for setting up the server (mounts, keys, rotation, policies).
struct Admin {
    addr: String,
    token: String,
    agent: ureq::Agent,
}

impl Admin {
    fn new(addr: &str, token: &str) -> Self {
        Self::with_ca(addr, token, None)
    }

    fn with_ca(addr: &str, token: &str, ca_pem: Option<&[u8]>) -> Self {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = ca_pem {
            let certs: Vec<_> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item.unwrap() {
                    ureq::tls::PemItem::Certificate(cert) => Some(cert),
                    _ => None,
                })
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .tls_config(tls.build())
            .build();
        Self {
            addr: addr.to_owned(),
            token: token.to_owned(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn shared() -> &'static Self {
        static ADMIN: OnceLock<Admin> = OnceLock::new();
        ADMIN.get_or_init(|| {
            let admin = Self::new(&env("ATREST_BAO_ADDR"), &env("ATREST_BAO_TOKEN"));
            admin.setup();
            admin
        })
    }

    /// Transit at `transit/`, and no upsert: `encrypt` to a missing key must not create it.
    fn setup(&self) {
        let (status, body) = self.post("sys/mounts/transit", json!({"type": "transit"}));
        assert!(
            status < 300 || body.to_string().contains("already in use"),
            "{status} {body}"
        );
        self.ok("transit/config/keys", json!({"disable_upsert": true}));
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.addr);
        let result = match body {
            Some(body) => self
                .agent
                .post(&url)
                .header("X-Vault-Token", &self.token)
                .send(body.to_string().as_bytes()),
            None if method == "DELETE" => self
                .agent
                .delete(&url)
                .header("X-Vault-Token", &self.token)
                .call(),
            None => self
                .agent
                .get(&url)
                .header("X-Vault-Token", &self.token)
                .call(),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request("POST", path, Some(body))
    }

    fn ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body);
        assert!(status < 300, "POST {path}: {status} {value}");
        value
    }

    fn get(&self, path: &str) -> Value {
        let (status, value) = self.request("GET", path, None);
        assert!(status < 300, "GET {path}: {status} {value}");
        value
    }

    /// A fresh Transit key with a name unique to this run.
    fn key(&self, prefix: &str, derived: bool) -> KeyId {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.ok(&format!("transit/keys/{name}"), json!({"derived": derived}));
        KeyId::new(name).unwrap()
    }

    fn rotate(&self, key: &KeyId) {
        self.ok(&format!("transit/keys/{key}/rotate"), json!({}));
    }

    fn configure(&self, key: &KeyId, config: Value) {
        self.ok(&format!("transit/keys/{key}/config"), config);
    }

    fn client(&self, binding: Binding) -> Client {
        Builder::new(&self.addr)
            .token(&self.token)
            .binding(binding)
            .build_uncached()
            .unwrap()
    }
}

fn ctx(tenant: &str) -> WrapContext {
    WrapContext::new(&Context::new().with("tenant", tenant).unwrap())
}

fn request() -> DataKeyRequest {
    DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None)
}

fn random_key() -> Key256 {
    Key256::generate(atrest_crypto::DEFAULT_PROVIDER).unwrap()
}

/// The `transit::Error` inside a backend error, and its text.
fn transit_error<'a>(
    source: &'a (dyn std::error::Error + 'static),
) -> (&'a atrest_kms::transit::Error, String) {
    let e = source
        .downcast_ref::<atrest_kms::transit::Error>()
        .unwrap_or_else(|| panic!("not a transit error: {source}"));
    (e, e.to_string())
}

/// Wrap, unwrap, generate and rewrap round trips; context binding; key-not-found; tampering.
fn round_trips(admin: &Admin, derived: bool) {
    let client = admin.client(Binding::Auto);
    let key = admin.key(if derived { "rt-derived" } else { "rt-aead" }, derived);
    let a = ctx("a");

    let (dk, wrapped) = client.generate(&key, &a, &request()).unwrap();
    assert_eq!(wrapped.key_id, key);
    assert_eq!(wrapped.version, 1);
    assert!(wrapped.ciphertext.starts_with(b"vault:v1:"));
    assert_eq!(client.unwrap(&wrapped, &a).unwrap(), dk);

    let mine = random_key();
    let w2 = client.wrap(&key, &mine, &a).unwrap();
    assert_eq!((w2.version, &w2.key_id), (1, &key));
    assert_eq!(client.unwrap(&w2, &a).unwrap(), mine);

    // Bound to the context: another tenant's context does not unwrap it.
    assert!(matches!(
        client.unwrap(&wrapped, &ctx("b")),
        Err(UnwrapError::Authentication)
    ));
    assert!(matches!(
        client.unwrap(&wrapped, &WrapContext::new(&Context::new())),
        Err(UnwrapError::Authentication)
    ));
    // Tampered ciphertext (a base64 character changed), or a version that lies.
    let mut tampered = wrapped.clone();
    let last = tampered.ciphertext.len() - 3;
    tampered.ciphertext[last] = if tampered.ciphertext[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(matches!(
        client.unwrap(&tampered, &a),
        Err(UnwrapError::Authentication)
    ));
    let mut lying = wrapped.clone();
    lying.version = 2;
    assert!(matches!(
        client.unwrap(&lying, &a),
        Err(UnwrapError::Authentication)
    ));
    // A ciphertext of another key does not open under this one.
    let other = admin.key("rt-other", derived);
    let foreign = WrappedKey {
        key_id: other.clone(),
        ..wrapped.clone()
    };
    assert!(matches!(
        client.unwrap(&foreign, &a),
        Err(UnwrapError::Authentication)
    ));

    let before = client.stats();
    let rewrapped = client.rewrap(&wrapped, &a).unwrap();
    assert_eq!(rewrapped.version, 1);
    assert_ne!(rewrapped.ciphertext, wrapped.ciphertext);
    assert_eq!(client.unwrap(&rewrapped, &a).unwrap(), dk);
    let after = client.stats();
    if derived {
        // Server-side rewrap: one request, the data key never comes back.
        assert_eq!(
            (after.rewrap - before.rewrap, after.decrypt - before.decrypt),
            (1, 1)
        );
    } else {
        assert_eq!((after.rewrap, after.decrypt - before.decrypt), (0, 2));
    }
    assert!(matches!(
        client.rewrap(&wrapped, &ctx("b")),
        Err(RewrapError::Unwrap(UnwrapError::Authentication))
    ));

    // Missing keys.
    let missing = KeyId::new(format!("missing-{}", std::process::id())).unwrap();
    assert!(
        matches!(client.generate(&missing, &a, &request()), Err(WrapError::KeyNotFound(k)) if k == missing)
    );
    assert!(matches!(
        client.wrap(&missing, &mine, &a),
        Err(WrapError::KeyNotFound(_))
    ));
    let gone = WrappedKey {
        key_id: missing.clone(),
        ..wrapped.clone()
    };
    assert!(matches!(
        client.unwrap(&gone, &a),
        Err(UnwrapError::KeyNotFound(_))
    ));
    // The same through explicit bindings (no key read): Transit itself says not found.
    let explicit = admin.client(if derived {
        Binding::Context
    } else {
        Binding::AssociatedData
    });
    assert!(matches!(
        explicit.generate(&missing, &a, &request()),
        Err(WrapError::KeyNotFound(_))
    ));
    assert!(matches!(
        explicit.wrap(&missing, &mine, &a),
        Err(WrapError::KeyNotFound(_))
    ));
    assert!(matches!(
        explicit.unwrap(&gone, &a),
        Err(UnwrapError::KeyNotFound(_))
    ));
    assert_eq!(explicit.stats().read_key, 0);
    assert_eq!(explicit.unwrap(&wrapped, &a).unwrap(), dk);
    // The wrong explicit binding is a clear backend error, not a silent success.
    let wrong = admin.client(if derived {
        Binding::AssociatedData
    } else {
        Binding::Context
    });
    let err = wrong.unwrap(&wrapped, &a).unwrap_err();
    if derived {
        let UnwrapError::Backend(source) = &err else {
            panic!("{err:?}")
        };
        assert!(
            transit_error(source.as_ref()).1.contains("context"),
            "{err}"
        );
    } else {
        // A non-derived key given a context: Transit rejects the request.
        assert!(
            matches!(err, UnwrapError::Backend(_) | UnwrapError::Authentication),
            "{err:?}"
        );
    }
    // Binding::Auto read each existing key's settings once (the two keys), and looked for
    // the missing key on each of its three calls (a miss is not remembered: the key may be
    // created later).
    assert_eq!(client.stats().read_key, 2 + 3, "{:?}", client.stats());
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn round_trips_non_derived_key_with_associated_data() {
    round_trips(Admin::shared(), false);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn round_trips_derived_key_with_context() {
    round_trips(Admin::shared(), true);
}

/// Key versions are KEK versions: rotation, rewrap to the latest, min_decryption_version,
/// trimming, versions that do not exist yet.
fn versions(admin: &Admin, derived: bool) {
    let client = admin.client(Binding::Auto);
    let key = admin.key("ver", derived);
    let a = ctx("a");
    let (k1, w1) = client.generate(&key, &a, &request()).unwrap();
    admin.rotate(&key);
    let (k2, w2) = client.generate(&key, &a, &request()).unwrap();
    assert_eq!((w1.version, w2.version), (1, 2));
    assert!(w2.ciphertext.starts_with(b"vault:v2:"));
    let w2b = client.wrap(&key, &k1, &a).unwrap();
    assert_eq!(w2b.version, 2);
    assert_eq!(
        client.unwrap(&w1, &a).unwrap(),
        k1,
        "old versions still unwrap"
    );
    assert_eq!(client.unwrap(&w2, &a).unwrap(), k2);

    let moved = client.rewrap(&w1, &a).unwrap();
    assert_eq!(moved.version, 2, "rewrap moves to the latest version");
    assert_eq!(client.unwrap(&moved, &a).unwrap(), k1);

    // A version above the latest.
    let mut future = w2.clone();
    future.version = 9;
    future.ciphertext = String::from_utf8(w2.ciphertext.clone())
        .unwrap()
        .replacen("vault:v2:", "vault:v9:", 1)
        .into_bytes();
    assert!(matches!(
        client.unwrap(&future, &a),
        Err(UnwrapError::VersionNotFound { version: 9, .. })
    ));

    // Retire version 1.
    admin.configure(&key, json!({"min_decryption_version": 2}));
    match client.unwrap(&w1, &a) {
        Err(UnwrapError::Unavailable {
            key_id,
            version: 1,
            reason: KeyUnavailable::Retired,
        }) if key_id == key => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.rewrap(&w1, &a),
        Err(RewrapError::Unwrap(UnwrapError::Unavailable {
            reason: KeyUnavailable::Retired,
            ..
        }))
    ));
    assert_eq!(
        client.unwrap(&moved, &a).unwrap(),
        k1,
        "the rewrapped copy survives"
    );

    // Trim version 1 away: destroyed.
    admin.configure(&key, json!({"min_encryption_version": 2}));
    admin.ok(
        &format!("transit/keys/{key}/trim"),
        json!({"min_available_version": 2}),
    );
    assert!(matches!(
        client.unwrap(&w1, &a),
        Err(UnwrapError::Unavailable {
            version: 1,
            reason: KeyUnavailable::Destroyed,
            ..
        })
    ));
    assert_eq!(client.unwrap(&w2, &a).unwrap(), k2);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn rotation_and_retirement_non_derived() {
    versions(Admin::shared(), false);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn rotation_and_retirement_derived() {
    versions(Admin::shared(), true);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn envelope_seal_open_and_rewrap_through_transit() {
    let admin = Admin::shared();
    for derived in [false, true] {
        let client = admin.client(Binding::Auto);
        let key = admin.key("env", derived);
        let context = Context::new().with("tenant", "acme").unwrap();
        let blob = seal(&client, &key, &context, b"attachment bytes").unwrap();
        assert_eq!(open(&client, &context, &blob).unwrap(), b"attachment bytes");
        let elsewhere = Context::new().with("tenant", "evil").unwrap();
        let err = open(&client, &elsewhere, &blob).unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::Unwrap {
                    source: UnwrapError::Authentication,
                    ..
                } | EnvelopeError::Authentication
            ),
            "{err:?}"
        );

        // Rotation job: rewrap headers after a KEK rotation.
        let (header, body) = seal_detached(&client, &key, &context, b"detached").unwrap();
        admin.rotate(&key);
        let before = client.stats();
        let new_header = rewrap(&header, &client, &RewrapPlan::Rotate).unwrap();
        let parsed = Header::parse(&new_header).unwrap();
        assert_eq!(parsed.wrapped_keys()[0].version, 2);
        assert_eq!(
            open_detached(&client, &context, &new_header, &body).unwrap(),
            b"detached"
        );
        let after = client.stats();
        assert_eq!(after.rewrap - before.rewrap, u64::from(derived));
        assert_eq!(after.datakey, before.datakey, "no new data key");
    }
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn caching_wrapper_limits_transit_calls() {
    let admin = Admin::shared();
    let key = admin.key("cache", true);
    let build = |limits: CacheLimits| {
        Builder::new(&admin.addr)
            .token(&admin.token)
            .cache_limits(limits)
            .build()
            .unwrap()
    };
    let object = |tenant: &str, id: usize| {
        Context::new()
            .with("tenant", tenant)
            .unwrap()
            .with("object", format!("obj-{id}"))
            .unwrap()
            .exclude_from_wrap("object")
            .unwrap()
    };

    // 100 seals with the same key and wrap context: one datakey call.
    let cached = build(CacheLimits::default());
    let blobs: Vec<_> = (0..100)
        .map(|i| {
            seal(
                &cached,
                &key,
                &object("acme", i),
                format!("blob {i}").as_bytes(),
            )
            .unwrap()
        })
        .collect();
    let stats = cached.inner().stats();
    assert_eq!((stats.datakey, stats.read_key), (1, 1), "{stats:?}");
    for (i, blob) in blobs.iter().enumerate() {
        assert_eq!(
            open(&cached, &object("acme", i), blob).unwrap(),
            format!("blob {i}").as_bytes()
        );
    }
    let stats = cached.inner().stats();
    assert_eq!(
        stats.decrypt, 1,
        "one unwrap for the shared wrapped key: {stats:?}"
    );
    // Another wrap context: another data key.
    seal(&cached, &key, &object("other", 0), b"x").unwrap();
    assert_eq!(cached.inner().stats().datakey, 2);
    println!(
        "100 seals + 100 opens + 1 other context: {:?}",
        cached.inner().stats()
    );

    // TTL.
    let ttl = build(CacheLimits::default().ttl(Duration::from_millis(500)));
    seal(&ttl, &key, &object("acme", 0), b"x").unwrap();
    seal(&ttl, &key, &object("acme", 1), b"x").unwrap();
    assert_eq!(ttl.inner().stats().datakey, 1);
    std::thread::sleep(Duration::from_millis(600));
    seal(&ttl, &key, &object("acme", 2), b"x").unwrap();
    assert_eq!(ttl.inner().stats().datakey, 2, "expired after the TTL");

    // Blob limit: 25 seals, 10 per data key.
    let blobs = build(CacheLimits::default().max_blobs(10));
    for i in 0..25 {
        seal(&blobs, &key, &object("acme", i), b"x").unwrap();
    }
    assert_eq!(blobs.inner().stats().datakey, 3);

    // Byte limit: 400-byte blobs, 1000 bytes per data key.
    let bytes = build(CacheLimits::default().max_bytes(1000));
    for i in 0..5 {
        seal(&bytes, &key, &object("acme", i), &[7; 400]).unwrap();
    }
    assert_eq!(bytes.inner().stats().datakey, 3);

    // Opting out: every seal asks Transit.
    let uncached = admin.client(Binding::Auto);
    for i in 0..5 {
        seal(&uncached, &key, &object("acme", i), b"x").unwrap();
    }
    assert_eq!(uncached.stats().datakey, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
async fn works_from_inside_a_multi_thread_tokio_runtime() {
    let admin = Admin::shared();
    let key = admin.key("tokio", true);
    let client = admin.client(Binding::Auto);
    // Directly on a runtime worker thread, as atrest-store's async code calls it.
    let a = ctx("a");
    let (dk, wrapped) = client.generate(&key, &a, &request()).unwrap();
    assert_eq!(client.unwrap(&wrapped, &a).unwrap(), dk);
    let w = client.wrap(&key, &dk, &a).unwrap();
    assert_eq!(client.rewrap(&w, &a).unwrap().version, 1);
    // From several tasks at once, through the default (cached) wrapper.
    let cached = Arc::new(
        Builder::new(&admin.addr)
            .token(&admin.token)
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let cached = Arc::clone(&cached);
            let key = key.clone();
            tokio::spawn(async move {
                let context = Context::new().with("tenant", "t").unwrap();
                let blob = seal(&*cached, &key, &context, format!("task {i}").as_bytes()).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                open(&*cached, &context, &blob).unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), format!("task {i}").as_bytes());
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
async fn works_from_inside_a_current_thread_tokio_runtime() {
    let admin = Admin::shared();
    let key = admin.key("tokio-ct", false);
    let client = admin.client(Binding::Auto);
    let (dk, wrapped) = client.generate(&key, &ctx("a"), &request()).unwrap();
    assert_eq!(client.unwrap(&wrapped, &ctx("a")).unwrap(), dk);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn root_key_seals_a_keyring_file() {
    let admin = Admin::shared();
    let root_key = admin.key("root", true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.atrest");

    let root_client = admin.client(Binding::Auto);
    let root = Root::new(root_client.clone(), root_key.clone());
    let mut keyring = Keyring::new();
    let tenant = KeyId::new("tenant-acme").unwrap();
    keyring.create_key(&tenant, Timestamp::now()).unwrap();
    keyring.save(&path, &root).unwrap();
    let context = Context::new().with("tenant", "acme").unwrap();
    let blob = seal(&keyring, &tenant, &context, b"sealed by the keyring").unwrap();
    // Saving again reuses the root key: no new datakey call.
    keyring.save(&path, &root).unwrap();
    assert_eq!(
        (root_client.stats().datakey, root_client.stats().decrypt),
        (1, 0)
    );

    // A new process: a new client, the file loads through Transit.
    let client = admin.client(Binding::Auto);
    let loaded = Keyring::load(&path, &Root::new(client.clone(), root_key.clone())).unwrap();
    assert!(loaded.contains(&tenant));
    assert_eq!(
        open(&loaded, &context, &blob).unwrap(),
        b"sealed by the keyring"
    );
    assert_eq!(client.stats().decrypt, 1);

    // The wrong Transit key configured: a clear error, no decrypt attempted.
    let other = admin.key("root-other", true);
    let err = Keyring::load(&path, &Root::new(admin.client(Binding::Auto), other)).unwrap_err();
    assert!(
        matches!(&err, FileError::RootKey(RootKeyError::External(_))),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("sealed with Transit key '{root_key}'")),
        "{err}"
    );
    // A root of another kind does not open it.
    let raw = atrest_keyring::RawKeyRoot::new(random_key());
    assert!(matches!(
        Keyring::load(&path, &raw),
        Err(FileError::RootKindMismatch { .. })
    ));
    // Retiring the root version the file was sealed with locks the file.
    admin.rotate(&root_key);
    admin.configure(&root_key, json!({"min_decryption_version": 2}));
    let err = Keyring::load(&path, &Root::new(admin.client(Binding::Auto), root_key)).unwrap_err();
    assert!(
        matches!(
            &err,
            FileError::RootKey(RootKeyError::External(e))
                if matches!(
                    e.downcast_ref::<UnwrapError>(),
                    Some(UnwrapError::Unavailable { reason: KeyUnavailable::Retired, .. })
                )
        ),
        "{err:?}"
    );
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn approle_login_token_renewal_and_relogin() {
    let admin = Admin::shared();
    let key = admin.key("approle", true);
    let (status, body) = admin.post("sys/auth/approle", json!({"type": "approle"}));
    assert!(
        status < 300 || body.to_string().contains("already in use"),
        "{body}"
    );
    let policy = format!(
        "path \"transit/keys/{key}\" {{ capabilities = [\"read\"] }}\n\
         path \"transit/datakey/plaintext/{key}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/decrypt/{key}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/rewrap/{key}\" {{ capabilities = [\"update\"] }}\n"
    );
    admin.ok("sys/policies/acl/atrest-test", json!({"policy": policy}));
    admin.ok(
        "auth/approle/role/atrest-test",
        json!({"token_policies": ["atrest-test"], "token_ttl": "2s", "token_max_ttl": "1h"}),
    );
    let role_id = admin.get("auth/approle/role/atrest-test/role-id")["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id =
        admin.ok("auth/approle/role/atrest-test/secret-id", json!({}))["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let client = Builder::new(&admin.addr)
        .approle(&role_id, &secret_id)
        .build_uncached()
        .unwrap();
    let a = ctx("a");
    let (dk, wrapped) = client.generate(&key, &a, &request()).unwrap();
    assert_eq!(client.unwrap(&wrapped, &a).unwrap(), dk);
    assert_eq!(client.stats().login, 1, "token cached");
    // The token's 2 s lease: renewed by a new login after 1.5 s.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(client.unwrap(&wrapped, &a).unwrap(), dk);
    assert_eq!(client.stats().login, 2);
    // Tokens revoked behind the client's back: 403, one new login, success.
    let (status, _) = admin.request(
        "POST",
        "sys/leases/revoke-prefix/auth/approle/login",
        Some(json!({})),
    );
    assert!(status < 300);
    assert_eq!(client.unwrap(&wrapped, &a).unwrap(), dk);
    assert_eq!(client.stats().login, 3);
    // Outside the policy: permission denied, not retried past one new login.
    let other = admin.key("approle-other", true);
    let err = client.generate(&other, &a, &request()).unwrap_err();
    let WrapError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    let (e, text) = transit_error(source.as_ref());
    assert!(
        matches!(e.kind(), ErrorKind::PermissionDenied { status: 403, .. }),
        "{text}"
    );
    assert!(
        !text.contains(&secret_id) && !text.contains(&role_id),
        "{text}"
    );
    // A wrong secret id: the login is refused.
    let bad = Builder::new(&admin.addr)
        .approle(&role_id, "not-the-secret")
        .build_uncached()
        .unwrap();
    let err = bad.generate(&key, &a, &request()).unwrap_err();
    let WrapError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    let (e, text) = transit_error(source.as_ref());
    assert_eq!(e.operation(), "AppRole login");
    assert!(text.contains("invalid role or secret ID"), "{text}");
    assert_eq!(bad.stats().login, 1);
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn token_without_permission_is_a_clear_error() {
    let admin = Admin::shared();
    let key = admin.key("noperm", true);
    let token = admin.ok(
        "auth/token/create",
        json!({"policies": ["default"], "ttl": "5m"}),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = Builder::new(&admin.addr)
        .token(&token)
        .binding(Binding::Context)
        .build_uncached()
        .unwrap();
    let err = client.generate(&key, &ctx("a"), &request()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, WrapError::Backend(_)), "{err:?}");
    assert!(
        text.contains("permission denied") && text.contains(key.as_str()),
        "{text}"
    );
    assert!(!text.contains(&token), "{text}");
    assert_eq!(client.stats().datakey, 1, "403 is not retried");
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn transit_under_another_mount_path() {
    let admin = Admin::shared();
    let mount = format!("atrest-{}/transit", std::process::id());
    admin.ok(&format!("sys/mounts/{mount}"), json!({"type": "transit"}));
    let name = "elsewhere";
    admin.ok(&format!("{mount}/keys/{name}"), json!({"derived": true}));
    let key = KeyId::new(name).unwrap();
    let client = Builder::new(&admin.addr)
        .token(&admin.token)
        .mount(format!("/{mount}/"))
        .build_uncached()
        .unwrap();
    assert_eq!(client.mount(), mount);
    let (dk, wrapped) = client.generate(&key, &ctx("a"), &request()).unwrap();
    assert_eq!(client.unwrap(&wrapped, &ctx("a")).unwrap(), dk);
    // Settings are read once per key, again after `forget`.
    client.generate(&key, &ctx("a"), &request()).unwrap();
    assert_eq!(client.stats().read_key, 1);
    client.forget(&key);
    client.generate(&key, &ctx("a"), &request()).unwrap();
    assert_eq!(client.stats().read_key, 2);
    // The default mount has no such key.
    assert!(matches!(
        admin.client(Binding::Auto).unwrap(&wrapped, &ctx("a")),
        Err(UnwrapError::KeyNotFound(_))
    ));
}

// --- Outages: a server this test starts, kills and restarts -------------------------------

/// An OpenBao server with integrated storage in a scratch directory, so a restart keeps its
/// keys (dev mode is in memory). Killed on drop.
struct Spawned {
    bin: String,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    unseal_key: String,
    admin: Admin,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Spawned {
    fn start() -> Self {
        let bin = env("ATREST_BAO_BIN");
        let dir = tempfile::tempdir().unwrap();
        let (port, cluster) = (free_port(), free_port());
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let config = json!({
            "storage": {"raft": {"path": data, "node_id": "atrest-test"}},
            "listener": [{"tcp": {
                "address": format!("127.0.0.1:{port}"),
                "cluster_address": format!("127.0.0.1:{cluster}"),
                "tls_disable": true
            }}],
            "api_addr": format!("http://127.0.0.1:{port}"),
            "cluster_addr": format!("http://127.0.0.1:{cluster}"),
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let addr = format!("http://127.0.0.1:{port}");
        let mut server = Self {
            bin,
            dir,
            port,
            child: None,
            unseal_key: String::new(),
            admin: Admin::new(&addr, ""),
        };
        server.spawn();
        let init = server.admin.request(
            "POST",
            "sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        );
        assert_eq!(init.0, 200, "{init:?}");
        server.unseal_key = init.1["keys"][0].as_str().unwrap().to_owned();
        server.admin.token = init.1["root_token"].as_str().unwrap().to_owned();
        server.unseal();
        server.admin.setup();
        server
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("server")
            .arg(format!(
                "-config={}",
                self.dir.path().join("config.json").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn unseal(&self) {
        let (status, body) =
            self.admin
                .request("POST", "sys/unseal", Some(json!({"key": self.unseal_key})));
        assert_eq!(status, 200, "{body}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _) = self.admin.request("GET", "sys/health", None);
            if status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not active: {status} {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.unseal();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn server_killed_mid_run_then_restarted() {
    let mut server = Spawned::start();
    let key = server.admin.key("outage", true);
    let root_key = server.admin.key("outage-root", true);
    let timeout = Duration::from_secs(2);
    let (addr, token) = (server.addr(), server.admin.token.clone());
    let build = || {
        Builder::new(&addr)
            .token(&token)
            .timeout(timeout)
            .retry(Retry::DEFAULT)
            .build_uncached()
            .unwrap()
    };
    let client = build();
    let bound = Retry::DEFAULT.worst_case(timeout) + Duration::from_secs(1);
    let context = Context::new().with("tenant", "acme").unwrap();

    // Before the outage: six blobs under version 1, a keyring sealed by a Transit root.
    let blobs: Vec<(Vec<u8>, Vec<u8>)> = (0..6)
        .map(|i| seal_detached(&client, &key, &context, format!("blob {i}").as_bytes()).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let keyring_path = dir.path().join("keyring.atrest");
    let mut keyring = Keyring::new();
    keyring
        .create_key(&KeyId::new("tenant-acme").unwrap(), Timestamp::now())
        .unwrap();
    keyring
        .save(&keyring_path, &Root::new(build(), root_key.clone()))
        .unwrap();

    // A rotation job: the KEK rotates, the job rewraps headers one by one and stores each
    // only once its rewrap succeeded.
    server.admin.rotate(&key);
    let mut headers: Vec<Vec<u8>> = blobs.iter().map(|(h, _)| h.clone()).collect();
    let version = |h: &[u8]| Header::parse(h).unwrap().wrapped_keys()[0].version;
    let job = |headers: &mut [Vec<u8>], limit: usize| -> Result<usize, EnvelopeError> {
        let mut done = 0;
        for header in headers.iter_mut().filter(|h| version(h) < 2).take(limit) {
            *header = rewrap(header, &client, &RewrapPlan::Rotate)?;
            done += 1;
        }
        Ok(done)
    };
    assert_eq!(job(&mut headers, 2).unwrap(), 2);

    // The KMS dies mid-job.
    server.kill();
    let start = Instant::now();
    let err = job(&mut headers, usize::MAX).unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed <= bound, "{elapsed:?} > {bound:?}");
    let EnvelopeError::Unwrap {
        source: UnwrapError::Backend(source),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    let (e, text) = transit_error(source.as_ref());
    assert!(
        matches!(e.kind(), ErrorKind::Unreachable { attempts: 4, .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("OpenBao/Vault Transit at {}", server.addr()))
            && text.contains(&format!("rewrap with key '{key}'")),
        "{text}"
    );
    assert!(!text.contains(&server.admin.token));
    println!("outage error after {elapsed:?}: {err}");
    assert_eq!(
        headers.iter().filter(|h| version(h) == 2).count(),
        2,
        "nothing half-done"
    );

    // Everything else fails the same way, within the bound, and produces nothing.
    let start = Instant::now();
    let err = seal(&client, &key, &context, b"new blob").unwrap_err();
    assert!(start.elapsed() <= bound);
    assert!(
        matches!(&err, EnvelopeError::Wrap(WrapError::Backend(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("datakey with key"), "{err}");
    let err = open_detached(&client, &context, &headers[5], &blobs[5].1).unwrap_err();
    assert!(
        matches!(
            &err,
            EnvelopeError::Unwrap {
                source: UnwrapError::Backend(_),
                ..
            }
        ),
        "{err:?}"
    );
    let err = Keyring::load(&keyring_path, &Root::new(build(), root_key.clone())).unwrap_err();
    assert!(
        matches!(&err, FileError::RootKey(RootKeyError::External(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("OpenBao/Vault Transit"), "{err}");

    // The KMS comes back on the same port: the same client works again, the job resumes.
    server.restart();
    assert_eq!(job(&mut headers, usize::MAX).unwrap(), 4);
    assert!(headers.iter().all(|h| version(h) == 2));
    for (i, (header, (_, body))) in headers.iter().zip(&blobs).enumerate() {
        assert_eq!(
            open_detached(&client, &context, header, body).unwrap(),
            format!("blob {i}").as_bytes()
        );
    }
    let loaded = Keyring::load(&keyring_path, &Root::new(build(), root_key)).unwrap();
    assert!(loaded.contains(&KeyId::new("tenant-acme").unwrap()));
    println!("outage test client calls: {:?}", client.stats());
}

/// A dev-mode server with TLS (`-dev-tls`: a fresh CA and a certificate for 127.0.0.1).
struct DevTls {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    ca_pem: Vec<u8>,
}

impl DevTls {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Dev mode also listens on port + 1.
        let port = loop {
            let port = free_port();
            if std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                break port;
            }
        };
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env("ATREST_BAO_BIN"))
            .args(["server", "-dev", "-dev-tls", "-dev-no-store-token"])
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-dev-root-token-id=atrest-tls-test")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // Owned before waiting, so a failed start still kills the process (Drop).
        let mut server = Self {
            child,
            dir,
            addr: format!("https://127.0.0.1:{port}"),
            ca_pem: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let ca = server.dir.path().join("vault-ca.pem");
        loop {
            if let Ok(ca_pem) = std::fs::read(&ca) {
                let admin = Admin::with_ca(&server.addr, "atrest-tls-test", Some(&ca_pem));
                let up = admin
                    .agent
                    .get(format!("{}/v1/sys/health", server.addr))
                    .call()
                    .is_ok_and(|r| r.status() == 200);
                if up {
                    admin.setup();
                    server.ca_pem = ca_pem;
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "TLS dev server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DevTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs OpenBao on 127.0.0.1; run by .ci/interop.d/openbao.sh"]
fn https_with_a_private_ca() {
    let server = DevTls::start();
    let admin = Admin::with_ca(&server.addr, "atrest-tls-test", Some(&server.ca_pem));
    let key = admin.key("tls", true);
    let client = Builder::new(&server.addr)
        .token("atrest-tls-test")
        .ca_certificate_pem(server.ca_pem.clone())
        .build_uncached()
        .unwrap();
    let (dk, wrapped) = client.generate(&key, &ctx("a"), &request()).unwrap();
    assert_eq!(client.unwrap(&wrapped, &ctx("a")).unwrap(), dk);

    // Without the CA (the webpki roots): a TLS error, not retried, no request reaches Transit.
    let untrusting = Builder::new(&server.addr)
        .token("atrest-tls-test")
        .binding(Binding::Context)
        .build_uncached()
        .unwrap();
    let err = untrusting
        .generate(&key, &ctx("a"), &request())
        .unwrap_err();
    let WrapError::Backend(source) = &err else {
        panic!("{err:?}")
    };
    let (e, text) = transit_error(source.as_ref());
    assert!(matches!(e.kind(), ErrorKind::Client(_)), "{text}");
    assert_eq!(untrusting.stats().datakey, 1, "{text}");
    println!("untrusted certificate: {text}");
}
