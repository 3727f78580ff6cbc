//! Round trips through every writer and reader, at and around segment boundaries.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::io::Write;

use atrest_stream::{Encryptor, Options};
use common::{PROVIDERS, assert_all_ways, key, pattern, segment_sizes, small_segment_options};
use proptest::prelude::*;

/// Lengths `k*seg - 1, k*seg, k*seg + 1` for the first few k, in plaintext bytes, taking
/// Tink's shortened first segment into account.
fn boundary_lengths(options: &Options) -> Vec<usize> {
    let (first, rest) = segment_sizes(options);
    let mut lengths = vec![0, 1, 2];
    for k in 0..4 {
        let edge = first + k * rest;
        lengths.extend([edge - 1, edge, edge + 1]);
    }
    lengths
}

fn encrypt_in_chunks(
    options: &Options,
    key_byte: u8,
    aad: &[u8],
    plaintext: &[u8],
    chunks: &[usize],
) -> Vec<u8> {
    let mut enc = options
        .encryptor(Vec::new(), &key(key_byte), aad)
        .expect("encryptor");
    let mut rest = plaintext;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        enc.write_all(&rest[..n]).expect("write");
        rest = &rest[n..];
        i += 1;
    }
    enc.finish().expect("finish")
}

#[test]
fn boundaries_every_path() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            for len in boundary_lengths(&options) {
                let plaintext = pattern(len);
                for aad in [&b""[..], b"tenant=7"] {
                    let sealed = options.seal(&key(1), aad, &plaintext).expect("seal");
                    let written = encrypt_in_chunks(&options, 1, aad, &plaintext, &[len.max(1)]);
                    let expected_len = options.header_len()
                        + len
                        + 16 * common::segment_spans(&options, sealed.len()).len();
                    assert_eq!(sealed.len(), expected_len, "{options:?} len {len}");
                    assert_eq!(written.len(), sealed.len(), "{options:?} len {len}");
                    let ok = Ok(plaintext.clone());
                    assert_all_ways(&options, &key(1), aad, &sealed, &ok, "seal");
                    assert_all_ways(&options, &key(1), aad, &written, &ok, "encryptor");

                    // In place: the same bytes as `seal` for the same salt.
                    let fixed = options.fixed_salt_for_testing([9; 32]);
                    let mut in_place = plaintext.clone();
                    fixed
                        .seal_in_place(&key(1), aad, &mut in_place)
                        .expect("seal in place");
                    let copied = fixed.seal(&key(1), aad, &plaintext).expect("seal");
                    assert_eq!(in_place, copied, "{options:?} len {len}");
                    assert_all_ways(&options, &key(1), aad, &in_place, &ok, "seal_in_place");
                }
            }
        }
    }
}

#[test]
fn exact_multiple_ends_with_full_final_segment() {
    // FORMAT.md §1.4: a plaintext filling k segments exactly is k segments, not k + 1.
    let options = Options::native(4096).expect("valid");
    let sealed = options
        .seal(&key(1), b"", &pattern(2 * 4096))
        .expect("seal");
    assert_eq!(sealed.len(), 42 + 2 * (4096 + 16));
    let empty = options.seal(&key(1), b"", b"").expect("seal");
    assert_eq!(
        empty.len(),
        42 + 16,
        "empty plaintext is one empty final segment"
    );
}

#[test]
fn default_options_are_native_64k() {
    let sealed = atrest_stream::seal(&key(3), b"", &pattern(70_000)).expect("seal");
    assert_eq!(&sealed[..6], &[0x89, b'a', b't', b'r', 1, 1]);
    assert_eq!(&sealed[6..10], &65536u32.to_be_bytes());
    assert_eq!(sealed.len(), 42 + 70_000 + 2 * 16);
    assert_eq!(
        atrest_stream::open(&key(3), b"", &sealed).expect("open"),
        pattern(70_000)
    );
}

#[test]
fn fresh_salt_every_stream() {
    let a = atrest_stream::seal(&key(1), b"", b"same").expect("seal");
    let b = atrest_stream::seal(&key(1), b"", b"same").expect("seal");
    assert_ne!(a[10..42], b[10..42], "salts must differ");
    assert_ne!(a[42..], b[42..], "ciphertexts must differ");
}

#[test]
fn encryptor_flush_does_not_seal_partial_segments() {
    let options = Options::native(4096).expect("valid");
    let mut enc = options
        .encryptor(Vec::new(), &key(1), b"")
        .expect("encryptor");
    enc.write_all(&pattern(100)).expect("write");
    enc.flush().expect("flush");
    let out = enc.finish().expect("finish");
    assert_eq!(out.len(), 42 + 100 + 16);
}

#[test]
fn dropping_without_finish_is_truncated() {
    let options = Options::native(4096).expect("valid");
    let mut sink = Vec::new();
    {
        let mut enc = options
            .encryptor(&mut sink, &key(1), b"")
            .expect("encryptor");
        enc.write_all(&pattern(10_000)).expect("write");
        // dropped: no final segment
    }
    assert_eq!(
        sink.len(),
        42 + 2 * 4112,
        "only the two full non-final segments were written"
    );
    assert_all_ways(
        &options,
        &key(1),
        b"",
        &sink,
        &Err(common::Kind::Truncated),
        "unfinished",
    );

    let mut empty = Vec::new();
    drop(Encryptor::new(&mut empty, &key(1), b"").expect("encryptor"));
    assert_eq!(empty.len(), 42);
    assert_all_ways(
        &Options::default(),
        &key(1),
        b"",
        &empty,
        &Err(common::Kind::Truncated),
        "header only",
    );
}

/// A reader that hands out at most `step` bytes per call, interrupts every third call and can
/// fail after `fail_after` bytes.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
    fail_after: Option<usize>,
    given: usize,
}

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        if self.fail_after.is_some_and(|limit| self.given >= limit) {
            return Err(std::io::Error::other("connection reset"));
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given += n;
        Ok(n)
    }
}

/// `copy_from` writes the bytes of `seal`, whatever the reader's chunking and the thread
/// count; a read error is reported as `Error::Io` with what came before accepted.
#[test]
fn copy_from_writes_the_bytes_of_seal() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let options = options.fixed_salt_for_testing([4; 32]);
            let (first, rest) = segment_sizes(&options);
            for len in [
                0,
                1,
                first,
                first + 1,
                first + 5 * rest,
                300_000,
                (1 << 20) + 3,
            ] {
                let plaintext = pattern(len);
                let expected = options.seal(&key(2), b"copy", &plaintext).expect("seal");
                for threads in [1, 2] {
                    for step in [1 << 30, 1 << 20, rest + 1, 1000] {
                        let mut enc = options
                            .threads(threads)
                            .encryptor(Vec::new(), &key(2), b"copy")
                            .expect("encryptor");
                        let mut reader = Dribble {
                            data: &plaintext,
                            step,
                            calls: 0,
                            fail_after: None,
                            given: 0,
                        };
                        assert_eq!(enc.copy_from(&mut reader).expect("copy"), len as u64);
                        let what = format!("{:?} len {len} step {step}", options.format());
                        assert_eq!(enc.finish().expect("finish"), expected, "{what}");
                    }
                }
            }
        }
    }
    let plaintext = pattern(100_000);
    let options = Options::native(4096)
        .expect("valid")
        .fixed_salt_for_testing([4; 32]);
    let mut enc = options
        .encryptor(Vec::new(), &key(2), b"copy")
        .expect("encryptor");
    let mut reader = Dribble {
        data: &plaintext,
        step: 7000,
        calls: 0,
        fail_after: Some(20_000),
        given: 0,
    };
    let err = enc.copy_from(&mut reader).expect_err("reader fails");
    assert!(
        matches!(&err, atrest_stream::Error::Io(io) if io.to_string() == "connection reset"),
        "{err}"
    );
    // Not poisoned: the rest can follow, and the stream is the whole plaintext.
    enc.write_all(&plaintext[21_000..]).expect("go on");
    // 7000 + 7000 + 7000 bytes were read before the failure (the third call interrupted).
    let stream = enc.finish().expect("finish");
    assert_eq!(
        options.open(&key(2), b"copy", &stream).expect("open"),
        plaintext
    );
}

#[test]
fn write_errors_poison_the_encryptor() {
    struct FailAfter(usize);
    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let options = Options::native(4096).expect("valid");
    // Sealed in the caller's buffer, the segment and its tag go out in one vectored write.
    let mut enc = options
        .encryptor(FailAfter(4000), &key(1), b"")
        .expect("header fits");
    let err = enc
        .write_in_place(&mut pattern(10_000))
        .expect_err("segment does not fit");
    assert_eq!(err.to_string(), "I/O error: disk full");
    assert!(matches!(
        enc.write_in_place(&mut pattern(10)),
        Err(atrest_stream::Error::Misuse(
            atrest_stream::MisuseError::Poisoned
        ))
    ));
    assert!(matches!(
        enc.copy_from(&mut &b"more"[..]),
        Err(atrest_stream::Error::Misuse(
            atrest_stream::MisuseError::Poisoned
        ))
    ));
    assert!(enc.finish().is_err(), "poisoned");

    let mut enc = options
        .encryptor(FailAfter(100), &key(1), b"")
        .expect("header fits");
    let err = enc
        .write_all(&pattern(10_000))
        .expect_err("segment does not fit");
    assert_eq!(err.to_string(), "disk full");
    let again = enc.write(b"x").expect_err("poisoned");
    assert_eq!(
        common::kind(&atrest_stream::Error::from_io(again)),
        common::Kind::Misuse(atrest_stream::MisuseError::Poisoned)
    );
    assert!(matches!(
        enc.finish(),
        Err(atrest_stream::Error::Misuse(
            atrest_stream::MisuseError::Poisoned
        ))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random segment sizes and lengths around k*seg-1, k*seg, k*seg+1, random write sizes,
    /// both formats.
    #[test]
    fn roundtrip_random(
        provider in 0usize..PROVIDERS.len(),
        native in any::<bool>(),
        seg in 0u32..4000,
        k in 0usize..4,
        delta in -1i64..=1,
        chunks in proptest::collection::vec(1usize..9000, 1..5),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let options = if native {
            Options::native(4096 + seg).expect("in range")
        } else {
            Options::tink(57 + seg).expect("in range")
        }
        .provider(PROVIDERS[provider]);
        let (first, rest) = segment_sizes(&options);
        let len = usize::try_from((first + k * rest) as i64 + delta).unwrap_or(0);
        let plaintext = pattern(len);
        let written = encrypt_in_chunks(&options, 2, &aad, &plaintext, &chunks);
        let sealed = options.seal(&key(2), &aad, &plaintext).expect("seal");
        prop_assert_eq!(written.len(), sealed.len());
        let ok = Ok(plaintext);
        assert_all_ways(&options, &key(2), &aad, &written, &ok, "encryptor");
        assert_all_ways(&options, &key(2), &aad, &sealed, &ok, "seal");
    }
}

/// Every provider produces byte-identical streams for the same key, salt and input, and reads
/// what every other provider wrote.
#[test]
fn providers_are_interchangeable() {
    let plaintext = pattern(3 * 4096 + 77);
    let salt = [0x42; 32];
    let mut outputs = Vec::new();
    for provider in PROVIDERS {
        let options = Options::native(4096).expect("valid").provider(provider);
        let sealed = options
            .fixed_salt_for_testing(salt)
            .seal(&key(9), b"ctx", &plaintext)
            .expect("seal");
        let mut enc = options
            .fixed_salt_for_testing(salt)
            .encryptor(Vec::new(), &key(9), b"ctx")
            .expect("enc");
        enc.write_all(&plaintext).expect("write");
        assert_eq!(
            enc.finish().expect("finish"),
            sealed,
            "{}: writer and seal differ",
            provider.name
        );
        outputs.push((provider.name, sealed));
    }
    for (name, sealed) in &outputs[1..] {
        assert_eq!(
            sealed, &outputs[0].1,
            "{name} differs from {}",
            outputs[0].0
        );
    }
    for writer in PROVIDERS {
        for tink in [false, true] {
            let options = if tink {
                Options::tink(1000).expect("valid")
            } else {
                Options::native(4096).expect("valid")
            };
            let sealed = options
                .provider(writer)
                .seal(&key(9), b"ctx", &plaintext)
                .expect("seal");
            for reader in PROVIDERS {
                assert_all_ways(
                    &options.provider(reader),
                    &key(9),
                    b"ctx",
                    &sealed,
                    &Ok(plaintext.clone()),
                    "cross",
                );
            }
        }
    }
}
