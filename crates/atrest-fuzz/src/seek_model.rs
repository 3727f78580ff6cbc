//! Model-based test of `SeekableDecryptor` against `std::io::Cursor` over the plaintext.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::ops::Range;

use atrest_crypto::{CryptoProvider, Key256, TAG_LEN};
use atrest_stream::{Error, MisuseError, Options, SeekableDecryptor};

use crate::input::{self, Input};
use crate::paths::finding;

/// Most operations one seek fuzz case runs.
const MAX_OPS: usize = 64;

/// The stream a format/size pair describes, with the geometry the model needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) tink: bool,
    pub(crate) provider: &'static CryptoProvider,
    /// Native: plaintext segment size. Tink: ciphertext segment size.
    pub(crate) segment: u32,
}

impl Shape {
    /// Decodes `flags` (bit 0: Tink, bit 1: insecure provider) and `size`: native segments of
    /// `4096 + 16 * size` plaintext bytes, Tink segments of `57 + size` ciphertext bytes.
    pub(crate) fn decode(flags: u8, size: u8) -> Self {
        let tink = flags & 1 == 1;
        let provider = if flags & 2 == 2 {
            &atrest_crypto::insecure_fuzzing::PROVIDER
        } else {
            atrest_crypto::DEFAULT_PROVIDER
        };
        let segment = if tink {
            57 + u32::from(size)
        } else {
            4096 + 16 * u32::from(size)
        };
        Self {
            tink,
            provider,
            segment,
        }
    }

    pub(crate) fn options(&self) -> Options {
        let options = if self.tink {
            Options::tink(self.segment)
        } else {
            Options::native(self.segment)
        };
        options
            .expect("Shape::decode yields valid segment sizes")
            .provider(self.provider)
    }

    /// A plaintext length of up to about three (native) or eight (Tink) segments.
    pub(crate) fn plaintext_len(&self, raw: u16) -> usize {
        let segment = usize::try_from(self.segment).expect("u32 fits usize");
        let span = if self.tink {
            8 * segment + 2
        } else {
            3 * segment + 2
        };
        usize::from(raw) % span
    }

    fn header_len(&self) -> u64 {
        if self.tink { 40 } else { 42 }
    }

    /// Plaintext bytes of segment 0 and of later segments.
    fn segment_pts(&self) -> (u64, u64) {
        let s = u64::from(self.segment);
        if self.tink {
            (s - 40 - 16, s - 16)
        } else {
            (s, s)
        }
    }

    fn locate(&self, offset: u64) -> u64 {
        let (first, pt) = self.segment_pts();
        if offset < first {
            0
        } else {
            1 + (offset - first) / pt
        }
    }

    fn segment_start(&self, index: u64) -> u64 {
        let (first, pt) = self.segment_pts();
        match index {
            0 => self.header_len(),
            _ => self.header_len() + first + 16 + (index - 1) * (pt + 16),
        }
    }

    /// docs/FORMAT.md §1.6: the stream bytes holding plaintext `range`.
    fn ciphertext_range(
        &self,
        range: Range<u64>,
        plaintext_len: u64,
        ciphertext_len: u64,
    ) -> Result<Range<u64>, Error> {
        if range.start > range.end || range.end > plaintext_len {
            return Err(MisuseError::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len: plaintext_len,
            }
            .into());
        }
        if range.is_empty() {
            let at = self
                .segment_start(self.locate(range.start))
                .min(ciphertext_len);
            return Ok(at..at);
        }
        let first = self.locate(range.start);
        let last = self.locate(range.end - 1);
        Ok(self.segment_start(first)..self.segment_start(last + 1).min(ciphertext_len))
    }
}

fn misuse(result: &Result<Range<u64>, Error>) -> Result<Range<u64>, MisuseError> {
    match result {
        Ok(range) => Ok(range.clone()),
        Err(Error::Misuse(misuse)) => Err(misuse.clone()),
        Err(other) => finding(format_args!("ciphertext_range failed with {other:?}")),
    }
}

/// Encrypts a plaintext chosen by `data` (native or Tink, real or insecure provider, several
/// segment sizes and lengths), then runs operations decoded from the rest of `data` on a
/// `SeekableDecryptor` and on a `Cursor` over the plaintext, asserting identical results:
/// `seek` (`Start`, `Current`, `End`, including before 0 and past the end), `read`,
/// `read_exact`, `read_at` and `ciphertext_range` (against docs/FORMAT.md §1.6).
///
/// Input: `flags: u8 || size: u8 || len: u16 || salt: u8 || ops...`, each op an opcode
/// byte (mod 8) and big-endian arguments; see the source for the table.
pub fn stream_seek_model(data: &[u8]) {
    let mut input = Input::new(data);
    let shape = Shape::decode(input.byte(), input.byte());
    let len = shape.plaintext_len(input.u16());
    let salt = input.byte();
    let plaintext = input::plaintext(len, b"seek model", salt);
    let options = shape.options();
    let key = Key256::from_bytes([salt; 32]);
    let ciphertext = options
        .seal(&key, b"seek", &plaintext)
        .expect("sealing in memory");
    let ct_len = ciphertext.len() as u64;
    let pt_len = len as u64;

    let mut model = Cursor::new(&plaintext[..]);
    let mut reader =
        SeekableDecryptor::with_options(Cursor::new(&ciphertext[..]), &key, b"seek", &options)
            .expect("a freshly sealed stream opens");
    assert_eq!(reader.len_unverified(), pt_len);

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.byte() % 8 {
            op @ 0..=2 => {
                let raw = input.u16();
                let to = match op {
                    0 => SeekFrom::Start(u64::from(raw)),
                    1 => SeekFrom::Current(i64::from(i16::from_be_bytes(raw.to_be_bytes()))),
                    _ => SeekFrom::End(i64::from(i16::from_be_bytes(raw.to_be_bytes()))),
                };
                check_seek(&mut reader, &mut model, to);
            }
            3 => {
                let n = usize::from(input.u16()) % 9000;
                let mut buf = vec![0u8; n];
                let position = model.position();
                let got = reader.read(&mut buf).expect("read of an authentic stream");
                let available = pt_len.saturating_sub(position);
                if n > 0 && available > 0 {
                    assert!(got > 0, "read returned 0 before the end");
                } else {
                    assert_eq!(got, 0, "read returned data at or past the end");
                }
                let mut expected = vec![0u8; got];
                model.read_exact(&mut expected).expect("within the model");
                assert_eq!(buf[..got], expected[..], "read at {position}");
            }
            4 => {
                let offset = u64::from(input.u16());
                let n = usize::from(input.u16()) % 9000;
                let mut buf = vec![0u8; n];
                let got = reader
                    .read_at(offset, &mut buf)
                    .expect("read_at of an authentic stream");
                let start = usize::try_from(offset).map_or(len, |o| o.min(len));
                let expected = &plaintext[start..(start + n).min(len)];
                assert_eq!(&buf[..got], expected, "read_at({offset}, {n})");
            }
            5 => {
                let range = u64::from(input.u16())..u64::from(input.u16());
                let got = reader.ciphertext_range(range.clone());
                let expected = shape.ciphertext_range(range.clone(), pt_len, ct_len);
                assert_eq!(
                    misuse(&got),
                    misuse(&expected),
                    "ciphertext_range({range:?})"
                );
                if let Ok(found) = got {
                    // The range holds whole segments, and they cover the plaintext range.
                    assert!(found.start >= shape.header_len() && found.end <= ct_len);
                    if !range.is_empty() {
                        let holds = found.end - found.start;
                        assert!(holds >= range.end - range.start + TAG_LEN as u64);
                    }
                }
            }
            6 => {
                let n = usize::from(input.byte());
                let position = model.position();
                if position + n as u64 <= pt_len {
                    let mut buf = vec![0u8; n];
                    reader
                        .read_exact(&mut buf)
                        .expect("read_exact within the stream");
                    let mut expected = vec![0u8; n];
                    model.read_exact(&mut expected).expect("within the model");
                    assert_eq!(buf, expected, "read_exact at {position}");
                }
            }
            _ => {
                // Overflowing and extreme seeks.
                let to = match input.byte() % 4 {
                    0 => SeekFrom::Start(u64::MAX - u64::from(input.byte())),
                    1 => SeekFrom::Current(i64::MAX),
                    2 => SeekFrom::Current(i64::MIN),
                    _ => SeekFrom::End(i64::MIN),
                };
                check_seek(&mut reader, &mut model, to);
                // Bring both back so later operations stay interesting.
                check_seek(&mut reader, &mut model, SeekFrom::Start(0));
            }
        }
    }
    assert_eq!(reader.verified_len().expect("authentic stream"), pt_len);
}

fn check_seek<R: Read + Seek>(
    reader: &mut SeekableDecryptor<R>,
    model: &mut Cursor<&[u8]>,
    to: SeekFrom,
) {
    let got = reader.seek(to);
    let expected = model.seek(to);
    match (got, expected) {
        (Ok(got), Ok(expected)) => assert_eq!(got, expected, "seek {to:?}"),
        (Err(err), Err(_)) => {
            assert!(
                matches!(Error::from_io(err), Error::Misuse(MisuseError::InvalidSeek)),
                "a bad seek is InvalidSeek"
            );
        }
        (got, expected) => finding(format_args!(
            "seek {to:?}: decryptor {got:?}, model {expected:?}"
        )),
    }
    let position = reader.stream_position().expect("position");
    assert_eq!(position, model.position(), "position after seek {to:?}");
}
