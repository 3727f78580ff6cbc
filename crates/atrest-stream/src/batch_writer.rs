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
    /// Replaces rather than resizes, so the old buffer is zeroized as it drops.
    fn ensure_slots(&mut self, n: usize) {
        let want = n * self.stride;
        if self.slots.len() < want {
            let max = self.par.batch_segments(self.stride - TAG_LEN) * self.stride;
            let grown = if n <= 1 { want } else { max.max(want) };
            let mut bigger = Zeroizing::new(vec![0u8; grown]);
            bigger[..self.slots.len()].copy_from_slice(&self.slots);
            self.slots = bigger;
        }
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
                    .map_err(|e| (consumed, e))?;
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

    /// Seals up to a batch of full non-final segments straight from the caller's data (no
    /// plaintext copy) and writes them. Returns the plaintext bytes consumed.
    fn seal_direct<W: Write>(
        &mut self,
        inner: &mut W,
        cipher: &SegmentCipher,
        poisoned: &mut bool,
        data: &[u8],
    ) -> Result<usize, Error> {
        let batch = self.par.batch_segments(cipher.layout.max_segment_pt_len());
        let mut plan = Vec::with_capacity(batch);
        let mut rest = data;
        while plan.len() < batch {
            let index = self.index.saturating_add(plan.len() as u64);
            let capacity = cipher.layout.segment_pt_len(index);
            if rest.len() <= capacity || !cipher.layout.has_successor(index) {
                break;
            }
            let (segment, tail) = rest.split_at(capacity);
            plan.push(segment);
            rest = tail;
        }
        self.ensure_slots(plan.len());
        let stride = self.stride;
        let bytes = (data.len() - rest.len()) as u64;
        let count = plan.len();
        let jobs: Vec<_> = plan
            .into_iter()
            .zip(self.slots.chunks_mut(stride))
            .enumerate()
            .map(|(j, (segment, slot))| (self.index + j as u64, segment, slot))
            .collect();
        let parallel = self.par.for_batch(count, self.processed, bytes);
        parallel::run(self.par, parallel, jobs, |(index, segment, slot)| {
            cipher.seal_to(index, false, segment, &mut slot[..segment.len() + TAG_LEN])
        })
        .map_err(|(_, e)| e)?;
        let lens: Vec<usize> = (0..count)
            .map(|j| self.capacity(cipher, j) + TAG_LEN)
            .collect();
        self.write_slots(inner, poisoned, &lens)?;
        self.index += count as u64;
        self.processed += bytes;
        Ok(data.len() - rest.len())
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
        self.write_slots(inner, poisoned, &lens)?;
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

    /// Writes slots `0..lens.len()` (each `lens[j]` bytes) in order, merging adjacent ones
    /// into one write.
    fn write_slots<W: Write>(
        &self,
        inner: &mut W,
        poisoned: &mut bool,
        lens: &[usize],
    ) -> Result<(), Error> {
        let mut start = 0;
        let mut end = 0;
        for (j, &len) in lens.iter().enumerate() {
            let at = j * self.stride;
            if at != end {
                write_or_poison(inner, poisoned, &self.slots[start..end])?;
                start = at;
            }
            end = at + len;
        }
        write_or_poison(inner, poisoned, &self.slots[start..end])
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
