//! Writes hashes made by atrest to `$ATREST_INTEROP_OUT/atrest-password.json` for
//! `.ci/interop.d/argon2-cffi.sh`, where argon2-cffi (the reference C Argon2) verifies them.

use atrest_password::{Hasher, Pepper, PepperSet, Policy};

#[test]
#[ignore = "run by .ci/interop.d/argon2-cffi.sh, which then verifies the output with argon2-cffi"]
fn export_hashes_for_argon2_cffi() {
    let dir =
        std::env::var("ATREST_INTEROP_OUT").expect("ATREST_INTEROP_OUT names an output directory");
    let policies = [
        Policy::builder().memory_kib(64).iterations(1).build(),
        Policy::builder()
            .memory_kib(256)
            .iterations(2)
            .lanes(2)
            .salt_len(32)
            .output_len(16)
            .build(),
        Policy::builder()
            .memory_kib(512)
            .iterations(3)
            .lanes(4)
            .salt_len(48)
            .output_len(64)
            .build(),
        Ok(Policy::owasp()),
        Ok(Policy::rfc9106_second()),
    ];
    let passwords = ["correct horse battery staple", "pässwörd ✓", ""];
    let mut entries = Vec::new();
    for policy in policies {
        let hasher = Hasher::new(policy.expect("valid policy"));
        for password in passwords {
            let hash = hasher.hash(password.as_bytes()).expect("hash");
            entries.push(serde_json::json!({ "password": password, "hash": hash }));
        }
    }
    let pepper = [0x42u8; 32];
    let peppers =
        PepperSet::new(b"cur", Pepper::new(pepper.to_vec()).expect("pepper")).expect("set");
    let peppered = Hasher::builder(
        Policy::builder()
            .memory_kib(128)
            .iterations(2)
            .build()
            .expect("valid"),
    )
    .peppers(peppers)
    .build()
    .expect("hasher");
    let hash = peppered.hash(passwords[1].as_bytes()).expect("hash");
    entries.push(serde_json::json!({ "password": passwords[1], "hash": hash, "pepper_hex": hex::encode(pepper) }));
    let path = std::path::Path::new(&dir).join("atrest-password.json");
    let json = serde_json::to_string_pretty(&entries).expect("json");
    std::fs::write(&path, json).expect("write");
    println!("wrote {} hashes to {}", entries.len(), path.display());
}
