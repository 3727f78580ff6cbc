//! Random access: `Read + Seek` and positional reads over a stream in seekable storage.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use atrest_crypto::{Key256, TAG_LEN};
use zeroize::Zeroizing;

use crate::decryptor::{read_full, read_layout};
use crate::layout::{Geometry, Layout, SegmentCipher};
use crate::{Error, MisuseError, Options};

/// Decrypts any part of a stream stored in seekable storage, authenticating only the segments
/// it reads.
///
/// The stream starts at the reader's position when the decryptor is created (so it can sit
/// after other data in a file). Its length is taken from the storage, but never trusted: the
/// final segment is authenticated *as final* before the decryptor answers `SeekFrom::End` or
/// reports end of stream, so a stream truncated at a segment boundary is caught as
/// [`Error::Truncated`].
///
/// [`SeekableDecryptor::read_at`] takes `&self`: many threads may read different ranges at
/// once. The underlying reader is locked only while ciphertext is fetched; decryption runs in
/// parallel.
///
/// ```
/// use std::io::{Cursor, Read, Seek, SeekFrom};
/// use atrest_stream::{Key256, Options, SeekableDecryptor};
///
/// let key = Key256::from_bytes([9; 32]);
/// let plaintext: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
/// let sealed = Options::native(4096)?.seal(&key, b"", &plaintext)?;
///
/// let mut reader = SeekableDecryptor::new(Cursor::new(sealed), &key, b"")?;
/// reader.seek(SeekFrom::Start(50_000))?;
/// let mut buf = [0u8; 10];
/// reader.read_exact(&mut buf)?;
/// assert_eq!(&buf[..], &plaintext[50_000..50_010]);
///
/// let mut at = [0u8; 5];
/// assert_eq!(reader.read_at(99_995, &mut at)?, 5);
/// assert_eq!(&at[..], &plaintext[99_995..]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SeekableDecryptor<R: Read + Seek> {
    inner: Mutex<R>,
    cipher: SegmentCipher,
    geometry: Geometry,
    /// Reader position of the stream's first header byte.
    start: u64,
    /// Current plaintext position for `Read`/`Seek`.
    pos: u64,
    /// The most recently decrypted segment, for `Read` (plaintext: zeroized on drop).
    cache: Zeroizing<Vec<u8>>,
    /// Ciphertext of the segment being opened, reused between reads.
    ciphertext: Vec<u8>,
    cached: Option<(u64, usize)>,
    final_verified: AtomicBool,
}

impl<R: Read + Seek> SeekableDecryptor<R> {
    /// Opens an atrest STREAM v1 stream starting at the reader's current position.
    ///
    /// # Errors
    /// [`Error::Header`] for a malformed header, [`Error::Truncated`] if the stored length
    /// cannot be a stream's, [`Error::Io`] if the reader fails.
    pub fn new(inner: R, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default())
    }

    /// Like [`SeekableDecryptor::new`], for the format and limits in `options`.
    ///
    /// # Errors
    /// As [`SeekableDecryptor::new`].
    pub fn with_options(
        mut inner: R,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let start = inner.stream_position()?;
        let layout = read_layout(&mut inner, options)?;
        let end = inner.seek(SeekFrom::End(0))?;
        let geometry = layout.geometry(end.checked_sub(start).ok_or(Error::Truncated)?)?;
        let cipher = SegmentCipher::new(layout, options, key, aad)?;
        Ok(Self {
            inner: Mutex::new(inner),
            cipher,
            geometry,
            start,
            pos: 0,
            cache: Zeroizing::new(Vec::new()),
            ciphertext: Vec::new(),
            cached: None,
            final_verified: AtomicBool::new(false),
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// The plaintext length implied by the stored length. Not yet authenticated: use
    /// [`SeekableDecryptor::verified_len`] when the exact length matters.
    pub fn len_unverified(&self) -> u64 {
        self.geometry.plaintext_len
    }

    /// The plaintext length, after authenticating the final segment.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::Authentication`] if the final segment does not
    /// authenticate as final.
    pub fn verified_len(&self) -> Result<u64, Error> {
        self.verify_final()?;
        Ok(self.geometry.plaintext_len)
    }

    /// The byte range (relative to the stream's start) a ranged read must fetch to decrypt
    /// `plaintext`; see [`Layout::ciphertext_range`].
    ///
    /// # Errors
    /// [`MisuseError::RangeOutOfBounds`] if `plaintext` is not within the stream.
    pub fn ciphertext_range(&self, plaintext: Range<u64>) -> Result<Range<u64>, Error> {
        self.cipher
            .layout
            .ciphertext_range_in(&self.geometry, plaintext)
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        let Self { inner, .. } = self;
        inner
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads plaintext at `offset` into `out` without moving the `Read` position; returns the
    /// number of bytes read, which is less than `out.len()` only at the end of the stream.
    /// Safe to call from many threads at once.
    ///
    /// # Errors
    /// [`Error::Authentication`] if a segment fails, [`Error::Truncated`] if the stream was
    /// cut, [`Error::Io`] if the reader fails. Nothing unauthenticated is written to `out`.
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.geometry.plaintext_len;
        if out.is_empty() {
            return Ok(0);
        }
        if offset >= len {
            self.verify_final()?;
            return Ok(0);
        }
        let mut done = 0;
        let mut ciphertext = Vec::new();
        let mut plain = Zeroizing::new(Vec::new());
        let mut offset = offset;
        while done < out.len() && offset < len {
            let (index, within) = self.cipher.layout.locate(offset);
            let pt_len = self.segment_pt_len(index)?;
            let want = (pt_len - within).min(out.len() - done);
            if within == 0 && want == pt_len {
                // The whole segment is wanted: decrypt straight into the caller's buffer.
                self.open_segment(index, &mut ciphertext, &mut out[done..done + want])?;
            } else {
                ensure_len(&mut plain, pt_len);
                self.open_segment(index, &mut ciphertext, &mut plain[..pt_len])?;
                out[done..done + want].copy_from_slice(&plain[within..within + want]);
            }
            done += want;
            offset += want as u64;
        }
        Ok(done)
    }

    /// Plaintext length of segment `index` (which must exist).
    fn segment_pt_len(&self, index: u64) -> Result<usize, Error> {
        let (_, ct_len) = self.cipher.layout.segment_span(&self.geometry, index);
        ct_len.checked_sub(TAG_LEN).ok_or(Error::Truncated)
    }

    /// Fetches segment `index` into `ciphertext` and decrypts it into `out` (exactly its
    /// plaintext length). `out` is written only if the segment authenticates.
    fn open_segment(
        &self,
        index: u64,
        ciphertext: &mut Vec<u8>,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let (at, ct_len) = self.cipher.layout.segment_span(&self.geometry, index);
        if ciphertext.len() < ct_len {
            ciphertext.resize(ct_len, 0);
        }
        self.fetch(at, &mut ciphertext[..ct_len])?;
        let last = index + 1 == self.geometry.segments;
        self.cipher
            .open_to(index, last, &ciphertext[..ct_len], out)?;
        if last {
            self.final_verified.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Reads `buf.len()` ciphertext bytes at stream offset `at`.
    fn fetch(&self, at: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let position = self.start.checked_add(at).ok_or(MisuseError::InvalidSeek)?;
        inner.seek(SeekFrom::Start(position))?;
        if read_full(&mut *inner, buf)? != buf.len() {
            // The storage shrank since we measured it.
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Authenticates the final segment as final, once.
    fn verify_final(&self) -> Result<(), Error> {
        if self.final_verified.load(Ordering::Acquire) {
            return Ok(());
        }
        let index = self.geometry.segments - 1;
        let mut ciphertext = Vec::new();
        let mut plain = Zeroizing::new(Vec::new());
        if self.geometry.bad_tail() {
            // The stored end lies inside a tag. As a sequential reader would: the segment
            // before it decides between trailing data (it is a final segment) and truncation
            // (it is an authentic non-final one).
            if index > 0 {
                ensure_len(&mut plain, self.segment_pt_len(index - 1)?);
                self.open_segment(index - 1, &mut ciphertext, &mut plain)?;
            }
            return Err(Error::Truncated);
        }
        ensure_len(&mut plain, self.segment_pt_len(index)?);
        match self.open_segment(index, &mut ciphertext, &mut plain) {
            Err(Error::Authentication) if index > 0 => {
                // Is the segment before it a final segment followed by junk? A sequential
                // reader would say so; say the same.
                let mut before = Zeroizing::new(vec![0u8; self.segment_pt_len(index - 1)?]);
                Err(
                    match self.open_segment(index - 1, &mut ciphertext, &mut before) {
                        Ok(()) => Error::Authentication,
                        Err(err) => err,
                    },
                )
            }
            other => other,
        }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.geometry.plaintext_len {
            self.verify_final()?;
            return Ok(0);
        }
        let (index, within) = self.cipher.layout.locate(self.pos);
        let pt_len = match self.cached {
            Some((cached, len)) if cached == index => len,
            _ => {
                self.cached = None;
                let pt_len = self.segment_pt_len(index)?;
                let mut cache = std::mem::take(&mut self.cache);
                ensure_len(&mut cache, pt_len);
                let mut ciphertext = std::mem::take(&mut self.ciphertext);
                let opened = self.open_segment(index, &mut ciphertext, &mut cache[..pt_len]);
                self.cache = cache;
                self.ciphertext = ciphertext;
                opened?;
                self.cached = Some((index, pt_len));
                pt_len
            }
        };
        let n = (pt_len - within).min(out.len());
        out[..n].copy_from_slice(&self.cache[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Makes `buf` at least `len` bytes, replacing (and so zeroizing) a smaller one rather than
/// reallocating, which would free plaintext without wiping it.
fn ensure_len(buf: &mut Zeroizing<Vec<u8>>, len: usize) {
    if buf.len() < len {
        *buf = Zeroizing::new(vec![0u8; len]);
    }
}

impl<R: Read + Seek> Read for SeekableDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_inner(out).map_err(io::Error::from)
    }
}

impl<R: Read + Seek> Seek for SeekableDecryptor<R> {
    /// Moves the plaintext position. `SeekFrom::End` authenticates the final segment first,
    /// so the length it is relative to is the authentic one. Seeking past the end is allowed
    /// (reads there return end of stream, after the same check).
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
            SeekFrom::End(delta) => {
                self.verify_final().map_err(io::Error::from)?;
                self.geometry.plaintext_len.checked_add_signed(delta)
            }
        };
        let target =
            target.ok_or_else(|| io::Error::from(Error::from(MisuseError::InvalidSeek)))?;
        self.pos = target;
        Ok(target)
    }
}
