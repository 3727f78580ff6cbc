//! Wycheproof vectors through the ring provider (the same checks as the default provider's).

#[path = "../../atrest-crypto/tests/support/wycheproof.rs"]
mod wycheproof_support;

#[test]
fn aes_256_gcm() {
    wycheproof_support::aes_256_gcm(&atrest_ring::PROVIDER);
}

#[test]
fn hkdf_sha256() {
    wycheproof_support::hkdf_sha256(&atrest_ring::PROVIDER);
}
