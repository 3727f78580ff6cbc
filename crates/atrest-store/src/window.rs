//! A sparse, seekable view of an object's body: the ciphertext pieces a read fetched, at
//! their offsets. `SeekableDecryptor` reads segments from it; any byte outside the fetched
//! pieces is an error (never zeros), so a bug cannot turn into unauthenticated output.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Body pieces shared between a [`WindowReader`] (owned by the decryptor) and the code
/// that fetches ciphertext.
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    pieces: Vec<(u64, Bytes)>,
    len: u64,
}

impl Pieces {
    pub(crate) fn new(len: u64) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            pieces: Vec::new(),
            len,
        }))
    }

    pub(crate) fn push(this: &Mutex<Self>, at: u64, bytes: Bytes) {
        lock(this).pieces.push((at, bytes));
    }

    /// Keeps only the pieces that hold bytes at or after `from` (plus the stream header
    /// piece at offset 0), so streaming reads stay bounded.
    pub(crate) fn retain_from(this: &Mutex<Self>, from: u64) {
        lock(this)
            .pieces
            .retain(|(at, bytes)| *at == 0 || at + bytes.len() as u64 > from);
    }
}

fn lock(pieces: &Mutex<Pieces>) -> std::sync::MutexGuard<'_, Pieces> {
    pieces.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `Read + Seek` over [`Pieces`].
pub(crate) struct WindowReader {
    pieces: Arc<Mutex<Pieces>>,
    pos: u64,
}

impl WindowReader {
    pub(crate) fn new(pieces: Arc<Mutex<Pieces>>) -> Self {
        Self { pieces, pos: 0 }
    }
}

impl Read for WindowReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let pieces = lock(&self.pieces);
        if self.pos >= pieces.len || out.is_empty() {
            return Ok(0);
        }
        for (at, bytes) in &pieces.pieces {
            let end = at + bytes.len() as u64;
            if (*at..end).contains(&self.pos) {
                let from = usize::try_from(self.pos - at).map_err(io::Error::other)?;
                let n = (bytes.len() - from).min(out.len());
                out[..n].copy_from_slice(&bytes[from..from + n]);
                self.pos += n as u64;
                return Ok(n);
            }
        }
        Err(io::Error::other("ciphertext range was not fetched"))
    }
}

impl Seek for WindowReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = lock(&self.pieces).len;
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "seek out of range");
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => len.checked_add_signed(d).ok_or_else(invalid)?,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(invalid)?,
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_fetched_pieces() {
        let pieces = Pieces::new(100);
        Pieces::push(&pieces, 0, Bytes::from_static(b"abc"));
        Pieces::push(&pieces, 50, Bytes::from_static(b"xyz"));
        let mut r = WindowReader::new(pieces);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).expect("read"), 3);
        assert_eq!(&buf[..3], b"abc");
        r.seek(SeekFrom::Start(51)).expect("seek");
        assert_eq!(r.read(&mut buf).expect("read"), 2);
        assert_eq!(&buf[..2], b"yz");
        r.seek(SeekFrom::Start(10)).expect("seek");
        assert!(r.read(&mut buf).is_err());
        assert_eq!(r.seek(SeekFrom::End(0)).expect("seek"), 100);
        assert_eq!(r.read(&mut buf).expect("eof"), 0);
    }
}
