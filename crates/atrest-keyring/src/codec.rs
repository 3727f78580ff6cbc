//! The keyring payload: a length-prefixed big-endian encoding of every key and version (see
//! FORMAT.md, "Payload"). It holds key material, so it only ever exists in zeroizing buffers
//! and on disk only sealed.
//!
//! The decoder is written for hostile input: every count is checked against a cap and
//! against the bytes left before anything is allocated, and the result must pass the model's
//! invariants.

use std::collections::BTreeMap;
use std::time::Duration;

use atrest_crypto::{CryptoProvider, Key256};
use atrest_envelope::KeyId;
use zeroize::Zeroizing;

use crate::model::{Key, KeyVersion, MAX_KEYS, MAX_VERSIONS};
use crate::{FileError, Keyring, RotationPolicy, Timestamp, VersionState};

const STATE_ENABLED: u8 = 0;
const STATE_DISABLED: u8 = 1;
const STATE_SCHEDULED: u8 = 2;
const STATE_DESTROYED: u8 = 3;

/// Serializes the keyring into a zeroizing buffer.
pub(crate) fn encode(ring: &Keyring) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(64 + ring.keys.len() * 128));
    put_u32(&mut out, len_u32(ring.keys.len()));
    for (id, key) in &ring.keys {
        let name = id.as_str().as_bytes();
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name);
        out.extend_from_slice(&key.created_at.unix_secs().to_be_bytes());
        put_u32(&mut out, key.primary);
        put_u32(&mut out, key.min_encryption_version);
        put_u32(&mut out, key.min_decryption_version);
        match key.rotation_policy {
            None => out.push(0),
            Some(policy) => {
                out.push(1);
                out.extend_from_slice(&policy.max_primary_age().as_secs().to_be_bytes());
            }
        }
        put_u32(&mut out, len_u32(key.versions.len()));
        for (number, version) in &key.versions {
            put_u32(&mut out, *number);
            out.extend_from_slice(&version.created_at.unix_secs().to_be_bytes());
            match version.state {
                VersionState::Enabled => out.push(STATE_ENABLED),
                VersionState::Disabled => out.push(STATE_DISABLED),
                VersionState::ScheduledForDestruction { at } => {
                    out.push(STATE_SCHEDULED);
                    out.extend_from_slice(&at.unix_secs().to_be_bytes());
                }
                VersionState::Destroyed => out.push(STATE_DESTROYED),
            }
            if let Some(material) = &version.material {
                out.extend_from_slice(material.expose_secret());
            }
        }
    }
    out
}

/// Parses a payload made by [`encode`].
pub(crate) fn decode(
    bytes: &[u8],
    provider: &'static CryptoProvider,
) -> Result<Keyring, FileError> {
    let mut r = Reader(bytes);
    let key_count = r.u32()?;
    if usize::try_from(key_count).map_or(true, |n| n > MAX_KEYS) {
        return Err(FileError::Malformed("too many keys"));
    }
    let mut keys = BTreeMap::new();
    let mut previous: Option<KeyId> = None;
    for _ in 0..key_count {
        let name_len = r.u8()?;
        let name = std::str::from_utf8(r.take(usize::from(name_len))?)
            .map_err(|_| FileError::Malformed("key id is not UTF-8"))?;
        let id = KeyId::new(name).map_err(|_| FileError::Malformed("invalid key id"))?;
        if previous.as_ref().is_some_and(|p| *p >= id) {
            return Err(FileError::Malformed("key ids not strictly ascending"));
        }
        let created_at = Timestamp::from_unix_secs(r.u64()?);
        let primary = r.u32()?;
        let min_encryption_version = r.u32()?;
        let min_decryption_version = r.u32()?;
        let rotation_policy = match r.u8()? {
            0 => None,
            1 => {
                let secs = r.u64()?;
                if secs == 0 {
                    return Err(FileError::Malformed("zero rotation age"));
                }
                Some(RotationPolicy::max_age(Duration::from_secs(secs)))
            }
            _ => return Err(FileError::Malformed("bad rotation policy tag")),
        };
        let version_count = r.u32()?;
        if version_count == 0 || version_count > MAX_VERSIONS {
            return Err(FileError::Malformed("version count out of range"));
        }
        let mut versions = BTreeMap::new();
        let mut last = 0u32;
        for _ in 0..version_count {
            let number = r.u32()?;
            if number <= last {
                return Err(FileError::Malformed("versions not strictly ascending"));
            }
            last = number;
            let created_at = Timestamp::from_unix_secs(r.u64()?);
            let state = match r.u8()? {
                STATE_ENABLED => VersionState::Enabled,
                STATE_DISABLED => VersionState::Disabled,
                STATE_SCHEDULED => VersionState::ScheduledForDestruction {
                    at: Timestamp::from_unix_secs(r.u64()?),
                },
                STATE_DESTROYED => VersionState::Destroyed,
                _ => return Err(FileError::Malformed("bad version state")),
            };
            let material = if state == VersionState::Destroyed {
                None
            } else {
                let bytes = r.take(Key256::LEN)?;
                let mut key = Box::new(Key256::from_bytes([0; 32]));
                *key = Key256::try_from_slice(bytes)
                    .map_err(|_| FileError::Malformed("key material"))?;
                Some(key)
            };
            versions.insert(
                number,
                KeyVersion {
                    state,
                    created_at,
                    material,
                },
            );
        }
        let key = Key {
            versions,
            primary,
            min_encryption_version,
            min_decryption_version,
            rotation_policy,
            created_at,
        };
        key.check().map_err(FileError::Malformed)?;
        previous = Some(id.clone());
        keys.insert(id, key);
    }
    if !r.0.is_empty() {
        return Err(FileError::Malformed("trailing bytes after the payload"));
    }
    Ok(Keyring { keys, provider })
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Counts are bounded by `MAX_KEYS` and `MAX_VERSIONS`, both far below `u32::MAX`.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A cursor over untrusted bytes; every read checks the bytes left.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FileError> {
        if n > self.0.len() {
            return Err(FileError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FileError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FileError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FileError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FileError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FileError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &CryptoProvider = atrest_crypto::DEFAULT_PROVIDER;

    fn sample() -> Keyring {
        let t0 = Timestamp::from_unix_secs(1_000);
        let mut ring = Keyring::new();
        for name in ["b-tenant", "a-tenant"] {
            let id = KeyId::new(name).expect("valid id");
            ring.create_key(&id, t0).expect("create");
            ring.rotate(&id, t0).expect("rotate");
            ring.add_version(&id, t0).expect("add");
            ring.disable(&id, 3).expect("disable");
            ring.set_rotation_policy(&id, Some(RotationPolicy::max_age(Duration::from_secs(99))))
                .expect("policy");
        }
        let a = KeyId::new("a-tenant").expect("valid id");
        ring.schedule_destruction(&a, 1, t0, Duration::from_secs(5))
            .expect("schedule");
        ring.set_min_decryption_version(&a, 2).expect("min");
        let b = KeyId::new("b-tenant").expect("valid id");
        ring.schedule_destruction(&b, 1, t0, Duration::ZERO)
            .expect("schedule");
        ring.destroy_due(t0);
        ring.create_key(&KeyId::new("shredded").expect("valid id"), t0)
            .expect("create");
        ring.shred(&KeyId::new("shredded").expect("valid id"))
            .expect("shred");
        ring
    }

    #[test]
    fn round_trip_keeps_everything() {
        let ring = sample();
        let bytes = encode(&ring);
        let back = decode(&bytes, P).expect("decode");
        assert_eq!(back.status(), ring.status());
        for (id, key) in &ring.keys {
            for (v, version) in &key.versions {
                assert_eq!(
                    back.keys[id].versions[v].material.as_deref(),
                    version.material.as_deref(),
                    "{id} v{v}"
                );
            }
        }
        assert_eq!(encode(&back).as_slice(), bytes.as_slice(), "canonical");
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_rejected() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..len], P), Err(FileError::Malformed(_))),
                "truncated to {len}"
            );
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&long, P),
            Err(FileError::Malformed("trailing bytes after the payload"))
        ));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        assert!(matches!(
            decode(&u32::MAX.to_be_bytes(), P),
            Err(FileError::Malformed("too many keys"))
        ));
        // One key claiming 65536 versions but holding none.
        let mut bytes = vec![0, 0, 0, 1, 1, b'k'];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
        bytes.extend_from_slice(&MAX_VERSIONS.to_be_bytes());
        assert!(matches!(
            decode(&bytes, P),
            Err(FileError::Malformed("truncated"))
        ));
    }
}
