//! Crypto-shredding: once a key (or a version) is destroyed, blobs under it cannot be
//! recovered from the keyring in memory, from the saved file, or from its decrypted payload,
//! and the error says why.

use std::time::Duration;

use atrest_crypto::Key256;
use atrest_keyring::{
    Error, KeyId, KeyUnavailable, KeyWrapper, Keyring, RawKeyRoot, Timestamp, UnwrapError,
    WrapError, insecure,
};

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `bytes` holds `key` raw or as hex (either case).
fn holds(bytes: &[u8], key: &Key256) -> bool {
    let hex = hex::encode(key.expose_secret());
    contains(bytes, key.expose_secret())
        || contains(bytes, hex.as_bytes())
        || contains(bytes, hex.to_uppercase().as_bytes())
}

#[test]
fn shredded_key_is_unrecoverable_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyring.kr");
    let root = RawKeyRoot::new(Key256::from_bytes([0x11; 32]));
    let (a, b) = (
        KeyId::new("tenant-a").expect("valid id"),
        KeyId::new("tenant-b").expect("valid id"),
    );
    let mut ring = Keyring::new();
    ring.create_key(&a, T0).expect("create");
    ring.create_key(&b, T0).expect("create");
    let dk = Key256::from_bytes([0x77; 32]);
    let w1 = ring
        .wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b"blob 1"))
        .expect("wrap");
    ring.rotate(&a, T0).expect("rotate");
    let w2 = ring
        .wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b"blob 2"))
        .expect("wrap");
    let wb = ring
        .wrap(&b, &dk, &atrest_envelope::fuzzing::wrap_context(b"blob b"))
        .expect("wrap");
    let kek_a1 = insecure::export_version_material(&ring, &a, 1).expect("export");
    let kek_a2 = insecure::export_version_material(&ring, &a, 2).expect("export");
    let kek_b1 = insecure::export_version_material(&ring, &b, 1).expect("export");

    // Positive control: before shredding, the material is in the sealed payload (and only
    // there: never in the file's bytes in the clear).
    ring.save(&path, &root).expect("save");
    let file = std::fs::read(&path).expect("read");
    let payload = insecure::decrypt_payload(&file, &root).expect("payload");
    for kek in [&kek_a1, &kek_a2, &kek_b1] {
        assert!(holds(&payload, kek), "control: material is in the payload");
        assert!(!holds(&file, kek), "never in the clear on disk");
    }

    ring.shred(&a).expect("shred");
    for (w, v) in [(&w1, 1), (&w2, 2)] {
        let err = ring
            .unwrap(w, &atrest_envelope::fuzzing::wrap_context(b"blob"))
            .expect_err("shredded");
        assert!(
            matches!(
                err,
                UnwrapError::Unavailable { version, reason: KeyUnavailable::Destroyed, .. }
                    if version == v
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("unrecoverable"), "{err}");
    }
    assert!(matches!(
        ring.wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b"")),
        Err(WrapError::Unavailable {
            reason: KeyUnavailable::Destroyed,
            ..
        })
    ));
    // In memory: the material is gone (the only export door finds nothing).
    for v in [1, 2] {
        assert!(matches!(
            insecure::export_version_material(&ring, &a, v),
            Err(Error::Destroyed { version, .. }) if version == v
        ));
    }

    ring.save(&path, &root).expect("save after shredding");
    let file = std::fs::read(&path).expect("read");
    let payload = insecure::decrypt_payload(&file, &root).expect("payload");
    for kek in [&kek_a1, &kek_a2] {
        assert!(!holds(&payload, kek), "shredded material left the payload");
        assert!(!holds(&file, kek), "and the file");
    }
    assert!(
        holds(&payload, &kek_b1),
        "control: the other tenant's key is still there"
    );

    let loaded = Keyring::load(&path, &root).expect("load");
    assert!(matches!(
        loaded.unwrap(&w1, &atrest_envelope::fuzzing::wrap_context(b"blob 1")),
        Err(UnwrapError::Unavailable {
            reason: KeyUnavailable::Destroyed,
            ..
        })
    ));
    assert_eq!(
        loaded
            .unwrap(&wb, &atrest_envelope::fuzzing::wrap_context(b"blob b"))
            .expect("other tenant"),
        dk
    );
    assert!(loaded.status().keys[0].shredded);
}

#[test]
fn destroying_one_version_removes_only_its_material() {
    let root = RawKeyRoot::new(Key256::from_bytes([0x22; 32]));
    let a = KeyId::new("tenant-a").expect("valid id");
    let mut ring = Keyring::new();
    ring.create_key(&a, T0).expect("create");
    let dk = Key256::from_bytes([0x33; 32]);
    let w1 = ring
        .wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b""))
        .expect("wrap");
    ring.rotate(&a, T0).expect("rotate");
    let w2 = ring
        .wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b""))
        .expect("wrap");
    let kek1 = insecure::export_version_material(&ring, &a, 1).expect("export");
    let kek2 = insecure::export_version_material(&ring, &a, 2).expect("export");
    let window = Duration::from_secs(24 * 3600);
    let at = ring
        .schedule_destruction(&a, 1, T0, window)
        .expect("schedule");
    assert!(ring.destroy_due(T0).is_empty(), "window still open");
    assert_eq!(ring.destroy_due(at), vec![(a.clone(), 1)]);
    let sealed = ring.seal(&root).expect("seal");
    let payload = insecure::decrypt_payload(&sealed, &root).expect("payload");
    assert!(!holds(&payload, &kek1));
    assert!(holds(&payload, &kek2));
    let loaded = Keyring::open(&sealed, &root).expect("open");
    assert!(matches!(
        loaded.unwrap(&w1, &atrest_envelope::fuzzing::wrap_context(b"")),
        Err(UnwrapError::Unavailable {
            version: 1,
            reason: KeyUnavailable::Destroyed,
            ..
        })
    ));
    assert_eq!(
        loaded
            .unwrap(&w2, &atrest_envelope::fuzzing::wrap_context(b""))
            .expect("v2"),
        dk
    );
}
