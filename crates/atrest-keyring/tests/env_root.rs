//! `EnvRoot` reads `ATREST_ROOT_KEY` (hex or base64). Setting environment variables in-process
//! is `unsafe` (forbidden here), so the test re-executes this binary with the variable set.

#![allow(clippy::panic, reason = "a failing test panics")]

use std::path::PathBuf;
use std::process::Command;

use atrest_crypto::Key256;
use atrest_keyring::{EnvRoot, FileError, KeyId, Keyring, RawKeyRoot, RootKeyError, Timestamp};
use base64ct::Encoding as _;

const ENV_FILE: &str = "ATREST_ENV_ROOT_TEST_FILE";
const ENV_EXPECT: &str = "ATREST_ENV_ROOT_TEST_EXPECT";

#[test]
#[ignore = "child half of env_root_opens_files_sealed_with_the_same_bytes"]
fn env_root_child() {
    let Some(path) = std::env::var_os(ENV_FILE).map(PathBuf::from) else {
        return;
    };
    let expect = std::env::var(ENV_EXPECT).expect("expectation");
    let result = Keyring::load(&path, &EnvRoot::new());
    match (expect.as_str(), result) {
        ("ok", Ok(ring)) => assert!(ring.contains(&KeyId::new("t").expect("valid id"))),
        ("authentication", Err(FileError::Authentication)) => {}
        ("format", Err(FileError::RootKey(RootKeyError::EnvFormat(name)))) => {
            assert_eq!(name, EnvRoot::DEFAULT_VAR);
        }
        ("missing", Err(FileError::RootKey(RootKeyError::EnvMissing(_)))) => {}
        (expect, other) => panic!("expected {expect}, got {other:?}"),
    }
}

#[test]
fn env_root_opens_files_sealed_with_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyring.kr");
    let bytes = [0xA5; 32];
    let mut ring = Keyring::new();
    ring.create_key(&KeyId::new("t").expect("valid id"), Timestamp::EPOCH)
        .expect("create");
    ring.save(&path, &RawKeyRoot::new(Key256::from_bytes(bytes)))
        .expect("save");
    let exe = std::env::current_exe().expect("test binary");
    let cases = [
        (Some(hex::encode(bytes)), "ok"),
        (Some(base64ct::Base64::encode_string(&bytes)), "ok"),
        (Some(hex::encode([0x5A; 32])), "authentication"),
        (Some("not a key".to_owned()), "format"),
        (None, "missing"),
    ];
    for (value, expect) in cases {
        let mut command = Command::new(&exe);
        command
            .args([
                "--exact",
                "env_root_child",
                "--include-ignored",
                "--test-threads",
                "1",
            ])
            .env(ENV_FILE, &path)
            .env(ENV_EXPECT, expect);
        match &value {
            Some(value) => command.env(EnvRoot::DEFAULT_VAR, value),
            None => command.env_remove(EnvRoot::DEFAULT_VAR),
        };
        let output = command.output().expect("run child");
        assert!(
            output.status.success(),
            "{expect}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child test really ran"
        );
    }
}
