//! Detached headers (docs/FORMAT.md §6.2): the stub at the start of an object's body and the
//! path of the sidecar holding its header.

use atrest_envelope::BLOB_ID_LEN;
use object_store::path::Path;

use crate::error::Error;

/// The first path segment under which sidecar headers live. Objects of a store with
/// detached headers cannot be written there, and listings never show it.
pub const DETACHED_HEADERS: &str = ".atrest-headers";

/// `89 'a' 't' 'd'`: an atrest body whose header is detached.
const STUB_MAGIC: [u8; 4] = [0x89, b'a', b't', b'd'];
/// Stub format version.
const STUB_VERSION: u8 = 1;
/// Stub length: magic, version, three zero bytes, blob id.
pub(crate) const STUB_LEN: u64 = 8 + BLOB_ID_LEN as u64;

/// The stub that starts the inner object of a detached-header object with blob id `id`.
pub(crate) fn stub(id: &[u8; BLOB_ID_LEN]) -> [u8; 8 + BLOB_ID_LEN] {
    let mut out = [0u8; 8 + BLOB_ID_LEN];
    out[..4].copy_from_slice(&STUB_MAGIC);
    out[4] = STUB_VERSION;
    out[8..].copy_from_slice(id);
    out
}

/// True if `object` starts like a detached-header object.
pub(crate) fn has_stub_magic(object: &[u8]) -> bool {
    object.starts_with(&STUB_MAGIC)
}

/// The blob id named by the stub at the start of `object` (at least [`STUB_LEN`] bytes).
pub(crate) fn parse_stub(location: &Path, object: &[u8]) -> Result<[u8; BLOB_ID_LEN], Error> {
    let not_ours = |reason| Error::NotEncrypted {
        path: location.to_string(),
        reason,
    };
    let Some(stub) = object.get(..8 + BLOB_ID_LEN) else {
        return Err(not_ours("shorter than a detached-header stub"));
    };
    if stub[..4] != STUB_MAGIC {
        return Err(not_ours(
            "it has no detached-header stub (written with attached headers?)",
        ));
    }
    if stub[4] != STUB_VERSION || stub[5..8] != [0, 0, 0] {
        return Err(not_ours("unsupported detached-header stub version"));
    }
    let mut id = [0u8; BLOB_ID_LEN];
    id.copy_from_slice(&stub[8..]);
    Ok(id)
}

/// Where the header of blob `id` is stored: `.atrest-headers/<first byte hex>/<id hex>`
/// (256 directories, so no single directory of a local store holds every header).
pub(crate) fn sidecar_path(id: &[u8; BLOB_ID_LEN]) -> Path {
    let hex = hex(id);
    Path::from_iter([DETACHED_HEADERS, &hex[..2], &hex])
}

/// The blob id a sidecar path names, if it is one.
pub(crate) fn sidecar_id(path: &Path) -> Option<[u8; BLOB_ID_LEN]> {
    let mut parts = path.parts();
    if parts.next()?.as_ref() != DETACHED_HEADERS {
        return None;
    }
    let fan = parts.next()?;
    let name = parts.next()?;
    if parts.next().is_some() || name.as_ref().len() != 2 * BLOB_ID_LEN {
        return None;
    }
    if !name.as_ref().starts_with(fan.as_ref()) {
        return None;
    }
    let mut id = [0u8; BLOB_ID_LEN];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(name.as_ref().get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    // Only the canonical (lower-case) name: a look-alike is not that header.
    (sidecar_path(&id) == *path).then_some(id)
}

/// True for paths under [`DETACHED_HEADERS`] (including the prefix itself).
pub(crate) fn is_reserved(path: &Path) -> bool {
    path.parts()
        .next()
        .is_some_and(|first| first.as_ref() == DETACHED_HEADERS)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _infallible = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn stub_round_trip_and_rejections() {
        let id = [7u8; BLOB_ID_LEN];
        let location = Path::from("a/b");
        let stub = stub(&id);
        assert_eq!(stub.len() as u64, STUB_LEN);
        assert_eq!(parse_stub(&location, &stub).unwrap(), id);
        for (at, value) in [(0, 0x88), (3, b'e'), (4, 2), (6, 1)] {
            let mut bad = stub;
            bad[at] = value;
            assert!(matches!(
                parse_stub(&location, &bad),
                Err(Error::NotEncrypted { .. })
            ));
        }
        assert!(matches!(
            parse_stub(&location, &stub[..39]),
            Err(Error::NotEncrypted { .. })
        ));
    }

    #[test]
    fn sidecar_paths() {
        let mut id = [0u8; BLOB_ID_LEN];
        id[0] = 0xab;
        id[31] = 0x01;
        let path = sidecar_path(&id);
        assert_eq!(
            path.as_ref(),
            ".atrest-headers/ab/ab00000000000000000000000000000000000000000000000000000000000001"
        );
        assert!(is_reserved(&path));
        assert_eq!(sidecar_id(&path), Some(id));
        assert!(!is_reserved(&Path::from("acme/.atrest-headers")));
        assert_eq!(sidecar_id(&Path::from(".atrest-headers/ab/zz")), None);
        assert_eq!(sidecar_id(&Path::from(".atrest-headers/cd/ab00")), None);
        let upper = path.as_ref().replace("ab", "AB");
        assert_eq!(sidecar_id(&Path::from(upper.as_str())), None);
    }
}
