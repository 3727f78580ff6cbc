//! The [ring](https://docs.rs/ring) provider for atrest.
//!
//! ring's AES-256-GCM uses a 256-bit VAES + VPCLMULQDQ code path on CPUs that have it and is
//! several times faster than the pure-Rust default on such machines (see
//! docs/PERFORMANCE.md). Output is byte-identical to every other provider, so data written with
//! one is read with any other.
//!
//! ```
//! use atrest_stream::{Key256, Options};
//!
//! let key = Key256::from_bytes([7; 32]);
//! let options = Options::default().provider(&atrest_ring::PROVIDER);
//! let sealed = options.seal(&key, b"aad", b"hello")?;
//! // Any provider reads it.
//! assert_eq!(atrest_stream::open(&key, b"aad", &sealed)?, b"hello");
//! # Ok::<(), atrest_stream::Error>(())
//! ```
//!
//! # Security
//!
//! ring decrypts and authenticates in one pass and zeroes its output when the tag does not
//! verify, so no unauthenticated plaintext is ever left behind. ring's expanded AES keys are
//! not zeroized on drop by ring itself (a known limitation of ring 0.17); atrest's own copies
//! of key bytes are.

use atrest_crypto::{AeadKey, CryptoProvider, Error, Key256, Nonce, Tag, check_aes_gcm_len};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, UnboundKey};
use ring::rand::SecureRandom as _;

/// The ring provider.
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "ring",
    aes256_gcm: &RingAes256Gcm,
    hkdf_sha256: &RingHkdf,
    random: &RingRandom,
};

struct RingAes256Gcm;

impl atrest_crypto::Aes256Gcm for RingAes256Gcm {
    fn key(&self, key: &Key256) -> Box<dyn AeadKey> {
        // 32 bytes is always a valid AES-256 key, so `new` cannot fail; keep it total anyway.
        match UnboundKey::new(&AES_256_GCM, key.expose_secret()) {
            Ok(unbound) => Box::new(RingKey(Some(LessSafeKey::new(unbound)))),
            Err(_) => Box::new(RingKey(None)),
        }
    }
}

struct RingKey(Option<LessSafeKey>);

fn nonce(nonce: &Nonce) -> ring::aead::Nonce {
    ring::aead::Nonce::assume_unique_for_key(*nonce.as_bytes())
}

impl RingKey {
    fn key(&self) -> Result<&LessSafeKey, Error> {
        self.0.as_ref().ok_or(Error::LengthLimit)
    }
}

impl AeadKey for RingKey {
    fn seal_in_place(&self, n: &Nonce, aad: &[u8], buf: &mut [u8]) -> Result<Tag, Error> {
        check_aes_gcm_len(buf.len())?;
        let tag = self
            .key()?
            .seal_in_place_separate_tag(nonce(n), Aad::from(aad), buf)
            .map_err(|_| Error::LengthLimit)?;
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(tag.as_ref());
        Ok(Tag::from_bytes(bytes))
    }

    fn seal_to(
        &self,
        n: &Nonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Tag, Error> {
        if plaintext.len() != out.len() {
            return Err(Error::BufferLength);
        }
        // ring only seals in place.
        out.copy_from_slice(plaintext);
        self.seal_in_place(n, aad, out)
    }

    fn open_in_place(&self, n: &Nonce, aad: &[u8], buf: &mut [u8], tag: &Tag) -> Result<(), Error> {
        let tag = ring::aead::Tag::from(*tag.as_bytes());
        // On failure ring zeroes `buf`: no unauthenticated plaintext remains.
        self.key()?
            .open_in_place_separate_tag(nonce(n), Aad::from(aad), tag, buf, 0..)
            .map(|_| ())
            .map_err(|_| Error::Authentication)
    }

    fn open_to(
        &self,
        n: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error> {
        if ciphertext.len() != out.len() {
            return Err(Error::BufferLength);
        }
        out.copy_from_slice(ciphertext);
        self.open_in_place(n, aad, out, tag)
    }
}

struct RingHkdf;

/// An HKDF output length for ring's `KeyType`.
struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl atrest_crypto::HkdfSha256 for RingHkdf {
    fn derive(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<(), Error> {
        if okm.len() > 255 * 32 {
            return Err(Error::LengthLimit);
        }
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
        prk.expand(info, Len(okm.len()))
            .and_then(|out| out.fill(okm))
            .map_err(|_| Error::LengthLimit)
    }
}

struct RingRandom;

impl atrest_crypto::SecureRandom for RingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| Error::Random)
    }
}
