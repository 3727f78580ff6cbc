//! The parallel engine behind [`crate::Encryptor`]: a ring of `Parallelism::ring_slots`
//! slots that outlives single `write` calls. The caller copies plaintext into the next free
//! slot and queues it once it is full; pool helpers seal queued slots in the background;
//! the caller writes sealed slots in stream order as they come, and seals queued ones itself
//! when the ring is full. A large write skips the copy ([`BatchWriter::seal_direct`]).

use std::io::Write;
use std::sync::Arc;

use atrest_crypto::TAG_LEN;
use zeroize::Zeroizing;

use crate::layout::SegmentCipher;
use crate::parallel::{self, Parallelism};
use crate::ring::Ring;
use crate::{Error, MisuseError};

/// A slot: one segment of plaintext, sealed in place, plus its tag. Allocated on first use
/// (a short stream touches one); zeroized on drop.
type Slot = Zeroizing<Vec<u8>>;

/// Ring state of a parallel encryptor.
pub(crate) struct BatchWriter {
    par: Parallelism,
    /// Slots carry (plaintext length, final flag).
    ring: Arc<Ring<Slot, (usize, bool)>>,
    stride: usize,
    /// Plaintext bytes in the slot being filled (segment `ring.queued()`).
    filled: usize,
    /// Plaintext bytes queued so far (for the automatic threshold).
    processed: u64,
}

/// The ring's job: seal the slot's plaintext in place, tag after it.
fn seal_slot(
    cipher: &SegmentCipher,
    segment: u64,
    (len, last): (usize, bool),
    slot: &mut Slot,
) -> Result<(), Error> {
    cipher.seal_in_place(segment, last, &mut slot[..len + TAG_LEN])
}

impl BatchWriter {
    pub(crate) fn new(par: Parallelism, cipher: &Arc<SegmentCipher>) -> Self {
        let slots = par.ring_slots(cipher.layout.max_segment_pt_len());
        Self {
            par,
            ring: Arc::new(Ring::new(
                cipher,
                slots,
                seal_slot,
                || Zeroizing::new(Vec::new()),
                (0, false),
            )),
            stride: cipher.layout.max_segment_pt_len() + TAG_LEN,
            filled: 0,
            processed: 0,
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
        while !data.is_empty() {
            let consumed = total - data.len();
            let segment = self.ring.queued();
            let capacity = cipher.layout.segment_pt_len(segment);
            if self.filled == capacity {
                // More data follows a full slot: it is not the last segment.
                if !cipher.layout.has_successor(segment) {
                    // Seal what precedes it; it stays buffered and can still be finished.
                    self.drain(inner, poisoned).map_err(|e| (consumed, e))?;
                    return Err((consumed, MisuseError::StreamTooLong.into()));
                }
                self.queue(inner, poisoned, false)
                    .map_err(|e| (consumed, e))?;
            } else if self.filled == 0
                && data.len() > capacity
                && cipher.layout.has_successor(segment)
            {
                self.drain(inner, poisoned).map_err(|e| (consumed, e))?;
                let taken = self
                    .seal_direct(inner, cipher, poisoned, data)
                    .map_err(|(taken, e)| (consumed + taken, e))?;
                data = &data[taken..];
            } else {
                let at = self.make_room(inner, poisoned).map_err(|e| (consumed, e))?;
                let mut slot = self.ring.slot(at);
                if slot.len() < self.stride {
                    *slot = Zeroizing::new(vec![0u8; self.stride]);
                }
                let n = (capacity - self.filled).min(data.len());
                slot[self.filled..self.filled + n].copy_from_slice(&data[..n]);
                self.filled += n;
                data = &data[n..];
            }
        }
        Ok(total)
    }

    /// Seals everything buffered, the slot being filled as the final segment, and writes it.
    pub(crate) fn finish<W: Write>(
        &mut self,
        inner: &mut W,
        poisoned: &mut bool,
    ) -> Result<(), Error> {
        let at = self.make_room(inner, poisoned)?;
        {
            let mut slot = self.ring.slot(at);
            if slot.len() < self.filled + TAG_LEN {
                *slot = Zeroizing::new(vec![0u8; self.stride]);
            }
        }
        self.queue(inner, poisoned, true)?;
        self.drain(inner, poisoned)
    }

    /// Queues the slot being filled (`filled` bytes) as a full segment, or as the final one.
    /// In parallel, starts helpers for it and writes what is sealed, without blocking;
    /// sequentially, seals and writes it now.
    fn queue<W: Write>(
        &mut self,
        inner: &mut W,
        poisoned: &mut bool,
        last: bool,
    ) -> Result<(), Error> {
        let len = std::mem::take(&mut self.filled);
        self.processed += len as u64;
        let parallel = !last && self.par.for_batch(2, self.processed, 0);
        let helpers = if parallel { self.par.helpers() } else { 0 };
        self.ring.queue((len, last), self.par, helpers);
        if parallel {
            while self.write_next(inner, poisoned, false)? {}
            Ok(())
        } else {
            self.drain(inner, poisoned)
        }
    }

    /// Waits until the slot of the segment being filled is free; returns it.
    fn make_room<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<usize, Error> {
        loop {
            if let Some(at) = self.ring.free_slot() {
                return Ok(at);
            }
            self.write_next(inner, poisoned, true)?;
        }
    }

    /// Writes every queued segment (sealing what no helper has taken).
    fn drain<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<(), Error> {
        while self.write_next(inner, poisoned, true)? {}
        Ok(())
    }

    /// Writes the next segment in order once it is sealed (with `wait`, sealing queued
    /// segments or waiting for a helper until it is); returns whether it wrote one.
    fn write_next<W: Write>(
        &mut self,
        inner: &mut W,
        poisoned: &mut bool,
        wait: bool,
    ) -> Result<bool, Error> {
        let Some(done) = self.ring.next(wait) else {
            return Ok(false);
        };
        let (len, _) = done.meta;
        let result = done.outcome.and_then(|()| {
            write_or_poison(inner, poisoned, &self.ring.slot(done.slot)[..len + TAG_LEN])
        });
        if let Err(err) = result {
            // The segment is lost: the stream cannot continue.
            *poisoned = true;
            self.ring.halt();
            return Err(err);
        }
        // Back to slot 0 when idle, unless plaintext waits in the next slot.
        self.ring.retire(self.filled == 0);
        Ok(true)
    }

    /// Seals the full non-final segments at the start of `data` straight from it (no
    /// plaintext copy) into the ring's slots, and writes them in order. Called with nothing
    /// in flight and nothing buffered.
    ///
    /// In parallel this is one fork and one join for the whole write
    /// ([`parallel::run_ordered`]): the helpers seal segment after segment into free slots
    /// while the calling thread writes each sealed one in order and seals when none is ready.
    /// Sealing a write half a batch at a time, with the caller writing one half while the
    /// helpers sealed the next, put the helper to sleep and woke it every four segments; on
    /// two vCPUs the single pipeline scaled better (docs/PERFORMANCE.md, "Eighth run").
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
        let index = self.ring.queued();
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
        // Sequentially one slot is enough (and stays in cache); in parallel, the ring.
        let ring = if parallel {
            self.ring.len().min(count)
        } else {
            1
        };
        let stride = self.stride;
        // Borrow the slots' buffers (no helper touches them: nothing is in flight).
        let mut buffers: Vec<Slot> = (0..ring)
            .map(|at| {
                let mut buffer = std::mem::take(&mut *self.ring.slot(at));
                if buffer.len() < stride {
                    buffer = Zeroizing::new(vec![0u8; stride]);
                }
                buffer
            })
            .collect();
        let result = parallel::run_ordered(
            self.par,
            parallel,
            count,
            buffers.iter_mut().collect(),
            |j, slot| {
                let (at, len) = span(j);
                let segment = &data[at..at + len];
                cipher.seal_to(index + j as u64, false, segment, &mut slot[..len + TAG_LEN])
            },
            |j, slot| write_or_poison(inner, poisoned, &slot[..span(j).1 + TAG_LEN]),
        );
        for (at, buffer) in buffers.into_iter().enumerate() {
            *self.ring.slot(at) = buffer;
        }
        let written = result.as_ref().map_or_else(|(j, _)| *j, |()| count);
        let consumed = span(written).0;
        self.ring.skip_to(index + written as u64);
        self.processed += consumed as u64;
        result
            .map(|()| consumed)
            .map_err(|(_, err)| (consumed, err))
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        // Helpers still sealing finish their segment and return; the ring (and the
        // plaintext in it) is zeroized when the last of them lets go.
        self.ring.halt();
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
