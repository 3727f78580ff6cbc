//! A ring of segment slots shared by a stream's caller and pool helpers, for the parallel
//! [`crate::Encryptor`] and [`crate::Decryptor`]. It outlives single `read`/`write` calls.
//!
//! The caller queues segments in stream order into free slots (plaintext to seal, or
//! ciphertext to open); helpers started on the pool take queued segments in order and run
//! the ring's job on them in the background; the caller takes the outcomes back in stream
//! order, runs queued jobs itself while the next outcome is not ready, and retires a slot
//! once it has written or released it. Nobody waits at a batch boundary, and a helper returns
//! as soon as nothing is queued, so an idle stream holds no pool thread.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::Error;
use crate::layout::SegmentCipher;
use crate::parallel::{self, Parallelism};

/// The work done on one queued segment: its index, its metadata, and its slot.
pub(crate) type Job<S, M> = fn(&SegmentCipher, u64, M, &mut S) -> Result<(), Error>;

pub(crate) struct Ring<S, M> {
    cipher: Arc<SegmentCipher>,
    slots: Vec<Mutex<S>>,
    state: Mutex<State<M>>,
    /// Signalled when a job is done, for a caller waiting on one.
    done: Condvar,
    job: Job<S, M>,
}

/// Segments move through `retired <= claimed <= queued`: queued (waiting for a worker),
/// claimed (being processed, or done), retired (written or released by the caller).
struct State<M> {
    retired: u64,
    claimed: u64,
    queued: u64,
    /// Segment `base` maps to slot 0; moved only while nothing is in flight, so a
    /// sequential stream keeps reusing slot 0 while it is in cache.
    base: u64,
    /// Per slot: the metadata of its queued segment.
    meta: Vec<M>,
    /// Per slot: the outcome of its job, until the caller takes it.
    outcome: Vec<Option<Result<(), Error>>>,
    /// Helper tasks running.
    helpers: usize,
    /// The caller is blocked on `done`.
    waiting: bool,
    /// Set when the stream is dropped or failed: helpers take no more segments.
    stop: bool,
}

impl<M> State<M> {
    fn slot(&self, segment: u64, slots: usize) -> usize {
        // Below `slots` after the modulo, so the conversion cannot fail.
        usize::try_from(segment.saturating_sub(self.base) % slots as u64).unwrap_or(0)
    }
}

/// A segment whose job is done, as handed back to the caller.
pub(crate) struct Done<M> {
    pub(crate) slot: usize,
    pub(crate) meta: M,
    pub(crate) outcome: Result<(), Error>,
}

impl<S: Send + 'static, M: Copy + Send + 'static> Ring<S, M> {
    pub(crate) fn new(
        cipher: &Arc<SegmentCipher>,
        slots: usize,
        job: Job<S, M>,
        empty: impl Fn() -> S,
        meta: M,
    ) -> Self {
        let slots = slots.max(1);
        Self {
            cipher: Arc::clone(cipher),
            slots: (0..slots).map(|_| Mutex::new(empty())).collect(),
            state: Mutex::new(State {
                retired: 0,
                claimed: 0,
                queued: 0,
                base: 0,
                meta: vec![meta; slots],
                outcome: (0..slots).map(|_| None).collect(),
                helpers: 0,
                waiting: false,
                stop: false,
            }),
            done: Condvar::new(),
            job,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Slot `at` (the caller's only while the segment in it is not claimed by a helper).
    pub(crate) fn slot(&self, at: usize) -> MutexGuard<'_, S> {
        self.slots[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The next segment to queue.
    pub(crate) fn queued(&self) -> u64 {
        self.lock().queued
    }

    /// Segments queued and not yet retired.
    pub(crate) fn in_flight(&self) -> u64 {
        let state = self.lock();
        state.queued - state.retired
    }

    /// The slot for the next segment to queue, if it is free.
    pub(crate) fn free_slot(&self) -> Option<usize> {
        let state = self.lock();
        (state.queued - state.retired < self.slots.len() as u64)
            .then(|| state.slot(state.queued, self.slots.len()))
    }

    /// Queues the next segment (its slot filled by the caller) with `meta`, starting up to
    /// `helpers` helpers on the pool for it.
    pub(crate) fn queue(self: &Arc<Self>, meta: M, par: Parallelism, helpers: usize) {
        let start = {
            let mut state = self.lock();
            let at = state.slot(state.queued, self.slots.len());
            state.meta[at] = meta;
            state.queued += 1;
            let wanted =
                helpers.min(usize::try_from(state.queued - state.claimed).unwrap_or(usize::MAX));
            let start = wanted.saturating_sub(state.helpers);
            state.helpers += start;
            start
        };
        for _ in 0..start {
            let ring = Arc::clone(self);
            parallel::spawn_helper(par, move || ring.help());
        }
    }

    /// Takes the oldest queued segment, if any: (segment, slot, metadata). Helpers take
    /// none once the ring is stopped; the caller still can, so it never waits for a segment
    /// nobody will process.
    fn claim(&self, state: &mut State<M>, helper: bool) -> Option<(u64, usize, M)> {
        if (helper && state.stop) || state.claimed >= state.queued {
            return None;
        }
        let segment = state.claimed;
        state.claimed += 1;
        let at = state.slot(segment, self.slots.len());
        Some((segment, at, state.meta[at]))
    }

    /// Runs the job of a claimed segment and records the outcome. A panic in the job
    /// becomes an error here, so a pool thread never unwinds (rayon would abort).
    fn run(&self, (segment, at, meta): (u64, usize, M)) {
        let outcome = {
            let mut slot = self.slot(at);
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                (self.job)(&self.cipher, segment, meta, &mut slot)
            }))
            .unwrap_or_else(|_| {
                Err(std::io::Error::other("an atrest-stream worker panicked").into())
            })
        };
        let mut state = self.lock();
        state.outcome[at] = Some(outcome);
        if state.waiting {
            self.done.notify_all();
        }
    }

    /// A pool helper: runs queued jobs until none is left, then returns.
    fn help(&self) {
        loop {
            let claim = {
                let mut state = self.lock();
                match self.claim(&mut state, true) {
                    Some(claim) => claim,
                    None => {
                        state.helpers -= 1;
                        return;
                    }
                }
            };
            self.run(claim);
        }
    }

    /// The oldest segment not retired, once its job is done; `None` if nothing is queued.
    /// With `wait`, runs queued jobs on the calling thread (or waits for a helper) until it
    /// is done; without, returns `None` if it is not done yet. The caller retires the slot
    /// with [`Ring::retire`] when it has used it.
    pub(crate) fn next(&self, wait: bool) -> Option<Done<M>> {
        let mut state = self.lock();
        loop {
            if state.retired == state.queued {
                return None;
            }
            let at = state.slot(state.retired, self.slots.len());
            if let Some(outcome) = state.outcome[at].take() {
                return Some(Done {
                    slot: at,
                    meta: state.meta[at],
                    outcome,
                });
            }
            if !wait {
                return None;
            }
            if let Some(claim) = self.claim(&mut state, false) {
                drop(state);
                self.run(claim);
                state = self.lock();
                continue;
            }
            state.waiting = true;
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting = false;
        }
    }

    /// Frees the oldest segment's slot. With `rebase`, and nothing left in flight, the next
    /// segment goes to slot 0 (only when the caller holds nothing in the next slot).
    pub(crate) fn retire(&self, rebase: bool) {
        let mut state = self.lock();
        state.retired += 1;
        if rebase && state.retired == state.queued {
            state.base = state.queued;
        }
    }

    /// Moves every counter to `segment`, for a caller that processed segments outside the
    /// ring (nothing may be in flight).
    pub(crate) fn skip_to(&self, segment: u64) {
        let mut state = self.lock();
        debug_assert_eq!(state.retired, state.queued);
        state.retired = segment;
        state.claimed = segment;
        state.queued = segment;
        state.base = segment;
    }

    /// No more segments are taken; helpers return after their current one.
    pub(crate) fn halt(&self) {
        self.lock().stop = true;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Ring;
    use crate::layout::{Layout, SegmentCipher};
    use crate::parallel::Parallelism;
    use crate::{Error, Options};

    fn cipher() -> Arc<SegmentCipher> {
        let options = Options::default();
        let layout = Layout::generate(&options).expect("layout");
        let key = atrest_crypto::Key256::from_bytes([1; 32]);
        Arc::new(SegmentCipher::new(layout, &options, &key, b"").expect("cipher"))
    }

    /// Writes the segment index into the slot; panics when the metadata says so.
    fn job(_: &SegmentCipher, segment: u64, panic: bool, slot: &mut u64) -> Result<(), Error> {
        assert!(!panic, "job {segment} panics");
        *slot = segment;
        Ok(())
    }

    #[test]
    fn outcomes_come_back_in_order_and_a_panic_is_an_error() {
        let par = Parallelism::of(&Options::default().threads(3));
        for helpers in [0, 1, 2] {
            let ring = Arc::new(Ring::new(&cipher(), 4, job, || u64::MAX, false));
            let mut seen = Vec::new();
            for segment in 0..50u64 {
                while ring.free_slot().is_none() {
                    let done = ring.next(true).expect("a segment is in flight");
                    seen.push((*ring.slot(done.slot), done.outcome.is_ok()));
                    ring.retire(true);
                }
                ring.queue(segment == 37, par, helpers);
            }
            while let Some(done) = ring.next(true) {
                seen.push((*ring.slot(done.slot), done.outcome.is_ok()));
                ring.retire(true);
            }
            let expected: Vec<_> = (0..50u64)
                .map(|s| {
                    if s == 37 {
                        (u64::MAX, false)
                    } else {
                        (s, true)
                    }
                })
                .collect();
            // Slot contents of the panicking job are whatever it held before: compare
            // only the outcome there.
            for (at, (got, want)) in seen.iter().zip(&expected).enumerate() {
                assert_eq!(got.1, want.1, "{helpers} helpers, segment {at}");
                if want.1 {
                    assert_eq!(got.0, want.0, "{helpers} helpers, segment {at}");
                }
            }
            assert_eq!(seen.len(), 50);
        }
    }

    #[test]
    fn a_stopped_ring_still_lets_the_caller_finish() {
        let par = Parallelism::of(&Options::default().threads(2));
        let ring = Arc::new(Ring::new(&cipher(), 3, job, || 0, false));
        ring.halt();
        for _ in 0..3 {
            ring.queue(false, par, 1);
        }
        for segment in 0..3 {
            let done = ring.next(true).expect("queued");
            assert!(done.outcome.is_ok());
            assert_eq!(*ring.slot(done.slot), segment);
            ring.retire(true);
        }
        assert!(ring.next(true).is_none());
    }
}
