//! Hashes made by peer implementations verify here: argon2-cffi (the reference C Argon2),
//! pyca/bcrypt, passlib, Django and OpenSSL (via hashlib). Regenerate with
//! `tests/vectors/argon2-cffi/generate.py` (see its docstring for the pinned versions).

use atrest_password::{
    Hasher, LegacyAlgorithm, Pepper, PepperSet, Policy, RehashReason, Verification,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    wrong_password: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    kind: String,
    params: serde_json::Value,
    password: String,
    hash: String,
}

fn load() -> File {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/argon2-cffi/vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("vectors.json is committed");
    serde_json::from_str(&text).expect("valid vectors.json")
}

/// The weakest policy the vectors meet, with caps that admit them all (OWASP memory).
fn hasher(peppers: Option<PepperSet>) -> Hasher {
    let policy = Policy::builder()
        .memory_kib(8)
        .iterations(1)
        .salt_len(16)
        .output_len(16)
        .build()
        .expect("valid");
    let builder = Hasher::builder(policy);
    match peppers {
        Some(set) => builder.peppers(set),
        None => builder,
    }
    .build()
    .expect("hasher")
}

#[test]
fn every_peer_vector_verifies_and_wrong_passwords_do_not() {
    let file = load();
    assert!(
        file.vectors.len() >= 30,
        "expected the full set, got {}",
        file.vectors.len()
    );
    let plain = hasher(None);
    let mut checked = 0;
    for v in &file.vectors {
        let (hasher, stored) = match v.params.get("pepper_hex").and_then(|h| h.as_str()) {
            Some(pepper_hex) => {
                let pepper = Pepper::new(hex::decode(pepper_hex).expect("hex")).expect("pepper");
                let keyid = v.params["keyid"].as_str().expect("keyid");
                let set = PepperSet::new(keyid.as_bytes(), pepper).expect("set");
                // The reference encoder writes no keyid; name the pepper the way atrest does.
                let b64_keyid = "Y3Vy"; // base64("cur")
                assert_eq!(keyid, "cur");
                (
                    hasher(Some(set)),
                    v.hash
                        .replacen("p=1$", &format!("p=1,keyid={b64_keyid}$"), 1),
                )
            }
            None => (plain.clone(), v.hash.clone()),
        };
        let outcome = hasher.verify(&stored, v.password.as_bytes());
        assert!(outcome.is_ok(), "{} {stored}: {outcome:?}", v.kind);
        let outcome = outcome.expect("checked above");
        assert!(outcome.is_match(), "{} {stored}: {outcome:?}", v.kind);
        let expected = match v.kind.as_str() {
            "bcrypt" => Some(RehashReason::Legacy(LegacyAlgorithm::Bcrypt)),
            "scrypt" => Some(RehashReason::Legacy(LegacyAlgorithm::Scrypt)),
            "pbkdf2-sha256" => Some(RehashReason::Legacy(LegacyAlgorithm::Pbkdf2Sha256)),
            "argon2i" | "argon2d" => Some(RehashReason::OutdatedArgon2),
            _ if v.params.get("version").and_then(serde_json::Value::as_u64) == Some(16) => {
                Some(RehashReason::OutdatedArgon2)
            }
            _ => None,
        };
        if let Some(reason) = expected {
            assert_eq!(outcome, Verification::MatchNeedsRehash(reason), "{stored}");
        }
        assert_eq!(
            hasher.verify(&stored, file.wrong_password.as_bytes()),
            Ok(Verification::Mismatch),
            "{stored}"
        );
        checked += 1;
    }
    assert_eq!(checked, file.vectors.len());
}

#[test]
fn vectors_cover_every_kind_and_non_default_argon2_shapes() {
    let file = load();
    for kind in [
        "argon2id",
        "argon2i",
        "argon2d",
        "bcrypt",
        "scrypt",
        "pbkdf2-sha256",
    ] {
        assert!(
            file.vectors.iter().any(|v| v.kind == kind),
            "no {kind} vector"
        );
    }
    for form in ["django", "passlib", "phc"] {
        assert!(
            file.vectors
                .iter()
                .any(|v| v.params.get("form").and_then(|f| f.as_str()) == Some(form))
        );
    }
    assert!(file.vectors.iter().any(|v| v.hash.contains(",p=4$")));
    assert!(
        file.vectors
            .iter()
            .any(|v| v.params.get("salt_len").and_then(serde_json::Value::as_u64) == Some(8))
    );
    assert!(
        file.vectors
            .iter()
            .any(|v| v.params.get("hash_len").and_then(serde_json::Value::as_u64) == Some(64))
    );
}
