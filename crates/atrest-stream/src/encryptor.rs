//! The streaming writer.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use atrest_crypto::{Key256, TAG_LEN};
use zeroize::Zeroizing;

use crate::batch_writer::BatchWriter;
use crate::layout::{Layout, SegmentCipher};
use crate::parallel::Parallelism;
use crate::{Error, MisuseError, Options};

/// The read buffer of [`Encryptor::copy_from`]: 1 MiB, sixteen 64 KiB segments, so that all
/// but one of them are sealed where they were read.
pub const COPY_CHUNK: usize = 1 << 20;

/// Encrypts everything written to it into a stream on `W`.
///
/// The header is written when the encryptor is created; each segment is sealed and written as
/// soon as the encryptor knows it is not the last one; the final segment is written by
/// [`Encryptor::finish`].
///
/// **[`Encryptor::finish`] MUST be called.** Dropping an encryptor without it leaves a stream
/// with no final segment, which every reader rejects as [`Error::Truncated`]: data is never
/// silently cut short, but it is lost unless you finish.
///
/// Memory: one segment of buffer, whatever the stream length; with `n > 1` workers
/// ([`Options::threads`]), a ring of `2 × n` segments (at least 256 KiB; see the crate docs,
/// "Parallelism").
///
/// ```
/// use std::io::Write;
/// use atrest_stream::{Decryptor, Encryptor, Key256};
///
/// let key = Key256::from_bytes([7; 32]);
/// let mut encryptor = Encryptor::new(Vec::new(), &key, b"attachment 17")?;
/// encryptor.write_all(b"customer data")?;
/// let ciphertext = encryptor.finish()?;
///
/// let mut plaintext = Vec::new();
/// std::io::Read::read_to_end(
///     &mut Decryptor::new(&ciphertext[..], &key, b"attachment 17")?,
///     &mut plaintext,
/// )?;
/// assert_eq!(plaintext, b"customer data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encryptor<W: Write> {
    inner: W,
    /// Shared with the parallel engine's pool helpers.
    cipher: Arc<SegmentCipher>,
    /// One segment of plaintext being filled, with room for its tag. Zeroized on drop.
    buf: Zeroizing<Vec<u8>>,
    filled: usize,
    index: u64,
    poisoned: bool,
    /// The parallel engine, when more than one worker is configured.
    batch: Option<BatchWriter>,
}

impl<W: Write> Encryptor<W> {
    /// Starts an atrest STREAM v1 stream with default [`Options`] (64 KiB segments).
    ///
    /// `aad` (associated data, e.g. tenant and object id) is authenticated but not stored:
    /// the reader must supply the same bytes.
    ///
    /// # Errors
    /// [`Error::Io`] if writing the header fails, [`Error::Crypto`] if the random source does.
    pub fn new(inner: W, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default())
    }

    /// Starts a stream with the given options.
    ///
    /// # Errors
    /// As [`Encryptor::new`].
    pub fn with_options(
        mut inner: W,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let layout = Layout::generate(options)?;
        let cipher = Arc::new(SegmentCipher::new(layout, options, key, aad)?);
        inner.write_all(cipher.layout.header())?;
        let par = Parallelism::of(options);
        let batch = (!par.is_sequential()).then(|| BatchWriter::new(par, &cipher));
        let buf = Zeroizing::new(match batch {
            Some(_) => Vec::new(),
            None => vec![0u8; cipher.layout.max_segment_pt_len() + TAG_LEN],
        });
        Ok(Self {
            inner,
            cipher,
            buf,
            filled: 0,
            index: 0,
            poisoned: false,
            batch,
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// Seals the buffered data as the final segment, writes it, flushes and returns the
    /// inner writer. Until this returns `Ok`, the stream is not complete.
    ///
    /// # Errors
    /// [`Error::Io`] if writing fails, [`MisuseError::Poisoned`] if an earlier write failed
    /// (the stream is then unusable and must be discarded).
    pub fn finish(mut self) -> Result<W, Error> {
        if self.poisoned {
            return Err(MisuseError::Poisoned.into());
        }
        if let Some(batch) = &mut self.batch {
            batch.finish(&mut self.inner, &mut self.poisoned)?;
        } else {
            let len = self.filled + TAG_LEN;
            self.cipher
                .seal_in_place(self.index, true, &mut self.buf[..len])?;
            self.inner.write_all(&self.buf[..len])?;
        }
        self.inner.flush()?;
        // Move the writer out; the buffer is zeroized when `self` drops.
        let Self { inner, .. } = self;
        Ok(inner)
    }

    /// Encrypts `data` as [`Write::write_all`] would, but seals each full segment in place
    /// in `data` itself instead of copying it into the encryptor's buffer, then writes it
    /// and its tag to the inner writer: for a caller who owns its buffer (a chunk of an
    /// upload, a block read from a file) this is streaming encryption without the plaintext
    /// copy that `write` must make (ring, for one, seals only in place). The stream's bytes
    /// are the same as with `write_all`, and calls may be mixed with `write`.
    ///
    /// Only segments that more data follows are sealed in place: the tail of `data` (a
    /// partial segment, or a full one that may be the last) is copied into the buffer and
    /// waits for the next write or [`Encryptor::finish`], as with `write`. So larger
    /// `data` gains more: one call per segment gains nothing.
    ///
    /// **On return, `data` holds unspecified bytes**: ciphertext where segments were sealed
    /// in place, plaintext elsewhere. With `n > 1` workers ([`Options::threads`]) this is
    /// `write_all`: the workers copy their segments, which on two or more cores costs less
    /// than it saves, and `data` is left as it was.
    ///
    /// Each segment sealed in place reaches the inner writer as one `write_vectored` of the
    /// segment and its tag (a [`std::io::BufWriter`] or a `Vec` takes both at once).
    ///
    /// ```
    /// use atrest_stream::{Key256, Options};
    ///
    /// let key = Key256::from_bytes([7; 32]);
    /// let mut encryptor = Options::default().encryptor(Vec::new(), &key, b"upload 9")?;
    /// let mut chunk = vec![0x5a; 1 << 20]; // a block the caller owns and will not reuse
    /// encryptor.write_in_place(&mut chunk)?;
    /// let stream = encryptor.finish()?;
    /// assert_eq!(Options::default().open(&key, b"upload 9", &stream)?, vec![0x5a; 1 << 20]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As `write_all`: [`Error::Io`] if writing fails (the stream is then poisoned),
    /// [`MisuseError::Poisoned`] after an earlier failure, [`MisuseError::StreamTooLong`]
    /// past the segment counter's limit. After an error an unknown prefix of `data` may
    /// have been accepted; discard the stream.
    pub fn write_in_place(&mut self, data: &mut [u8]) -> Result<(), Error> {
        if self.poisoned {
            return Err(MisuseError::Poisoned.into());
        }
        if self.batch.is_some() {
            return self.write_inner(data).map(|_| ()).map_err(|(_, err)| err);
        }
        let mut data = data;
        while !data.is_empty() {
            match self.next_step(data.len()) {
                Step::SealBuffered => self.seal_buffered()?,
                Step::Direct(len) => {
                    let (segment, rest) = std::mem::take(&mut data).split_at_mut(len);
                    self.seal_in_callers(segment)?;
                    data = rest;
                }
                Step::Buffer(n) => {
                    let (head, rest) = std::mem::take(&mut data).split_at_mut(n);
                    self.buffer(head);
                    data = rest;
                }
            }
        }
        Ok(())
    }

    /// Encrypts everything `reader` yields until end of file, as `io::copy(reader, self)`
    /// would, but through a read buffer of its own that it seals in place
    /// ([`Encryptor::write_in_place`]): the fastest way to encrypt a file or socket. Returns
    /// the number of plaintext bytes read. Call [`Encryptor::finish`] afterwards.
    ///
    /// With `n > 1` workers ([`Options::threads`]) each segment's plaintext is handed to the
    /// workers' ring as it would be by `write` (the ring keeps them busy across reads).
    ///
    /// The buffer holds [`COPY_CHUNK`] bytes (1 MiB), or two segments if that is more, is
    /// page-aligned (the kernel's copy into a buffer 16 bytes off a page boundary runs at a
    /// fraction of its speed on some CPUs; docs/PERFORMANCE.md, thirteenth run), and is
    /// zeroized when the call returns.
    ///
    /// ```
    /// use atrest_stream::{Key256, Options};
    ///
    /// let key = Key256::from_bytes([7; 32]);
    /// let file: &[u8] = &[0x5a; 300_000]; // any `Read`: a `File`, a socket, stdin
    /// let mut encryptor = Options::default().encryptor(Vec::new(), &key, b"report.pdf")?;
    /// assert_eq!(encryptor.copy_from(&mut &file[..])?, 300_000);
    /// let stream = encryptor.finish()?;
    /// assert_eq!(Options::default().open(&key, b"report.pdf", &stream)?, file);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails (what was read before it has been accepted; the
    /// stream may go on) and as [`Encryptor::write_in_place`].
    pub fn copy_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> Result<u64, Error> {
        const PAGE: usize = 4096;
        if self.poisoned {
            return Err(MisuseError::Poisoned.into());
        }
        let segment = self.cipher.layout.max_segment_pt_len();
        let len = COPY_CHUNK.max(2 * segment);
        let mut storage = Zeroizing::new(vec![0u8; len + PAGE]);
        let start = storage.as_ptr().align_offset(PAGE).min(PAGE);
        let buf = &mut storage[start..start + len];
        let mut total = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Error::from_io(err)),
            };
            let filled = buf.get_mut(..n).ok_or_else(|| {
                Error::Io(io::Error::other(
                    "the reader returned more bytes than asked for",
                ))
            })?;
            if self.batch.is_some() {
                // Workers: one segment at a time through the ring, which keeps them busy
                // across reads; a larger write would wait for the ring to drain first
                // (`peers/atrest_ring_1m_writes_2_threads` against `..._8k_writes_...`).
                for piece in filled.chunks(segment) {
                    self.write_inner(piece).map_err(|(_, err)| err)?;
                }
            } else {
                self.write_in_place(filled)?;
            }
            total += n as u64;
        }
    }

    /// Seals a full non-final segment in place in the caller's buffer and writes it and its
    /// tag.
    fn seal_in_callers(&mut self, segment: &mut [u8]) -> Result<(), Error> {
        if !self.cipher.layout.has_successor(self.index) {
            return Err(MisuseError::StreamTooLong.into());
        }
        let tag = self.cipher.seal_detached(self.index, false, segment)?;
        let mut parts = [IoSlice::new(segment), IoSlice::new(tag.as_bytes())];
        let written = write_all_vectored(&mut self.inner, &mut parts);
        self.poison_on(written)?;
        self.index += 1;
        Ok(())
    }

    /// Writes the buffered full segment as a non-final segment.
    fn seal_buffered(&mut self) -> Result<(), Error> {
        if !self.cipher.layout.has_successor(self.index) {
            return Err(MisuseError::StreamTooLong.into());
        }
        let len = self.filled + TAG_LEN;
        self.cipher
            .seal_in_place(self.index, false, &mut self.buf[..len])?;
        self.poison_on_error(len)?;
        self.index += 1;
        self.filled = 0;
        Ok(())
    }

    /// Seals a full non-final segment straight from the caller's slice (no plaintext copy).
    fn seal_direct(&mut self, plaintext: &[u8]) -> Result<(), Error> {
        if !self.cipher.layout.has_successor(self.index) {
            return Err(MisuseError::StreamTooLong.into());
        }
        let len = plaintext.len() + TAG_LEN;
        self.cipher
            .seal_to(self.index, false, plaintext, &mut self.buf[..len])?;
        self.poison_on_error(len)?;
        self.index += 1;
        Ok(())
    }

    fn poison_on_error(&mut self, len: usize) -> Result<(), Error> {
        let written = self.inner.write_all(&self.buf[..len]);
        self.poison_on(written)
    }

    /// Poisons the stream if writing a segment failed: part of it may have reached the
    /// writer, so the stream cannot continue.
    fn poison_on(&mut self, written: io::Result<()>) -> Result<(), Error> {
        written.map_err(|err| {
            self.poisoned = true;
            err.into()
        })
    }

    /// What the sequential path does next with `remaining` bytes of input: seal the full
    /// buffer (more data follows it, so it is not the last segment), seal a full segment
    /// straight from the input (nothing buffered, more data after it, room in the counter),
    /// or buffer what fits.
    fn next_step(&self, remaining: usize) -> Step {
        let capacity = self.cipher.layout.segment_pt_len(self.index);
        if self.filled == capacity {
            Step::SealBuffered
        } else if self.filled == 0
            && remaining > capacity
            && self.cipher.layout.has_successor(self.index)
        {
            Step::Direct(capacity)
        } else {
            Step::Buffer((capacity - self.filled).min(remaining))
        }
    }

    /// Appends `head` (no more than the buffer's free room) to the buffered segment.
    fn buffer(&mut self, head: &[u8]) {
        self.buf[self.filled..self.filled + head.len()].copy_from_slice(head);
        self.filled += head.len();
    }

    fn write_inner(&mut self, mut data: &[u8]) -> Result<usize, (usize, Error)> {
        if let Some(batch) = &mut self.batch {
            return batch.write(&mut self.inner, &self.cipher, &mut self.poisoned, data);
        }
        let total = data.len();
        while !data.is_empty() {
            let consumed = total - data.len();
            match self.next_step(data.len()) {
                Step::SealBuffered => self.seal_buffered().map_err(|e| (consumed, e))?,
                Step::Direct(len) => {
                    let (segment, rest) = data.split_at(len);
                    self.seal_direct(segment).map_err(|e| (consumed, e))?;
                    data = rest;
                }
                Step::Buffer(n) => {
                    let (head, rest) = data.split_at(n);
                    self.buffer(head);
                    data = rest;
                }
            }
        }
        Ok(total)
    }
}

/// The sequential path's next move ([`Encryptor::next_step`]).
enum Step {
    SealBuffered,
    /// Seal this many bytes from the input's front as a full segment.
    Direct(usize),
    /// Buffer this many bytes from the input's front.
    Buffer(usize),
}

/// `write_all` over `parts` with `write_vectored` (`Write::write_all_vectored` is unstable).
fn write_all_vectored(w: &mut impl Write, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match w.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

impl<W: Write> Write for Encryptor<W> {
    /// Accepts plaintext. Full segments are sealed and written as soon as more data follows
    /// them; the rest waits in the buffer for the next write or [`Encryptor::finish`].
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(Error::from(MisuseError::Poisoned).into());
        }
        match self.write_inner(data) {
            Ok(n) => Ok(n),
            // Report what was accepted before the error; the next call reports the error.
            Err((consumed, _)) if consumed > 0 && !self.poisoned => Ok(consumed),
            Err((_, err)) => Err(err.into()),
        }
    }

    /// Flushes the inner writer. Buffered plaintext of the current segment stays buffered:
    /// a segment can only be sealed once it is known whether it is the last.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
