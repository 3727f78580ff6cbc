//! One-shot sealing and opening of in-memory data.

use atrest_crypto::{Key256, TAG_LEN};
use zeroize::Zeroize;

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
}
