//! The parallel engine behind [`crate::Encryptor`]: segments are queued in a batch of
//! `Parallelism::batch_segments` slots, sealed in parallel, and written in order on the
//! caller's thread.

use std::io::Write;

use atrest_crypto::TAG_LEN;
use zeroize::Zeroizing;

use crate::layout::SegmentCipher;
use crate::parallel::{self, Failure, Parallelism};
use crate::{Error, MisuseError};

/// Batch state of a parallel encryptor.
pub(crate) struct BatchWriter {
    par: Parallelism,
    /// `batch_segments` slots of `stride` bytes (one full segment plus tag each), grown as
    /// the stream needs them. Plaintext until sealed: zeroized on drop.
    slots: Zeroizing<Vec<u8>>,
    /// The second buffer of a large write: sealed into while `slots` is written
    /// ([`BatchWriter::seal_direct`]). Empty until a write spans two batches.
    spare: Zeroizing<Vec<u8>>,
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
            spare: Zeroizing::new(Vec::new()),
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
        if self.slots.len() < want && self.spare.len() >= want {
            // A large write left the bigger buffer as the spare: take it rather than hold
            // a third, bringing along the queued plaintext (the spare's own bytes were
            // sealed and written already).
            std::mem::swap(&mut self.slots, &mut self.spare);
            let queued = self.spare.len();
            self.slots[..queued].copy_from_slice(&self.spare);
        }
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
    /// plaintext copy), half a batch at a time, and writes them in order. From the second
    /// half batch on, the calling thread writes half k while the helpers seal half k + 1
    /// into the other buffer (it joins them when the write is done), so a writer that does
    /// real work (a copy into a `Vec`, a file) no longer idles the helpers: ring on two
    /// threads into a `Vec` went from 2.5-3.0 to 3.2-3.7 GiB/s (docs/PERFORMANCE.md,
    /// "Sixth run"). Two halves keep the memory at one batch; two whole batches were no
    /// faster beyond the noise.
    ///
    /// Returns the plaintext bytes consumed (sealed and written), or the error with the
    /// bytes consumed before it. A sealed batch that was not written is dropped.
    fn seal_direct<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
        data: &[u8],
    ) -> Result<usize, (usize, Error)> {
        let batch = self
            .par
            .batch_segments(cipher.layout.max_segment_pt_len())
            .div_ceil(2);
        let stride = self.stride;
        // Consumed: sealed and written. Sealed: consumed plus the pending batch.
        let mut consumed = 0;
        let mut sealed = 0;
        // The pending batch (sealed, in `self.slots`, not yet written): ciphertext lengths.
        let mut pending: Vec<usize> = Vec::new();
        loop {
            let first_index = self.index.saturating_add(pending.len() as u64);
            let mut plan = Vec::with_capacity(batch);
            let mut rest = &data[sealed..];
            while plan.len() < batch {
                let index = first_index.saturating_add(plan.len() as u64);
                let capacity = cipher.layout.segment_pt_len(index);
                if rest.len() <= capacity || !cipher.layout.has_successor(index) {
                    break;
                }
                let (segment, tail) = rest.split_at(capacity);
                plan.push(segment);
                rest = tail;
            }
            let pending_bytes = pending.iter().map(|len| len - TAG_LEN).sum::<usize>();
            if plan.is_empty() {
                if !pending.is_empty() {
                    write_slots(&self.slots, stride, inner, poisoned, &pending)
                        .map_err(|e| (consumed, e))?;
                    self.account(pending.len(), pending_bytes);
                    consumed += pending_bytes;
                }
                return Ok(consumed);
            }
            let count = plan.len();
            let bytes: usize = plan.iter().map(|segment| segment.len()).sum();
            let lens: Vec<usize> = plan.iter().map(|segment| segment.len() + TAG_LEN).collect();
            grow(&mut self.spare, count * stride, batch * stride);
            let jobs: Vec<_> = plan
                .into_iter()
                .zip(self.spare.chunks_mut(stride))
                .enumerate()
                .map(|(j, (segment, slot))| (first_index + j as u64, segment, slot))
                .collect();
            let parallel = self.par.for_batch(
                count,
                self.processed.saturating_add(pending_bytes as u64),
                bytes as u64,
            );
            let slots = &self.slots;
            let write_pending = || {
                if pending.is_empty() {
                    Ok(())
                } else {
                    write_slots(slots, stride, inner, poisoned, &pending)
                }
            };
            let result = parallel::run_alongside(
                self.par,
                parallel,
                jobs,
                |(index, segment, slot)| {
                    cipher.seal_to(index, false, segment, &mut slot[..segment.len() + TAG_LEN])
                },
                write_pending,
            );
            if let Err(Failure::First(err)) = result {
                return Err((consumed, err));
            }
            // The pending batch is written.
            self.account(pending.len(), pending_bytes);
            consumed += pending_bytes;
            if let Err(Failure::Job(_, err)) = result {
                return Err((consumed, err));
            }
            std::mem::swap(&mut self.slots, &mut self.spare);
            pending = lens;
            sealed += bytes;
        }
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
