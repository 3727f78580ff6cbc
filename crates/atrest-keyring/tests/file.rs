//! The sealed keyring file: round trips under every root kind, wrong roots, tampering,
//! atomic replacement.

#![allow(clippy::panic, reason = "a failing test panics")]

use std::time::Duration;

use atrest_crypto::Key256;
use atrest_keyring::{
    Argon2Params, EnvRoot, FileError, KeyFileRoot, KeyId, KeyWrapper, Keyring, PassphraseRoot,
    RawKeyRoot, RootKeyError, RootKind, RotationPolicy, Timestamp, remove_stale_temp_files,
};

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

fn tiny() -> Argon2Params {
    Argon2Params::new(8, 1, 1).expect("tiny params")
}

fn sample() -> Keyring {
    let mut ring = Keyring::new();
    let a = KeyId::new("tenant-a").expect("valid id");
    let b = KeyId::new("tenant-b").expect("valid id");
    ring.create_key(&a, T0).expect("create");
    ring.create_key(&b, T0).expect("create");
    ring.rotate(&a, T0).expect("rotate");
    ring.add_version(&a, T0).expect("add");
    ring.set_rotation_policy(&b, Some(RotationPolicy::max_age(Duration::from_secs(3600))))
        .expect("policy");
    ring.schedule_destruction(&a, 1, T0, Duration::from_secs(60))
        .expect("schedule");
    ring
}

#[test]
fn round_trips_under_each_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = sample();
    let a = KeyId::new("tenant-a").expect("valid id");
    let dk = Key256::from_bytes([3; 32]);
    let wrapped = ring
        .wrap(&a, &dk, &atrest_envelope::fuzzing::wrap_context(b"aad"))
        .expect("wrap");

    let key_file =
        KeyFileRoot::generate(dir.path().join("root.key"), ring.provider()).expect("key file");
    let pass = PassphraseRoot::new("hunter2", tiny());
    for (name, root) in [
        ("pass.kr", &pass as &dyn atrest_keyring::RootKey),
        ("file.kr", &key_file),
    ] {
        let path = dir.path().join(name);
        ring.save(&path, root).expect("save");
        let loaded = Keyring::load(&path, root).expect("load");
        assert_eq!(loaded.status(), ring.status(), "{name}");
        assert_eq!(
            loaded
                .unwrap(&wrapped, &atrest_envelope::fuzzing::wrap_context(b"aad"))
                .expect("unwrap"),
            dk
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    // Each save seals under a fresh file key: same keyring, different bytes.
    assert_ne!(
        ring.seal(&pass).expect("seal"),
        ring.seal(&pass).expect("seal")
    );
}

#[test]
fn wrong_roots_fail_with_specific_errors() {
    let ring = sample();
    let sealed = ring
        .seal(&PassphraseRoot::new("right", tiny()))
        .expect("seal");
    assert!(matches!(
        Keyring::open(&sealed, &PassphraseRoot::new("wrong", tiny())),
        Err(FileError::Authentication)
    ));
    assert!(matches!(
        Keyring::open(&sealed, &RawKeyRoot::new(Key256::from_bytes([0; 32]))),
        Err(FileError::RootKindMismatch {
            file: RootKind::Passphrase,
            given: RootKind::RawKey
        })
    ));
    let raw = RawKeyRoot::new(Key256::from_bytes([1; 32]));
    let sealed = ring.seal(&raw).expect("seal");
    assert!(matches!(
        Keyring::open(&sealed, &RawKeyRoot::new(Key256::from_bytes([2; 32]))),
        Err(FileError::Authentication)
    ));
    assert!(matches!(
        Keyring::open(&sealed, &EnvRoot::named("ATREST_TEST_UNSET_ROOT_VAR")),
        Err(FileError::RootKey(RootKeyError::EnvMissing(_)))
    ));
    let err = Keyring::open(&sealed, &RawKeyRoot::new(Key256::from_bytes([2; 32])))
        .expect_err("wrong key");
    assert!(err.to_string().contains("authentication"), "{err}");
}

#[test]
fn every_bit_flip_and_truncation_is_rejected() {
    let raw = RawKeyRoot::new(Key256::from_bytes([7; 32]));
    let sealed = sample().seal(&raw).expect("seal");
    // Raw-root header: magic 0..8, version 8..10, kind 10, params length 11..13 (no params),
    // HKDF salt 13..45, nonce 45..57, payload length 57..61; then ciphertext and tag.
    for i in 0..sealed.len() {
        for bit in [0x01, 0x02, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= bit;
            let result = Keyring::open(&bad, &raw);
            let ok = match i {
                0..8 | 11..13 | 57..61 => matches!(result, Err(FileError::Malformed(_))),
                8..10 => matches!(result, Err(FileError::UnsupportedVersion(_))),
                10 => matches!(
                    result,
                    Err(FileError::Malformed(_) | FileError::RootKindMismatch { .. })
                ),
                _ => matches!(result, Err(FileError::Authentication)),
            };
            assert!(ok, "byte {i} bit {bit:#x}: {result:?}");
        }
    }
    // Flipping payload or tag bytes is an authentication failure, never a parse error.
    let mut bad = sealed.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        Keyring::open(&bad, &raw),
        Err(FileError::Authentication)
    ));
    for len in 0..sealed.len() {
        assert!(
            matches!(
                Keyring::open(&sealed[..len], &raw),
                Err(FileError::Malformed(_))
            ),
            "truncated to {len}"
        );
    }
    let mut long = sealed.clone();
    long.push(0);
    assert!(matches!(
        Keyring::open(&long, &raw),
        Err(FileError::Malformed("trailing bytes after the tag"))
    ));
    assert!(matches!(
        Keyring::open(b"not a keyring file at all, no", &raw),
        Err(FileError::Malformed("not a keyring file (bad magic)"))
    ));
}

#[test]
fn hostile_argon2_parameters_are_refused_before_hashing() {
    let ring = sample();
    let strong = PassphraseRoot::new("pw", Argon2Params::new(64, 3, 1).expect("params"));
    let sealed = ring.seal(&strong).expect("seal");
    let limited = PassphraseRoot::new("pw", tiny()).with_limits(tiny());
    assert!(matches!(
        Keyring::open(&sealed, &limited),
        Err(FileError::RootKey(RootKeyError::Argon2Params(_)))
    ));
    Keyring::open(&sealed, &PassphraseRoot::new("pw", tiny())).expect("within default limits");
}

#[test]
fn save_replaces_atomically_and_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyring.kr");
    let raw = RawKeyRoot::new(Key256::from_bytes([9; 32]));
    let mut ring = sample();
    ring.save(&path, &raw).expect("save");
    let a = KeyId::new("tenant-a").expect("valid id");
    ring.rotate(&a, T0).expect("rotate");
    ring.save(&path, &raw).expect("save again");
    assert_eq!(
        Keyring::load(&path, &raw)
            .expect("load")
            .primary(&a)
            .expect("key"),
        4
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["keyring.kr".to_owned()],
        "no temp files after a clean save"
    );

    // A stray temp file from a crashed save neither breaks loading nor saving.
    let stray = dir.path().join(".keyring.kr.tmp-0123456789abcdef");
    std::fs::write(&stray, b"partial").expect("write");
    let other = dir.path().join(".keyring.kr.tmp-not-ours");
    std::fs::write(&other, b"x").expect("write");
    Keyring::load(&path, &raw).expect("load with a stray temp file");
    ring.save(&path, &raw).expect("save with a stray temp file");
    assert_eq!(remove_stale_temp_files(&path).expect("cleanup"), 1);
    assert!(!stray.exists() && other.exists());

    assert!(matches!(
        Keyring::load(dir.path().join("missing.kr"), &raw),
        Err(FileError::Io { .. })
    ));
    assert!(matches!(
        ring.save(dir.path().join("no-such-dir").join("k.kr"), &raw),
        Err(FileError::Io { .. })
    ));
}

#[test]
fn key_file_and_env_roots_are_interchangeable() {
    // Both are "raw key" roots: a file sealed with the key file opens with the same bytes
    // given any other way.
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = sample();
    let key_path = dir.path().join("root.key");
    let key_file = KeyFileRoot::generate(&key_path, ring.provider()).expect("key file");
    let sealed = ring.seal(&key_file).expect("seal");
    let text = std::fs::read_to_string(&key_path).expect("read");
    let env_key = EnvRoot::new().parse(&text).expect("hex parses");
    Keyring::open(&sealed, &RawKeyRoot::new(env_key)).expect("same bytes open it");
}
