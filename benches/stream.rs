//! Throughput of atrest STREAM against its ceiling, the raw provider AEAD, and against peers.
//!
//! The `encrypt/*` and `decrypt/*` groups pin `Options::threads(1)`: they measure the
//! single-thread engine against the single-thread AEAD. The `peers` group (see [`peers`]) adds
//! the two-thread path, ring, age and tink-rust.
//!
//! Every benchmark processes the same 16 MiB plaintext (or its ciphertext) and reports
//! `Throughput::Bytes(16 MiB)`, so criterion prints plaintext bytes per second. There is one
//! group per direction and segment size (`encrypt/4KiB`, `encrypt/64KiB`, `encrypt/1MiB`,
//! `decrypt/...`); everything inside a group ran in the same process minutes apart, so read a
//! group as **ratios to its `raw_aead` line**, never as absolute figures compared across runs
//! (the machine is shared and noisy).
//!
//! `encrypt/<seg>`:
//! - `raw_aead` — the ceiling: [`atrest_crypto::DEFAULT_PROVIDER`]'s AES-256-GCM sealing each
//!   segment of one 16 MiB buffer in place, with STREAM's nonce scheme (64-bit big-endian
//!   counter, last-segment flag), tags to a side buffer. No copies, no allocation.
//! - `raw_aead_to` — the same AEAD sealing out of place (input slice → separate output), which
//!   is what the writer does per full segment before it hands the sealed segment to `W`.
//! - `stream_writer` — `Options::native(seg).encryptor(&mut out)` + one `write_all` +
//!   `finish`, where `out` is a `Vec` reused (cleared) across iterations: the sealing plus the
//!   copy of every sealed segment into the output, as a real user pays it.
//! - `stream_writer_fresh_vec` — the same into `Vec::with_capacity(ct_len)` made per
//!   iteration (adds the allocation and first-touch page faults of 16 MiB).
//! - `stream_writer_sink` — the same into `std::io::sink()`: `stream_writer` minus the copy.
//!   `stream_writer_sink − stream_writer` is what the output copy costs.
//! - `seal_oneshot` — `Options::seal`, which returns a fresh `Vec` (allocation included).
//! - `seal_in_place` — `Options::seal_in_place` on the caller's `Vec` of plaintext (with
//!   capacity for the stream; refilled outside the timed region): the same buffer discipline
//!   as `raw_aead`, so the like-for-like comparison with the ceiling.
//!
//! `decrypt/<seg>`:
//! - `raw_aead` — the ceiling: opening each segment of a 16 MiB ciphertext buffer in place
//!   (the buffer is restored from a pristine copy outside the timed region).
//! - `raw_aead_to` — opening each segment out of place into a reused 16 MiB buffer, which is
//!   exactly the AEAD work `stream_reader` does.
//! - `stream_reader` — `Decryptor` over `&[u8]`, `read_exact` into a reused 16 MiB buffer
//!   (then a final `read` that must return 0, i.e. the final segment authenticated).
//! - `stream_reader_read_to_end` — the same with `read_to_end` into a reused, cleared `Vec`
//!   with enough capacity: std's adaptive read sizes start below one segment.
//! - `open_oneshot` — `Options::open`, which returns a fresh `Vec`.
//! - `seekable_read` — `SeekableDecryptor` over a `Cursor`, `read_exact` from the start.
//! - `seekable_read_at` — one `SeekableDecryptor::read_at(0, ..)` of the whole stream.
//! - `open_in_place` — `Options::open_in_place` on the caller's `Vec` of ciphertext (refilled
//!   outside the timed region, as for `raw_aead`): the like-for-like comparison.
//!
//! The target is atrest STREAM at ≥ 0.95 × the raw AEAD in the `64KiB` groups. Read
//! it per buffer discipline: `seal_in_place` / `open_in_place` against `raw_aead` (both work
//! in the caller's buffer), the `Read`/`Write` adapters against `raw_aead_to` (both read one
//! buffer and write another; an adapter cannot seal in place a slice it was lent). `PERF-NOTES.md` (shared) explains the glibc `rep movsb` trap that can make
//! segment-sized copies the bottleneck; rerun with
//! `GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4194304` to see whether a copy hurts.
//!
//! Run with `cargo bench --bench stream` (about four minutes on two cores; plots are off, the
//! numbers are in `target/criterion/*/*/new/estimates.json`). Filter with e.g.
//! `cargo bench --bench stream -- 64KiB`.

use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use atrest_crypto::{AeadKey, DEFAULT_PROVIDER, Key256, NONCE_LEN, Nonce, TAG_LEN, Tag};
use atrest_stream::Options;
use criterion::{
    Bencher, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};

/// Plaintext bytes processed per iteration.
const INPUT_LEN: usize = 16 << 20;
/// Segment sizes under test, with their labels.
const SEGMENTS: [(u32, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
/// Associated data bound to every benchmarked stream.
const AAD: &[u8] = b"tenant=bench;object=stream";

fn data_key() -> Key256 {
    Key256::from_bytes([0x42; 32])
}

/// Deterministic, incompressible-looking plaintext (AES does not care, but copies might).
fn plaintext() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut out = Vec::with_capacity(INPUT_LEN);
    while out.len() < INPUT_LEN {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_be_bytes());
    }
    out
}

/// STREAM's native nonce: 64-bit big-endian segment counter, then the last-segment flag.
fn nonce(index: usize, last: bool) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&(index as u64).to_be_bytes());
    nonce[NONCE_LEN - 1] = u8::from(last);
    Nonce::from_bytes(nonce)
}

/// Seals every `seg`-byte segment of `buf` in place, tags into `tags`.
fn raw_seal_in_place(key: &dyn AeadKey, seg: usize, buf: &mut [u8], tags: &mut [Tag]) {
    let count = buf.len().div_ceil(seg);
    for (index, (chunk, tag)) in buf.chunks_mut(seg).zip(tags.iter_mut()).enumerate() {
        *tag = key
            .seal_in_place(&nonce(index, index + 1 == count), AAD, chunk)
            .expect("a segment is far below the AES-GCM length limit");
    }
}

/// [`raw_seal_in_place`] on two threads: the caller seals the first half of the segments and
/// a scoped thread the second half (spawning it costs tens of microseconds of ~10 ms). The
/// ceiling for two workers: how far two cores scale the bare AEAD over this buffer when
/// memory bandwidth is shared.
fn raw_seal_in_place_2_threads(key: &dyn AeadKey, buf: &mut [u8], tags: &mut [Tag]) {
    let count = buf.len().div_ceil(PEER_SEGMENT);
    let half = count / 2;
    let (front, back) = buf.split_at_mut(half * PEER_SEGMENT);
    let (front_tags, back_tags) = tags.split_at_mut(half);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for (j, (chunk, tag)) in back.chunks_mut(PEER_SEGMENT).zip(back_tags).enumerate() {
                let index = half + j;
                *tag = key
                    .seal_in_place(&nonce(index, index + 1 == count), AAD, chunk)
                    .expect("a segment is far below the AES-GCM length limit");
            }
        });
        for (index, (chunk, tag)) in front.chunks_mut(PEER_SEGMENT).zip(front_tags).enumerate() {
            *tag = key
                .seal_in_place(&nonce(index, false), AAD, chunk)
                .expect("a segment is far below the AES-GCM length limit");
        }
    });
}

/// Opens every [`PEER_SEGMENT`] segment of `buf` in place with its tag from `tags`.
fn raw_open_in_place(key: &dyn AeadKey, buf: &mut [u8], tags: &[Tag]) {
    let count = buf.len().div_ceil(PEER_SEGMENT);
    for (index, (chunk, tag)) in buf.chunks_mut(PEER_SEGMENT).zip(tags).enumerate() {
        key.open_in_place(&nonce(index, index + 1 == count), AAD, chunk, tag)
            .expect("authentic");
    }
}

/// Refills `buf` with `input`, then writes all of `evict` so `buf` is out of the caches.
fn refill_cold(buf: &mut Vec<u8>, input: &[u8], evict: &mut [u8], round: u64) {
    buf.clear();
    buf.extend_from_slice(input);
    evict.fill(u8::try_from(round % 251).unwrap_or(0));
    black_box(&evict);
}

/// Times `f` on `buf` refilled with `input` and evicted from the caches before every run
/// (outside the timed region).
fn time_cold(
    b: &mut Bencher<'_>,
    buf: &mut Vec<u8>,
    input: &[u8],
    evict: &mut [u8],
    mut f: impl FnMut(&mut Vec<u8>),
) {
    b.iter_custom(|iters| {
        let mut elapsed = Duration::ZERO;
        for round in 0..iters {
            refill_cold(buf, input, evict, round);
            let start = Instant::now();
            f(buf);
            elapsed += start.elapsed();
        }
        elapsed
    });
}

fn stream_len(options: &Options, seg: usize) -> usize {
    options.header_len() + INPUT_LEN + INPUT_LEN.div_ceil(seg) * TAG_LEN
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .throughput(Throughput::Bytes(INPUT_LEN as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn encrypt(c: &mut Criterion) {
    let input = plaintext();
    let key = data_key();
    let aead = DEFAULT_PROVIDER.aes256_gcm.key(&key);
    for (seg_u32, label) in SEGMENTS {
        let seg = seg_u32 as usize;
        let options = Options::native(seg_u32)
            .expect("segment size within the v1 limits")
            .threads(1);
        let ct_len = stream_len(&options, seg);
        let mut group = c.benchmark_group(format!("encrypt/{label}"));
        configure(&mut group);

        let mut buf = input.clone();
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); INPUT_LEN.div_ceil(seg)];
        group.bench_function("raw_aead", |b| {
            b.iter(|| raw_seal_in_place(&*aead, seg, black_box(&mut buf), &mut tags));
        });

        let mut out = vec![0u8; INPUT_LEN];
        group.bench_function("raw_aead_to", |b| {
            b.iter(|| {
                let count = INPUT_LEN.div_ceil(seg);
                let pairs = input.chunks(seg).zip(out.chunks_mut(seg)).zip(&mut tags);
                for (index, ((pt, ct), tag)) in pairs.enumerate() {
                    *tag = aead
                        .seal_to(&nonce(index, index + 1 == count), AAD, pt, ct)
                        .expect("equal lengths, below the limit");
                }
                black_box(&out);
            });
        });
        drop(out);

        let mut out: Vec<u8> = Vec::with_capacity(ct_len);
        group.bench_function("stream_writer", |b| {
            b.iter(|| {
                out.clear();
                let mut writer = options
                    .encryptor(&mut out, &key, AAD)
                    .expect("header written to a Vec");
                writer.write_all(black_box(&input)).expect("Vec grows");
                writer.finish().expect("Vec accepts the final segment");
                assert_eq!(out.len(), ct_len);
            });
        });
        drop(out);

        group.bench_function("stream_writer_fresh_vec", |b| {
            b.iter(|| {
                let mut writer = options
                    .encryptor(Vec::with_capacity(ct_len), &key, AAD)
                    .expect("header written to a Vec");
                writer.write_all(black_box(&input)).expect("Vec grows");
                writer.finish().expect("Vec accepts the final segment")
            });
        });

        group.bench_function("stream_writer_sink", |b| {
            b.iter(|| {
                let mut writer = options
                    .encryptor(std::io::sink(), &key, AAD)
                    .expect("sink accepts the header");
                writer.write_all(black_box(&input)).expect("sink accepts");
                writer.finish().expect("sink accepts the final segment");
            });
        });

        group.bench_function("seal_oneshot", |b| {
            b.iter(|| {
                options
                    .seal(&key, AAD, black_box(&input))
                    .expect("16 MiB is far below the stream limit")
            });
        });

        // The caller's own buffer, sealed where it is: the like-for-like rival of `raw_aead`
        // (restoring the plaintext is outside the timing, as is `raw_aead`'s nothing).
        let mut buf: Vec<u8> = Vec::with_capacity(ct_len);
        group.bench_function("seal_in_place", |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    buf.clear();
                    buf.extend_from_slice(&input);
                    let start = Instant::now();
                    options
                        .seal_in_place(&key, AAD, black_box(&mut buf))
                        .expect("16 MiB is far below the stream limit");
                    elapsed += start.elapsed();
                }
                assert_eq!(buf.len(), ct_len);
                elapsed
            });
        });
        drop(buf);
        group.finish();
    }
}

fn decrypt(c: &mut Criterion) {
    let input = plaintext();
    let key = data_key();
    let aead = DEFAULT_PROVIDER.aes256_gcm.key(&key);
    for (seg_u32, label) in SEGMENTS {
        let seg = seg_u32 as usize;
        let count = INPUT_LEN.div_ceil(seg);
        let options = Options::native(seg_u32)
            .expect("segment size within the v1 limits")
            .threads(1);
        let sealed = options.seal(&key, AAD, &input).expect("seal the fixture");
        let mut group = c.benchmark_group(format!("decrypt/{label}"));
        configure(&mut group);

        let mut raw_ct = input.clone();
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); count];
        raw_seal_in_place(&*aead, seg, &mut raw_ct, &mut tags);
        let mut buf = raw_ct.clone();
        group.bench_function("raw_aead", |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    buf.copy_from_slice(&raw_ct);
                    let start = Instant::now();
                    for (index, (chunk, tag)) in buf.chunks_mut(seg).zip(&tags).enumerate() {
                        aead.open_in_place(&nonce(index, index + 1 == count), AAD, chunk, tag)
                            .expect("authentic segment");
                    }
                    black_box(&buf);
                    elapsed += start.elapsed();
                }
                elapsed
            });
        });
        drop(buf);

        let mut out = vec![0u8; INPUT_LEN];
        group.bench_function("raw_aead_to", |b| {
            b.iter(|| {
                let pairs = raw_ct.chunks(seg).zip(out.chunks_mut(seg)).zip(&tags);
                for (index, ((ct, pt), tag)) in pairs.enumerate() {
                    aead.open_to(&nonce(index, index + 1 == count), AAD, ct, tag, pt)
                        .expect("authentic segment");
                }
                black_box(&out);
            });
        });

        group.bench_function("stream_reader", |b| {
            b.iter(|| {
                let mut reader = options
                    .decryptor(black_box(&sealed[..]), &key, AAD)
                    .expect("valid header");
                reader.read_exact(&mut out).expect("authentic stream");
                let end = reader.read(&mut [0u8; 1]).expect("authentic final segment");
                assert_eq!(end, 0);
            });
        });

        let mut to_end: Vec<u8> = Vec::with_capacity(INPUT_LEN + seg);
        group.bench_function("stream_reader_read_to_end", |b| {
            b.iter(|| {
                to_end.clear();
                let mut reader = options
                    .decryptor(black_box(&sealed[..]), &key, AAD)
                    .expect("valid header");
                reader.read_to_end(&mut to_end).expect("authentic stream");
                assert_eq!(to_end.len(), INPUT_LEN);
            });
        });
        drop(to_end);

        group.bench_function("open_oneshot", |b| {
            b.iter(|| {
                options
                    .open(&key, AAD, black_box(&sealed))
                    .expect("authentic stream")
            });
        });

        // The like-for-like rival of `raw_aead`: the stream opened where it lies (restoring
        // the ciphertext is outside the timing, as for `raw_aead`).
        let mut buf: Vec<u8> = Vec::with_capacity(sealed.len());
        group.bench_function("open_in_place", |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    buf.clear();
                    buf.extend_from_slice(&sealed);
                    let start = Instant::now();
                    options
                        .open_in_place(&key, AAD, black_box(&mut buf))
                        .expect("authentic stream");
                    elapsed += start.elapsed();
                }
                assert_eq!(buf.len(), INPUT_LEN);
                elapsed
            });
        });
        drop(buf);

        group.bench_function("seekable_read", |b| {
            b.iter(|| {
                let mut reader = options
                    .seekable_decryptor(Cursor::new(black_box(&sealed[..])), &key, AAD)
                    .expect("valid header");
                reader.read_exact(&mut out).expect("authentic stream");
            });
        });

        group.bench_function("seekable_read_at", |b| {
            b.iter(|| {
                let reader = options
                    .seekable_decryptor(Cursor::new(black_box(&sealed[..])), &key, AAD)
                    .expect("valid header");
                let n = reader.read_at(0, &mut out).expect("authentic stream");
                assert_eq!(n, INPUT_LEN);
            });
        });
        // Checked outside the timed closures so a filtered run (`-- peers`) still passes.
        let reader = options
            .seekable_decryptor(Cursor::new(&sealed[..]), &key, AAD)
            .expect("valid header");
        assert_eq!(
            reader.read_at(0, &mut out).expect("authentic stream"),
            INPUT_LEN
        );
        assert!(out == input, "the readers must reproduce the plaintext");
        group.finish();
    }
}

/// Plaintext bytes per iteration in the `peers` group (above this machine's 32 MiB L3, so
/// no contender runs from cache).
const PEER_INPUT_LEN: usize = 64 << 20;
/// atrest's default segment size, and age's fixed chunk size.
const PEER_SEGMENT: usize = 64 << 10;

/// `peers`: atrest STREAM against its ceilings and against other libraries' streaming
/// encryption, all encrypting the same 64 MiB into `io::sink()` (so no contender pays for an
/// output copy the others skip):
/// - `raw_rustcrypto_in_place`, `raw_ring_in_place`: each provider's AES-256-GCM sealing the
///   same 64 KiB segments in place, with STREAM's nonces (the ceilings);
/// - `atrest_<provider>_write_in_place`: `Encryptor::write_in_place` (one thread) on the
///   same buffer: atrest STREAM sealing where the plaintext lies, against those ceilings;
/// - `raw_<provider>_seal_to`: the same segments sealed out of the read-only input into one
///   reused segment of scratch: the ceiling for a caller who cannot seal in place, as the
///   `Encryptor` cannot (ring seals only in place, so this is a copy and a seal);
/// - `raw_<provider>_in_place_2_threads`: the same split over two threads, half the segments
///   each: the two-core ceiling, which memory bandwidth keeps below 2x for the fast AEADs;
/// - `raw_<provider>_in_place_cold` and `atrest_<provider>_in_place_cold`: the raw AEAD and
///   `Options::seal_in_place` (one thread) on the same 64 MiB buffer, refilled and evicted
///   from the caches before each timed run: the like-for-like pair for a caller who owns a
///   mutable buffer (ring only seals in place, so the `Encryptor` rows pay it a copy); and
///   the same pair on two threads (`..._cold_2_threads`); and for decryption,
///   `raw_<provider>_open_in_place_cold` against `atrest_<provider>_open_in_place_cold` (one
///   and two threads);
/// - `atrest_rustcrypto`, `atrest_ring`: `Encryptor` with each provider, one thread
///   (`Options::threads(1)`), and `..._2_threads` with two workers; `..._into_vec...` the
///   same into a reused `Vec` instead of the sink (the writer's copy is then on the
///   calling thread, between batches);
/// - `atrest_<provider>_8k_writes[_2_threads]`: the `Encryptor` fed in 8 KiB writes, as
///   `io::copy` from a reader does (every segment is copied into the encryptor's ring);
/// - `atrest_<provider>_decryptor[_2_threads]`: the `Decryptor` over the sealed 64 MiB,
///   drained by `io::copy` (8 KiB reads) into the sink;
/// - `age_x25519`: the `age` crate (ChaCha20-Poly1305 STREAM, 64 KiB chunks) to one X25519
///   recipient; the header's one X25519 operation is negligible at 64 MiB;
/// - `tink_rust_aes256_gcm_hkdf_1mb`: tink-rust's streaming AEAD with Tink's
///   `AES256_GCM_HKDF_1MB` parameters (its segment size is part of the format).
fn peers(c: &mut Criterion) {
    let mut input = Vec::with_capacity(PEER_INPUT_LEN);
    while input.len() < PEER_INPUT_LEN {
        input.extend_from_slice(&plaintext()[..INPUT_LEN.min(PEER_INPUT_LEN - input.len())]);
    }
    let key = data_key();
    let mut group = c.benchmark_group("peers");
    group
        .throughput(Throughput::Bytes(PEER_INPUT_LEN as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let providers: [(&str, &'static atrest_crypto::CryptoProvider); 2] = [
        ("rustcrypto", DEFAULT_PROVIDER),
        ("ring", &atrest_ring::PROVIDER),
    ];
    for (name, provider) in providers {
        let aead = provider.aes256_gcm.key(&key);
        let mut buf = input.clone();
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); PEER_INPUT_LEN.div_ceil(PEER_SEGMENT)];
        group.bench_function(format!("raw_{name}_in_place"), |b| {
            b.iter(|| raw_seal_in_place(aead.as_ref(), PEER_SEGMENT, &mut buf, &mut tags));
        });
        group.bench_function(format!("raw_{name}_in_place_2_threads"), |b| {
            b.iter(|| raw_seal_in_place_2_threads(aead.as_ref(), &mut buf, &mut tags));
        });
        // atrest STREAM on the same buffer, sealed where it lies by `write_in_place` (one
        // thread), each segment and its tag written to the sink: the like-for-like row for
        // the in-place ceilings above.
        let options = Options::default().provider(provider).threads(1);
        group.bench_function(format!("atrest_{name}_write_in_place"), |b| {
            b.iter(|| {
                let mut enc = options
                    .encryptor(std::io::sink(), &key, AAD)
                    .expect("encryptor");
                enc.write_in_place(black_box(&mut buf))
                    .expect("sink never fails");
                enc.finish().expect("finish")
            });
        });
        // The same segments sealed out of the read-only input into one reused segment of
        // scratch (then dropped, as into the sink): what the raw AEAD costs a caller whose
        // input is read-only, as an `io::Write` adapter's is. ring seals only in place, so
        // its `seal_to` is a copy into the scratch and a seal there.
        let mut scratch = vec![0u8; PEER_SEGMENT];
        group.bench_function(format!("raw_{name}_seal_to"), |b| {
            b.iter(|| {
                let count = PEER_INPUT_LEN.div_ceil(PEER_SEGMENT);
                for (index, (pt, tag)) in black_box(&input)
                    .chunks(PEER_SEGMENT)
                    .zip(tags.iter_mut())
                    .enumerate()
                {
                    let ct = &mut scratch[..pt.len()];
                    *tag = aead
                        .seal_to(&nonce(index, index + 1 == count), AAD, pt, ct)
                        .expect("equal lengths, below the limit");
                    black_box(&ct);
                }
            });
        });
    }
    // In place from a cold start, for both: the buffer is refilled with plaintext and then
    // pushed out of the caches (by writing another 64 MiB) outside the timed region, so
    // neither row gains from the refill. atrest seals back to front (its segments move
    // forward), raw front to back; without the eviction atrest would start on the hot end.
    let mut buf: Vec<u8> = Vec::with_capacity(PEER_INPUT_LEN + (1 << 20));
    let mut evict = vec![0u8; PEER_INPUT_LEN];
    for (name, provider) in providers {
        let aead = provider.aes256_gcm.key(&key);
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); PEER_INPUT_LEN.div_ceil(PEER_SEGMENT)];
        for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
            group.bench_function(format!("raw_{name}_in_place_cold{suffix}"), |b| {
                time_cold(b, &mut buf, &input, &mut evict, |buf| {
                    if threads == 1 {
                        raw_seal_in_place(aead.as_ref(), PEER_SEGMENT, buf, &mut tags);
                    } else {
                        raw_seal_in_place_2_threads(aead.as_ref(), buf, &mut tags);
                    }
                });
            });
            let options = Options::default().provider(provider).threads(threads);
            group.bench_function(format!("atrest_{name}_in_place_cold{suffix}"), |b| {
                time_cold(b, &mut buf, &input, &mut evict, |buf| {
                    options
                        .seal_in_place(&key, AAD, black_box(buf))
                        .expect("64 MiB is far below the stream limit");
                });
            });
        }
    }
    // Decryption the same way: the raw AEAD opening every segment of the cold buffer in
    // place (tags on the side) against `Options::open_in_place` on the cold stream.
    for (name, provider) in providers {
        let aead = provider.aes256_gcm.key(&key);
        let mut raw_ct = input.clone();
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); PEER_INPUT_LEN.div_ceil(PEER_SEGMENT)];
        raw_seal_in_place(aead.as_ref(), PEER_SEGMENT, &mut raw_ct, &mut tags);
        group.bench_function(format!("raw_{name}_open_in_place_cold"), |b| {
            time_cold(b, &mut buf, &raw_ct, &mut evict, |buf| {
                raw_open_in_place(aead.as_ref(), buf, &tags);
            });
        });
        drop(raw_ct);
        let stream = Options::default()
            .provider(provider)
            .seal(&key, AAD, &input)
            .expect("seal the fixture");
        for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
            let options = Options::default().provider(provider).threads(threads);
            group.bench_function(format!("atrest_{name}_open_in_place_cold{suffix}"), |b| {
                time_cold(b, &mut buf, &stream, &mut evict, |buf| {
                    options
                        .open_in_place(&key, AAD, black_box(buf))
                        .expect("authentic");
                });
            });
        }
    }
    drop((buf, evict));

    // One write of the whole 64 MiB (sealed straight from the slice), and 8 KiB writes, as
    // `io::copy` from a reader feeds it (every segment is copied into the encryptor's ring).
    for (name, provider) in providers {
        for (writes, chunk) in [
            ("", PEER_INPUT_LEN),
            ("_1m_writes", 1 << 20),
            ("_8k_writes", 8 << 10),
        ] {
            for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
                let options = Options::default().provider(provider).threads(threads);
                group.bench_function(format!("atrest_{name}{writes}{suffix}"), |b| {
                    b.iter(|| {
                        let mut enc = options
                            .encryptor(std::io::sink(), &key, AAD)
                            .expect("encryptor");
                        for piece in black_box(&input).chunks(chunk) {
                            enc.write_all(piece).expect("sink never fails");
                        }
                        enc.finish().expect("finish")
                    });
                });
            }
        }
    }

    // Decryption through the `Decryptor`: the 64 MiB stream read with `io::copy` (8 KiB
    // reads) into the sink, one and two threads.
    for (name, provider) in providers {
        let stream = Options::default()
            .provider(provider)
            .seal(&key, AAD, &input)
            .expect("seal the fixture");
        for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
            let options = Options::default().provider(provider).threads(threads);
            group.bench_function(format!("atrest_{name}_decryptor{suffix}"), |b| {
                b.iter(|| {
                    let mut dec = options
                        .decryptor(black_box(&stream[..]), &key, AAD)
                        .expect("valid header");
                    std::io::copy(&mut dec, &mut std::io::sink()).expect("authentic")
                });
            });
        }
    }

    // The same into a `Vec` (reused, with capacity for the stream): what the parallel path
    // costs when the writer does real work, here a copy of every sealed batch.
    let mut out: Vec<u8> = Vec::with_capacity(PEER_INPUT_LEN + (1 << 20));
    for (name, provider) in providers {
        for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
            let options = Options::default().provider(provider).threads(threads);
            group.bench_function(format!("atrest_{name}_into_vec{suffix}"), |b| {
                b.iter(|| {
                    out.clear();
                    let mut enc = options.encryptor(&mut out, &key, AAD).expect("encryptor");
                    enc.write_all(black_box(&input)).expect("a Vec never fails");
                    enc.finish().expect("finish");
                });
            });
        }
    }
    drop(out);

    let recipient = age::x25519::Identity::generate().to_public();
    group.bench_function("age_x25519", |b| {
        b.iter(|| {
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .expect("one recipient");
            let mut writer = encryptor.wrap_output(std::io::sink()).expect("age header");
            writer
                .write_all(black_box(&input))
                .expect("sink never fails");
            writer.finish().expect("finish")
        });
    });

    let tink = tink_streaming_aead::subtle::AesGcmHkdf::new(
        key.expose_secret(),
        tink_proto::HashType::Sha256,
        32,
        1 << 20,
        0,
    )
    .expect("Tink's AES256_GCM_HKDF_1MB parameters");
    group.bench_function("tink_rust_aes256_gcm_hkdf_1mb", |b| {
        b.iter(|| {
            let mut writer = tink_core::StreamingAead::new_encrypting_writer(
                &tink,
                Box::new(std::io::sink()),
                AAD,
            )
            .expect("tink writer");
            writer
                .write_all(black_box(&input))
                .expect("sink never fails");
            writer.close().expect("close");
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Plot rendering costs several seconds per benchmark, longer than the measurement itself.
    config = Criterion::default().without_plots();
    targets = encrypt, decrypt, peers
}
criterion_main!(benches);
