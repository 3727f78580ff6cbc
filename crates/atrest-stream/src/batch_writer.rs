//! The parallel engine behind [`crate::Encryptor`]: a ring of `Parallelism::batch_segments`
//! slots that outlives single `write` calls. The caller copies plaintext into the next free
//! slot and queues it once it is full; pool helpers seal queued slots in the background;
//! the caller writes sealed slots in stream order as they come, and seals queued ones itself
//! when the ring is full. A large write skips the copy ([`BatchWriter::seal_direct`]).

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use atrest_crypto::TAG_LEN;
use zeroize::Zeroizing;

use crate::layout::SegmentCipher;
use crate::parallel::{self, Parallelism};
use crate::{Error, MisuseError};

/// Ring state of a parallel encryptor.
pub(crate) struct BatchWriter {
    par: Parallelism,
    shared: Arc<Shared>,
    /// Plaintext bytes in the slot being filled (segment `State::queued`).
    filled: usize,
    /// Plaintext bytes queued so far (for the automatic threshold).
    processed: u64,
}

/// What the caller and the helpers share.
struct Shared {
    cipher: Arc<SegmentCipher>,
    /// One segment plus tag each, allocated on first use (a short stream touches one).
    /// Plaintext until sealed: zeroized on drop.
    slots: Vec<Mutex<Zeroizing<Vec<u8>>>>,
    stride: usize,
    state: Mutex<State>,
    /// Signalled when a segment is sealed, for a caller waiting on one.
    sealed: Condvar,
}

/// Segments move through `written <= claimed <= queued`: queued (full, waiting for a
/// worker), claimed (being sealed, or sealed), written. Segment `queued` is being filled.
struct State {
    written: u64,
    claimed: u64,
    queued: u64,
    /// Segment `base` maps to slot 0; moved only while nothing is in flight, so a
    /// sequential stream keeps reusing slot 0 while it is in cache.
    base: u64,
    /// Per slot: plaintext length and final flag of its queued segment.
    meta: Vec<(usize, bool)>,
    /// Per slot: the outcome of sealing it, until the caller takes it.
    done: Vec<Option<Result<(), Error>>>,
    /// Helper tasks running; they return when no queued segment is left.
    helpers: usize,
    /// The caller is blocked on `sealed`.
    waiting: bool,
    /// Set when the encryptor is dropped or failed: helpers take no more segments.
    stop: bool,
}

impl State {
    fn slot(&self, segment: u64, slots: usize) -> usize {
        // Below `slots` after the modulo, so the conversion cannot fail.
        usize::try_from(segment.saturating_sub(self.base) % slots as u64).unwrap_or(0)
    }
}

/// A claimed segment: index, slot, plaintext length, final flag.
type Claim = (u64, usize, usize, bool);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, at: usize) -> MutexGuard<'_, Zeroizing<Vec<u8>>> {
        self.slots[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the oldest queued segment, if any.
    fn claim(&self, state: &mut State) -> Option<Claim> {
        if state.stop || state.claimed >= state.queued {
            return None;
        }
        let segment = state.claimed;
        state.claimed += 1;
        let at = state.slot(segment, self.slots.len());
        let (len, last) = state.meta[at];
        Some((segment, at, len, last))
    }

    /// Seals a claimed segment in its slot and records the outcome. A panic in the AEAD
    /// becomes an error here, so a pool thread never unwinds (rayon would abort).
    fn seal(&self, (segment, at, len, last): Claim) {
        let outcome = {
            let mut slot = self.slot(at);
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.cipher
                    .seal_in_place(segment, last, &mut slot[..len + TAG_LEN])
            }))
            .unwrap_or_else(|_| {
                Err(std::io::Error::other("an atrest-stream worker panicked while sealing").into())
            })
        };
        let mut state = self.lock();
        state.done[at] = Some(outcome);
        if state.waiting {
            self.sealed.notify_all();
        }
    }

    /// A pool helper: seals queued segments until none is left, then returns (the caller
    /// starts another when it queues more), so an idle encryptor holds no pool thread.
    fn help(&self) {
        loop {
            let claim = {
                let mut state = self.lock();
                match self.claim(&mut state) {
                    Some(claim) => claim,
                    None => {
                        state.helpers -= 1;
                        return;
                    }
                }
            };
            self.seal(claim);
        }
    }
}

impl BatchWriter {
    pub(crate) fn new(par: Parallelism, cipher: &Arc<SegmentCipher>) -> Self {
        let slots = par.batch_segments(cipher.layout.max_segment_pt_len());
        Self {
            par,
            shared: Arc::new(Shared {
                cipher: Arc::clone(cipher),
                slots: (0..slots)
                    .map(|_| Mutex::new(Zeroizing::new(Vec::new())))
                    .collect(),
                stride: cipher.layout.max_segment_pt_len() + TAG_LEN,
                state: Mutex::new(State {
                    written: 0,
                    claimed: 0,
                    queued: 0,
                    base: 0,
                    meta: vec![(0, false); slots],
                    done: (0..slots).map(|_| None).collect(),
                    helpers: 0,
                    waiting: false,
                    stop: false,
                }),
                sealed: Condvar::new(),
            }),
            filled: 0,
            processed: 0,
        }
    }

    /// The segment being filled.
    fn current(&self) -> u64 {
        self.shared.lock().queued
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
            let segment = self.current();
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
                let mut slot = self.shared.slot(at);
                if slot.len() < self.shared.stride {
                    *slot = Zeroizing::new(vec![0u8; self.shared.stride]);
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
            let mut slot = self.shared.slot(at);
            if slot.len() < self.filled + TAG_LEN {
                *slot = Zeroizing::new(vec![0u8; self.shared.stride]);
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
        let start = {
            let mut state = self.shared.lock();
            let at = state.slot(state.queued, self.shared.slots.len());
            state.meta[at] = (len, last);
            state.queued += 1;
            let wanted = self
                .par
                .helpers()
                .min(usize::try_from(state.queued - state.claimed).unwrap_or(usize::MAX));
            let start = if parallel {
                wanted.saturating_sub(state.helpers)
            } else {
                0
            };
            state.helpers += start;
            start
        };
        for _ in 0..start {
            let shared = Arc::clone(&self.shared);
            parallel::spawn_helper(self.par, move || shared.help());
        }
        if parallel {
            self.write_sealed(inner, poisoned)
        } else {
            self.drain(inner, poisoned)
        }
    }

    /// Waits until the slot of the segment being filled is free; returns it.
    fn make_room<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<usize, Error> {
        loop {
            let state = self.shared.lock();
            if state.queued - state.written < self.shared.slots.len() as u64 {
                return Ok(state.slot(state.queued, self.shared.slots.len()));
            }
            drop(state);
            self.step(inner, poisoned)?;
        }
    }

    /// Writes every queued segment (sealing what no helper has taken).
    fn drain<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<(), Error> {
        loop {
            let mut state = self.shared.lock();
            if state.written == state.queued {
                if self.filled == 0 {
                    // Nothing in flight or buffered: start again at slot 0.
                    state.base = state.queued;
                }
                return Ok(());
            }
            drop(state);
            self.step(inner, poisoned)?;
        }
    }

    /// Writes the sealed segments that are next in order, without waiting.
    fn write_sealed<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<(), Error> {
        while self.write_next(inner, poisoned)? {}
        Ok(())
    }

    /// One step forward, for a caller that must wait: writes the next segment if it is
    /// sealed, else seals a queued one, else waits for a helper to seal the next one.
    fn step<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<(), Error> {
        if self.write_next(inner, poisoned)? {
            return Ok(());
        }
        let mut state = self.shared.lock();
        loop {
            if let Some(claim) = self.shared.claim(&mut state) {
                drop(state);
                self.shared.seal(claim);
                return Ok(());
            }
            let at = state.slot(state.written, self.shared.slots.len());
            if state.written == state.queued || state.done[at].is_some() {
                return Ok(());
            }
            state.waiting = true;
            state = self
                .shared
                .sealed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting = false;
        }
    }

    /// Writes the next segment in order if it is sealed; returns whether it did.
    fn write_next<W: Write>(&mut self, inner: &mut W, poisoned: &mut bool) -> Result<bool, Error> {
        let (segment, at, len, outcome) = {
            let mut state = self.shared.lock();
            if state.written == state.queued {
                return Ok(false);
            }
            let segment = state.written;
            let at = state.slot(segment, self.shared.slots.len());
            let Some(outcome) = state.done[at].take() else {
                return Ok(false);
            };
            (segment, at, state.meta[at].0, outcome)
        };
        let result = outcome.and_then(|()| {
            write_or_poison(inner, poisoned, &self.shared.slot(at)[..len + TAG_LEN])
        });
        if let Err(err) = result {
            // The segment is lost: the stream cannot continue.
            *poisoned = true;
            self.shared.lock().stop = true;
            return Err(err);
        }
        self.shared.lock().written = segment + 1;
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
        let index = self.current();
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
            self.shared.slots.len().min(count)
        } else {
            1
        };
        let stride = self.shared.stride;
        // Borrow the slots' buffers (no helper touches them: nothing is in flight).
        let mut buffers: Vec<Zeroizing<Vec<u8>>> = self.shared.slots[..ring]
            .iter()
            .map(|slot| {
                let mut buffer =
                    std::mem::take(&mut *slot.lock().unwrap_or_else(PoisonError::into_inner));
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
        for (slot, buffer) in self.shared.slots.iter().zip(buffers) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = buffer;
        }
        let written = result.as_ref().map_or_else(|(j, _)| *j, |()| count);
        let consumed = span(written).0;
        {
            let mut state = self.shared.lock();
            let next = index + written as u64;
            state.written = next;
            state.claimed = next;
            state.queued = next;
            state.base = next;
        }
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
        self.shared.lock().stop = true;
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
