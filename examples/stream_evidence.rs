//! Memory and random-access evidence for the streaming cipher (run by
//! `scripts/stream-evidence.sh`, which wraps it in `/usr/bin/time -v` for peak RSS).
//!
//! ```sh
//! cargo run --release --example stream_evidence -- memory 4096        # MiB to encrypt+decrypt
//! cargo run --release --example stream_evidence -- random-reads 1024  # MiB file, 4 KiB reads
//! ```
//!
//! `memory N`: streams N MiB of generated plaintext (never held in RAM) through
//! `Encryptor` into a temporary file, then back through `Decryptor`, checking every byte
//! against the generator. Peak RSS is what `/usr/bin/time -v` reports for the process.
//!
//! `random-reads N`: writes an N MiB stream to a temporary file, then performs 2000 reads of
//! 4 KiB at random offsets through `SeekableDecryptor::read_at`, counting the ciphertext bytes
//! the file actually delivered per request.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use atrest::crypto::Key256;
use atrest::stream::{Decryptor, Encryptor, SeekableDecryptor};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Deterministic plaintext generator (xorshift64), readable like a file.
struct Generator {
    state: u64,
    left: u64,
}

impl Generator {
    fn new(len: u64) -> Self {
        Self {
            state: 0x9E37_79B9_7F4A_7C15,
            left: len,
        }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len()) / 8 * 8;
        let n = if n == 0 {
            usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(0)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_be_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that counts the bytes it delivered.
struct Counting<R> {
    inner: R,
    read: &'static AtomicU64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

static READ_BYTES: AtomicU64 = AtomicU64::new(0);

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "memory".into());
    let mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4096);
    let path = std::env::temp_dir().join(format!("atrest-evidence-{}.bin", std::process::id()));
    let result = match mode.as_str() {
        "memory" => memory(&path, mib << 20),
        "random-reads" => random_reads(&path, mib << 20),
        other => Err(format!("unknown mode {other:?}: use memory or random-reads").into()),
    };
    let _ = std::fs::remove_file(&path);
    result
}

fn encrypt_to(path: &std::path::Path, key: &Key256, len: u64) -> Result<f64> {
    let started = Instant::now();
    let mut encryptor = Encryptor::new(
        BufWriter::with_capacity(1 << 16, File::create(path)?),
        key,
        b"evidence",
    )?;
    io::copy(&mut Generator::new(len), &mut encryptor)?;
    encryptor.finish()?.flush()?;
    Ok(started.elapsed().as_secs_f64())
}

fn memory(path: &std::path::Path, len: u64) -> Result<()> {
    let key = Key256::from_bytes([7; 32]);
    let encrypt_secs = encrypt_to(path, &key, len)?;
    let started = Instant::now();
    let mut decryptor = Decryptor::new(
        BufReader::with_capacity(1 << 16, File::open(path)?),
        &key,
        b"evidence",
    )?;
    let mut expected = Generator::new(len);
    let (mut got, mut want) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut total = 0u64;
    loop {
        let n = decryptor.read(&mut got)?;
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n])?;
        if got[..n] != want[..n] {
            return Err(format!("plaintext differs near byte {total}").into());
        }
        total += n as u64;
    }
    if total != len {
        return Err(format!("decrypted {total} bytes, expected {len}").into());
    }
    let mib = len as f64 / f64::from(1 << 20);
    println!(
        "memory: {mib:.0} MiB encrypted ({:.0} MiB/s) and decrypted+verified ({:.0} MiB/s) through the streaming API",
        mib / encrypt_secs,
        mib / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn random_reads(path: &std::path::Path, len: u64) -> Result<()> {
    let key = Key256::from_bytes([9; 32]);
    encrypt_to(path, &key, len)?;
    let file = Counting {
        inner: File::open(path)?,
        read: &READ_BYTES,
    };
    let reader = SeekableDecryptor::new(file, &key, b"evidence")?;
    let segment = reader.layout().segment_size() as u64 + 16;
    // Opening read the header; count only the requests.
    READ_BYTES.store(0, Ordering::Relaxed);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let (requests, size) = (2000u64, 4096usize);
    let mut buf = vec![0u8; size];
    let mut worst = 0u64;
    for _ in 0..requests {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = state % (len - size as u64);
        let before = READ_BYTES.load(Ordering::Relaxed);
        let n = reader.read_at(offset, &mut buf)?;
        if n != size {
            return Err(format!("short read at {offset}").into());
        }
        worst = worst.max(READ_BYTES.load(Ordering::Relaxed) - before);
    }
    let total = READ_BYTES.load(Ordering::Relaxed);
    println!(
        "random-reads: {requests} reads of {size} B from a {} MiB stream: {:.0} ciphertext bytes read per request on average, {worst} at most ({:.2} segments of {segment} B)",
        len >> 20,
        total as f64 / requests as f64,
        worst as f64 / segment as f64
    );
    Ok(())
}
