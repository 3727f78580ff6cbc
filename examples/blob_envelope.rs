//! Envelope encryption of attachments — what an issue tracker's attachment store does.
//!
//! ```sh
//! cargo run --example blob_envelope
//! ```
//!
//! 1. encrypt an upload with one call ([`atrest::encrypt_blob`]): a fresh data key per blob,
//!    wrapped by the tenant's key-encryption key (KEK);
//! 2. decrypt it ([`atrest::decrypt_blob`]), and the detached variant (header in a database
//!    row, body in object storage);
//! 3. serve an HTTP `Range:` request: fetch only the bytes `Header::attached_range` names;
//! 4. rotate the tenant's KEK and rewrap: only header bytes change, the body is identical;
//! 5. show that a wrong context, a destroyed KEK version and a modified header are refused.
//!
//! The keyring here is `DemoKeyring`, a few lines over the local key-wrap algorithm
//! ([`atrest::envelope::local`]) that keeps KEKs in memory. In a service it is
//! `atrest-keyring`'s keyring or a KMS client: anything implementing
//! [`atrest::envelope::KeyWrapper`].

use std::collections::HashMap;
use std::io::{Cursor, Seek, SeekFrom};
use std::sync::Mutex;

use atrest::crypto::{DEFAULT_PROVIDER, Key256};
use atrest::envelope::{
    Context, Error, Header, KeyId, KeyUnavailable, KeyWrapper, Opener, Options, RewrapPlan,
    UnwrapError, WrapError, WrappedKey, local, rewrap_attached,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// In-memory KEKs: per key name, versions 1..=n (the newest is the primary); destroyed
/// versions have no material.
#[derive(Default)]
struct DemoKeyring {
    keys: Mutex<HashMap<KeyId, Vec<Option<Key256>>>>,
}

impl DemoKeyring {
    /// Adds a new primary version with a random KEK; returns its number.
    fn rotate(&self, key: &KeyId) -> Result<u32> {
        let mut keys = self.keys.lock().map_err(|_| "poisoned")?;
        let versions = keys.entry(key.clone()).or_default();
        versions.push(Some(Key256::generate(DEFAULT_PROVIDER)?));
        Ok(u32::try_from(versions.len())?)
    }

    /// Crypto-shreds a version: its material is dropped (and zeroized).
    fn destroy(&self, key: &KeyId, version: u32) -> Result<()> {
        let mut keys = self.keys.lock().map_err(|_| "poisoned")?;
        let index = usize::try_from(version)? - 1;
        if let Some(slot) = keys.get_mut(key).and_then(|v| v.get_mut(index)) {
            *slot = None;
        }
        Ok(())
    }
}

impl KeyWrapper for DemoKeyring {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        aad: &[u8],
    ) -> std::result::Result<WrappedKey, WrapError> {
        let keys = self
            .keys
            .lock()
            .map_err(|_| WrapError::Backend("poisoned".into()))?;
        let versions = keys
            .get(key_id)
            .ok_or_else(|| WrapError::KeyNotFound(key_id.clone()))?;
        let version = u32::try_from(versions.len()).map_err(|e| WrapError::Backend(e.into()))?;
        let kek = versions
            .last()
            .and_then(Option::as_ref)
            .ok_or(WrapError::Unavailable {
                key_id: key_id.clone(),
                version,
                reason: KeyUnavailable::Destroyed,
            })?;
        let ciphertext = local::wrap(DEFAULT_PROVIDER, kek, key_id, version, data_key, aad)?;
        Ok(WrappedKey {
            key_id: key_id.clone(),
            version,
            ciphertext,
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> std::result::Result<Key256, UnwrapError> {
        let keys = self
            .keys
            .lock()
            .map_err(|_| UnwrapError::Backend("poisoned".into()))?;
        let versions = keys
            .get(&wrapped.key_id)
            .ok_or_else(|| UnwrapError::KeyNotFound(wrapped.key_id.clone()))?;
        let slot = usize::try_from(wrapped.version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| versions.get(i))
            .ok_or_else(|| UnwrapError::VersionNotFound {
                key_id: wrapped.key_id.clone(),
                version: wrapped.version,
            })?;
        let kek = slot.as_ref().ok_or_else(|| UnwrapError::Unavailable {
            key_id: wrapped.key_id.clone(),
            version: wrapped.version,
            reason: KeyUnavailable::Destroyed,
        })?;
        local::unwrap(
            DEFAULT_PROVIDER,
            kek,
            &wrapped.key_id,
            wrapped.version,
            &wrapped.ciphertext,
            aad,
        )
    }
}

fn main() -> Result<()> {
    let keyring = DemoKeyring::default();
    let tenant = KeyId::new("tenant-acme")?;
    keyring.rotate(&tenant)?;
    // What the blob belongs to: bound to it, stored in clear in the header.
    let context = Context::new()
        .with("tenant", "acme")?
        .with("attachment", "7f3a")?;
    let upload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();

    // 1. One call: reader in, attached object out.
    let object = atrest::encrypt_blob(&upload[..], Vec::new(), &keyring, "tenant-acme", &context)?;
    let header = Header::split_attached(&object)?.0;
    println!(
        "encrypted {} bytes into {} ({}-byte header, key {} v{})",
        upload.len(),
        object.len(),
        header.len(),
        header.wrapped_keys()[0].key_id,
        header.wrapped_keys()[0].version
    );

    // 2. Decrypt, attached and detached.
    let mut plaintext = Vec::new();
    atrest::decrypt_blob(&object[..], &mut plaintext, &keyring, &context)?;
    assert_eq!(plaintext, upload);
    let mut body = Vec::new();
    let row =
        atrest::encrypt_blob_detached(&upload[..], &mut body, &keyring, "tenant-acme", &context)?;
    let mut plaintext = Vec::new();
    atrest::decrypt_blob_detached(&row, &body[..], &mut plaintext, &keyring, &context)?;
    assert_eq!(plaintext, upload);
    println!(
        "decrypted both forms (detached header: {} bytes)",
        row.len()
    );

    // 3. A ranged read: the store fetches the header, the body's 42-byte stream header and
    //    the segments `attached_range` names; decryption touches only those segments.
    let want = 500_000..500_100;
    let range = header.attached_range(want.clone(), object.len() as u64)?;
    println!(
        "bytes {want:?} need object bytes {range:?} (+ the first {})",
        header.len() + 42
    );
    let opener = Opener::new(&header, &keyring, &context, &Options::default())?;
    let mut stored = Cursor::new(&object);
    stored.seek(SeekFrom::Start(header.len() as u64))?;
    let reader = opener.seekable_decryptor(stored)?;
    let mut slice = vec![0u8; 100];
    reader.read_at(want.start, &mut slice)?;
    assert_eq!(slice, upload[500_000..500_100]);

    // 4. Rotate the KEK, rewrap: a new header, the very same body bytes.
    keyring.rotate(&tenant)?;
    let mut rewrapped = Vec::new();
    rewrap_attached(&object[..], &mut rewrapped, &keyring, &RewrapPlan::Rotate)?;
    let (new_header, new_body) = Header::split_attached(&rewrapped)?;
    assert_eq!(new_body, &object[header.len()..]);
    println!(
        "rewrapped under v{}: header changed, {} body bytes untouched",
        new_header.wrapped_keys()[0].version,
        new_body.len()
    );

    // 5. Refusals.
    let elsewhere = Context::new()
        .with("tenant", "acme")?
        .with("attachment", "0000")?;
    let wrong_context = atrest::decrypt_blob(&rewrapped[..], std::io::sink(), &keyring, &elsewhere);
    assert!(matches!(wrong_context, Err(Error::Authentication)));
    println!("wrong context: {}", wrong_context.err().ok_or("accepted")?);

    keyring.destroy(&tenant, 1)?;
    let shredded = atrest::decrypt_blob(&object[..], std::io::sink(), &keyring, &context);
    println!(
        "old header after v1 destroyed: {}",
        shredded.err().ok_or("accepted")?
    );
    atrest::decrypt_blob(&rewrapped[..], std::io::sink(), &keyring, &context)?;
    println!("rewrapped object still decrypts");

    let mut tampered = rewrapped.clone();
    tampered[12] ^= 1; // a blob id byte
    let refused = atrest::decrypt_blob(&tampered[..], std::io::sink(), &keyring, &context);
    println!("modified header: {}", refused.err().ok_or("accepted")?);
    Ok(())
}
