//! External key management for atrest: keys that live in a KMS, not in a file.
//!
//! - `transit` (feature `transit`): OpenBao / HashiCorp Vault's Transit secrets engine.
//! - `aws` (feature `aws`): AWS KMS.
//!
//! See `crates/atrest-kms/README.md` for configuration examples of both.
//!
//! Each provides a [`atrest_envelope::KeyWrapper`] (the KMS wraps and unwraps data keys; key
//! versions are KEK versions) and an [`atrest_keyring::RootKey`] (the KMS seals the local
//! keyring file). Remote wrappers are wrapped in [`atrest_envelope::cache::CachingWrapper`] by
//! default so the KMS is not called once per blob.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "transit")]
pub mod transit;
