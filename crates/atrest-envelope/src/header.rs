//! The envelope header: encoding, parsing (caps first) and ranged-read geometry.
//!
//! ```text
//! header  = binding || u8(n) || wrapped_key * n || header_tag (32)
//! binding = magic (89 61 74 65) || version (01) || suite (01) || u32(segment_size)
//!           || blob_id (32) || u16(len(context)) || context || u64(wrap_scope)
//!           || commitment (32)
//! wrapped_key = u8(len(key_id)) || key_id || u32(version) || u16(len(wrapped)) || wrapped
//! ```
//!
//! docs/FORMAT.md ("atrest envelope v1") is the normative description.

use std::io::Read;
use std::ops::Range;

use crate::context::{Context, MAX_CONTEXT_LEN};
use crate::error::{Error, LimitExceeded, Malformed};
use crate::kek::{KeyId, WrapContext, WrappedKey};

/// The envelope magic: `0x89` then ASCII `ate` (the stream magic is `89 61 74 72`).
pub const MAGIC: [u8; 4] = [0x89, b'a', b't', b'e'];
/// The only envelope version.
pub const VERSION: u8 = 1;
/// Suite 1: 256-bit data key, HKDF-SHA256 derivations, body in atrest STREAM v1.
pub const SUITE: u8 = 1;
/// Length of the random blob id (also the HKDF salt of every derivation).
pub const BLOB_ID_LEN: usize = 32;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Length of the header tag.
pub const TAG_LEN: usize = 32;
/// The most wrapped keys a header holds.
pub const MAX_WRAPPED_KEYS: usize = 8;
/// The longest wrapped key (ciphertext from the key holder), in bytes.
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;
/// The longest possible header: every field at its cap (14 501 bytes).
pub const MAX_HEADER_LEN: usize = FIXED_LEN
    + MAX_CONTEXT_LEN
    + WRAP_SCOPE_LEN
    + COMMITMENT_LEN
    + 1
    + MAX_WRAPPED_KEYS * (1 + KeyId::MAX_LEN + 4 + 2 + MAX_WRAPPED_KEY_LEN)
    + TAG_LEN;

/// Magic, version, suite, segment size, blob id and context length.
const FIXED_LEN: usize = 4 + 1 + 1 + 4 + BLOB_ID_LEN + 2;
/// The wrap scope: a bit mask over the context entries bound to the data-key wraps.
const WRAP_SCOPE_LEN: usize = 8;
/// Size of the stream header at the start of every body.
pub(crate) const STREAM_HEADER_LEN: u64 = 42;

/// A parsed envelope header. Nothing in it is secret; nothing in it is authenticated until
/// a key holder opened it ([`crate::Opener`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) segment_size: u32,
    pub(crate) blob_id: [u8; BLOB_ID_LEN],
    pub(crate) context: Context,
    pub(crate) wrap_scope: u64,
    pub(crate) commitment: [u8; COMMITMENT_LEN],
    pub(crate) wrapped_keys: Vec<WrappedKey>,
    pub(crate) tag: [u8; TAG_LEN],
}

impl Header {
    /// Parses a complete header (detached form: exactly the header bytes).
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::Limit`]; [`Malformed::TrailingBytes`] if bytes follow
    /// the header.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let (header, used) = Self::parse_prefix(bytes)?;
        if used != bytes.len() {
            return Err(Malformed::TrailingBytes.into());
        }
        Ok(header)
    }

    /// Parses the header at the start of an attached object and returns it with the body.
    ///
    /// # Errors
    /// As [`Header::parse`], except that bytes after the header are the body.
    pub fn split_attached(object: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (header, used) = Self::parse_prefix(object)?;
        Ok((header, &object[used..]))
    }

    /// Reads exactly one header from `reader`, leaving it at the first body byte. Every length
    /// is checked against its cap before the bytes it announces are read, so at most
    /// [`MAX_HEADER_LEN`] bytes are ever buffered.
    ///
    /// # Errors
    /// As [`Header::parse`]; [`Malformed::Truncated`] if the reader ends inside the header,
    /// [`Error::Io`] if it fails.
    pub fn read_from<R: Read>(reader: R) -> Result<Self, Error> {
        parse(&mut ReadSource(reader))
    }

    fn parse_prefix(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let mut source = SliceSource { bytes, at: 0 };
        let header = parse(&mut source)?;
        Ok((header, source.at))
    }

    /// The header's bytes (canonical: `Header::parse(&h.to_bytes()) == h`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.bytes_before_tag(&self.context);
        out.extend_from_slice(&self.tag);
        out
    }

    /// The header's length in bytes (the body starts here in the attached form).
    pub fn len(&self) -> usize {
        self.binding_len()
            + 1
            + self
                .wrapped_keys
                .iter()
                .map(|w| 1 + w.key_id.as_str().len() + 4 + 2 + w.ciphertext.len())
                .sum::<usize>()
            + TAG_LEN
    }

    /// Always false: a header has at least its fixed fields.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Plaintext bytes per body segment.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// The blob's random 32-byte id (unique per blob; never changes on rewrap).
    pub fn blob_id(&self) -> &[u8; BLOB_ID_LEN] {
        &self.blob_id
    }

    /// The encryption context the blob was sealed with (as stored; unauthenticated until the
    /// header is opened). Entries kept out of the data-key wrap are marked as such
    /// ([`Context::is_bound_to_wrap`]).
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The key commitment.
    pub fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }

    /// The wrapped data keys, in header order (the first that unwraps is used).
    pub fn wrapped_keys(&self) -> &[WrappedKey] {
        &self.wrapped_keys
    }

    /// The byte range of the **body** (offsets from its first byte) that holds the segments
    /// needed to decrypt plaintext bytes `plaintext`, for a body of `body_len` bytes. The
    /// body's first 42 bytes (its stream header) are needed as well and are not included.
    ///
    /// # Errors
    /// [`Error::Body`] with [`atrest_stream::MisuseError::RangeOutOfBounds`] if the range is
    /// not within the plaintext, or [`atrest_stream::Error::Truncated`] if no body has that
    /// length.
    pub fn body_range(&self, plaintext: Range<u64>, body_len: u64) -> Result<Range<u64>, Error> {
        // The geometry depends only on the segment size: parse a stream header with a dummy
        // salt to get it, without needing the body's first bytes.
        let mut stream_header = [0u8; 42];
        stream_header[..6].copy_from_slice(&[0x89, b'a', b't', b'r', 1, 1]);
        stream_header[6..10].copy_from_slice(&self.segment_size.to_be_bytes());
        let options = atrest_stream::Options::default();
        let layout = atrest_stream::Layout::parse(&stream_header, &options)?;
        Ok(layout.ciphertext_range(plaintext, body_len)?)
    }

    /// As [`Header::body_range`], for the attached form: offsets from the object's first byte
    /// for an object of `object_len` bytes. Bytes `0..self.len() + 42` (this header and the
    /// body's stream header) are needed as well.
    ///
    /// # Errors
    /// As [`Header::body_range`]; [`atrest_stream::Error::Truncated`] if `object_len` is
    /// shorter than the header.
    pub fn attached_range(
        &self,
        plaintext: Range<u64>,
        object_len: u64,
    ) -> Result<Range<u64>, Error> {
        let header_len = self.len() as u64;
        let body_len = object_len
            .checked_sub(header_len)
            .ok_or(atrest_stream::Error::Truncated)?;
        let range = self.body_range(plaintext, body_len)?;
        Ok(range.start + header_len..range.end + header_len)
    }

    fn binding_len(&self) -> usize {
        FIXED_LEN + self.context.encoded_len() + WRAP_SCOPE_LEN + COMMITMENT_LEN
    }

    /// The immutable part, with `context` in place of the stored one: the wrap AAD and the
    /// body's associated data.
    pub(crate) fn binding(&self, context: &Context) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.binding_len() + 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE);
        out.extend_from_slice(&self.segment_size.to_be_bytes());
        out.extend_from_slice(&self.blob_id);
        let context_len = u16::try_from(context.encoded_len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&context_len.to_be_bytes());
        context.encode(&mut out);
        out.extend_from_slice(&self.wrap_scope.to_be_bytes());
        out.extend_from_slice(&self.commitment);
        out
    }

    /// What the data-key wraps are bound to: the entries of `context` selected by the
    /// header's wrap scope.
    pub(crate) fn wrap_context(&self, context: &Context) -> WrapContext {
        WrapContext::new(&context.scoped(self.wrap_scope))
    }

    /// Every byte before the header tag, with `context` in place of the stored one. (The tag
    /// covers only the binding: wrapped keys are authenticated by their own KEKs and checked
    /// against the key commitment, so a rewrap never needs the data key.)
    pub(crate) fn bytes_before_tag(&self, context: &Context) -> Vec<u8> {
        let mut out = self.binding(context);
        // Counts and lengths were checked when the header was parsed or built.
        out.push(u8::try_from(self.wrapped_keys.len()).unwrap_or(u8::MAX));
        for wrapped in &self.wrapped_keys {
            let id = wrapped.key_id.as_str().as_bytes();
            out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(id);
            out.extend_from_slice(&wrapped.version.to_be_bytes());
            let len = u16::try_from(wrapped.ciphertext.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&wrapped.ciphertext);
        }
        out
    }
}

/// Where header bytes come from: a slice (in memory) or a reader (attached stream).
trait Source {
    /// The next `n` bytes; `n` is always at most a field's cap.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, Error>;

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }
}

struct SliceSource<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Source for SliceSource<'_> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let end = self.at.checked_add(n).ok_or(Malformed::Truncated)?;
        let bytes = self.bytes.get(self.at..end).ok_or(Malformed::Truncated)?;
        self.at = end;
        Ok(bytes.to_vec())
    }
}

struct ReadSource<R>(R);

impl<R: Read> Source for ReadSource<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; n];
        let mut have = 0;
        while have < n {
            match self.0.read(&mut out[have..]) {
                Ok(0) => return Err(Malformed::Truncated.into()),
                Ok(got) => have += got,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(out)
    }
}

fn parse(source: &mut impl Source) -> Result<Header, Error> {
    let magic: [u8; 4] = source.array()?;
    if magic != MAGIC {
        return Err(Malformed::Magic.into());
    }
    let [version, suite] = source.array()?;
    if version != VERSION {
        return Err(Malformed::Version(version).into());
    }
    if suite != SUITE {
        return Err(Malformed::Suite(suite).into());
    }
    let segment_size = u32::from_be_bytes(source.array()?);
    if !(atrest_stream::MIN_SEGMENT_SIZE..=atrest_stream::MAX_SEGMENT_SIZE).contains(&segment_size)
    {
        return Err(Malformed::SegmentSize(segment_size).into());
    }
    let blob_id = source.array()?;
    let context_len = usize::from(u16::from_be_bytes(source.array()?));
    if context_len > MAX_CONTEXT_LEN {
        return Err(LimitExceeded::ContextLen {
            len: context_len,
            max: MAX_CONTEXT_LEN,
        }
        .into());
    }
    let context = Context::decode(&source.take(context_len)?)?;
    let wrap_scope = u64::from_be_bytes(source.array()?);
    // Bits past the last entry would make two encodings mean the same scope.
    if context.len() < 64 && wrap_scope >> context.len() != 0 {
        return Err(Malformed::WrapScope.into());
    }
    let context = context.with_scope(wrap_scope);
    let commitment = source.array()?;
    let [count] = source.array()?;
    let count = usize::from(count);
    if count == 0 {
        return Err(Malformed::NoWrappedKeys.into());
    }
    if count > MAX_WRAPPED_KEYS {
        return Err(LimitExceeded::WrappedKeys {
            count,
            max: MAX_WRAPPED_KEYS,
        }
        .into());
    }
    let mut wrapped_keys: Vec<WrappedKey> = Vec::with_capacity(count);
    for _ in 0..count {
        let [id_len] = source.array()?;
        let id = source.take(usize::from(id_len))?;
        let key_id = String::from_utf8(id)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or(Malformed::KeyId)?;
        let version = u32::from_be_bytes(source.array()?);
        let len = usize::from(u16::from_be_bytes(source.array()?));
        if len == 0 {
            return Err(Malformed::EmptyWrappedKey.into());
        }
        if len > MAX_WRAPPED_KEY_LEN {
            return Err(LimitExceeded::WrappedKeyLen {
                len,
                max: MAX_WRAPPED_KEY_LEN,
            }
            .into());
        }
        let ciphertext = source.take(len)?;
        if wrapped_keys
            .iter()
            .any(|w| w.key_id == key_id && w.version == version)
        {
            return Err(Malformed::DuplicateWrappedKey.into());
        }
        wrapped_keys.push(WrappedKey {
            key_id,
            version,
            ciphertext,
        });
    }
    let tag = source.array()?;
    Ok(Header {
        segment_size,
        blob_id,
        context,
        wrap_scope,
        commitment,
        wrapped_keys,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_header_len_is_what_the_caps_allow() {
        assert_eq!(MAX_HEADER_LEN, 14_501);
    }

    #[test]
    fn reader_and_slice_parsers_agree() {
        let header = Header {
            segment_size: 4096,
            blob_id: [7; 32],
            context: Context::new()
                .with("tenant", "acme")
                .and_then(|c| c.with("object", "o1"))
                .and_then(|c| c.exclude_from_wrap("object"))
                .expect("valid"),
            wrap_scope: 0b10,
            commitment: [8; 32],
            wrapped_keys: vec![WrappedKey {
                key_id: KeyId::new("k").expect("valid"),
                version: 3,
                ciphertext: vec![1, 2, 3],
            }],
            tag: [9; 32],
        };
        let mut bytes = header.to_bytes();
        assert_eq!(bytes.len(), header.len());
        assert_eq!(Header::parse(&bytes).expect("parses"), header);
        bytes.extend_from_slice(b"body");
        let mut reader = &bytes[..];
        assert_eq!(Header::read_from(&mut reader).expect("reads"), header);
        assert_eq!(reader, b"body");
        let (split, body) = Header::split_attached(&bytes).expect("splits");
        assert_eq!((split, body), (header.clone(), &b"body"[..]));
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::Malformed(Malformed::TrailingBytes))
        ));
        let parsed = Header::parse(&header.to_bytes()).expect("parses");
        assert!(parsed.context().is_bound_to_wrap(b"tenant"));
        assert!(!parsed.context().is_bound_to_wrap(b"object"));
        assert_eq!(parsed.context().wrap_scope(), 0b10);
    }

    #[test]
    fn wrap_scope_bits_past_the_context_are_rejected() {
        for scope in [0b100, 1 << 63] {
            let header = Header {
                segment_size: 4096,
                blob_id: [7; 32],
                context: Context::new()
                    .with("a", "1")
                    .and_then(|c| c.with("b", "2"))
                    .expect("valid"),
                wrap_scope: scope,
                commitment: [8; 32],
                wrapped_keys: vec![WrappedKey {
                    key_id: KeyId::new("k").expect("valid"),
                    version: 1,
                    ciphertext: vec![1],
                }],
                tag: [9; 32],
            };
            assert!(matches!(
                Header::parse(&header.to_bytes()),
                Err(Error::Malformed(Malformed::WrapScope))
            ));
        }
    }
}
