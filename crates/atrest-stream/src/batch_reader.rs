//! The parallel engine behind [`crate::Decryptor`]: up to one batch of segments of
//! ciphertext are read on the caller's thread, opened in parallel, and released in order, only
//! up to the first segment that fails.

use std::io::{self, Read};

use atrest_crypto::TAG_LEN;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::layout::SegmentCipher;
use crate::parallel::{self, Parallelism};

/// First allocation of the ciphertext buffer; it grows to one batch as data arrives.
const INITIAL_BUFFER: usize = 64 << 10;

/// Batch state of a parallel decryptor.
pub(crate) struct BatchReader {
    par: Parallelism,
    /// Ciphertext of the current batch (grown as data actually arrives).
    ct: Zeroizing<Vec<u8>>,
    /// Byte read past the batch (proof that another segment follows).
    lookahead: Option<u8>,
    /// Plaintext of the batch when the caller's buffer cannot take all of it.
    plain: Zeroizing<Vec<u8>>,
    /// Decrypted plaintext waiting in `plain[pending.0..pending.1]`.
    pending: (usize, usize),
    /// An error to report once the plaintext before it has been released.
    deferred: Option<Error>,
    /// Index of the next segment to read.
    index: u64,
    done: bool,
    processed: u64,
}

/// Where one segment of the batch lies: index, last flag, ciphertext offset and length.
struct Span {
    index: u64,
    last: bool,
    at: usize,
    len: usize,
}

impl BatchReader {
    pub(crate) fn new(par: Parallelism) -> Self {
        Self {
            par,
            ct: Zeroizing::new(Vec::new()),
            lookahead: None,
            plain: Zeroizing::new(Vec::new()),
            pending: (0, 0),
            deferred: None,
            index: 0,
            done: false,
            processed: 0,
        }
    }

    /// `Read::read` of a parallel decryptor. Errors are final: the caller makes them sticky.
    pub(crate) fn read<R: Read>(
        &mut self,
        inner: &mut R,
        cipher: &SegmentCipher,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        loop {
            let (start, end) = self.pending;
            if start < end {
                let n = (end - start).min(out.len());
                out[..n].copy_from_slice(&self.plain[start..start + n]);
                self.plain[start..start + n].zeroize();
                self.pending.0 += n;
                return Ok(n);
            }
            if let Some(err) = self.deferred.take() {
                return Err(err);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if let Some(n) = self.next_batch(inner, cipher, out)? {
                // `n == 0` only for an empty final segment: end of stream.
                return Ok(n);
            }
        }
    }

    /// Reads up to `want` bytes of ciphertext (after the lookahead byte) into `ct`, growing it
    /// with the data received. Returns the bytes held and the read error that stopped it, if
    /// any: segments complete before the error are still opened, as a sequential reader
    /// would have.
    fn fill<R: Read>(&mut self, inner: &mut R, want: usize) -> (usize, Option<Error>) {
        if self.ct.is_empty() {
            *self.ct = vec![0u8; want.min(INITIAL_BUFFER)];
        }
        let mut have = 0;
        if let Some(byte) = self.lookahead.take() {
            self.ct[0] = byte;
            have = 1;
        }
        loop {
            let end = want.min(self.ct.len());
            while have < end {
                match inner.read(&mut self.ct[have..end]) {
                    Ok(0) => return (have, None),
                    Ok(n) => have += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return (have, Some(err.into())),
                }
            }
            if end == want {
                return (have, None);
            }
            // Grow with the data actually received (at most doubling), never straight to
            // the size a header announced.
            let grown = (self.ct.len() * 2).min(want);
            let mut bigger = Zeroizing::new(vec![0u8; grown]);
            bigger[..have].copy_from_slice(&self.ct[..have]);
            self.ct = bigger;
        }
    }

    /// Reads and opens the next batch: into `out` directly when it takes the whole batch
    /// (returning `Some(bytes)`), else into `plain` (returning `None`).
    fn next_batch<R: Read>(
        &mut self,
        inner: &mut R,
        cipher: &SegmentCipher,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        let batch = self.par.batch_segments(cipher.layout.max_segment_pt_len());
        let mut fulls = Vec::with_capacity(batch);
        let mut want = 1;
        for j in 0..batch {
            let full = cipher
                .layout
                .segment_pt_len(self.index.saturating_add(j as u64))
                + TAG_LEN;
            fulls.push(full);
            want += full;
        }
        let (have, mut read_error) = self.fill(inner, want);

        // Frame the batch exactly as the sequential reader frames one segment at a time.
        let mut spans = Vec::with_capacity(batch);
        let mut tail = None;
        let mut at = 0;
        for (j, &full) in fulls.iter().enumerate() {
            let Some(index) = self.index.checked_add(j as u64) else {
                tail = Some(Error::Authentication);
                break;
            };
            let remaining = have - at;
            if remaining > full {
                spans.push(Span {
                    index,
                    last: false,
                    at,
                    len: full,
                });
                at += full;
            } else if let Some(err) = read_error.take() {
                tail = Some(err);
                break;
            } else if remaining < TAG_LEN {
                // Includes nothing at all where a segment had to be.
                tail = Some(Error::Truncated);
                break;
            } else {
                spans.push(Span {
                    index,
                    last: true,
                    at,
                    len: remaining,
                });
                break;
            }
        }
        if spans.last().is_some_and(|s| !s.last) && tail.is_none() {
            // Every slot held a full non-final segment; the byte after them is the lookahead.
            self.lookahead = Some(self.ct[at]);
        }

        let total: usize = spans.iter().map(|s| s.len - TAG_LEN).sum();
        let direct = out.len() >= total;
        if !direct && self.plain.len() < total {
            // Replacing (not resizing) zeroizes the old buffer as it drops.
            self.plain = Zeroizing::new(vec![0u8; total]);
        }
        let target: &mut [u8] = if direct {
            &mut out[..total]
        } else {
            &mut self.plain[..total]
        };
        let mut jobs = Vec::with_capacity(spans.len());
        let mut rest = &mut *target;
        for span in &spans {
            let (into, more) = std::mem::take(&mut rest).split_at_mut(span.len - TAG_LEN);
            jobs.push((span, &self.ct[span.at..span.at + span.len], into));
            rest = more;
        }
        let parallel = self.par.for_batch(jobs.len(), self.processed, total as u64);
        let opened = parallel::run(self.par, parallel, jobs, |(span, segment, into)| {
            cipher.open_to(span.index, span.last, segment, into)
        });
        let released = match opened {
            Ok(()) => {
                if spans.last().is_some_and(|s| s.last) {
                    self.done = true;
                }
                self.index += spans.len() as u64;
                self.deferred = tail;
                total
            }
            Err((failed, err)) => {
                // Release nothing from the failing segment on, even what authenticated after
                // it: wipe it from the target.
                let released: usize = spans[..failed].iter().map(|s| s.len - TAG_LEN).sum();
                target[released..].zeroize();
                self.deferred = Some(err);
                released
            }
        };
        self.processed += released as u64;
        if released == 0
            && !self.done
            && let Some(err) = self.deferred.take()
        {
            return Err(err);
        }
        if direct {
            Ok(Some(released))
        } else {
            self.pending = (0, released);
            Ok(None)
        }
    }
}
