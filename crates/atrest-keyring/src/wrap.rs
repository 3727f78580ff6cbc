//! The keyring as an envelope [`KeyWrapper`]: wraps under the primary, unwraps with any
//! version that may still decrypt, and says precisely why a version cannot be used.

use atrest_crypto::Key256;
use atrest_envelope::{KeyId, KeyWrapper, UnwrapError, WrapContext, WrapError, WrappedKey, local};

use crate::Keyring;
use crate::audit::{Operation, Outcome, record};

impl KeyWrapper for Keyring {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        let result = (|| {
            let key = self
                .keys
                .get(key_id)
                .ok_or_else(|| WrapError::KeyNotFound(key_id.clone()))?;
            let version = key.primary;
            let unavailable = |reason| WrapError::Unavailable {
                key_id: key_id.clone(),
                version,
                reason,
            };
            if let Some(reason) = key.encrypt_unavailable(version) {
                return Err(unavailable(reason));
            }
            let kek = key
                .versions
                .get(&version)
                .and_then(|entry| entry.material.as_deref())
                .ok_or(unavailable(atrest_envelope::KeyUnavailable::Destroyed))?;
            let ciphertext = local::wrap(self.provider, kek, key_id, version, data_key, ctx.aad())?;
            Ok(WrappedKey {
                key_id: key_id.clone(),
                version,
                ciphertext,
            })
        })();
        match &result {
            Ok(wrapped) => record(
                Some(key_id),
                Some(wrapped.version),
                Operation::Wrap,
                Outcome::Ok,
            ),
            Err(error) => {
                let version = match error {
                    WrapError::Unavailable { version, .. } => Some(*version),
                    _ => None,
                };
                let outcome = match error {
                    WrapError::KeyNotFound(_) | WrapError::Unavailable { .. } => {
                        Outcome::Denied(error)
                    }
                    _ => Outcome::Failed(error),
                };
                record(Some(key_id), version, Operation::Wrap, outcome);
            }
        }
        result
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        let key_id = &wrapped.key_id;
        let version = wrapped.version;
        let result = (|| {
            let key = self
                .keys
                .get(key_id)
                .ok_or_else(|| UnwrapError::KeyNotFound(key_id.clone()))?;
            let entry = key
                .versions
                .get(&version)
                .ok_or_else(|| UnwrapError::VersionNotFound {
                    key_id: key_id.clone(),
                    version,
                })?;
            let unavailable = |reason| UnwrapError::Unavailable {
                key_id: key_id.clone(),
                version,
                reason,
            };
            if let Some(reason) = key.decrypt_unavailable(version) {
                return Err(unavailable(reason));
            }
            let kek = entry
                .material
                .as_deref()
                .ok_or(unavailable(atrest_envelope::KeyUnavailable::Destroyed))?;
            local::unwrap(
                self.provider,
                kek,
                key_id,
                version,
                &wrapped.ciphertext,
                ctx.aad(),
            )
        })();
        match &result {
            Ok(_) => record(Some(key_id), Some(version), Operation::Unwrap, Outcome::Ok),
            Err(error @ UnwrapError::Authentication) => {
                record(
                    Some(key_id),
                    Some(version),
                    Operation::Unwrap,
                    Outcome::Failed(error),
                );
            }
            Err(error) => {
                record(
                    Some(key_id),
                    Some(version),
                    Operation::Unwrap,
                    Outcome::Denied(error),
                );
            }
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use std::time::Duration;

    use atrest_envelope::KeyUnavailable;

    use super::*;
    use crate::Timestamp;

    const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

    fn setup() -> (Keyring, KeyId, Key256) {
        let mut ring = Keyring::new();
        let t = KeyId::new("tenant-7").expect("valid id");
        ring.create_key(&t, T0).expect("create");
        (ring, t, Key256::from_bytes([0x5A; 32]))
    }

    #[test]
    fn wraps_under_primary_unwraps_with_any_enabled_version() {
        let (mut ring, t, dk) = setup();
        let w1 = ring
            .wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b"blob-1"))
            .expect("wrap");
        assert_eq!((w1.version, w1.ciphertext.len()), (1, local::WRAPPED_LEN));
        ring.rotate(&t, T0).expect("rotate");
        let w2 = ring
            .wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b"blob-2"))
            .expect("wrap");
        assert_eq!(w2.version, 2);
        assert_eq!(
            ring.unwrap(&w1, &atrest_envelope::fuzzing::wrap_context(b"blob-1"))
                .expect("old version decrypts"),
            dk
        );
        assert_eq!(
            ring.unwrap(&w2, &atrest_envelope::fuzzing::wrap_context(b"blob-2"))
                .expect("new version"),
            dk
        );
        assert!(matches!(
            ring.unwrap(&w1, &atrest_envelope::fuzzing::wrap_context(b"blob-2")),
            Err(UnwrapError::Authentication)
        ));
        // Two-step: the added version does not encrypt until promoted.
        let v3 = ring.add_version(&t, T0).expect("add");
        assert_eq!(
            ring.wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b""))
                .expect("wrap")
                .version,
            2
        );
        ring.promote(&t, v3).expect("promote");
        assert_eq!(
            ring.wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b""))
                .expect("wrap")
                .version,
            3
        );
    }

    #[test]
    fn every_state_has_its_error() {
        let (mut ring, t, dk) = setup();
        let w1 = ring
            .wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b""))
            .expect("wrap");
        ring.rotate(&t, T0).expect("rotate");
        let unwrap_reason = |ring: &Keyring, w: &WrappedKey| match ring
            .unwrap(w, &atrest_envelope::fuzzing::wrap_context(b""))
        {
            Err(UnwrapError::Unavailable {
                reason, version, ..
            }) => {
                assert_eq!(version, w.version);
                Some(reason)
            }
            Ok(_) => None,
            Err(other) => panic!("unexpected {other:?}"),
        };

        ring.set_min_decryption_version(&t, 2).expect("retire v1");
        assert_eq!(unwrap_reason(&ring, &w1), Some(KeyUnavailable::Retired));
        ring.set_min_decryption_version(&t, 1).expect("un-retire");
        assert_eq!(unwrap_reason(&ring, &w1), None);

        ring.set_min_encryption_version(&t, 2)
            .expect("v1 decrypt-only");
        assert_eq!(
            unwrap_reason(&ring, &w1),
            None,
            "decrypt-only still decrypts"
        );

        ring.disable(&t, 1).expect("disable");
        assert_eq!(unwrap_reason(&ring, &w1), Some(KeyUnavailable::Disabled));
        ring.enable(&t, 1).expect("enable");

        ring.schedule_destruction(&t, 1, T0, Duration::from_secs(60))
            .expect("schedule");
        assert_eq!(
            unwrap_reason(&ring, &w1),
            Some(KeyUnavailable::ScheduledForDestruction)
        );
        ring.restore(&t, 1, T0).expect("restore");
        ring.enable(&t, 1).expect("enable");
        assert_eq!(
            unwrap_reason(&ring, &w1),
            None,
            "restored in time: data is back"
        );

        ring.schedule_destruction(&t, 1, T0, Duration::ZERO)
            .expect("schedule");
        ring.destroy_due(T0);
        assert_eq!(unwrap_reason(&ring, &w1), Some(KeyUnavailable::Destroyed));

        let mut missing = w1.clone();
        missing.version = 9;
        assert!(matches!(
            ring.unwrap(&missing, &atrest_envelope::fuzzing::wrap_context(b"")),
            Err(UnwrapError::VersionNotFound { version: 9, .. })
        ));
        missing.key_id = KeyId::new("other").expect("valid id");
        assert!(matches!(
            ring.unwrap(&missing, &atrest_envelope::fuzzing::wrap_context(b"")),
            Err(UnwrapError::KeyNotFound(_))
        ));
        assert!(matches!(
            ring.wrap(
                &missing.key_id,
                &dk,
                &atrest_envelope::fuzzing::wrap_context(b"")
            ),
            Err(WrapError::KeyNotFound(_))
        ));

        ring.disable(&t, 2).expect("emergency stop");
        assert!(matches!(
            ring.wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b"")),
            Err(WrapError::Unavailable {
                version: 2,
                reason: KeyUnavailable::Disabled,
                ..
            })
        ));
        ring.shred(&t).expect("shred");
        assert!(matches!(
            ring.wrap(&t, &dk, &atrest_envelope::fuzzing::wrap_context(b"")),
            Err(WrapError::Unavailable {
                version: 2,
                reason: KeyUnavailable::Destroyed,
                ..
            })
        ));
    }
}
