//! The caller's encryption context: what a blob belongs to (tenant, object id, ...).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{LimitExceeded, Malformed, MisuseError};

/// The longest encoded context, in bytes.
pub const MAX_CONTEXT_LEN: usize = 4096;
/// The most entries a context may have.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// The longest context key, in bytes.
pub const MAX_CONTEXT_KEY_LEN: usize = 255;

/// Key-value pairs that say what a blob belongs to, e.g. `tenant=acme`, `object=invoice-17`.
///
/// The context is stored in the envelope header **in clear** (it is not secret) and bound to
/// the wrapped keys, the header tag and every body segment: a blob opened with a different
/// context fails with [`crate::Error::Authentication`]. Its encoding is canonical and
/// independent of insertion order (entries sorted by key bytes, duplicates rejected), so the
/// same pairs always give the same bytes.
///
/// ```
/// use atrest_envelope::Context;
///
/// let a = Context::new().with("tenant", "acme")?.with("object", "invoice-17")?;
/// let b = Context::new().with("object", "invoice-17")?.with("tenant", "acme")?;
/// assert_eq!(a, b);
/// assert_eq!(a.get(b"tenant"), Some(&b"acme"[..]));
/// # Ok::<(), atrest_envelope::MisuseError>(())
/// ```
///
/// # The data-key wrap
///
/// By default every pair is also bound to the wraps of the blob's data key, so a KMS sees
/// the pairs as its encryption context (audit logs, key policies). Pairs unique to one blob
/// (an object id) then make every blob's wrap unique, so a data-key cache
/// ([`crate::cache::CachingWrapper`]) never hits. [`Context::exclude_from_wrap`] keeps such a
/// pair out of the wrap; it stays bound to the header tag and every body segment, so a blob
/// still opens only with the full context. Which pairs are bound is recorded in the header.
/// Equality compares the pairs only.
#[derive(Clone, Default)]
pub struct Context {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    encoded_len: usize,
    /// Keys of entries kept out of the data-key wrap.
    wrap_excluded: BTreeSet<Vec<u8>>,
}

impl PartialEq for Context {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Context {}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pair.
    ///
    /// # Errors
    /// [`MisuseError::ContextKey`] for an empty key or one over 255 bytes,
    /// [`MisuseError::DuplicateContextKey`] if `key` is already present,
    /// [`MisuseError::ContextTooLarge`] past [`MAX_CONTEXT_ENTRIES`] or [`MAX_CONTEXT_LEN`].
    pub fn with(
        mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Self, MisuseError> {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key.is_empty() || key.len() > MAX_CONTEXT_KEY_LEN {
            return Err(MisuseError::ContextKey);
        }
        if self.entries.contains_key(key) {
            return Err(MisuseError::DuplicateContextKey);
        }
        if self.entries.len() >= MAX_CONTEXT_ENTRIES {
            return Err(MisuseError::ContextTooLarge(
                LimitExceeded::ContextEntries {
                    max: MAX_CONTEXT_ENTRIES,
                },
            ));
        }
        let len = self.encoded_len + entry_len(key, value);
        if len > MAX_CONTEXT_LEN {
            return Err(MisuseError::ContextTooLarge(LimitExceeded::ContextLen {
                len,
                max: MAX_CONTEXT_LEN,
            }));
        }
        self.entries.insert(key.to_vec(), value.to_vec());
        self.encoded_len = len;
        Ok(self)
    }

    /// Keeps the pair with key `key` out of the data-key wrap (see the type's docs): it stays
    /// bound to the header and body, but blobs that differ only in excluded pairs share one
    /// wrap context, and so can share a cached data key.
    ///
    /// # Errors
    /// [`MisuseError::UnknownContextKey`] if no pair has that key.
    pub fn exclude_from_wrap(mut self, key: impl AsRef<[u8]>) -> Result<Self, MisuseError> {
        let key = key.as_ref();
        if !self.entries.contains_key(key) {
            return Err(MisuseError::UnknownContextKey);
        }
        self.wrap_excluded.insert(key.to_vec());
        Ok(self)
    }

    /// Whether the pair with key `key` is bound to the data-key wrap (false if absent).
    pub fn is_bound_to_wrap(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key) && !self.wrap_excluded.contains(key)
    }

    /// The header's wrap scope: bit `i` set if the `i`-th pair (canonical order) is bound
    /// to the wrap.
    pub(crate) fn wrap_scope(&self) -> u64 {
        self.entries
            .keys()
            .enumerate()
            .filter(|(_, key)| !self.wrap_excluded.contains(*key))
            .fold(0, |mask, (i, _)| mask | (1u64 << i))
    }

    /// The pairs selected by a wrap scope (bits past the last pair are ignored; the header
    /// parser rejects them).
    pub(crate) fn scoped(&self, scope: u64) -> Self {
        let mut out = Self::new();
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i < 64 && scope & (1u64 << i) != 0 {
                out.encoded_len += entry_len(key, value);
                out.entries.insert(key.clone(), value.clone());
            }
        }
        out
    }

    /// The same pairs with no exclusions.
    pub(crate) fn without_exclusions(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            encoded_len: self.encoded_len,
            wrap_excluded: BTreeSet::new(),
        }
    }

    /// The context with the wrap exclusions of `scope` (the inverse of [`Context::wrap_scope`]).
    pub(crate) fn with_scope(mut self, scope: u64) -> Self {
        self.wrap_excluded = self
            .entries
            .keys()
            .enumerate()
            .filter(|(i, _)| *i >= 64 || scope & (1u64 << i) == 0)
            .map(|(_, key)| key.clone())
            .collect();
        self
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// The pairs, in canonical (ascending key) order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Length of [`Context::encode`]'s output (without the 2-byte length prefix).
    pub(crate) fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Appends the canonical encoding (entries only; the header writes the length prefix).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for (key, value) in &self.entries {
            // Both lengths were checked by `with` / `decode`.
            out.push(u8::try_from(key.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(key);
            out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(value);
        }
    }

    /// Decodes a canonical encoding of exactly `bytes.len()` bytes (at most
    /// [`MAX_CONTEXT_LEN`], checked by the caller).
    pub(crate) fn decode(mut bytes: &[u8]) -> Result<Self, crate::Error> {
        let encoded_len = bytes.len();
        let mut entries = BTreeMap::new();
        let mut previous: Option<&[u8]> = None;
        while let Some((&key_len, rest)) = bytes.split_first() {
            let key_len = usize::from(key_len);
            if key_len == 0 || rest.len() < key_len + 2 {
                return Err(Malformed::ContextEntry.into());
            }
            let (key, rest) = rest.split_at(key_len);
            let value_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let rest = &rest[2..];
            if rest.len() < value_len {
                return Err(Malformed::ContextEntry.into());
            }
            let (value, rest) = rest.split_at(value_len);
            if previous.is_some_and(|p| p >= key) {
                return Err(Malformed::ContextOrder.into());
            }
            if entries.len() >= MAX_CONTEXT_ENTRIES {
                return Err(LimitExceeded::ContextEntries {
                    max: MAX_CONTEXT_ENTRIES,
                }
                .into());
            }
            previous = Some(key);
            entries.insert(key.to_vec(), value.to_vec());
            bytes = rest;
        }
        Ok(Self {
            entries,
            encoded_len,
            wrap_excluded: BTreeSet::new(),
        })
    }
}

fn entry_len(key: &[u8], value: &[u8]) -> usize {
    1 + key.len() + 2 + value.len()
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.iter() {
            map.entry(
                &String::from_utf8_lossy(key),
                &String::from_utf8_lossy(value),
            );
        }
        map.finish()
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "test code: a failed check should panic")]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_order_independent() {
        let a = Context::new()
            .with("b", "2")
            .and_then(|c| c.with("a", "1"))
            .expect("valid");
        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        assert_eq!(bytes, b"\x01a\x00\x011\x01b\x00\x012");
        assert_eq!(a.encoded_len(), bytes.len());
        assert_eq!(Context::decode(&bytes).expect("decodes"), a);
    }

    #[test]
    fn misuse_is_rejected() {
        assert_eq!(Context::new().with("", "x"), Err(MisuseError::ContextKey));
        assert_eq!(
            Context::new().with([b'k'; 256], "x"),
            Err(MisuseError::ContextKey)
        );
        let one = Context::new().with("k", "x").expect("valid");
        assert_eq!(one.with("k", "y"), Err(MisuseError::DuplicateContextKey));
        assert!(matches!(
            Context::new().with("k", vec![0u8; MAX_CONTEXT_LEN]),
            Err(MisuseError::ContextTooLarge(
                LimitExceeded::ContextLen { .. }
            ))
        ));
        let mut many = Context::new();
        for i in 0..MAX_CONTEXT_ENTRIES {
            many = many.with(i.to_string(), "").expect("under the cap");
        }
        assert!(matches!(
            many.with("x", ""),
            Err(MisuseError::ContextTooLarge(
                LimitExceeded::ContextEntries { .. }
            ))
        ));
    }

    #[test]
    fn non_canonical_encodings_are_rejected() {
        let malformed = |bytes: &[u8]| match Context::decode(bytes) {
            Err(crate::Error::Malformed(m)) => m,
            other => panic!("expected Malformed, got {other:?}"),
        };
        assert_eq!(
            malformed(b"\x01b\x00\x00\x01a\x00\x00"),
            Malformed::ContextOrder
        );
        assert_eq!(
            malformed(b"\x01a\x00\x00\x01a\x00\x00"),
            Malformed::ContextOrder
        );
        assert_eq!(malformed(b"\x00\x00\x00"), Malformed::ContextEntry);
        assert_eq!(malformed(b"\x01a\x00\x05xy"), Malformed::ContextEntry);
        assert_eq!(malformed(b"\x02a"), Malformed::ContextEntry);
        assert!(Context::decode(b"").expect("empty").is_empty());
    }
}
