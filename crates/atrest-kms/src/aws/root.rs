//! [`AwsKmsRoot`]: an AWS KMS key as the root key that seals a keyring file.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use atrest_crypto::{CryptoProvider, Key256};
use atrest_envelope::{Context, DataKeyRequest, KeyId, KeyWrapper, WrapContext, WrappedKey};
use atrest_keyring::{RootKey, RootKeyError, RootKind, RootParams};

use super::client::{AwsKms, KEY_VERSION};

/// The provider tag at the start of the root parameters.
pub const ROOT_PROVIDER_TAG: &[u8] = b"aws-kms";

/// The encryption context of the root key's wrap (visible in CloudTrail, usable in key
/// policy conditions): `atrest-purpose = keyring-root`.
const PURPOSE: (&str, &str) = ("atrest-purpose", "keyring-root");

/// A keyring's root key held by AWS KMS: the keyring file stores a data key from
/// `GenerateDataKey` wrapped by the KMS key; loading the file asks KMS to `Decrypt` it.
///
/// Parameters stored in the keyring file header ([`RootParams::External`], big-endian):
///
/// ```text
/// params = u8(len(tag)) || tag ("aws-kms") || u8(len(key_id)) || key_id
///          || u32(version) (= 1) || u16(len(wrapped)) || wrapped (KMS CiphertextBlob)
/// ```
///
/// at most 1 + 7 + 1 + 255 + 4 + 2 + 1024 bytes (well under the 4096-byte cap). The key id
/// in the file must equal the one this root is configured with (the same ARN or alias
/// string), else loading fails with a clear error rather than a KMS call with another key.
///
/// The root key last made or opened is kept in memory, so saving after a load (or saving
/// again) calls KMS no more; each save still seals the file under a fresh file key.
pub struct AwsKmsRoot {
    kms: AwsKms,
    key_id: KeyId,
    last: Mutex<Option<(Vec<u8>, Key256)>>,
}

impl AwsKmsRoot {
    /// A root key under the KMS key `key_id` (key ARN recommended), using `kms`.
    pub fn new(kms: AwsKms, key_id: KeyId) -> Self {
        Self {
            kms,
            key_id,
            last: Mutex::new(None),
        }
    }

    /// The KMS key.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The client.
    pub fn kms(&self) -> &AwsKms {
        &self.kms
    }

    fn wrap_context() -> WrapContext {
        let context = Context::new()
            .with(PURPOSE.0, PURPOSE.1)
            .expect("a fixed, valid context pair");
        WrapContext::new(&context)
    }

    fn remember(&self, params: &[u8], key: &Key256) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((params.to_vec(), Key256::from_bytes(*key.expose_secret())));
    }
}

impl fmt::Debug for AwsKmsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsRoot")
            .field("kms", &self.kms)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The key named in the file is not the configured one.
#[derive(Debug, thiserror::Error)]
#[error(
    "keyring root is sealed under AWS KMS key '{found}', but this root is configured with \
     '{configured}'"
)]
pub struct RootKeyMismatch {
    /// The key id in the file.
    pub found: String,
    /// The configured key id.
    pub configured: KeyId,
}

/// The root parameters are not a well-formed AWS KMS blob.
#[derive(Debug, thiserror::Error)]
#[error("malformed AWS KMS root key parameters")]
pub struct MalformedRootParams;

impl RootKey for AwsKmsRoot {
    fn kind(&self) -> RootKind {
        RootKind::External
    }

    fn seal_params(&self, _provider: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        if let Some((params, _)) = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(RootParams::External(params.clone()));
        }
        // KMS makes the key; the request's provider is not used (and must be 'static).
        let request = DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None);
        let (key, wrapped) = self
            .kms
            .generate(&self.key_id, &Self::wrap_context(), &request)
            .map_err(|e| RootKeyError::External(Box::new(e)))?;
        let params = encode(&wrapped);
        self.remember(&params, &key);
        Ok(RootParams::External(params))
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        let RootParams::External(bytes) = params else {
            return Err(RootKeyError::ParamsMismatch);
        };
        if let Some((last, key)) = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && last == bytes
        {
            return Ok(Key256::from_bytes(*key.expose_secret()));
        }
        let wrapped = match decode(bytes) {
            Decoded::Ours(wrapped) => wrapped,
            Decoded::OtherProvider => return Err(RootKeyError::ParamsMismatch),
            Decoded::Malformed => {
                return Err(RootKeyError::External(Box::new(MalformedRootParams)));
            }
        };
        if wrapped.key_id != self.key_id {
            return Err(RootKeyError::External(Box::new(RootKeyMismatch {
                found: wrapped.key_id.as_str().to_owned(),
                configured: self.key_id.clone(),
            })));
        }
        let key = self
            .kms
            .unwrap(&wrapped, &Self::wrap_context())
            .map_err(|e| RootKeyError::External(Box::new(e)))?;
        self.remember(bytes, &key);
        Ok(key)
    }
}

fn encode(wrapped: &WrappedKey) -> Vec<u8> {
    let id = wrapped.key_id.as_str().as_bytes();
    let mut out = Vec::with_capacity(16 + id.len() + wrapped.ciphertext.len());
    // Lengths are bounded by construction: tag 7, key id <= 255, ciphertext <= 1024.
    out.push(u8::try_from(ROOT_PROVIDER_TAG.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(ROOT_PROVIDER_TAG);
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
    out.extend_from_slice(&wrapped.version.to_be_bytes());
    let len = u16::try_from(wrapped.ciphertext.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&wrapped.ciphertext);
    out
}

enum Decoded {
    Ours(WrappedKey),
    OtherProvider,
    Malformed,
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let Some(tag) = take(1).and_then(|n| take(usize::from(n[0]))) else {
        return Decoded::Malformed;
    };
    if tag != ROOT_PROVIDER_TAG {
        return Decoded::OtherProvider;
    }
    let parsed = (|| {
        let id = take(1).and_then(|n| take(usize::from(n[0])))?;
        let key_id = KeyId::new(std::str::from_utf8(id).ok()?).ok()?;
        let version = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let len = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let ciphertext = take(usize::from(len))?.to_vec();
        Some(WrappedKey {
            key_id,
            version,
            ciphertext,
        })
    })();
    match parsed {
        Some(wrapped) if rest.is_empty() && wrapped.version == KEY_VERSION => {
            Decoded::Ours(wrapped)
        }
        _ => Decoded::Malformed,
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_reject_garbage() {
        let wrapped = WrappedKey {
            key_id: KeyId::new("arn:aws:kms:eu-west-1:111122223333:key/k").expect("id"),
            version: KEY_VERSION,
            ciphertext: vec![7; 184],
        };
        let bytes = encode(&wrapped);
        assert!(bytes.len() <= RootParams::MAX_EXTERNAL_LEN);
        assert_eq!(&bytes[..8], b"\x07aws-kms");
        let Decoded::Ours(back) = decode(&bytes) else {
            panic!("round trip");
        };
        assert_eq!(back, wrapped);
        for n in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..n]), Decoded::Malformed),
                "truncated at {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Decoded::Malformed));
        assert!(matches!(
            decode(b"\x07transit\x01k"),
            Decoded::OtherProvider
        ));
        let mut v2 = bytes;
        let at = 1 + 7 + 1 + wrapped.key_id.as_str().len() + 3;
        v2[at] = 2;
        assert!(matches!(decode(&v2), Decoded::Malformed));
    }
}
