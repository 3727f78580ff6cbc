//! The default provider: RustCrypto's pure-Rust `aes-gcm`, `hkdf` and `sha2`, with the
//! operating system's CSPRNG through `getrandom`.
//!
//! `aes-gcm` picks AES-NI/VAES and CLMUL code paths at run time, so no `cfg` is needed.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, KeyInit};

use crate::{AeadKey, CryptoProvider, Error, Key256, Nonce, Tag, check_aes_gcm_len};

/// The RustCrypto provider.
pub const PROVIDER: CryptoProvider = CryptoProvider {
    name: "rustcrypto",
    aes256_gcm: &Aes256GcmImpl,
    hkdf_sha256: &HkdfSha256Impl,
    random: &OsRandom,
};

struct Aes256GcmImpl;

impl crate::Aes256Gcm for Aes256GcmImpl {
    fn key(&self, key: &Key256) -> Box<dyn AeadKey> {
        let key = aes_gcm::Key::<aes_gcm::Aes256Gcm>::from(*key.expose_secret());
        // `aes_gcm::Aes256Gcm` zeroizes its key schedule on drop (crate feature `zeroize`).
        let cipher = aes_gcm::Aes256Gcm::new(&key);
        let mut key = key;
        zeroize::Zeroize::zeroize(key.as_mut_slice());
        Box::new(RustCryptoKey(cipher))
    }
}

struct RustCryptoKey(aes_gcm::Aes256Gcm);

impl AeadKey for RustCryptoKey {
    fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> Result<Tag, Error> {
        check_aes_gcm_len(buf.len())?;
        let tag = self
            .0
            .encrypt_inout_detached(nonce.as_bytes().into(), aad, InOutBuf::from(buf))
            .map_err(|_| Error::LengthLimit)?;
        Ok(Tag::from_bytes(tag.into()))
    }

    fn seal_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Tag, Error> {
        check_aes_gcm_len(plaintext.len())?;
        let buf = InOutBuf::new(plaintext, out).map_err(|_| Error::BufferLength)?;
        let tag = self
            .0
            .encrypt_inout_detached(nonce.as_bytes().into(), aad, buf)
            .map_err(|_| Error::LengthLimit)?;
        Ok(Tag::from_bytes(tag.into()))
    }

    fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &Tag,
    ) -> Result<(), Error> {
        // aes-gcm 0.11 computes and compares the tag (in constant time) before it applies the
        // keystream, so a failure leaves the ciphertext untouched.
        self.0
            .decrypt_inout_detached(
                nonce.as_bytes().into(),
                aad,
                InOutBuf::from(buf),
                tag.as_bytes().into(),
            )
            .map_err(|_| Error::Authentication)
    }

    fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| Error::BufferLength)?;
        self.0
            .decrypt_inout_detached(nonce.as_bytes().into(), aad, buf, tag.as_bytes().into())
            .map_err(|_| Error::Authentication)
    }
}

struct HkdfSha256Impl;

impl crate::HkdfSha256 for HkdfSha256Impl {
    fn derive(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<(), Error> {
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
            .expand_multi_info(info, okm)
            .map_err(|_| Error::LengthLimit)
    }
}

struct OsRandom;

impl crate::SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::fill(buf).map_err(|_| Error::Random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("valid hex in test vector")
    }

    /// RFC 5869, Appendix A.1 (SHA-256, basic test case).
    #[test]
    fn hkdf_rfc5869_case_1() {
        let ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        // Split info into pieces: the pieces are concatenated.
        (PROVIDER.hkdf_sha256)
            .derive(&salt, &ikm, &[&info[..3], &info[3..]], &mut okm)
            .expect("42 bytes is within HKDF's limit");
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    /// RFC 5869, Appendix A.3 (SHA-256, zero-length salt and info).
    #[test]
    fn hkdf_rfc5869_case_3() {
        let ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let mut okm = [0u8; 42];
        (PROVIDER.hkdf_sha256)
            .derive(&[], &ikm, &[], &mut okm)
            .expect("within limit");
        assert_eq!(
            okm.to_vec(),
            hex(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
            )
        );
    }

    #[test]
    fn hkdf_output_limit_is_an_error() {
        let mut okm = vec![0u8; 255 * 32 + 1];
        assert_eq!(
            PROVIDER.hkdf_sha256.derive(b"s", b"k", &[], &mut okm),
            Err(Error::LengthLimit)
        );
    }

    #[test]
    fn mismatched_buffers_are_misuse_not_auth() {
        let key = PROVIDER.aes256_gcm.key(&Key256::from_bytes([1; 32]));
        let nonce = Nonce::from_bytes([0; 12]);
        let mut out = [0u8; 3];
        assert_eq!(
            key.seal_to(&nonce, b"", b"four", &mut out),
            Err(Error::BufferLength)
        );
        let tag = Tag::from_bytes([0; 16]);
        assert_eq!(
            key.open_to(&nonce, b"", b"four", &tag, &mut out),
            Err(Error::BufferLength)
        );
    }

    #[test]
    fn failed_open_releases_nothing() {
        let key = PROVIDER.aes256_gcm.key(&Key256::from_bytes([1; 32]));
        let nonce = Nonce::from_bytes([9; 12]);
        let mut buf = *b"secret plaintext";
        let tag = key.seal_in_place(&nonce, b"", &mut buf).expect("seal");
        let ciphertext = buf;
        let mut bad = *tag.as_bytes();
        bad[0] ^= 1;
        let bad = Tag::from_bytes(bad);
        assert_eq!(
            key.open_in_place(&nonce, b"", &mut buf, &bad),
            Err(Error::Authentication)
        );
        assert_eq!(
            buf, ciphertext,
            "in-place open must not decrypt before verifying"
        );
        let mut out = [0x55u8; 16];
        assert_eq!(
            key.open_to(&nonce, b"", &ciphertext, &bad, &mut out),
            Err(Error::Authentication)
        );
        assert_eq!(out, [0x55; 16], "open_to must not write on failure");
        key.open_to(&nonce, b"", &ciphertext, &tag, &mut out)
            .expect("good tag");
        assert_eq!(&out, b"secret plaintext");
    }

    #[test]
    fn seal_to_equals_seal_in_place() {
        let key = PROVIDER.aes256_gcm.key(&Key256::from_bytes([3; 32]));
        let nonce = Nonce::from_bytes([4; 12]);
        let plaintext: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut in_place = plaintext.clone();
        let t1 = key
            .seal_in_place(&nonce, b"ad", &mut in_place)
            .expect("seal");
        let mut out = vec![0u8; plaintext.len()];
        let t2 = key
            .seal_to(&nonce, b"ad", &plaintext, &mut out)
            .expect("seal");
        assert_eq!(in_place, out);
        assert_eq!(t1, t2);
    }
}
