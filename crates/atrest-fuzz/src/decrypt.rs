//! Decrypting untrusted bytes through every read path, with the real and the insecure
//! provider.

use atrest_crypto::Key256;
use atrest_stream::{HeaderError, Options};

use crate::input::Input;
use crate::paths::{self, Kind, Knobs};

/// The smallest and largest ciphertext segment size the Tink target picks.
pub const TINK_SEGMENT_RANGE: std::ops::RangeInclusive<u32> = 57..=70_000;

/// Reader caps the native target picks from (`Options::max_segment_size`): the format's
/// minimum, and 64 KiB. Both keep a reader's allocation small whatever the header says.
pub const NATIVE_CAPS: [u32; 2] = [64 << 10, 4096];

/// Junk bytes before the stream in the seekable reader's storage.
const PREFIXES: [usize; 4] = [0, 1, 5, 42];

/// The parameter prefix of a decrypt fuzz input; the rest of the input is the ciphertext.
///
/// Encoding (all big-endian): `key: u8 || aad_len: u8 || aad || chunk: u16 || flags: u8`,
/// then for Tink `segment: u24`. Decoding is total: `aad_len` is taken mod 33, the segment
/// size mod the Tink range, and missing bytes read as zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecryptParams {
    /// Every byte of the 32-byte data key.
    pub key: u8,
    /// Associated data (at most 32 bytes).
    pub aad: Vec<u8>,
    /// Read sizes: `1 + chunk % 4099` for small sequential reads,
    /// `1 + chunk.rotate_left(8) % 8192` for `read_at`.
    pub chunk: u16,
    /// Bit 0: native reader cap ([`NATIVE_CAPS`]); bits 1-2: junk before the stream for the
    /// seekable reader (0, 1, 5 or 42 bytes).
    pub flags: u8,
    /// Tink only: `57 + segment % 69_944` is the ciphertext segment size.
    pub segment: u32,
}

impl DecryptParams {
    fn decode<'a>(input: &mut Input<'a>, tink: bool) -> Self {
        let key = input.byte();
        let aad_len = usize::from(input.byte() % 33);
        let aad = input.bytes(aad_len).to_vec();
        let chunk = input.u16();
        let flags = input.byte();
        let segment = if tink { input.u24() } else { 0 };
        Self {
            key,
            aad,
            chunk,
            flags,
            segment,
        }
    }

    /// Encodes these parameters followed by `ciphertext` as a fuzz input for
    /// [`stream_decrypt_native`] (`tink == false`) or [`stream_decrypt_tink`].
    pub fn encode(&self, tink: bool, ciphertext: &[u8]) -> Vec<u8> {
        let aad = &self.aad[..self.aad.len().min(32)];
        let mut out = vec![self.key, u8::try_from(aad.len()).unwrap_or(32)];
        out.extend_from_slice(aad);
        out.extend_from_slice(&self.chunk.to_be_bytes());
        out.push(self.flags);
        if tink {
            out.extend_from_slice(&self.segment.to_be_bytes()[1..]);
        }
        out.extend_from_slice(ciphertext);
        out
    }

    /// The Tink ciphertext segment size these parameters select.
    pub fn tink_segment_size(&self) -> u32 {
        let (min, max) = (*TINK_SEGMENT_RANGE.start(), *TINK_SEGMENT_RANGE.end());
        min + (self.segment & 0xFF_FFFF) % (max - min + 1)
    }

    /// The native reader cap these parameters select.
    pub fn native_cap(&self) -> u32 {
        NATIVE_CAPS[usize::from(self.flags & 1)]
    }

    fn knobs(&self) -> Knobs {
        Knobs {
            small_read: 1 + usize::from(self.chunk) % 4099,
            read_at_chunk: 1 + usize::from(self.chunk.rotate_left(8)) % 8192,
            prefix: PREFIXES[usize::from((self.flags >> 1) & 3)],
        }
    }
}

/// How one decrypt fuzz case ended, per provider (labels as [`Kind::label`], or `"ok"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptSummary {
    /// With the real (RustCrypto) provider.
    pub real: String,
    /// With [`atrest_crypto::insecure_fuzzing::PROVIDER`].
    pub insecure: String,
}

fn label(outcome: &Result<Vec<u8>, Kind>) -> String {
    match outcome {
        Ok(_) => "ok".into(),
        Err(kind) => kind.label(),
    }
}

/// Decrypts the ciphertext in `data` as atrest STREAM v1 through every read path
/// (`atrest_stream::open`, `Options::open`, `Decryptor` with large and small reads,
/// `SeekableDecryptor` `read_to_end` and `read_at`), with the real provider and the insecure
/// one. Panics if the paths disagree, if any releases plaintext the others do not, if any
/// fails with a non-data error, or (insecure provider) if the outcome differs from the
/// reference model of docs/FORMAT.md §1.7.
pub fn stream_decrypt_native(data: &[u8]) -> DecryptSummary {
    let mut input = Input::new(data);
    let params = DecryptParams::decode(&mut input, false);
    let ciphertext = input.rest();
    let options = |provider| {
        Options::default()
            .max_segment_size(params.native_cap())
            .expect("NATIVE_CAPS are valid caps")
            .provider(provider)
    };
    let key = Key256::from_bytes([params.key; 32]);

    let real = options(atrest_crypto::DEFAULT_PROVIDER);
    let mut results = paths::run_all(ciphertext, &key, &params.aad, &real, params.knobs());
    // The default-options one-shot reader: its cap is 16 MiB, but it allocates only what the
    // input holds, so it is safe to run on anything. It must agree unless the smaller cap
    // rejected the header.
    let default_open = paths::one_shot(
        "atrest_stream::open",
        atrest_stream::open(&key, &params.aad, ciphertext),
    );
    let capped = matches!(
        results[0].end,
        Err(Kind::Header(HeaderError::SegmentSizeAboveLimit { .. }))
    );
    if !capped {
        results.push(default_open);
    }
    let real_outcome = paths::assert_agree(&results);

    let insecure = options(&atrest_crypto::insecure_fuzzing::PROVIDER);
    let insecure_outcome = insecure_case(ciphertext, &key, &params, &insecure);
    DecryptSummary {
        real: label(&real_outcome),
        insecure: label(&insecure_outcome),
    }
}

/// [`stream_decrypt_native`] for Google Tink's format, with a ciphertext segment size in
/// [`TINK_SEGMENT_RANGE`] chosen by the input.
pub fn stream_decrypt_tink(data: &[u8]) -> DecryptSummary {
    let mut input = Input::new(data);
    let params = DecryptParams::decode(&mut input, true);
    let ciphertext = input.rest();
    let options = |provider| {
        Options::tink(params.tink_segment_size())
            .expect("TINK_SEGMENT_RANGE is within Tink's range")
            .provider(provider)
    };
    let key = Key256::from_bytes([params.key; 32]);

    let real = options(atrest_crypto::DEFAULT_PROVIDER);
    let results = paths::run_all(ciphertext, &key, &params.aad, &real, params.knobs());
    let real_outcome = paths::assert_agree(&results);

    let insecure = options(&atrest_crypto::insecure_fuzzing::PROVIDER);
    let insecure_outcome = insecure_case(ciphertext, &key, &params, &insecure);
    DecryptSummary {
        real: label(&real_outcome),
        insecure: label(&insecure_outcome),
    }
}

fn insecure_case(
    ciphertext: &[u8],
    key: &Key256,
    params: &DecryptParams,
    options: &Options,
) -> Result<Vec<u8>, Kind> {
    let results = paths::run_all(ciphertext, key, &params.aad, options, params.knobs());
    let outcome = paths::assert_agree(&results);
    let (model_released, model_end) = paths::model(ciphertext, options);
    let expected = model_end.map(|()| model_released.clone());
    assert_eq!(
        outcome, expected,
        "readers disagree with the FORMAT.md reference model"
    );
    for result in &results {
        assert!(
            model_released.starts_with(&result.released),
            "{} released plaintext the model did not authenticate",
            result.name
        );
    }
    outcome
}
