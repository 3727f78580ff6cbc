//! tokio adapters (feature `tokio`): [`AsyncEncryptor`] (`AsyncWrite`), [`AsyncDecryptor`]
//! (`AsyncRead`) and [`AsyncSeekableDecryptor`] (`AsyncRead + AsyncSeek`, plus
//! [`AsyncSeekableDecryptor::read_at`]).
//!
//! Same format, same bytes and same errors as the `std::io` types: an [`AsyncEncryptor`]
//! writes exactly what an [`crate::Encryptor`] with the same header would, and the readers
//! report [`crate::Error::Authentication`], [`crate::Error::Truncated`] and
//! [`crate::Error::TrailingData`] for the same bytes as [`crate::Decryptor`] and
//! [`crate::SeekableDecryptor`] (wrapped in `io::Error`s of kind `InvalidData`; recover them
//! with [`crate::Error::from_io`]).
//!
//! # Keeping the runtime responsive
//!
//! Sealing or opening a segment is CPU work that cannot yield. A segment of up to
//! [`BLOCKING_THRESHOLD`] (64 KiB, the default segment size) is processed inline in `poll`:
//! that is 10–45 µs of AES-GCM on one core, within tokio's guidance of well under a
//! millisecond between yields, and cheaper than a round trip to another thread. Larger
//! segments (up to 16 MiB: 3–10 ms each) are moved, buffer and all, to
//! [`tokio::task::spawn_blocking`], and the future waits for them. `spawn_blocking` rather than
//! `block_in_place` because it works on every runtime flavour (`block_in_place` panics on a
//! current-thread runtime) and does not hand the worker's other tasks to a fresh thread on
//! every segment. Outside a runtime context, all work runs inline.
//!
//! # Cancellation
//!
//! Every adapter is cancel-safe in the sense of tokio's I/O traits: dropping a pending
//! `read`/`write` future leaves the adapter in a consistent state, and dropping the adapter
//! itself while a segment is on the blocking pool detaches that task, which finishes and drops
//! (zeroizing) the buffers it owns. An [`AsyncEncryptor`] dropped before
//! `shutdown`/[`AsyncEncryptor::finish`] leaves a stream that every reader rejects as
//! [`crate::Error::Truncated`].

mod decryptor;
mod encryptor;
mod seekable;

use std::io;

use ::tokio::task::{JoinError, JoinHandle};

pub use decryptor::AsyncDecryptor;
pub use encryptor::AsyncEncryptor;
pub use seekable::AsyncSeekableDecryptor;

use crate::Error;

/// Segments with more plaintext bytes than this (64 KiB) are sealed and opened on tokio's
/// blocking pool; smaller ones inline.
pub const BLOCKING_THRESHOLD: usize = 64 << 10;

/// At most this many ciphertext bytes are read in one `poll` before yielding: copying a 16 MiB
/// segment out of an in-memory reader in one go would block a worker for milliseconds.
const READ_PER_POLL: usize = 1 << 20;

/// Work on one segment: already done inline, or running on the blocking pool.
enum Offloaded<T> {
    Done(T),
    Running(JoinHandle<T>),
}

/// Runs `work` for a segment of `len` plaintext bytes inline or on the blocking pool.
fn offload<T, F>(len: usize, work: F) -> Offloaded<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if len > BLOCKING_THRESHOLD
        && let Ok(handle) = ::tokio::runtime::Handle::try_current()
    {
        return Offloaded::Running(handle.spawn_blocking(work));
    }
    Offloaded::Done(work())
}

/// A blocking task that panicked or was cancelled by a runtime shutdown.
fn join_error(err: JoinError) -> Error {
    Error::Io(io::Error::other(format!(
        "segment crypto task failed: {err}"
    )))
}
