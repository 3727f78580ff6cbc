//! Stream parameters: format, segment size, provider and reader limits.

use atrest_crypto::CryptoProvider;

use crate::{Error, MisuseError};

/// The smallest segment size of atrest STREAM v1 (plaintext bytes per segment).
pub const MIN_SEGMENT_SIZE: u32 = 4096;
/// The largest segment size of atrest STREAM v1 (16 MiB of plaintext per segment).
pub const MAX_SEGMENT_SIZE: u32 = 16 << 20;
/// The segment size written unless the caller chooses another (64 KiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 << 10;
/// Tink's smallest ciphertext segment size for AES256_GCM_HKDF: the 40-byte header and the
/// 16-byte tag must leave at least one plaintext byte in the first segment.
pub const TINK_MIN_CIPHERTEXT_SEGMENT_SIZE: u32 = 40 + 16 + 1;
/// Tink's largest ciphertext segment size (a Java `int`).
pub const TINK_MAX_CIPHERTEXT_SEGMENT_SIZE: u32 = i32::MAX.unsigned_abs();
/// Ciphertext segment size of Tink's `AES256_GCM_HKDF_4KB` key template.
pub const TINK_4KB: u32 = 4096;
/// Ciphertext segment size of Tink's `AES256_GCM_HKDF_1MB` key template.
pub const TINK_1MB: u32 = 1 << 20;

/// Which byte format a stream is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// atrest STREAM v1 (docs/FORMAT.md §1). The segment size is stored in the header, so
    /// readers need no configuration; `segment_size` only matters when writing.
    Native {
        /// Plaintext bytes per segment, `4096..=16777216`.
        segment_size: u32,
    },
    /// Google Tink's AES256_GCM_HKDF streaming AEAD (docs/FORMAT.md §2). The ciphertext
    /// segment size belongs to the Tink key and must be the same for writing and reading.
    Tink {
        /// Ciphertext bytes per segment (including the 16-byte tag).
        ciphertext_segment_size: u32,
    },
}

/// How to encrypt or decrypt a stream: format, provider and reader limits.
///
/// `Options::default()` writes atrest STREAM v1 with 64 KiB segments using
/// [`atrest_crypto::DEFAULT_PROVIDER`].
///
/// ```
/// use atrest_stream::{Key256, Options};
///
/// let key = Key256::from_bytes([7; 32]);
/// let options = Options::native(1 << 20)?; // 1 MiB segments
/// let sealed = options.seal(&key, b"tenant=42", b"hello")?;
/// // Readers learn the segment size from the header; any Options reads it back.
/// assert_eq!(atrest_stream::open(&key, b"tenant=42", &sealed)?, b"hello");
/// # Ok::<(), atrest_stream::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub(crate) format: Format,
    pub(crate) provider: &'static CryptoProvider,
    pub(crate) max_segment_size: u32,
    pub(crate) counter_offset: u64,
    pub(crate) fixed_salt: Option<[u8; 32]>,
    /// Worker threads: 0 = automatic, 1 = sequential (see [`Options::threads`]).
    pub(crate) threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            format: Format::Native {
                segment_size: DEFAULT_SEGMENT_SIZE,
            },
            provider: atrest_crypto::DEFAULT_PROVIDER,
            max_segment_size: MAX_SEGMENT_SIZE,
            counter_offset: 0,
            fixed_salt: None,
            threads: 0,
        }
    }
}

impl Options {
    /// atrest STREAM v1 with the given plaintext segment size.
    ///
    /// # Errors
    /// [`MisuseError::SegmentSize`] outside `4096..=16777216`.
    pub fn native(segment_size: u32) -> Result<Self, Error> {
        check_range(segment_size, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE)?;
        Ok(Self {
            format: Format::Native { segment_size },
            ..Self::default()
        })
    }

    /// Google Tink AES256_GCM_HKDF streaming with the Tink key's ciphertext segment size
    /// ([`TINK_4KB`] and [`TINK_1MB`] are Tink's templates).
    ///
    /// # Errors
    /// [`MisuseError::SegmentSize`] outside the sizes Tink accepts.
    pub fn tink(ciphertext_segment_size: u32) -> Result<Self, Error> {
        check_range(
            ciphertext_segment_size,
            TINK_MIN_CIPHERTEXT_SEGMENT_SIZE,
            TINK_MAX_CIPHERTEXT_SEGMENT_SIZE,
        )?;
        Ok(Self {
            format: Format::Tink {
                ciphertext_segment_size,
            },
            ..Self::default()
        })
    }

    /// Uses `provider` for AES-GCM, HKDF and randomness. Output is identical across providers.
    pub fn provider(mut self, provider: &'static CryptoProvider) -> Self {
        self.provider = provider;
        self
    }

    /// Caps the segment size a native reader accepts from a header (default and maximum:
    /// 16 MiB). A reader allocates about one segment, so this bounds its memory.
    ///
    /// # Errors
    /// [`MisuseError::SegmentSize`] outside `4096..=16777216`.
    pub fn max_segment_size(mut self, limit: u32) -> Result<Self, Error> {
        check_range(limit, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE)?;
        self.max_segment_size = limit;
        Ok(self)
    }

    /// Seals and opens segments on `n` worker threads: `0` (the default) is automatic, `1`
    /// is sequential. Output is byte-for-byte the same whatever `n`; see the crate docs
    /// ("Parallelism") for how batches are formed and the memory bound.
    ///
    /// Automatic means [`std::thread::available_parallelism`] workers for in-memory inputs of
    /// at least [`crate::PARALLEL_MIN_BYTES`] spanning at least two segments, and for streams
    /// once that many bytes have gone through them; sequential below.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// The configured worker count (0 = automatic).
    pub fn thread_count(&self) -> usize {
        self.threads
    }

    /// The format these options write (and, for Tink, read).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The provider these options use.
    pub fn crypto_provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// Length of the stream header in this format (42 for native, 40 for Tink): how many
    /// bytes to fetch before [`crate::Layout::parse`].
    pub fn header_len(&self) -> usize {
        match self.format {
            Format::Native { .. } => crate::layout::NATIVE_HEADER_LEN,
            Format::Tink { .. } => crate::layout::TINK_HEADER_LEN,
        }
    }

    /// Test hook: number segments from `first` instead of 0, to reach the counter limit
    /// without writing 2^64 segments. Streams written this way only decrypt with the same
    /// hook, so this never appears in production builds.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn initial_counter_for_testing(mut self, first: u64) -> Self {
        self.counter_offset = first;
        self
    }

    /// Test hook: write native streams with this salt instead of a random one, to reproduce
    /// the known-answer vectors (Tink streams: this salt, and its first 7 bytes as the nonce
    /// prefix). Reusing a salt with the same key and associated data reuses
    /// nonces, so this never appears in production builds.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn fixed_salt_for_testing(mut self, salt: [u8; 32]) -> Self {
        self.fixed_salt = Some(salt);
        self
    }
}

fn check_range(size: u32, min: u32, max: u32) -> Result<(), Error> {
    if (min..=max).contains(&size) {
        Ok(())
    } else {
        Err(MisuseError::SegmentSize { size, min, max }.into())
    }
}
