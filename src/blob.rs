//! One-call envelope encryption of a blob (an attachment, an upload) between a reader and a
//! writer: a fresh data key per blob, wrapped by the named key of a keyring or KMS.
//!
//! ```
//! use atrest::envelope::{Context, KeyId};
//! use atrest::keyring::{Keyring, Timestamp};
//!
//! // A keyring (or any KMS client implementing `atrest::envelope::KeyWrapper`), with one key
//! // per tenant. Persist it with `Keyring::save` under a root key.
//! let mut keyring = Keyring::new();
//! keyring.create_key(&KeyId::new("tenant-acme")?, Timestamp::now())?;
//! let context = Context::new().with("tenant", "acme")?.with("attachment", "7f3a")?;
//!
//! // Attached: one object holds header and body.
//! let object = atrest::encrypt_blob(&b"attachment bytes"[..], Vec::new(), &keyring, "tenant-acme", &context)?;
//! let mut plaintext = Vec::new();
//! atrest::decrypt_blob(&object[..], &mut plaintext, &keyring, &context)?;
//! assert_eq!(plaintext, b"attachment bytes");
//!
//! // Detached: keep the header in a database row, the body in object storage.
//! let mut body = Vec::new();
//! let header = atrest::encrypt_blob_detached(&b"attachment bytes"[..], &mut body, &keyring, "tenant-acme", &context)?;
//! let mut plaintext = Vec::new();
//! atrest::decrypt_blob_detached(&header, &body[..], &mut plaintext, &keyring, &context)?;
//! assert_eq!(plaintext, b"attachment bytes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Read, Write};

use atrest_envelope::{Context, Error, Header, KeyId, KeyWrapper, Opener, Options, Sealer};

/// Encrypts everything `reader` yields into an attached envelope object (header then body)
/// written to `writer`, under a fresh data key wrapped by the primary version of `key_name`.
/// Returns the writer once the object is complete. Memory: one 64 KiB segment.
///
/// # Errors
/// [`Error::Wrap`] if the key cannot wrap (unknown, no version that may encrypt, invalid
/// name, backend failure); [`Error::Io`] / [`Error::Body`] if reading or writing fails.
pub fn encrypt_blob<R: Read, W: Write, K: KeyWrapper + ?Sized>(
    mut reader: R,
    writer: W,
    keyring: &K,
    key_name: &str,
    context: &Context,
) -> Result<W, Error> {
    let sealer = Sealer::new(
        keyring,
        &[KeyId::new(key_name)?],
        context,
        &Options::default(),
    )?;
    let mut encryptor = sealer.attached_encryptor(writer)?;
    std::io::copy(&mut reader, &mut encryptor).map_err(Error::from_io)?;
    Ok(encryptor.finish()?)
}

/// Decrypts an attached envelope object read from `reader` into `writer`, for a blob that
/// must belong to `context`. Returns the number of plaintext bytes written.
///
/// # Security
/// Plaintext is written segment by segment, each only after it authenticated. If an error is
/// returned after some were written (a later segment was modified or the object was cut), the
/// caller must discard what `writer` received.
///
/// # Errors
/// [`Error::Malformed`] / [`Error::Limit`] for a bad header, [`Error::Unwrap`] (missing,
/// retired, disabled or destroyed KEK version ...), [`Error::CommitmentMismatch`],
/// [`Error::Authentication`] (modified header or wrong context), [`Error::Body`] (modified,
/// truncated or extended body), [`Error::Io`].
pub fn decrypt_blob<R: Read, W: Write, K: KeyWrapper + ?Sized>(
    mut reader: R,
    writer: W,
    keyring: &K,
    context: &Context,
) -> Result<u64, Error> {
    let header = Header::read_from(&mut reader)?;
    decrypt_body(&header, reader, writer, keyring, context)
}

/// Encrypts everything `reader` yields into a body written to `writer` and returns the
/// header bytes, to be stored elsewhere (a database row, a sidecar object). Both are needed
/// to decrypt.
///
/// # Errors
/// As [`encrypt_blob`].
pub fn encrypt_blob_detached<R: Read, W: Write, K: KeyWrapper + ?Sized>(
    mut reader: R,
    writer: W,
    keyring: &K,
    key_name: &str,
    context: &Context,
) -> Result<Vec<u8>, Error> {
    let sealer = Sealer::new(
        keyring,
        &[KeyId::new(key_name)?],
        context,
        &Options::default(),
    )?;
    let header = sealer.header_bytes().to_vec();
    let mut encryptor = sealer.encryptor(writer)?;
    std::io::copy(&mut reader, &mut encryptor).map_err(Error::from_io)?;
    encryptor.finish()?;
    Ok(header)
}

/// Decrypts a detached body read from `reader` with its `header` into `writer`. Returns the
/// number of plaintext bytes written.
///
/// # Security
/// As [`decrypt_blob`]: discard what `writer` received if an error is returned.
///
/// # Errors
/// As [`decrypt_blob`].
pub fn decrypt_blob_detached<R: Read, W: Write, K: KeyWrapper + ?Sized>(
    header: &[u8],
    reader: R,
    writer: W,
    keyring: &K,
    context: &Context,
) -> Result<u64, Error> {
    decrypt_body(&Header::parse(header)?, reader, writer, keyring, context)
}

fn decrypt_body<R: Read, W: Write, K: KeyWrapper + ?Sized>(
    header: &Header,
    reader: R,
    mut writer: W,
    keyring: &K,
    context: &Context,
) -> Result<u64, Error> {
    let opener = Opener::new(header, keyring, context, &Options::default())?;
    let mut decryptor = opener.decryptor(reader)?;
    let written = std::io::copy(&mut decryptor, &mut writer).map_err(Error::from_io)?;
    writer.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use atrest_envelope::fuzzing::TestWrapper;
    use atrest_envelope::{KeyUnavailable, UnwrapError};

    use super::*;

    #[test]
    fn errors_come_through_the_one_call_path() {
        let keyring = TestWrapper::new();
        let id = KeyId::new("t").expect("valid");
        keyring.rotate(&id);
        let context = Context::new().with("tenant", "t").expect("valid");
        let data = vec![5u8; 200_000];
        let object = encrypt_blob(&data[..], Vec::new(), &keyring, "t", &context).expect("encrypt");

        let mut out = Vec::new();
        let n = decrypt_blob(&object[..], &mut out, &keyring, &context).expect("decrypt");
        assert_eq!((n, &out), (200_000, &data));

        let other = Context::new().with("tenant", "u").expect("valid");
        assert!(matches!(
            decrypt_blob(&object[..], std::io::sink(), &keyring, &other),
            Err(Error::Authentication)
        ));
        let mut cut = object.clone();
        cut.truncate(object.len() - 20);
        assert!(matches!(
            decrypt_blob(&cut[..], std::io::sink(), &keyring, &context),
            Err(Error::Body(atrest_stream::Error::Authentication))
        ));
        assert!(matches!(
            encrypt_blob(&data[..], Vec::new(), &keyring, "", &context),
            Err(Error::Wrap(atrest_envelope::WrapError::InvalidKeyId))
        ));
        keyring.set_state(&id, 1, Some(KeyUnavailable::Destroyed));
        assert!(matches!(
            decrypt_blob(&object[..], std::io::sink(), &keyring, &context),
            Err(Error::Unwrap {
                source: UnwrapError::Unavailable {
                    reason: KeyUnavailable::Destroyed,
                    ..
                },
                ..
            })
        ));
    }
}
