//! The cryptographic primitives atrest is built on, behind a small provider abstraction.
//!
//! A [`CryptoProvider`] is a plain value holding `&'static dyn` components: AES-256-GCM,
//! HKDF-SHA256 and a secure random source. Each backend crate offers a `const PROVIDER`;
//! callers pick one explicitly (the model is rustls's `CryptoProvider`). This crate ships the
//! default: [`rustcrypto::PROVIDER`], built on the pure-Rust RustCrypto crates (`aes-gcm`,
//! `hkdf`, `sha2`) and the operating system's CSPRNG (`getrandom`).
//!
//! Nothing here invents cryptography: every component is a thin adapter over a vetted
//! implementation, checked against Wycheproof and RFC 5869 vectors in this crate's tests.
//!
//! ```
//! use atrest_crypto::{DEFAULT_PROVIDER, Key256, Nonce};
//!
//! let key = Key256::generate(DEFAULT_PROVIDER)?;
//! let aead = DEFAULT_PROVIDER.aes256_gcm.key(&key);
//! let nonce = Nonce::from_bytes([0; 12]);
//! let mut buf = *b"attachment bytes";
//! let tag = aead.seal_in_place(&nonce, b"aad", &mut buf)?;
//! aead.open_in_place(&nonce, b"aad", &mut buf, &tag)?;
//! assert_eq!(&buf, b"attachment bytes");
//! # Ok::<(), atrest_crypto::Error>(())
//! ```

mod error;
// INSECURE, fuzzing only: see the module docs. Never enabled by default.
#[cfg(feature = "insecure-fuzzing")]
pub mod insecure_fuzzing;
mod key;
mod provider;
pub mod rustcrypto;

pub use error::Error;
pub use key::Key256;
pub use provider::{
    AES_GCM_MAX_PLAINTEXT, AeadKey, Aes256Gcm, CryptoProvider, HkdfSha256, NONCE_LEN, Nonce,
    SecureRandom, TAG_LEN, Tag, check_aes_gcm_len,
};

/// The provider used when the caller does not choose one: [`rustcrypto::PROVIDER`].
pub const DEFAULT_PROVIDER: &CryptoProvider = &rustcrypto::PROVIDER;
