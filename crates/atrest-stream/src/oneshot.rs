//! One-shot sealing and opening of in-memory data.

use std::sync::{Mutex, MutexGuard, PoisonError};

use atrest_crypto::{Key256, TAG_LEN, Tag};
use zeroize::{Zeroize, Zeroizing};

use crate::layout::{Layout, SegmentCipher};
use crate::parallel::{self, Parallelism};
use crate::{Error, Options};

/// Encrypts `plaintext` into a complete atrest STREAM v1 stream with default [`Options`].
///
/// Byte-identical in format to what [`crate::Encryptor`] writes (with a fresh salt each call).
///
/// # Errors
/// [`Error::Crypto`] if the random source fails.
pub fn seal(key: &Key256, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    Options::default().seal(key, aad, plaintext)
}

/// Decrypts a complete atrest STREAM v1 stream held in memory.
///
/// # Errors
/// [`Error::Authentication`], [`Error::Truncated`], [`Error::TrailingData`] or
/// [`Error::Header`] if `ciphertext` is not a valid stream for `key` and `aad`. No plaintext
/// is returned unless every segment authenticated.
pub fn open(key: &Key256, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    Options::default().open(key, aad, ciphertext)
}

/// Encrypts the plaintext in `buf` into a complete stream in the same allocation, with default
/// [`Options`]. See [`Options::seal_in_place`].
///
/// # Errors
/// As [`Options::seal_in_place`].
pub fn seal_in_place(key: &Key256, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), Error> {
    Options::default().seal_in_place(key, aad, buf)
}

/// Decrypts the stream in `buf` into its plaintext in the same allocation, with default
/// [`Options`]. See [`Options::open_in_place`].
///
/// # Errors
/// As [`Options::open_in_place`].
pub fn open_in_place(key: &Key256, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), Error> {
    Options::default().open_in_place(key, aad, buf)
}

impl Options {
    /// Encrypts `plaintext` into a complete stream in these options' format.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the random source fails, [`crate::MisuseError::StreamTooLong`]
    /// if the plaintext needs more segments than the format's counter allows.
    pub fn seal(&self, key: &Key256, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let layout = Layout::generate(self)?;
        let total = layout.ciphertext_len(plaintext.len() as u64)?;
        let total = usize::try_from(total).map_err(|_| crate::MisuseError::StreamTooLong)?;
        let cipher = SegmentCipher::new(layout, self, key, aad)?;
        let par = Parallelism::of(self);
        let segments = (total - cipher.layout.header().len() - plaintext.len()) / TAG_LEN;
        if par.for_input(plaintext.len() as u64, segments as u64) {
            return parallel::seal(par, &cipher, plaintext, total);
        }
        // Built by appending, not zero-filled up front: a zero-fill is one more pass over the
        // whole output, and it leaves the output cold by the time it is sealed. Appending a
        // segment's plaintext and sealing it in place keeps that segment in cache throughout.
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(cipher.layout.header());

        let mut rest = plaintext;
        let mut index = 0u64;
        loop {
            let capacity = cipher.layout.segment_pt_len(index);
            let last = rest.len() <= capacity;
            let take = rest.len().min(capacity);
            let (segment, tail) = rest.split_at(take);
            let at = out.len();
            out.extend_from_slice(segment);
            out.extend_from_slice(&[0; TAG_LEN]);
            cipher.seal_in_place(index, last, &mut out[at..])?;
            rest = tail;
            if last {
                break;
            }
            index += 1;
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// Decrypts a complete stream held in memory, in these options' format.
    ///
    /// # Errors
    /// As [`open`].
    pub fn open(&self, key: &Key256, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        let layout = Layout::parse(ciphertext, self)?;
        let geometry = layout.geometry(ciphertext.len() as u64)?;
        if geometry.bad_tail() {
            // Rare error path: let the sequential reader say which error it is, so every
            // reader reports the same thing for the same bytes.
            let mut reader = self.decryptor(ciphertext, key, aad)?;
            return match std::io::copy(&mut reader, &mut std::io::sink()) {
                Err(err) => Err(Error::from_io(err)),
                Ok(_) => Err(Error::Truncated),
            };
        }
        let cipher = SegmentCipher::new(layout, self, key, aad)?;
        // Bounded by the input length: the plaintext is shorter than the ciphertext.
        let pt_len = usize::try_from(geometry.plaintext_len).map_err(|_| Error::Truncated)?;
        let par = Parallelism::of(self);
        if par.for_input(ciphertext.len() as u64, geometry.segments) {
            return parallel::open(par, &cipher, &geometry, ciphertext, pt_len);
        }
        let mut out = vec![0u8; pt_len];
        let mut written = 0;
        for index in 0..geometry.segments {
            let (start, ct_len) = cipher.layout.segment_span(&geometry, index);
            let start = usize::try_from(start).map_err(|_| Error::Truncated)?;
            let last = index + 1 == geometry.segments;
            let pt = ct_len - TAG_LEN;
            let segment = &ciphertext[start..start + ct_len];
            if let Err(err) = cipher.open_to(index, last, segment, &mut out[written..written + pt])
            {
                out.zeroize();
                return Err(err);
            }
            written += pt;
        }
        Ok(out)
    }

    /// Encrypts the plaintext in `buf` into a complete stream in these options' format, in
    /// the same allocation: `buf` grows by the header and one tag per segment (reserve that
    /// with [`Layout::ciphertext_len`] to avoid a reallocation) and holds the stream on
    /// return. Same bytes as [`Options::seal`] with the same salt; no second buffer.
    ///
    /// Segments are sealed from the last to the first, each where its plaintext lies, and
    /// then moved to its place while still in cache. In parallel ([`Options::threads`]; by
    /// default from 1 MiB), workers seal segment after segment while the calling thread
    /// moves each sealed one into place; the bytes are the same either way.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the random source fails, [`crate::MisuseError::StreamTooLong`] if
    /// the plaintext needs more segments than the counter allows; `buf` is untouched then. If
    /// the provider fails midway (it has no reason to), `buf` is zeroized and emptied.
    pub fn seal_in_place(&self, key: &Key256, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), Error> {
        let layout = Layout::generate(self)?;
        let pt_len = buf.len();
        let total = layout.ciphertext_len(pt_len as u64)?;
        let total = usize::try_from(total).map_err(|_| crate::MisuseError::StreamTooLong)?;
        let cipher = SegmentCipher::new(layout, self, key, aad)?;
        let header_len = cipher.layout.header().len();
        let segments = (total - header_len - pt_len) / TAG_LEN;
        buf.resize(total, 0);
        // Back to front: segment k moves forward by the header and k tags, so moving the
        // later segments first never overwrites plaintext still to be moved. Each segment is
        // sealed where its plaintext lies, then its ciphertext moves to its place and its tag
        // follows. In that order the AES pass reads the cold plaintext (its loads overlap the
        // arithmetic, as in a raw in-place seal) and the move copies a segment that is still
        // in cache, at 40-60 GB/s. Moving first and sealing after was slower by a third (a
        // move from memory has nothing to overlap with), and so was sealing into a scratch
        // segment and copying it back (docs/PERFORMANCE.md, "In-place one-shots").
        //
        // In parallel this is one pipeline ([`parallel::run_ordered`]): workers seal segment
        // after segment where it lies while the calling thread moves each sealed one in
        // order. Sealing segment k touches only its own plaintext, which no move of a later
        // segment reaches (they all land past it); moving it touches only its own bytes and
        // those of segments already moved, so the two never meet.
        let par = Parallelism::of(self);
        let parallel = par.for_input(pt_len as u64, segments as u64);
        let slots = if parallel {
            par.ring_slots(cipher.layout.max_segment_pt_len())
        } else {
            1
        };
        // Where segment k's plaintext starts (`pt_len` past the last one).
        let start = |k: usize| {
            if k == segments {
                pt_len
            } else {
                full_segments_len(&cipher, k as u64)
            }
        };
        // Windows of segments, back to front, so that the bookkeeping stays small however
        // many segments there are.
        let mut hi = segments;
        let mut sealed = Ok(());
        while hi > 0 && sealed.is_ok() {
            let lo = hi.saturating_sub(WINDOW);
            // Region i is segment `lo + i`'s plaintext; the last region is everything after
            // the window (segments already moved, and the room the stream grows by).
            let base = start(lo);
            let starts: Vec<usize> = (lo..=hi).map(|k| start(k) - base).collect();
            let regions = split_regions(&mut buf[base..], &starts);
            let segment = |job: usize| hi - 1 - job;
            sealed = parallel::run_ordered(
                par,
                parallel,
                hi - lo,
                vec![Tag::from_bytes([0; TAG_LEN]); slots],
                |job, tag| {
                    let k = segment(job);
                    let region = &mut lock(&regions[k - lo]);
                    *tag = cipher.seal_detached(k as u64, k + 1 == segments, region)?;
                    Ok(())
                },
                |job, tag| {
                    let (k, i) = (segment(job), segment(job) - lo);
                    let shift = header_len + k * TAG_LEN;
                    let mut region = lock(&regions[i]);
                    let len = region.len();
                    // Bytes that land within the segment's own region move up by `shift`;
                    // the rest land in the regions after it, which are already moved. The
                    // latter go first: the move within the region overwrites them.
                    let stay = len.saturating_sub(shift);
                    scatter(&regions, &starts, starts[i] + shift + stay, &region[stay..]);
                    if stay > 0 {
                        region.copy_within(..stay, shift);
                    }
                    drop(region);
                    scatter(&regions, &starts, starts[i] + shift + len, tag.as_bytes());
                    Ok(())
                },
            );
            hi = lo;
        }
        if let Err((_, err)) = sealed {
            buf.zeroize();
            buf.clear();
            return Err(err);
        }
        buf[..header_len].copy_from_slice(cipher.layout.header());
        Ok(())
    }

    /// Decrypts the complete stream in `buf` into its plaintext in the same allocation: on
    /// success `buf` holds exactly the plaintext. Same checks and errors as [`Options::open`],
    /// with one segment of scratch instead of a plaintext-sized second buffer: each segment
    /// is opened into the scratch (nothing is written unless its tag verifies) and copied
    /// to its place, which only ever overwrites ciphertext already opened.
    ///
    /// In parallel ([`Options::threads`]; by default from 1 MiB), workers open segment after
    /// segment into a ring of `2 × workers` scratch slots while the calling thread copies
    /// each opened one down in order; errors and the state of `buf` after an error are the
    /// same at every thread count.
    ///
    /// # Errors
    /// As [`open`]. If the error is found before any segment is opened (bad header, a
    /// length no stream has), `buf` is untouched; otherwise earlier segments' plaintext is
    /// in it, so it is zeroized and emptied: keep a copy of the ciphertext if you may need
    /// to retry with another key.
    pub fn open_in_place(&self, key: &Key256, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), Error> {
        let layout = Layout::parse(buf, self)?;
        let geometry = layout.geometry(buf.len() as u64)?;
        if geometry.bad_tail() {
            // Nothing opened yet: report exactly what `open` reports, leaving `buf` intact.
            return match self.open(key, aad, buf) {
                Err(err) => Err(err),
                Ok(_) => Err(Error::Truncated),
            };
        }
        let cipher = SegmentCipher::new(layout, self, key, aad)?;
        let len = buf.len();
        // The geometry tiles `buf` exactly, so these conversions are lossless.
        let segments = usize::try_from(geometry.segments).unwrap_or(usize::MAX);
        let pt_len = usize::try_from(geometry.plaintext_len).unwrap_or(len);
        // Where segment k's ciphertext starts (the end of the stream past the last one).
        let start = |k: usize| {
            if k >= segments {
                len
            } else {
                let start = cipher.layout.segment_span(&geometry, k as u64).0;
                usize::try_from(start).map_or(len, |start| start.min(len))
            }
        };
        // Segments are opened (by the workers, in parallel) into scratch slots, and each is
        // copied down to its place in order by this thread. A segment's plaintext ends
        // before its ciphertext does, so it only ever overwrites ciphertext already opened,
        // which no worker reads any more.
        let par = Parallelism::of(self);
        let parallel = par.for_input(len as u64, geometry.segments);
        let max_pt = cipher.layout.max_segment_pt_len();
        let slots = if parallel { par.ring_slots(max_pt) } else { 1 };
        let mut scratch: Vec<Zeroizing<Vec<u8>>> = (0..slots)
            .map(|_| Zeroizing::new(vec![0u8; max_pt]))
            .collect();
        let mut lo = 0;
        while lo < segments {
            let hi = lo.saturating_add(WINDOW).min(segments);
            // Region 0 is all before the window (the header, and ciphertext already opened,
            // where the plaintext so far lies); region 1 + i is segment `lo + i`'s
            // ciphertext; the last region is everything after the window.
            let starts: Vec<usize> = std::iter::once(0).chain((lo..=hi).map(start)).collect();
            let opened = {
                let regions = split_regions(buf, &starts);
                let ct_len = |job: usize| starts[job + 2] - starts[job + 1];
                parallel::run_ordered(
                    par,
                    parallel,
                    hi - lo,
                    scratch.iter_mut().collect(),
                    |job, slot| {
                        let k = lo + job;
                        let into = &mut slot[..ct_len(job).saturating_sub(TAG_LEN)];
                        let segment = lock(&regions[1 + job]);
                        cipher.open_to(k as u64, k + 1 == segments, &segment, into)
                    },
                    |job, slot| {
                        let at = full_segments_len(&cipher, (lo + job) as u64);
                        let pt = ct_len(job) - TAG_LEN;
                        scatter(&regions, &starts, at, &slot[..pt]);
                        Ok(())
                    },
                )
            };
            if let Err((at, err)) = opened {
                // Untouched if the first segment fails, else wiped.
                if lo + at > 0 {
                    buf.zeroize();
                    buf.clear();
                }
                return Err(err);
            }
            lo = hi;
        }
        buf.truncate(pt_len);
        Ok(())
    }
}

/// Segments per pipeline of [`Options::seal_in_place`] and [`Options::open_in_place`]:
/// 64 MiB at the default segment size, and the bookkeeping for them is about 40 KiB.
const WINDOW: usize = 1024;

/// Plaintext bytes in segments `0..index` (all full) of a stream.
fn full_segments_len(cipher: &SegmentCipher, index: u64) -> usize {
    if index == 0 {
        0
    } else {
        cipher.layout.segment_pt_len(0)
            + usize::try_from(index - 1).unwrap_or(usize::MAX) * cipher.layout.segment_pt_len(1)
    }
}

/// Cuts `buf` at `starts` (ascending, the first one 0) into regions that threads can lock
/// one by one: region `i` runs from `starts[i]` to the next start, the last one to the end.
fn split_regions<'a>(buf: &'a mut [u8], starts: &[usize]) -> Vec<Mutex<&'a mut [u8]>> {
    let mut regions = Vec::with_capacity(starts.len());
    let mut rest = buf;
    for pair in starts.windows(2) {
        let (region, more) = std::mem::take(&mut rest).split_at_mut(pair[1] - pair[0]);
        regions.push(Mutex::new(region));
        rest = more;
    }
    regions.push(Mutex::new(rest));
    regions
}

fn lock<'a, 'b>(region: &'a Mutex<&'b mut [u8]>) -> MutexGuard<'a, &'b mut [u8]> {
    region.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes `bytes` at offset `at` of the buffer cut into `regions` (region `i` starts at
/// `starts[i]`; the last one runs to the end), across as many regions as it spans.
fn scatter(regions: &[Mutex<&mut [u8]>], starts: &[usize], mut at: usize, mut bytes: &[u8]) {
    // The last region starting at or before `at` (empty regions share a start).
    let mut i = starts
        .partition_point(|&start| start <= at)
        .saturating_sub(1);
    while !bytes.is_empty() && i < regions.len() {
        let mut region = lock(&regions[i]);
        let offset = at - starts[i];
        let n = region.len().saturating_sub(offset).min(bytes.len());
        region[offset..offset + n].copy_from_slice(&bytes[..n]);
        at += n;
        bytes = &bytes[n..];
        i += 1;
    }
    debug_assert!(bytes.is_empty(), "the stream's bytes fit its buffer");
}
