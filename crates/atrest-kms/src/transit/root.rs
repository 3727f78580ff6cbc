//! A Transit key as the root key of a local keyring file.

use std::sync::{Mutex, PoisonError};

use atrest_crypto::{CryptoProvider, Key256};
use atrest_envelope::{Context, DataKeyRequest, KeyId, KeyWrapper, WrapContext, WrappedKey};
use atrest_keyring::{RootKey, RootKeyError, RootKind, RootParams};

use super::Client;

/// The provider tag at the start of the parameters.
const TAG: &[u8] = b"atrest-kms transit v1";

/// Seals a keyring file with a data key from Transit: the file's header stores the wrapped
/// root key, and loading the file asks Transit to unwrap it.
///
/// The parameters stored in the file ([`RootParams::External`], at most 4096 bytes; integers
/// big-endian):
///
/// ```text
/// params = u8(len(tag))  || tag          tag = "atrest-kms transit v1"
///       || u8(len(name)) || name         the Transit key name
///       || u32(version)                  the key version that wrapped the root key
///       || u16(len(ct))  || ct           Transit's "vault:vN:..." ciphertext
/// ```
///
/// The root key is wrapped under a fixed context (`"atrest-kms" = "keyring root"`), so a
/// ciphertext made for blobs never opens a keyring. The key from the last seal or load is
/// kept in memory, so saving the keyring again reuses it without calling Transit.
///
/// ```no_run
/// use atrest_envelope::KeyId;
/// use atrest_keyring::Keyring;
/// use atrest_kms::transit::{Builder, Root};
///
/// let client = Builder::from_env().build_uncached()?;
/// let root = Root::new(client, KeyId::new("keyring-root")?);
/// let keyring = Keyring::load("keyring.atrest", &root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Root {
    client: Client,
    key_id: KeyId,
    context: WrapContext,
    cache: Mutex<Option<(RootParams, Key256)>>,
}

#[derive(Debug, thiserror::Error)]
enum RootError {
    #[error("malformed Transit root-key parameters in the keyring file")]
    Malformed,
    #[error(
        "the keyring file was sealed with Transit key '{sealed}' but this root is configured \
         for key '{configured}'"
    )]
    KeyMismatch { sealed: String, configured: String },
}

impl Root {
    /// The root key is a data key wrapped by the Transit key `key_id` through `client`.
    pub fn new(client: Client, key_id: KeyId) -> Self {
        let context = Context::new()
            .with("atrest-kms", "keyring root")
            .expect("a short constant context entry is valid");
        Self {
            client,
            key_id,
            context: WrapContext::new(&context),
            cache: Mutex::new(None),
        }
    }

    /// The Transit key name.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn encode(wrapped: &WrappedKey) -> Option<Vec<u8>> {
        let name = wrapped.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(8 + TAG.len() + name.len() + wrapped.ciphertext.len());
        out.push(u8::try_from(TAG.len()).ok()?);
        out.extend_from_slice(TAG);
        out.push(u8::try_from(name.len()).ok()?);
        out.extend_from_slice(name);
        out.extend_from_slice(&wrapped.version.to_be_bytes());
        out.extend_from_slice(&u16::try_from(wrapped.ciphertext.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&wrapped.ciphertext);
        (out.len() <= RootParams::MAX_EXTERNAL_LEN).then_some(out)
    }

    /// `None` if the bytes are not Transit root parameters at all (another provider's), an
    /// error if they are but malformed.
    fn decode(bytes: &[u8]) -> Result<Option<WrappedKey>, RootError> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], RootError> {
            if rest.len() < n {
                return Err(RootError::Malformed);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let tag_len = usize::from(take(1).map_err(|_| RootError::Malformed)?[0]);
        if take(tag_len).ok() != Some(TAG) {
            return Ok(None);
        }
        let name_len = usize::from(take(1)?[0]);
        let name = std::str::from_utf8(take(name_len)?).map_err(|_| RootError::Malformed)?;
        let key_id = KeyId::new(name).map_err(|_| RootError::Malformed)?;
        let version = u32::from_be_bytes(take(4)?.try_into().map_err(|_| RootError::Malformed)?);
        let ct_len = usize::from(u16::from_be_bytes(
            take(2)?.try_into().map_err(|_| RootError::Malformed)?,
        ));
        let ciphertext = take(ct_len)?.to_vec();
        if !rest.is_empty() || ciphertext.is_empty() {
            return Err(RootError::Malformed);
        }
        Ok(Some(WrappedKey {
            key_id,
            version,
            ciphertext,
        }))
    }
}

impl RootKey for Root {
    fn kind(&self) -> RootKind {
        RootKind::External
    }

    fn seal_params(&self, _provider: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((params @ RootParams::External(bytes), _)) = cache.as_ref()
            && matches!(Self::decode(bytes), Ok(Some(w)) if w.key_id == self.key_id)
        {
            return Ok(params.clone());
        }
        // Transit makes the key; the request's provider is not used.
        let request = DataKeyRequest::new(atrest_crypto::DEFAULT_PROVIDER, None);
        let (key, wrapped) = self
            .client
            .generate(&self.key_id, &self.context, &request)
            .map_err(|e| RootKeyError::External(Box::new(e)))?;
        let params = RootParams::External(Self::encode(&wrapped).ok_or_else(|| {
            RootKeyError::External("Transit ciphertext too long for a keyring header".into())
        })?);
        *cache = Some((params.clone(), key));
        Ok(params)
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        let RootParams::External(bytes) = params else {
            return Err(RootKeyError::ParamsMismatch);
        };
        let wrapped = Self::decode(bytes)
            .map_err(|e| RootKeyError::External(Box::new(e)))?
            .ok_or(RootKeyError::ParamsMismatch)?;
        if wrapped.key_id != self.key_id {
            return Err(RootKeyError::External(Box::new(RootError::KeyMismatch {
                sealed: wrapped.key_id.to_string(),
                configured: self.key_id.to_string(),
            })));
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, key)) = cache.as_ref()
            && cached == params
        {
            return Ok(Key256::from_bytes(*key.expose_secret()));
        }
        let key = self
            .client
            .unwrap(&wrapped, &self.context)
            .map_err(|e| RootKeyError::External(Box::new(e)))?;
        *cache = Some((params.clone(), Key256::from_bytes(*key.expose_secret())));
        Ok(key)
    }
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("transit::Root")
            .field("client", &self.client)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_reject_garbage() {
        let wrapped = WrappedKey {
            key_id: KeyId::new("root-key").expect("id"),
            version: 3,
            ciphertext: b"vault:v3:abcd".to_vec(),
        };
        let bytes = Root::encode(&wrapped).expect("fits");
        assert_eq!(bytes[0], 21);
        assert_eq!(&bytes[1..22], TAG);
        assert_eq!(Root::decode(&bytes).expect("ok"), Some(wrapped));
        for cut in 0..bytes.len() {
            assert!(
                !matches!(Root::decode(&bytes[..cut]), Ok(Some(_))),
                "truncated at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(Root::decode(&longer), Err(RootError::Malformed)));
        assert!(matches!(Root::decode(b"\x03aws..."), Ok(None)));
        let huge = WrappedKey {
            key_id: KeyId::new("k").expect("id"),
            version: 1,
            ciphertext: vec![b'x'; 5000],
        };
        assert_eq!(Root::encode(&huge), None);
    }
}
