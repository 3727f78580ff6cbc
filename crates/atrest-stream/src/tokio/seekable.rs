//! Async random access: `AsyncRead + AsyncSeek` and positional reads.

use std::future::Future as _;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncRead, AsyncSeek, AsyncSeekExt, ReadBuf};
use ::tokio::task::JoinHandle;
use atrest_crypto::{Key256, TAG_LEN};
use zeroize::Zeroizing;

use super::decryptor::read_full;
use super::{Offloaded, join_error, offload};
use crate::layout::{Geometry, Layout, SegmentCipher};
use crate::{Error, MisuseError, Options};

type Opened = (Vec<u8>, Zeroizing<Vec<u8>>, Result<(), Error>);

/// Decrypts any part of a stream in seekable async storage, authenticating only the segments
/// it reads: the async [`crate::SeekableDecryptor`], with the same errors for the same bytes.
///
/// The final segment is authenticated *as final* before `SeekFrom::End` is answered or end of
/// stream is reported. The most recently opened segment is cached, so sequential reads open
/// each segment once.
pub struct AsyncSeekableDecryptor<R: AsyncRead + AsyncSeek + Unpin> {
    inner: R,
    cipher: Arc<SegmentCipher>,
    geometry: Geometry,
    /// Reader position of the stream's first header byte.
    start: u64,
    /// Current plaintext position for `AsyncRead`/`AsyncSeek`.
    pos: u64,
    /// Plaintext of the cached segment; `None` while on the blocking pool.
    cache: Option<Zeroizing<Vec<u8>>>,
    cached: Option<(u64, usize)>,
    /// Ciphertext buffer; `None` while on the blocking pool.
    ct: Option<Vec<u8>>,
    load: Load,
    final_verified: bool,
    /// Verifying the end: the final segment failed, now checking the one before it.
    verify_fallback: bool,
    /// A `SeekFrom::End` offset waiting for the end to be verified.
    seek_end: Option<i64>,
}

/// Progress of fetching and opening one segment into the cache.
enum Load {
    Idle,
    Seeking(u64),
    Reading(u64, usize),
    Opening(u64, JoinHandle<Opened>),
}

impl<R: AsyncRead + AsyncSeek + Unpin> AsyncSeekableDecryptor<R> {
    /// Opens an atrest STREAM v1 stream starting at the reader's current position.
    ///
    /// # Errors
    /// [`Error::Header`] for a malformed header, [`Error::Truncated`] if the stored length
    /// cannot be a stream's, [`Error::Io`] if the reader fails.
    pub async fn new(inner: R, key: &Key256, aad: &[u8]) -> Result<Self, Error> {
        Self::with_options(inner, key, aad, &Options::default()).await
    }

    /// Like [`AsyncSeekableDecryptor::new`], for the format and limits in `options`.
    ///
    /// # Errors
    /// As [`AsyncSeekableDecryptor::new`].
    pub async fn with_options(
        mut inner: R,
        key: &Key256,
        aad: &[u8],
        options: &Options,
    ) -> Result<Self, Error> {
        let start = inner.stream_position().await?;
        let mut header = [0u8; 64];
        let header = &mut header[..options.header_len()];
        let got = read_full(&mut inner, header).await?;
        let layout = Layout::parse(&header[..got], options)?;
        let end = inner.seek(SeekFrom::End(0)).await?;
        let geometry = layout.geometry(end.checked_sub(start).ok_or(Error::Truncated)?)?;
        let cipher = SegmentCipher::new(layout, options, key, aad)?;
        Ok(Self {
            inner,
            cipher: Arc::new(cipher),
            geometry,
            start,
            pos: 0,
            cache: Some(Zeroizing::new(Vec::new())),
            cached: None,
            ct: Some(Vec::new()),
            load: Load::Idle,
            final_verified: false,
            verify_fallback: false,
            seek_end: None,
        })
    }

    /// The stream's layout (format, header, segment size).
    pub fn layout(&self) -> &Layout {
        &self.cipher.layout
    }

    /// The plaintext length implied by the stored length. Not yet authenticated.
    pub fn len_unverified(&self) -> u64 {
        self.geometry.plaintext_len
    }

    /// The plaintext length, after authenticating the final segment.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::Authentication`] if the final segment does not
    /// authenticate as final.
    pub async fn verified_len(&mut self) -> Result<u64, Error> {
        std::future::poll_fn(|cx| self.poll_verify_final(cx)).await?;
        Ok(self.geometry.plaintext_len)
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        let Self { inner, .. } = self;
        inner
    }

    /// Reads plaintext at `offset` into `out` without moving the read position; returns the
    /// number of bytes read, which is less than `out.len()` only at the end of the stream.
    ///
    /// # Errors
    /// [`Error::Authentication`] if a segment fails, [`Error::Truncated`] if the stream was
    /// cut, [`Error::Io`] if the reader fails. Nothing unauthenticated is written to `out`.
    pub async fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize, Error> {
        let mut done = 0;
        while done < out.len() {
            let at = offset.saturating_add(done as u64);
            let n = std::future::poll_fn(|cx| self.poll_read_at(cx, at, &mut out[done..])).await?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Copies plaintext at `offset` from (at most) one segment into `out`.
    fn poll_read_at(
        &mut self,
        cx: &mut Context<'_>,
        offset: u64,
        out: &mut [u8],
    ) -> Poll<Result<usize, Error>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if offset >= self.geometry.plaintext_len {
            ready!(self.poll_verify_final(cx))?;
            return Poll::Ready(Ok(0));
        }
        let (index, within) = self.cipher.layout.locate(offset);
        ready!(self.poll_load(cx, index))?;
        let (Some((_, pt_len)), Some(cache)) = (self.cached, &self.cache) else {
            return Poll::Ready(Err(MisuseError::Poisoned.into()));
        };
        let n = (pt_len - within).min(out.len());
        out[..n].copy_from_slice(&cache[within..within + n]);
        Poll::Ready(Ok(n))
    }

    /// Makes segment `index` the cached one: fetches and opens it unless it already is.
    fn poll_load(&mut self, cx: &mut Context<'_>, index: u64) -> Poll<Result<(), Error>> {
        loop {
            let (current, result) = match &mut self.load {
                Load::Idle => {
                    if self.cached.is_some_and(|(cached, _)| cached == index) {
                        return Poll::Ready(Ok(()));
                    }
                    self.cached = None;
                    let (at, _) = self.cipher.layout.segment_span(&self.geometry, index);
                    let position = self.start.checked_add(at).ok_or(MisuseError::InvalidSeek)?;
                    Pin::new(&mut self.inner).start_seek(SeekFrom::Start(position))?;
                    self.load = Load::Seeking(index);
                    continue;
                }
                Load::Seeking(current) => {
                    let current = *current;
                    match ready!(Pin::new(&mut self.inner).poll_complete(cx)) {
                        Ok(_) => {
                            self.load = Load::Reading(current, 0);
                            continue;
                        }
                        Err(err) => (current, Err(err.into())),
                    }
                }
                Load::Reading(current, have) => {
                    let (current, have) = (*current, *have);
                    match ready!(self.poll_fetch(cx, current, have)) {
                        Ok(()) => continue,
                        Err(err) => (current, Err(err)),
                    }
                }
                Load::Opening(current, task) => {
                    let current = *current;
                    match ready!(Pin::new(task).poll(cx)) {
                        Ok((ct, cache, opened)) => {
                            self.ct = Some(ct);
                            self.cache = Some(cache);
                            (current, opened)
                        }
                        Err(err) => (current, Err(join_error(err))),
                    }
                }
            };
            self.load = Load::Idle;
            if let Err(err) = result {
                if current == index {
                    return Poll::Ready(Err(err));
                }
                // A load abandoned by a cancelled read, for another segment: no matter.
            } else {
                self.segment_opened(current);
            }
        }
    }

    /// Reads the ciphertext of segment `index` (`have` bytes of it already in `ct`); once
    /// complete, starts opening it (inline or on the blocking pool).
    fn poll_fetch(
        &mut self,
        cx: &mut Context<'_>,
        index: u64,
        mut have: usize,
    ) -> Poll<Result<(), Error>> {
        let (_, ct_len) = self.cipher.layout.segment_span(&self.geometry, index);
        let Some(ct) = &mut self.ct else {
            return Poll::Ready(Err(MisuseError::Poisoned.into()));
        };
        if ct.len() < ct_len {
            ct.resize(ct_len, 0);
        }
        let mut this_poll = 0;
        while have < ct_len {
            if this_poll >= super::READ_PER_POLL {
                self.load = Load::Reading(index, have);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let end = ct_len.min(have + super::READ_PER_POLL);
            let mut window = ReadBuf::new(&mut ct[have..end]);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut window);
            let n = window.filled().len();
            match polled {
                Poll::Pending => {
                    self.load = Load::Reading(index, have);
                    return Poll::Pending;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err.into())),
                // The storage shrank since we measured it.
                Poll::Ready(Ok(())) if n == 0 => return Poll::Ready(Err(Error::Truncated)),
                Poll::Ready(Ok(())) => {
                    have += n;
                    this_poll += n;
                }
            }
        }
        let Some(pt_len) = ct_len.checked_sub(TAG_LEN) else {
            return Poll::Ready(Err(Error::Truncated));
        };
        let (Some(ct), Some(mut cache)) = (self.ct.take(), self.cache.take()) else {
            return Poll::Ready(Err(MisuseError::Poisoned.into()));
        };
        if cache.len() < pt_len {
            // Replacing (not resizing) zeroizes the old buffer as it drops.
            cache = Zeroizing::new(vec![0u8; pt_len]);
        }
        let last = index + 1 == self.geometry.segments;
        let cipher = Arc::clone(&self.cipher);
        let work = move || {
            let opened = cipher.open_to(index, last, &ct[..ct_len], &mut cache[..pt_len]);
            (ct, cache, opened)
        };
        match offload(pt_len, work) {
            Offloaded::Done((ct, cache, opened)) => {
                self.ct = Some(ct);
                self.cache = Some(cache);
                self.load = Load::Idle;
                opened?;
                self.segment_opened(index);
            }
            Offloaded::Running(task) => self.load = Load::Opening(index, task),
        }
        Poll::Ready(Ok(()))
    }

    fn segment_opened(&mut self, index: u64) {
        let (_, ct_len) = self.cipher.layout.segment_span(&self.geometry, index);
        self.cached = Some((index, ct_len - TAG_LEN));
        if index + 1 == self.geometry.segments {
            self.final_verified = true;
        }
    }

    /// Authenticates the final segment as final, once (as [`crate::SeekableDecryptor`]).
    fn poll_verify_final(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.final_verified {
            return Poll::Ready(Ok(()));
        }
        let index = self.geometry.segments - 1;
        if self.geometry.bad_tail() {
            // The segment before the bad tail decides between trailing data and truncation.
            if index > 0 {
                ready!(self.poll_load(cx, index - 1))?;
            }
            return Poll::Ready(Err(Error::Truncated));
        }
        if !self.verify_fallback {
            match ready!(self.poll_load(cx, index)) {
                Err(Error::Authentication) if index > 0 => self.verify_fallback = true,
                other => return Poll::Ready(other),
            }
        }
        // Is the segment before it a final segment followed by junk? Say what a sequential
        // reader would.
        let before = ready!(self.poll_load(cx, index - 1));
        self.verify_fallback = false;
        Poll::Ready(Err(match before {
            Ok(()) => Error::Authentication,
            Err(err) => err,
        }))
    }
}

impl<R: AsyncRead + AsyncSeek + Unpin> AsyncRead for AsyncSeekableDecryptor<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let pos = this.pos;
        let n = ready!(this.poll_read_at(cx, pos, out.initialize_unfilled()))?;
        out.advance(n);
        this.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + AsyncSeek + Unpin> AsyncSeek for AsyncSeekableDecryptor<R> {
    /// Moves the plaintext position. `SeekFrom::End` authenticates the final segment first
    /// (in `poll_complete`), so the length it is relative to is the authentic one.
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(delta) => this.pos.checked_add_signed(delta),
            SeekFrom::End(delta) => {
                this.seek_end = Some(delta);
                return Ok(());
            }
        };
        this.seek_end = None;
        this.pos = target.ok_or_else(|| io::Error::from(Error::from(MisuseError::InvalidSeek)))?;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        if let Some(delta) = this.seek_end {
            let verified = ready!(this.poll_verify_final(cx));
            this.seek_end = None;
            verified?;
            this.pos = this
                .geometry
                .plaintext_len
                .checked_add_signed(delta)
                .ok_or_else(|| io::Error::from(Error::from(MisuseError::InvalidSeek)))?;
        }
        Poll::Ready(Ok(this.pos))
    }
}
