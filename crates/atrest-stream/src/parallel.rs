//! Parallel segment processing: the worker pool, the automatic threshold, and the parallel
//! one-shot [`Options::seal`] / [`Options::open`].
//!
//! Segments are independent under STREAM (each has its own nonce), so a batch of them can be
//! sealed or opened at once. Results are always consumed in stream order: the first failing
//! segment in stream order decides the error, exactly as in a sequential pass.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

use atrest_crypto::TAG_LEN;
use zeroize::Zeroize;

use crate::layout::{Geometry, SegmentCipher};
use crate::{Error, MisuseError, Options};

/// Below this many bytes, automatic parallelism ([`Options::threads`]`(0)`) stays sequential:
/// 1 MiB.
///
/// Handing a batch to the pool and waiting for it costs a few microseconds of wake-up and
/// cross-core cache traffic; a 64 KiB segment costs 10–40 µs of AES-GCM on one core. At
/// 1 MiB the sequential work is 0.2–0.6 ms, so the hand-off is noise and two workers save
/// close to half of it; far below, the pool's wake-up latency would eat the gain. Streams
/// start sequential and move to the pool once this many bytes have gone through them, so
/// short streams never touch it.
pub const PARALLEL_MIN_BYTES: u64 = 1 << 20;

/// A ring of segment slots holds at least this much plaintext: 256 KiB (four 64 KiB
/// segments, which is `2 × workers` on two cores).
///
/// The rings of [`crate::Encryptor`] and [`crate::Decryptor`], and the pipelines of
/// [`Options::seal_in_place`] and [`Options::open_in_place`] ([`run_ordered`]), are not
/// forked and joined per batch: workers take queued segments as they come, so the ring only
/// needs enough slots to keep every worker busy while the caller does the I/O or the moves. Rings of 4, 6 and 8 slots ran
/// the same within the noise on two cores (docs/PERFORMANCE.md, "Tenth run"), so streams
/// keep the smallest, `2 × workers` segments. The floor keeps small segments from turning
/// into a wake-up per segment.
pub(crate) const RING_MIN_BYTES: usize = 256 << 10;

/// An explicit worker count above this is clamped to it (each distinct count keeps a pool).
const MAX_WORKERS: usize = 64;

/// The resolved parallelism of one operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parallelism {
    workers: usize,
    automatic: bool,
}

impl Parallelism {
    pub(crate) fn of(options: &Options) -> Self {
        match options.threads {
            0 => Self {
                workers: available_parallelism(),
                automatic: true,
            },
            n => Self {
                workers: n.min(MAX_WORKERS),
                automatic: false,
            },
        }
    }

    /// True when everything runs on the caller's thread (the original sequential code).
    pub(crate) fn is_sequential(self) -> bool {
        self.workers <= 1
    }

    /// Slots in a stream's ring, for segments of `segment` plaintext bytes: two per worker,
    /// and at least [`RING_MIN_BYTES`] of plaintext.
    pub(crate) fn ring_slots(self, segment: usize) -> usize {
        (2 * self.workers.max(1)).max(RING_MIN_BYTES.div_ceil(segment.max(1)))
    }

    /// Helper threads besides the caller.
    pub(crate) fn helpers(self) -> usize {
        self.workers.saturating_sub(1)
    }

    /// Whether an in-memory input of `len` bytes in `segments` segments is processed in
    /// parallel.
    pub(crate) fn for_input(self, len: u64, segments: u64) -> bool {
        self.workers > 1 && segments >= 2 && (!self.automatic || len >= PARALLEL_MIN_BYTES)
    }

    /// Whether a streaming batch of `jobs` segments holding `bytes` bytes goes to the pool,
    /// after `processed` bytes already went through the stream.
    pub(crate) fn for_batch(self, jobs: usize, processed: u64, bytes: u64) -> bool {
        self.workers > 1
            && jobs >= 2
            && (!self.automatic || processed.saturating_add(bytes) >= PARALLEL_MIN_BYTES)
    }
}

fn available_parallelism() -> usize {
    // The std call reads cgroup files on Linux: cache it.
    static AVAILABLE: OnceLock<usize> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .min(MAX_WORKERS)
    })
}

/// The persistent pool for `workers` helper threads (the caller is one more worker): exactly
/// `workers` threads, built once per distinct count and kept for the life of the process.
/// Spawning threads per batch would cost more than sealing a 64 KiB segment.
///
/// Not rayon's global pool, even when it is large enough: its threads beyond the helpers
/// would wake with every batch and spin in `sched_yield` looking for work, competing with
/// the caller and the helpers for the cores. On two cores (the caller, one helper, and the
/// global pool's idle second thread) `perf` put 10 % of ring's two-thread encryptor in the
/// scheduler that way, 7 % with a pool of one (docs/PERFORMANCE.md, "Sixth run").
fn pool(workers: usize) -> Option<&'static rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<Vec<(usize, &'static rayon::ThreadPool)>>> = OnceLock::new();
    if workers == 0 {
        return None;
    }
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == workers) {
        return Some(pool);
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("atrest-stream-{i}"))
        .build()
        .ok()?;
    // Deliberately kept for the process's lifetime, like rayon's global pool: at most one
    // per distinct worker count (clamped to MAX_WORKERS).
    let pool: &'static rayon::ThreadPool = Box::leak(Box::new(built));
    pools.push((workers, pool));
    Some(pool)
}

/// Runs `task` on a pool helper for `par` in the background (not waited for; it must not
/// unwind: rayon aborts the process on a panic in a detached task).
pub(crate) fn spawn_helper<F>(par: Parallelism, task: F)
where
    F: FnOnce() + Send + 'static,
{
    match pool(par.helpers()) {
        Some(pool) => pool.spawn(task),
        None => rayon::spawn(task),
    }
}

/// Runs `work` on every job, in parallel when `parallel`, and returns the first failure in
/// job order (not the first to happen in time), so errors are those of a sequential pass.
/// Sequentially, it stops at the first failure.
///
/// In parallel the calling thread is one of the workers: it takes jobs from a shared counter
/// alongside `workers - 1` pool threads and, when the jobs run out, waits only for jobs
/// already taken. A fork-join where the caller only waits (rayon's `install`) pays a
/// cross-thread wake-up to start the batch and another to end it, and on a 2-vCPU VM those
/// cost about as much as sealing a 64 KiB segment (docs/PERFORMANCE.md, "Parallel batches").
pub(crate) fn run<J, F>(
    par: Parallelism,
    parallel: bool,
    jobs: Vec<J>,
    work: F,
) -> Result<(), (usize, Error)>
where
    J: Send,
    F: Fn(J) -> Result<(), Error> + Sync,
{
    if !parallel {
        for (at, job) in jobs.into_iter().enumerate() {
            work(job).map_err(|err| (at, err))?;
        }
        return Ok(());
    }
    let helpers = par.workers.min(jobs.len()).saturating_sub(1);
    let slots: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
    let drain = || {
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(at) else {
                break;
            };
            let job = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(Err(err)) = job.map(&work) {
                failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((at, err));
            }
        }
    };
    with_helpers(par, helpers, &drain, drain);
    let failures = failures
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match failures.into_iter().min_by_key(|(at, _)| *at) {
        Some((at, err)) => Err((at, err)),
        None => Ok(()),
    }
}

/// Runs `caller` on the calling thread while `helpers` tasks of the pool for `par` run
/// `helper`; returns once all of them have returned. With no helpers, runs `caller` alone.
/// A panic in a helper reaches the caller when they are all done (rayon's scope).
fn with_helpers<H, C, R>(par: Parallelism, helpers: usize, helper: &H, caller: C) -> R
where
    H: Fn() + Sync,
    C: FnOnce() -> R,
{
    if helpers == 0 {
        return caller();
    }
    // The pool is sized by the configured count, not by this batch's, so a short final
    // batch does not build a pool of its own.
    match pool(par.workers.saturating_sub(1)) {
        Some(pool) => pool.in_place_scope(|scope| participate(scope, helpers, helper, caller)),
        // Building the pool failed (the OS refused a thread): borrow rayon's global one.
        None => rayon::in_place_scope(|scope| participate(scope, helpers, helper, caller)),
    }
}

/// Runs `count` jobs through a ring of `slots` and hands each finished one, in job order, to
/// `emit` on the calling thread: job `j` is done by `work(j, slot)` in slot `j % slots.len()`
/// and emitted from there; the slot takes job `j + slots.len()` only after that. Stops at the
/// first failure in job order, of `work` or of `emit`, and returns it with the number of
/// jobs emitted before it; nothing after a failed job is emitted.
///
/// Sequentially (`!parallel`, or one worker), the caller does each job and emits it.
///
/// In parallel this is one fork and one join for all `count` jobs, however many there are:
/// `workers - 1` helpers take jobs as long as a slot is free, and the caller emits the next
/// job in order whenever it is done and otherwise takes a job itself. Nobody waits at a
/// batch boundary, so on two cores the helper is not put to sleep and woken for every few
/// segments, as with [`run`] per batch (docs/PERFORMANCE.md, "Eighth run"). Memory stays at
/// the slots.
pub(crate) fn run_ordered<S, W, E>(
    par: Parallelism,
    parallel: bool,
    count: usize,
    slots: Vec<S>,
    work: W,
    mut emit: E,
) -> Result<(), (usize, Error)>
where
    S: Send,
    W: Fn(usize, &mut S) -> Result<(), Error> + Sync,
    E: FnMut(usize, &S) -> Result<(), Error>,
{
    let helpers = if parallel {
        par.workers.min(count).saturating_sub(1)
    } else {
        0
    };
    if helpers == 0 || slots.len() < 2 {
        let mut slots = slots;
        let ring = slots.len();
        for j in 0..count {
            // Callers pass at least one slot; without one, no job can be done.
            let slot = slots
                .get_mut(j % ring.max(1))
                .ok_or((j, Error::Misuse(MisuseError::Poisoned)))?;
            work(j, slot).map_err(|err| (j, err))?;
            emit(j, slot).map_err(|err| (j, err))?;
        }
        return Ok(());
    }
    let ring = Ring {
        count,
        state: Mutex::new(RingState {
            claimed: 0,
            emitted: 0,
            done: slots.iter().map(|_| None).collect(),
            waiting: 0,
            stop: false,
        }),
        wake: Condvar::new(),
        slots: slots.into_iter().map(Mutex::new).collect(),
    };
    let helper = || ring.help(&work);
    with_helpers(par, helpers, &helper, || ring.lead(&work, &mut emit))
}

/// The shared state of a parallel [`run_ordered`].
struct Ring<S> {
    count: usize,
    state: Mutex<RingState>,
    /// Signalled when a job is done (the caller may wait for it), when one is emitted (a
    /// helper may wait for its slot), and on a stop.
    wake: Condvar,
    slots: Vec<Mutex<S>>,
}

struct RingState {
    /// Jobs `0..claimed` have been taken by a worker.
    claimed: usize,
    /// Jobs `0..emitted` have been emitted; slot `j % slots` is free for job `j` once job
    /// `j - slots` is emitted, that is while `j < emitted + slots`.
    emitted: usize,
    /// Per slot, the outcome of its job once done, until the caller takes it.
    done: Vec<Option<Result<(), Error>>>,
    /// Threads blocked on `wake`: notifying costs a syscall, so only when someone waits.
    waiting: usize,
    /// No more jobs are taken: the caller gave up on a failure, or a worker panicked.
    stop: bool,
}

impl<S> Ring<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, RingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, job: usize) -> std::sync::MutexGuard<'_, S> {
        self.slots[job % self.slots.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next job if there is one and its slot is free.
    fn claim(&self, state: &mut RingState) -> Option<usize> {
        let free = state.claimed < state.emitted.saturating_add(self.slots.len());
        (!state.stop && state.claimed < self.count && free).then(|| {
            state.claimed += 1;
            state.claimed - 1
        })
    }

    /// Blocks on `wake`, counted in `waiting`.
    fn wait<'a>(
        &'a self,
        mut state: std::sync::MutexGuard<'a, RingState>,
    ) -> std::sync::MutexGuard<'a, RingState> {
        state.waiting += 1;
        let mut state = self
            .wake
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
        state.waiting -= 1;
        state
    }

    fn notify(&self, state: &RingState) {
        if state.waiting > 0 {
            self.wake.notify_all();
        }
    }

    /// Does job `j` in its slot and records the outcome.
    fn run_job<W>(&self, job: usize, work: &W)
    where
        W: Fn(usize, &mut S) -> Result<(), Error>,
    {
        let outcome = work(job, &mut self.slot(job));
        let mut state = self.lock();
        let at = job % self.slots.len();
        state.done[at] = Some(outcome);
        self.notify(&state);
    }

    /// A helper: takes jobs while there are any, waiting for a free slot when all are busy.
    fn help<W>(&self, work: &W)
    where
        W: Fn(usize, &mut S) -> Result<(), Error>,
    {
        let _stop = StopOnPanic(self);
        loop {
            let mut state = self.lock();
            let job = loop {
                if let Some(job) = self.claim(&mut state) {
                    break job;
                }
                if state.stop || state.claimed == self.count {
                    return;
                }
                state = self.wait(state);
            };
            drop(state);
            self.run_job(job, work);
        }
    }

    /// The caller: emits each job in order as soon as it is done, and takes jobs itself
    /// while the next one to emit is not done yet.
    fn lead<W, E>(&self, work: &W, emit: &mut E) -> Result<(), (usize, Error)>
    where
        W: Fn(usize, &mut S) -> Result<(), Error>,
        E: FnMut(usize, &S) -> Result<(), Error>,
    {
        let _stop = StopOnPanic(self);
        let result = self.lead_jobs(work, emit);
        if result.is_err() {
            self.halt();
        }
        result
    }

    fn lead_jobs<W, E>(&self, work: &W, emit: &mut E) -> Result<(), (usize, Error)>
    where
        W: Fn(usize, &mut S) -> Result<(), Error>,
        E: FnMut(usize, &S) -> Result<(), Error>,
    {
        let mut emitted = 0;
        while emitted < self.count {
            let mut state = self.lock();
            let at = emitted % self.slots.len();
            if let Some(outcome) = state.done[at].take() {
                drop(state);
                outcome.map_err(|err| (emitted, err))?;
                emit(emitted, &self.slot(emitted)).map_err(|err| (emitted, err))?;
                emitted += 1;
                let mut state = self.lock();
                state.emitted = emitted;
                self.notify(&state);
            } else if let Some(job) = self.claim(&mut state) {
                drop(state);
                self.run_job(job, work);
            } else if state.stop {
                // A helper panicked; the scope re-raises its panic once it has returned.
                return Err((emitted, MisuseError::Poisoned.into()));
            } else {
                drop(self.wait(state));
            }
        }
        Ok(())
    }

    /// Stops every worker: no job is taken after this, and waiting helpers return.
    fn halt(&self) {
        let mut state = self.lock();
        state.stop = true;
        self.notify(&state);
    }
}

/// Halts a [`Ring`] if its thread unwinds, so no other thread waits forever for it.
struct StopOnPanic<'a, S>(&'a Ring<S>);

impl<S> Drop for StopOnPanic<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.halt();
        }
    }
}

/// Starts `helpers` pool tasks running `drain`, then runs `caller` on the calling thread.
fn participate<'scope, D, C, R>(
    scope: &rayon::Scope<'scope>,
    helpers: usize,
    drain: &'scope D,
    caller: C,
) -> R
where
    D: Fn() + Sync,
    C: FnOnce() -> R,
{
    for _ in 0..helpers {
        scope.spawn(move |_| drain());
    }
    caller()
}

/// Parallel [`Options::seal`]: every segment is sealed straight from `plaintext` into its
/// place in the output by one worker, so it is read, sealed and written while in that
/// worker's cache.
pub(crate) fn seal(
    par: Parallelism,
    cipher: &SegmentCipher,
    plaintext: &[u8],
    total: usize,
) -> Result<Vec<u8>, Error> {
    // `vec![0; n]` is calloc: fresh pages are zeroed by the kernel on first touch, which is
    // the worker sealing into them, so this is no extra pass over memory.
    let mut out = vec![0u8; total];
    let header = cipher.layout.header();
    let (head, mut body) = out.split_at_mut(header.len());
    head.copy_from_slice(header);
    let mut jobs = Vec::new();
    let mut rest = plaintext;
    let mut index = 0u64;
    loop {
        let capacity = cipher.layout.segment_pt_len(index);
        let last = rest.len() <= capacity;
        let (segment, tail) = rest.split_at(rest.len().min(capacity));
        let (into, more) = std::mem::take(&mut body).split_at_mut(segment.len() + TAG_LEN);
        jobs.push((index, last, segment, into));
        body = more;
        rest = tail;
        if last {
            break;
        }
        index += 1;
    }
    debug_assert!(body.is_empty());
    run(par, true, jobs, |(index, last, segment, into)| {
        cipher.seal_to(index, last, segment, into)
    })
    .map_err(|(_, err)| err)?;
    Ok(out)
}

/// Parallel [`Options::open`] of a stream whose tail is sound (`!geometry.bad_tail()`).
/// Returns the error of the first failing segment in stream order; the output is wiped and
/// dropped on any failure.
pub(crate) fn open(
    par: Parallelism,
    cipher: &SegmentCipher,
    geometry: &Geometry,
    ciphertext: &[u8],
    pt_len: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; pt_len];
    let mut jobs = Vec::new();
    let mut rest = out.as_mut_slice();
    for index in 0..geometry.segments {
        let (start, ct_len) = cipher.layout.segment_span(geometry, index);
        let start = usize::try_from(start).map_err(|_| Error::Truncated)?;
        let last = index + 1 == geometry.segments;
        let (into, more) = std::mem::take(&mut rest).split_at_mut(ct_len - TAG_LEN);
        jobs.push((index, last, &ciphertext[start..start + ct_len], into));
        rest = more;
    }
    if let Err((_, err)) = run(par, true, jobs, |(index, last, segment, into)| {
        cipher.open_to(index, last, segment, into)
    }) {
        // Later segments may have authenticated and written plaintext: wipe all of it.
        out.zeroize();
        return Err(err);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{Parallelism, run_ordered};
    use crate::{Error, MisuseError, Options};

    fn par(threads: usize) -> Parallelism {
        Parallelism::of(&Options::default().threads(threads))
    }

    fn failure() -> Error {
        Error::Authentication
    }

    /// Runs `count` jobs that write their number into their slot, failing `work` at
    /// `fail_work` and `emit` at `fail_emit`; returns the result and the jobs emitted, in
    /// the order `emit` saw them.
    fn ordered(
        threads: usize,
        slots: usize,
        count: usize,
        fail_work: Option<usize>,
        fail_emit: Option<usize>,
    ) -> (Result<(), (usize, Error)>, Vec<usize>) {
        let mut seen = Vec::new();
        let result = run_ordered(
            par(threads),
            threads > 1,
            count,
            vec![usize::MAX; slots],
            |j, slot: &mut usize| {
                // Uneven job lengths, so the workers finish out of order.
                std::hint::black_box((0..(j * 7919) % 5000).sum::<usize>());
                if Some(j) == fail_work {
                    return Err(failure());
                }
                *slot = j;
                Ok(())
            },
            |j, slot| {
                assert_eq!(*slot, j, "slot holds job {j}");
                if Some(j) == fail_emit {
                    return Err(failure());
                }
                seen.push(j);
                Ok(())
            },
        );
        (result, seen)
    }

    #[test]
    fn every_job_is_emitted_once_in_order() {
        for threads in [1, 2, 3, 5] {
            for slots in [1, 2, 3, 8] {
                for count in [0, 1, 2, 7, 64, 301] {
                    let (result, seen) = ordered(threads, slots, count, None, None);
                    assert!(result.is_ok(), "{threads} threads, {slots} slots, {count}");
                    assert_eq!(seen, (0..count).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn the_first_failure_in_job_order_stops_the_run() {
        for threads in [1, 2, 3] {
            for slots in [1, 2, 8] {
                for at in [0, 1, 5, 99] {
                    for (work, emit) in
                        [(Some(at), None), (None, Some(at)), (Some(at + 1), Some(at))]
                    {
                        let (result, seen) = ordered(threads, slots, 100, work, emit);
                        let (failed, err) = result.expect_err("a job fails");
                        assert_eq!(failed, at, "{threads} threads, {slots} slots");
                        assert!(matches!(err, Error::Authentication));
                        assert_eq!(seen, (0..at).collect::<Vec<_>>(), "nothing after it");
                    }
                }
            }
        }
    }

    #[test]
    fn a_slot_holds_one_job_at_a_time() {
        // Every slot records the jobs done in it; each must be the previous one plus the
        // ring size, and it must have been emitted before the next one started.
        let emitted = AtomicUsize::new(0);
        let slots = 3;
        let clash = Mutex::new(Vec::new());
        run_ordered(
            par(3),
            true,
            200,
            vec![None::<usize>; slots],
            |j, slot: &mut Option<usize>| {
                std::hint::black_box((0..(j * 7919) % 5000).sum::<usize>());
                if let Some(before) = *slot
                    && (before + slots != j || emitted.load(Ordering::SeqCst) <= before)
                {
                    clash.lock().expect("lock").push((before, j));
                }
                *slot = Some(j);
                Ok(())
            },
            |j, _| {
                emitted.store(j + 1, Ordering::SeqCst);
                Ok(())
            },
        )
        .expect("no failure");
        assert_eq!(*clash.lock().expect("lock"), Vec::<(usize, usize)>::new());
    }

    #[test]
    fn a_panic_in_any_worker_reaches_the_caller_without_a_hang() {
        for threads in [2, 3] {
            for at in [0, 1, 2, 50] {
                for in_emit in [false, true] {
                    let caught = std::panic::catch_unwind(|| {
                        run_ordered(
                            par(threads),
                            true,
                            100,
                            vec![0u8; 4],
                            |j, _: &mut u8| {
                                assert!(in_emit || j != at, "job {j} panics");
                                Ok(())
                            },
                            |j, _| {
                                assert!(!in_emit || j != at, "emit {j} panics");
                                Ok::<(), Error>(())
                            },
                        )
                    });
                    assert!(
                        caught.is_err(),
                        "{threads} threads, at {at}, emit {in_emit}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_slot_means_no_job() {
        let result = run_ordered(
            par(1),
            false,
            1,
            Vec::<u8>::new(),
            |_, _| Ok(()),
            |_, _| Ok(()),
        );
        assert!(matches!(
            result,
            Err((0, Error::Misuse(MisuseError::Poisoned)))
        ));
    }
}
