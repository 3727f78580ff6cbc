//! Helpers shared by the integration tests: every decrypt path, run side by side.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{Cursor, Read, Seek, SeekFrom};

use atrest_crypto::CryptoProvider;
use atrest_stream::{Error, HeaderError, Key256, MisuseError, Options};

/// Every provider the suite runs against.
pub(crate) const PROVIDERS: &[&CryptoProvider] =
    &[&atrest_crypto::rustcrypto::PROVIDER, &atrest_ring::PROVIDER];

/// A comparable summary of [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Authentication,
    Truncated,
    TrailingData,
    Header(HeaderError),
    Misuse(MisuseError),
    Other(String),
}

pub(crate) fn kind(err: &Error) -> Kind {
    match err {
        Error::Authentication => Kind::Authentication,
        Error::Truncated => Kind::Truncated,
        Error::TrailingData => Kind::TrailingData,
        Error::Header(h) => Kind::Header(*h),
        Error::Misuse(m) => Kind::Misuse(m.clone()),
        other => Kind::Other(other.to_string()),
    }
}

fn io_kind(err: std::io::Error) -> Kind {
    kind(&Error::from_io(err))
}

pub(crate) fn key(byte: u8) -> Key256 {
    Key256::from_bytes([byte; 32])
}

/// Deterministic plaintext: byte `i mod 251` at position `i`.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Decrypts `ct` through every reader the crate has and returns each outcome with its name.
pub(crate) fn decrypt_all_ways(
    options: &Options,
    key: &Key256,
    aad: &[u8],
    ct: &[u8],
) -> Vec<(&'static str, Result<Vec<u8>, Kind>)> {
    let mut out = Vec::new();
    out.push(("open", options.open(key, aad, ct).map_err(|e| kind(&e))));

    // In place: on error the buffer is either untouched or wiped, never part plaintext.
    let mut buf = ct.to_vec();
    let in_place = options.open_in_place(key, aad, &mut buf);
    if in_place.is_err() {
        assert!(
            buf == ct || buf.is_empty(),
            "open_in_place left {} bytes that are not the ciphertext after an error",
            buf.len()
        );
    }
    out.push((
        "open_in_place",
        in_place.map(|()| buf).map_err(|e| kind(&e)),
    ));

    let big = options
        .decryptor(ct, key, aad)
        .map_err(|e| kind(&e))
        .and_then(|mut d| {
            let mut v = Vec::new();
            d.read_to_end(&mut v).map_err(io_kind)?;
            Ok(v)
        });
    out.push(("decryptor/read_to_end", big));

    let small = options
        .decryptor(ct, key, aad)
        .map_err(|e| kind(&e))
        .and_then(|mut d| {
            let mut v = Vec::new();
            let mut chunk = [0u8; 777];
            loop {
                let n = d.read(&mut chunk).map_err(io_kind)?;
                if n == 0 {
                    break;
                }
                v.extend_from_slice(&chunk[..n]);
            }
            Ok(v)
        });
    out.push(("decryptor/777-byte reads", small));

    let seek_seq = options
        .seekable_decryptor(Cursor::new(ct), key, aad)
        .map_err(|e| kind(&e))
        .and_then(|mut d| {
            let mut v = Vec::new();
            d.read_to_end(&mut v).map_err(io_kind)?;
            Ok(v)
        });
    out.push(("seekable/read_to_end", seek_seq));

    let read_at = options
        .seekable_decryptor(Cursor::new(ct), key, aad)
        .map_err(|e| kind(&e))
        .and_then(|d| {
            let mut v = Vec::new();
            let mut chunk = vec![0u8; 5000];
            loop {
                let n = d
                    .read_at(v.len() as u64, &mut chunk)
                    .map_err(|e| kind(&e))?;
                if n == 0 {
                    break;
                }
                v.extend_from_slice(&chunk[..n]);
            }
            Ok(v)
        });
    out.push(("seekable/read_at", read_at));

    let from_end = options
        .seekable_decryptor(Cursor::new(ct), key, aad)
        .map_err(|e| kind(&e))
        .and_then(|mut d| {
            let len = d.seek(SeekFrom::End(0)).map_err(io_kind)?;
            d.seek(SeekFrom::Start(0)).map_err(io_kind)?;
            let mut v = vec![0u8; usize::try_from(len).expect("test sizes fit")];
            d.read_exact(&mut v).map_err(io_kind)?;
            Ok(v)
        });
    out.push(("seekable/seek-end", from_end));
    out
}

/// Asserts that every decrypt path yields `expected`.
#[track_caller]
pub(crate) fn assert_all_ways(
    options: &Options,
    key: &Key256,
    aad: &[u8],
    ct: &[u8],
    expected: &Result<Vec<u8>, Kind>,
    what: &str,
) {
    for (path, got) in decrypt_all_ways(options, key, aad, ct) {
        if &got != expected {
            let show = |r: &Result<Vec<u8>, Kind>| match r {
                Ok(v) => format!("Ok({} bytes)", v.len()),
                Err(k) => format!("Err({k:?})"),
            };
            panic!(
                "{what}: {path} gave {} but expected {}",
                show(&got),
                show(expected)
            );
        }
    }
}

/// Native and Tink options with small segments so tests cross many boundaries quickly.
pub(crate) fn small_segment_options(provider: &'static CryptoProvider) -> Vec<Options> {
    vec![
        Options::native(4096).expect("valid").provider(provider),
        Options::tink(57).expect("valid").provider(provider),
        Options::tink(1000).expect("valid").provider(provider),
        Options::tink(4096).expect("valid").provider(provider),
    ]
}

/// Full segment plaintext sizes: (first segment, later segments).
pub(crate) fn segment_sizes(options: &Options) -> (usize, usize) {
    match options.format() {
        atrest_stream::Format::Native { segment_size } => {
            (segment_size as usize, segment_size as usize)
        }
        atrest_stream::Format::Tink {
            ciphertext_segment_size,
        } => (
            ciphertext_segment_size as usize - 56,
            ciphertext_segment_size as usize - 16,
        ),
        _ => unreachable!("no other formats yet"),
    }
}

/// Byte ranges (start, len) of each segment in a stream of `ct_len` bytes.
pub(crate) fn segment_spans(options: &Options, ct_len: usize) -> Vec<(usize, usize)> {
    let header = options.header_len();
    let (first, rest) = segment_sizes(options);
    let mut spans = Vec::new();
    let mut at = header;
    let mut full = first + 16;
    while at < ct_len {
        let len = full.min(ct_len - at);
        spans.push((at, len));
        at += len;
        full = rest + 16;
    }
    spans
}
