//! Sealing and opening blobs: streaming (`Write`/`Read`/`Seek`) and in-memory, attached and
//! detached.

use std::io::{Read, Seek, Write};

use atrest_crypto::{CryptoProvider, Key256};
use atrest_stream::{Decryptor, Encryptor, Layout, SeekableDecryptor};

use crate::context::Context;
use crate::error::{Error, LimitExceeded, MisuseError};
use crate::header::{Header, MAX_WRAPPED_KEY_LEN, MAX_WRAPPED_KEYS, STREAM_HEADER_LEN};
use crate::kek::{DataKeyRequest, KeyId, KeyWrapper, WrapContext, WrappedKey};
use crate::keys::{DataKey, open_header};

/// How to seal and open envelopes: body segment size, crypto provider, reader limits.
///
/// `Options::default()` writes 64 KiB body segments with [`atrest_crypto::DEFAULT_PROVIDER`]
/// and reads segments of up to 16 MiB.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    segment_size: u32,
    max_segment_size: u32,
    provider: &'static CryptoProvider,
    plaintext_len: Option<u64>,
    threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_size: atrest_stream::DEFAULT_SEGMENT_SIZE,
            max_segment_size: atrest_stream::MAX_SEGMENT_SIZE,
            provider: atrest_crypto::DEFAULT_PROVIDER,
            plaintext_len: None,
            threads: 0,
        }
    }
}

impl Options {
    /// Plaintext bytes per body segment written (`4096..=16777216`, default 65536).
    ///
    /// # Errors
    /// [`MisuseError::SegmentSize`] outside the range.
    pub fn segment_size(mut self, size: u32) -> Result<Self, Error> {
        check_segment_size(size)?;
        self.segment_size = size;
        Ok(self)
    }

    /// The largest segment size a reader accepts from a header (default and maximum 16 MiB).
    /// A body reader allocates about one segment, so this bounds its memory.
    ///
    /// # Errors
    /// [`MisuseError::SegmentSize`] outside `4096..=16777216`.
    pub fn max_segment_size(mut self, limit: u32) -> Result<Self, Error> {
        check_segment_size(limit)?;
        self.max_segment_size = limit;
        Ok(self)
    }

    /// Uses `provider` for AES-GCM, HKDF and randomness.
    pub fn provider(mut self, provider: &'static CryptoProvider) -> Self {
        self.provider = provider;
        self
    }

    /// The plaintext length of the blob about to be sealed, if known. Passed to the key
    /// holder's [`KeyWrapper::generate`] (a data-key cache with a byte limit needs it; the
    /// one-shot functions set it themselves). Not enforced: the body may differ.
    pub fn plaintext_len(mut self, len: u64) -> Self {
        self.plaintext_len = Some(len);
        self
    }

    /// Seals and opens body segments on `n` worker threads: `0` (the default) is
    /// automatic, `1` sequential (see `atrest_stream::Options::threads`). The bytes are the
    /// same whatever `n`.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// The provider these options use.
    pub fn crypto_provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    fn stream_writer(&self) -> Result<atrest_stream::Options, Error> {
        Ok(atrest_stream::Options::native(self.segment_size)?
            .provider(self.provider)
            .threads(self.threads))
    }

    fn stream_reader(&self, header: &Header) -> atrest_stream::Options {
        atrest_stream::Options::default()
            .provider(self.provider)
            .threads(self.threads)
            .max_segment_size(header.segment_size)
            // The header's segment size was range-checked when it was parsed.
            .unwrap_or_default()
    }
}

fn check_segment_size(size: u32) -> Result<(), Error> {
    if (atrest_stream::MIN_SEGMENT_SIZE..=atrest_stream::MAX_SEGMENT_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(MisuseError::SegmentSize(size).into())
    }
}

/// A new blob: a fresh data key, wrapped, behind a finished header. Consumed by writing the
/// body.
///
/// ```
/// # use atrest_envelope::{Context, KeyId, Options, Sealer, Opener, Header};
/// # let wrapper = atrest_envelope::fuzzing::TestWrapper::new();
/// let key_id = KeyId::new("tenant-acme")?;
/// # wrapper.rotate(&key_id);
/// let context = Context::new().with("tenant", "acme")?.with("object", "invoice-17")?;
///
/// // Detached: store the header (a database row) and the body (object storage) apart.
/// let sealer = Sealer::new(&wrapper, &[key_id], &context, &Options::default())?;
/// let header = sealer.header_bytes().to_vec();
/// let body = sealer.seal_body(b"attachment bytes")?;
///
/// let opener = Opener::new(&Header::parse(&header)?, &wrapper, &context, &Options::default())?;
/// assert_eq!(opener.open_body(&body)?, b"attachment bytes");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sealer {
    options: Options,
    data_key: DataKey,
    header: Header,
    header_bytes: Vec<u8>,
}

impl Sealer {
    /// Generates a data key and a blob id, wraps the data key under the primary version of
    /// each of `key_ids` (in that order) and builds the header.
    ///
    /// # Errors
    /// [`Error::Wrap`] if the key holder refuses or fails, [`MisuseError::NoKeyIds`],
    /// [`MisuseError::DuplicateKeyId`], [`MisuseError::TooManyWrappedKeys`],
    /// [`MisuseError::WrappedKeyShape`] if the key holder returns something a header cannot
    /// hold, [`Error::Crypto`] if the random source fails.
    pub fn new<W: KeyWrapper + ?Sized>(
        wrapper: &W,
        key_ids: &[KeyId],
        context: &Context,
        options: &Options,
    ) -> Result<Self, Error> {
        Self::build(wrapper, key_ids, context, options, None)
    }

    /// Test hook: seal with a fixed data key and blob id, for known-answer vectors. Reusing
    /// them breaks every guarantee, so this never appears in production builds.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn with_fixed_key_for_testing<W: KeyWrapper + ?Sized>(
        wrapper: &W,
        key_ids: &[KeyId],
        context: &Context,
        options: &Options,
        data_key: [u8; 32],
        blob_id: [u8; 32],
    ) -> Result<Self, Error> {
        let data_key = DataKey::new(Key256::from_bytes(data_key), blob_id);
        Self::build(wrapper, key_ids, context, options, Some(data_key))
    }

    /// Builds the header; with no `fixed` key, the first key holder generates the data key.
    fn build<W: KeyWrapper + ?Sized>(
        wrapper: &W,
        key_ids: &[KeyId],
        context: &Context,
        options: &Options,
        fixed: Option<DataKey>,
    ) -> Result<Self, Error> {
        if key_ids.is_empty() {
            return Err(MisuseError::NoKeyIds.into());
        }
        if key_ids.len() > MAX_WRAPPED_KEYS {
            return Err(MisuseError::TooManyWrappedKeys {
                max: MAX_WRAPPED_KEYS,
            }
            .into());
        }
        for (i, key_id) in key_ids.iter().enumerate() {
            if key_ids[..i].contains(key_id) {
                return Err(MisuseError::DuplicateKeyId(key_id.clone()).into());
            }
        }
        let wrap_scope = context.wrap_scope();
        let wrap_context = WrapContext::new(&context.scoped(wrap_scope));
        let mut wrapped_keys = Vec::with_capacity(key_ids.len());
        let (data_key, rest) = match fixed {
            Some(data_key) => (data_key, key_ids),
            None => {
                let request = DataKeyRequest::new(options.provider, options.plaintext_len);
                let (first, rest) = key_ids.split_first().ok_or(MisuseError::NoKeyIds)?;
                let (key, wrapped) = wrapper.generate(first, &wrap_context, &request)?;
                wrapped_keys.push(check_shape(first, wrapped)?);
                (DataKey::with_fresh_blob_id(key, options.provider)?, rest)
            }
        };
        for key_id in rest {
            let wrapped = wrap_checked(wrapper, key_id, &data_key, &wrap_context)?;
            wrapped_keys.push(wrapped);
        }
        let mut header = Header {
            segment_size: options.segment_size,
            blob_id: *data_key.blob_id(),
            context: context.clone(),
            wrap_scope,
            commitment: data_key.commitment(options.provider)?,
            wrapped_keys,
            tag: [0; 32],
        };
        header.tag = data_key.header_tag(options.provider, &header.binding(context))?;
        let header_bytes = header.to_bytes();
        Ok(Self {
            options: *options,
            data_key,
            header,
            header_bytes,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes: store them with the body (attached) or anywhere else (detached).
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// Starts writing the body alone (detached form) to `body`. Store
    /// [`Sealer::header_bytes`] first: the header cannot be recovered from the body.
    ///
    /// **[`Encryptor::finish`] MUST be called**, as for any atrest stream.
    ///
    /// # Errors
    /// [`Error::Body`] if writing the stream header fails or the random source does.
    pub fn encryptor<W: Write>(self, body: W) -> Result<Encryptor<W>, Error> {
        let key = self.data_key.body_key(self.options.provider)?;
        let aad = self.header.binding(&self.header.context);
        Ok(self.options.stream_writer()?.encryptor(body, &key, &aad)?)
    }

    /// Writes the header to `object`, then starts writing the body after it (attached form).
    ///
    /// **[`Encryptor::finish`] MUST be called.**
    ///
    /// # Errors
    /// [`Error::Io`] if writing the header fails; as [`Sealer::encryptor`].
    pub fn attached_encryptor<W: Write>(self, mut object: W) -> Result<Encryptor<W>, Error> {
        object.write_all(&self.header_bytes)?;
        self.encryptor(object)
    }

    /// Encrypts `plaintext` into a body (detached form).
    ///
    /// # Errors
    /// [`Error::Body`] if the random source fails.
    pub fn seal_body(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.data_key.body_key(self.options.provider)?;
        let aad = self.header.binding(&self.header.context);
        Ok(self.options.stream_writer()?.seal(&key, &aad, plaintext)?)
    }

    /// Encrypts `plaintext` into an attached object: header then body.
    ///
    /// # Errors
    /// As [`Sealer::seal_body`].
    pub fn seal_attached(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut object = self.header_bytes.clone();
        object.extend_from_slice(&self.seal_body(plaintext)?);
        Ok(object)
    }
}

/// Wraps `data_key` under `key_id` and checks that the result fits a header.
pub(crate) fn wrap_checked<W: KeyWrapper + ?Sized>(
    wrapper: &W,
    key_id: &KeyId,
    data_key: &DataKey,
    ctx: &WrapContext,
) -> Result<WrappedKey, Error> {
    check_shape(key_id, wrapper.wrap(key_id, data_key.key(), ctx)?)
}

/// Checks that a key holder's wrap names the key asked for and fits a header.
pub(crate) fn check_shape(key_id: &KeyId, wrapped: WrappedKey) -> Result<WrappedKey, Error> {
    if &wrapped.key_id != key_id
        || wrapped.ciphertext.is_empty()
        || wrapped.ciphertext.len() > MAX_WRAPPED_KEY_LEN
    {
        return Err(MisuseError::WrappedKeyShape.into());
    }
    Ok(wrapped)
}

/// An opened header: the data key unwrapped, the key commitment and the header tag verified
/// against the caller's context. Decrypts the blob's body; never exposes a key.
pub struct Opener {
    options: Options,
    header: Header,
    body_key: Key256,
    binding: Vec<u8>,
}

impl Opener {
    /// Opens `header` with `wrapper`, for a blob that must belong to `context`.
    ///
    /// In order: the segment size against [`Options::max_segment_size`]; unwrap the first
    /// wrapped key the wrapper can unwrap; compare the key commitment (constant time); verify
    /// the header tag with `context` in place of the stored context.
    ///
    /// # Errors
    /// [`Error::Limit`], [`Error::Unwrap`] (with the key state: missing version, retired,
    /// disabled, destroyed ...), [`Error::CommitmentMismatch`], [`Error::Authentication`]
    /// (modified header or wrong context), [`Error::Crypto`].
    pub fn new<W: KeyWrapper + ?Sized>(
        header: &Header,
        wrapper: &W,
        context: &Context,
        options: &Options,
    ) -> Result<Self, Error> {
        if header.segment_size > options.max_segment_size {
            return Err(LimitExceeded::SegmentSize {
                size: header.segment_size,
                limit: options.max_segment_size,
            }
            .into());
        }
        let data_key = open_header(options.provider, header, wrapper, context)?;
        Ok(Self {
            options: *options,
            header: header.clone(),
            body_key: data_key.body_key(options.provider)?,
            binding: header.binding(context),
        })
    }

    /// The (now authenticated) header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// A sequential reader over the body read from `body` (detached form, or an attached
    /// object after [`Header::read_from`]).
    ///
    /// # Errors
    /// [`Error::Body`] if the body's stream header is malformed, does not belong to this
    /// header ([`atrest_stream::Error::Authentication`]) or cannot be read.
    pub fn decryptor<R: Read>(&self, body: R) -> Result<Decryptor<R>, Error> {
        let options = self.options.stream_reader(&self.header);
        let decryptor = options.decryptor(body, &self.body_key, &self.binding)?;
        self.check_layout(decryptor.layout())?;
        Ok(decryptor)
    }

    /// A random-access reader over the body, which starts at `body`'s current position (so
    /// for an attached object, seek to [`Header::len`] first or use the reader
    /// [`Header::read_from`] left there). Wraps [`SeekableDecryptor`]: authenticated seeks,
    /// concurrent [`SeekableDecryptor::read_at`], [`SeekableDecryptor::ciphertext_range`].
    ///
    /// # Errors
    /// As [`Opener::decryptor`].
    pub fn seekable_decryptor<R: Read + Seek>(
        &self,
        body: R,
    ) -> Result<SeekableDecryptor<R>, Error> {
        let options = self.options.stream_reader(&self.header);
        let decryptor = options.seekable_decryptor(body, &self.body_key, &self.binding)?;
        self.check_layout(decryptor.layout())?;
        Ok(decryptor)
    }

    /// Decrypts a body held in memory.
    ///
    /// # Errors
    /// [`Error::Body`]: authentication, truncation, trailing data, malformed stream header.
    pub fn open_body(&self, body: &[u8]) -> Result<Vec<u8>, Error> {
        let options = self.options.stream_reader(&self.header);
        let len = usize::try_from(STREAM_HEADER_LEN).unwrap_or(usize::MAX);
        self.check_layout(&Layout::parse(&body[..len.min(body.len())], &options)?)?;
        Ok(options.open(&self.body_key, &self.binding, body)?)
    }

    /// The body's stream header names the envelope's segment size. Any other body is not this
    /// blob's (its stream key, which covers its stream header, would fail at the first
    /// segment); report it as that authentication failure, before reading further.
    fn check_layout(&self, layout: &Layout) -> Result<(), Error> {
        if layout.segment_size() == self.header.segment_size as usize {
            Ok(())
        } else {
            Err(atrest_stream::Error::Authentication.into())
        }
    }
}

/// Encrypts `plaintext` into an attached object (header then body), wrapping a fresh data key
/// under the primary version of `key_id`.
///
/// # Errors
/// As [`Sealer::new`] and [`Sealer::seal_body`].
pub fn seal<W: KeyWrapper + ?Sized>(
    wrapper: &W,
    key_id: &KeyId,
    context: &Context,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let options = Options::default().plaintext_len(plaintext.len() as u64);
    Sealer::new(wrapper, std::slice::from_ref(key_id), context, &options)?.seal_attached(plaintext)
}

/// Decrypts an attached object made by [`seal`] (or [`Sealer::seal_attached`]).
///
/// # Errors
/// As [`Header::parse`], [`Opener::new`] and [`Opener::open_body`].
pub fn open<W: KeyWrapper + ?Sized>(
    wrapper: &W,
    context: &Context,
    object: &[u8],
) -> Result<Vec<u8>, Error> {
    let (header, body) = Header::split_attached(object)?;
    Opener::new(&header, wrapper, context, &Options::default())?.open_body(body)
}

/// Encrypts `plaintext` into a detached `(header, body)` pair.
///
/// # Errors
/// As [`seal`].
pub fn seal_detached<W: KeyWrapper + ?Sized>(
    wrapper: &W,
    key_id: &KeyId,
    context: &Context,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let options = Options::default().plaintext_len(plaintext.len() as u64);
    let sealer = Sealer::new(wrapper, std::slice::from_ref(key_id), context, &options)?;
    let body = sealer.seal_body(plaintext)?;
    Ok((sealer.header_bytes, body))
}

/// Decrypts a detached `(header, body)` pair made by [`seal_detached`].
///
/// # Errors
/// As [`open`].
pub fn open_detached<W: KeyWrapper + ?Sized>(
    wrapper: &W,
    context: &Context,
    header: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    let header = Header::parse(header)?;
    Opener::new(&header, wrapper, context, &Options::default())?.open_body(body)
}
