//! Valid inputs for every fuzz target, in the parameter encoding its decoder expects.
//!
//! `fuzz/seeds/<target>/` holds these files; regenerate them with
//! `cargo test -p atrest-fuzz --lib -- --ignored regenerate_seeds`.

use std::path::Path;

use atrest_crypto::{CryptoProvider, Key256};
use atrest_stream::Options;

use crate::decrypt::DecryptParams;

/// The fuzz targets in `fuzz/fuzz_targets/`, by name.
pub const TARGETS: [&str; 4] = [
    "stream_native",
    "stream_tink",
    "stream_seek",
    "stream_roundtrip",
];

/// One seed input.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The fuzz target it is for (one of [`TARGETS`]).
    pub target: &'static str,
    /// A file name saying what it is.
    pub name: String,
    /// The input bytes.
    pub data: Vec<u8>,
}

fn providers() -> [(&'static str, &'static CryptoProvider); 2] {
    [
        ("insecure", &atrest_crypto::insecure_fuzzing::PROVIDER),
        ("real", atrest_crypto::DEFAULT_PROVIDER),
    ]
}

fn pattern(len: usize) -> Vec<u8> {
    crate::input::plaintext(len, b"seed", 0)
}

/// Seeds for every target: valid native and Tink streams under both providers (with keys and
/// associated data matching their parameter prefix), some cut or extended at a segment
/// boundary, and operation sequences for the model-based targets. Each is at most ~4.3 KB.
///
/// # Errors
/// None in practice: sealing in memory fails only if the provider's random source does.
pub fn seeds() -> Result<Vec<Seed>, atrest_stream::Error> {
    let mut seeds = Vec::new();
    for (provider_name, provider) in providers() {
        // Native: 4096-byte segments, 0 to 2 segments' worth.
        for (i, len) in [0usize, 100, 4096, 4097].into_iter().enumerate() {
            let params = DecryptParams {
                key: 7,
                aad: b"seed".to_vec(),
                chunk: [1, 100, 4000, 17][i],
                flags: u8::try_from(i).unwrap_or(0) << 1 | 1,
                segment: 0,
            };
            let key = Key256::from_bytes([params.key; 32]);
            let options = Options::native(4096)?.provider(provider);
            let stream = options.seal(&key, &params.aad, &pattern(len))?;
            seeds.push(Seed {
                target: "stream_native",
                name: format!("{provider_name}-pt{len}"),
                data: params.encode(false, &stream),
            });
            if len == 4097 {
                // Cut after the first segment: it authenticates only as non-final.
                let cut = &stream[..42 + 4096 + 16];
                seeds.push(Seed {
                    target: "stream_native",
                    name: format!("{provider_name}-truncated"),
                    data: params.encode(false, cut),
                });
            }
            if len == 4096 {
                // A full final segment followed by more than a tag's worth of bytes.
                let mut long = stream.clone();
                long.extend_from_slice(&[0; 20]);
                seeds.push(Seed {
                    target: "stream_native",
                    name: format!("{provider_name}-trailing"),
                    data: params.encode(false, &long),
                });
            }
        }
        // Tink: ciphertext segments of 57 (first segment holds 1 byte) and 100 bytes.
        for (i, (segment, len)) in [(0u32, 0usize), (0, 1), (0, 200), (43, 1000)]
            .into_iter()
            .enumerate()
        {
            let params = DecryptParams {
                key: 9,
                aad: b"tink seed".to_vec(),
                chunk: [3, 1, 50, 4096][i],
                flags: u8::try_from(i).unwrap_or(0) << 1,
                segment,
            };
            let key = Key256::from_bytes([params.key; 32]);
            let options = Options::tink(params.tink_segment_size())?.provider(provider);
            let stream = options.seal(&key, &params.aad, &pattern(len))?;
            seeds.push(Seed {
                target: "stream_tink",
                name: format!("{provider_name}-c{}-pt{len}", params.tink_segment_size()),
                data: params.encode(true, &stream),
            });
        }
    }

    // Seek model: flags (bit 0 Tink, bit 1 insecure), size, len (u16), salt, then ops.
    let ops: &[u8] = &[
        0, 0x10, 0x00, // seek Start(4096)
        3, 0x00, 0x20, // read 32
        1, 0xFF, 0xF0, // seek Current(-16)
        6, 40, // read_exact 40
        2, 0xFF, 0x9C, // seek End(-100)
        3, 0x23, 0x28, // read 9000 (mod 9000 = 0) -> empty read
        4, 0x0F, 0xF0, 0x00, 0x40, // read_at(4080, 64)
        5, 0x0F, 0xF0, 0x10, 0x10, // ciphertext_range(4080..4112)
        1, 0x80, 0x00, // seek Current(-32768): before 0
        0, 0xFF, 0xFF, // seek past the end
        3, 0x00, 0x10, // read there: 0
        7, 0, 3, // seek Start(u64::MAX - 3)
    ];
    for (name, flags, size, len) in [
        ("native-real", 0u8, 0u8, 9000u16),
        ("native-insecure", 2, 1, 8208),
        ("tink-real", 1, 0, 400),
        ("tink-insecure", 3, 43, 3000),
    ] {
        let mut data = vec![flags, size];
        data.extend_from_slice(&len.to_be_bytes());
        data.push(5);
        data.extend_from_slice(ops);
        seeds.push(Seed {
            target: "stream_seek",
            name: name.into(),
            data,
        });
    }

    // Round trip: flags (bit 0 Tink, bit 1 insecure, bit 2 flush, bit 3 every other write
    // in place), size, len, writes, sizes.
    for (name, flags, size, len, sizes) in [
        ("native-one-write", 0u8, 0u8, 8192u16, &[8192u16][..]),
        ("native-small-writes", 6, 0, 5000, &[1, 4095, 0, 4097][..]),
        ("tink-small-writes", 1, 0, 500, &[1, 56, 57, 200][..]),
        ("tink-insecure-flush", 7, 20, 2000, &[0, 76, 3][..]),
        (
            "native-insecure-in-place",
            10,
            0,
            20000,
            &[8193, 100, 4096, 12000][..],
        ),
        ("tink-in-place", 9, 0, 700, &[120, 57, 41][..]),
    ] {
        let mut data = vec![flags, size];
        data.extend_from_slice(&len.to_be_bytes());
        data.push(u8::try_from(sizes.len() - 1).unwrap_or(0));
        for size in sizes {
            data.extend_from_slice(&size.to_be_bytes());
        }
        data.extend_from_slice(b"pattern");
        seeds.push(Seed {
            target: "stream_roundtrip",
            name: name.into(),
            data,
        });
    }
    Ok(seeds)
}

/// Writes [`seeds`] to `dir/<target>/<name>`, replacing files of the same name.
///
/// # Errors
/// I/O errors creating the directories or files.
pub fn write_seeds(dir: &Path) -> std::io::Result<()> {
    for seed in seeds().map_err(std::io::Error::other)? {
        let target_dir = dir.join(seed.target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(&seed.name), &seed.data)?;
    }
    Ok(())
}
