//! INSECURE: the only door through which raw key material leaves or enters a keyring
//! outside the sealed file.
//!
//! Everything here hands out or takes in plaintext key-encryption keys. Use it for
//! migrations to another key manager, escrow ceremonies, and tests that must prove material
//! is gone; never on a request path. Every call emits an audit event
//! (`insecure_export` / `insecure_import`).

use atrest_crypto::Key256;
use atrest_envelope::KeyId;

use crate::audit::{Operation, recorded};
use crate::file::open_payload;
use crate::model::KeyVersion;
use crate::root::RootKey;
use crate::{Error, FileError, Keyring, Timestamp, VersionState};

/// Copies out the key material of `version` of `key_id`, whatever its state, unless it was
/// destroyed.
///
/// # Errors
/// [`Error::KeyNotFound`], [`Error::VersionNotFound`], [`Error::Destroyed`] if the material
/// was wiped.
///
/// # Security
/// The returned key is plaintext KEK material: it defeats every protection of this crate.
pub fn export_version_material(
    keyring: &Keyring,
    key_id: &KeyId,
    version: u32,
) -> Result<Key256, Error> {
    let result = (|| {
        let key = keyring.key(key_id)?;
        let entry = key
            .versions
            .get(&version)
            .ok_or_else(|| Error::VersionNotFound {
                key_id: key_id.clone(),
                version,
            })?;
        entry
            .material
            .as_deref()
            .map(|material| Key256::from_bytes(*material.expose_secret()))
            .ok_or_else(|| Error::Destroyed {
                key_id: key_id.clone(),
                version,
            })
    })();
    recorded(key_id, Some(version), Operation::InsecureExport, result)
}

/// Adds existing key material (e.g. migrated from another key manager) as a new enabled,
/// non-primary version of `key_id`; promote it to encrypt with it. Returns the version.
///
/// # Errors
/// [`Error::KeyNotFound`], [`Error::Shredded`], [`Error::TooManyVersions`].
///
/// # Security
/// The keyring cannot know who else holds this material.
pub fn import_version_material(
    keyring: &mut Keyring,
    key_id: &KeyId,
    material: Key256,
    now: Timestamp,
) -> Result<u32, Error> {
    let result = (|| {
        let key = keyring.key_mut(key_id)?;
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
                material: Some(Box::new(material)),
            },
        );
        Ok(version)
    })();
    let version = result.as_ref().ok().copied();
    recorded(key_id, version, Operation::InsecureImport, result)
}

/// Decrypts a sealed keyring file's payload *without* parsing it: the serialized keyring,
/// key material included (FORMAT.md, "Payload"). For audits and tests that must show what
/// the file really holds (e.g. that shredded material is gone from it).
///
/// # Errors
/// As [`Keyring::open`](crate::Keyring::open).
///
/// # Security
/// The result contains every key's plaintext material. It is zeroized on drop.
pub fn decrypt_payload(
    sealed: &[u8],
    root: &dyn RootKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
    open_payload(sealed, root, atrest_crypto::DEFAULT_PROVIDER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_import_round_trip() {
        let t0 = Timestamp::from_unix_secs(5);
        let mut ring = Keyring::new();
        let t = KeyId::new("t").expect("valid id");
        ring.create_key(&t, t0).expect("create");
        let v1 = export_version_material(&ring, &t, 1).expect("export");
        let mut other = Keyring::new();
        other.create_key(&t, t0).expect("create");
        let v = import_version_material(&mut other, &t, v1, t0).expect("import");
        assert_eq!(v, 2);
        assert_eq!(
            export_version_material(&other, &t, 2).expect("export"),
            export_version_material(&ring, &t, 1).expect("export")
        );
        ring.shred(&t).expect("shred");
        assert!(matches!(
            export_version_material(&ring, &t, 1),
            Err(Error::Destroyed { version: 1, .. })
        ));
        assert!(matches!(
            import_version_material(&mut ring, &t, Key256::from_bytes([1; 32]), t0),
            Err(Error::Shredded(_))
        ));
    }
}
