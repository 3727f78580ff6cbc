//! A report of every key and version, without secrets.

use atrest_envelope::{KeyId, KeyUnavailable};

use crate::model::Key;
use crate::{Keyring, RotationPolicy, Timestamp, VersionState};

/// What a version may do now, derived from its [`VersionState`] and the key's minimums.
///
/// Precedence, first match wins: `Destroyed`, `ScheduledForDestruction`, `Disabled` (the
/// explicit states), then `Retired` (below `min_decryption_version`), then `Primary`, then
/// `DecryptOnly` (below `min_encryption_version`), else `Active`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionStatus {
    /// The primary: wraps new data keys and unwraps.
    Primary,
    /// Unwraps, and may be promoted (e.g. added by `add_version`, or an older version).
    Active,
    /// Unwraps but may not be promoted (below `min_encryption_version`).
    DecryptOnly,
    /// May not unwrap (below `min_decryption_version`).
    Retired,
    /// Disabled by an operator.
    Disabled,
    /// Scheduled for destruction at the given time.
    ScheduledForDestruction(Timestamp),
    /// Material wiped.
    Destroyed,
}

impl VersionStatus {
    /// Whether unwrapping with this version is allowed.
    pub const fn can_decrypt(self) -> bool {
        matches!(self, Self::Primary | Self::Active | Self::DecryptOnly)
    }
}

/// One version in a [`KeyStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its explicit state.
    pub state: VersionState,
    /// What it may do, all things considered.
    pub status: VersionStatus,
}

/// One key in a [`KeyringStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The key's name.
    pub key_id: KeyId,
    /// When it was created.
    pub created_at: Timestamp,
    /// The primary version.
    pub primary: u32,
    /// Versions below it are decrypt-only.
    pub min_encryption_version: u32,
    /// Versions below it are retired.
    pub min_decryption_version: u32,
    /// The rotation policy, if any.
    pub rotation_policy: Option<RotationPolicy>,
    /// When the policy next asks for a rotation.
    pub rotation_due_at: Option<Timestamp>,
    /// Every version destroyed.
    pub shredded: bool,
    /// The versions, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// A report of a whole keyring: safe to log or serve on an admin page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyringStatus {
    /// The keys, by name.
    pub keys: Vec<KeyStatus>,
}

impl Key {
    pub(crate) fn status_of(&self, version: u32) -> Option<VersionStatus> {
        let entry = self.versions.get(&version)?;
        Some(match self.decrypt_unavailable(version) {
            Some(KeyUnavailable::Destroyed) => VersionStatus::Destroyed,
            Some(KeyUnavailable::ScheduledForDestruction) => match entry.state {
                VersionState::ScheduledForDestruction { at } => {
                    VersionStatus::ScheduledForDestruction(at)
                }
                _ => VersionStatus::Disabled,
            },
            Some(KeyUnavailable::Retired) => VersionStatus::Retired,
            Some(_) => VersionStatus::Disabled,
            None if version == self.primary => VersionStatus::Primary,
            None if version < self.min_encryption_version => VersionStatus::DecryptOnly,
            None => VersionStatus::Active,
        })
    }
}

impl Keyring {
    /// A report of every key and version. Contains no key material.
    pub fn status(&self) -> KeyringStatus {
        KeyringStatus {
            keys: self
                .keys
                .iter()
                .map(|(key_id, key)| KeyStatus {
                    key_id: key_id.clone(),
                    created_at: key.created_at,
                    primary: key.primary,
                    min_encryption_version: key.min_encryption_version,
                    min_decryption_version: key.min_decryption_version,
                    rotation_policy: key.rotation_policy,
                    rotation_due_at: self.rotation_due_at(key_id).ok().flatten(),
                    shredded: key.is_shredded(),
                    versions: key
                        .versions
                        .iter()
                        .map(|(version, entry)| VersionInfo {
                            version: *version,
                            created_at: entry.created_at,
                            state: entry.state,
                            status: key.status_of(*version).unwrap_or(VersionStatus::Destroyed),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn statuses_follow_the_precedence() {
        let t0 = Timestamp::from_unix_secs(1000);
        let mut ring = Keyring::new();
        let t = KeyId::new("t").expect("valid id");
        ring.create_key(&t, t0).expect("create");
        for _ in 0..5 {
            ring.rotate(&t, t0).expect("rotate");
        }
        ring.add_version(&t, t0).expect("add"); // 7: active, not primary
        ring.set_min_decryption_version(&t, 2).expect("min dec"); // 1: retired
        ring.set_min_encryption_version(&t, 4).expect("min enc"); // 2, 3: decrypt-only
        ring.disable(&t, 3).expect("disable"); // 3: disabled beats decrypt-only
        let at = ring
            .schedule_destruction(&t, 4, t0, Duration::from_secs(60))
            .expect("schedule");
        ring.schedule_destruction(&t, 5, t0, Duration::ZERO)
            .expect("schedule");
        ring.destroy_due(t0); // 5: destroyed
        let status = ring.status();
        let got: Vec<VersionStatus> = status.keys[0].versions.iter().map(|v| v.status).collect();
        assert_eq!(
            got,
            vec![
                VersionStatus::Retired,
                VersionStatus::DecryptOnly,
                VersionStatus::Disabled,
                VersionStatus::ScheduledForDestruction(at),
                VersionStatus::Destroyed,
                VersionStatus::Primary,
                VersionStatus::Active,
            ]
        );
        // A retired version that is also disabled reports the explicit state.
        ring.disable(&t, 1).expect("disable");
        assert_eq!(
            ring.status().keys[0].versions[0].status,
            VersionStatus::Disabled
        );
        assert!(!status.keys[0].shredded);
    }
}
