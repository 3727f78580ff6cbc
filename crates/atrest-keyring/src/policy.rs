//! Creating keys and rotating them: one-step and two-step rotation, minimum versions and
//! age-based rotation policies.

use atrest_envelope::KeyId;

use crate::audit::{Operation, recorded};
use crate::model::{Key, KeyVersion, MAX_KEYS};
use crate::{Error, Keyring, RotationPolicy, Timestamp, VersionState};

impl Keyring {
    /// Creates `key_id` with a fresh version 1 as its primary.
    ///
    /// # Errors
    /// [`Error::KeyExists`], [`Error::TooManyKeys`], [`Error::Random`].
    pub fn create_key(&mut self, key_id: &KeyId, now: Timestamp) -> Result<(), Error> {
        let result = (|| {
            if self.keys.contains_key(key_id) {
                return Err(Error::KeyExists(key_id.clone()));
            }
            if self.keys.len() >= MAX_KEYS {
                return Err(Error::TooManyKeys);
            }
            let material = self.generate()?;
            self.keys.insert(key_id.clone(), Key::new(now, material));
            Ok(())
        })();
        recorded(key_id, Some(1), Operation::CreateKey, result)
    }

    /// Rotates `key_id`: a fresh version becomes the primary. Earlier versions keep their
    /// states (they still decrypt). Returns the new version.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::Shredded`], [`Error::TooManyVersions`],
    /// [`Error::Random`].
    pub fn rotate(&mut self, key_id: &KeyId, now: Timestamp) -> Result<u32, Error> {
        let result = self.new_version(key_id, now).map(|(key, version)| {
            key.primary = version;
            version
        });
        let version = result.as_ref().ok().copied();
        recorded(key_id, version, Operation::Rotate, result)
    }

    /// First step of a two-step rotation: adds a fresh enabled version that is *not* the
    /// primary, so every reader can load it (and decrypt with it) before anything is wrapped
    /// under it. [`Keyring::promote`] it later. Returns the new version.
    ///
    /// # Errors
    /// As [`Keyring::rotate`].
    pub fn add_version(&mut self, key_id: &KeyId, now: Timestamp) -> Result<u32, Error> {
        let result = self.new_version(key_id, now).map(|(_, version)| version);
        let version = result.as_ref().ok().copied();
        recorded(key_id, version, Operation::AddVersion, result)
    }

    /// Makes `version` the primary (second step of a two-step rotation, or a rollback to an
    /// older version). Idempotent for the current primary.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::NotPromotable`] if the
    /// version may not encrypt (disabled, scheduled for destruction, destroyed, retired, or
    /// decrypt-only).
    pub fn promote(&mut self, key_id: &KeyId, version: u32) -> Result<(), Error> {
        let result = (|| {
            let key = self.key_mut(key_id)?;
            existing(key, key_id, version)?;
            if let Some(reason) = key.encrypt_unavailable(version) {
                return Err(Error::NotPromotable {
                    key_id: key_id.clone(),
                    version,
                    reason,
                });
            }
            key.primary = version;
            Ok(())
        })();
        recorded(key_id, Some(version), Operation::Promote, result)
    }

    /// Sets the lowest version that may be promoted; versions below it become decrypt-only.
    /// May be lowered again.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::MinimumAbovePrimary`] (the primary must stay able to
    /// encrypt: rotate first).
    pub fn set_min_encryption_version(&mut self, key_id: &KeyId, min: u32) -> Result<(), Error> {
        let result = self
            .checked_minimum(key_id, min)
            .map(|key| key.min_encryption_version = min);
        recorded(
            key_id,
            Some(min),
            Operation::SetMinEncryptionVersion,
            result,
        )
    }

    /// Sets the lowest version that may unwrap; versions below it are retired and unwrapping
    /// with them fails with `KeyUnavailable::Retired`. Reversible by lowering it: retiring
    /// does not destroy material (schedule destruction for that).
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::MinimumAbovePrimary`].
    pub fn set_min_decryption_version(&mut self, key_id: &KeyId, min: u32) -> Result<(), Error> {
        let result = self
            .checked_minimum(key_id, min)
            .map(|key| key.min_decryption_version = min);
        recorded(
            key_id,
            Some(min),
            Operation::SetMinDecryptionVersion,
            result,
        )
    }

    /// Sets (or with `None` removes) the key's rotation policy, used by
    /// [`Keyring::rotate_if_due`].
    ///
    /// # Errors
    /// [`Error::KeyNotFound`].
    pub fn set_rotation_policy(
        &mut self,
        key_id: &KeyId,
        policy: Option<RotationPolicy>,
    ) -> Result<(), Error> {
        let result = self.key_mut(key_id).map(|key| key.rotation_policy = policy);
        recorded(key_id, None, Operation::SetRotationPolicy, result)
    }

    /// Rotates every key whose policy says its primary is too old at `now` (primary age
    /// `>= max_age`). Shredded keys are skipped. Returns the keys rotated and their new
    /// primaries; stops at the first failure (the keys rotated before it stay rotated).
    ///
    /// # Errors
    /// As [`Keyring::rotate`] (only [`Error::TooManyVersions`] and [`Error::Random`] can
    /// occur).
    pub fn rotate_if_due(&mut self, now: Timestamp) -> Result<Vec<(KeyId, u32)>, Error> {
        let due: Vec<KeyId> = self
            .keys
            .iter()
            .filter(|(_, key)| {
                let Some(policy) = key.rotation_policy else {
                    return false;
                };
                let Some(primary) = key.versions.get(&key.primary) else {
                    return false;
                };
                !key.is_shredded()
                    && now.saturating_since(primary.created_at) >= policy.max_primary_age()
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut rotated = Vec::with_capacity(due.len());
        for key_id in due {
            let version = self.rotate(&key_id, now)?;
            rotated.push((key_id, version));
        }
        Ok(rotated)
    }

    /// When `key_id` is next due for rotation under its policy (`None` without a policy).
    ///
    /// # Errors
    /// [`Error::KeyNotFound`].
    pub fn rotation_due_at(&self, key_id: &KeyId) -> Result<Option<Timestamp>, Error> {
        let key = self.key(key_id)?;
        Ok(key.rotation_policy.and_then(|policy| {
            let primary = key.versions.get(&key.primary)?;
            Some(primary.created_at.saturating_add(policy.max_primary_age()))
        }))
    }

    fn new_version(&mut self, key_id: &KeyId, now: Timestamp) -> Result<(&mut Key, u32), Error> {
        let material = self.generate()?;
        let key = self.key_mut(key_id)?;
        if key.is_shredded() {
            return Err(Error::Shredded(key_id.clone()));
        }
        let version = key
            .next_version()
            .ok_or_else(|| Error::TooManyVersions(key_id.clone()))?;
        key.versions.insert(
            version,
            KeyVersion {
                state: VersionState::Enabled,
                created_at: now,
                material: Some(material),
            },
        );
        Ok((key, version))
    }

    fn checked_minimum(&mut self, key_id: &KeyId, min: u32) -> Result<&mut Key, Error> {
        let key = self.key_mut(key_id)?;
        if key.is_shredded() {
            return Err(Error::Shredded(key_id.clone()));
        }
        if min > key.primary {
            return Err(Error::MinimumAbovePrimary {
                key_id: key_id.clone(),
                requested: min,
                primary: key.primary,
            });
        }
        Ok(key)
    }
}

/// Checks that `version` exists.
pub(crate) fn existing<'k>(
    key: &'k Key,
    key_id: &KeyId,
    version: u32,
) -> Result<&'k KeyVersion, Error> {
    key.versions
        .get(&version)
        .ok_or_else(|| Error::VersionNotFound {
            key_id: key_id.clone(),
            version,
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use atrest_envelope::KeyUnavailable;

    use super::*;

    fn id(name: &str) -> KeyId {
        KeyId::new(name).expect("valid id")
    }

    const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

    #[test]
    fn create_and_rotate() {
        let mut ring = Keyring::new();
        let t = id("tenant-1");
        ring.create_key(&t, T0).expect("create");
        assert!(matches!(ring.create_key(&t, T0), Err(Error::KeyExists(k)) if k == t));
        assert_eq!(ring.primary(&t).expect("key"), 1);
        assert_eq!(ring.rotate(&t, T0).expect("rotate"), 2);
        assert_eq!(ring.primary(&t).expect("key"), 2);
        assert!(matches!(
            ring.rotate(&id("nope"), T0),
            Err(Error::KeyNotFound(k)) if k.as_str() == "nope"
        ));
    }

    #[test]
    fn two_step_rotation() {
        let mut ring = Keyring::new();
        let t = id("t");
        ring.create_key(&t, T0).expect("create");
        let v2 = ring.add_version(&t, T0).expect("add");
        assert_eq!((v2, ring.primary(&t).expect("key")), (2, 1));
        ring.promote(&t, v2).expect("promote");
        ring.promote(&t, v2).expect("idempotent");
        assert_eq!(ring.primary(&t).expect("key"), 2);
        assert!(matches!(
            ring.promote(&t, 9),
            Err(Error::VersionNotFound { version: 9, .. })
        ));
    }

    #[test]
    fn minimum_versions() {
        let mut ring = Keyring::new();
        let t = id("t");
        ring.create_key(&t, T0).expect("create");
        ring.rotate(&t, T0).expect("rotate");
        assert!(matches!(
            ring.set_min_encryption_version(&t, 3),
            Err(Error::MinimumAbovePrimary {
                requested: 3,
                primary: 2,
                ..
            })
        ));
        ring.set_min_encryption_version(&t, 2).expect("min enc");
        // Version 1 is now decrypt-only: it cannot be promoted back.
        assert!(matches!(
            ring.promote(&t, 1),
            Err(Error::NotPromotable {
                version: 1,
                reason: KeyUnavailable::DecryptOnly,
                ..
            })
        ));
        ring.set_min_decryption_version(&t, 2).expect("min dec");
        assert!(matches!(
            ring.promote(&t, 1),
            Err(Error::NotPromotable {
                reason: KeyUnavailable::Retired,
                ..
            })
        ));
        ring.set_min_decryption_version(&t, 1).expect("un-retire");
        ring.set_min_encryption_version(&t, 1).expect("lower");
        ring.promote(&t, 1).expect("rollback allowed again");
        // Now the primary is 1, so a minimum of 2 would strand it.
        assert!(matches!(
            ring.set_min_decryption_version(&t, 2),
            Err(Error::MinimumAbovePrimary {
                requested: 2,
                primary: 1,
                ..
            })
        ));
    }

    #[test]
    fn rotation_policy() {
        let mut ring = Keyring::new();
        let (a, b) = (id("a"), id("b"));
        ring.create_key(&a, T0).expect("create");
        ring.create_key(&b, T0).expect("create");
        let day = Duration::from_secs(86_400);
        ring.set_rotation_policy(&a, Some(RotationPolicy::max_age(day)))
            .expect("policy");
        assert_eq!(
            ring.rotation_due_at(&a).expect("key"),
            Some(T0.saturating_add(day))
        );
        assert_eq!(ring.rotation_due_at(&b).expect("key"), None);
        let almost = T0.saturating_add(day - Duration::from_secs(1));
        assert!(ring.rotate_if_due(almost).expect("rotate").is_empty());
        let due = T0.saturating_add(day);
        assert_eq!(
            ring.rotate_if_due(due).expect("rotate"),
            vec![(a.clone(), 2)]
        );
        assert!(
            ring.rotate_if_due(due).expect("rotate").is_empty(),
            "the new primary is fresh"
        );
        assert_eq!(ring.primary(&b).expect("key"), 1, "no policy, no rotation");
        assert_eq!(
            RotationPolicy::max_age(Duration::from_millis(1500)).max_primary_age(),
            Duration::from_secs(1)
        );
    }
}
