//! The sequential streaming reader.

use std::io::{self, Read};
use std::sync::Arc;

use atrest_crypto::{Key256, TAG_LEN};
use zeroize::{Zeroize, Zeroizing};

use crate::batch_reader::BatchReader;
use crate::layout::{Layout, SegmentCipher};
use crate::parallel::Parallelism;
use crate::{Error, MisuseError, Options};

/// Decrypts a stream read from `R`, returning only plaintext whose segment authenticated.
///
/// Detects every way a stream can be damaged: modified, reordered, duplicated or spliced
/// segments ([`Error::Authentication`]), a missing final segment ([`Error::Truncated`]) and
/// bytes after the final segment ([`Error::TrailingData`]). `read` returns `Ok(0)` only after
/// the final segment authenticated, so end of file always means the whole stream was read.
/// `Read` errors are `io::Error`s of kind `InvalidData` wrapping [`Error`]
/// (recover it with [`Error::from_io`]).
///
/// Memory: one ciphertext segment, grown as ciphertext actually arrives (never straight to the
/// size a header announces), plus one plaintext segment if the caller reads in pieces smaller
/// than a segment. With `n > 1` workers ([`Options::threads`]): a ring of `2 × n` segments
/// (at least 256 KiB) of ciphertext and one of plaintext (see the crate docs, "Parallelism").
pub struct Decryptor<R: Read> {
    inner: R,
    /// Shared with the parallel engine's pool helpers.
    cipher: Arc<SegmentCipher>,
    /// One ciphertext segment plus one byte of lookahead (grown as data arrives).
    buf: Zeroizing<Vec<u8>>,
    /// Byte read past the current segment (proof that another segment follows).
    lookahead: Option<u8>,
    index: u64,
    /// Plaintext of the current segment when the caller reads less than a segment at a time.
    plain: Zeroizing<Vec<u8>>,
    /// Decrypted plaintext waiting in `plain[pending.0..pending.1]`.
    pending: (usize, usize),
    state: State,
    /// The parallel engine, when more than one worker is configured.
    batch: Option<BatchReader>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Reading,
    Done,
    Failed(Sticky),
}

/// The error to report again after a failure, so a failed stream never resumes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sticky {
    Authentication,
    Truncated,
    TrailingData,
    Poisoned,
}

impl Sticky {
    pub(crate) fn of(err: &Error) -> Self {
        match err {
            Error::Authentication => Sticky::Authentication,
            Error::Truncated => Sticky::Truncated,
            Error::TrailingData => Sticky::TrailingData,
            _ => Sticky::Poisoned,
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Sticky::Authentication => Error::Authentication,
            Sticky::Truncated => Error::Truncated,
            Sticky::TrailingData => Error::TrailingData,
            Sticky::Poisoned => MisuseError::Poisoned.into(),
        }
    }
}

/// First allocation of the segment buffer; it grows to one segment as data arrives.
const INITIAL_BUFFER: usize = 64 << 10;

impl<R: Read> Decryptor<R> {
    /// Reads and validates the header of an atrest STREAM v1 stream.
    ///
    /// # Errors
    /// [`Error::Header`] for a malformed header, [`Error::Truncated`] if the input ends inside
    /// it, [`Error::Io`] if reading fails.
    pub fn new(inner: R, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default())
    }

    /// Like [`Decryptor::new`], for the format and limits in `options`.
    ///
    /// # Errors
    /// As [`Decryptor::new`].
    pub fn with_options(
        mut inner: R,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let layout = read_layout(&mut inner, options)?;
        let cipher = Arc::new(SegmentCipher::new(layout, options, key, aad)?);
        let par = Parallelism::of(options);
        let batch = (!par.is_sequential()).then(|| BatchReader::new(par, &cipher));
        Ok(Self {
            inner,
            cipher,
            buf: Zeroizing::new(Vec::new()),
            plain: Zeroizing::new(Vec::new()),
            lookahead: None,
            index: 0,
            pending: (0, 0),
            state: State::Reading,
            batch,
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// Returns the inner reader. Only meaningful after `read` returned `Ok(0)`.
    pub fn into_inner(self) -> R {
        let Self { inner, .. } = self;
        inner
    }

    /// Reads the next segment's ciphertext into `buf`; returns its length and whether it is
    /// the final segment (nothing follows it).
    fn fill(&mut self) -> Result<(usize, bool), Error> {
        let full = self.cipher.layout.segment_pt_len(self.index) + TAG_LEN;
        read_segment(&mut self.inner, &mut self.buf, &mut self.lookahead, full)
    }

    /// Decrypts the next segment, into `out` directly when it fits there (returning
    /// `Some(bytes written)`), else into the internal buffer (returning `None`).
    fn next_segment(&mut self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        let (len, last) = self.fill()?;
        let pt_len = len - TAG_LEN;
        let index = self.index;
        if out.len() >= pt_len {
            self.cipher
                .open_to(index, last, &self.buf[..len], &mut out[..pt_len])?;
        } else {
            // The caller reads in small pieces: decrypt into our own plaintext buffer. The
            // ciphertext stays intact in `buf`, whichever provider is in use.
            if self.plain.len() < pt_len {
                // Replacing (not resizing) zeroizes the old buffer as it drops.
                self.plain = Zeroizing::new(vec![0u8; pt_len]);
            }
            self.cipher
                .open_to(index, last, &self.buf[..len], &mut self.plain[..pt_len])?;
            self.pending = (0, pt_len);
        }
        if last {
            self.state = State::Done;
        } else {
            // A non-final segment at the counter limit cannot be authentic; `fill` found more
            // data, and no writer produces a segment after this one.
            self.index = index.checked_add(1).ok_or(Error::Authentication)?;
        }
        Ok((out.len() >= pt_len).then_some(pt_len))
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        loop {
            let (start, end) = self.pending;
            if start < end {
                let n = (end - start).min(out.len());
                out[..n].copy_from_slice(&self.plain[start..start + n]);
                self.plain[start..start + n].zeroize();
                self.pending.0 += n;
                return Ok(n);
            }
            match self.state {
                State::Done => return Ok(0),
                State::Failed(sticky) => return Err(sticky.error()),
                State::Reading => {}
            }
            if out.is_empty() {
                return Ok(0);
            }
            if let Some(n) = self.next_segment(out)? {
                // `n == 0` only for an empty final segment: end of stream.
                return Ok(n);
            }
        }
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.batch {
            Some(batch) if self.state == State::Reading => {
                batch.read(&mut self.inner, &self.cipher, out)
            }
            _ => self.read_inner(out),
        };
        match result {
            Ok(n) => Ok(n),
            Err(err) => {
                if self.state != State::Done {
                    self.state = State::Failed(Sticky::of(&err));
                }
                Err(err.into())
            }
        }
    }
}

/// Reads a stream header in `options`' format from `reader` and parses it (no allocation:
/// the header is at most 42 bytes).
pub(crate) fn read_layout<R: Read + ?Sized>(
    reader: &mut R,
    options: &Options,
) -> Result<Layout, Error> {
    let mut header = [0u8; 64];
    let header = &mut header[..options.header_len()];
    let got = read_full(reader, header)?;
    Layout::parse(&header[..got], options)
}

/// Reads the next segment's ciphertext (`full` bytes unless it is the final one) into
/// `buf`, starting with the `lookahead` byte if there is one, plus one byte past it: a
/// segment is final only if nothing follows it. Returns its length and whether it is final;
/// the byte after a non-final segment becomes the new lookahead.
///
/// `buf` grows with the data actually received (at most doubling), never straight to the
/// segment size a header announced: a short stream that claims 16 MiB segments costs memory
/// in proportion to its length.
pub(crate) fn read_segment<R: Read + ?Sized>(
    inner: &mut R,
    buf: &mut Zeroizing<Vec<u8>>,
    lookahead: &mut Option<u8>,
    full: usize,
) -> Result<(usize, bool), Error> {
    let want = full + 1;
    if buf.is_empty() {
        *buf = Zeroizing::new(vec![0u8; want.min(INITIAL_BUFFER)]);
    }
    let mut have = 0;
    if let Some(byte) = lookahead.take() {
        buf[0] = byte;
        have = 1;
    }
    loop {
        let end = want.min(buf.len());
        have += read_full(inner, &mut buf[have..end])?;
        if have < end || end == want {
            break;
        }
        let grown = (buf.len() * 2).min(want);
        let mut bigger = Zeroizing::new(vec![0u8; grown]);
        bigger[..have].copy_from_slice(&buf[..have]);
        *buf = bigger;
    }
    if have == full + 1 {
        *lookahead = Some(buf[full]);
        Ok((full, false))
    } else if have < TAG_LEN {
        // Includes `have == 0`: the input ended where a segment had to be.
        Err(Error::Truncated)
    } else {
        Ok((have, true))
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut have = 0;
    while have < buf.len() {
        match reader.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(have)
}
