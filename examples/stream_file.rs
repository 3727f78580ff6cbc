//! Encrypt a file at rest and read it back — the streaming API end to end.
//!
//! ```sh
//! cargo run --release --example stream_file                 # uses a generated 32 MiB sample
//! cargo run --release --example stream_file -- path/to/file  # or any file of yours
//! ```
//!
//! What it shows, in the order a backend would do it:
//! 1. stream a plaintext file through [`atrest::stream::Encryptor`] into `FILE.atrest`
//!    (bounded memory: one 64 KiB segment, whatever the file size);
//! 2. stream it back through [`atrest::stream::Decryptor`] and check it is identical;
//! 3. serve a byte range (an HTTP `Range:` request) with
//!    [`atrest::stream::SeekableDecryptor`], decrypting only the segments it touches;
//! 4. show that a flipped bit, a truncated file and the wrong associated data are all refused.
//!
//! The key here is generated on the spot and discarded; in a real service it is a data key
//! from the keyring (see the envelope and keyring crates).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use atrest::crypto::{DEFAULT_PROVIDER, Key256};
use atrest::stream::{Decryptor, Encryptor, Error, SeekableDecryptor};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let workdir = std::env::temp_dir().join(format!("atrest-example-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let result = run(&workdir);
    std::fs::remove_dir_all(&workdir)?;
    result
}

fn run(workdir: &Path) -> Result<()> {
    let input = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => make_sample(&workdir.join("attachment.bin"), 32 << 20)?,
    };
    let encrypted = workdir.join("attachment.atrest");
    let decrypted = workdir.join("attachment.out");
    let size = std::fs::metadata(&input)?.len();

    let key = Key256::generate(DEFAULT_PROVIDER)?;
    // Associated data binds the ciphertext to where it belongs: a copy moved to another
    // tenant or object fails to decrypt.
    let aad = b"tenant=acme;attachment=7f3a";

    // 1. Encrypt, streaming.
    let started = Instant::now();
    let mut encryptor = Encryptor::new(BufWriter::new(File::create(&encrypted)?), &key, aad)?;
    // `copy_from` is `io::copy` through a read buffer the encryptor seals in place (no
    // plaintext copy into the encryptor); `io::copy(&mut file, &mut encryptor)` works too.
    encryptor.copy_from(&mut File::open(&input)?)?;
    encryptor
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    let encrypt_time = started.elapsed();
    let stored = std::fs::metadata(&encrypted)?.len();

    // 2. Decrypt, streaming.
    let started = Instant::now();
    let mut decryptor = Decryptor::new(BufReader::new(File::open(&encrypted)?), &key, aad)?;
    let mut out = BufWriter::new(File::create(&decrypted)?);
    io::copy(&mut decryptor, &mut out)?;
    out.flush()?;
    let decrypt_time = started.elapsed();
    if !same_contents(&input, &decrypted)? {
        return Err("decrypted file differs from the input".into());
    }

    println!("plaintext  {size:>12} bytes  {}", input.display());
    println!(
        "encrypted  {stored:>12} bytes  (+{} bytes: header and a 16-byte tag per 64 KiB segment)",
        stored - size
    );
    println!("encrypt    {:>9.1} MiB/s", mib_per_s(size, encrypt_time));
    println!(
        "decrypt    {:>9.1} MiB/s  (round trip verified byte for byte)",
        mib_per_s(size, decrypt_time)
    );

    // 3. Serve a range, as for `Range: bytes=START-END`.
    let mut reader = SeekableDecryptor::new(File::open(&encrypted)?, &key, aad)?;
    let start = size / 2;
    let len = 4096.min(size - start);
    let ciphertext_range = reader.ciphertext_range(start..start + len)?;
    reader.seek(SeekFrom::Start(start))?;
    let mut range = vec![0u8; usize::try_from(len)?];
    reader.read_exact(&mut range)?;
    let mut expected = vec![0u8; range.len()];
    let mut original = File::open(&input)?;
    original.seek(SeekFrom::Start(start))?;
    original.read_exact(&mut expected)?;
    if range != expected {
        return Err("range read differs from the input".into());
    }
    println!(
        "range      bytes {start}..{} decrypted from ciphertext bytes {ciphertext_range:?} only",
        start + len
    );

    // 4. Damage is refused with a precise error, and no plaintext is released.
    let bytes = std::fs::read(&encrypted)?;
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    report("one flipped bit", atrest::stream::open(&key, aad, &flipped));
    report(
        "last 100 bytes cut off",
        atrest::stream::open(&key, aad, &bytes[..bytes.len() - 100]),
    );
    report(
        "wrong associated data",
        atrest::stream::open(&key, b"tenant=evil", &bytes),
    );
    Ok(())
}

fn report(what: &str, result: std::result::Result<Vec<u8>, Error>) {
    match result {
        Ok(_) => println!("tampering  {what:<24} -> ACCEPTED (this must never happen)"),
        Err(err) => println!("tampering  {what:<24} -> refused: {err}"),
    }
}

fn make_sample(path: &Path, len: usize) -> Result<PathBuf> {
    let mut file = BufWriter::new(File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_be_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len());
        file.write_all(&block[..n])?;
        left -= n;
    }
    file.flush()?;
    Ok(path.to_path_buf())
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let (mut a, mut b) = (
        BufReader::new(File::open(a)?),
        BufReader::new(File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_up_to(&mut a, &mut x)?;
        let m = read_up_to(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut have = 0;
    while have < buf.len() {
        match r.read(&mut buf[have..])? {
            0 => break,
            n => have += n,
        }
    }
    Ok(have)
}

fn mib_per_s(bytes: u64, time: std::time::Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64().max(1e-9)
}
