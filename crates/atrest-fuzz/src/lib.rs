//! Fuzzing logic for atrest, as plain functions (the wasmtime layout): the cargo-fuzz targets
//! in `fuzz/fuzz_targets/` are a few lines each that call into this crate, and `cargo test -p
//! atrest-fuzz` runs the same functions over pseudo-random inputs and the seed corpus.
//!
//! | function | what it checks |
//! |---|---|
//! | [`stream_decrypt_native`] | every read path agrees on untrusted bytes (real and insecure provider), and matches a reference model |
//! | [`stream_decrypt_tink`] | the same in Tink's format |
//! | [`stream_seek_model`] | `SeekableDecryptor` behaves like a `Cursor` over the plaintext |
//! | [`stream_roundtrip`] | `Encryptor` with arbitrary write sizes, then every reader |
//!
//! # Security
//!
//! This crate enables `atrest-crypto`'s `insecure-fuzzing` feature, whose provider has **no
//! security at all** (identity "cipher", forgeable tags). It is `publish = false`; nothing but
//! the fuzz targets and this crate's tests may depend on it.

mod decrypt;
mod input;
mod paths;
mod roundtrip;
mod seeds;
mod seek_model;

pub use decrypt::{
    DecryptParams, DecryptSummary, NATIVE_CAPS, TINK_SEGMENT_RANGE, stream_decrypt_native,
    stream_decrypt_tink,
};
pub use paths::Kind;
pub use roundtrip::stream_roundtrip;
pub use seeds::{Seed, TARGETS, seeds, write_seeds};
pub use seek_model::stream_seek_model;

/// The allocation limit the fuzz targets set on their capping global allocator (64 MiB).
/// Nothing they run needs more than a few MiB (the largest buffer is one 16 MiB segment that
/// `atrest_stream::open` may reserve on an error path), so hitting it means an allocation
/// sized by untrusted data: the allocator fails, the process aborts and libFuzzer reports it.
pub const FUZZ_ALLOC_LIMIT: usize = 64 << 20;

/// Runs the fuzz function for `target` (one of [`TARGETS`]) on `data`; `false` if there is
/// no such target.
pub fn run_target(target: &str, data: &[u8]) -> bool {
    match target {
        "stream_native" => drop(stream_decrypt_native(data)),
        "stream_tink" => drop(stream_decrypt_tink(data)),
        "stream_seek" => stream_seek_model(data),
        "stream_roundtrip" => stream_roundtrip(data),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Deterministic pseudo-random inputs (xorshift64*), of lengths up to `max_len`.
    fn inputs(count: usize, max_len: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes()[0]
        };
        (0..count)
            .map(|_| {
                let len = (usize::from(next()) << 8 | usize::from(next())) % (max_len + 1);
                (0..len).map(|_| next()).collect()
            })
            .collect()
    }

    /// Valid streams with one byte changed, cut or extended: what a fuzzer tries first.
    fn mutations(data: &[u8], count: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..count {
            let at = (i * 7919) % data.len().max(1);
            let mut flipped = data.to_vec();
            if let Some(byte) = flipped.get_mut(at) {
                *byte ^= 1 << (i % 8);
            }
            out.push(flipped);
            out.push(data[..at].to_vec());
            let mut longer = data.to_vec();
            longer.extend(std::iter::repeat_n(0xEE, i % 20));
            out.push(longer);
        }
        out
    }

    #[test]
    fn every_target_survives_random_inputs() {
        for (i, target) in TARGETS.into_iter().enumerate() {
            for input in inputs(300, 600, 0x5EED + i as u64) {
                assert!(run_target(target, &input));
            }
        }
        assert!(!run_target("nope", b""));
    }

    #[test]
    fn every_target_accepts_its_seeds_and_their_mutations() {
        let seeds = seeds().expect("seeds");
        for target in TARGETS {
            assert!(seeds.iter().any(|seed| seed.target == target), "{target}");
        }
        for seed in &seeds {
            assert!(run_target(seed.target, &seed.data));
            for mutated in mutations(&seed.data, 12) {
                assert!(run_target(seed.target, &mutated));
            }
        }
    }

    #[test]
    fn valid_seeds_decrypt_under_both_providers() {
        for seed in seeds().expect("seeds") {
            let summary = match seed.target {
                "stream_native" => stream_decrypt_native(&seed.data),
                "stream_tink" => stream_decrypt_tink(&seed.data),
                _ => continue,
            };
            let expected = if seed.name.ends_with("truncated") {
                "truncated"
            } else if seed.name.ends_with("trailing") {
                "trailing-data"
            } else {
                "ok"
            };
            let provider = if seed.name.starts_with("insecure") {
                &summary.insecure
            } else {
                &summary.real
            };
            assert_eq!(provider, expected, "{}", seed.name);
        }
    }

    #[test]
    fn insecure_provider_reaches_every_data_error() {
        let mut kinds = BTreeSet::new();
        for seed in seeds().expect("seeds") {
            if seed.target != "stream_native" && seed.target != "stream_tink" {
                continue;
            }
            for input in std::iter::once(seed.data.clone()).chain(mutations(&seed.data, 40)) {
                let summary = match seed.target {
                    "stream_native" => stream_decrypt_native(&input),
                    _ => stream_decrypt_tink(&input),
                };
                kinds.insert(summary.insecure);
            }
        }
        for kind in [
            "ok",
            "authentication",
            "truncated",
            "trailing-data",
            "header-Magic",
        ] {
            assert!(kinds.contains(kind), "{kind} not reached: {kinds:?}");
        }
    }

    /// Regression test for a bug the stream_tink fuzzer found: when the stored length ends
    /// inside a tag, `SeekableDecryptor` used to authenticate only the second-to-last segment
    /// at construction and report a different error than the sequential readers. Now it
    /// reports, at the read that reaches the damage, exactly what they report.
    #[test]
    fn seekable_bad_tail_error_matches_sequential() {
        use std::io::Read;

        use atrest_stream::{Error, Options, SeekableDecryptor};

        let key = atrest_crypto::Key256::from_bytes([1; 32]);
        let read_all = |options: &Options, stream: &[u8]| {
            let mut reader = options.seekable_decryptor(std::io::Cursor::new(stream), &key, b"")?;
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map_err(Error::from_io)?;
            Ok::<_, Error>(out)
        };

        // Native, three segments, segment 0 modified, the end cut inside the final tag.
        let options = Options::native(4096).expect("valid size");
        let mut stream = options.seal(&key, b"", &[7u8; 8292]).expect("seal");
        assert_eq!(stream.len(), 42 + 2 * 4112 + 116);
        stream[42] ^= 1;
        stream.truncate(42 + 2 * 4112 + 5);
        assert!(matches!(
            options.open(&key, b"", &stream),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            read_all(&options, &stream),
            Err(Error::Authentication)
        ));
        let reader =
            SeekableDecryptor::new(std::io::Cursor::new(&stream), &key, b"").expect("header");
        assert!(matches!(
            reader.read_at(0, &mut [0u8; 10]),
            Err(Error::Authentication)
        ));

        // Tink: one genuine segment, then a 57-byte junk segment and 5 more bytes.
        let options = Options::tink(57).expect("valid size");
        let mut stream = options.seal(&key, b"", &[7]).expect("seal");
        assert_eq!(stream.len(), 57);
        stream.extend_from_slice(&[0xAB; 57 + 5]);
        assert!(matches!(
            options.open(&key, b"", &stream),
            Err(Error::TrailingData)
        ));
        assert!(matches!(
            read_all(&options, &stream),
            Err(Error::TrailingData)
        ));
    }

    /// Inputs the fuzzers found, kept as regression tests (see `known_bug_*` above for the
    /// bug they hit).
    #[test]
    fn fuzz_findings() {
        // stream_tink, crash-1da4711a3cde8cc73db907d16ec16532dac2cfea: bad-tail stream whose
        // seekable error differed from the sequential one.
        let tink_bad_tail = hex_bytes(
            "0909 7469 6e6b 2073 6565 6400 0102 0000 0028 4222 3b55 0c0b e4f3 ec95 548d 9f4c
             44a9 1862 924e b3fb 54c4 8800 004e 586a 7671 e2fe 1728 c539 1973 e2fe 1728 c539
             1900 0000 0001 0000 0073 0974 696e 6b20 7365 6564 0001 0200 0000 2842 223b 550c
             0be4 f3ec 9554 8d9f 4c44 a918 6292 4eb3 000b e4f3 ec95 548d 9f4c 44a9 1862 924e
             b300 0000 0100 0000 73",
        );
        assert_eq!(tink_bad_tail.len(), 137);
        stream_decrypt_tink(&tink_bad_tail);
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|d| u8::try_from(char::from(d).to_digit(16).expect("hex digit")).expect("< 16"))
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()
    }

    /// Regenerates `fuzz/seeds/`. Run it after changing an input encoding.
    #[test]
    #[ignore = "writes fuzz/seeds/; run on purpose"]
    fn regenerate_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        write_seeds(&dir).expect("write seeds");
    }
}
