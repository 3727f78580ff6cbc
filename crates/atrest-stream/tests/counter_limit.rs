//! The writer refuses to exceed the segment counter before it would reuse a nonce.
//! Uses the `test-hooks` feature to start the counter near its limit.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::io::Write;

use atrest_stream::{Encryptor, Error, MisuseError, Options};
use common::{key, pattern};

fn check(options: Options, limit: u64) {
    // Sequential, and the parallel ring (two and three workers from the first byte).
    for threads in [1, 2, 3] {
        check_with(options.threads(threads), limit);
    }
}

/// After the limit was refused, `enc` still finishes into a stream of exactly `fits`.
fn finishes_what_fits(enc: Encryptor<Vec<u8>>, near: &Options, fits: &[u8], what: &str) {
    let ct = enc.finish().expect("finish");
    assert_eq!(
        near.open(&key(1), b"", &ct).expect("decrypts"),
        fits,
        "{what}"
    );
}

fn check_with(options: Options, limit: u64) {
    let (first, rest) = common::segment_sizes(&options);
    let fits = first + 2 * rest;
    // Segments limit-2 and limit-1 are non-final; limit can only be final.
    let near = options.initial_counter_for_testing(limit - 2);
    let plaintext = pattern(fits + 1);

    // Exactly three full segments fit: two non-final and a full final one.
    let mut enc = near.encryptor(Vec::new(), &key(1), b"").expect("encryptor");
    enc.write_all(&plaintext[..fits]).expect("fits");
    let ct = enc.finish().expect("finish");
    assert_eq!(
        near.open(&key(1), b"", &ct).expect("decrypts"),
        &plaintext[..fits]
    );

    // One more byte would need a non-final segment at the last counter value.
    let mut enc = near.encryptor(Vec::new(), &key(1), b"").expect("encryptor");
    let accepted = enc
        .write(&plaintext)
        .expect("first write accepts what fits");
    assert_eq!(accepted, fits, "the writer takes exactly what fits");
    let err = enc
        .write(&plaintext[accepted..])
        .expect_err("counter exhausted");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(matches!(
        Error::from_io(err),
        Error::Misuse(MisuseError::StreamTooLong)
    ));
    // Still not poisoned: what was accepted is finished into a valid stream.
    finishes_what_fits(enc, &near, &plaintext[..fits], "one write");

    // The same in small writes: the limit is met with segments queued in the ring.
    let mut enc = near.encryptor(Vec::new(), &key(1), b"").expect("encryptor");
    let mut accepted = 0;
    let err = loop {
        let end = (accepted + 1000).min(plaintext.len());
        match enc.write(&plaintext[accepted..end]) {
            Ok(n) => accepted += n,
            Err(err) => break err,
        }
    };
    assert_eq!(
        accepted, fits,
        "small writes: the writer takes exactly what fits"
    );
    assert!(matches!(
        Error::from_io(err),
        Error::Misuse(MisuseError::StreamTooLong)
    ));
    finishes_what_fits(enc, &near, &plaintext[..fits], "small writes");

    // The one-shot API refuses up front.
    assert!(matches!(
        near.seal(&key(1), b"", &plaintext),
        Err(Error::Misuse(MisuseError::StreamTooLong))
    ));
}

#[test]
fn native_counter_limit() {
    check(Options::native(4096).expect("valid"), u64::MAX);
}

#[test]
fn tink_counter_limit() {
    // Tink counts segments in 32 bits.
    check(Options::tink(4096).expect("valid"), u64::from(u32::MAX));
}

#[test]
fn write_all_surfaces_the_limit() {
    let near = Options::native(4096)
        .expect("valid")
        .initial_counter_for_testing(u64::MAX);
    let mut enc = near.encryptor(Vec::new(), &key(1), b"").expect("encryptor");
    // Only one (final) segment is possible.
    let err = enc.write_all(&pattern(4097)).expect_err("too long");
    assert!(matches!(
        Error::from_io(err),
        Error::Misuse(MisuseError::StreamTooLong)
    ));
}
