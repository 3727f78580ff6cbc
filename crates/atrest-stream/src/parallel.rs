//! Parallel segment processing: the worker pool, the automatic threshold, and the parallel
//! one-shot [`Options::seal`] / [`Options::open`].
//!
//! Segments are independent under STREAM (each has its own nonce), so a batch of them can be
//! sealed or opened at once. Results are always consumed in stream order: the first failing
//! segment in stream order decides the error, exactly as in a sequential pass.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use atrest_crypto::TAG_LEN;
use zeroize::Zeroize;

use crate::layout::{Geometry, SegmentCipher};
use crate::{Error, Options};

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

/// A streaming batch carries at least this much plaintext: 512 KiB (eight 64 KiB segments).
///
/// Every batch is a fork and a join: the pool's threads are woken to take segments and the
/// caller waits for the last one. On this project's 2-vCPU VMs a wake-up costs tens of
/// microseconds, as much as sealing a 64 KiB segment, so batches of two segments per worker
/// scaled two workers to a median 1.2-1.3x of one; 512 KiB batches with the caller working
/// too reached 1.55-1.76x (docs/PERFORMANCE.md, "Parallel batches"). The memory this costs
/// is fixed, whatever the stream length.
pub(crate) const BATCH_MIN_BYTES: usize = 512 << 10;

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

    /// Segments per batch in the streaming paths, for segments of `segment` plaintext bytes:
    /// two per worker (so that a worker that finishes early can take a second segment while
    /// a slower one is still busy), and at least [`BATCH_MIN_BYTES`] of plaintext.
    pub(crate) fn batch_segments(self, segment: usize) -> usize {
        (2 * self.workers.max(1)).max(BATCH_MIN_BYTES.div_ceil(segment.max(1)))
    }

    /// Whether an in-memory input of `len` bytes in `segments` segments is processed in
    /// parallel.
    pub(crate) fn for_input(self, len: u64, segments: u64) -> bool {
        self.workers > 1 && segments >= 2 && (!self.automatic || len >= PARALLEL_MIN_BYTES)
    }

    /// Whether [`Options::seal_in_place`] / [`Options::open_in_place`] of `len` bytes in
    /// `segments` segments run in parallel: only with an explicit worker count. Their batches
    /// are sealed or opened in parallel but moved by the caller alone, and with ring that
    /// made two threads slower than one in half the runs on this project's 2-vCPU VMs
    /// (docs/PERFORMANCE.md, "Sixth run"); automatic parallelism must never cost.
    pub(crate) fn for_in_place(self, len: u64, segments: u64) -> bool {
        !self.automatic && self.for_input(len, segments)
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
    match run_alongside(par, parallel, jobs, work, || Ok(())) {
        Ok(()) => Ok(()),
        Err(Failure::Job(at, err)) => Err((at, err)),
        // `first` above cannot fail.
        Err(Failure::First(err)) => Err((0, err)),
    }
}

/// What failed in [`run_alongside`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// `first` failed; the jobs were abandoned (those already taken ran to completion).
    First(Error),
    /// Job `.0` failed (the first failing one in job order); `first` succeeded.
    Job(usize, Error),
}

/// [`run`], with `first` run on the calling thread before it takes any job: in parallel the
/// helpers start on the jobs while the caller does `first` (the encryptor writes the
/// previous batch while the next one is sealed). `first` need not be `Send`.
///
/// If `first` fails, no further job is started; jobs already taken finish, and the error is
/// [`Failure::First`]. Sequentially, `first` runs and then the jobs, as in [`run`].
pub(crate) fn run_alongside<J, F, P>(
    par: Parallelism,
    parallel: bool,
    jobs: Vec<J>,
    work: F,
    first: P,
) -> Result<(), Failure>
where
    J: Send,
    F: Fn(J) -> Result<(), Error> + Sync,
    P: FnOnce() -> Result<(), Error>,
{
    if !parallel {
        first().map_err(Failure::First)?;
        for (at, job) in jobs.into_iter().enumerate() {
            work(job).map_err(|err| Failure::Job(at, err))?;
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
    let count = slots.len();
    // The caller's part: `first`, then jobs; on a failed `first`, make every job taken.
    let caller = || {
        let result = first();
        if result.is_err() {
            next.fetch_add(count, Ordering::Relaxed);
        } else {
            drain();
        }
        result
    };
    // The pool is sized by the configured count, not by this batch's, so a short final
    // batch does not build a pool of its own.
    let first_result = if helpers == 0 {
        caller()
    } else if let Some(pool) = pool(par.workers.saturating_sub(1)) {
        pool.in_place_scope(|scope| participate(scope, helpers, &drain, caller))
    } else {
        // Building the pool failed (the OS refused a thread): borrow rayon's global one.
        rayon::in_place_scope(|scope| participate(scope, helpers, &drain, caller))
    };
    first_result.map_err(Failure::First)?;
    let failures = failures
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    match failures.into_iter().min_by_key(|(at, _)| *at) {
        Some((at, err)) => Err(Failure::Job(at, err)),
        None => Ok(()),
    }
}

/// Starts `helpers` pool tasks running `drain`, then runs `caller` on the calling thread.
fn participate<'scope, D, C>(
    scope: &rayon::Scope<'scope>,
    helpers: usize,
    drain: &'scope D,
    caller: C,
) -> Result<(), Error>
where
    D: Fn() + Sync,
    C: FnOnce() -> Result<(), Error>,
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
