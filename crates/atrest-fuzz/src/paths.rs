//! Every read path of `atrest-stream`, driven to the end over one in-memory ciphertext, and a
//! reference model of the sequential reader for the insecure provider.

use std::io::{Cursor, Read, Seek, SeekFrom};

use atrest_crypto::{Key256, NONCE_LEN, Nonce, TAG_LEN};
use atrest_stream::{
    Decryptor, Error, Format, HeaderError, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, Options,
    SeekableDecryptor,
};

/// What a reader concluded about a stream, with error details that may legitimately differ
/// between readers (I/O wrappers, messages) stripped away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Error::Authentication`].
    Authentication,
    /// [`Error::Truncated`].
    Truncated,
    /// [`Error::TrailingData`].
    TrailingData,
    /// [`Error::Header`], with the exact header error.
    Header(HeaderError),
}

impl Kind {
    /// Maps a decryption error. Any other error (misuse, I/O, crypto failure) is a bug for an
    /// in-memory reader fed only untrusted bytes, so it fails the fuzz case.
    pub fn of(err: &Error) -> Self {
        match err {
            Error::Authentication => Kind::Authentication,
            Error::Truncated => Kind::Truncated,
            Error::TrailingData => Kind::TrailingData,
            Error::Header(header) => Kind::Header(*header),
            other => finding(format_args!(
                "decrypting in-memory bytes must only fail with a data error, got {other:?}"
            )),
        }
    }

    fn of_io(err: std::io::Error) -> Self {
        Self::of(&Error::from_io(err))
    }

    /// A short stable name, for corpus statistics.
    pub fn label(&self) -> String {
        match self {
            Kind::Authentication => "authentication".into(),
            Kind::Truncated => "truncated".into(),
            Kind::TrailingData => "trailing-data".into(),
            Kind::Header(header) => {
                let name = format!("{header:?}");
                let name = name.split('(').next().unwrap_or_default().to_owned();
                format!("header-{}", name.split(' ').next().unwrap_or_default())
            }
        }
    }
}

/// The result of one read path: the plaintext it released and how it ended.
#[derive(Debug)]
pub(crate) struct PathResult {
    pub(crate) name: &'static str,
    /// Everything the path handed out before it ended (the whole plaintext on success).
    pub(crate) released: Vec<u8>,
    pub(crate) end: Result<(), Kind>,
}

/// Fails the fuzz case: the panic is what libFuzzer reports as a crash.
#[allow(clippy::panic, reason = "a fuzz finding must abort the fuzz case")]
#[track_caller]
pub(crate) fn finding(message: std::fmt::Arguments<'_>) -> ! {
    panic!("{message}")
}

/// Reader knobs decoded from the fuzz input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Knobs {
    pub(crate) small_read: usize,
    pub(crate) read_at_chunk: usize,
    /// Junk bytes before the stream in the seekable reader's storage.
    pub(crate) prefix: usize,
}

const LARGE_READ: usize = 1 << 17;

/// Runs every read path over `ciphertext`; returns their results.
pub(crate) fn run_all(
    ciphertext: &[u8],
    key: &Key256,
    aad: &[u8],
    options: &Options,
    knobs: Knobs,
) -> Vec<PathResult> {
    let mut in_place = ciphertext.to_vec();
    let in_place_result = options.open_in_place(key, aad, &mut in_place);
    assert!(
        in_place_result.is_ok() || in_place.is_empty() || in_place == ciphertext,
        "open_in_place left part plaintext behind after an error"
    );
    let mut results = vec![
        one_shot("Options::open", options.open(key, aad, ciphertext)),
        one_shot("Options::open_in_place", in_place_result.map(|()| in_place)),
        sequential("Decryptor/large", ciphertext, key, aad, options, LARGE_READ),
        sequential(
            "Decryptor/small",
            ciphertext,
            key,
            aad,
            options,
            knobs.small_read,
        ),
        // The parallel ring from the first segment (helpers open in the background).
        sequential(
            "Decryptor/small, 2 threads",
            ciphertext,
            key,
            aad,
            &options.threads(2),
            knobs.small_read,
        ),
    ];
    results.extend(seekable(ciphertext, key, aad, options, knobs));
    results
}

pub(crate) fn one_shot(name: &'static str, result: Result<Vec<u8>, Error>) -> PathResult {
    match result {
        Ok(plaintext) => PathResult {
            name,
            released: plaintext,
            end: Ok(()),
        },
        Err(err) => PathResult {
            name,
            released: Vec::new(),
            end: Err(Kind::of(&err)),
        },
    }
}

fn sequential(
    name: &'static str,
    ciphertext: &[u8],
    key: &Key256,
    aad: &[u8],
    options: &Options,
    chunk: usize,
) -> PathResult {
    let mut released = Vec::new();
    let mut reader = match Decryptor::with_options(ciphertext, key, aad, options) {
        Ok(reader) => reader,
        Err(err) => {
            return PathResult {
                name,
                released,
                end: Err(Kind::of(&err)),
            };
        }
    };
    let mut buf = vec![0u8; chunk];
    let end = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                assert!(n <= chunk, "{name}: read returned {n} > {chunk}");
                released.extend_from_slice(&buf[..n]);
                assert!(
                    released.len() <= ciphertext.len(),
                    "{name}: more plaintext than ciphertext"
                );
            }
            Err(err) => break Err(Kind::of_io(err)),
        }
    };
    // A finished reader stays finished; a failed one keeps failing the same way.
    let again = match reader.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => finding(format_args!("{name}: {n} bytes after the end")),
        Err(err) => Err(Kind::of_io(err)),
    };
    assert_eq!(again, end, "{name}: the outcome is not sticky");
    PathResult {
        name,
        released,
        end,
    }
}

fn seekable(
    ciphertext: &[u8],
    key: &Key256,
    aad: &[u8],
    options: &Options,
    knobs: Knobs,
) -> Vec<PathResult> {
    let mut storage = vec![0xA5u8; knobs.prefix];
    storage.extend_from_slice(ciphertext);
    let open = || {
        let mut cursor = Cursor::new(&storage[..]);
        cursor
            .seek(SeekFrom::Start(knobs.prefix as u64))
            .expect("seek within a slice");
        SeekableDecryptor::with_options(cursor, key, aad, options)
    };
    let mut reader = match open() {
        Ok(reader) => reader,
        Err(err) => {
            let end = Err(Kind::of(&err));
            return ["Seekable/read_to_end", "Seekable/read_at"]
                .into_iter()
                .map(|name| PathResult {
                    name,
                    released: Vec::new(),
                    end: end.clone(),
                })
                .collect();
        }
    };
    let unverified = reader.len_unverified();
    assert!(unverified <= ciphertext.len() as u64);

    let mut positional = Vec::new();
    let mut buf = vec![0u8; knobs.read_at_chunk];
    let at_end = loop {
        match reader.read_at(positional.len() as u64, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                let expected = usize::try_from(unverified)
                    .map_or(buf.len(), |len| buf.len().min(len - positional.len()));
                assert_eq!(n, expected, "read_at is short only at the end");
                positional.extend_from_slice(&buf[..n]);
            }
            Err(err) => break Err(Kind::of(&err)),
        }
    };
    if at_end.is_ok() {
        assert_eq!(positional.len() as u64, unverified);
        assert_eq!(
            reader.verified_len().map_err(|e| Kind::of(&e)),
            Ok(unverified)
        );
    }

    let mut sequential = Vec::new();
    let to_end = reader
        .read_to_end(&mut sequential)
        .map(drop)
        .map_err(Kind::of_io);
    vec![
        PathResult {
            name: "Seekable/read_to_end",
            released: sequential,
            end: to_end,
        },
        PathResult {
            name: "Seekable/read_at",
            released: positional,
            end: at_end,
        },
    ]
}

/// Asserts that every path reached the same outcome (same plaintext, or the same error with
/// released plaintext that is a prefix of what the others released). Returns the outcome.
pub(crate) fn assert_agree(results: &[PathResult]) -> Result<Vec<u8>, Kind> {
    let first = &results[0];
    for other in &results[1..] {
        assert_eq!(
            other.end, first.end,
            "{} and {} disagree: {results:#?}",
            first.name, other.name
        );
        if first.end.is_ok() {
            assert!(
                other.released == first.released,
                "{} and {} return different plaintexts",
                first.name,
                other.name
            );
        }
    }
    let longest = results
        .iter()
        .map(|r| &r.released)
        .max_by_key(|released| released.len())
        .expect("at least one path");
    for result in results {
        assert!(
            longest.starts_with(&result.released),
            "{} released plaintext inconsistent with the other paths",
            result.name
        );
    }
    match &first.end {
        Ok(()) => Ok(first.released.clone()),
        Err(kind) => Err(kind.clone()),
    }
}

/// The sequential reader of docs/FORMAT.md §1.7, written from the spec, for streams made
/// with the insecure provider (whose "ciphertext" is the plaintext and whose tags anyone can
/// compute). Returns the outcome and the plaintext of the segments that authenticated.
pub(crate) fn model(ciphertext: &[u8], options: &Options) -> (Vec<u8>, Result<(), Kind>) {
    let mut released = Vec::new();
    let geometry = match model_header(ciphertext, options) {
        Ok(geometry) => geometry,
        Err(kind) => return (released, Err(kind)),
    };
    let mut pos = geometry.header_len;
    let mut index = 0u64;
    loop {
        let full = if index == 0 {
            geometry.first_pt
        } else {
            geometry.pt
        } + TAG_LEN;
        let remaining = ciphertext.len() - pos;
        let (segment, last) = if remaining > full {
            (&ciphertext[pos..pos + full], false)
        } else if remaining < TAG_LEN {
            return (released, Err(Kind::Truncated));
        } else {
            (&ciphertext[pos..], true)
        };
        let (body, tag) = segment.split_at(segment.len() - TAG_LEN);
        let opens = |last: bool| {
            let nonce = model_nonce(ciphertext, options, index, last);
            atrest_crypto::insecure_fuzzing::tag(&nonce, b"", body).as_bytes() == tag
        };
        if !opens(last) {
            let kind = match (opens(!last), last) {
                (true, true) => Kind::Truncated,
                (true, false) => Kind::TrailingData,
                (false, _) => Kind::Authentication,
            };
            return (released, Err(kind));
        }
        released.extend_from_slice(body);
        if last {
            return (released, Ok(()));
        }
        pos += full;
        index += 1;
    }
}

struct ModelGeometry {
    header_len: usize,
    first_pt: usize,
    pt: usize,
}

fn model_header(ciphertext: &[u8], options: &Options) -> Result<ModelGeometry, Kind> {
    match options.format() {
        Format::Tink {
            ciphertext_segment_size,
        } => {
            if let Some(&len) = ciphertext.first()
                && len != 40
            {
                return Err(Kind::Header(HeaderError::TinkHeaderLength(len)));
            }
            if ciphertext.len() < 40 {
                return Err(Kind::Truncated);
            }
            let c = usize::try_from(ciphertext_segment_size).expect("u32 fits usize");
            Ok(ModelGeometry {
                header_len: 40,
                first_pt: c - 40 - TAG_LEN,
                pt: c - TAG_LEN,
            })
        }
        _ => {
            let magic = [0x89, b'a', b't', b'r'];
            if !magic.starts_with(&ciphertext[..ciphertext.len().min(4)]) {
                return Err(Kind::Header(HeaderError::Magic));
            }
            if ciphertext.len() < 42 {
                return Err(Kind::Truncated);
            }
            if ciphertext[4] != 1 {
                return Err(Kind::Header(HeaderError::Version(ciphertext[4])));
            }
            if ciphertext[5] != 1 {
                return Err(Kind::Header(HeaderError::Suite(ciphertext[5])));
            }
            let size =
                u32::from_be_bytes([ciphertext[6], ciphertext[7], ciphertext[8], ciphertext[9]]);
            if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
                return Err(Kind::Header(HeaderError::SegmentSize(size)));
            }
            let limit = options_cap(options);
            if size > limit {
                return Err(Kind::Header(HeaderError::SegmentSizeAboveLimit {
                    size,
                    limit,
                }));
            }
            let pt = usize::try_from(size).expect("u32 fits usize");
            Ok(ModelGeometry {
                header_len: 42,
                first_pt: pt,
                pt,
            })
        }
    }
}

/// The reader cap of `options`, recovered through the public API: the largest segment size
/// whose header `Layout::parse` accepts.
fn options_cap(options: &Options) -> u32 {
    let mut header = [0u8; 42];
    header[..6].copy_from_slice(&[0x89, b'a', b't', b'r', 1, 1]);
    header[6..10].copy_from_slice(&MAX_SEGMENT_SIZE.to_be_bytes());
    match atrest_stream::Layout::parse(&header, options) {
        Err(Error::Header(HeaderError::SegmentSizeAboveLimit { limit, .. })) => limit,
        _ => MAX_SEGMENT_SIZE,
    }
}

fn model_nonce(ciphertext: &[u8], options: &Options, index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    match options.format() {
        Format::Tink { .. } => {
            nonce[..7].copy_from_slice(&ciphertext[33..40]);
            let index = u32::try_from(index).expect("fuzz streams have few segments");
            nonce[7..11].copy_from_slice(&index.to_be_bytes());
        }
        _ => nonce[..8].copy_from_slice(&index.to_be_bytes()),
    }
    nonce[11] = u8::from(last);
    Nonce::from_bytes(nonce)
}
