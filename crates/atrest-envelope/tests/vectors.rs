//! Known-answer vectors for atrest envelope v1 (frozen in `tests/vectors/envelope_v1.json`,
//! quoted in docs/FORMAT.md, checked independently by `tests/vectors/envelope_v1_check.py`).
//!
//! `check` opens every vector *and* re-seals it from the same inputs (fixed data key, blob id,
//! wrap salts and stream salt) to reproduce the bytes exactly.

#![allow(
    clippy::cast_possible_truncation,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use atrest_crypto::{CryptoProvider, DEFAULT_PROVIDER, SecureRandom};
use atrest_envelope::fuzzing::TestWrapper;
use atrest_envelope::{Context, Header, KeyId, Options, Sealer, open_detached};
use serde::{Deserialize, Serialize};

/// A "random" source that returns fixed bytes: call `n` fills byte `i` with
/// `0x40 * (n + 1) + i (mod 256)`. Call 0.. are the wrap salts (one per key), then the stream
/// salt.
struct FixedRandom(AtomicU8);

impl SecureRandom for FixedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), atrest_crypto::Error> {
        let call = self.0.fetch_add(1, Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = 0x40u8
                .wrapping_mul(call.wrapping_add(1))
                .wrapping_add(i as u8);
        }
        Ok(())
    }
}

static FIXED_RANDOM: FixedRandom = FixedRandom(AtomicU8::new(0));
static FIXED: CryptoProvider = CryptoProvider {
    name: "fixed-random (vectors only)",
    aes256_gcm: atrest_crypto::rustcrypto::PROVIDER.aes256_gcm,
    hkdf_sha256: atrest_crypto::rustcrypto::PROVIDER.hkdf_sha256,
    random: &FIXED_RANDOM,
};
/// Serializes the tests that use `FIXED_RANDOM`'s counter.
static LOCK: Mutex<()> = Mutex::new(());

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/envelope_v1.json")
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    random: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize)]
struct Vector {
    name: String,
    segment_size: u32,
    data_key: String,
    blob_id: String,
    /// `[key, value]` pairs, hex.
    context: Vec<[String; 2]>,
    /// Keys (hex) of the context pairs kept out of the data-key wrap.
    #[serde(default)]
    wrap_excluded: Vec<String>,
    keys: Vec<Kek>,
    stream_salt: String,
    plaintext: String,
    commitment: String,
    body_key: String,
    header_tag: String,
    header: String,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct Kek {
    key_id: String,
    version: u32,
    kek: String,
    wrap_salt: String,
    wrap_key: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

fn arr(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

/// The inputs of one vector: name, segment size, context, context keys excluded from the
/// wrap, keys (id, version), plaintext.
type Case = (
    &'static str,
    u32,
    Vec<(&'static str, &'static str)>,
    Vec<&'static str>,
    Vec<(&'static str, u32)>,
    Vec<u8>,
);

fn cases() -> Vec<Case> {
    vec![
        (
            "empty-context_len0",
            4096,
            vec![],
            vec![],
            vec![("k1", 1)],
            Vec::new(),
        ),
        (
            "context_len5",
            4096,
            vec![("tenant", "acme"), ("object", "invoice-17")],
            vec![],
            vec![("tenant-acme", 3)],
            b"hello".to_vec(),
        ),
        (
            "object-excluded-from-wrap_len5",
            4096,
            vec![("tenant", "acme"), ("object", "invoice-17")],
            vec!["object"],
            vec![("tenant-acme", 3)],
            b"hello".to_vec(),
        ),
        (
            "two-keys_len4097",
            4096,
            vec![("tenant", "acme")],
            vec![],
            vec![("tenant-acme", 2), ("escrow", 1)],
            (0..4097u32).map(|i| (i % 251) as u8).collect(),
        ),
    ]
}

fn wrapper_for(keys: &[(String, u32, [u8; 32])]) -> TestWrapper {
    let wrapper = TestWrapper::with_provider(&FIXED);
    for (id, version, kek) in keys {
        let id = KeyId::new(id.as_str()).expect("valid");
        // Earlier versions exist with other KEKs, so the version number matters.
        for v in 1..*version {
            wrapper.add_version(&id, [v as u8; 32]);
        }
        wrapper.add_version(&id, *kek);
    }
    wrapper
}

fn context_of(v: &Vector) -> Context {
    let context = v.context.iter().fold(Context::new(), |c, [k, val]| {
        c.with(unhex(k), unhex(val)).expect("valid context")
    });
    v.wrap_excluded.iter().fold(context, |c, k| {
        c.exclude_from_wrap(unhex(k)).expect("excluded key exists")
    })
}

/// The wrap AAD, built from the spec: magic || 01 || 01 || u16(len) || bound pairs (sorted).
fn wrap_aad(v: &Vector) -> Vec<u8> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = v
        .context
        .iter()
        .filter(|[k, _]| !v.wrap_excluded.contains(k))
        .map(|[k, val]| (unhex(k), unhex(val)))
        .collect();
    pairs.sort();
    let mut entries = Vec::new();
    for (k, val) in pairs {
        entries.push(k.len() as u8);
        entries.extend_from_slice(&k);
        entries.extend_from_slice(&(val.len() as u16).to_be_bytes());
        entries.extend_from_slice(&val);
    }
    let mut aad = vec![0x89, b'a', b't', b'e', 1, 1];
    aad.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    aad.extend_from_slice(&entries);
    aad
}

/// Length of the binding (everything before the wrapped-key count).
fn binding_len(header: &[u8]) -> usize {
    let parsed = Header::parse(header).expect("parses");
    header.len()
        - 32
        - 1
        - parsed
            .wrapped_keys()
            .iter()
            .map(|w| 1 + w.key_id.as_str().len() + 4 + 2 + w.ciphertext.len())
            .sum::<usize>()
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    DEFAULT_PROVIDER
        .hkdf_sha256
        .derive(salt, ikm, info, &mut out)
        .expect("hkdf");
    out
}

/// Seals `plaintext` deterministically; returns (header, body).
fn reseal(v: &Vector, keys: &[(String, u32, [u8; 32])], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    FIXED_RANDOM.0.store(0, Ordering::SeqCst);
    let wrapper = wrapper_for(keys);
    let ids: Vec<KeyId> = keys
        .iter()
        .map(|(id, _, _)| KeyId::new(id.as_str()).expect("valid"))
        .collect();
    let options = Options::default()
        .segment_size(v.segment_size)
        .expect("valid")
        .provider(&FIXED);
    let sealer = Sealer::with_fixed_key_for_testing(
        &wrapper,
        &ids,
        &context_of(v),
        &options,
        arr(&v.data_key),
        arr(&v.blob_id),
    )
    .expect("seal");
    let body = sealer.seal_body(plaintext).expect("seal body");
    (sealer.header_bytes().to_vec(), body)
}

fn kek_list(v: &Vector) -> Vec<(String, u32, [u8; 32])> {
    v.keys
        .iter()
        .map(|k| (k.key_id.clone(), k.version, arr(&k.kek)))
        .collect()
}

#[test]
fn check() {
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let file: File =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).expect("read vectors"))
            .expect("parse vectors");
    assert_eq!(file.vectors.len(), cases().len());
    for v in &file.vectors {
        let keys = kek_list(v);
        let (header, body, plaintext) = (unhex(&v.header), unhex(&v.body), unhex(&v.plaintext));
        let context = context_of(v);

        // 1. It opens, with every key alone.
        for key in &keys {
            let wrapper = wrapper_for(std::slice::from_ref(key));
            let opened = open_detached(&wrapper, &context, &header, &body).expect(&v.name);
            assert_eq!(opened, plaintext, "{}", v.name);
        }

        // 2. The intermediate values follow from the spec.
        let (dk, blob_id) = (unhex(&v.data_key), unhex(&v.blob_id));
        let parsed = Header::parse(&header).expect("parses");
        assert_eq!(parsed.blob_id().as_slice(), blob_id);
        let commitment = hkdf(&blob_id, &dk, &[b"atrest envelope v1 key commitment"]);
        assert_eq!(hex::encode(commitment), v.commitment, "{}", v.name);
        assert_eq!(parsed.commitment(), &commitment);
        let body_key = hkdf(&blob_id, &dk, &[b"atrest envelope v1 body key"]);
        assert_eq!(hex::encode(body_key), v.body_key, "{}", v.name);
        let tag_at = header.len() - 32;
        let tag = hkdf(
            &blob_id,
            &dk,
            &[
                b"atrest envelope v1 header tag",
                &header[..binding_len(&header)],
            ],
        );
        assert_eq!(hex::encode(tag), v.header_tag);
        assert_eq!(&header[tag_at..], tag);
        for k in &v.keys {
            let wrap_key = hkdf(
                &unhex(&k.wrap_salt),
                &unhex(&k.kek),
                &[
                    b"atrest envelope v1 local wrap",
                    &[k.key_id.len() as u8],
                    k.key_id.as_bytes(),
                    &k.version.to_be_bytes(),
                    &wrap_aad(v),
                ],
            );
            assert_eq!(hex::encode(wrap_key), k.wrap_key, "{}", v.name);
            assert_eq!(
                &parsed
                    .wrapped_keys()
                    .iter()
                    .find(|w| w.key_id.as_str() == k.key_id)
                    .expect("named")
                    .ciphertext[..32],
                unhex(&k.wrap_salt)
            );
        }

        // 3. Sealing the same inputs reproduces the bytes.
        let (h, b) = reseal(v, &keys, &plaintext);
        assert_eq!(hex::encode(h), v.header, "{}: header", v.name);
        assert_eq!(hex::encode(b), v.body, "{}: body", v.name);
        assert_eq!(&body[10..42], unhex(&v.stream_salt));
    }
}

/// Rewrites tests/vectors/envelope_v1.json. Run only when the format deliberately changes
/// (which it must not, for v1):
/// `cargo test -p atrest-envelope --test vectors -- --ignored regenerate`
#[test]
#[ignore = "rewrites the frozen vectors"]
fn regenerate() {
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut vectors = Vec::new();
    for (n, (name, segment_size, context, excluded, key_names, plaintext)) in
        cases().into_iter().enumerate()
    {
        let n = n as u8;
        let data_key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(n));
        let blob_id: [u8; 32] = std::array::from_fn(|i| 0xB0u8.wrapping_add(i as u8) ^ n);
        let keys: Vec<(String, u32, [u8; 32])> = key_names
            .iter()
            .enumerate()
            .map(|(j, (id, version))| {
                let kek: [u8; 32] = std::array::from_fn(|i| 0xC0u8 ^ (i as u8) ^ (j as u8 * 0x11));
                ((*id).to_string(), *version, kek)
            })
            .collect();
        let mut v = Vector {
            name: name.into(),
            segment_size,
            data_key: hex::encode(data_key),
            blob_id: hex::encode(blob_id),
            context: context
                .iter()
                .map(|(k, v)| [hex::encode(k), hex::encode(v)])
                .collect(),
            wrap_excluded: excluded.iter().map(hex::encode).collect(),
            keys: Vec::new(),
            stream_salt: String::new(),
            plaintext: hex::encode(&plaintext),
            commitment: hex::encode(hkdf(
                &blob_id,
                &data_key,
                &[b"atrest envelope v1 key commitment"],
            )),
            body_key: hex::encode(hkdf(&blob_id, &data_key, &[b"atrest envelope v1 body key"])),
            header_tag: String::new(),
            header: String::new(),
            body: String::new(),
        };
        let (header, body) = reseal(&v, &keys, &plaintext);
        let parsed = Header::parse(&header).expect("parses");
        for ((id, version, kek), w) in keys.iter().zip(parsed.wrapped_keys()) {
            let salt = &w.ciphertext[..32];
            let wrap_key = hkdf(
                salt,
                kek,
                &[
                    b"atrest envelope v1 local wrap",
                    &[id.len() as u8],
                    id.as_bytes(),
                    &version.to_be_bytes(),
                    &wrap_aad(&v),
                ],
            );
            v.keys.push(Kek {
                key_id: id.clone(),
                version: *version,
                kek: hex::encode(kek),
                wrap_salt: hex::encode(salt),
                wrap_key: hex::encode(wrap_key),
            });
        }
        v.stream_salt = hex::encode(&body[10..42]);
        v.header_tag = hex::encode(&header[header.len() - 32..]);
        v.header = hex::encode(&header);
        v.body = hex::encode(&body);
        vectors.push(v);
    }
    let file = File {
        format: "atrest envelope v1 (docs/FORMAT.md section 4)".into(),
        random: "wrap salts and stream salt from a fixed source: call n (0-based; wraps in key order, then the stream salt) gives byte i = 0x40 * (n + 1) + i mod 256".into(),
        vectors,
    };
    let mut json = serde_json::to_string_pretty(&file).expect("json");
    json.push('\n');
    std::fs::write(vectors_path(), json).expect("write vectors");
}
