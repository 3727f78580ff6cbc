//! One-shot sealing and opening of in-memory data.

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
    /// then moved to its place while still in cache. With an explicit [`Options::threads`]
    /// of 2 or more, batches of segments are sealed in parallel and moved by the calling
    /// thread; the bytes are the same either way. Automatic parallelism (the default) stays
    /// sequential here: the moves are the caller's alone, and on two cores that gained
    /// 1.1-1.6x with RustCrypto but lost to one thread with ring in half the runs.
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
        // sealed where it lies, then its ciphertext moves to its place and its tag follows.
        // In that order the AES pass reads the cold plaintext (its loads overlap the
        // arithmetic, as in a raw in-place seal) and the move copies a segment that is still
        // in cache, at 40-60 GB/s. Moving first and sealing after was slower by a third (a
        // move from memory has nothing to overlap with), and so was sealing into a scratch
        // segment and copying it back (docs/PERFORMANCE.md, "In-place one-shots").
        //
        // Segments go in batches: the batch is sealed (by the workers, in parallel), then
        // moved by this thread while it is still in the caches. Sealing never touches
        // anything but the batch's own plaintext, which no earlier move has reached.
        let par = Parallelism::of(self);
        let parallel = par.for_in_place(pt_len as u64, segments as u64);
        let max_pt = cipher.layout.max_segment_pt_len();
        let batch = if parallel {
            par.batch_segments(max_pt)
        } else {
            // About 64 KiB per batch sequentially: one segment at the default size.
            (64usize << 10).div_ceil(max_pt.max(1))
        };
        let segment_pt = |index: u64| {
            if index + 1 == segments as u64 {
                pt_len - full_segments_len(&cipher, index)
            } else {
                cipher.layout.segment_pt_len(index)
            }
        };
        let mut tags = vec![Tag::from_bytes([0; TAG_LEN]); batch];
        let mut pt_end = pt_len;
        let mut ct_end = total;
        let mut hi = segments as u64;
        while hi > 0 {
            let lo = hi.saturating_sub(batch as u64);
            let lens: Vec<usize> = (lo..hi).map(segment_pt).collect();
            let batch_start = pt_end - lens.iter().sum::<usize>();
            let mut rest = &mut buf[batch_start..pt_end];
            let mut jobs = Vec::with_capacity(lens.len());
            for ((index, &len), tag) in (lo..hi).zip(&lens).zip(tags.iter_mut()) {
                let (body, more) = std::mem::take(&mut rest).split_at_mut(len);
                jobs.push((index, body, tag));
                rest = more;
            }
            let sealed = parallel::run(par, parallel, jobs, |(index, body, tag)| {
                *tag = cipher.seal_detached(index, index + 1 == segments as u64, body)?;
                Ok(())
            });
            if let Err((_, err)) = sealed {
                buf.zeroize();
                buf.clear();
                return Err(err);
            }
            for (&pt, tag) in lens.iter().zip(&tags).rev() {
                let (pt_start, ct_start) = (pt_end - pt, ct_end - pt - TAG_LEN);
                buf.copy_within(pt_start..pt_end, ct_start);
                buf[ct_start + pt..ct_end].copy_from_slice(tag.as_bytes());
                pt_end = pt_start;
                ct_end = ct_start;
            }
            hi = lo;
        }
        debug_assert_eq!((pt_end, ct_end), (0, header_len));
        buf[..header_len].copy_from_slice(cipher.layout.header());
        Ok(())
    }

    /// Decrypts the complete stream in `buf` into its plaintext in the same allocation: on
    /// success `buf` holds exactly the plaintext. Same checks and errors as [`Options::open`],
    /// with one segment of scratch instead of a plaintext-sized second buffer: each segment
    /// is opened into the scratch (nothing is written unless its tag verifies) and copied
    /// to its place, which only ever overwrites ciphertext already opened.
    ///
    /// With an explicit [`Options::threads`] of 2 or more, a batch of segments is opened in
    /// parallel into a batch of scratch (512 KiB for 64 KiB segments and two workers) and
    /// copied down in order; errors and the state of `buf` after an error are the same at
    /// every thread count. Automatic parallelism (the default) stays sequential here, as
    /// for [`Options::seal_in_place`].
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
        // Batches of segments are opened (by the workers, in parallel) into scratch, then
        // copied down to their places in order by this thread. A batch's plaintext ends
        // before the next batch's ciphertext starts, so nothing unopened is overwritten.
        let par = Parallelism::of(self);
        let parallel = par.for_in_place(buf.len() as u64, geometry.segments);
        let max_pt = cipher.layout.max_segment_pt_len();
        let batch = if parallel {
            par.batch_segments(max_pt)
        } else {
            1
        };
        let mut scratch = Zeroizing::new(vec![0u8; batch * max_pt]);
        let mut written = 0;
        let mut lo = 0u64;
        while lo < geometry.segments {
            let hi = lo.saturating_add(batch as u64).min(geometry.segments);
            let mut jobs = Vec::with_capacity(batch);
            for (index, into) in (lo..hi).zip(scratch.chunks_mut(max_pt)) {
                let (start, ct_len) = cipher.layout.segment_span(&geometry, index);
                let segment = usize::try_from(start)
                    .ok()
                    .and_then(|start| buf.get(start..start.checked_add(ct_len)?));
                jobs.push((index, segment, &mut into[..ct_len - TAG_LEN]));
            }
            let opened = parallel::run(par, parallel, jobs, |(index, segment, into)| {
                let last = index + 1 == geometry.segments;
                match segment {
                    Some(segment) => cipher.open_to(index, last, segment, into),
                    None => Err(Error::Truncated),
                }
            });
            if let Err((at, err)) = opened {
                // As sequentially: untouched if the first segment fails, else wiped (even
                // if this batch's earlier segments were only opened into the scratch).
                if lo + at as u64 > 0 {
                    buf.zeroize();
                    buf.clear();
                }
                return Err(err);
            }
            for (index, from) in (lo..hi).zip(scratch.chunks(max_pt)) {
                let pt = cipher.layout.segment_span(&geometry, index).1 - TAG_LEN;
                buf[written..written + pt].copy_from_slice(&from[..pt]);
                written += pt;
            }
            lo = hi;
        }
        buf.truncate(written);
        Ok(())
    }
}

/// Plaintext bytes in segments `0..index` (all full) of a stream.
fn full_segments_len(cipher: &SegmentCipher, index: u64) -> usize {
    if index == 0 {
        0
    } else {
        cipher.layout.segment_pt_len(0)
            + usize::try_from(index - 1).unwrap_or(usize::MAX) * cipher.layout.segment_pt_len(1)
    }
}
