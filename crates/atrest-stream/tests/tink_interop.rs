//! atrest → Tink: writes ciphertexts made by atrest's Tink mode for Google Tink to decrypt.
//!
//! Run by `.ci/interop.d/tink.sh`, which sets `ATREST_TINK_EXPORT` to a file path, runs this
//! test, then has Tink (tink-py) decrypt every vector with `tests/vectors/tink/tink_decrypt.py`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::io::Write;

use atrest_stream::{Key256, Options};
use common::pattern;
use serde::Serialize;

#[derive(Serialize)]
struct Export {
    generator: String,
    format: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize)]
struct Vector {
    name: String,
    ciphertext_segment_size: u32,
    key: String,
    aad: String,
    plaintext: String,
    ciphertext: String,
}

#[test]
#[ignore = "needs Google Tink to check the output; run by .ci/interop.d/tink.sh"]
fn export_for_tink() {
    let path =
        std::env::var("ATREST_TINK_EXPORT").expect("ATREST_TINK_EXPORT names the output file");
    let mut vectors = Vec::new();
    for (i, c) in [57u32, 512, 1000, 4096, 65_536, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let first = c as usize - 56;
        let rest = c as usize - 16;
        let mut lengths = vec![
            0,
            1,
            first - 1,
            first,
            first + 1,
            first + rest,
            first + 3 * rest + 5,
        ];
        if c > 100_000 {
            lengths = vec![0, 1, 1000, first + 10];
        }
        for len in lengths {
            for aad in [&b""[..], b"tenant=acme\x00\xff"] {
                let key: [u8; 32] = std::array::from_fn(|j| (j as u8) ^ (i as u8) ^ (len as u8));
                let key = Key256::from_bytes(key);
                let plaintext = pattern(len);
                let options = Options::tink(c).expect("Tink size");
                // Alternate the one-shot and the streaming writer (with odd write sizes).
                let ciphertext = if len % 2 == 0 {
                    options.seal(&key, aad, &plaintext).expect("seal")
                } else {
                    let mut enc = options.encryptor(Vec::new(), &key, aad).expect("encryptor");
                    for chunk in plaintext.chunks(333) {
                        enc.write_all(chunk).expect("write");
                    }
                    enc.finish().expect("finish")
                };
                vectors.push(Vector {
                    name: format!("atrest_c{c}_len{len}_aad{}", aad.len()),
                    ciphertext_segment_size: c,
                    key: hex::encode(key.expose_secret()),
                    aad: hex::encode(aad),
                    plaintext: hex::encode(&plaintext),
                    ciphertext: hex::encode(&ciphertext),
                });
            }
        }
    }
    let export = Export {
        generator: format!("atrest-stream {}", env!("CARGO_PKG_VERSION")),
        format: "tink AES256_GCM_HKDF streaming".into(),
        vectors,
    };
    let count = export.vectors.len();
    std::fs::write(&path, serde_json::to_vec(&export).expect("json")).expect("write export");
    println!("wrote {count} atrest-made Tink ciphertexts to {path}");
}
