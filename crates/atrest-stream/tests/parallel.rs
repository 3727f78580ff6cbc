//! Parallel paths (`Options::threads`): byte-identical output to the sequential path, the same
//! error for the same bytes, and no plaintext released past the first failing segment.

#![allow(
    clippy::cast_possible_truncation,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;

use atrest_stream::{Error, Options, PARALLEL_MIN_BYTES};
use common::{
    Kind, PROVIDERS, decrypt_all_ways, key, kind, pattern, segment_sizes, segment_spans,
    small_segment_options,
};

const THREADS: [usize; 4] = [1, 2, 3, 8];
const SALT: [u8; 32] = [0x5C; 32];

/// Lengths at segment boundaries up to past one batch of the largest worker count
/// (2 × 8 segments), plus the trivial ones.
fn boundary_lengths(options: &Options) -> Vec<usize> {
    let (first, rest) = segment_sizes(options);
    let mut lengths = vec![0, 1, first - 1];
    for k in [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17] {
        let edge = first + k * rest;
        lengths.extend([edge - 1, edge, edge + 1]);
    }
    lengths
}

fn encrypt_stream(options: &Options, plaintext: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = options
        .encryptor(Vec::new(), &key(3), b"par")
        .expect("encryptor");
    for piece in plaintext.chunks(chunk.max(1)) {
        enc.write_all(piece).expect("write");
    }
    enc.finish().expect("finish")
}

fn decrypt_stream(options: &Options, ct: &[u8], chunk: usize) -> Result<Vec<u8>, Kind> {
    let mut dec = options
        .decryptor(ct, &key(3), b"par")
        .map_err(|e| kind(&e))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = dec.read(&mut buf).map_err(|e| kind(&Error::from_io(e)))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn every_thread_count_writes_the_sequential_bytes() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let options = options.fixed_salt_for_testing(SALT);
            let sequential = options.threads(1);
            for len in boundary_lengths(&options) {
                let plaintext = pattern(len);
                let expected = sequential.seal(&key(3), b"par", &plaintext).expect("seal");
                assert_eq!(
                    encrypt_stream(&sequential, &plaintext, len),
                    expected,
                    "sequential encryptor vs seal, len {len}"
                );
                for threads in THREADS {
                    let par = options.threads(threads);
                    let what = format!("{:?} threads {threads} len {len}", options.format());
                    assert_eq!(
                        par.seal(&key(3), b"par", &plaintext).expect("seal"),
                        expected,
                        "seal {what}"
                    );
                    let mut in_place = plaintext.clone();
                    par.seal_in_place(&key(3), b"par", &mut in_place)
                        .expect("seal in place");
                    assert_eq!(in_place, expected, "seal_in_place {what}");
                    // One big write (sealed straight from the caller's slice), and small
                    // writes (copied into the batch).
                    assert_eq!(encrypt_stream(&par, &plaintext, len), expected, "{what}");
                    assert_eq!(encrypt_stream(&par, &plaintext, 1000), expected, "{what}");
                    assert_eq!(
                        par.open(&key(3), b"par", &expected).expect("open"),
                        plaintext,
                        "open {what}"
                    );
                    for chunk in [777, len + 1, 1 << 20] {
                        assert_eq!(
                            decrypt_stream(&par, &expected, chunk),
                            Ok(plaintext.clone()),
                            "decryptor, {chunk}-byte reads, {what}"
                        );
                    }
                }
            }
        }
    }
}

/// For `k` full segments followed by a partial one or none, at each of `threads`:
/// `seal_in_place` gives the bytes of a sequential `seal`, `open_in_place` gives the
/// plaintext back, and a bit flipped in each of `damaged` segments gives the sequential
/// error with nothing left in the buffer.
fn assert_in_place_matches(options: &Options, k: usize, threads: &[usize], damaged: &[usize]) {
    let (first, rest) = segment_sizes(options);
    for len in [first + (k - 1) * rest, first + (k - 1) * rest + 1] {
        let plaintext = pattern(len);
        let expected = options.threads(1).seal(&key(4), b"batch", &plaintext);
        let expected = expected.expect("seal");
        for &threads in threads {
            let mut in_place = plaintext.clone();
            options
                .threads(threads)
                .seal_in_place(&key(4), b"batch", &mut in_place)
                .expect("seal in place");
            assert!(
                in_place == expected,
                "{:?} threads {threads} len {len}: seal_in_place differs from seal",
                options.format()
            );
            let par = options.threads(threads);
            par.open_in_place(&key(4), b"batch", &mut in_place)
                .expect("open in place");
            assert!(in_place == plaintext, "open_in_place, {threads} threads");
            for &segment in damaged {
                let mut bad = expected.clone();
                let at = options.header_len() + segment * (rest + 16) + 5;
                let at = at.min(bad.len() - 1);
                bad[at] ^= 1;
                let reference = options.threads(1).open(&key(4), b"batch", &bad);
                let reference = reference.expect_err("tampered");
                let err = par
                    .open_in_place(&key(4), b"batch", &mut bad)
                    .expect_err("tampered");
                assert_eq!(
                    format!("{err:?}"),
                    format!("{reference:?}"),
                    "open_in_place, {threads} threads, bit in segment {segment}"
                );
                assert!(bad.is_empty(), "open_in_place left plaintext behind");
            }
        }
    }
}

/// The in-place one-shots run their pipelines over windows of 1024 segments:
/// `seal_in_place` back to front (the moves of one window land in the regions of the
/// windows after it), `open_in_place` front to back (each window's plaintext lands in the
/// regions before it). Segment counts around one and two windows, with segments far
/// smaller than their shift (Tink, 57 bytes) and with 4 KiB ones, damaged in the last
/// segment.
#[test]
fn in_place_one_shots_across_windows_match_the_sequential_paths() {
    for provider in PROVIDERS {
        for options in [
            Options::tink(57).expect("valid").provider(provider),
            Options::native(4096).expect("valid").provider(provider),
        ] {
            let options = options.fixed_salt_for_testing(SALT);
            for k in [1023, 1024, 1025, 2048, 2049] {
                assert_in_place_matches(&options, k, &[1, 2], &[k - 1]);
            }
        }
    }
}

/// `seal_in_place` seals segments (in parallel) where they lie and moves them into place
/// back to front, through a ring of `2 × workers` slots; `open_in_place` opens them into
/// scratch slots and copies them down. Lengths around one, two and three batches (64 KiB
/// and 512 KiB of segments), damaged in the middle of the last batch and in the last
/// segment.
#[test]
fn seal_in_place_across_batches_writes_the_sequential_bytes() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let options = options.fixed_salt_for_testing(SALT);
            let (_, rest) = segment_sizes(&options);
            let mut segments = Vec::new();
            for batch in [
                (64usize << 10).div_ceil(rest),
                (512usize << 10).div_ceil(rest),
            ] {
                segments.extend([batch - 1, batch, batch + 1, 2 * batch, 3 * batch + 1]);
            }
            for k in segments {
                assert_in_place_matches(&options, k, &[1, 2, 3], &[k * 2 / 3, k - 1]);
            }
        }
    }
}

#[test]
fn automatic_parallelism_writes_the_sequential_bytes() {
    let options = Options::native(64 << 10)
        .expect("valid")
        .fixed_salt_for_testing(SALT);
    let min = usize::try_from(PARALLEL_MIN_BYTES).expect("fits");
    for len in [min - 1, min, 3 * min + 12345] {
        let plaintext = pattern(len);
        let expected = options
            .threads(1)
            .seal(&key(3), b"par", &plaintext)
            .expect("seal");
        let auto = options.threads(0);
        assert_eq!(
            auto.seal(&key(3), b"par", &plaintext).expect("seal"),
            expected
        );
        assert_eq!(encrypt_stream(&auto, &plaintext, 100_000), expected);
        assert_eq!(
            decrypt_stream(&auto, &expected, 100_000),
            Ok(plaintext.clone())
        );
        assert_eq!(
            auto.open(&key(3), b"par", &expected).expect("open"),
            plaintext
        );
    }
}

/// Every damaged stream gives the same outcome in parallel as sequentially, through every
/// reader.
#[test]
fn damaged_streams_fail_identically() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let (first, rest) = segment_sizes(&options);
            let plaintext = pattern(first + 12 * rest + rest / 2);
            let ct = encrypt_stream(&options.threads(1), &plaintext, plaintext.len());
            let spans = segment_spans(&options, ct.len());
            let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
            for (k, &(at, len)) in spans.iter().enumerate() {
                let mut flipped = ct.clone();
                flipped[at + len / 2] ^= 0x20;
                damaged.push((format!("flip in segment {k}"), flipped));
                damaged.push((format!("cut before segment {k}"), ct[..at].to_vec()));
                for cut in [1, 15, 16, 17] {
                    if cut < len {
                        damaged.push((
                            format!("cut {cut} into segment {k}"),
                            ct[..at + cut].to_vec(),
                        ));
                    }
                }
            }
            for extra in [1, 15, 16, 17, rest + 16, 3 * (rest + 16)] {
                let mut trailing = ct.clone();
                trailing.extend(std::iter::repeat_n(0xA5, extra));
                damaged.push((format!("{extra} trailing bytes"), trailing));
            }
            let mut swapped = ct.clone();
            let (a, b) = (spans[2], spans[3]);
            swapped[a.0..a.0 + a.1].copy_from_slice(&ct[b.0..b.0 + b.1]);
            swapped[b.0..b.0 + b.1].copy_from_slice(&ct[a.0..a.0 + a.1]);
            damaged.push(("segments 2 and 3 swapped".into(), swapped));

            for (what, bytes) in &damaged {
                let reference = decrypt_all_ways(&options.threads(1), &key(3), b"par", bytes);
                let expected = &reference[0].1;
                for (path, got) in &reference {
                    assert_eq!(got, expected, "sequential {path} disagrees on {what}");
                }
                for threads in &THREADS[1..] {
                    for (path, got) in
                        decrypt_all_ways(&options.threads(*threads), &key(3), b"par", bytes)
                    {
                        assert_eq!(&got, expected, "{what}: {path} with {threads} threads");
                    }
                }
            }
        }
    }
}

/// Reads until the error with reads of `chunk` bytes into a buffer pre-filled with 0xEE;
/// returns the plaintext released and the error. Checks after every read that the buffer
/// beyond what was returned holds no plaintext (only zeros or the fill byte).
fn released_before_error(options: &Options, ct: &[u8], chunk: usize) -> (Vec<u8>, Kind) {
    let mut dec = options.decryptor(ct, &key(3), b"par").expect("header");
    let mut released = Vec::new();
    loop {
        let mut buf = vec![0xEE; chunk];
        match dec.read(&mut buf) {
            Ok(0) => panic!("damaged stream read to the end"),
            Ok(n) => {
                assert!(
                    buf[n..].iter().all(|&b| b == 0 || b == 0xEE),
                    "plaintext left in the buffer past the {n} bytes returned"
                );
                released.extend_from_slice(&buf[..n]);
            }
            Err(err) => {
                assert!(buf.iter().all(|&b| b == 0 || b == 0xEE));
                let err = kind(&Error::from_io(err));
                // Sticky: the same error again.
                let again = dec.read(&mut buf).expect_err("sticky");
                assert_eq!(kind(&Error::from_io(again)), err);
                return (released, err);
            }
        }
    }
}

#[test]
fn nothing_is_released_past_the_first_failing_segment() {
    for provider in PROVIDERS {
        let options = Options::native(4096).expect("valid").provider(provider);
        let plaintext = pattern(40 * 4096 + 100);
        let ct = encrypt_stream(&options.threads(1), &plaintext, plaintext.len());
        let spans = segment_spans(&options, ct.len());
        for k in [0, 1, 5, 7, 8, 9, 23, 40] {
            for (what, bytes) in [
                ("flip", {
                    let mut b = ct.clone();
                    b[spans[k].0 + 3] ^= 1;
                    b
                }),
                ("truncate", ct[..spans[k].0].to_vec()),
            ] {
                if what == "truncate" && k == 0 {
                    continue;
                }
                let (seq_released, seq_err) =
                    released_before_error(&options.threads(1), &bytes, 1 << 20);
                // A cut before segment k makes segment k - 1 fail (as final).
                let intact = if what == "flip" { k } else { k - 1 };
                assert_eq!(
                    seq_released,
                    plaintext[..intact * 4096],
                    "sequential {what} {k}"
                );
                for threads in [2, 3, 8] {
                    for chunk in [1000, 4096, 3 * 4096, 1 << 20] {
                        let (released, err) =
                            released_before_error(&options.threads(threads), &bytes, chunk);
                        assert_eq!(err, seq_err, "{what} {k} threads {threads} chunk {chunk}");
                        assert_eq!(
                            released.len(),
                            seq_released.len(),
                            "{what} in segment {k}, threads {threads}, {chunk}-byte reads"
                        );
                        assert_eq!(released, seq_released);
                    }
                }
            }
        }
    }
}

/// A writer that takes at most 1000 bytes per call, to split batch writes.
struct Dribble(Vec<u8>);

impl Write for Dribble {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(1000);
        self.0.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One `write_all` of several rings: the helpers keep sealing into the ring's slots while
/// the caller writes the sealed segments in order. Same bytes as sequentially, for lengths
/// around multiples of the ring (at least 256 KiB of segments), into a writer that takes
/// short writes.
#[test]
fn one_large_write_across_rings_writes_the_sequential_bytes() {
    for provider in PROVIDERS {
        for options in [
            Options::native(4096).expect("valid").provider(provider),
            Options::tink(1000).expect("valid").provider(provider),
        ] {
            let options = options.fixed_salt_for_testing(SALT);
            let (first, rest) = segment_sizes(&options);
            let ring = (256usize << 10).div_ceil(rest);
            for k in [ring + 1, 2 * ring, 2 * ring + 1, 3 * ring + 2] {
                let len = first + (k - 1) * rest;
                let plaintext = pattern(len);
                let expected = options.threads(1).seal(&key(5), b"big", &plaintext);
                let expected = expected.expect("seal");
                for threads in [2, 3] {
                    let mut enc = options
                        .threads(threads)
                        .encryptor(Dribble(Vec::new()), &key(5), b"big")
                        .expect("header");
                    enc.write_all(&plaintext).expect("write");
                    let Dribble(got) = enc.finish().expect("finish");
                    assert!(
                        got == expected,
                        "{:?} threads {threads}, {k} segments: differs from seal",
                        options.format()
                    );
                }
            }
        }
    }
}

/// Large and small writes mixed: the direct path and the queued one share the ring's slots,
/// and queued plaintext must survive a large write after it.
#[test]
fn mixed_large_and_small_writes_write_the_sequential_bytes() {
    let options = Options::native(4096)
        .expect("valid")
        .fixed_salt_for_testing(SALT);
    let ring = 64 * 4096; // a ring of 4 KiB segments (256 KiB)
    let patterns: [&[usize]; 4] = [
        &[
            1000,
            3 * ring + 7,
            5000,
            5 * ring,
            100,
            2 * ring - 1,
            3 * ring,
        ],
        &[7 * ring + 1, 4096, 4096 * 70, 3 * ring, 1, 4095, 4096 * 130],
        &[
            ring * 2 + 4096,
            9000,
            9000,
            9000,
            ring * 3,
            4096 * 127,
            4096 * 129,
        ],
        &[4096 * 200, ring * 3 + 1, 4096 * 100, 13, ring * 2],
    ];
    for chunks in patterns {
        let len: usize = chunks.iter().sum();
        let plaintext = pattern(len);
        let expected = options.threads(1).seal(&key(7), b"mix", &plaintext);
        let expected = expected.expect("seal");
        for threads in [2, 3] {
            let mut enc = options
                .threads(threads)
                .encryptor(Vec::new(), &key(7), b"mix")
                .expect("header");
            let mut at = 0;
            for &chunk in chunks {
                enc.write_all(&plaintext[at..at + chunk]).expect("write");
                at += chunk;
            }
            let got = enc.finish().expect("finish");
            assert!(
                got == expected,
                "{chunks:?}, {threads} threads: differs from seal"
            );
        }
    }
}

/// A writer failing in the middle of a multi-batch write: the error surfaces, what was
/// written is a prefix of the sequential stream, and the encryptor is poisoned.
#[test]
fn a_writer_failing_mid_pipeline_poisons_the_encryptor() {
    let options = Options::native(4096)
        .expect("valid")
        .fixed_salt_for_testing(SALT);
    let plaintext = pattern(3 << 20);
    let expected = options.threads(1).seal(&key(6), b"big", &plaintext);
    let expected = expected.expect("seal");
    for limit in [100, 600_000, 1_500_000, 2_900_000] {
        let sink = FailAfter {
            written: Vec::new(),
            limit,
        };
        let mut enc = options
            .threads(2)
            .encryptor(sink, &key(6), b"big")
            .expect("header");
        let err = enc.write_all(&plaintext).expect_err("disk full");
        assert_eq!(err.to_string(), "disk full", "limit {limit}");
        assert!(matches!(
            enc.copy_from(&mut &plaintext[..]),
            Err(Error::Misuse(atrest_stream::MisuseError::Poisoned))
        ));
        assert!(matches!(
            enc.finish(),
            Err(Error::Misuse(atrest_stream::MisuseError::Poisoned))
        ));
    }
    // What reached the writer is the sequential stream's prefix.
    let mut seen = Vec::new();
    let mut enc = options
        .threads(2)
        .encryptor(&mut seen, &key(6), b"big")
        .expect("header");
    enc.write_all(&plaintext[..(2 << 20) + 5]).expect("write");
    drop(enc);
    assert!(!seen.is_empty() && expected.starts_with(&seen), "prefix");
}

/// A writer that panics in the middle of a parallel multi-batch write: the panic reaches the
/// caller, and the helpers sealing ahead of it stop instead of waiting for a free slot
/// forever (this test would hang).
#[test]
fn a_writer_panicking_mid_pipeline_does_not_hang_the_helpers() {
    struct PanicAfter(usize);
    impl Write for PanicAfter {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            assert!(self.0 > 0, "the writer panics");
            self.0 -= 1;
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let plaintext = pattern(3 << 20);
    for threads in [2, 3] {
        for writes in [1, 2, 40, 300] {
            let caught = std::panic::catch_unwind(|| {
                let options = Options::native(4096).expect("valid").threads(threads);
                let mut enc = options
                    .encryptor(PanicAfter(writes), &key(6), b"big")
                    .expect("header");
                enc.write_all(&plaintext)
            });
            assert!(
                caught.is_err(),
                "{threads} threads, panic at write {writes}"
            );
        }
    }
}

/// Small writes (as from `io::copy`) into a writer that fails part way: the error surfaces
/// (at the latest from `finish`), the encryptor is poisoned, and what reached the writer is
/// a prefix of the sequential stream.
#[test]
fn a_writer_failing_under_small_writes_poisons_the_encryptor() {
    let options = Options::native(4096)
        .expect("valid")
        .fixed_salt_for_testing(SALT);
    let plaintext = pattern(3 << 20);
    let expected = options.threads(1).seal(&key(6), b"small", &plaintext);
    let expected = expected.expect("seal");
    for threads in [2, 3] {
        for limit in [100, 5000, 600_000, 2_900_000] {
            let mut enc = options
                .threads(threads)
                .encryptor(
                    FailAfter {
                        written: Vec::new(),
                        limit,
                    },
                    &key(6),
                    b"small",
                )
                .expect("header");
            let failed = plaintext
                .chunks(1000)
                .find_map(|chunk| enc.write_all(chunk).err());
            if let Some(err) = failed {
                assert_eq!(err.to_string(), "disk full", "limit {limit}");
                assert!(matches!(
                    enc.finish(),
                    Err(Error::Misuse(atrest_stream::MisuseError::Poisoned))
                ));
            } else {
                // The last ring of segments is written by `finish`.
                let err = enc.finish().expect_err("disk full");
                assert!(
                    matches!(&err, Error::Io(io) if io.to_string() == "disk full"),
                    "limit {limit}: {err}"
                );
            }
        }
        // The writer sees a prefix of the sequential stream at every moment.
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut enc = options
            .threads(threads)
            .encryptor(Watched(Rc::clone(&seen)), &key(6), b"small")
            .expect("header");
        for chunk in plaintext[..(2 << 20) + 5].chunks(1000) {
            enc.write_all(chunk).expect("write");
            assert!(expected.starts_with(&seen.borrow()), "prefix");
        }
        assert!(
            seen.borrow().len() > 1 << 20,
            "sealed segments are written as they come"
        );
        drop(enc);
    }
}

/// A writer whose bytes the test can watch while the encryptor owns it.
struct Watched(Rc<RefCell<Vec<u8>>>);

impl Write for Watched {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encryptors and decryptors on several threads at once share one pool of helpers: each
/// produces the bytes of the sequential path, whether its helper runs or it works alone,
/// and one dropped mid-stream leaves the others unaffected.
#[test]
fn concurrent_streams_share_the_pool() {
    let options = Options::native(4096)
        .expect("valid")
        .fixed_salt_for_testing(SALT)
        .threads(2);
    let plaintext = pattern((2 << 20) + 333);
    let expected = options.threads(1).seal(&key(8), b"c", &plaintext);
    let expected = expected.expect("seal");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (options, plaintext, expected) = (&options, &plaintext, &expected);
            scope.spawn(move || {
                let mut enc = options
                    .encryptor(Vec::new(), &key(8), b"c")
                    .expect("header");
                for chunk in plaintext.chunks(700 + 1000 * t) {
                    enc.write_all(chunk).expect("write");
                }
                assert!(enc.finish().expect("finish") == *expected, "thread {t}");
            });
        }
    });
    // Two encryptors interleaved on one thread, and one dropped mid-stream while its helper
    // may be sealing: the other is unaffected.
    let mut a = options.encryptor(Vec::new(), &key(8), b"c").expect("a");
    let mut b = options.encryptor(Vec::new(), &key(8), b"c").expect("b");
    let mut dropped = options.encryptor(Vec::new(), &key(8), b"c").expect("c");
    for chunk in plaintext.chunks(5000) {
        a.write_all(chunk).expect("a");
        b.write_all(chunk).expect("b");
        dropped.write_all(chunk).expect("c");
    }
    drop(dropped);
    assert!(a.finish().expect("a") == expected, "a");
    assert!(b.finish().expect("b") == expected, "b");

    // The same for decryptors: concurrent ones with small reads, then two interleaved on one
    // thread with a third dropped mid-stream.
    let (expected, plaintext) = (&expected, &plaintext);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let options = &options;
            scope.spawn(move || {
                let mut dec = options
                    .decryptor(&expected[..], &key(8), b"c")
                    .expect("header");
                let mut got = Vec::new();
                let mut buf = vec![0u8; 500 + 1000 * t];
                loop {
                    let n = dec.read(&mut buf).expect("authentic");
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got == *plaintext, "decryptor thread {t}");
            });
        }
    });
    let mut readers: Vec<_> = (0..3)
        .map(|_| {
            options
                .decryptor(&expected[..], &key(8), b"c")
                .expect("header")
        })
        .collect();
    let mut outs = vec![Vec::new(); 3];
    let mut buf = [0u8; 3000];
    for round in 0.. {
        let mut progress = false;
        for (reader, out) in readers.iter_mut().zip(&mut outs) {
            let n = reader.read(&mut buf).expect("authentic");
            out.extend_from_slice(&buf[..n]);
            progress |= n > 0;
        }
        if round == 200 {
            readers.pop();
            outs.pop();
        }
        if !progress {
            break;
        }
    }
    assert!(
        outs.iter().all(|out| out == plaintext),
        "interleaved decryptors"
    );
}

/// A writer that fails after `limit` bytes, to check poisoning in parallel mode.
#[derive(Debug)]
struct FailAfter {
    written: Vec<u8>,
    limit: usize,
}

impl Write for FailAfter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.written.len() >= self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        let n = data.len().min(self.limit - self.written.len());
        self.written.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_poisons_the_parallel_encryptor() {
    let options = Options::native(4096).expect("valid").threads(2);
    let sink = FailAfter {
        written: Vec::new(),
        limit: 10_000,
    };
    let mut enc = options.encryptor(sink, &key(3), b"par").expect("header");
    let err = enc.write_all(&pattern(100_000)).expect_err("disk full");
    assert_eq!(err.to_string(), "disk full");
    let again = enc.write(b"x").expect_err("poisoned");
    assert!(matches!(
        Error::from_io(again),
        Error::Misuse(atrest_stream::MisuseError::Poisoned)
    ));
    assert!(matches!(
        enc.finish(),
        Err(Error::Misuse(atrest_stream::MisuseError::Poisoned))
    ));
}

#[test]
fn a_read_error_surfaces_after_the_segments_before_it() {
    /// Yields `ok` bytes of `data`, then fails.
    struct FailingReader<'a> {
        data: &'a [u8],
        ok: usize,
    }
    impl Read for FailingReader<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.ok == 0 {
                return Err(std::io::Error::other("network down"));
            }
            let n = out.len().min(self.ok).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.ok -= n;
            Ok(n)
        }
    }
    let options = Options::native(4096).expect("valid");
    let plaintext = pattern(20 * 4096);
    let ct = encrypt_stream(&options, &plaintext, plaintext.len());
    for ok in [42, 42 + 4112, 42 + 3 * 4112 + 1, 42 + 9 * 4112 + 100] {
        let mut outcomes = Vec::new();
        for threads in [1, 2, 8] {
            let reader = FailingReader { data: &ct, ok };
            let mut dec = options
                .threads(threads)
                .decryptor(reader, &key(3), b"par")
                .expect("header");
            let mut got = Vec::new();
            let err = dec.read_to_end(&mut got).expect_err("fails");
            assert_eq!(err.to_string(), "network down");
            outcomes.push(got.len());
        }
        assert!(
            outcomes.iter().all(|&n| n == outcomes[0]),
            "read error after {ok} bytes: released {outcomes:?}"
        );
    }
}

/// `Encryptor::write_in_place` writes the bytes of `seal` whatever the chunking, the worker
/// count and the mix with `write_all`; on one thread it seals in the caller's buffer.
#[test]
fn write_in_place_writes_the_sequential_bytes() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let options = options.fixed_salt_for_testing(SALT);
            let (first, rest) = segment_sizes(&options);
            for len in boundary_lengths(&options) {
                let plaintext = pattern(len);
                let expected = options
                    .threads(1)
                    .seal(&key(3), b"par", &plaintext)
                    .expect("seal");
                for threads in [1, 2] {
                    let par = options.threads(threads);
                    for chunk in [len, first, first + 1, 2 * rest, 3 * rest + 7, 1000] {
                        let mut enc = par
                            .encryptor(Vec::new(), &key(3), b"par")
                            .expect("encryptor");
                        // Every third piece through `write_all`, the rest in place.
                        for (i, piece) in plaintext.chunks(chunk.max(1)).enumerate() {
                            if i % 3 == 2 {
                                enc.write_all(piece).expect("write");
                            } else {
                                enc.write_in_place(&mut piece.to_vec()).expect("write");
                            }
                        }
                        let what = format!(
                            "{:?} threads {threads} len {len} chunk {chunk}",
                            options.format()
                        );
                        assert_eq!(enc.finish().expect("finish"), expected, "{what}");
                    }
                }
                // One call, one thread: every segment but the last is sealed where it lies,
                // so the caller's buffer holds those segments' ciphertext.
                let mut buf = plaintext.clone();
                let mut enc = options
                    .threads(1)
                    .encryptor(Vec::new(), &key(3), b"par")
                    .expect("encryptor");
                enc.write_in_place(&mut buf).expect("write");
                assert_eq!(enc.finish().expect("finish"), expected);
                if len > first {
                    let body = options.header_len();
                    assert_eq!(buf[..first], expected[body..body + first], "len {len}");
                }
            }
        }
    }
}
