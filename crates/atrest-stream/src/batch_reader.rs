//! The parallel engine behind [`crate::Decryptor`]: a [`Ring`] of segment slots that
//! outlives single `read` calls. The caller reads each segment's ciphertext into the next
//! free slot, framed exactly as the sequential reader frames it, and queues it; pool helpers
//! open queued segments in the background; the caller releases the plaintext in stream
//! order, only up to the first segment that fails, and opens queued segments itself when
//! the next one is not ready.

use std::io::Read;
use std::sync::Arc;

use atrest_crypto::TAG_LEN;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::decryptor::read_segment;
use crate::layout::SegmentCipher;
use crate::parallel::Parallelism;
use crate::ring::Ring;

/// A slot: one segment of ciphertext and, once opened, its plaintext. Both grow with the
/// data actually read; zeroized on drop.
#[derive(Default)]
struct Slot {
    ct: Zeroizing<Vec<u8>>,
    pt: Zeroizing<Vec<u8>>,
}

/// The ring's job: open the slot's ciphertext (`len` bytes, final or not) into its plaintext.
/// Nothing is written to the plaintext unless the tag verifies.
fn open_slot(
    cipher: &SegmentCipher,
    segment: u64,
    (len, last): (usize, bool),
    slot: &mut Slot,
) -> Result<(), Error> {
    let pt_len = len - TAG_LEN;
    if slot.pt.len() < pt_len {
        // Replacing (not resizing) zeroizes the old buffer as it drops.
        slot.pt = Zeroizing::new(vec![0u8; pt_len]);
    }
    cipher.open_to(segment, last, &slot.ct[..len], &mut slot.pt[..pt_len])
}

/// Ring state of a parallel decryptor.
pub(crate) struct BatchReader {
    par: Parallelism,
    /// Slots carry (ciphertext length, final flag).
    ring: Arc<Ring<Slot, (usize, bool)>>,
    /// Byte read past the last queued segment (proof that another segment follows).
    lookahead: Option<u8>,
    /// The segment being released: slot, next plaintext byte, end, final flag.
    current: Option<(usize, usize, usize, bool)>,
    /// Why reading stopped before the final segment (a read error, truncation): reported
    /// once the segments before it are released, as a sequential reader would.
    tail: Option<Error>,
    /// The final segment has been queued: nothing more to read.
    ended: bool,
    /// The final segment has been released.
    done: bool,
    /// Ciphertext bytes queued so far (for the automatic threshold).
    processed: u64,
}

impl BatchReader {
    pub(crate) fn new(par: Parallelism, cipher: &Arc<SegmentCipher>) -> Self {
        let slots = par.ring_slots(cipher.layout.max_segment_pt_len());
        Self {
            par,
            ring: Arc::new(Ring::new(
                cipher,
                slots,
                open_slot,
                Slot::default,
                (0, false),
            )),
            lookahead: None,
            current: None,
            tail: None,
            ended: false,
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
            if let Some((at, start, end, last)) = self.current {
                if start < end {
                    let n = (end - start).min(out.len());
                    let mut slot = self.ring.slot(at);
                    out[..n].copy_from_slice(&slot.pt[start..start + n]);
                    slot.pt[start..start + n].zeroize();
                    self.current = Some((at, start + n, end, last));
                    return Ok(n);
                }
                self.current = None;
                self.ring.retire(true);
                self.done = last;
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.read_ahead(inner, cipher);
            let Some(next) = self.ring.next(true) else {
                // Nothing queued: reading stopped, and everything before it is released.
                let tail = self.tail.take().unwrap_or(Error::Truncated);
                return Err(self.fail(tail));
            };
            if let Err(err) = next.outcome {
                return Err(self.fail(err));
            }
            let (len, last) = next.meta;
            self.current = Some((next.slot, 0, len - TAG_LEN, last));
        }
    }

    /// Reads segments into free slots and queues them: as many as the ring holds in
    /// parallel, else one when nothing is in flight (the sequential reader's pace). Stops
    /// at the final segment or at the first framing or read error, kept for later.
    fn read_ahead<R: Read>(&mut self, inner: &mut R, cipher: &SegmentCipher) {
        let parallel = self.par.for_batch(2, self.processed, 0);
        let helpers = if parallel { self.par.helpers() } else { 0 };
        while !self.ended && self.tail.is_none() {
            if !parallel && self.ring.in_flight() > 0 {
                return;
            }
            let Some(at) = self.ring.free_slot() else {
                return;
            };
            let segment = self.ring.queued();
            let full = cipher.layout.segment_pt_len(segment) + TAG_LEN;
            let framed = read_segment(inner, &mut self.ring.slot(at).ct, &mut self.lookahead, full);
            match framed {
                Ok((len, last)) => {
                    self.processed += len as u64;
                    self.ended = last;
                    if !last && segment.checked_add(1).is_none() {
                        // No segment can follow this one: more data cannot be authentic.
                        self.tail = Some(Error::Authentication);
                    }
                    self.ring.queue((len, last), self.par, helpers);
                }
                Err(err) => self.tail = Some(err),
            }
        }
    }

    /// Stops the ring and wipes the plaintext of every slot: segments after a failure are
    /// never released, even those that authenticated.
    fn fail(&self, err: Error) -> Error {
        self.ring.halt();
        for at in 0..self.ring.len() {
            self.ring.slot(at).pt.zeroize();
        }
        err
    }
}

impl Drop for BatchReader {
    fn drop(&mut self) {
        // Helpers still opening finish their segment and return; the ring (and the
        // plaintext in it) is zeroized when the last of them lets go.
        self.ring.halt();
    }
}
