//! Snapshot tests of the `atrest` binary: success and failure paths, exit codes, messages.
//!
//! Every test works in its own temp dir with `ATREST_PASSPHRASE` and the test-only
//! `ATREST_TEST_FAST_KDF=1` (tiny Argon2id parameters), so a keyring opens in microseconds.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// An initialized keyring with key `tenant-acme`.
    fn with_key() -> Self {
        let env = Self::new();
        env.ok(&["keyring", "init"]);
        env.ok(&["keyring", "create-key", "tenant-acme"]);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("atrest").expect("binary");
        cmd.current_dir(self.dir.path())
            .env("ATREST_PASSPHRASE", "correct horse battery staple")
            .env("ATREST_TEST_FAST_KDF", "1")
            .env_remove("ATREST_ROOT_KEY")
            .env_remove("ATREST_KEYRING")
            .env_remove("RUST_BACKTRACE")
            .timeout(Duration::from_secs(60));
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs a failing command; returns its stderr after checking the exit code and that it
    /// is an `error:` line and at most one `hint:` line (no panic, no backtrace).
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
        check_error_shape(&stderr);
        stderr
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read")
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".partial"))
            .collect()
    }
}

fn check_error_shape(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no error message");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines.len() <= 2, "more than error + hint: {stderr}");
    if let Some(hint) = lines.get(1) {
        assert!(hint.starts_with("hint: "), "{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

/// Replaces RFC 3339 timestamps and hex ids, the parts that change between runs.
fn normalize(text: &str) -> String {
    let ts = regex_lite(
        text,
        20,
        |w| {
            w.len() == 20 && w.as_bytes()[4] == b'-' && w.ends_with('Z') && w.as_bytes()[10] == b'T'
        },
        "<TIME>",
    );
    regex_lite(
        &ts,
        64,
        |w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()),
        "<HEX>",
    )
}

/// Replaces every `len`-byte window of `text` that `matches` (on char boundaries).
fn regex_lite(text: &str, len: usize, matches: impl Fn(&str) -> bool, with: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        if let Some(window) = text.get(i..i + len)
            && matches(window)
        {
            out.push_str(with);
            i += len;
            continue;
        }
        let c = text[i..].chars().next().expect("char");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 31 % 251).expect("below 251"))
        .collect()
}

#[test]
fn keyring_init_create_rotate_status() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["keyring", "init"]),
        "created keyring ./.atrest/keyring (passphrase root)\nnext: atrest keyring create-key NAME\n"
    );
    assert_eq!(
        env.ok(&["keyring", "create-key", "tenant-acme"]),
        "created key 'tenant-acme' (version 1 is the primary)\n"
    );
    assert_eq!(
        env.ok(&["keyring", "rotate", "tenant-acme"]),
        "key 'tenant-acme': version 2 is now the primary\n"
    );
    env.ok(&["keyring", "rotate", "tenant-acme", "--no-promote"]);
    env.ok(&["keyring", "disable", "tenant-acme", "1"]);
    env.ok(&["keyring", "policy", "tenant-acme", "--max-age", "90d"]);
    env.ok(&["keyring", "destroy", "tenant-acme", "1", "--window", "7d"]);
    assert_eq!(
        normalize(&env.ok(&["keyring", "status"])),
        "\
KEY          VERSION  STATUS                           CREATED
tenant-acme  1        destroy at <TIME>  <TIME>
tenant-acme  2        primary                          <TIME>
tenant-acme  3        active                           <TIME>
tenant-acme: rotate every 90d, next due <TIME>
"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["keyring", "status", "--json"])).expect("json");
    let key = &json["keys"][0];
    assert_eq!(key["key"], "tenant-acme");
    assert_eq!(key["primary"], 2);
    assert_eq!(key["rotation_max_age_secs"], 90 * 86_400);
    assert_eq!(key["versions"][0]["status"], "scheduled_for_destruction");
    assert_eq!(key["versions"][2]["status"], "active");

    env.ok(&["keyring", "restore", "tenant-acme", "1"]);
    env.ok(&["keyring", "enable", "tenant-acme", "1"]);
    env.ok(&["keyring", "promote", "tenant-acme", "3"]);
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["keyring", "status", "--json"])).expect("json");
    assert_eq!(json["keys"][0]["primary"], 3);
    assert_eq!(json["keys"][0]["versions"][0]["status"], "active");

    // Refusals.
    let err = env.fails(&["keyring", "init"], 1);
    assert!(
        err.contains("a keyring already exists at ./.atrest/keyring"),
        "{err}"
    );
    let err = env.fails(&["keyring", "create-key", "tenant-acme"], 1);
    assert_eq!(
        err.lines().next(),
        Some("error: a key named 'tenant-acme' already exists")
    );
    let err = env.fails(&["keyring", "rotate", "nobody"], 4);
    assert!(
        err.starts_with("error: no key named 'nobody'\nhint: "),
        "{err}"
    );
    let err = env.fails(
        &["keyring", "destroy", "tenant-acme", "3", "--now", "--yes"],
        1,
    );
    assert!(err.contains("it is the primary"), "{err}");
}

#[test]
fn encrypt_decrypt_files() {
    let env = Env::with_key();
    let data = plaintext(200_000);
    env.write("report.pdf", &data);
    let ctx = ["--context", "tenant=acme", "--context", "id=42"];
    let mut args = vec![
        "encrypt",
        "--key",
        "tenant-acme",
        "report.pdf",
        "-o",
        "report.atrest",
    ];
    args.extend(ctx);
    assert_eq!(env.ok(&args), "");
    let stored = env.read("report.atrest");
    assert!(stored.len() > data.len());
    assert!(
        !stored
            .windows(64)
            .any(|w| data.windows(64).next() == Some(w))
    );

    let mut args = vec!["decrypt", "report.atrest", "-o", "out.pdf"];
    args.extend(ctx);
    env.ok(&args);
    assert_eq!(env.read("out.pdf"), data);

    // An existing output is only replaced with --force.
    let err = env.fails(&args, 1);
    assert_eq!(
        err,
        "error: out.pdf already exists\nhint: pass --force to replace it\n"
    );
    args.push("--force");
    env.ok(&args);
    assert!(env.leftovers().is_empty());

    // --threads and --provider: 2 workers decrypt what 1 worker encrypted (and the reverse),
    // 8 segments, each provider opening what the other sealed.
    let big = plaintext(8 * 65_536 + 5);
    env.write("big.bin", &big);
    for (enc, dec, enc_provider, dec_provider) in [
        ("1", "2", "ring", "rustcrypto"),
        ("2", "1", "rustcrypto", "ring"),
    ] {
        let mut args = vec![
            "encrypt",
            "--threads",
            enc,
            "--provider",
            enc_provider,
            "--key",
            "tenant-acme",
            "big.bin",
            "-o",
            "big.enc",
            "--force",
        ];
        args.extend(ctx);
        env.ok(&args);
        let mut args = vec![
            "decrypt",
            "--threads",
            dec,
            "--provider",
            dec_provider,
            "big.enc",
            "-o",
            "big.out",
            "--force",
        ];
        args.extend(ctx);
        env.ok(&args);
        assert_eq!(env.read("big.out"), big);
    }
    // An unknown provider is a usage error that names the choices, and writes nothing.
    env.cmd()
        .args(["encrypt", "--provider", "openssl", "--key", "tenant-acme"])
        .args(["big.bin", "-o", "other.enc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "[possible values: ring, rustcrypto]",
        ));
    assert!(!env.path("other.enc").exists());
}

#[test]
fn encrypt_decrypt_stdin_stdout() {
    let env = Env::with_key();
    let data = plaintext(70_000);
    let sealed = env
        .cmd()
        .args([
            "encrypt",
            "--key",
            "tenant-acme",
            "--context",
            "tenant=acme",
        ])
        .write_stdin(data.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let opened = env
        .cmd()
        .args(["decrypt", "-", "--context", "tenant=acme"])
        .write_stdin(sealed)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(opened, data);
}

#[test]
fn detached_header() {
    let env = Env::with_key();
    let data = plaintext(5_000);
    env.write("in.bin", &data);
    env.ok(&[
        "encrypt",
        "--key",
        "tenant-acme",
        "--segment-size",
        "4KiB",
        "--detached",
        "in.hdr",
        "in.bin",
        "-o",
        "in.body",
    ]);
    let header = env.read("in.hdr");
    assert_eq!(&header[..4], &[0x89, b'a', b't', b'e']);
    assert_eq!(&env.read("in.body")[..4], &[0x89, b'a', b't', b'r']);
    env.ok(&[
        "decrypt",
        "--detached",
        "in.hdr",
        "in.body",
        "-o",
        "out.bin",
    ]);
    assert_eq!(env.read("out.bin"), data);

    let header_only = normalize(&env.ok(&["inspect", "in.hdr"]));
    assert!(header_only.starts_with("format:         atrest envelope v1 (detached header)\n"));
    assert!(!header_only.contains("body size"));
    let with_body = env.ok(&["inspect", "in.hdr", "--body", "in.body"]);
    assert!(
        with_body.contains("segment size:   4096 bytes\n"),
        "{with_body}"
    );
    assert!(
        with_body.contains("plaintext size: 5000 bytes"),
        "{with_body}"
    );

    // The body alone is a bare STREAM v1 stream; without its header it cannot be decrypted.
    let bare = env.ok(&["inspect", "in.body"]);
    assert!(bare.starts_with("format:         atrest STREAM v1 (bare stream, no envelope)\n"));
    let err = env.fails(&["decrypt", "in.body", "-o", "nope.bin"], 3);
    assert!(err.contains("not an atrest envelope"), "{err}");
    assert!(!env.path("nope.bin").exists());
}

#[test]
fn wrong_context_is_an_authentication_failure() {
    let env = Env::with_key();
    env.write("in.bin", b"invoice");
    env.ok(&[
        "encrypt",
        "--key",
        "tenant-acme",
        "--context",
        "tenant=acme",
        "in.bin",
        "-o",
        "in.enc",
    ]);
    let err = env.fails(
        &[
            "decrypt",
            "--context",
            "tenant=globex",
            "in.enc",
            "-o",
            "out.bin",
        ],
        3,
    );
    assert_eq!(
        err,
        "error: decrypting in.enc: envelope header authentication failed (modified header or wrong encryption context)\n\
         hint: check that every --context k=v matches what the file was encrypted with (`atrest inspect FILE` shows it); otherwise the file was modified or belongs elsewhere\n"
    );
    assert!(!env.path("out.bin").exists());
    env.fails(&["decrypt", "in.enc", "-o", "out.bin"], 3);
}

#[test]
fn tampered_file_leaves_no_output() {
    let env = Env::with_key();
    let data = plaintext(300_000);
    env.write("in.bin", &data);
    env.ok(&["encrypt", "--key", "tenant-acme", "in.bin", "-o", "in.enc"]);
    let mut stored = env.read("in.enc");
    // A byte in the last segment: earlier segments authenticate and are written first.
    let at = stored.len() - 100;
    stored[at] ^= 0x01;
    env.write("bad.enc", &stored);
    let err = env.fails(&["decrypt", "bad.enc", "-o", "out.bin"], 3);
    assert!(
        err.starts_with("error: decrypting bad.enc: envelope body: stream authentication failed"),
        "{err}"
    );
    assert!(
        !env.path("out.bin").exists(),
        "partial plaintext left at the destination"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());

    // Truncated.
    env.write("short.enc", &env.read("in.enc")[..200_000]);
    env.fails(&["decrypt", "short.enc", "-o", "out.bin"], 3);
    assert!(!env.path("out.bin").exists());
}

#[test]
fn destroyed_key_is_unrecoverable() {
    let env = Env::with_key();
    env.write("in.bin", b"old secret");
    env.ok(&["encrypt", "--key", "tenant-acme", "in.bin", "-o", "in.enc"]);
    env.ok(&["keyring", "rotate", "tenant-acme"]);
    let err = env.fails(&["keyring", "destroy", "tenant-acme", "1", "--now"], 2);
    assert!(err.contains("without --yes"), "{err}");
    assert_eq!(
        env.ok(&["keyring", "destroy", "tenant-acme", "1", "--now", "--yes"]),
        "key 'tenant-acme' version 1 destroyed: data encrypted under it is unrecoverable\n"
    );
    let err = env.fails(&["decrypt", "in.enc", "-o", "out.bin"], 4);
    assert!(err.contains("version 1 cannot decrypt: destroyed"), "{err}");
    assert!(err.contains("unrecoverable"), "{err}");
    assert!(!env.path("out.bin").exists());

    // Disabled: exit 4 with the way back.
    env.write("new.bin", b"new secret");
    env.ok(&[
        "encrypt",
        "--key",
        "tenant-acme",
        "new.bin",
        "-o",
        "new.enc",
    ]);
    env.ok(&["keyring", "disable", "tenant-acme", "2"]);
    let err = env.fails(&["decrypt", "new.enc", "-o", "out.bin"], 4);
    assert!(
        err.contains("hint: enable it again with `atrest keyring enable tenant-acme 2`"),
        "{err}"
    );
    let err = env.fails(
        &["encrypt", "--key", "tenant-acme", "new.bin", "-o", "x.enc"],
        4,
    );
    assert!(err.contains("cannot encrypt: disabled"), "{err}");
}

#[test]
fn inspect_snapshot() {
    let env = Env::with_key();
    env.write("in.bin", &plaintext(100_000));
    env.ok(&[
        "encrypt",
        "--key",
        "tenant-acme",
        "--context",
        "tenant=acme",
        "--context",
        "id=42",
        "in.bin",
        "-o",
        "in.enc",
    ]);
    assert_eq!(
        normalize(&env.ok(&["inspect", "in.enc"])),
        "\
format:         atrest envelope v1 (attached)
suite:          1 (AES-256-GCM data key wrap, HKDF-SHA256, body in atrest STREAM v1)
segment size:   65536 bytes
blob id:        <HEX>
context:        id=42, tenant=acme
wrapped key:    tenant-acme v1 (80 bytes)
header size:    235 bytes
body size:      100074 bytes
plaintext size: 100000 bytes (97.7 KiB; from lengths, not authenticated)
"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "in.enc", "--json"])).expect("json");
    assert_eq!(json["format"], "atrest-envelope");
    assert_eq!(json["wrapped_keys"][0]["key"], "tenant-acme");
    assert_eq!(json["wrapped_keys"][0]["version"], 1);
    assert_eq!(json["plaintext_size"], 100_000);
    // Inspect needs no keyring and no root key.
    env.cmd()
        .env_remove("ATREST_PASSPHRASE")
        .args(["--keyring", "/nonexistent", "inspect", "in.enc"])
        .assert()
        .success();
    env.write("junk", b"hello world");
    let err = env.fails(&["inspect", "junk"], 3);
    assert_eq!(
        err,
        "error: junk is not an atrest envelope, an atrest stream or a Tink stream\n"
    );
}

#[test]
fn password_hash_verify_calibrate() {
    let env = Env::new();
    let hash = env
        .cmd()
        .args(["password", "hash"])
        .write_stdin("hunter2\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let hash = String::from_utf8(hash).expect("utf-8");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let hash = hash.trim();
    env.cmd()
        .args(["password", "verify", hash])
        .write_stdin("hunter2\n")
        .assert()
        .success()
        .stdout("match\n");
    let out = env
        .cmd()
        .args(["password", "verify", hash])
        .write_stdin("hunter3\n")
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the password does not match the hash\n"
    );
    // A legacy bcrypt hash matches and asks for a rehash.
    env.cmd()
        .args([
            "password",
            "verify",
            "$2b$04$T1Hgv.5U/6arZlezWL3gD.6KThTDCMX5XV86wTp3qTMYeS0339yzC",
        ])
        .write_stdin("hunter2")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "match (needs rehash: Legacy(Bcrypt)",
        ));
    let out = env
        .cmd()
        .args(["password", "verify", "not-a-hash"])
        .write_stdin("hunter2\n")
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    check_error_shape(&err);
    assert!(err.contains("malformed"), "{err}");
    env.cmd()
        .args(["password", "calibrate", "--target", "1ms"])
        .assert()
        .success()
        .stdout(predicate::str::contains("parameters: m=19456 KiB"));
}

#[test]
fn missing_keyring_says_how_to_create_one() {
    let env = Env::new();
    env.write("in.bin", b"x");
    let err = env.fails(&["encrypt", "--key", "k", "in.bin", "-o", "in.enc"], 4);
    assert_eq!(
        err,
        "error: no keyring at ./.atrest/keyring\n\
         hint: create one with `atrest keyring init`, or point --keyring (or ATREST_KEYRING) at an existing one\n"
    );
}

#[test]
fn no_passphrase_source_in_a_pipe_fails_at_once() {
    let env = Env::with_key();
    let out = env
        .cmd()
        .env_remove("ATREST_PASSPHRASE")
        .args(["keyring", "status"])
        .write_stdin("")
        .timeout(Duration::from_secs(10))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no root key: stdin is not a terminal to ask for the passphrase\n\
         hint: set ATREST_PASSPHRASE, or ATREST_ROOT_KEY, or pass --key-file PATH\n"
    );
}

#[test]
fn wrong_passphrase_and_wrong_root_kind() {
    let env = Env::with_key();
    let out = env
        .cmd()
        .env("ATREST_PASSPHRASE", "wrong")
        .args(["keyring", "status"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    check_error_shape(&err);
    assert!(err.contains("failed authentication"), "{err}");
    assert!(
        !err.contains("wrong\n") && !err.contains("correct horse"),
        "{err}"
    );

    let key = env.path("root.key");
    std::fs::write(&key, [7u8; 32]).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let err = env.fails(&["--key-file", "root.key", "keyring", "status"], 2);
    assert!(err.contains("sealed under a passphrase"), "{err}");
}

#[test]
fn key_file_root() {
    let env = Env::new();
    let run = |args: &[&str]| {
        env.cmd()
            .env_remove("ATREST_PASSPHRASE")
            .args(["--key-file", "root.key"])
            .args(args)
            .assert()
    };
    run(&["keyring", "init", "--generate-key-file"])
        .success()
        .stdout("generated root key file root.key\ncreated keyring ./.atrest/keyring (raw key root)\nnext: atrest keyring create-key NAME\n");
    run(&["keyring", "create-key", "t"]).success();
    run(&["keyring", "status"])
        .success()
        .stdout(predicate::str::contains("t    1        primary"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("root.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(env.path("root.key"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let out = run(&["keyring", "status"]).code(1).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        check_error_shape(&err);
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.cmd().args(["encrypt"]).assert().code(2);
    env.cmd().args(["frobnicate"]).assert().code(2);
    env.cmd()
        .args(["keyring", "policy", "k", "--max-age", "90"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected a unit"));
    env.ok(&["keyring", "init"]);
    let err = env.fails(
        &[
            "encrypt",
            "--key",
            "k",
            "--context",
            "k=v",
            "--context",
            "k=w",
        ],
        2,
    );
    assert!(err.contains("duplicate context key"), "{err}");
}

#[test]
fn help_documents_exit_codes() {
    let env = Env::new();
    env.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("4  key unavailable"))
        .stdout(predicate::str::contains("ATREST_TEST_FAST_KDF=1"));
}

#[test]
fn bench_prints_a_table_per_provider() {
    let env = Env::new();
    env.cmd()
        .args(["bench", "--size", "1MiB"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^rustcrypto +\d+ +\d+$").expect("regex"))
        .stdout(predicate::str::is_match(r"(?m)^ring +\d+ +\d+$").expect("regex"))
        .stdout(predicate::str::contains("cargo bench"));
}

#[test]
fn store_put_get_rewrap_verify_shred() {
    let env = Env::new();
    env.ok(&["keyring", "init"]);
    env.ok(&["keyring", "create-key", "tenant-acme"]);
    let data = plaintext(150_000);
    env.write("in.bin", &data);
    assert_eq!(
        env.ok(&["store", "put", "in.bin", "acme/invoices/17.pdf"]),
        "put acme/invoices/17.pdf (146.5 KiB)\n"
    );
    assert_eq!(
        env.ok(&["store", "ls"]),
        "      150000  acme/invoices/17.pdf\n"
    );
    env.ok(&["store", "get", "acme/invoices/17.pdf", "-o", "out.bin"]);
    assert_eq!(env.read("out.bin"), data);
    // Put with the default provider (ring), read back with the other one.
    env.ok(&[
        "store",
        "--provider",
        "rustcrypto",
        "get",
        "acme/invoices/17.pdf",
        "-o",
        "out2.bin",
    ]);
    assert_eq!(env.read("out2.bin"), data);
    let ranged = env
        .cmd()
        .args([
            "store",
            "get",
            "acme/invoices/17.pdf",
            "--range",
            "70000..70010",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(ranged, &data[70_000..70_010]);

    let err = env.fails(&["store", "put", "in.bin", "globex/a.pdf"], 4);
    assert!(
        err.starts_with("error: cannot encrypt object globex/a.pdf: cannot wrap the data key: no key named 'tenant-globex'\n"),
        "{err}"
    );

    env.ok(&["keyring", "rotate", "tenant-acme"]);
    assert_eq!(
        env.ok(&["store", "rewrap"]),
        "rewrap: 1 objects, 1 rewritten (146.8 KiB written), 0 already current, 0 failed\n"
    );
    assert_eq!(
        env.ok(&["store", "verify"]),
        "verify: 1 objects, 1 ok, 0 bad\n"
    );

    // Tamper with the stored object behind the store's back.
    let stored = env.path(".atrest/store/acme/invoices/17.pdf");
    let mut bytes = std::fs::read(&stored).expect("read");
    bytes[5_000] ^= 1;
    std::fs::write(&stored, &bytes).expect("write");
    let out = env
        .cmd()
        .args(["store", "verify"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("verify: 1 objects, 0 ok, 1 bad\n"));
    bytes[5_000] ^= 1;
    std::fs::write(&stored, &bytes).expect("write");

    env.fails(&["store", "shred", "tenant-acme", "--prefix", "acme"], 2);
    assert_eq!(
        env.ok(&["store", "shred", "tenant-acme", "--prefix", "acme", "--yes"]),
        "shred: key 'tenant-acme' destroyed; 1 objects under acme: 1 unrecoverable, 0 still readable (other keys), 0 other errors\n"
    );
    let err = env.fails(
        &["store", "get", "acme/invoices/17.pdf", "-o", "gone.bin"],
        4,
    );
    assert!(err.contains("unrecoverable"), "{err}");
    assert!(!env.path("gone.bin").exists());
    env.ok(&["store", "rm", "acme/invoices/17.pdf"]);
    assert_eq!(env.ok(&["store", "ls"]), "");
    // Without the `s3` feature, S3 URLs are refused with a usage error that says so.
    #[cfg(not(feature = "s3"))]
    {
        let err = env.fails(&["store", "--store", "s3://bucket/prefix", "ls"], 2);
        assert!(
            err.starts_with("error: this atrest was built without S3 support\n"),
            "{err}"
        );
    }
}

#[test]
fn store_with_detached_headers_rewraps_headers_only() {
    let env = Env::new();
    env.ok(&["keyring", "init"]);
    env.ok(&["keyring", "create-key", "tenant-acme"]);
    let data = plaintext(150_000);
    env.write("in.bin", &data);
    let store = |args: &[&str]| {
        let mut full = vec!["store", "--detached-headers"];
        full.extend_from_slice(args);
        env.ok(&full)
    };
    store(&["put", "in.bin", "acme/invoices/17.pdf"]);
    assert_eq!(store(&["ls"]), "      150000  acme/invoices/17.pdf\n");
    store(&["get", "acme/invoices/17.pdf", "-o", "out.bin"]);
    assert_eq!(env.read("out.bin"), data);
    let body = env.path(".atrest/store/acme/invoices/17.pdf");
    let before = std::fs::read(&body).expect("read");

    env.ok(&["keyring", "rotate", "tenant-acme"]);
    let report = store(&["rewrap"]);
    // Only the sidecar header is rewritten: a few hundred bytes, not the 146 KiB body.
    assert!(
        report.starts_with("rewrap: 1 objects, 1 rewritten (")
            && report.ends_with(" B written), 0 already current, 0 failed\n"),
        "{report}"
    );
    assert_eq!(std::fs::read(&body).expect("read"), before);
    assert_eq!(store(&["verify"]), "verify: 1 objects, 1 ok, 0 bad\n");
    assert_eq!(
        store(&["gc", "--grace", "0s"]),
        "gc: 1 headers, 1 in use, 0 unused but recent, 0 deleted, 0 failed\n"
    );

    // The same store read without --detached-headers is not an atrest store to it.
    let err = env.fails(&["store", "get", "acme/invoices/17.pdf", "-o", "x.bin"], 3);
    assert!(err.starts_with("error: "), "{err}");
    let err = env.fails(&["store", "gc"], 2);
    assert!(
        err.starts_with("error: gc only applies to stores with detached headers\n"),
        "{err}"
    );
    store(&["rm", "acme/invoices/17.pdf"]);
    assert_eq!(store(&["ls"]), "");
    assert_eq!(
        store(&["gc", "--grace", "0s"]),
        "gc: 0 headers, 0 in use, 0 unused but recent, 0 deleted, 0 failed\n"
    );
}
