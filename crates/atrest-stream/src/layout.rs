//! Header encoding, segment geometry, nonces and key derivation for both formats.

use std::ops::Range;

use atrest_crypto::{AeadKey, Key256, NONCE_LEN, Nonce, TAG_LEN, Tag};
use zeroize::Zeroizing;

use crate::options::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
use crate::{Error, Format, HeaderError, MisuseError, Options};

pub(crate) const NATIVE_MAGIC: [u8; 4] = [0x89, b'a', b't', b'r'];
pub(crate) const NATIVE_VERSION: u8 = 1;
pub(crate) const NATIVE_SUITE_AES256GCM_HKDFSHA256: u8 = 1;
pub(crate) const NATIVE_HEADER_LEN: usize = 42;
pub(crate) const NATIVE_KEY_LABEL: &[u8] = b"atrest STREAM v1 AES-256-GCM";
const SALT_LEN: usize = 32;

pub(crate) const TINK_HEADER_LEN: usize = 40;
const TINK_NONCE_PREFIX_LEN: usize = 7;

const TAG: u64 = TAG_LEN as u64;

/// The parsed geometry of one stream: where its segments are and how long they are.
///
/// Built from the stream header; used to map plaintext ranges to the ciphertext bytes a
/// ranged read must fetch (see docs/FORMAT.md §1.6).
///
/// ```
/// use atrest_stream::{Key256, Layout, Options};
///
/// let key = Key256::from_bytes([1; 32]);
/// let options = Options::native(4096)?;
/// let sealed = options.seal(&key, b"", &vec![0u8; 10_000])?;
/// let layout = Layout::parse(&sealed[..options.header_len()], &options)?;
/// let len = sealed.len() as u64;
/// assert_eq!(layout.plaintext_len(len)?, 10_000);
/// // Plaintext bytes 5000..5100 lie in segment 1: fetch exactly that segment.
/// assert_eq!(layout.ciphertext_range(5000..5100, len)?, 42 + 4112..42 + 2 * 4112);
/// # Ok::<(), atrest_stream::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Layout {
    format: Format,
    header: [u8; NATIVE_HEADER_LEN],
    header_len: usize,
    /// Plaintext bytes in segment 0 (Tink shortens it by the header).
    first_pt: usize,
    /// Plaintext bytes in every later full segment.
    pt: usize,
    /// Largest usable segment counter.
    max_counter: u64,
    /// Counter of segment 0 (non-zero only through the test hook).
    counter_offset: u64,
}

/// Where a stream's segments end, computed from its total length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Number of segments (at least one).
    pub(crate) segments: u64,
    /// Ciphertext length of the final segment (tag included).
    pub(crate) final_ct_len: usize,
    /// Total plaintext length.
    pub(crate) plaintext_len: u64,
    /// Total ciphertext length (header included).
    pub(crate) ciphertext_len: u64,
}

impl Geometry {
    /// The stream ends in fewer bytes than a tag: it was cut, or junk follows a final segment.
    pub(crate) fn bad_tail(&self) -> bool {
        self.final_ct_len < TAG_LEN
    }
}

impl Layout {
    /// Parses a stream header. `header` must hold at least [`Options::header_len`] bytes;
    /// only that many are read.
    ///
    /// # Errors
    /// [`Error::Header`] for a malformed header, [`Error::Truncated`] if `header` is short.
    pub fn parse(header: &[u8], options: &Options) -> Result<Self, Error> {
        match options.format {
            Format::Native { .. } => {
                if !header.starts_with(&NATIVE_MAGIC[..header.len().min(NATIVE_MAGIC.len())]) {
                    return Err(HeaderError::Magic.into());
                }
                let Some(header) = header.get(..NATIVE_HEADER_LEN) else {
                    return Err(Error::Truncated);
                };
                if header[4] != NATIVE_VERSION {
                    return Err(HeaderError::Version(header[4]).into());
                }
                if header[5] != NATIVE_SUITE_AES256GCM_HKDFSHA256 {
                    return Err(HeaderError::Suite(header[5]).into());
                }
                let size = u32::from_be_bytes([header[6], header[7], header[8], header[9]]);
                if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
                    return Err(HeaderError::SegmentSize(size).into());
                }
                if size > options.max_segment_size {
                    return Err(HeaderError::SegmentSizeAboveLimit {
                        size,
                        limit: options.max_segment_size,
                    }
                    .into());
                }
                let mut bytes = [0u8; NATIVE_HEADER_LEN];
                bytes.copy_from_slice(header);
                Ok(Self::native(bytes, size, options.counter_offset))
            }
            Format::Tink {
                ciphertext_segment_size,
            } => {
                if let Some(&len) = header.first()
                    && usize::from(len) != TINK_HEADER_LEN
                {
                    return Err(HeaderError::TinkHeaderLength(len).into());
                }
                let Some(header) = header.get(..TINK_HEADER_LEN) else {
                    return Err(Error::Truncated);
                };
                let mut bytes = [0u8; NATIVE_HEADER_LEN];
                bytes[..TINK_HEADER_LEN].copy_from_slice(header);
                Ok(Self::tink(
                    bytes,
                    ciphertext_segment_size,
                    options.counter_offset,
                ))
            }
        }
    }

    /// A layout with a fresh random salt (and Tink nonce prefix), for a new stream.
    pub(crate) fn generate(options: &Options) -> Result<Self, Error> {
        let mut bytes = [0u8; NATIVE_HEADER_LEN];
        match options.format {
            Format::Native { segment_size } => {
                bytes[..4].copy_from_slice(&NATIVE_MAGIC);
                bytes[4] = NATIVE_VERSION;
                bytes[5] = NATIVE_SUITE_AES256GCM_HKDFSHA256;
                bytes[6..10].copy_from_slice(&segment_size.to_be_bytes());
                match options.fixed_salt {
                    Some(salt) => bytes[10..].copy_from_slice(&salt),
                    None => options
                        .provider
                        .random
                        .fill(&mut bytes[10..])
                        .map_err(Error::Crypto)?,
                }
                Ok(Self::native(bytes, segment_size, options.counter_offset))
            }
            Format::Tink {
                ciphertext_segment_size,
            } => {
                bytes[0] = 40;
                match options.fixed_salt {
                    // Test hook: salt, then its first bytes again as the nonce prefix.
                    Some(salt) => {
                        bytes[1..1 + SALT_LEN].copy_from_slice(&salt);
                        bytes[1 + SALT_LEN..TINK_HEADER_LEN]
                            .copy_from_slice(&salt[..TINK_NONCE_PREFIX_LEN]);
                    }
                    None => options
                        .provider
                        .random
                        .fill(&mut bytes[1..TINK_HEADER_LEN])
                        .map_err(Error::Crypto)?,
                }
                Ok(Self::tink(
                    bytes,
                    ciphertext_segment_size,
                    options.counter_offset,
                ))
            }
        }
    }

    fn native(header: [u8; NATIVE_HEADER_LEN], segment_size: u32, counter_offset: u64) -> Self {
        let pt = segment_size as usize;
        Self {
            format: Format::Native { segment_size },
            header,
            header_len: NATIVE_HEADER_LEN,
            first_pt: pt,
            pt,
            max_counter: u64::MAX,
            counter_offset,
        }
    }

    fn tink(header: [u8; NATIVE_HEADER_LEN], ciphertext_segment_size: u32, offset: u64) -> Self {
        // Options::tink guarantees ciphertext_segment_size >= 57.
        let c = ciphertext_segment_size as usize;
        Self {
            format: Format::Tink {
                ciphertext_segment_size,
            },
            header,
            header_len: TINK_HEADER_LEN,
            first_pt: c - TINK_HEADER_LEN - TAG_LEN,
            pt: c - TAG_LEN,
            max_counter: u64::from(u32::MAX),
            counter_offset: offset,
        }
    }

    /// The header bytes as stored at the start of the stream.
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }

    /// The header's length in bytes.
    pub fn header_len(&self) -> u64 {
        self.header_len as u64
    }

    /// The stream's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Plaintext bytes in a full segment (for Tink: a full segment after the first).
    pub fn segment_size(&self) -> usize {
        self.pt
    }

    /// Plaintext bytes of full segment `index` (the final segment may be shorter).
    pub(crate) fn segment_pt_len(&self, index: u64) -> usize {
        if index == 0 { self.first_pt } else { self.pt }
    }

    /// The largest plaintext a full segment of this stream holds: the buffer size readers and
    /// writers need.
    pub(crate) fn max_segment_pt_len(&self) -> usize {
        self.first_pt.max(self.pt)
    }

    /// Offset of segment `index` from the start of the stream (header included). Only called
    /// for segments that exist in a stream of known length, so it cannot overflow.
    fn segment_start(&self, index: u64) -> u64 {
        if index == 0 {
            self.header_len as u64
        } else {
            self.header_len as u64
                + (self.first_pt as u64 + TAG)
                + (index - 1).saturating_mul(self.pt as u64 + TAG)
        }
    }

    /// The segment holding plaintext offset `offset`, and the offset within it.
    pub(crate) fn locate(&self, offset: u64) -> (u64, usize) {
        // Both results are below a segment size, which came from a `usize`.
        let first = self.first_pt as u64;
        if offset < first {
            (0, usize::try_from(offset).unwrap_or(usize::MAX))
        } else {
            let rest = offset - first;
            let pt = self.pt as u64;
            (
                1 + rest / pt,
                usize::try_from(rest % pt).unwrap_or(usize::MAX),
            )
        }
    }

    /// Where the segments of a stream of `ciphertext_len` bytes (header included) are.
    ///
    /// Segment boundaries are the ones a sequential reader sees (every `C` bytes from the
    /// start), so a final "segment" shorter than a tag is reported, not rejected here: the
    /// segment before it decides whether that is truncation or trailing data, exactly as in
    /// [`crate::Decryptor`].
    pub(crate) fn geometry(&self, ciphertext_len: u64) -> Result<Geometry, Error> {
        let body = ciphertext_len
            .checked_sub(self.header_len as u64)
            .ok_or(Error::Truncated)?;
        let first_ct = self.first_pt as u64 + TAG;
        let (segments, final_ct) = if body <= first_ct {
            (1, body)
        } else {
            let rest = body - first_ct;
            let full = self.pt as u64 + TAG;
            let k = rest.div_ceil(full);
            (1 + k, rest - (k - 1) * full)
        };
        if segments - 1 > self.max_counter - self.counter_offset.min(self.max_counter) {
            // More segments than the counter can number: no writer made this.
            return Err(Error::Authentication);
        }
        Ok(Geometry {
            segments,
            // At most one full segment, which came from a `usize`.
            final_ct_len: usize::try_from(final_ct).map_err(|_| Error::Authentication)?,
            // With a bad tail, the tail holds no plaintext: the length is what precedes it,
            // so random-access readers never reach into it before the end-of-stream check.
            plaintext_len: if final_ct < TAG {
                (body - final_ct).saturating_sub((segments - 1) * TAG)
            } else {
                body - segments * TAG
            },
            ciphertext_len,
        })
    }

    /// The plaintext length of a stream that is `ciphertext_len` bytes long (header
    /// included). Not authenticated: a reader must still authenticate the final segment.
    ///
    /// # Errors
    /// [`Error::Truncated`] if no valid stream has that length.
    pub fn plaintext_len(&self, ciphertext_len: u64) -> Result<u64, Error> {
        let geometry = self.geometry(ciphertext_len)?;
        if geometry.bad_tail() {
            return Err(Error::Truncated);
        }
        Ok(geometry.plaintext_len)
    }

    /// The total length (header included) of the stream for `plaintext_len` bytes.
    ///
    /// # Errors
    /// [`MisuseError::StreamTooLong`] if that needs more segments than the counter allows.
    pub fn ciphertext_len(&self, plaintext_len: u64) -> Result<u64, Error> {
        let segments = self.segments_for(plaintext_len)?;
        segments
            .checked_mul(TAG)
            .and_then(|tags| tags.checked_add(plaintext_len))
            .and_then(|len| len.checked_add(self.header_len as u64))
            .ok_or_else(|| MisuseError::StreamTooLong.into())
    }

    fn segments_for(&self, plaintext_len: u64) -> Result<u64, Error> {
        let first = self.first_pt as u64;
        let segments = if plaintext_len <= first {
            1
        } else {
            1 + (plaintext_len - first).div_ceil(self.pt as u64)
        };
        if segments - 1 > self.max_counter - self.counter_offset.min(self.max_counter) {
            return Err(MisuseError::StreamTooLong.into());
        }
        Ok(segments)
    }

    /// The exact byte range of the stream (offsets from its first header byte) that holds
    /// the segments needed to decrypt `plaintext`, for a stream `ciphertext_len` bytes long.
    /// The header (`0..header_len`) is needed too and is not included.
    ///
    /// # Errors
    /// [`MisuseError::RangeOutOfBounds`] if the range is not within the plaintext,
    /// [`Error::Truncated`] if `ciphertext_len` is not a valid stream length.
    pub fn ciphertext_range(
        &self,
        plaintext: Range<u64>,
        ciphertext_len: u64,
    ) -> Result<Range<u64>, Error> {
        let geometry = self.geometry(ciphertext_len)?;
        if geometry.bad_tail() {
            return Err(Error::Truncated);
        }
        self.ciphertext_range_in(&geometry, plaintext)
    }

    pub(crate) fn ciphertext_range_in(
        &self,
        geometry: &Geometry,
        plaintext: Range<u64>,
    ) -> Result<Range<u64>, Error> {
        if plaintext.start > plaintext.end || plaintext.end > geometry.plaintext_len {
            return Err(MisuseError::RangeOutOfBounds {
                start: plaintext.start,
                end: plaintext.end,
                len: geometry.plaintext_len,
            }
            .into());
        }
        if plaintext.start == plaintext.end {
            let at = self.segment_start(self.locate(plaintext.start).0);
            let at = at.min(geometry.ciphertext_len);
            return Ok(at..at);
        }
        let (first, _) = self.locate(plaintext.start);
        let (last, _) = self.locate(plaintext.end - 1);
        Ok(self.segment_start(first)..self.segment_end(geometry, last))
    }

    /// End offset (exclusive) of segment `index` in a stream with `geometry`.
    pub(crate) fn segment_end(&self, geometry: &Geometry, index: u64) -> u64 {
        if index + 1 >= geometry.segments {
            geometry.ciphertext_len
        } else {
            self.segment_start(index) + self.segment_pt_len(index) as u64 + TAG
        }
    }

    /// Offset and ciphertext length of segment `index` in a stream with `geometry`.
    pub(crate) fn segment_span(&self, geometry: &Geometry, index: u64) -> (u64, usize) {
        let start = self.segment_start(index);
        let len = if index + 1 >= geometry.segments {
            geometry.final_ct_len
        } else {
            self.segment_pt_len(index) + TAG_LEN
        };
        (start, len)
    }

    /// Whether a non-final segment may follow segment `index` (the counter has room).
    pub(crate) fn has_successor(&self, index: u64) -> bool {
        index
            .checked_add(self.counter_offset)
            .is_some_and(|counter| counter < self.max_counter)
    }

    fn nonce(&self, index: u64, last: bool) -> Nonce {
        // Callers never pass an index whose counter exceeds `max_counter` (writers check
        // `has_successor`, readers check `geometry`); the saturating add keeps this total.
        let counter = index.saturating_add(self.counter_offset);
        let mut nonce = [0u8; NONCE_LEN];
        match self.format {
            Format::Native { .. } => {
                nonce[..8].copy_from_slice(&counter.to_be_bytes());
            }
            Format::Tink { .. } => {
                nonce[..TINK_NONCE_PREFIX_LEN]
                    .copy_from_slice(&self.header[1 + SALT_LEN..TINK_HEADER_LEN]);
                let counter = u32::try_from(counter).unwrap_or(u32::MAX);
                nonce[TINK_NONCE_PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
            }
        }
        nonce[11] = u8::from(last);
        Nonce::from_bytes(nonce)
    }

    /// Derives this stream's segment key from the data key and associated data.
    fn derive_key(&self, options: &Options, key: &Key256, aad: &[u8]) -> Result<Key256, Error> {
        let mut okm = Key256::from_bytes([0; 32]);
        let mut out = [0u8; 32];
        let hkdf = options.provider.hkdf_sha256;
        let result = match self.format {
            Format::Native { .. } => hkdf.derive(
                &self.header[10..NATIVE_HEADER_LEN],
                key.expose_secret(),
                &[NATIVE_KEY_LABEL, self.header(), aad],
                &mut out,
            ),
            Format::Tink { .. } => hkdf.derive(
                &self.header[1..1 + SALT_LEN],
                key.expose_secret(),
                &[aad],
                &mut out,
            ),
        };
        if result.is_ok() {
            okm = Key256::from_bytes(out);
        }
        zeroize::Zeroize::zeroize(&mut out);
        result.map_err(Error::Crypto)?;
        Ok(okm)
    }
}

/// A stream's layout together with its expanded segment key.
pub(crate) struct SegmentCipher {
    pub(crate) layout: Layout,
    key: Box<dyn AeadKey>,
}

impl SegmentCipher {
    pub(crate) fn new(
        layout: Layout,
        options: &Options,
        key: &Key256,
        aad: &[u8],
    ) -> Result<Self, Error> {
        let stream_key = layout.derive_key(options, key, aad)?;
        let key = options.provider.aes256_gcm.key(&stream_key);
        Ok(Self { layout, key })
    }

    /// Seals `plaintext` of segment `index` into `out`, which must be `plaintext.len() + 16`.
    pub(crate) fn seal_to(
        &self,
        index: u64,
        last: bool,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let (body, tag) = out.split_at_mut(plaintext.len());
        let t = self
            .key
            .seal_to(&self.layout.nonce(index, last), &[], plaintext, body)
            .map_err(Error::Crypto)?;
        tag.copy_from_slice(t.as_bytes());
        Ok(())
    }

    /// Seals `segment[..len - 16]` in place and writes the tag into the last 16 bytes.
    pub(crate) fn seal_in_place(
        &self,
        index: u64,
        last: bool,
        segment: &mut [u8],
    ) -> Result<(), Error> {
        let split = segment.len() - TAG_LEN;
        let (body, tag) = segment.split_at_mut(split);
        tag.copy_from_slice(self.seal_detached(index, last, body)?.as_bytes());
        Ok(())
    }

    /// Seals the plaintext `body` of segment `index` in place and returns its tag.
    pub(crate) fn seal_detached(
        &self,
        index: u64,
        last: bool,
        body: &mut [u8],
    ) -> Result<Tag, Error> {
        self.key
            .seal_in_place(&self.layout.nonce(index, last), &[], body)
            .map_err(Error::Crypto)
    }

    /// Opens segment `index` into `out` (`segment.len() - 16` bytes). Nothing is written to
    /// `out` unless the tag verifies.
    pub(crate) fn open_to(
        &self,
        index: u64,
        last: bool,
        segment: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let split = segment.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        let (body, tag) = segment.split_at(split);
        match self.key.open_to(
            &self.layout.nonce(index, last),
            &[],
            body,
            &tag_of(tag),
            out,
        ) {
            Ok(()) => Ok(()),
            Err(atrest_crypto::Error::Authentication) => {
                Err(self.classify_failure(index, last, segment))
            }
            Err(other) => Err(Error::Crypto(other)),
        }
    }

    /// A segment failed to open as `last`. If it opens with the other flag, the data is
    /// authentic but the stream ends in the wrong place: a non-final segment at the end means
    /// truncation, a final segment followed by more data means trailing data. Anything else
    /// is an authentication failure. Runs only on the error path; the trial plaintext is
    /// wiped at once.
    fn classify_failure(&self, index: u64, last: bool, segment: &[u8]) -> Error {
        if last && !self.layout.has_successor(index) {
            return Error::Authentication;
        }
        let Some(split) = segment.len().checked_sub(TAG_LEN) else {
            return Error::Authentication;
        };
        let mut trial = Zeroizing::new(segment[..split].to_vec());
        let tag = tag_of(&segment[split..]);
        let opened =
            self.key
                .open_in_place(&self.layout.nonce(index, !last), &[], &mut trial, &tag);
        match opened {
            Ok(()) if last => Error::Truncated,
            Ok(()) => Error::TrailingData,
            Err(_) => Error::Authentication,
        }
    }
}

fn tag_of(bytes: &[u8]) -> Tag {
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(bytes);
    Tag::from_bytes(tag)
}
