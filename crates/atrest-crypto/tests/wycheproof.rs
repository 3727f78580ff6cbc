//! Wycheproof vectors through the default (RustCrypto) provider.

#[path = "support/wycheproof.rs"]
mod wycheproof_support;

#[test]
fn aes_256_gcm() {
    wycheproof_support::aes_256_gcm(&atrest_crypto::rustcrypto::PROVIDER);
}

#[test]
fn hkdf_sha256() {
    wycheproof_support::hkdf_sha256(&atrest_crypto::rustcrypto::PROVIDER);
}
