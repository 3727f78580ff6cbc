//! Bounded allocation: the peak heap use of every reader on hostile inputs (headers that
//! announce huge segments over a few bytes of body) stays within a stated bound.
//!
//! The counting allocator is the `cap` crate (MIT OR Apache-2.0); this file has no `unsafe`.
//! `cap` tracks a process-wide high-water mark that cannot be reset, so everything runs in one
//! test, in order of increasing bound, and each bound is checked against the all-time peak.

use std::alloc::System;
use std::io::{Cursor, Read};

use atrest_stream::{Decryptor, Key256, MAX_SEGMENT_SIZE, Options, SeekableDecryptor};
use cap::Cap;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const KIB: usize = 1 << 10;

/// A native header announcing `segment_size`, followed by `body` bytes of junk.
fn hostile(segment_size: u32, body: usize) -> Vec<u8> {
    let mut stream = vec![0x89, b'a', b't', b'r', 1, 1];
    stream.extend_from_slice(&segment_size.to_be_bytes());
    stream.extend_from_slice(&[0x11; 32]);
    stream.extend(std::iter::repeat_n(0x5A, body));
    stream
}

/// Runs every reader over `stream`, ignoring the (expected) errors.
fn decrypt_everywhere(stream: &[u8], options: &Options, sequential: bool) {
    let key = Key256::from_bytes([3; 32]);
    let _ = options.open(&key, b"", stream);
    if let Ok(reader) = SeekableDecryptor::with_options(Cursor::new(stream), &key, b"", options) {
        let mut sink = Vec::new();
        let _ = reader.read_at(0, &mut [0; 64]);
        let mut reader = reader;
        let _ = reader.read_to_end(&mut sink);
    }
    if sequential && let Ok(mut reader) = Decryptor::with_options(stream, &key, b"", options) {
        let _ = reader.read_to_end(&mut Vec::new());
    }
}

fn assert_peak_below(baseline: usize, bound: usize, what: &str) {
    let peak = ALLOCATOR.max_allocated().saturating_sub(baseline);
    println!("{what}: peak {peak} bytes above baseline (bound {bound})");
    assert!(peak < bound, "{what}: peak {peak} >= bound {bound}");
}

#[test]
fn peak_allocation_is_bounded_by_the_segment_cap() {
    let baseline = ALLOCATOR.allocated();
    let huge = MAX_SEGMENT_SIZE; // 16 MiB, the format's maximum
    let small_cap = Options::default()
        .max_segment_size(64 << 10)
        .expect("valid cap");
    let default = Options::default();
    // Bodies: empty, inside a tag, one short segment, a few KiB.
    let bodies = [0, 5, 100, 3 * KIB];

    // 1. With a 64 KiB cap, no reader allocates more than about one 64 KiB segment, whatever
    //    the header announces (16 MiB headers are rejected before any allocation).
    for body in bodies {
        for size in [huge, 64 << 10, 4096] {
            decrypt_everywhere(&hostile(size, body), &small_cap, true);
        }
    }
    assert_peak_below(baseline, 256 * KIB, "64 KiB cap, all readers");

    // 2. With the default 16 MiB cap, the in-memory and seekable readers allocate in
    //    proportion to the input (plus small constants), not to the announced segment size,
    //    as long as the stored length is not cut inside a tag.
    for body in [100, 3 * KIB] {
        decrypt_everywhere(&hostile(huge, body), &default, false);
    }
    assert_peak_below(baseline, 256 * KIB, "16 MiB header, open and seekable");

    // 3. The sequential reader (and `open`, which hands streams cut inside a tag to it) grows
    //    its buffer with the ciphertext that actually arrives (64 KiB first, then doubling),
    //    so a short stream announcing 16 MiB segments costs about 64 KiB, not 16 MiB.
    for body in bodies {
        decrypt_everywhere(&hostile(huge, body), &default, true);
    }
    assert_peak_below(baseline, 256 * KIB, "16 MiB header, every reader");
}
