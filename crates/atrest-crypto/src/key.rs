//! Secret key material.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoProvider, Error};

/// A 256-bit secret key: a data key, a key-encryption key or a derived stream key.
///
/// Zeroized on drop, never printed by `Debug`, compared in constant time, not `Clone` (copy it
/// on purpose with [`Key256::from_bytes`] if you really need two).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Key256([u8; 32]);

impl Key256 {
    /// The key's length in bytes.
    pub const LEN: usize = 32;

    /// Wraps existing key bytes. The caller should zeroize its own copy.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies key bytes from a slice.
    ///
    /// # Errors
    /// [`Error::BufferLength`] unless `bytes` is exactly 32 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| Error::BufferLength)?;
        Ok(Self(array))
    }

    /// A fresh key from the provider's secure random source.
    ///
    /// # Errors
    /// [`Error::Random`] if the random source fails.
    pub fn generate(provider: &CryptoProvider) -> Result<Self, Error> {
        let mut key = Self([0; 32]);
        provider.random.fill(&mut key.0)?;
        Ok(key)
    }

    /// The raw key bytes.
    ///
    /// # Security
    /// Whatever the caller copies out of this slice is no longer zeroized for it.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256([REDACTED])")
    }
}

impl PartialEq for Key256 {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key256 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = Key256::from_bytes([0xAB; 32]);
        let printed = format!("{key:?} {key:#?}");
        assert!(!printed.to_lowercase().contains("ab"), "{printed}");
        assert!(printed.contains("REDACTED"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = Key256::generate(crate::DEFAULT_PROVIDER).expect("rng");
        let b = Key256::generate(crate::DEFAULT_PROVIDER).expect("rng");
        assert_ne!(a, b);
        assert_ne!(a.expose_secret(), &[0; 32]);
    }

    #[test]
    fn slice_length_is_checked() {
        assert_eq!(Key256::try_from_slice(&[0; 31]), Err(Error::BufferLength));
        assert_eq!(Key256::try_from_slice(&[0; 33]), Err(Error::BufferLength));
        assert_eq!(
            Key256::try_from_slice(&[7; 32]).expect("32 bytes"),
            Key256::from_bytes([7; 32])
        );
    }
}
