//! Store configuration: header placement, body segment size, wrapped-key length, upload
//! part size.

use atrest_envelope::Options;

/// Where an object's envelope header is stored (docs/FORMAT.md §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Headers {
    /// `header || body` in one inner object at the object's path (the default): one PUT per
    /// object, `head`/`list` sizes from the stored size, and a rewrap rewrites the whole
    /// object.
    #[default]
    Attached,
    /// The header in a sidecar object under [`crate::DETACHED_HEADERS`], the body at the
    /// object's path behind a 40-byte stub naming the sidecar: a rewrap rewrites only the
    /// sidecar (a few hundred bytes whatever the object size). Writes cost one more PUT,
    /// reads one more GET, deletes one more GET and DELETE.
    Detached,
}

/// How an [`crate::EncryptedStore`] writes objects.
///
/// `Config::default()`: 64 KiB body segments, the default crypto provider, 80-byte wrapped
/// keys (the local keyring's wrap), 5 MiB upload parts (the S3 minimum), copies of up to
/// 8 MiB re-encrypted in memory, attached headers.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub(crate) headers: Headers,
    pub(crate) envelope: Options,
    pub(crate) segment_size: u32,
    pub(crate) wrapped_key_len: usize,
    pub(crate) part_size: usize,
    pub(crate) copy_in_memory_limit: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            headers: Headers::Attached,
            envelope: Options::default(),
            segment_size: atrest_stream::DEFAULT_SEGMENT_SIZE,
            wrapped_key_len: atrest_envelope::local::WRAPPED_LEN,
            part_size: 5 << 20,
            copy_in_memory_limit: 8 << 20,
        }
    }
}

impl Config {
    /// Where headers are stored. Every writer and reader of a store must agree: a store
    /// configured for one placement fails to read objects written with the other
    /// ([`crate::Error::NotEncrypted`]), and `head`/`list` report wrong sizes for them
    /// (sizes are derived from stored lengths without reading objects).
    pub fn headers(mut self, placement: Headers) -> Self {
        self.headers = placement;
        self
    }

    /// Plaintext bytes per body segment (`4096..=16777216`, default 65536). Every object of a
    /// store must use the same segment size: `head` and `list` derive plaintext sizes from it.
    ///
    /// # Errors
    /// [`atrest_envelope::MisuseError::SegmentSize`] outside the range.
    pub fn segment_size(mut self, size: u32) -> Result<Self, atrest_envelope::Error> {
        self.envelope = self.envelope.segment_size(size)?;
        self.segment_size = size;
        Ok(self)
    }

    /// Length of one wrapped data key as the key holder makes it (80 for the local keyring;
    /// a KMS's ciphertext length otherwise). `head` and `list` derive plaintext sizes from
    /// it; `put` refuses a header of another length ([`crate::Error::HeaderShape`]).
    pub fn wrapped_key_len(mut self, len: usize) -> Self {
        self.wrapped_key_len = len;
        self
    }

    /// The crypto provider that seals and opens object bodies (AES-GCM, HKDF, randomness;
    /// the key holder wraps data keys with its own); the default is [`atrest_crypto::DEFAULT_PROVIDER`] (pure-Rust
    /// RustCrypto). Providers produce the same bytes, so stores configured with different
    /// providers read each other's objects; `atrest_ring::PROVIDER` is about three times
    /// as fast on x86-64 CPUs with VAES.
    pub fn provider(mut self, provider: &'static atrest_crypto::CryptoProvider) -> Self {
        self.envelope = self.envelope.provider(provider);
        self
    }

    /// Ciphertext bytes buffered before a part goes to the inner multipart upload (at least
    /// 5 MiB for S3). Bounds an upload's memory.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Objects up to this plaintext size are copied/renamed through memory with one atomic
    /// PUT; larger ones stream through a multipart upload.
    pub fn copy_in_memory_limit(mut self, bytes: u64) -> Self {
        self.copy_in_memory_limit = bytes;
        self
    }
}
