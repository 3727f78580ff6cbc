//! **INSECURE: A PROVIDER WITH NO SECURITY AT ALL. FOR FUZZING ONLY.**
//!
//! Compiled only with the cargo feature `insecure-fuzzing`, which no published crate enables
//! and the default build never has. [`PROVIDER`] exists so that fuzzers can get past the
//! authentication tags of `atrest-stream` and reach the segment, truncation and trailing-data
//! state machine behind them: with a real AEAD a mutated ciphertext fails at the first tag
//! and nothing deeper is ever exercised (rustls ships a fuzzing provider for the same reason).
//!
//! - "AES-256-GCM" is the **identity** on the data: the "ciphertext" is the plaintext, and the
//!   key is ignored.
//! - The "tag" is [`tag`]: the nonce followed by four zero bytes, XORed with a checksum of the
//!   associated data and the data in the last four bytes. Anyone can compute it, so anyone
//!   can forge any segment; it only keeps the nonce (segment index and final flag) meaningful.
//! - HKDF-SHA256 is the real one (it is not what blocks a fuzzer).
//! - "Randomness" is a counter from a fixed seed: every process produces the same sequence.
//!
//! Never use this provider for data. Never enable `insecure-fuzzing` outside fuzzing and the
//! tests of the fuzzing logic.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::{AeadKey, CryptoProvider, Error, Key256, NONCE_LEN, Nonce, TAG_LEN, Tag};

/// The no-security fuzzing provider. **INSECURE**: see the module documentation.
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "insecure-fuzzing",
    aes256_gcm: &IdentityAead,
    hkdf_sha256: crate::rustcrypto::PROVIDER.hkdf_sha256,
    random: &CounterRandom,
};

/// The "tag" [`PROVIDER`] attaches to `data` sealed under `nonce` with associated data `aad`:
/// `nonce || 00 00 00 00`, XORed with a 32-bit rotate-and-XOR checksum of `aad || data` in the
/// last four bytes. Public so fuzzing models can forge segments on purpose.
pub fn tag(nonce: &Nonce, aad: &[u8], data: &[u8]) -> Tag {
    let checksum = aad
        .iter()
        .chain(data)
        .fold(0u32, |sum, &byte| sum.rotate_left(5) ^ u32::from(byte));
    let mut bytes = [0u8; TAG_LEN];
    bytes[..NONCE_LEN].copy_from_slice(nonce.as_bytes());
    for (out, byte) in bytes[NONCE_LEN..].iter_mut().zip(checksum.to_be_bytes()) {
        *out ^= byte;
    }
    Tag::from_bytes(bytes)
}

/// Compares tags as two 64-bit integers (not in constant time, on purpose): libFuzzer's
/// comparison tracing then hands the fuzzer the expected value.
fn verify(nonce: &Nonce, aad: &[u8], data: &[u8], given: &Tag) -> Result<(), Error> {
    let expected = tag(nonce, aad, data);
    let halves = |tag: &Tag| {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&tag.as_bytes()[..8]);
        lo.copy_from_slice(&tag.as_bytes()[8..]);
        (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
    };
    let (expected_hi, expected_lo) = halves(&expected);
    let (given_hi, given_lo) = halves(given);
    if given_hi == expected_hi && given_lo == expected_lo {
        Ok(())
    } else {
        Err(Error::Authentication)
    }
}

struct IdentityAead;

impl crate::Aes256Gcm for IdentityAead {
    fn key(&self, _key: &Key256) -> Box<dyn AeadKey> {
        Box::new(IdentityKey)
    }
}

struct IdentityKey;

impl AeadKey for IdentityKey {
    fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> Result<Tag, Error> {
        Ok(tag(nonce, aad, buf))
    }

    fn seal_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Tag, Error> {
        if plaintext.len() != out.len() {
            return Err(Error::BufferLength);
        }
        out.copy_from_slice(plaintext);
        Ok(tag(nonce, aad, plaintext))
    }

    fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &Tag,
    ) -> Result<(), Error> {
        verify(nonce, aad, buf, tag)
    }

    fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error> {
        if ciphertext.len() != out.len() {
            return Err(Error::BufferLength);
        }
        verify(nonce, aad, ciphertext, tag)?;
        out.copy_from_slice(ciphertext);
        Ok(())
    }
}

/// SplitMix64 over a global counter with a fixed seed: deterministic "randomness".
struct CounterRandom;

static COUNTER: AtomicU64 = AtomicU64::new(0x6174_7265_7374_2d66); // "atrest-f"

impl crate::SecureRandom for CounterRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        for chunk in buf.chunks_mut(8) {
            let mut z = COUNTER
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_and_tag_binds_nonce_and_data() {
        let key = PROVIDER.aes256_gcm.key(&Key256::from_bytes([0; 32]));
        let nonce = Nonce::from_bytes([3; 12]);
        let mut buf = *b"segment";
        let t = key.seal_in_place(&nonce, b"", &mut buf).expect("seal");
        assert_eq!(&buf, b"segment", "identity on data");
        key.open_in_place(&nonce, b"", &mut buf, &t).expect("open");
        let other = Nonce::from_bytes([4; 12]);
        assert_eq!(
            key.open_in_place(&other, b"", &mut buf, &t),
            Err(Error::Authentication)
        );
        buf[0] ^= 1;
        assert_eq!(
            key.open_in_place(&nonce, b"", &mut buf, &t),
            Err(Error::Authentication)
        );
        let mut out = [0u8; 7];
        assert_eq!(
            key.open_to(&nonce, b"", &buf, &t, &mut out),
            Err(Error::Authentication)
        );
        assert_eq!(out, [0; 7], "nothing written on failure");
    }

    #[test]
    fn random_is_deterministic_counter_not_constant() {
        let mut a = [0u8; 13];
        let mut b = [0u8; 13];
        PROVIDER.random.fill(&mut a).expect("fill");
        PROVIDER.random.fill(&mut b).expect("fill");
        assert_ne!(a, b);
    }
}
