//! The async sequential reader.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use ::tokio::task::JoinHandle;
use atrest_crypto::{Key256, TAG_LEN};
use zeroize::{Zeroize, Zeroizing};

use super::{Offloaded, join_error, offload};
use crate::decryptor::Sticky;
use crate::layout::{Layout, SegmentCipher};
use crate::{Error, Options};

type Opened = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>, Result<(), Error>);

/// First allocation of the segment buffer; it grows to one segment as data arrives.
const INITIAL_BUFFER: usize = 64 << 10;

/// Decrypts a stream read from `R`, returning only plaintext whose segment authenticated: the
/// async [`crate::Decryptor`], with the same errors for the same bytes.
///
/// A read returns end of stream only after the final segment authenticated. Segments above
/// [`super::BLOCKING_THRESHOLD`] are opened on tokio's blocking pool.
pub struct AsyncDecryptor<R: AsyncRead + Unpin> {
    inner: R,
    cipher: Arc<SegmentCipher>,
    /// One ciphertext segment plus a byte of lookahead (grown as data arrives); `None` while
    /// on the blocking pool.
    ct: Option<Zeroizing<Vec<u8>>>,
    have: usize,
    lookahead: Option<u8>,
    /// Plaintext of the current segment; `None` while on the blocking pool.
    plain: Option<Zeroizing<Vec<u8>>>,
    pending: (usize, usize),
    index: u64,
    state: State,
}

enum State {
    Reading,
    Opening {
        task: JoinHandle<Opened>,
        pt_len: usize,
        last: bool,
    },
    Done,
    Failed(Sticky),
}

impl<R: AsyncRead + Unpin> AsyncDecryptor<R> {
    /// Reads and validates the header of an atrest STREAM v1 stream.
    ///
    /// # Errors
    /// [`Error::Header`] for a malformed header, [`Error::Truncated`] if the input ends inside
    /// it, [`Error::Io`] if reading fails.
    pub async fn new(inner: R, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default()).await
    }

    /// Like [`AsyncDecryptor::new`], for the format and limits in `options`.
    ///
    /// # Errors
    /// As [`AsyncDecryptor::new`].
    pub async fn with_options(
        mut inner: R,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let mut header = [0u8; 64];
        let header = &mut header[..options.header_len()];
        let got = read_full(&mut inner, header).await?;
        let layout = Layout::parse(&header[..got], options)?;
        let cipher = SegmentCipher::new(layout, options, key, aad)?;
        Ok(Self {
            inner,
            cipher: Arc::new(cipher),
            ct: Some(Zeroizing::new(Vec::new())),
            have: 0,
            lookahead: None,
            plain: Some(Zeroizing::new(Vec::new())),
            pending: (0, 0),
            index: 0,
            state: State::Reading,
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// Returns the inner reader. Only meaningful after a read returned end of stream.
    pub fn into_inner(self) -> R {
        let Self { inner, .. } = self;
        inner
    }

    /// Reads the next segment's ciphertext into `ct`; returns its length and whether it is
    /// the final segment, exactly as [`crate::Decryptor`] frames it.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(usize, bool), Error>> {
        let full = self.cipher.layout.segment_pt_len(self.index) + TAG_LEN;
        let want = full + 1;
        let Some(ct) = &mut self.ct else {
            return Poll::Ready(Err(crate::MisuseError::Poisoned.into()));
        };
        if ct.is_empty() {
            **ct = vec![0u8; want.min(INITIAL_BUFFER)];
        }
        if self.have == 0
            && let Some(byte) = self.lookahead.take()
        {
            ct[0] = byte;
            self.have = 1;
        }
        let mut this_poll = 0;
        loop {
            let end = want.min(ct.len());
            if self.have < end {
                if this_poll >= super::READ_PER_POLL {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let end = end.min(self.have + super::READ_PER_POLL);
                let mut window = ReadBuf::new(&mut ct[self.have..end]);
                ready!(Pin::new(&mut self.inner).poll_read(cx, &mut window))?;
                let n = window.filled().len();
                if n == 0 {
                    break;
                }
                self.have += n;
                this_poll += n;
                continue;
            }
            if end == want {
                break;
            }
            // Grow with the data actually received, never straight to the announced size.
            let grown = (ct.len() * 2).min(want);
            let mut bigger = Zeroizing::new(vec![0u8; grown]);
            bigger[..self.have].copy_from_slice(&ct[..self.have]);
            *ct = bigger;
        }
        let have = std::mem::take(&mut self.have);
        Poll::Ready(if have == want {
            self.lookahead = Some(ct[full]);
            Ok((full, false))
        } else if have < TAG_LEN {
            Err(Error::Truncated)
        } else {
            Ok((have, true))
        })
    }

    /// Finishes a segment that opened: its plaintext is pending, the position moves on.
    fn opened(&mut self, pt_len: usize, last: bool) -> Result<(), Error> {
        self.pending = (0, pt_len);
        if last {
            self.state = State::Done;
        } else {
            self.index = self.index.checked_add(1).ok_or(Error::Authentication)?;
            self.state = State::Reading;
        }
        Ok(())
    }

    fn poll_read_inner(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), Error>> {
        loop {
            let (start, end) = self.pending;
            if start < end {
                if let Some(plain) = &mut self.plain {
                    let n = (end - start).min(out.remaining());
                    out.put_slice(&plain[start..start + n]);
                    plain[start..start + n].zeroize();
                    self.pending.0 += n;
                }
                return Poll::Ready(Ok(()));
            }
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Failed(sticky) => return Poll::Ready(Err(sticky.error())),
                State::Opening { task, pt_len, last } => {
                    let (pt_len, last) = (*pt_len, *last);
                    let (ct, plain, opened) =
                        ready!(Pin::new(task).poll(cx)).map_err(join_error)?;
                    self.ct = Some(ct);
                    self.plain = Some(plain);
                    opened?;
                    self.opened(pt_len, last)?;
                }
                State::Reading => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let (len, last) = ready!(self.poll_fill(cx))?;
                    self.start_open(len, last, out)?;
                    if !matches!(self.state, State::Opening { .. }) && self.pending.1 == 0 {
                        // Opened straight into `out` (or an empty final segment).
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }

    /// Opens the segment in `ct[..len]`: inline into `out` when it fits, inline into `plain`,
    /// or on the blocking pool into `plain`.
    fn start_open(&mut self, len: usize, last: bool, out: &mut ReadBuf<'_>) -> Result<(), Error> {
        let pt_len = len - TAG_LEN;
        let (Some(ct), Some(mut plain)) = (self.ct.take(), self.plain.take()) else {
            return Err(crate::MisuseError::Poisoned.into());
        };
        if pt_len <= super::BLOCKING_THRESHOLD && out.remaining() >= pt_len {
            let opened = self.cipher.open_to(
                self.index,
                last,
                &ct[..len],
                out.initialize_unfilled_to(pt_len),
            );
            self.ct = Some(ct);
            self.plain = Some(plain);
            opened?;
            out.advance(pt_len);
            self.opened(0, last)?;
            self.pending = (0, 0);
            return Ok(());
        }
        if plain.len() < pt_len {
            // Replacing (not resizing) zeroizes the old buffer as it drops.
            plain = Zeroizing::new(vec![0u8; pt_len]);
        }
        let (cipher, index) = (Arc::clone(&self.cipher), self.index);
        let work = move || {
            let opened = cipher.open_to(index, last, &ct[..len], &mut plain[..pt_len]);
            (ct, plain, opened)
        };
        match offload(pt_len, work) {
            Offloaded::Done((ct, plain, opened)) => {
                self.ct = Some(ct);
                self.plain = Some(plain);
                opened?;
                self.opened(pt_len, last)
            }
            Offloaded::Running(task) => {
                self.state = State::Opening { task, pt_len, last };
                Ok(())
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncDecryptor<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match ready!(this.poll_read_inner(cx, out)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(err) => {
                if !matches!(this.state, State::Done) {
                    this.state = State::Failed(Sticky::of(&err));
                }
                Poll::Ready(Err(err.into()))
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(super) async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let mut have = 0;
    while have < buf.len() {
        match reader.read(&mut buf[have..]).await {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(have)
}
