//! Version state transitions: disable/enable, scheduled destruction with a restore window,
//! destruction and crypto-shredding.
//!
//! ```text
//!            disable                schedule_destruction           destroy_due (at <= now)
//!  Enabled ----------> Disabled ------------------------> Scheduled ------------------> Destroyed
//!     ^  <----------      |  ^            restore (now < at)  |
//!     |    enable         |  +--------------------------------+
//!     +-------------------+---- schedule_destruction (from Enabled too)
//!  shred: every version of the key -> Destroyed, at once.
//! ```

use std::time::Duration;

use atrest_envelope::KeyId;

use crate::audit::{Operation, Outcome, record, recorded};
use crate::policy::existing;
use crate::{Error, Keyring, Timestamp, VersionState};

impl Keyring {
    /// Disables `version` (reversible with [`Keyring::enable`]): it neither wraps nor
    /// unwraps meanwhile. Disabling the primary is allowed (an emergency stop: wrapping then
    /// fails with `KeyUnavailable::Disabled` until it is enabled or another version is
    /// promoted). Idempotent.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::InvalidTransition`] if
    /// the version is scheduled for destruction or destroyed.
    pub fn disable(&mut self, key_id: &KeyId, version: u32) -> Result<(), Error> {
        let result = self.transition(key_id, version, Operation::Disable, |state| match state {
            VersionState::Enabled | VersionState::Disabled => Some(VersionState::Disabled),
            _ => None,
        });
        recorded(key_id, Some(version), Operation::Disable, result)
    }

    /// Enables a disabled `version` again. Idempotent.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::InvalidTransition`] if
    /// the version is scheduled for destruction ([`Keyring::restore`] it first) or destroyed.
    pub fn enable(&mut self, key_id: &KeyId, version: u32) -> Result<(), Error> {
        let result = self.transition(key_id, version, Operation::Enable, |state| match state {
            VersionState::Enabled | VersionState::Disabled => Some(VersionState::Enabled),
            _ => None,
        });
        recorded(key_id, Some(version), Operation::Enable, result)
    }

    /// Schedules `version` for destruction at `now + window`; until then
    /// [`Keyring::restore`] undoes it. Meanwhile the version is unusable. Returns the
    /// destruction time. [`Keyring::destroy_due`] does the destroying.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::InvalidTransition`] if
    /// already scheduled or destroyed, [`Error::PrimaryVersion`] for the primary (rotate
    /// first, or [`Keyring::shred`] the whole key).
    pub fn schedule_destruction(
        &mut self,
        key_id: &KeyId,
        version: u32,
        now: Timestamp,
        window: Duration,
    ) -> Result<Timestamp, Error> {
        let at = now.saturating_add(window);
        let operation = Operation::ScheduleDestruction;
        let result = (|| {
            let primary = self.key(key_id)?.primary;
            let state = existing(self.key(key_id)?, key_id, version)?.state;
            if version == primary && matches!(state, VersionState::Enabled | VersionState::Disabled)
            {
                return Err(Error::PrimaryVersion {
                    key_id: key_id.clone(),
                    version,
                    operation,
                });
            }
            self.transition(key_id, version, operation, |state| match state {
                VersionState::Enabled | VersionState::Disabled => {
                    Some(VersionState::ScheduledForDestruction { at })
                }
                _ => None,
            })
            .map(|()| at)
        })();
        recorded(key_id, Some(version), operation, result)
    }

    /// Cancels a scheduled destruction while the window is open (`now < at`). The version
    /// comes back *disabled*, as in Cloud KMS, so putting it back to use is a deliberate
    /// [`Keyring::enable`].
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::InvalidTransition`] if
    /// the version is not scheduled for destruction, [`Error::RestoreWindowClosed`].
    pub fn restore(&mut self, key_id: &KeyId, version: u32, now: Timestamp) -> Result<(), Error> {
        let result = (|| {
            let state = existing(self.key(key_id)?, key_id, version)?.state;
            if let VersionState::ScheduledForDestruction { at } = state
                && now >= at
            {
                return Err(Error::RestoreWindowClosed {
                    key_id: key_id.clone(),
                    version,
                    at,
                });
            }
            self.transition(key_id, version, Operation::Restore, |state| match state {
                VersionState::ScheduledForDestruction { .. } => Some(VersionState::Disabled),
                _ => None,
            })
        })();
        recorded(key_id, Some(version), Operation::Restore, result)
    }

    /// Destroys every version whose destruction time has come (`at <= now`): its material is
    /// dropped and zeroized, and it can never decrypt again. Returns what was destroyed.
    /// Persist the keyring afterwards so the material leaves the file too.
    pub fn destroy_due(&mut self, now: Timestamp) -> Vec<(KeyId, u32)> {
        let mut destroyed = Vec::new();
        for (key_id, key) in &mut self.keys {
            for (version, entry) in &mut key.versions {
                if matches!(entry.state, VersionState::ScheduledForDestruction { at } if at <= now)
                {
                    entry.state = VersionState::Destroyed;
                    entry.material = None;
                    record(
                        Some(key_id),
                        Some(*version),
                        Operation::Destroy,
                        Outcome::Ok,
                    );
                    destroyed.push((key_id.clone(), *version));
                }
            }
        }
        destroyed
    }

    /// Crypto-shreds `key_id`: destroys every version at once, the primary included, with no
    /// restore window (e.g. when a tenant is deleted). The key stays as a tombstone so that
    /// unwrapping reports `KeyUnavailable::Destroyed` rather than "no such key". Idempotent.
    /// Persist the keyring afterwards so the material leaves the file too.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`].
    pub fn shred(&mut self, key_id: &KeyId) -> Result<(), Error> {
        let result = self.key_mut(key_id).map(|key| {
            for entry in key.versions.values_mut() {
                entry.state = VersionState::Destroyed;
                entry.material = None;
            }
        });
        recorded(key_id, None, Operation::Shred, result)
    }

    /// Applies `next` to the version's state; `None` from `next` means "not allowed".
    fn transition(
        &mut self,
        key_id: &KeyId,
        version: u32,
        operation: Operation,
        next: impl FnOnce(VersionState) -> Option<VersionState>,
    ) -> Result<(), Error> {
        let key = self.key_mut(key_id)?;
        let entry = key
            .versions
            .get_mut(&version)
            .ok_or_else(|| Error::VersionNotFound {
                key_id: key_id.clone(),
                version,
            })?;
        let state = entry.state;
        entry.state = next(state).ok_or_else(|| Error::InvalidTransition {
            key_id: key_id.clone(),
            version,
            operation,
            state,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    fn ring() -> (Keyring, KeyId) {
        let mut ring = Keyring::new();
        let t = KeyId::new("tenant").expect("valid id");
        ring.create_key(&t, T0).expect("create");
        ring.rotate(&t, T0).expect("rotate");
        (ring, t)
    }

    fn state(ring: &Keyring, t: &KeyId, v: u32) -> VersionState {
        ring.key(t).expect("key").versions[&v].state
    }

    #[test]
    fn disable_enable() {
        let (mut ring, t) = ring();
        ring.disable(&t, 1).expect("disable");
        ring.disable(&t, 1).expect("idempotent");
        assert_eq!(state(&ring, &t, 1), VersionState::Disabled);
        ring.enable(&t, 1).expect("enable");
        assert_eq!(state(&ring, &t, 1), VersionState::Enabled);
        ring.disable(&t, 2)
            .expect("the primary may be disabled (emergency stop)");
        assert!(matches!(
            ring.disable(&t, 3),
            Err(Error::VersionNotFound { version: 3, .. })
        ));
    }

    #[test]
    fn schedule_restore_destroy() {
        let (mut ring, t) = ring();
        assert!(matches!(
            ring.schedule_destruction(&t, 2, T0, WEEK),
            Err(Error::PrimaryVersion {
                version: 2,
                operation: Operation::ScheduleDestruction,
                ..
            })
        ));
        let at = ring
            .schedule_destruction(&t, 1, T0, WEEK)
            .expect("schedule");
        assert_eq!(at, T0.saturating_add(WEEK));
        assert!(matches!(
            ring.enable(&t, 1),
            Err(Error::InvalidTransition {
                state: VersionState::ScheduledForDestruction { .. },
                ..
            })
        ));
        assert!(matches!(
            ring.schedule_destruction(&t, 1, T0, WEEK),
            Err(Error::InvalidTransition { .. })
        ));
        assert!(ring.destroy_due(T0).is_empty());
        ring.restore(&t, 1, T0).expect("restore");
        assert_eq!(
            state(&ring, &t, 1),
            VersionState::Disabled,
            "restored disabled"
        );
        assert!(matches!(
            ring.restore(&t, 1, T0),
            Err(Error::InvalidTransition {
                state: VersionState::Disabled,
                ..
            })
        ));
        ring.schedule_destruction(&t, 1, T0, WEEK)
            .expect("schedule again");
        assert!(matches!(
            ring.restore(&t, 1, at),
            Err(Error::RestoreWindowClosed { version: 1, .. })
        ));
        assert_eq!(ring.destroy_due(at), vec![(t.clone(), 1)]);
        assert_eq!(state(&ring, &t, 1), VersionState::Destroyed);
        assert!(ring.key(&t).expect("key").versions[&1].material.is_none());
        for result in [
            ring.enable(&t, 1),
            ring.disable(&t, 1),
            ring.restore(&t, 1, T0),
        ] {
            assert!(matches!(
                result,
                Err(Error::InvalidTransition {
                    state: VersionState::Destroyed,
                    ..
                })
            ));
        }
        ring.key(&t).expect("key").check().expect("invariants hold");
    }

    #[test]
    fn shred_destroys_everything() {
        let (mut ring, t) = ring();
        ring.shred(&t).expect("shred");
        ring.shred(&t).expect("idempotent");
        let key = ring.key(&t).expect("tombstone stays");
        assert!(key.versions.values().all(|v| v.material.is_none()));
        key.check().expect("a shredded key is consistent");
        assert!(matches!(ring.rotate(&t, T0), Err(Error::Shredded(_))));
        assert!(matches!(
            ring.set_min_decryption_version(&t, 1),
            Err(Error::Shredded(_))
        ));
    }
}
