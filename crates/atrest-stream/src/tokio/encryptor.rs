//! The async streaming writer.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::tokio::io::AsyncWrite;
use ::tokio::task::JoinHandle;
use atrest_crypto::{Key256, TAG_LEN};
use zeroize::Zeroizing;

use super::{Offloaded, join_error, offload};
use crate::layout::{Layout, SegmentCipher};
use crate::{Error, MisuseError, Options};

type Sealed = (Zeroizing<Vec<u8>>, Result<(), Error>);

/// Encrypts everything written to it into a stream on `W`: the async [`crate::Encryptor`].
///
/// **`shutdown` (or [`AsyncEncryptor::finish`]) MUST be called.** It seals and writes the
/// final segment; an encryptor dropped without it leaves a stream that every reader rejects
/// as [`Error::Truncated`].
///
/// Memory: one segment of buffer. Segments above [`super::BLOCKING_THRESHOLD`] are sealed on
/// tokio's blocking pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use atrest_stream::Key256;
/// use atrest_stream::tokio::{AsyncDecryptor, AsyncEncryptor};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let key = Key256::from_bytes([7; 32]);
/// let mut encryptor = AsyncEncryptor::new(Vec::new(), &key, b"attachment 17")?;
/// encryptor.write_all(b"customer data").await?;
/// let ciphertext = encryptor.finish().await?;
///
/// let mut decryptor = AsyncDecryptor::new(&ciphertext[..], &key, b"attachment 17").await?;
/// let mut plaintext = Vec::new();
/// decryptor.read_to_end(&mut plaintext).await?;
/// assert_eq!(plaintext, b"customer data");
/// # Ok(())
/// # }
/// ```
pub struct AsyncEncryptor<W: AsyncWrite + Unpin> {
    inner: W,
    cipher: Arc<SegmentCipher>,
    /// One segment of plaintext with room for its tag; `None` while on the blocking pool.
    buf: Option<Zeroizing<Vec<u8>>>,
    filled: usize,
    index: u64,
    state: State,
}

enum State {
    /// Writing the header; `usize` bytes of it are out.
    Header(usize),
    /// Accepting plaintext into `buf`.
    Open,
    /// A segment is being sealed on the blocking pool.
    Sealing {
        task: JoinHandle<Sealed>,
        len: usize,
        last: bool,
    },
    /// `buf[written..len]` of a sealed segment remains to be written.
    Writing {
        written: usize,
        len: usize,
        last: bool,
    },
    /// The final segment is written.
    Finished,
    /// An earlier error left the stream unusable.
    Poisoned,
}

impl<W: AsyncWrite + Unpin> AsyncEncryptor<W> {
    /// Starts an atrest STREAM v1 stream with default [`Options`]. Nothing is written until
    /// the first write (or shutdown).
    ///
    /// # Errors
    /// [`Error::Crypto`] if the random source fails.
    pub fn new(inner: W, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default())
    }

    /// Starts a stream with the given options.
    ///
    /// # Errors
    /// As [`AsyncEncryptor::new`].
    pub fn with_options(
        inner: W,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let layout = Layout::generate(options)?;
        let cipher = SegmentCipher::new(layout, options, key, aad)?;
        let buf = Zeroizing::new(vec![0u8; cipher.layout.max_segment_pt_len() + TAG_LEN]);
        Ok(Self {
            inner,
            cipher: Arc::new(cipher),
            buf: Some(buf),
            filled: 0,
            index: 0,
            state: State::Header(0),
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// Seals the buffered data as the final segment, writes it, flushes (without shutting
    /// the writer down) and returns the inner writer.
    ///
    /// # Errors
    /// [`Error::Io`] if writing fails, [`MisuseError::Poisoned`] if an earlier write failed.
    pub async fn finish(mut self) -> Result<W, Error> {
        std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        let Self { inner, .. } = self;
        Ok(inner)
    }

    /// Drives header, sealing and writing until the encryptor accepts data again (or has
    /// written its final segment).
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let result = ready!(self.poll_drive_inner(cx));
        if result.is_err() {
            self.state = State::Poisoned;
        }
        Poll::Ready(result)
    }

    fn poll_drive_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match &mut self.state {
                State::Open | State::Finished => return Poll::Ready(Ok(())),
                State::Poisoned => return Poll::Ready(Err(MisuseError::Poisoned.into())),
                State::Header(written) => {
                    let header = self.cipher.layout.header();
                    if *written == header.len() {
                        self.state = State::Open;
                        continue;
                    }
                    let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &header[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    *written += n;
                }
                State::Sealing { task, len, last } => {
                    let (buf, sealed) = ready!(Pin::new(task).poll(cx)).map_err(join_error)?;
                    self.buf = Some(buf);
                    sealed?;
                    self.state = State::Writing {
                        written: 0,
                        len: *len,
                        last: *last,
                    };
                }
                State::Writing { written, len, last } => {
                    if *written == *len {
                        if *last {
                            self.state = State::Finished;
                        } else {
                            self.index += 1;
                            self.filled = 0;
                            self.state = State::Open;
                        }
                        continue;
                    }
                    let Some(buf) = &self.buf else {
                        return Poll::Ready(Err(MisuseError::Poisoned.into()));
                    };
                    let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[*written..*len]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    *written += n;
                }
            }
        }
    }

    /// Seals the buffered segment, inline or on the blocking pool; the state moves on to
    /// writing it.
    fn start_seal(&mut self, last: bool) -> Result<(), Error> {
        if !last && !self.cipher.layout.has_successor(self.index) {
            // Not poisoning: what was accepted can still be finished.
            return Err(MisuseError::StreamTooLong.into());
        }
        let Some(mut buf) = self.buf.take() else {
            return Err(MisuseError::Poisoned.into());
        };
        let len = self.filled + TAG_LEN;
        let (cipher, index) = (Arc::clone(&self.cipher), self.index);
        let work = move || {
            let sealed = cipher.seal_in_place(index, last, &mut buf[..len]);
            (buf, sealed)
        };
        match offload(self.filled, work) {
            Offloaded::Done((buf, sealed)) => {
                self.buf = Some(buf);
                if let Err(err) = sealed {
                    self.state = State::Poisoned;
                    return Err(err);
                }
                self.state = State::Writing {
                    written: 0,
                    len,
                    last,
                };
            }
            Offloaded::Running(task) => self.state = State::Sealing { task, len, last },
        }
        Ok(())
    }

    /// Seals and writes the final segment, then flushes.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            ready!(self.poll_drive(cx))?;
            match self.state {
                State::Finished => {
                    return Pin::new(&mut self.inner)
                        .poll_flush(cx)
                        .map_err(Error::from);
                }
                _ => self.start_seal(true)?,
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEncryptor<W> {
    /// Accepts plaintext into the current segment; a full segment is sealed and written as
    /// soon as more data follows it.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_drive(cx))?;
            if matches!(this.state, State::Finished) {
                return Poll::Ready(Err(Error::from(MisuseError::Poisoned).into()));
            }
            if data.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let capacity = this.cipher.layout.segment_pt_len(this.index);
            if this.filled == capacity {
                this.start_seal(false)?;
                continue;
            }
            let Some(buf) = &mut this.buf else {
                return Poll::Ready(Err(Error::from(MisuseError::Poisoned).into()));
            };
            let n = (capacity - this.filled).min(data.len());
            buf[this.filled..this.filled + n].copy_from_slice(&data[..n]);
            this.filled += n;
            return Poll::Ready(Ok(n));
        }
    }

    /// Writes out any sealed segment and flushes the inner writer. The current segment stays
    /// buffered: it can only be sealed once it is known whether it is the last.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drive(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Seals and writes the final segment, flushes, and shuts the inner writer down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
