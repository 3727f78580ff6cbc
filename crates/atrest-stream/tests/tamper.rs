//! Every way of damaging a stream is rejected, with the exact error, by every reader.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use atrest_stream::{HeaderError, Options};
use common::{
    Kind, PROVIDERS, assert_all_ways, key, pattern, segment_sizes, segment_spans,
    small_segment_options,
};
use proptest::prelude::*;

/// What a reader must report when bit `bit` of byte `pos` of `ct` is flipped.
/// Derived from FORMAT.md, not from the code under test.
fn expected_flip(options: &Options, ct: &[u8], pos: usize, bit: u8) -> Kind {
    let header = options.header_len();
    match options.format() {
        atrest_stream::Format::Native { .. } if pos < header => {
            let flipped = ct[pos] ^ (1 << bit);
            match pos {
                0..=3 => Kind::Header(HeaderError::Magic),
                4 => Kind::Header(HeaderError::Version(flipped)),
                5 => Kind::Header(HeaderError::Suite(flipped)),
                6..=9 => {
                    let mut size = [0u8; 4];
                    size.copy_from_slice(&ct[6..10]);
                    size[pos - 6] = flipped;
                    let size = u32::from_be_bytes(size);
                    if (4096..=16 << 20).contains(&size) {
                        // A different but valid segment size changes the stream key.
                        Kind::Authentication
                    } else {
                        Kind::Header(HeaderError::SegmentSize(size))
                    }
                }
                _ => Kind::Authentication, // salt
            }
        }
        atrest_stream::Format::Tink { .. } if pos == 0 => {
            Kind::Header(HeaderError::TinkHeaderLength(ct[0] ^ (1 << bit)))
        }
        // Tink salt or nonce prefix, and every segment byte of both formats.
        _ => Kind::Authentication,
    }
}

fn flip(ct: &[u8], pos: usize, bit: u8) -> Vec<u8> {
    let mut bad = ct.to_vec();
    bad[pos] ^= 1 << bit;
    bad
}

#[test]
fn every_bit_flip_small_streams() {
    // Exhaustive: every bit of streams of 0, 1 and 3 segments (segments of Tink(57) are
    // tiny, so a multi-segment stream is a few hundred bytes).
    for provider in PROVIDERS {
        let cases = [
            (
                Options::native(4096).expect("valid").provider(provider),
                0usize,
            ),
            (Options::native(4096).expect("valid").provider(provider), 33),
            (Options::tink(57).expect("valid").provider(provider), 0),
            (
                Options::tink(57).expect("valid").provider(provider),
                1 + 41 + 41 + 7,
            ),
        ];
        for (options, len) in cases {
            let ct = options.seal(&key(5), b"ctx", &pattern(len)).expect("seal");
            for pos in 0..ct.len() {
                for bit in 0..8 {
                    let expected = Err(expected_flip(&options, &ct, pos, bit));
                    let what = format!("{options:?} len {len} flip byte {pos} bit {bit}");
                    assert_all_ways(
                        &options,
                        &key(5),
                        b"ctx",
                        &flip(&ct, pos, bit),
                        &expected,
                        &what,
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any flipped bit of a multi-segment stream, both formats.
    #[test]
    fn any_bit_flip(provider in 0usize..PROVIDERS.len(), which in 0usize..4, len in 0usize..20_000, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let options = small_segment_options(PROVIDERS[provider]).swap_remove(which);
        let ct = options.seal(&key(6), b"aad", &pattern(len)).expect("seal");
        let pos = at.index(ct.len());
        let expected = Err(expected_flip(&options, &ct, pos, bit));
        assert_all_ways(&options, &key(6), b"aad", &flip(&ct, pos, bit), &expected, "random flip");
    }
}

/// What a reader reports for a stream cut to its first `cut` bytes.
fn expected_truncation(options: &Options, full: &[u8], cut: usize) -> Kind {
    let header = options.header_len();
    if cut < header {
        // A partial header that still matches the magic (or Tink's length byte) is truncated.
        return Kind::Truncated;
    }
    let spans = segment_spans(options, full.len());
    // Where does the cut fall relative to the original segments?
    for (start, len) in &spans {
        let end = start + len;
        if cut == *start {
            // Cut exactly after a complete segment: what remains ends with an authentic
            // non-final segment (or with the bare header).
            return Kind::Truncated;
        }
        if cut > *start && cut < end {
            // Cut inside a segment: fewer than 16 bytes of it left cannot hold a tag;
            // otherwise the partial segment fails its tag.
            return if cut - start < 16 {
                Kind::Truncated
            } else {
                Kind::Authentication
            };
        }
    }
    unreachable!("cut {cut} is the full length")
}

#[test]
fn every_truncation_point() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let (first, rest) = segment_sizes(&options);
            let len = first + 2 * rest + 100;
            let ct = options.seal(&key(7), b"", &pattern(len)).expect("seal");
            // Every cut in the header, around every segment boundary and every tag, and a
            // stride through the bodies.
            let mut cuts: Vec<usize> = (0..options.header_len() + 1).collect();
            for (start, seg_len) in segment_spans(&options, ct.len()) {
                for c in [
                    start,
                    start + 1,
                    start + 15,
                    start + 16,
                    start + 17,
                    start + seg_len - 1,
                ] {
                    cuts.push(c);
                }
            }
            cuts.extend((0..ct.len()).step_by(97));
            cuts.retain(|&c| c < ct.len());
            cuts.sort_unstable();
            cuts.dedup();
            for cut in cuts {
                let expected = Err(expected_truncation(&options, &ct, cut));
                let what = format!("{options:?} cut at {cut} of {}", ct.len());
                assert_all_ways(&options, &key(7), b"", &ct[..cut], &expected, &what);
            }
        }
    }
}

#[test]
fn every_truncation_point_exhaustive_tiny() {
    let options = Options::tink(57).expect("valid");
    let ct = options.seal(&key(7), b"x", &pattern(150)).expect("seal");
    for cut in 0..ct.len() {
        let expected = Err(expected_truncation(&options, &ct, cut));
        assert_all_ways(
            &options,
            &key(7),
            b"x",
            &ct[..cut],
            &expected,
            &format!("cut {cut}"),
        );
    }
}

#[test]
fn trailing_data() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let (first, rest) = segment_sizes(&options);
            // Final segment full: appended bytes are recognised as trailing data, whatever
            // they are, once the final segment has authenticated as final.
            let full = options
                .seal(&key(8), b"", &pattern(first + rest))
                .expect("seal");
            for extra in [1usize, 15, 16, 17, rest + 16, 5000] {
                let mut ct = full.clone();
                ct.extend(std::iter::repeat_n(0xA5, extra));
                for (path, got) in common::decrypt_all_ways(&options, &key(8), b"", &ct) {
                    // `SeekFrom::End` authenticates the stored end first. When the junk is a
                    // segment or more long, the stored end is junk through and through, and
                    // the reader cannot know where the real final segment was: it reports an
                    // authentication failure instead. Either way nothing is accepted.
                    let expected = if path == "seekable/seek-end" && extra > rest + 16 {
                        Kind::Authentication
                    } else {
                        Kind::TrailingData
                    };
                    assert_eq!(got, Err(expected), "{options:?} full+{extra}: {path}");
                }
            }
            // A whole extra copy of the final segment.
            let last = *segment_spans(&options, full.len())
                .last()
                .expect("segments");
            let mut dup = full.clone();
            dup.extend_from_slice(&full[last.0..]);
            assert_all_ways(
                &options,
                &key(8),
                b"",
                &dup,
                &Err(Kind::TrailingData),
                "final twice",
            );

            // Final segment short: appended bytes become part of it and its tag fails,
            // unless so few that they cannot complete a tag of the next segment.
            let short = options
                .seal(&key(8), b"", &pattern(first + 10))
                .expect("seal");
            for extra in [1usize, 16, 100] {
                let mut ct = short.clone();
                ct.extend(std::iter::repeat_n(0x5A, extra));
                assert_all_ways(
                    &options,
                    &key(8),
                    b"",
                    &ct,
                    &Err(Kind::Authentication),
                    "short+extra",
                );
            }
        }
    }
}

#[test]
fn reordered_duplicated_and_dropped_segments() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let (first, rest) = segment_sizes(&options);
            let ct = options
                .seal(&key(9), b"", &pattern(first + 3 * rest))
                .expect("seal");
            let spans = segment_spans(&options, ct.len());
            assert_eq!(spans.len(), 4);
            let seg = |i: usize| &ct[spans[i].0..spans[i].0 + spans[i].1];
            let header = &ct[..options.header_len()];
            let build = |order: &[usize]| {
                let mut v = header.to_vec();
                for &i in order {
                    v.extend_from_slice(seg(i));
                }
                v
            };
            let auth = Err(Kind::Authentication);
            // Swapping two middle segments (same length): nonces no longer match.
            assert_all_ways(
                &options,
                &key(9),
                b"",
                &build(&[0, 2, 1, 3]),
                &auth,
                "swap 1,2",
            );
            // Duplicating a segment in place of another.
            assert_all_ways(
                &options,
                &key(9),
                b"",
                &build(&[0, 1, 1, 3]),
                &auth,
                "dup 1",
            );
            // Dropping a middle segment.
            assert_all_ways(&options, &key(9), b"", &build(&[0, 1, 3]), &auth, "drop 2");
            // Dropping the final segment: authentic but truncated.
            assert_all_ways(
                &options,
                &key(9),
                b"",
                &build(&[0, 1, 2]),
                &Err(Kind::Truncated),
                "drop final",
            );
            if options.format() != Options::default().format() || first == rest {
                // Moving the (short? no: full) segment 0 elsewhere when sizes allow.
                if first == rest {
                    assert_all_ways(
                        &options,
                        &key(9),
                        b"",
                        &build(&[1, 0, 2, 3]),
                        &auth,
                        "swap 0,1",
                    );
                }
            }
        }
    }
}

#[test]
fn segments_spliced_from_another_stream() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            let (first, rest) = segment_sizes(&options);
            let len = first + 2 * rest + 5;
            // Same key, same associated data, same plaintext: only the salt differs.
            let a = options
                .seal(&key(10), b"same", &pattern(len))
                .expect("seal");
            let b = options
                .seal(&key(10), b"same", &pattern(len))
                .expect("seal");
            assert_eq!(a.len(), b.len());
            let spans = segment_spans(&options, a.len());
            for (start, seg_len) in &spans {
                let mut spliced = a.clone();
                spliced[*start..start + seg_len].copy_from_slice(&b[*start..start + seg_len]);
                assert_all_ways(
                    &options,
                    &key(10),
                    b"same",
                    &spliced,
                    &Err(Kind::Authentication),
                    "splice",
                );
            }
            // B's header on A's body.
            let h = options.header_len();
            let mut swapped = b[..h].to_vec();
            swapped.extend_from_slice(&a[h..]);
            assert_all_ways(
                &options,
                &key(10),
                b"same",
                &swapped,
                &Err(Kind::Authentication),
                "header swap",
            );
        }
    }
}

#[test]
fn wrong_key_or_associated_data() {
    for provider in PROVIDERS {
        for options in small_segment_options(provider) {
            for len in [0usize, 1, 5000] {
                let ct = options
                    .seal(&key(11), b"tenant=a", &pattern(len))
                    .expect("seal");
                let auth = Err(Kind::Authentication);
                assert_all_ways(&options, &key(12), b"tenant=a", &ct, &auth, "wrong key");
                assert_all_ways(&options, &key(11), b"tenant=b", &ct, &auth, "wrong aad");
                assert_all_ways(&options, &key(11), b"", &ct, &auth, "missing aad");
                assert_all_ways(
                    &options,
                    &key(11),
                    b"tenant=a\0",
                    &ct,
                    &auth,
                    "extended aad",
                );
            }
        }
    }
}

#[test]
fn header_fields_are_validated_before_allocation() {
    let options = Options::default();
    let good = options.seal(&key(1), b"", b"x").expect("seal");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(Vec<u8>, Kind)> = vec![
        (with(&|v| v[0] = b'A'), Kind::Header(HeaderError::Magic)),
        (with(&|v| v[4] = 2), Kind::Header(HeaderError::Version(2))),
        (with(&|v| v[5] = 0), Kind::Header(HeaderError::Suite(0))),
        (
            with(&|v| v[6..10].copy_from_slice(&4095u32.to_be_bytes())),
            Kind::Header(HeaderError::SegmentSize(4095)),
        ),
        (
            with(&|v| v[6..10].copy_from_slice(&((16u32 << 20) + 1).to_be_bytes())),
            Kind::Header(HeaderError::SegmentSize((16 << 20) + 1)),
        ),
        (
            with(&|v| v[6..10].copy_from_slice(&u32::MAX.to_be_bytes())),
            Kind::Header(HeaderError::SegmentSize(u32::MAX)),
        ),
        (
            b"GIF89a not a stream at all, but long enough to hold a header".to_vec(),
            Kind::Header(HeaderError::Magic),
        ),
        (Vec::new(), Kind::Truncated),
        (vec![0x89, b'a', b't'], Kind::Truncated),
        (vec![0x89, b'X'], Kind::Header(HeaderError::Magic)),
    ];
    for (ct, expected) in cases {
        assert_all_ways(
            &options,
            &key(1),
            b"",
            &ct,
            &Err(expected.clone()),
            &format!("{expected:?}"),
        );
    }

    // A reader's own cap on segment sizes.
    let big = Options::native(1 << 20)
        .expect("valid")
        .seal(&key(1), b"", b"x")
        .expect("seal");
    let capped = Options::default()
        .max_segment_size(64 << 10)
        .expect("valid");
    let expected = Err(Kind::Header(HeaderError::SegmentSizeAboveLimit {
        size: 1 << 20,
        limit: 64 << 10,
    }));
    assert_all_ways(&capped, &key(1), b"", &big, &expected, "cap");

    let tink = Options::tink(4096).expect("valid");
    let mut bad = tink.seal(&key(1), b"", b"x").expect("seal");
    bad[0] = 41;
    assert_all_ways(
        &tink,
        &key(1),
        b"",
        &bad,
        &Err(Kind::Header(HeaderError::TinkHeaderLength(41))),
        "tink len",
    );
}

#[test]
fn native_stream_is_not_a_tink_stream_and_vice_versa() {
    let native = Options::default()
        .seal(&key(1), b"", b"data")
        .expect("seal");
    let tink = Options::tink(4096).expect("valid");
    assert_all_ways(
        &tink,
        &key(1),
        b"",
        &native,
        &Err(Kind::Header(HeaderError::TinkHeaderLength(0x89))),
        "n as t",
    );
    let t = tink.seal(&key(1), b"", b"data").expect("seal");
    assert_all_ways(
        &Options::default(),
        &key(1),
        b"",
        &t,
        &Err(Kind::Header(HeaderError::Magic)),
        "t as n",
    );
}

#[test]
fn errors_reach_io_callers_as_invalid_data() {
    use std::io::Read;
    let ct = atrest_stream::seal(&key(1), b"", &pattern(100)).expect("seal");
    let mut bad = ct.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut reader = atrest_stream::Decryptor::new(&bad[..], &key(1), b"").expect("header ok");
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).expect_err("tampered");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(out.is_empty(), "no unauthenticated plaintext released");
    assert!(matches!(
        atrest_stream::Error::from_io(err),
        atrest_stream::Error::Authentication
    ));
    // The failure is sticky: the reader never resumes.
    let again = reader.read(&mut [0u8; 10]).expect_err("still failed");
    assert!(matches!(
        atrest_stream::Error::from_io(again),
        atrest_stream::Error::Authentication
    ));
}
