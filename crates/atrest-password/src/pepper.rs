//! Peppers: secrets kept outside the database and fed to Argon2's secret input `K`.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ConfigError;

/// A pepper: a server-side secret mixed into every hash (Argon2's secret input `K`, RFC 9106
/// §3.1), so a stolen database alone is not enough to test guesses.
///
/// Zeroized on drop, never printed, not `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pepper(Box<[u8]>);

impl Pepper {
    /// Wraps pepper bytes (16 to 1024 bytes; use 32 random bytes). Takes ownership so that no
    /// unzeroized copy is made here; the caller should zeroize any copy of its own.
    ///
    /// # Errors
    /// [`ConfigError::PepperLength`] outside 16..=1024 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let mut bytes = bytes;
        if !(16..=1024).contains(&bytes.len()) {
            bytes.zeroize();
            return Err(ConfigError::PepperLength);
        }
        // `into_boxed_slice` may reallocate when capacity exceeds length; shrink a zeroizing
        // copy instead so the old buffer is wiped either way.
        let boxed: Box<[u8]> = bytes.as_slice().into();
        bytes.zeroize();
        Ok(Self(boxed))
    }

    /// Any length, for known-answer tests whose secret is shorter than [`Pepper::new`] allows.
    #[cfg(test)]
    pub(crate) fn unchecked(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// The peppers a hasher knows: the current one (used for new hashes) and older ones that still
/// verify. Each has an id of 1 to 8 bytes, stored in the hash as the PHC `keyid` parameter.
///
/// ```
/// use atrest_password::{Pepper, PepperSet};
///
/// let peppers = PepperSet::new(b"2025", Pepper::new(vec![0x42; 32])?)?
///     .with_previous(b"2024", Pepper::new(vec![0x17; 32])?)?;
/// assert_eq!(peppers.current_id(), b"2025");
/// assert!(!format!("{peppers:?}").contains("66")); // 0x42: never printed
/// # Ok::<(), atrest_password::ConfigError>(())
/// ```
pub struct PepperSet {
    /// The current pepper first.
    entries: Vec<(Box<[u8]>, Pepper)>,
}

/// Argon2's `keyid` is at most 8 bytes (`argon2::Params::MAX_KEYID_LEN`).
pub(crate) const MAX_PEPPER_ID_LEN: usize = 8;

impl PepperSet {
    /// A set whose current pepper is `pepper`, named `id`.
    ///
    /// # Errors
    /// [`ConfigError::PepperId`] unless `id` is 1 to 8 bytes.
    pub fn new(id: &[u8], pepper: Pepper) -> Result<Self, ConfigError> {
        Ok(Self {
            entries: vec![(check_id(id)?, pepper)],
        })
    }

    /// Adds an older pepper: hashes made with it still verify, and report that they need a
    /// rehash.
    ///
    /// # Errors
    /// [`ConfigError::PepperId`] unless `id` is 1 to 8 bytes; [`ConfigError::DuplicatePepperId`]
    /// if the set already has a pepper named `id`.
    pub fn with_previous(mut self, id: &[u8], pepper: Pepper) -> Result<Self, ConfigError> {
        let id = check_id(id)?;
        if self.entries.iter().any(|(known, _)| **known == *id) {
            return Err(ConfigError::DuplicatePepperId);
        }
        self.entries.push((id, pepper));
        Ok(self)
    }

    /// The id of the pepper new hashes are made with.
    pub fn current_id(&self) -> &[u8] {
        &self.entries[0].0
    }

    pub(crate) fn current(&self) -> (&[u8], &Pepper) {
        (&self.entries[0].0, &self.entries[0].1)
    }

    /// The pepper named `id` and whether it is the current one.
    pub(crate) fn find(&self, id: &[u8]) -> Option<(&Pepper, bool)> {
        // Ids are not secret; constant time only keeps the habit.
        self.entries
            .iter()
            .enumerate()
            .find(|(_, (known, _))| bool::from(known.ct_eq(id)))
            .map(|(index, (_, pepper))| (pepper, index == 0))
    }
}

impl fmt::Debug for PepperSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids are not secret and help operators; pepper bytes are never printed.
        let ids: Vec<String> = self
            .entries
            .iter()
            .map(|(id, _)| String::from_utf8_lossy(id).into_owned())
            .collect();
        f.debug_struct("PepperSet")
            .field("ids", &ids)
            .finish_non_exhaustive()
    }
}

fn check_id(id: &[u8]) -> Result<Box<[u8]>, ConfigError> {
    if id.is_empty() || id.len() > MAX_PEPPER_ID_LEN {
        return Err(ConfigError::PepperId);
    }
    Ok(id.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pepper_length_and_id_are_checked() {
        assert!(matches!(
            Pepper::new(vec![1; 15]),
            Err(ConfigError::PepperLength)
        ));
        assert!(matches!(
            Pepper::new(vec![1; 1025]),
            Err(ConfigError::PepperLength)
        ));
        let pepper = || Pepper::new(vec![1; 32]).expect("32 bytes");
        assert!(matches!(
            PepperSet::new(b"", pepper()),
            Err(ConfigError::PepperId)
        ));
        assert!(matches!(
            PepperSet::new(b"123456789", pepper()),
            Err(ConfigError::PepperId)
        ));
        let set = PepperSet::new(b"12345678", pepper()).expect("8-byte id");
        assert!(matches!(
            set.with_previous(b"12345678", pepper()),
            Err(ConfigError::DuplicatePepperId)
        ));
    }

    #[test]
    fn find_reports_current() {
        let set = PepperSet::new(b"new", Pepper::new(vec![1; 32]).expect("len"))
            .and_then(|s| s.with_previous(b"old", Pepper::new(vec![2; 32]).expect("len")))
            .expect("valid set");
        assert_eq!(
            set.find(b"new")
                .map(|(p, current)| (p.expose()[0], current)),
            Some((1, true))
        );
        assert_eq!(
            set.find(b"old")
                .map(|(p, current)| (p.expose()[0], current)),
            Some((2, false))
        );
        assert!(set.find(b"ne").is_none());
        assert_eq!(set.current_id(), b"new");
    }

    #[test]
    fn debug_never_prints_pepper_bytes() {
        let set = PepperSet::new(b"id", Pepper::new(vec![0xAB; 32]).expect("len")).expect("set");
        let printed = format!("{set:?} {:?}", Pepper::new(vec![0xAB; 32]).expect("len"));
        assert!(
            !printed.contains("171") && !printed.to_lowercase().contains("ab,"),
            "{printed}"
        );
        assert!(
            printed.contains("REDACTED") && printed.contains("\"id\""),
            "{printed}"
        );
    }
}
