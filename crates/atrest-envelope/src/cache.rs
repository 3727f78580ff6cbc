//! Data-key caching: reuse a data key for several blobs instead of calling the key holder
//! (a remote KMS) once per blob, as the AWS Encryption SDK's caching materials manager does.
//!
//! [`CachingWrapper`] wraps any [`KeyWrapper`]:
//!
//! - **sealing** ([`KeyWrapper::generate`]): a data key made for a key id and
//!   [`WrapContext`] is reused for further blobs with the same key id and wrap context until
//!   its age reaches [`CacheLimits::ttl`], it has served [`CacheLimits::max_blobs`] blobs, or
//!   it would exceed [`CacheLimits::max_bytes`] of plaintext, whichever comes first;
//! - **opening** ([`KeyWrapper::unwrap`]): an unwrapped data key is remembered for the same
//!   TTL, keyed by the exact wrapped key and wrap context.
//!
//! Entries are zeroized when evicted, expired, cleared or dropped. At most
//! [`CacheLimits::capacity`] entries are kept per direction (expired entries first, then the
//! oldest, are evicted).
//!
//! # Security
//!
//! Reusing a data key across blobs does not reuse any AES-GCM key: every blob derives its
//! body key, key commitment and header tag from the data key *and* its own random 256-bit
//! blob id. What caching trades is blast radius (one leaked data key opens every blob it
//! served) and revocation latency: a key disabled, rotated or destroyed at the key holder
//! keeps working for cached entries until they expire. Call [`KeyWrapper::forget`] (or
//! [`CachingWrapper::clear`]) right after such an operation; `atrest-store`'s shred job does.
//!
//! Caching only helps blobs that share a wrap context: keep per-blob pairs (object ids) out
//! of the wrap with [`crate::Context::exclude_from_wrap`].
//!
//! ```
//! use std::time::Duration;
//! use atrest_envelope::cache::{CacheLimits, CachingWrapper};
//! use atrest_envelope::{Context, KeyId, open, seal};
//! # let kms = atrest_envelope::fuzzing::TestWrapper::new();
//! # kms.rotate(&KeyId::new("tenant-acme")?);
//!
//! let cached = CachingWrapper::new(kms, CacheLimits::default().ttl(Duration::from_secs(60)));
//! let key = KeyId::new("tenant-acme")?;
//! for id in ["invoice-1", "invoice-2"] {
//!     let context = Context::new()
//!         .with("tenant", "acme")?
//!         .with("object", id)?
//!         .exclude_from_wrap("object")?;
//!     let blob = seal(&cached, &key, &context, b"data")?;
//!     assert_eq!(open(&cached, &context, &blob)?, b"data");
//! }
//! assert_eq!(cached.stats().generate_misses, 1); // one data key for both blobs
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use atrest_crypto::Key256;

use crate::kek::{
    DataKeyRequest, KeyId, KeyWrapper, RewrapError, UnwrapError, WrapContext, WrapError, WrappedKey,
};

/// When a cached data key stops being used. Every limit applies; the first reached wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    ttl: Duration,
    max_blobs: u64,
    max_bytes: Option<u64>,
    capacity: usize,
}

impl Default for CacheLimits {
    /// Five minutes, 10 000 blobs per data key, no byte limit, 1 000 entries.
    ///
    /// No byte limit by default because bytes under one data key do not wear out any AES-GCM
    /// key (each blob has its own body key); set one to bound blast radius. With a byte limit,
    /// blobs of unknown length (streaming uploads) bypass the cache, as in the AWS Encryption
    /// SDK.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_blobs: 10_000,
            max_bytes: None,
            capacity: 1_000,
        }
    }
}

impl CacheLimits {
    /// The longest a data key is reused or an unwrapped key remembered.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most blobs one cached data key seals (at least 1).
    pub fn max_blobs(mut self, blobs: u64) -> Self {
        self.max_blobs = blobs.max(1);
        self
    }

    /// The most plaintext bytes one cached data key seals. Blobs of unknown length are not
    /// sealed with cached keys once this is set.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// The most entries kept (per direction: sealing and opening), at least 1.
    pub fn capacity(mut self, entries: usize) -> Self {
        self.capacity = entries.max(1);
        self
    }

    /// The configured TTL.
    pub fn get_ttl(&self) -> Duration {
        self.ttl
    }

    /// The configured blob limit.
    pub fn get_max_blobs(&self) -> u64 {
        self.max_blobs
    }

    /// The configured byte limit, if any.
    pub fn get_max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// The configured capacity.
    pub fn get_capacity(&self) -> usize {
        self.capacity
    }
}

/// Counters of a [`CachingWrapper`] since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Seals served from the cache.
    pub generate_hits: u64,
    /// Seals that asked the inner key holder for a new data key.
    pub generate_misses: u64,
    /// Seals that bypassed the cache (unknown length with a byte limit, or a blob larger
    /// than the byte limit).
    pub generate_bypassed: u64,
    /// Unwraps served from the cache.
    pub unwrap_hits: u64,
    /// Unwraps passed to the inner key holder.
    pub unwrap_misses: u64,
}

struct SealEntry {
    key: Key256,
    wrapped: WrappedKey,
    created: Instant,
    blobs: u64,
    bytes: u64,
}

struct OpenEntry {
    key: Key256,
    created: Instant,
}

/// (key id, wrap context AAD)
type SealKey = (KeyId, Vec<u8>);
/// (key id, version, wrapped ciphertext, wrap context AAD)
type OpenKey = (KeyId, u32, Vec<u8>, Vec<u8>);

/// A [`KeyWrapper`] that reuses data keys within [`CacheLimits`]; see the module docs.
pub struct CachingWrapper<W> {
    inner: W,
    limits: CacheLimits,
    seal: Mutex<HashMap<SealKey, SealEntry>>,
    open: Mutex<HashMap<OpenKey, OpenEntry>>,
    generate_hits: AtomicU64,
    generate_misses: AtomicU64,
    generate_bypassed: AtomicU64,
    unwrap_hits: AtomicU64,
    unwrap_misses: AtomicU64,
}

impl<W> std::fmt::Debug for CachingWrapper<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingWrapper")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn copy_key(key: &Key256) -> Key256 {
    Key256::from_bytes(*key.expose_secret())
}

/// Makes room for one more entry: drops expired entries, then the oldest.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    capacity: usize,
    ttl: Duration,
    created: impl Fn(&V) -> Instant,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, v| created(v).elapsed() < ttl);
    while map.len() >= capacity {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| created(v))
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                map.remove(&k);
            }
            None => break,
        }
    }
}

impl<W> CachingWrapper<W> {
    /// Caches `inner`'s data keys within `limits`.
    pub fn new(inner: W, limits: CacheLimits) -> Self {
        Self {
            inner,
            limits,
            seal: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            generate_hits: AtomicU64::new(0),
            generate_misses: AtomicU64::new(0),
            generate_bypassed: AtomicU64::new(0),
            unwrap_hits: AtomicU64::new(0),
            unwrap_misses: AtomicU64::new(0),
        }
    }

    /// The wrapped key holder.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// The limits.
    pub fn limits(&self) -> &CacheLimits {
        &self.limits
    }

    /// Hit and miss counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            generate_hits: self.generate_hits.load(Ordering::Relaxed),
            generate_misses: self.generate_misses.load(Ordering::Relaxed),
            generate_bypassed: self.generate_bypassed.load(Ordering::Relaxed),
            unwrap_hits: self.unwrap_hits.load(Ordering::Relaxed),
            unwrap_misses: self.unwrap_misses.load(Ordering::Relaxed),
        }
    }

    /// Forgets (and zeroizes) every cached key.
    pub fn clear(&self) {
        lock(&self.seal).clear();
        lock(&self.open).clear();
    }

    /// Forgets every cached key of `key_id`: call it after rotating, disabling or destroying
    /// that key at the key holder.
    pub fn evict_key(&self, key_id: &KeyId) {
        lock(&self.seal).retain(|(id, _), _| id != key_id);
        lock(&self.open).retain(|(id, ..), _| id != key_id);
    }

    /// Entries currently held (sealing, opening), expired ones included until evicted.
    pub fn len(&self) -> (usize, usize) {
        (lock(&self.seal).len(), lock(&self.open).len())
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

impl<W: KeyWrapper> KeyWrapper for CachingWrapper<W> {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        self.inner.wrap(key_id, data_key, ctx)
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        let cache_key: OpenKey = (
            wrapped.key_id.clone(),
            wrapped.version,
            wrapped.ciphertext.clone(),
            ctx.aad().to_vec(),
        );
        {
            let mut open = lock(&self.open);
            match open.get(&cache_key) {
                Some(entry) if entry.created.elapsed() < self.limits.ttl => {
                    self.unwrap_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(copy_key(&entry.key));
                }
                Some(_) => {
                    open.remove(&cache_key);
                }
                None => {}
            }
        }
        self.unwrap_misses.fetch_add(1, Ordering::Relaxed);
        // The inner call runs without the lock: a slow KMS must not serialize other blobs.
        let key = self.inner.unwrap(wrapped, ctx)?;
        let mut open = lock(&self.open);
        make_room(&mut open, self.limits.capacity, self.limits.ttl, |e| {
            e.created
        });
        open.insert(
            cache_key,
            OpenEntry {
                key: copy_key(&key),
                created: Instant::now(),
            },
        );
        Ok(key)
    }

    fn generate(
        &self,
        key_id: &KeyId,
        ctx: &WrapContext,
        request: &DataKeyRequest,
    ) -> Result<(Key256, WrappedKey), WrapError> {
        let len = match (request.plaintext_len(), self.limits.max_bytes) {
            (Some(len), Some(max)) if len > max => None,
            (Some(len), _) => Some(len),
            (None, None) => Some(0),
            (None, Some(_)) => None,
        };
        let Some(len) = len else {
            self.generate_bypassed.fetch_add(1, Ordering::Relaxed);
            return self.inner.generate(key_id, ctx, request);
        };
        let cache_key: SealKey = (key_id.clone(), ctx.aad().to_vec());
        {
            let mut seal = lock(&self.seal);
            if let Some(entry) = seal.get_mut(&cache_key) {
                let fits = entry.created.elapsed() < self.limits.ttl
                    && entry.blobs < self.limits.max_blobs
                    && self
                        .limits
                        .max_bytes
                        .is_none_or(|max| entry.bytes.saturating_add(len) <= max);
                if fits {
                    entry.blobs += 1;
                    entry.bytes = entry.bytes.saturating_add(len);
                    self.generate_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((copy_key(&entry.key), entry.wrapped.clone()));
                }
                seal.remove(&cache_key);
            }
        }
        self.generate_misses.fetch_add(1, Ordering::Relaxed);
        let (key, wrapped) = self.inner.generate(key_id, ctx, request)?;
        if self.limits.max_blobs > 1 && !self.limits.ttl.is_zero() {
            let mut seal = lock(&self.seal);
            make_room(&mut seal, self.limits.capacity, self.limits.ttl, |e| {
                e.created
            });
            seal.insert(
                cache_key,
                SealEntry {
                    key: copy_key(&key),
                    wrapped: wrapped.clone(),
                    created: Instant::now(),
                    blobs: 1,
                    bytes: len,
                },
            );
        }
        Ok((key, wrapped))
    }

    fn rewrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<WrappedKey, RewrapError> {
        self.inner.rewrap(wrapped, ctx)
    }

    fn forget(&self, key_id: &KeyId) {
        self.evict_key(key_id);
        self.inner.forget(key_id);
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "test code: a failed check should panic")]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::fuzzing::TestWrapper;
    use crate::{Context, Error, open, seal};

    /// Counts the calls that reach the key holder.
    struct Counting {
        inner: TestWrapper,
        generates: AtomicU64,
        unwraps: AtomicU64,
    }

    impl Counting {
        fn new() -> Self {
            let inner = TestWrapper::new();
            inner.rotate(&key());
            Self {
                inner,
                generates: AtomicU64::new(0),
                unwraps: AtomicU64::new(0),
            }
        }
    }

    impl KeyWrapper for Counting {
        fn wrap(
            &self,
            key_id: &KeyId,
            data_key: &Key256,
            ctx: &WrapContext,
        ) -> Result<WrappedKey, WrapError> {
            self.generates.fetch_add(1, Ordering::Relaxed);
            self.inner.wrap(key_id, data_key, ctx)
        }
        fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
            self.unwraps.fetch_add(1, Ordering::Relaxed);
            self.inner.unwrap(wrapped, ctx)
        }
    }

    fn key() -> KeyId {
        KeyId::new("tenant-acme").expect("valid")
    }

    fn context(object: &str) -> Context {
        Context::new()
            .with("tenant", "acme")
            .and_then(|c| c.with("object", object))
            .and_then(|c| c.exclude_from_wrap("object"))
            .expect("valid")
    }

    fn calls(c: &CachingWrapper<Counting>) -> (u64, u64) {
        (
            c.inner().generates.load(Ordering::Relaxed),
            c.inner().unwraps.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn reuses_a_data_key_for_the_same_wrap_context_only() {
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default());
        let mut blobs = Vec::new();
        for i in 0..50 {
            let ctx = context(&format!("o{i}"));
            blobs.push((seal(&cache, &key(), &ctx, b"x").expect("seal"), ctx));
        }
        assert_eq!(calls(&cache).0, 1, "one data key for 50 blobs");
        // Same data key, but every blob has its own blob id, commitment and body key.
        let ids: std::collections::HashSet<_> = blobs
            .iter()
            .map(|(b, _)| {
                *crate::Header::split_attached(b)
                    .expect("parses")
                    .0
                    .blob_id()
            })
            .collect();
        assert_eq!(ids.len(), 50);
        for (blob, ctx) in &blobs {
            assert_eq!(open(&cache, ctx, blob).expect("opens"), b"x");
        }
        assert_eq!(calls(&cache).1, 1, "one unwrap for 50 blobs sharing a wrap");
        // Another wrap context (another tenant) needs its own data key.
        let other = Context::new().with("tenant", "globex").expect("valid");
        seal(&cache, &key(), &other, b"y").expect("seal");
        assert_eq!(calls(&cache).0, 2);
        // A context whose object id is bound to the wrap (the default) gets its own key too.
        let bound = Context::new()
            .with("tenant", "acme")
            .and_then(|c| c.with("object", "o1"))
            .expect("valid");
        seal(&cache, &key(), &bound, b"z").expect("seal");
        assert_eq!(calls(&cache).0, 3);
        // The blob still opens only with its full context.
        let (blob, _) = &blobs[0];
        assert!(matches!(
            open(&cache, &context("o1"), blob),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn honours_the_blob_limit() {
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default().max_blobs(3));
        for i in 0..10 {
            seal(&cache, &key(), &context(&i.to_string()), b"x").expect("seal");
        }
        assert_eq!(calls(&cache).0, 4, "ceil(10 / 3) data keys");
        assert_eq!(cache.stats().generate_hits, 6);
    }

    #[test]
    fn honours_the_byte_limit_and_bypasses_unknown_lengths() {
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default().max_bytes(100));
        for i in 0..4 {
            seal(&cache, &key(), &context(&i.to_string()), &[0; 40]).expect("seal");
        }
        // 40 + 40 fit, the third would make 120: a new key; then 80 again.
        assert_eq!(calls(&cache).0, 2);
        // Larger than the limit by itself: never cached.
        seal(&cache, &key(), &context("big"), &[0; 101]).expect("seal");
        assert_eq!(calls(&cache).0, 3);
        // Unknown length (a streaming Sealer without a length hint) bypasses the cache.
        let sealer = crate::Sealer::new(
            &cache,
            &[key()],
            &context("stream"),
            &crate::Options::default(),
        )
        .expect("sealer");
        drop(sealer);
        assert_eq!(calls(&cache).0, 4);
        assert_eq!(cache.stats().generate_bypassed, 2);
    }

    #[test]
    fn honours_the_ttl() {
        let ttl = Duration::from_millis(200);
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default().ttl(ttl));
        let blob = seal(&cache, &key(), &context("a"), b"x").expect("seal");
        open(&cache, &context("a"), &blob).expect("opens");
        seal(&cache, &key(), &context("b"), b"x").expect("seal");
        assert_eq!(calls(&cache), (1, 1));
        std::thread::sleep(ttl + Duration::from_millis(50));
        seal(&cache, &key(), &context("c"), b"x").expect("seal");
        open(&cache, &context("a"), &blob).expect("opens");
        assert_eq!(calls(&cache), (2, 2), "expired entries are not used");
    }

    #[test]
    fn capacity_evicts_and_eviction_by_key_works() {
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default().capacity(2));
        for tenant in ["a", "b", "c"] {
            let ctx = Context::new().with("tenant", tenant).expect("valid");
            seal(&cache, &key(), &ctx, b"x").expect("seal");
        }
        assert_eq!(cache.len().0, 2);
        cache.evict_key(&key());
        assert!(cache.is_empty());
        seal(&cache, &key(), &context("a"), b"x").expect("seal");
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn revocation_needs_eviction() {
        // A destroyed KEK version keeps working for cached unwraps until evicted: the
        // documented trade-off, and why shredding must evict.
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default());
        let blob = seal(&cache, &key(), &context("a"), b"x").expect("seal");
        open(&cache, &context("a"), &blob).expect("opens");
        cache
            .inner()
            .inner
            .set_state(&key(), 1, Some(crate::KeyUnavailable::Destroyed));
        assert!(open(&cache, &context("a"), &blob).is_ok());
        cache.forget(&key());
        assert!(matches!(
            open(&cache, &context("a"), &blob),
            Err(Error::Unwrap { .. })
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let cache = CachingWrapper::new(Counting::new(), CacheLimits::default());
        seal(&cache, &key(), &context("a"), b"x").expect("seal");
        let debug = format!("{cache:?}");
        assert!(debug.contains("CachingWrapper") && !debug.contains("key:"));
    }
}
