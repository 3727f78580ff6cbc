//! Per-blob key material: the data key and what is derived from it.
//!
//! ```text
//! commitment = HKDF-SHA256(salt = blob_id, ikm = data_key, info = "atrest envelope v1 key commitment", L = 32)
//! body_key   = HKDF-SHA256(salt = blob_id, ikm = data_key, info = "atrest envelope v1 body key", L = 32)
//! header_tag = HKDF-SHA256(salt = blob_id, ikm = data_key, info = "atrest envelope v1 header tag" || binding, L = 32)
//! ```

use atrest_crypto::{CryptoProvider, Key256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::Error;
use crate::header::{BLOB_ID_LEN, COMMITMENT_LEN, Header, TAG_LEN};
use crate::kek::{KeyWrapper, UnwrapError, WrappedKey};

pub(crate) const COMMITMENT_LABEL: &[u8] = b"atrest envelope v1 key commitment";
pub(crate) const BODY_KEY_LABEL: &[u8] = b"atrest envelope v1 body key";
pub(crate) const HEADER_TAG_LABEL: &[u8] = b"atrest envelope v1 header tag";

/// A blob's data key with its blob id. Zeroized on drop (through [`Key256`]); never leaves
/// this crate.
pub(crate) struct DataKey {
    key: Key256,
    blob_id: [u8; BLOB_ID_LEN],
}

impl DataKey {
    /// A data key (from the key holder) with a fresh blob id from the provider's CSPRNG.
    /// A data key may serve several blobs (a data-key cache); the blob id makes every
    /// derived key unique to one blob.
    pub(crate) fn with_fresh_blob_id(
        key: Key256,
        provider: &CryptoProvider,
    ) -> Result<Self, Error> {
        let mut blob_id = [0u8; BLOB_ID_LEN];
        provider.random.fill(&mut blob_id)?;
        Ok(Self { key, blob_id })
    }

    pub(crate) fn new(key: Key256, blob_id: [u8; BLOB_ID_LEN]) -> Self {
        Self { key, blob_id }
    }

    pub(crate) fn key(&self) -> &Key256 {
        &self.key
    }

    pub(crate) fn blob_id(&self) -> &[u8; BLOB_ID_LEN] {
        &self.blob_id
    }

    fn derive(
        &self,
        provider: &CryptoProvider,
        info: &[&[u8]],
        out: &mut [u8; 32],
    ) -> Result<(), Error> {
        provider
            .hkdf_sha256
            .derive(&self.blob_id, self.key.expose_secret(), info, out)?;
        Ok(())
    }

    pub(crate) fn commitment(
        &self,
        provider: &CryptoProvider,
    ) -> Result<[u8; COMMITMENT_LEN], Error> {
        let mut out = [0u8; COMMITMENT_LEN];
        self.derive(provider, &[COMMITMENT_LABEL], &mut out)?;
        Ok(out)
    }

    pub(crate) fn body_key(&self, provider: &CryptoProvider) -> Result<Key256, Error> {
        let mut out = Zeroizing::new([0u8; 32]);
        self.derive(provider, &[BODY_KEY_LABEL], &mut out)?;
        Ok(Key256::from_bytes(*out))
    }

    /// The tag over `signed` (every header byte before the tag).
    pub(crate) fn header_tag(
        &self,
        provider: &CryptoProvider,
        signed: &[u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        let mut out = [0u8; TAG_LEN];
        self.derive(provider, &[HEADER_TAG_LABEL, signed], &mut out)?;
        Ok(out)
    }
}

/// Unwraps the data key of `header` and checks it completely: commitment (constant time,
/// before anything else), then the header tag over the header with `context` in place of
/// the stored context. Returns the data key only if both hold.
pub(crate) fn open_header<W: KeyWrapper + ?Sized>(
    provider: &CryptoProvider,
    header: &Header,
    wrapper: &W,
    context: &Context,
) -> Result<DataKey, Error> {
    let data_key = DataKey::new(unwrap_first(header, wrapper)?, header.blob_id);
    let commitment = data_key.commitment(provider)?;
    if !bool::from(commitment.ct_eq(&header.commitment)) {
        return Err(Error::CommitmentMismatch);
    }
    let expected = data_key.header_tag(provider, &header.binding(context))?;
    if !bool::from(expected.ct_eq(&header.tag)) {
        return Err(Error::Authentication);
    }
    Ok(data_key)
}

/// Unwraps the first wrapped key the wrapper can unwrap; if none, reports the most specific
/// failure (see [`rank`]).
fn unwrap_first<W: KeyWrapper + ?Sized>(header: &Header, wrapper: &W) -> Result<Key256, Error> {
    // The wrapped keys are bound to the stored context's wrapped part; a wrapped key moved
    // from another blob with the same wrap context unwraps, and then fails the commitment.
    let ctx = header.wrap_context(&header.context);
    let mut best: Option<(&WrappedKey, UnwrapError)> = None;
    for wrapped in &header.wrapped_keys {
        match wrapper.unwrap(wrapped, &ctx) {
            Ok(key) => return Ok(key),
            Err(err) => {
                if best.as_ref().is_none_or(|(_, b)| rank(&err) > rank(b)) {
                    best = Some((wrapped, err));
                }
            }
        }
    }
    match best {
        Some((wrapped, source)) => Err(Error::Unwrap {
            key_id: wrapped.key_id.clone(),
            version: wrapped.version,
            source,
        }),
        // A parsed header holds at least one wrapped key.
        None => Err(crate::error::Malformed::NoWrappedKeys.into()),
    }
}

/// How much an unwrap failure tells the operator, highest first: a backend failure (retrying
/// may work), a deliberate key state (retired, disabled, destroyed ...), a wrapped key that
/// does not authenticate (corruption or tampering), a missing version, an unknown key (a
/// header may name keys of other key holders).
fn rank(err: &UnwrapError) -> u8 {
    match err {
        UnwrapError::Backend(_) => 5,
        UnwrapError::Unavailable { .. } => 4,
        UnwrapError::Authentication => 3,
        UnwrapError::VersionNotFound { .. } => 2,
        UnwrapError::KeyNotFound(_) => 1,
    }
}
