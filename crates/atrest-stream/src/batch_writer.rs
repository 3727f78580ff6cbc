//! The parallel engine behind [`crate::Encryptor`]: segments are queued in a batch of
//! `Parallelism::batch_segments` slots, sealed in parallel, and written in order on the
//! caller's thread.

use std::io::Write;

use atrest_crypto::TAG_LEN;
use zeroize::Zeroizing;

use crate::layout::SegmentCipher;
use crate::parallel::{self, Parallelism};
use crate::{Error, MisuseError};

/// Batch state of a parallel encryptor.
pub(crate) struct BatchWriter {
    par: Parallelism,
    /// `batch_segments` slots of `stride` bytes (one full segment plus tag each), grown as
    /// the stream needs them. Plaintext until sealed: zeroized on drop.
    slots: Zeroizing<Vec<u8>>,
    stride: usize,
    /// Full segments in slots `0..queued`, each known not to be the last.
    queued: usize,
    /// Plaintext bytes in slot `queued`.
    filled: usize,
    /// Segment index of slot 0.
    index: u64,
    /// Plaintext bytes sealed so far (for the automatic threshold).
    processed: u64,
}

/// One segment to seal: index, last flag, and its slot (plaintext then room for the tag).
type Job<'a> = (u64, bool, &'a mut [u8]);

impl BatchWriter {
    pub(crate) fn new(par: Parallelism, cipher: &SegmentCipher) -> Self {
        Self {
            par,
            slots: Zeroizing::new(Vec::new()),
            stride: cipher.layout.max_segment_pt_len() + TAG_LEN,
            queued: 0,
            filled: 0,
            index: 0,
            processed: 0,
        }
    }

    fn capacity(&self, cipher: &SegmentCipher, slot: usize) -> usize {
        cipher
            .layout
            .segment_pt_len(self.index.saturating_add(slot as u64))
    }

    /// Makes room for `n` slots: one for a stream that fits in a segment, else the whole
    /// batch at once (growing step by step would hold two large buffers at once more often).
    fn ensure_slots(&mut self, n: usize) {
        let want = n * self.stride;
        let max = if n <= 1 {
            want
        } else {
            self.par.batch_segments(self.stride - TAG_LEN) * self.stride
        };
        grow(&mut self.slots, want, max);
    }

    /// Accepts plaintext; returns how much was taken, or the error with how much had been
    /// taken before it (the [`crate::Encryptor`] contract).
    pub(crate) fn write<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
        mut data: &[u8],
    ) -> Result<usize, (usize, Error)> {
        let total = data.len();
        let batch = self.par.batch_segments(cipher.layout.max_segment_pt_len());
        while !data.is_empty() {
            let consumed = total - data.len();
            let slot = self.queued;
            let capacity = self.capacity(cipher, slot);
            if self.filled == capacity {
                // More data follows a full slot: it is not the last segment.
                if !cipher
                    .layout
                    .has_successor(self.index.saturating_add(slot as u64))
                {
                    // Seal what precedes it; it stays buffered and can still be finished.
                    self.flush(inner, cipher, poisoned)
                        .map_err(|e| (consumed, e))?;
                    return Err((consumed, MisuseError::StreamTooLong.into()));
                }
                self.queued += 1;
                self.filled = 0;
                if self.queued == batch {
                    self.flush(inner, cipher, poisoned)
                        .map_err(|e| (consumed, e))?;
                }
            } else if slot == 0
                && self.filled == 0
                && data.len() > capacity
                && cipher.layout.has_successor(self.index)
            {
                let taken = self
                    .seal_direct(inner, cipher, poisoned, data)
                    .map_err(|(taken, e)| (consumed + taken, e))?;
                data = &data[taken..];
            } else {
                self.ensure_slots(slot + 1);
                let at = slot * self.stride + self.filled;
                let n = (capacity - self.filled).min(data.len());
                self.slots[at..at + n].copy_from_slice(&data[..n]);
                self.filled += n;
                data = &data[n..];
            }
        }
        Ok(total)
    }

    /// Seals the full non-final segments at the start of `data` straight from it (no
    /// plaintext copy) into a ring of batch slots, and writes them in order.
    ///
    /// In parallel this is one fork and one join for the whole write
    /// ([`parallel::run_ordered`]): the helpers seal segment after segment into free slots
    /// while the calling thread writes each sealed one in order and seals when none is ready.
    /// Sealing a write half a batch at a time, with the caller writing one half while the
    /// helpers sealed the next, put the helper to sleep and woke it every four segments; on
    /// two vCPUs the single pipeline scaled better (docs/PERFORMANCE.md, "Eighth run").
    /// Memory stays at one batch.
    ///
    /// Returns the plaintext bytes consumed (sealed and written), or the error with the
    /// bytes consumed before it. Segments sealed but not written are dropped.
    fn seal_direct<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
        data: &[u8],
    ) -> Result<usize, (usize, Error)> {
        let index = self.index;
        // Segment `j` of this write: its offset in `data` and its plaintext length (only the
        // stream's first segment differs in size).
        let first = cipher.layout.segment_pt_len(index);
        let rest = cipher.layout.segment_pt_len(index.saturating_add(1));
        let span = |j: usize| match j {
            0 => (0, first),
            _ => (first + (j - 1) * rest, rest),
        };
        // Full segments followed by more data and by room in the counter.
        let mut count = 0;
        while {
            let (at, len) = span(count);
            data.len() - at > len
                && cipher
                    .layout
                    .has_successor(index.saturating_add(count as u64))
        } {
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        let bytes = span(count).0;
        let parallel = self.par.for_batch(count, self.processed, bytes as u64);
        let batch = self.par.batch_segments(cipher.layout.max_segment_pt_len());
        // Sequentially one slot is enough (and stays in cache); in parallel, a batch.
        let ring = if parallel { batch.min(count) } else { 1 };
        let stride = self.stride;
        grow(&mut self.slots, ring * stride, batch * stride);
        let slots: Vec<&mut [u8]> = self.slots.chunks_mut(stride).take(ring).collect();
        let result = parallel::run_ordered(
            self.par,
            parallel,
            count,
            slots,
            |j, slot| {
                let (at, len) = span(j);
                let segment = &data[at..at + len];
                cipher.seal_to(index + j as u64, false, segment, &mut slot[..len + TAG_LEN])
            },
            |j, slot| write_or_poison(inner, poisoned, &slot[..span(j).1 + TAG_LEN]),
        );
        let written = result.as_ref().map_or_else(|(j, _)| *j, |()| count);
        let consumed = span(written).0;
        self.account(written, consumed);
        result
            .map(|()| consumed)
            .map_err(|(_, err)| (consumed, err))
    }

    /// Counts `segments` segments of `bytes` plaintext as sealed and written.
    fn account(&mut self, segments: usize, bytes: usize) {
        self.index += segments as u64;
        self.processed += bytes as u64;
    }

    /// Seals the queued segments (and the final one, if `last`) and writes them in order.
    fn seal_queued<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
        last: bool,
    ) -> Result<(), Error> {
        let count = self.queued + usize::from(last);
        self.ensure_slots(count);
        let mut lens = Vec::with_capacity(count);
        for j in 0..count {
            let pt = if j == self.queued {
                self.filled
            } else {
                self.capacity(cipher, j)
            };
            lens.push(pt + TAG_LEN);
        }
        let bytes: u64 = lens.iter().map(|len| (len - TAG_LEN) as u64).sum();
        let jobs: Vec<Job<'_>> = self
            .slots
            .chunks_mut(self.stride)
            .zip(&lens)
            .enumerate()
            .map(|(j, (slot, &len))| (self.index + j as u64, j == self.queued, &mut slot[..len]))
            .collect();
        let parallel = self.par.for_batch(count, self.processed, bytes);
        parallel::run(self.par, parallel, jobs, |(index, last, slot)| {
            cipher.seal_in_place(index, last, slot)
        })
        .map_err(|(_, e)| e)?;
        write_slots(&self.slots, self.stride, inner, poisoned, &lens)?;
        self.processed += bytes;
        Ok(())
    }

    /// Seals and writes the queued non-final segments; a partly filled slot after them moves
    /// to slot 0.
    fn flush<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
    ) -> Result<(), Error> {
        if self.queued == 0 {
            return Ok(());
        }
        self.seal_queued(inner, cipher, poisoned, false)?;
        if self.filled > 0 {
            // Only at the counter limit: the slot that could not be queued.
            let from = self.queued * self.stride;
            self.slots.copy_within(from..from + self.filled, 0);
        }
        self.index += self.queued as u64;
        self.queued = 0;
        Ok(())
    }

    /// Seals everything buffered, the last slot as the final segment, and writes it.
    pub(crate) fn finish<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
    ) -> Result<(), Error> {
        self.seal_queued(inner, cipher, poisoned, true)
    }
}

/// Writes slots `0..lens.len()` of `slots` (each `lens[j]` bytes, slots `stride` apart) in
/// order, merging adjacent ones into one write.
fn write_slots<W: Write>(
    slots: &[u8],
    stride: usize,
    inner: &mut W,
    poisoned: &mut bool,
    lens: &[usize],
) -> Result<(), Error> {
    let mut start = 0;
    let mut end = 0;
    for (j, &len) in lens.iter().enumerate() {
        let at = j * stride;
        if at != end {
            write_or_poison(inner, poisoned, &slots[start..end])?;
            start = at;
        }
        end = at + len;
    }
    write_or_poison(inner, poisoned, &slots[start..end])
}

/// Grows `buf` to at least `want` bytes: to `max` (a whole batch) at once when `want` is
/// more than one slot, so it is not regrown step by step. Replaces rather than resizes, so
/// the old buffer is zeroized as it drops.
fn grow(buf: &mut Zeroizing<Vec<u8>>, want: usize, max: usize) {
    if buf.len() < want {
        let mut bigger = Zeroizing::new(vec![0u8; max.max(want)]);
        bigger[..buf.len()].copy_from_slice(buf);
        *buf = bigger;
    }
}

fn write_or_poison<W: Write>(
    inner: &mut W,
    poisoned: &mut bool,
    bytes: &[u8],
) -> Result<(), Error> {
    if let Err(err) = inner.write_all(bytes) {
        // Part of a segment may have reached the writer: the stream cannot continue.
        *poisoned = true;
        return Err(err.into());
    }
    Ok(())
}
