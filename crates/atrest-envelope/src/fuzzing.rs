//! Fuzz logic for envelope headers and an in-memory [`KeyWrapper`] for tests, examples and
//! fuzzing. Not part of the public API: nothing here is stable, and [`TestWrapper`] keeps its
//! KEKs in plain process memory with no persistence.

use std::collections::BTreeMap;
use std::sync::Mutex;

use atrest_crypto::{CryptoProvider, Key256};

use crate::kek::{
    KeyId, KeyUnavailable, KeyWrapper, UnwrapError, WrapContext, WrapError, WrappedKey, local,
};
use crate::{Context, Error, Header, Opener, Options};

/// A versioned in-memory keyring for tests: each key has versions `1..=n`, the newest is the
/// primary, and every version can be put in any [`KeyUnavailable`] state. Wraps with
/// [`local::wrap`], as the real keyring does.
pub struct TestWrapper {
    provider: &'static CryptoProvider,
    keys: Mutex<Keys>,
}

/// Each key's versions (version `n` at index `n - 1`): KEK and state (`None`: active).
type Keys = BTreeMap<KeyId, Vec<(Key256, Option<KeyUnavailable>)>>;

impl Default for TestWrapper {
    fn default() -> Self {
        Self::new()
    }
}

impl TestWrapper {
    /// An empty keyring using the default provider.
    pub fn new() -> Self {
        Self::with_provider(atrest_crypto::DEFAULT_PROVIDER)
    }

    /// An empty keyring whose wraps draw their salts from `provider`.
    pub fn with_provider(provider: &'static CryptoProvider) -> Self {
        Self {
            provider,
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a version with the given KEK (creating the key); returns the new version, which
    /// becomes the primary.
    pub fn add_version(&self, key_id: &KeyId, kek: [u8; 32]) -> u32 {
        let mut keys = self.keys();
        let versions = keys.entry(key_id.clone()).or_default();
        versions.push((Key256::from_bytes(kek), None));
        u32::try_from(versions.len()).unwrap_or(u32::MAX)
    }

    /// Adds a version with a random KEK; returns it.
    pub fn rotate(&self, key_id: &KeyId) -> u32 {
        let kek = Key256::generate(self.provider).expect("random source");
        self.add_version(key_id, *kek.expose_secret())
    }

    /// Puts a version in a state (`None`: usable again). `Destroyed` also wipes its KEK.
    pub fn set_state(&self, key_id: &KeyId, version: u32, state: Option<KeyUnavailable>) {
        let mut keys = self.keys();
        let index = usize::try_from(version)
            .unwrap_or(usize::MAX)
            .wrapping_sub(1);
        if let Some(entry) = keys.get_mut(key_id).and_then(|v| v.get_mut(index)) {
            if state == Some(KeyUnavailable::Destroyed) {
                entry.0 = Key256::from_bytes([0; 32]);
            }
            entry.1 = state;
        }
    }
}

impl KeyWrapper for TestWrapper {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        let keys = self.keys();
        let versions = keys
            .get(key_id)
            .ok_or_else(|| WrapError::KeyNotFound(key_id.clone()))?;
        let version = u32::try_from(versions.len()).unwrap_or(u32::MAX);
        let (kek, state) = versions
            .last()
            .ok_or(WrapError::KeyNotFound(key_id.clone()))?;
        if let Some(reason) = state {
            return Err(WrapError::Unavailable {
                key_id: key_id.clone(),
                version,
                reason: *reason,
            });
        }
        let ciphertext = local::wrap(self.provider, kek, key_id, version, data_key, ctx.aad())?;
        Ok(WrappedKey {
            key_id: key_id.clone(),
            version,
            ciphertext,
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        let keys = self.keys();
        let versions = keys
            .get(&wrapped.key_id)
            .ok_or_else(|| UnwrapError::KeyNotFound(wrapped.key_id.clone()))?;
        let index = usize::try_from(wrapped.version)
            .unwrap_or(usize::MAX)
            .wrapping_sub(1);
        let (kek, state) = versions
            .get(index)
            .ok_or_else(|| UnwrapError::VersionNotFound {
                key_id: wrapped.key_id.clone(),
                version: wrapped.version,
            })?;
        match state {
            None | Some(KeyUnavailable::DecryptOnly) => {}
            Some(reason) => {
                return Err(UnwrapError::Unavailable {
                    key_id: wrapped.key_id.clone(),
                    version: wrapped.version,
                    reason: *reason,
                });
            }
        }
        local::unwrap(
            self.provider,
            kek,
            &wrapped.key_id,
            wrapped.version,
            &wrapped.ciphertext,
            ctx.aad(),
        )
    }
}

/// The key id of the fuzzing keyring's one key.
pub const FUZZ_KEY_ID: &str = "fuzz";
/// Its KEK (version 1).
pub const FUZZ_KEK: [u8; 32] = [0x4B; 32];

/// The keyring [`header`] opens headers with: key [`FUZZ_KEY_ID`], version 1 = [`FUZZ_KEK`].
pub fn fuzz_wrapper() -> TestWrapper {
    let wrapper = TestWrapper::new();
    let id = KeyId::new(FUZZ_KEY_ID).expect("valid id");
    wrapper.add_version(&id, FUZZ_KEK);
    wrapper
}

/// A comparable summary of a parse outcome.
fn outcome(result: &Result<Header, Error>) -> String {
    match result {
        Ok(header) => format!("ok {}", header.len()),
        Err(Error::Malformed(m)) => format!("malformed {m:?}"),
        Err(Error::Limit(l)) => format!("limit {l:?}"),
        Err(other) => format!("unexpected {other}"),
    }
}

/// Untrusted bytes as an attached object: the slice and reader parsers must agree, a parsed
/// header must re-encode to exactly the bytes it came from, and opening it (with the empty
/// context and [`fuzz_wrapper`]) and decrypting the rest as its body must fail or succeed
/// without panicking. Allocation is bounded by [`crate::MAX_HEADER_LEN`] plus one body.
/// Returns a short description of how far the input got.
#[allow(clippy::panic, reason = "a fuzz target reports a bug by panicking")]
pub fn header(data: &[u8]) -> &'static str {
    let split = Header::split_attached(data);
    let mut reader = data;
    let read = Header::read_from(&mut reader);
    let parsed = split.as_ref().map(|(h, _)| h.clone()).map_err(|e| match e {
        Error::Malformed(m) => Error::Malformed(*m),
        Error::Limit(l) => Error::Limit(*l),
        _ => Error::Authentication,
    });
    if outcome(&parsed) != outcome(&read) {
        panic!(
            "parsers disagree: {} vs {}",
            outcome(&parsed),
            outcome(&read)
        );
    }
    let Ok((header, body)) = split else {
        return "rejected";
    };
    if read.ok().as_ref() != Some(&header) || reader != body {
        panic!("reader parser returned a different header or position");
    }
    let bytes = header.to_bytes();
    if bytes.len() != header.len() || bytes[..] != data[..data.len() - body.len()] {
        panic!("header does not re-encode to its own bytes");
    }
    let options = Options::default()
        .max_segment_size(1 << 16)
        .expect("valid cap");
    let opened = Opener::new(&header, &fuzz_wrapper(), &Context::new(), &options);
    let Ok(opener) = opened else {
        return match opened {
            Err(Error::Unwrap { .. }) => "unwrap-failed",
            Err(Error::CommitmentMismatch) => "commitment-mismatch",
            Err(Error::Authentication) => "header-authentication",
            Err(Error::Limit(_)) => "limit",
            Err(other) => panic!("unexpected error opening a parsed header: {other}"),
            Ok(_) => "opened",
        };
    };
    match opener.open_body(body) {
        Ok(_) => "decrypted",
        Err(Error::Body(_)) => "body-rejected",
        Err(other) => panic!("unexpected body error: {other}"),
    }
}

/// Valid attached objects for the seed corpus: `(name, bytes)`.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let wrapper = fuzz_wrapper();
    let id = KeyId::new(FUZZ_KEY_ID).expect("valid id");
    let seal = |context: &Context, plaintext: &[u8]| {
        crate::Sealer::new(
            &wrapper,
            std::slice::from_ref(&id),
            context,
            &Options::default().segment_size(4096).expect("valid size"),
        )
        .and_then(|s| s.seal_attached(plaintext))
        .expect("seal")
    };
    let context = Context::new()
        .with("tenant", "acme")
        .and_then(|c| c.with("object", "17"))
        .expect("valid context");
    vec![
        ("empty-context", seal(&Context::new(), b"attachment")),
        ("empty-plaintext", seal(&Context::new(), b"")),
        ("two-segments", seal(&Context::new(), &[7u8; 4100])),
        ("with-context", seal(&context, b"attachment")),
        (
            "with-wrap-scope",
            seal(
                &context
                    .clone()
                    .exclude_from_wrap("object")
                    .expect("entry exists"),
                b"attachment",
            ),
        ),
    ]
}

/// A wrap context `{blob: label}` for tests that wrap keys directly.
pub fn wrap_context(label: &[u8]) -> WrapContext {
    let context = Context::new()
        .with("blob", label)
        .unwrap_or_else(|_| Context::new());
    WrapContext::new(&context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reach_decryption_and_mutations_do_not_panic() {
        for (name, seed) in seeds() {
            let expected = if name.starts_with("with-") {
                "header-authentication"
            } else {
                "decrypted"
            };
            assert_eq!(header(&seed), expected, "{name}");
            for at in 0..seed.len().min(400) {
                let mut flipped = seed.clone();
                flipped[at] ^= 0x01;
                header(&flipped);
                header(&seed[..at]);
            }
        }
    }

    /// Regenerates `fuzz/seeds/envelope_header/`.
    #[test]
    #[ignore = "writes fuzz/seeds/; run on purpose"]
    fn regenerate_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/envelope_header");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(name), bytes).expect("write seed");
        }
    }
}
