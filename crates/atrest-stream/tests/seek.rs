//! Random access: seek/read and read_at against a plain `Vec<u8>` model, the final-segment
//! check behind `SeekFrom::End`, concurrent positional reads, and `ciphertext_range`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use atrest_stream::{Error, Options, SeekableDecryptor};
use common::{Kind, PROVIDERS, key, pattern, segment_sizes, small_segment_options};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// seek(n) then read equals the plaintext slice, for both formats and random sizes.
    #[test]
    fn seek_then_read_equals_slice(
        which in 0usize..4,
        provider in 0usize..PROVIDERS.len(),
        len in 0usize..30_000,
        ops in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..9000), 1..12),
    ) {
        let options = small_segment_options(PROVIDERS[provider]).swap_remove(which);
        let plaintext = pattern(len);
        let ct = options.seal(&key(1), b"s", &plaintext).expect("seal");
        let mut reader = options.seekable_decryptor(Cursor::new(&ct), &key(1), b"s").expect("open");
        for (at, n) in ops {
            let pos = if len == 0 { 0 } else { at.index(len + 10) };
            prop_assert_eq!(reader.seek(SeekFrom::Start(pos as u64)).expect("seek"), pos as u64);
            let mut buf = vec![0u8; n];
            let mut got = 0;
            loop {
                let r = reader.read(&mut buf[got..]).expect("read");
                if r == 0 { break; }
                got += r;
            }
            let want = plaintext.get(pos.min(len)..(pos + n).min(len)).unwrap_or(&[]);
            prop_assert_eq!(&buf[..got], want);

            let mut at_buf = vec![0u8; n];
            let got_at = reader.read_at(pos as u64, &mut at_buf).expect("read_at");
            prop_assert_eq!(&at_buf[..got_at], want);
        }
    }
}

#[test]
fn seek_relative_and_from_end() {
    for options in PROVIDERS.iter().flat_map(|p| small_segment_options(p)) {
        let plaintext = pattern(12_345);
        let ct = options.seal(&key(2), b"", &plaintext).expect("seal");
        let mut r = options
            .seekable_decryptor(Cursor::new(ct), &key(2), b"")
            .expect("open");
        assert_eq!(r.seek(SeekFrom::End(-10)).expect("seek"), 12_335);
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).expect("read");
        assert_eq!(tail, &plaintext[12_335..]);
        assert_eq!(r.seek(SeekFrom::Current(-345)).expect("seek"), 12_000);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, &plaintext[12_000..12_005]);
        let err = r
            .seek(SeekFrom::Current(-20_000))
            .expect_err("before start");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            r.seek(SeekFrom::End(100)).expect("past end is allowed"),
            12_445
        );
        assert_eq!(r.read(&mut buf).expect("eof"), 0);
        assert_eq!(r.verified_len().expect("authentic"), 12_345);
    }
}

/// A stream cut at a segment boundary looks like a shorter valid stream by its length; the
/// seekable reader must catch it before trusting that length.
#[test]
fn truncation_at_boundary_caught_before_trusting_length() {
    for options in PROVIDERS.iter().flat_map(|p| small_segment_options(p)) {
        let (first, rest) = segment_sizes(&options);
        let ct = options
            .seal(&key(3), b"", &pattern(first + 2 * rest))
            .expect("seal");
        let cut = options.header_len() + first + 16 + rest + 16;
        let truncated = &ct[..cut];
        let mut r = options
            .seekable_decryptor(Cursor::new(truncated), &key(3), b"")
            .expect("length is plausible, header is fine");
        assert_eq!(r.len_unverified(), (first + rest) as u64);
        let end = r
            .seek(SeekFrom::End(0))
            .expect_err("final segment is not final");
        assert_eq!(common::kind(&Error::from_io(end)), Kind::Truncated);
        assert!(matches!(r.verified_len(), Err(Error::Truncated)));
        // Reading up to the apparent end: the last segment fails as final.
        let mut buf = vec![0u8; first + rest];
        let err = r.read_exact(&mut buf).expect_err("truncated");
        assert_eq!(common::kind(&Error::from_io(err)), Kind::Truncated);
        // A positional read at or past the apparent end does not report a clean EOF.
        assert!(matches!(
            r.read_at((first + rest) as u64, &mut [0u8; 4]),
            Err(Error::Truncated)
        ));
        // Reads that stay inside authentic non-final segments still work.
        let mut early = vec![0u8; first.min(10)];
        assert_eq!(
            r.read_at(0, &mut early).expect("segment 0 is authentic"),
            early.len()
        );
        assert_eq!(early, pattern(early.len()));
    }
}

#[test]
fn concurrent_read_at() {
    let options = Options::native(4096).expect("valid");
    let plaintext = Arc::new(pattern(300_000));
    let ct = options.seal(&key(4), b"", &plaintext).expect("seal");
    let reader = Arc::new(
        options
            .seekable_decryptor(Cursor::new(ct), &key(4), b"")
            .expect("open"),
    );
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let reader = Arc::clone(&reader);
            let plaintext = Arc::clone(&plaintext);
            scope.spawn(move || {
                let mut state = t * 7919 + 1;
                for _ in 0..200 {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let offset = (state >> 33) % 300_000;
                    let len = ((state >> 13) % 10_000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = reader.read_at(offset, &mut buf).expect("read_at");
                    let end = (offset as usize + len).min(300_000);
                    assert_eq!(&buf[..n], &plaintext[offset as usize..end]);
                }
            });
        }
    });
}

/// A reader over in-memory bytes that records every byte range it was asked for.
struct Recording {
    inner: Cursor<Vec<u8>>,
    reads: Arc<Mutex<Vec<Range<u64>>>>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = self.inner.position();
        let n = self.inner.read(buf)?;
        self.reads
            .lock()
            .expect("lock")
            .push(start..start + n as u64);
        Ok(n)
    }
}

impl Seek for Recording {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `ciphertext_range` is exactly what `read_at` needs: decrypting a plaintext range reads
    /// nothing outside the header and that range, and decrypting from only those bytes works.
    #[test]
    fn ciphertext_range_is_sufficient_and_minimal(
        which in 0usize..4,
        provider in 0usize..PROVIDERS.len(),
        len in 1usize..40_000,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let options = small_segment_options(PROVIDERS[provider]).swap_remove(which);
        let plaintext = pattern(len);
        let ct = options.seal(&key(5), b"", &plaintext).expect("seal");
        let (x, y) = (a.index(len), b.index(len));
        let range = x.min(y) as u64..(x.max(y) + 1) as u64;

        let reads = Arc::new(Mutex::new(Vec::new()));
        let reader = options
            .seekable_decryptor(Recording { inner: Cursor::new(ct.clone()), reads: Arc::clone(&reads) }, &key(5), b"")
            .expect("open");
        let needed = reader.ciphertext_range(range.clone()).expect("in bounds");
        reads.lock().expect("lock").clear();
        let mut out = vec![0u8; (range.end - range.start) as usize];
        prop_assert_eq!(reader.read_at(range.start, &mut out).expect("read_at"), out.len());
        prop_assert_eq!(&out[..], &plaintext[range.start as usize..range.end as usize]);
        for r in reads.lock().expect("lock").iter() {
            prop_assert!(r.start >= needed.start && r.end <= needed.end, "read {:?} outside {:?}", r, needed);
        }

        // Minimal: the range starts and ends on the segments holding the first and last byte.
        let layout = reader.layout().clone();
        prop_assert_eq!(layout.ciphertext_range(range.clone(), ct.len() as u64).expect("ok"), needed.clone());
        let (first, rest) = segment_sizes(&options);
        let seg_of = |o: u64| if (o as usize) < first { 0 } else { 1 + (o as usize - first) / rest };
        let start_of = |i: usize| options.header_len() + if i == 0 { 0 } else { first + 16 + (i - 1) * (rest + 16) };
        prop_assert_eq!(needed.start as usize, start_of(seg_of(range.start)));
        prop_assert_eq!(needed.end as usize, start_of(seg_of(range.end - 1) + 1).min(ct.len()));

        // Sufficient: a store holding only header + range (zeros elsewhere) serves the read.
        let mut sparse = vec![0u8; ct.len()];
        let h = options.header_len();
        sparse[..h].copy_from_slice(&ct[..h]);
        let (s, e) = (needed.start as usize, needed.end as usize);
        sparse[s..e].copy_from_slice(&ct[s..e]);
        let sparse_reader = options.seekable_decryptor(Cursor::new(sparse), &key(5), b"").expect("open");
        let mut again = vec![0u8; out.len()];
        prop_assert_eq!(sparse_reader.read_at(range.start, &mut again).expect("read_at"), out.len());
        prop_assert_eq!(again, out);
    }
}

#[test]
fn ciphertext_range_errors() {
    let options = Options::native(4096).expect("valid");
    let ct = options.seal(&key(6), b"", &pattern(10_000)).expect("seal");
    let r = options
        .seekable_decryptor(Cursor::new(&ct), &key(6), b"")
        .expect("open");
    assert!(matches!(
        r.ciphertext_range(0..10_001),
        Err(Error::Misuse(
            atrest_stream::MisuseError::RangeOutOfBounds {
                start: 0,
                end: 10_001,
                len: 10_000
            }
        ))
    ));
    #[allow(
        clippy::reversed_empty_ranges,
        reason = "testing that a reversed range is rejected"
    )]
    let reversed = 5..4;
    assert!(matches!(
        r.ciphertext_range(reversed),
        Err(Error::Misuse(_))
    ));
    let empty = r.ciphertext_range(100..100).expect("empty range");
    assert!(empty.is_empty());
    let layout = r.layout();
    assert!(matches!(
        layout.plaintext_len(42 + 15),
        Err(Error::Truncated)
    ));
    assert!(matches!(layout.plaintext_len(41), Err(Error::Truncated)));
    assert_eq!(layout.plaintext_len(42 + 16).expect("empty stream"), 0);
    assert_eq!(
        layout.ciphertext_len(10_000).expect("fits"),
        ct.len() as u64
    );
}

#[test]
fn stream_may_start_mid_file() {
    let options = Options::native(4096).expect("valid");
    let plaintext = pattern(9000);
    let mut file = b"some prefix the caller stored first".to_vec();
    let prefix = file.len() as u64;
    file.extend(options.seal(&key(7), b"", &plaintext).expect("seal"));
    let mut cursor = Cursor::new(file);
    cursor.seek(SeekFrom::Start(prefix)).expect("seek");
    let mut r = SeekableDecryptor::with_options(cursor, &key(7), b"", &options).expect("open");
    let mut out = Vec::new();
    r.seek(SeekFrom::Start(4000)).expect("seek");
    r.read_to_end(&mut out).expect("read");
    assert_eq!(out, &plaintext[4000..]);
}
