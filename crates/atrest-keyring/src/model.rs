//! The in-memory keyring: named keys, their versions and the states that decide what each
//! version may do.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use atrest_crypto::{CryptoProvider, Key256};
use atrest_envelope::{KeyId, KeyUnavailable};

use crate::{Error, Timestamp};

/// The most keys one keyring holds (also a parser cap).
pub const MAX_KEYS: usize = 1 << 20;
/// The highest version number a key can reach (also a parser cap). Versions start at 1 and
/// are never reused, not even after destruction.
pub const MAX_VERSIONS: u32 = 1 << 16;

/// A set of named, versioned key-encryption keys (one per tenant is a normal setup).
///
/// Each key has integer versions starting at 1 and one *primary* version, the only one that
/// wraps new data keys. Every version has an explicit [`VersionState`]; two per-key minimums
/// derive more (see [`VersionStatus`](crate::VersionStatus) for the full precedence):
///
/// - versions below `min_encryption_version` are *decrypt-only*: they cannot be promoted;
/// - versions below `min_decryption_version` are *retired*: unwrapping with them fails with
///   [`KeyUnavailable::Retired`] (reversible by lowering the minimum).
///
/// Operations take `now` instead of reading the clock. Every operation emits an audit event
/// (see [`crate::audit`]). The keyring implements [`atrest_envelope::KeyWrapper`].
///
/// # Security
/// Key material lives only here, zeroized when dropped or destroyed. `Debug` prints names,
/// versions and states, never material; the only way out is the [`crate::insecure`] module
/// and the sealed file.
pub struct Keyring {
    pub(crate) keys: BTreeMap<KeyId, Key>,
    pub(crate) provider: &'static CryptoProvider,
}

/// One named key: its versions and the settings that govern them.
pub(crate) struct Key {
    pub(crate) versions: BTreeMap<u32, KeyVersion>,
    pub(crate) primary: u32,
    pub(crate) min_encryption_version: u32,
    pub(crate) min_decryption_version: u32,
    pub(crate) rotation_policy: Option<RotationPolicy>,
    pub(crate) created_at: Timestamp,
}

/// One version of a key.
pub(crate) struct KeyVersion {
    pub(crate) state: VersionState,
    pub(crate) created_at: Timestamp,
    /// `None` exactly when the state is [`VersionState::Destroyed`]. Boxed so the material
    /// stays at one heap address while the map rebalances (moves would leave stale copies
    /// behind that no drop zeroizes).
    pub(crate) material: Option<Box<Key256>>,
}

/// The explicit state of a key version, set by operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionState {
    /// Usable (subject to the key's minimum versions).
    Enabled,
    /// Turned off by an operator; [`Keyring::enable`] turns it back on.
    Disabled,
    /// Unusable; destroyed by [`Keyring::destroy_due`] at `at` unless [`Keyring::restore`]d
    /// before then.
    ScheduledForDestruction {
        /// When the restore window closes.
        at: Timestamp,
    },
    /// The material is wiped (crypto-shredded). Final.
    Destroyed,
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enabled => f.write_str("enabled"),
            Self::Disabled => f.write_str("disabled"),
            Self::ScheduledForDestruction { at } => write!(f, "scheduled for destruction {at}"),
            Self::Destroyed => f.write_str("destroyed"),
        }
    }
}

/// Rotate a key when its primary version is older than `max_age` (whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RotationPolicy {
    max_age: Duration,
}

impl RotationPolicy {
    /// A policy with the given maximum primary age, truncated to whole seconds (at least 1).
    pub fn max_age(max_age: Duration) -> Self {
        Self {
            max_age: Duration::from_secs(max_age.as_secs().max(1)),
        }
    }

    /// The maximum age of a primary version.
    pub const fn max_primary_age(&self) -> Duration {
        self.max_age
    }
}

impl Key {
    pub(crate) fn new(created_at: Timestamp, material: Box<Key256>) -> Self {
        let mut versions = BTreeMap::new();
        versions.insert(
            1,
            KeyVersion {
                state: VersionState::Enabled,
                created_at,
                material: Some(material),
            },
        );
        Self {
            versions,
            primary: 1,
            min_encryption_version: 1,
            min_decryption_version: 1,
            rotation_policy: None,
            created_at,
        }
    }

    /// Why `version` may not unwrap, if it may not. Precedence (first match wins):
    /// destroyed, scheduled for destruction, disabled (explicit states, the operator's word),
    /// then retired (below `min_decryption_version`).
    pub(crate) fn decrypt_unavailable(&self, version: u32) -> Option<KeyUnavailable> {
        let state = self.versions.get(&version)?.state;
        match state {
            VersionState::Destroyed => Some(KeyUnavailable::Destroyed),
            VersionState::ScheduledForDestruction { .. } => {
                Some(KeyUnavailable::ScheduledForDestruction)
            }
            VersionState::Disabled => Some(KeyUnavailable::Disabled),
            VersionState::Enabled if version < self.min_decryption_version => {
                Some(KeyUnavailable::Retired)
            }
            VersionState::Enabled => None,
        }
    }

    /// Why `version` may not wrap (if it were primary): as for unwrapping, then decrypt-only
    /// (below `min_encryption_version`).
    pub(crate) fn encrypt_unavailable(&self, version: u32) -> Option<KeyUnavailable> {
        self.decrypt_unavailable(version).or_else(|| {
            (version < self.min_encryption_version).then_some(KeyUnavailable::DecryptOnly)
        })
    }

    /// Every version destroyed: the key is a tombstone that explains failed unwraps.
    pub(crate) fn is_shredded(&self) -> bool {
        self.versions
            .get(&self.primary)
            .is_none_or(|v| v.state == VersionState::Destroyed)
    }

    pub(crate) fn next_version(&self) -> Option<u32> {
        let last = self.versions.keys().next_back().copied().unwrap_or(0);
        last.checked_add(1).filter(|v| *v <= MAX_VERSIONS)
    }

    /// The structural invariants every operation keeps and the parser enforces.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.versions.is_empty() {
            return Err("key without versions");
        }
        if self.versions.keys().any(|v| *v == 0 || *v > MAX_VERSIONS) {
            return Err("version number out of range");
        }
        let mut destroyed = 0usize;
        for version in self.versions.values() {
            let is_destroyed = version.state == VersionState::Destroyed;
            if is_destroyed == version.material.is_some() {
                return Err("key material present iff not destroyed");
            }
            destroyed += usize::from(is_destroyed);
        }
        let primary = self.versions.get(&self.primary).ok_or("primary missing")?;
        match primary.state {
            VersionState::Enabled | VersionState::Disabled => {}
            VersionState::Destroyed if destroyed == self.versions.len() => {}
            _ => return Err("primary scheduled for destruction or destroyed alone"),
        }
        if self.min_encryption_version > self.primary || self.min_decryption_version > self.primary
        {
            return Err("minimum version above the primary");
        }
        Ok(())
    }
}

impl Keyring {
    /// An empty keyring using [`atrest_crypto::DEFAULT_PROVIDER`].
    pub fn new() -> Self {
        Self::with_provider(atrest_crypto::DEFAULT_PROVIDER)
    }

    /// An empty keyring using `provider` for key generation, wrapping and sealing.
    pub fn with_provider(provider: &'static CryptoProvider) -> Self {
        Self {
            keys: BTreeMap::new(),
            provider,
        }
    }

    /// The crypto provider in use.
    pub fn provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// Whether a key of that name exists (shredded keys still exist as tombstones).
    pub fn contains(&self, key_id: &KeyId) -> bool {
        self.keys.contains_key(key_id)
    }

    /// The names of all keys, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// The primary version of `key_id`.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`].
    pub fn primary(&self, key_id: &KeyId) -> Result<u32, Error> {
        self.key(key_id).map(|key| key.primary)
    }

    pub(crate) fn key(&self, key_id: &KeyId) -> Result<&Key, Error> {
        self.keys
            .get(key_id)
            .ok_or_else(|| Error::KeyNotFound(key_id.clone()))
    }

    pub(crate) fn key_mut(&mut self, key_id: &KeyId) -> Result<&mut Key, Error> {
        self.keys
            .get_mut(key_id)
            .ok_or_else(|| Error::KeyNotFound(key_id.clone()))
    }

    pub(crate) fn generate(&self) -> Result<Box<Key256>, Error> {
        let mut key = Box::new(Key256::from_bytes([0; 32]));
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        self.provider
            .random
            .fill(bytes.as_mut())
            .map_err(|_| Error::Random)?;
        *key = Key256::from_bytes(*bytes);
        Ok(key)
    }
}

// A keyring is shared across request threads (behind a lock for writers).
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Keyring>();
};

impl Default for Keyring {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys)
            .field("provider", &self.provider.name)
            .finish()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("primary", &self.primary)
            .field("min_encryption_version", &self.min_encryption_version)
            .field("min_decryption_version", &self.min_decryption_version)
            .field("rotation_policy", &self.rotation_policy)
            .field("created_at", &self.created_at)
            .field("versions", &self.versions)
            .finish()
    }
}

impl fmt::Debug for KeyVersion {
    // Deliberately omits the material: only whether it is still there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("has_material", &self.material.is_some())
            .finish()
    }
}
