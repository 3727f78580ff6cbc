//! The tokio adapters: same bytes and same errors as the sync types, cancellation, seeking,
//! and how long a runtime worker is blocked.

#![cfg(feature = "tokio")]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::panic,
    clippy::print_stdout,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::future::Future;
use std::io::{Cursor, SeekFrom};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atrest_stream::tokio::{AsyncDecryptor, AsyncEncryptor, AsyncSeekableDecryptor};
use atrest_stream::{Error, Options};
use common::{
    Kind, PROVIDERS, decrypt_all_ways, key, kind, pattern, segment_sizes, segment_spans,
    small_segment_options,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

const SALT: [u8; 32] = [0x7E; 32];

fn io_kind(err: std::io::Error) -> Kind {
    kind(&Error::from_io(err))
}

async fn encrypt_async(options: &Options, plaintext: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc =
        AsyncEncryptor::with_options(Vec::new(), &key(4), b"async", options).expect("encryptor");
    for piece in plaintext.chunks(chunk.max(1)) {
        enc.write_all(piece).await.expect("write");
    }
    enc.finish().await.expect("finish")
}

/// Decrypts `ct` through every async reader; returns each outcome with its name.
async fn decrypt_all_ways_async(
    options: &Options,
    ct: &[u8],
) -> Vec<(&'static str, Result<Vec<u8>, Kind>)> {
    let mut out = Vec::new();
    let big = async {
        let mut d = AsyncDecryptor::with_options(ct, &key(4), b"async", options)
            .await
            .map_err(|e| kind(&e))?;
        let mut v = Vec::new();
        d.read_to_end(&mut v).await.map_err(io_kind)?;
        Ok(v)
    };
    out.push(("async decryptor/read_to_end", big.await));
    let small = async {
        let mut d = AsyncDecryptor::with_options(ct, &key(4), b"async", options)
            .await
            .map_err(|e| kind(&e))?;
        let mut v = Vec::new();
        let mut chunk = [0u8; 777];
        loop {
            let n = d.read(&mut chunk).await.map_err(io_kind)?;
            if n == 0 {
                return Ok(v);
            }
            v.extend_from_slice(&chunk[..n]);
        }
    };
    out.push(("async decryptor/777-byte reads", small.await));
    let seq = async {
        let mut d =
            AsyncSeekableDecryptor::with_options(Cursor::new(ct), &key(4), b"async", options)
                .await
                .map_err(|e| kind(&e))?;
        let mut v = Vec::new();
        d.read_to_end(&mut v).await.map_err(io_kind)?;
        Ok(v)
    };
    out.push(("async seekable/read_to_end", seq.await));
    let at = async {
        let mut d =
            AsyncSeekableDecryptor::with_options(Cursor::new(ct), &key(4), b"async", options)
                .await
                .map_err(|e| kind(&e))?;
        let mut v = Vec::new();
        let mut chunk = vec![0u8; 5000];
        loop {
            let n = d
                .read_at(v.len() as u64, &mut chunk)
                .await
                .map_err(|e| kind(&e))?;
            if n == 0 {
                return Ok(v);
            }
            v.extend_from_slice(&chunk[..n]);
        }
    };
    out.push(("async seekable/read_at", at.await));
    let end = async {
        let mut d =
            AsyncSeekableDecryptor::with_options(Cursor::new(ct), &key(4), b"async", options)
                .await
                .map_err(|e| kind(&e))?;
        let len = d.seek(SeekFrom::End(0)).await.map_err(io_kind)?;
        d.seek(SeekFrom::Start(0)).await.map_err(io_kind)?;
        let mut v = vec![0u8; len as usize];
        d.read_exact(&mut v).await.map_err(io_kind)?;
        Ok(v)
    };
    out.push(("async seekable/seek-end", end.await));
    out
}

fn test_options() -> Vec<Options> {
    let mut all = Vec::new();
    for provider in PROVIDERS {
        all.extend(small_segment_options(provider));
        // Above the blocking threshold: segments go to the blocking pool.
        all.push(
            Options::native(128 << 10)
                .expect("valid")
                .provider(provider),
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_match_the_sync_types() {
    for options in test_options() {
        let options = options.fixed_salt_for_testing(SALT);
        let (first, rest) = segment_sizes(&options);
        for len in [
            0,
            1,
            first - 1,
            first,
            first + 1,
            first + 2 * rest,
            first + 2 * rest + 1,
        ] {
            let plaintext = pattern(len);
            let expected = options.seal(&key(4), b"async", &plaintext).expect("seal");
            for chunk in [len, 1000] {
                assert_eq!(
                    encrypt_async(&options, &plaintext, chunk).await,
                    expected,
                    "{:?} len {len}",
                    options.format()
                );
            }
            for (path, got) in decrypt_all_ways_async(&options, &expected).await {
                assert_eq!(
                    got,
                    Ok(plaintext.clone()),
                    "{path} {:?} len {len}",
                    options.format()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_streams_fail_as_in_the_sync_types() {
    for options in test_options() {
        let (first, rest) = segment_sizes(&options);
        let plaintext = pattern(first + 4 * rest + rest / 3);
        let ct = options.seal(&key(4), b"async", &plaintext).expect("seal");
        let spans = segment_spans(&options, ct.len());
        let mut damaged = Vec::new();
        for (k, &(at, len)) in spans.iter().enumerate() {
            let mut flipped = ct.clone();
            flipped[at + len - 1] ^= 4;
            damaged.push(flipped);
            damaged.push(ct[..at].to_vec());
            damaged.push(ct[..at + 15.min(len - 1)].to_vec());
            if k == 1 {
                let mut swapped = ct.clone();
                let (a, b) = (spans[1], spans[2]);
                swapped[a.0..a.0 + a.1].copy_from_slice(&ct[b.0..b.0 + b.1]);
                swapped[b.0..b.0 + b.1].copy_from_slice(&ct[a.0..a.0 + a.1]);
                damaged.push(swapped);
            }
        }
        for extra in [1, 16, 17, rest + 16, 2 * (rest + 16) + 3] {
            let mut trailing = ct.clone();
            trailing.extend(std::iter::repeat_n(0x33, extra));
            damaged.push(trailing);
        }
        damaged.push(ct[..5].to_vec());
        let mut header = ct.clone();
        header[0] ^= 1;
        damaged.push(header);
        for bytes in &damaged {
            let reference = decrypt_all_ways(&options, &key(4), b"async", bytes);
            let sync_seq = &reference[1].1;
            assert!(sync_seq.is_err(), "damage went unnoticed");
            for (path, got) in decrypt_all_ways_async(&options, bytes).await {
                // Each async reader matches its sync twin.
                let twin = match path {
                    "async decryptor/read_to_end" => &reference[1].1,
                    "async decryptor/777-byte reads" => &reference[2].1,
                    "async seekable/read_to_end" => &reference[3].1,
                    "async seekable/read_at" => &reference[4].1,
                    _ => &reference[5].1,
                };
                assert_eq!(
                    &got,
                    twin,
                    "{path}, {:?}, {} bytes",
                    options.format(),
                    bytes.len()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_model() {
    let options = Options::native(4096).expect("valid");
    let plaintext = pattern(10 * 4096 + 321);
    let ct = options.seal(&key(4), b"async", &plaintext).expect("seal");
    let mut d = AsyncSeekableDecryptor::with_options(Cursor::new(ct), &key(4), b"async", &options)
        .await
        .expect("open");
    let len = plaintext.len() as u64;
    let mut state = 0x1234_5678u64;
    let mut pos = 0u64;
    for _ in 0..300 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let r = state >> 33;
        let to = match r % 3 {
            0 => SeekFrom::Start(r % (len + 100)),
            1 => SeekFrom::Current((r % 9000) as i64 - 4500),
            _ => SeekFrom::End(-((r % (len + 1)) as i64)),
        };
        let expected = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => pos.checked_add_signed(d),
            SeekFrom::End(d) => len.checked_add_signed(d),
        };
        match (d.seek(to).await, expected) {
            (Ok(got), Some(want)) => {
                assert_eq!(got, want);
                pos = got;
            }
            (Err(_), None) => {}
            (got, want) => panic!("seek {to:?}: {got:?} vs {want:?}"),
        }
        let mut buf = vec![0u8; (r % 6000) as usize];
        let n = d.read(&mut buf).await.expect("read");
        let start = pos.min(len) as usize;
        let avail = plaintext.len() - start;
        assert!(n <= avail && (n > 0 || avail == 0 || buf.is_empty()));
        assert_eq!(&buf[..n], &plaintext[start..start + n]);
        pos += n as u64;
        let mut at = [0u8; 100];
        let off = r % (len + 10);
        let n = d.read_at(off, &mut at).await.expect("read_at");
        let off = off.min(len) as usize;
        assert_eq!(&at[..n], &plaintext[off..(off + 100).min(plaintext.len())]);
    }
    assert_eq!(d.verified_len().await.expect("len"), len);
}

/// An `AsyncWrite` into a shared buffer, so the bytes survive the writer's drop.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        d: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().expect("lock").extend_from_slice(d);
        Poll::Ready(Ok(d.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_encryptor_leaves_a_truncated_stream() {
    for segment in [4096, 1 << 20] {
        let options = Options::native(segment).expect("valid");
        let plaintext = pattern(3 * segment as usize + 10);
        // Dropped between writes, and dropped with a write future pending (possibly while a
        // segment is on the blocking pool).
        for cancel_after in [None, Some(Duration::from_micros(200))] {
            let sink = Shared::default();
            let mut enc = AsyncEncryptor::with_options(sink.clone(), &key(4), b"async", &options)
                .expect("enc");
            match cancel_after {
                None => enc.write_all(&plaintext).await.expect("write"),
                Some(after) => {
                    let _ = tokio::time::timeout(after, enc.write_all(&plaintext)).await;
                }
            }
            drop(enc);
            let written = sink.0.lock().expect("lock").clone();
            let outcome = options
                .open(&key(4), b"async", &written)
                .map_err(|e| kind(&e));
            assert_eq!(
                outcome,
                Err(Kind::Truncated),
                "segment {segment}, {cancel_after:?}"
            );
        }
        // And shutdown completes it.
        let sink = Shared::default();
        let mut enc =
            AsyncEncryptor::with_options(sink.clone(), &key(4), b"async", &options).expect("enc");
        enc.write_all(&plaintext).await.expect("write");
        enc.shutdown().await.expect("shutdown");
        let written = sink.0.lock().expect("lock").clone();
        assert_eq!(
            options.open(&key(4), b"async", &written).expect("open"),
            plaintext
        );
        assert!(enc.write(b"more").await.is_err(), "write after shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_reads_resume_and_dropped_readers_do_not_panic() {
    for segment in [4096u32, 1 << 20] {
        let options = Options::native(segment).expect("valid");
        let plaintext = pattern(5 * segment as usize + 77);
        let ct = options.seal(&key(4), b"async", &plaintext).expect("seal");
        // The ciphertext arrives in two halves; reads are cancelled while waiting for the rest.
        let (mut tx, rx) = tokio::io::duplex(ct.len() + 1);
        let half = ct.len() / 2;
        tx.write_all(&ct[..half]).await.expect("feed");
        let mut d = AsyncDecryptor::with_options(rx, &key(4), b"async", &options)
            .await
            .expect("open");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 10_000];
        let mut fed = false;
        let mut cancelled = 0;
        loop {
            // Until the rest is fed, a read waits forever: cancel it after 20 ms. After,
            // allow for a loaded machine.
            let patience = Duration::from_millis(if fed { 10_000 } else { 20 });
            match tokio::time::timeout(patience, d.read(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(err)) => panic!("read failed: {err}"),
                Err(_) => {
                    cancelled += 1;
                    assert!(!fed, "stalled after all data arrived");
                    tx.write_all(&ct[half..]).await.expect("feed");
                    drop(std::mem::replace(&mut tx, tokio::io::duplex(1).0));
                    fed = true;
                }
            }
        }
        assert_eq!(cancelled, 1);
        assert_eq!(got, plaintext);

        // Readers dropped mid-stream, with opens possibly on the blocking pool.
        let ct = Arc::new(ct);
        for abort_after in [0, 1, 3] {
            let ct = Arc::clone(&ct);
            let task = tokio::spawn(async move {
                let mut d = AsyncDecryptor::with_options(&ct[..], &key(4), b"async", &options)
                    .await
                    .expect("open");
                let mut sink = Vec::new();
                d.read_to_end(&mut sink).await.map(|_| ())
            });
            tokio::time::sleep(Duration::from_millis(abort_after)).await;
            task.abort();
            match task.await {
                Ok(result) => result.expect("read finished before the abort"),
                Err(err) => assert!(err.is_cancelled(), "task panicked: {err}"),
            }
        }
    }
}

/// Wraps an adapter and records its longest single `poll_*` call: how long it kept a runtime
/// worker busy without yielding (the test's own checks are not counted).
struct Timed<T> {
    inner: T,
    longest: Arc<Mutex<Duration>>,
}

impl<T> Timed<T> {
    fn time<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let started = Instant::now();
        let out = f(&mut self.inner);
        let took = started.elapsed();
        let mut longest = self.longest.lock().expect("lock");
        *longest = (*longest).max(took);
        out
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Timed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.get_mut().time(|t| Pin::new(t).poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        d: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().time(|t| Pin::new(t).poll_write(cx, d))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().time(|t| Pin::new(t).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().time(|t| Pin::new(t).poll_shutdown(cx))
    }
}

/// Runs `work` on the runtime beside a task that wakes every millisecond; returns the
/// ticker's longest delay (which on a loaded machine also counts the OS descheduling it) and
/// the longest single poll of the adapter that `work` timed.
async fn max_stall<F, W>(work: W) -> (Duration, Duration)
where
    F: Future<Output = ()> + Send + 'static,
    W: FnOnce(Arc<Mutex<Duration>>) -> F,
{
    let longest = Arc::new(Mutex::new(Duration::ZERO));
    let work = work(Arc::clone(&longest));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let ticker = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let period = Duration::from_millis(1);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let before = Instant::now();
            tokio::time::sleep(period).await;
            worst = worst.max(before.elapsed().saturating_sub(period));
        }
        worst
    });
    tokio::spawn(work).await.expect("work");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let ticker = ticker.await.expect("ticker");
    let poll = *longest.lock().expect("lock");
    (ticker, poll)
}

/// Measures (and prints) how long the adapters block a runtime worker while encrypting and
/// decrypting 64 MiB with 16 MiB segments, whose crypto runs on the blocking pool. The bound
/// is loose (shared machine, test build); an inline 16 MiB seal or open alone is 3–10 ms on
/// an idle machine with the fast providers and more with RustCrypto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_segments_do_not_stall_the_runtime() {
    let options = Options::native(16 << 20).expect("valid");
    let plaintext = Arc::new(pattern(64 << 20));
    let ct = Arc::new(options.seal(&key(4), b"async", &plaintext).expect("seal"));
    let sink_len = ct.len();

    let (p, o) = (Arc::clone(&plaintext), options);
    let enc = max_stall(move |longest| async move {
        let sink = Vec::with_capacity(sink_len);
        let enc = AsyncEncryptor::with_options(sink, &key(4), b"async", &o).expect("enc");
        let mut enc = Timed {
            inner: enc,
            longest,
        };
        for piece in p.chunks(1 << 20) {
            enc.write_all(piece).await.expect("write");
        }
        enc.shutdown().await.expect("shutdown");
    })
    .await;

    let (c, p, o) = (Arc::clone(&ct), Arc::clone(&plaintext), options);
    let dec = max_stall(move |longest| async move {
        let d = AsyncDecryptor::with_options(&c[..], &key(4), b"async", &o)
            .await
            .expect("dec");
        let mut d = Timed { inner: d, longest };
        let mut out = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = d.read(&mut out).await.expect("read");
            if n == 0 {
                break;
            }
            assert_eq!(&out[..n], &p[total..total + n]);
            total += n;
        }
        assert_eq!(total, p.len());
    })
    .await;

    let (c, o) = (Arc::clone(&ct), options);
    let seek = max_stall(move |longest| async move {
        let d = AsyncSeekableDecryptor::with_options(Cursor::new(&c[..]), &key(4), b"async", &o)
            .await
            .expect("dec");
        let mut d = Timed { inner: d, longest };
        let mut out = vec![0u8; 1 << 20];
        while d.read(&mut out).await.expect("read") > 0 {}
    })
    .await;
    println!(
        "64 MiB, 16 MiB segments (max ticker delay, longest adapter poll): encrypt {enc:?}, \
         decrypt {dec:?}, seekable {seek:?}"
    );
    // Loose: on a 2-core shared machine a poll that copies 1 MiB can be preempted for tens
    // of milliseconds. The printed figures are the measurement.
    for (_, poll) in [enc, dec, seek] {
        assert!(
            poll < Duration::from_millis(200),
            "a poll blocked a worker for {poll:?}"
        );
    }
}
