//! The AWS KMS provider against the KMS API of moto's server, which
//! `.ci/interop.d/aws-kms.sh` starts on 127.0.0.1. Ignored unless that script runs them:
//! `cargo test -p atrest-kms --features aws --test aws_kms -- --ignored`.
//!
//! Reads the SDK's usual variables: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` (dummies), and `ATREST_MOTO_SERVER` (the `moto_server` binary) for
//! the test that kills and restarts its own server (`outage.rs`). Every test creates its own KMS keys.
//!
//! moto differs from AWS KMS in two ways that shape these tests: `Decrypt` with a `KeyId` that
//! is not the ciphertext's key answers `AccessDeniedException` (AWS: `IncorrectKeyException`,
//! mapped to `Authentication`, covered by the unit tests), and it does not refuse `Decrypt`
//! under a disabled key (key states are covered by the unit tests too).

#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::panic, reason = "tests fail by panicking")]

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use atrest_envelope::cache::CacheLimits;
use atrest_envelope::{
    Context, DataKeyRequest, Error, KeyId, KeyWrapper, RewrapError, RewrapPlan, UnwrapError,
    WrapContext, WrapError, WrappedKey, open, rewrap_attached_bytes, seal,
};
use atrest_keyring::{FileError, Keyring, RootKeyError, Timestamp};
use atrest_kms::aws::{AwsKms, AwsKmsBuilder, AwsKmsError, AwsKmsRoot, KEY_VERSION};
use aws_config::BehaviorVersion;

mod outage;

// ---------------------------------------------------------------------------------------------
// Set-up

/// Runs an admin future (key creation) on a runtime of its own, on a thread of its own, so it
/// works from plain tests and from inside tokio tests alike.
fn admin<T, F>(
    endpoint: Option<String>,
    f: impl FnOnce(aws_sdk_kms::Client) -> F + Send + 'static,
) -> T
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let mut builder = aws_sdk_kms::config::Builder::from(&config);
            if let Some(endpoint) = endpoint {
                builder = builder.endpoint_url(endpoint);
            }
            f(aws_sdk_kms::Client::from_conf(builder.build())).await
        })
    })
    .join()
    .unwrap()
}

/// A new symmetric KMS key; its ARN.
fn create_key_at(endpoint: Option<String>) -> KeyId {
    let arn = admin(endpoint, |client| async move {
        let out = client.create_key().send().await.unwrap();
        out.key_metadata.unwrap().arn.unwrap()
    });
    KeyId::new(arn).unwrap()
}

fn create_key() -> KeyId {
    create_key_at(None)
}

fn create_alias(alias: &str, target: &KeyId) {
    let (alias, target) = (alias.to_owned(), target.as_str().to_owned());
    admin(None, |client| async move {
        client
            .create_alias()
            .alias_name(alias)
            .target_key_id(target)
            .send()
            .await
            .unwrap();
    });
}

/// Short timeouts so failure tests stay quick; configuration from the environment.
fn builder() -> AwsKmsBuilder {
    AwsKms::builder()
        .max_attempts(3)
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .connect_timeout(Duration::from_secs(1))
        .attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
}

fn uncached() -> AwsKms {
    builder().build_uncached().unwrap()
}

fn context(tenant: &str) -> Context {
    Context::new()
        .with("tenant", tenant)
        .unwrap()
        .with(b"raw", [0xff, 0x00, 0x80])
        .unwrap()
}

fn request() -> DataKeyRequest {
    DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None)
}

fn aws_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> &'a AwsKmsError {
    err.downcast_ref::<AwsKmsError>()
        .unwrap_or_else(|| panic!("not an AwsKmsError: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Round trips and errors

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn generate_unwrap_wrap_rewrap_round_trips() {
    let (a, b) = (create_key(), create_key());
    let kms = uncached();
    let ctx = WrapContext::new(&context("acme"));

    let (data_key, wrapped) = kms.generate(&a, &ctx, &request()).unwrap();
    assert_eq!((&wrapped.key_id, wrapped.version), (&a, KEY_VERSION));
    assert_eq!(kms.unwrap(&wrapped, &ctx).unwrap(), data_key);

    let own = atrest_crypto::Key256::from_bytes([7; 32]);
    let wrapped_own = kms.wrap(&a, &own, &ctx).unwrap();
    assert_eq!(kms.unwrap(&wrapped_own, &ctx).unwrap(), own);

    // ReEncrypt under the same key: a new ciphertext for the same data key.
    let same = kms.rewrap(&wrapped, &ctx).unwrap();
    assert_eq!(same.key_id, a);
    assert_ne!(same.ciphertext, wrapped.ciphertext);
    assert_eq!(kms.unwrap(&same, &ctx).unwrap(), data_key);
    // ReEncrypt to another key.
    let moved = kms.rewrap_to(&wrapped, &ctx, &b).unwrap();
    assert_eq!((&moved.key_id, moved.version), (&b, KEY_VERSION));
    assert_eq!(kms.unwrap(&moved, &ctx).unwrap(), data_key);

    let calls = kms.calls();
    assert_eq!(
        (
            calls.generate_data_key,
            calls.encrypt,
            calls.decrypt,
            calls.re_encrypt
        ),
        (1, 1, 4, 2)
    );

    // An alias works as the key id (resolved by KMS on every call).
    let alias = KeyId::new(format!(
        "alias/atrest-{}",
        &a.as_str()[a.as_str().len() - 12..]
    ))
    .unwrap();
    create_alias(alias.as_str(), &a);
    let (k, w) = kms.generate(&alias, &ctx, &request()).unwrap();
    assert_eq!(w.key_id, alias);
    assert_eq!(kms.unwrap(&w, &ctx).unwrap(), k);
}

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn wrong_context_ciphertext_or_key_is_refused() {
    let (a, b) = (create_key(), create_key());
    let kms = uncached();
    let ctx = WrapContext::new(&context("acme"));
    let (_, wrapped) = kms.generate(&a, &ctx, &request()).unwrap();

    for other in [
        context("evil"),
        Context::new().with("tenant", "acme").unwrap(),
        context("acme").with("extra", "").unwrap(),
    ] {
        let other = WrapContext::new(&other);
        assert!(matches!(
            kms.unwrap(&wrapped, &other),
            Err(UnwrapError::Authentication)
        ));
        assert!(matches!(
            kms.rewrap(&wrapped, &other),
            Err(RewrapError::Unwrap(UnwrapError::Authentication))
        ));
    }
    let mut tampered = wrapped.clone();
    let last = tampered.ciphertext.len() - 1;
    tampered.ciphertext[last] ^= 1;
    assert!(matches!(
        kms.unwrap(&tampered, &ctx),
        Err(UnwrapError::Authentication)
    ));

    // The header names key b, the ciphertext is under a: Decrypt with KeyId = b is refused
    // (moto: AccessDeniedException; AWS: IncorrectKeyException -> Authentication).
    let relabelled = WrappedKey {
        key_id: b.clone(),
        ..wrapped.clone()
    };
    match kms.unwrap(&relabelled, &ctx) {
        Err(UnwrapError::Backend(e)) => {
            let e = aws_error(e.as_ref());
            assert_eq!(e.code(), Some("AccessDeniedException"), "{e}");
            assert_eq!(e.key_id(), Some(b.as_str()));
            assert!(
                e.to_string().starts_with("AWS KMS at http://127.0.0.1:"),
                "{e}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A key that does not exist.
    let missing = KeyId::new(format!(
        "{}00000000-0000-0000-0000-000000000000",
        &a.as_str()[..a.as_str().len() - 36]
    ))
    .unwrap();
    assert_ne!(missing, a);
    assert!(matches!(
        kms.generate(&missing, &ctx, &request()),
        Err(WrapError::KeyNotFound(k)) if k == missing
    ));
    let under_missing = WrappedKey {
        key_id: missing.clone(),
        ..wrapped.clone()
    };
    assert!(matches!(
        kms.unwrap(&under_missing, &ctx),
        Err(UnwrapError::KeyNotFound(k)) if k == missing
    ));
    assert!(matches!(
        kms.rewrap_to(&wrapped, &ctx, &missing),
        Err(RewrapError::Wrap(WrapError::KeyNotFound(k))) if k == missing
    ));

    // A version this provider never writes: refused before any call.
    let before = kms.calls().total();
    let v2 = WrappedKey {
        version: 2,
        ..wrapped
    };
    assert!(matches!(
        kms.unwrap(&v2, &ctx),
        Err(UnwrapError::VersionNotFound { version: 2, .. })
    ));
    assert_eq!(kms.calls().total(), before);
}

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn envelopes_seal_open_and_rotate_through_kms() {
    let (a, b) = (create_key(), create_key());
    let kms = uncached();
    let ctx = context("acme")
        .with("object", "invoice-17")
        .unwrap()
        .exclude_from_wrap("object")
        .unwrap();
    let object = seal(&kms, &a, &ctx, b"attachment bytes").unwrap();
    assert_eq!(open(&kms, &ctx, &object).unwrap(), b"attachment bytes");
    assert_eq!(kms.calls().generate_data_key, 1);

    // Opening with another context: the header tag refuses it (the envelope unwraps with
    // the context stored in the header, then checks the caller's).
    let elsewhere = context("acme")
        .with("object", "invoice-18")
        .unwrap()
        .exclude_from_wrap("object")
        .unwrap();
    for other in [context("evil"), elsewhere] {
        assert!(matches!(
            open(&kms, &other, &object),
            Err(Error::Authentication)
        ));
    }
    // A header whose stored (wrap-bound) context was edited: KMS refuses the unwrap.
    let at = object
        .windows(4)
        .position(|w| w == b"acme")
        .expect("the context is stored in clear");
    let mut edited = object.clone();
    edited[at + 3] = b'f';
    let refused = open(&kms, &context("acmf"), &edited);
    assert!(
        matches!(
            refused,
            Err(Error::Unwrap {
                source: UnwrapError::Authentication,
                ..
            })
        ),
        "{refused:?}"
    );

    // Rotation: ReEncrypt inside KMS, no Decrypt of the data key.
    let before = kms.calls();
    let rotated = rewrap_attached_bytes(&object, &kms, &RewrapPlan::Rotate).unwrap();
    let after = kms.calls();
    assert_eq!(after.re_encrypt - before.re_encrypt, 1);
    assert_eq!(after.decrypt, before.decrypt);
    assert_ne!(rotated, object);
    assert_eq!(open(&kms, &ctx, &rotated).unwrap(), b"attachment bytes");
    // Moving the blob to another key.
    let moved = rewrap_attached_bytes(&object, &kms, &RewrapPlan::Replace(b)).unwrap();
    assert_eq!(open(&kms, &ctx, &moved).unwrap(), b"attachment bytes");
}

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn cache_calls_kms_once_per_key_and_context_within_limits() {
    let key = create_key();
    let ctx = context("acme");

    // Default limits: 100 seals, 1 GenerateDataKey; 100 opens of one blob, 1 Decrypt.
    let cached = builder().build().unwrap();
    let mut objects = Vec::new();
    for i in 0..100u32 {
        objects.push(seal(&cached, &key, &ctx, &i.to_be_bytes()).unwrap());
    }
    for (i, object) in (0..100u32).zip(&objects) {
        assert_eq!(open(&cached, &ctx, object).unwrap(), i.to_be_bytes());
    }
    let calls = cached.inner().calls();
    assert_eq!(
        (calls.generate_data_key, calls.decrypt),
        (1, 1),
        "{calls:?}"
    );
    // Another context is another cache entry.
    seal(&cached, &key, &context("globex"), b"x").unwrap();
    assert_eq!(cached.inner().calls().generate_data_key, 2);

    // max_blobs = 10: 100 seals, 10 calls.
    let by_blobs = builder()
        .cache_limits(CacheLimits::default().max_blobs(10))
        .build()
        .unwrap();
    for _ in 0..100 {
        seal(&by_blobs, &key, &ctx, b"x").unwrap();
    }
    assert_eq!(by_blobs.inner().calls().generate_data_key, 10);

    // max_bytes = 1000 with 400-byte blobs: two per data key, 50 calls.
    let by_bytes = builder()
        .cache_limits(CacheLimits::default().max_bytes(1000))
        .build()
        .unwrap();
    for _ in 0..100 {
        seal(&by_bytes, &key, &ctx, &[0; 400]).unwrap();
    }
    assert_eq!(by_bytes.inner().calls().generate_data_key, 50);

    // ttl: a key older than the TTL is not reused.
    let by_ttl = builder()
        .cache_limits(CacheLimits::default().ttl(Duration::from_millis(300)))
        .build()
        .unwrap();
    for _ in 0..5 {
        seal(&by_ttl, &key, &ctx, b"x").unwrap();
    }
    assert_eq!(by_ttl.inner().calls().generate_data_key, 1);
    std::thread::sleep(Duration::from_millis(400));
    seal(&by_ttl, &key, &ctx, b"x").unwrap();
    assert_eq!(by_ttl.inner().calls().generate_data_key, 2);

    // Opting out: one call per seal.
    let kms = uncached();
    for _ in 0..20 {
        seal(&kms, &key, &ctx, b"x").unwrap();
    }
    assert_eq!(kms.calls().generate_data_key, 20);
}

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn root_key_seals_a_keyring_file() {
    let (root_key, other_key) = (create_key(), create_key());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.atrest");

    let mut keyring = Keyring::new();
    let tenant = KeyId::new("tenant-acme").unwrap();
    keyring.create_key(&tenant, Timestamp::now()).unwrap();
    let root = AwsKmsRoot::new(uncached(), root_key.clone());
    keyring.save(&path, &root).unwrap();
    keyring.save(&path, &root).unwrap();
    let calls = root.kms().calls();
    assert_eq!(
        (calls.generate_data_key, calls.decrypt),
        (1, 0),
        "one data key, remembered for later saves"
    );
    let object = seal(&keyring, &tenant, &context("acme"), b"under the keyring").unwrap();

    // A fresh process: one Decrypt to load, then use it.
    let fresh = AwsKmsRoot::new(uncached(), root_key.clone());
    let loaded = Keyring::load(&path, &fresh).unwrap();
    assert_eq!(fresh.kms().calls().decrypt, 1);
    assert_eq!(
        open(&loaded, &context("acme"), &object).unwrap(),
        b"under the keyring"
    );
    loaded.save(&path, &fresh).unwrap();
    assert_eq!(
        fresh.kms().calls().total(),
        1,
        "saving after a load calls KMS no more"
    );

    // Configured with another key: a clear error, no KMS call.
    let wrong = AwsKmsRoot::new(uncached(), other_key);
    match Keyring::load(&path, &wrong) {
        Err(FileError::RootKey(RootKeyError::External(e))) => {
            assert!(e.to_string().contains(root_key.as_str()), "{e}");
        }
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert_eq!(wrong.kms().calls().total(), 0);

    // KMS down (nothing listens there): a clear error naming AWS KMS and the key.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = AwsKmsRoot::new(
        builder()
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build_uncached()
            .unwrap(),
        root_key.clone(),
    );
    match Keyring::load(&path, &down) {
        Err(FileError::RootKey(RootKeyError::External(e))) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("AWS KMS at http://127.0.0.1:{port}: Decrypt")),
                "{message}"
            );
            assert!(message.contains(root_key.as_str()), "{message}");
        }
        other => panic!("expected a KMS failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Calling the synchronous trait from async code and from plain threads

fn round_trip(kms: &AwsKms, key: &KeyId) {
    let ctx = WrapContext::new(&context("acme"));
    let (data_key, wrapped) = kms.generate(key, &ctx, &request()).unwrap();
    assert_eq!(kms.unwrap(&wrapped, &ctx).unwrap(), data_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
async fn works_inside_a_multi_thread_runtime() {
    let key = create_key();
    let kms = uncached();
    round_trip(&kms, &key);
    let (k2, kms2) = (key.clone(), kms.clone());
    tokio::spawn(async move { round_trip(&kms2, &k2) })
        .await
        .unwrap();
    let (k3, kms3) = (key.clone(), kms.clone());
    tokio::task::spawn_blocking(move || round_trip(&kms3, &k3))
        .await
        .unwrap();
    drop(kms); // dropped inside the runtime: no panic
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
async fn works_inside_a_current_thread_runtime() {
    let key = create_key();
    let kms = uncached();
    round_trip(&kms, &key);
}

#[test]
#[ignore = "needs moto_server on 127.0.0.1; run by .ci/interop.d/aws-kms.sh"]
fn works_from_plain_threads() {
    let key = create_key();
    let kms = uncached();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| round_trip(&kms, &key));
        }
    });
    assert_eq!(kms.calls().generate_data_key, 4);
}
