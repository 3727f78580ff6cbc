//! Memory stays bounded by one ring of slots (`2 × workers` segments, at least 256 KiB) in the
//! parallel streaming paths, whatever the stream length: a 256 MiB stream with 64 KiB
//! segments and 2 workers, written in small writes, and a 64 MiB one written at once (a
//! ring of slots, sealed into by the helpers while the caller writes).
//!
//! The counting allocator is the `cap` crate (as in crates/atrest-fuzz/tests/alloc_cap.rs);
//! its high-water mark cannot be reset, so everything runs in one test, in order.

#![allow(
    clippy::cast_possible_truncation,
    clippy::print_stdout,
    reason = "test code: a report of the peak"
)]

use std::alloc::System;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

use atrest_stream::{Encryptor, Key256, Options};
use cap::Cap;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const STREAM: u64 = 256 << 20;
const SEGMENT: usize = 64 << 10;
const WORKERS: usize = 2;

/// `len` bytes of plaintext (`i mod 251`), generated as they are read.
struct Plaintext {
    at: u64,
    len: u64,
}

impl Read for Plaintext {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min((self.len - self.at) as usize);
        for (i, b) in out[..n].iter_mut().enumerate() {
            *b = ((self.at + i as u64) % 251) as u8;
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// Discards what it is given, checking it is the expected plaintext.
struct Check {
    at: u64,
}

impl Write for Check {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for (i, &b) in data.iter().enumerate() {
            assert_eq!(
                b,
                ((self.at + i as u64) % 251) as u8,
                "plaintext at {}",
                self.at
            );
        }
        self.at += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Pipe(Rc<RefCell<VecDeque<u8>>>);

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The ciphertext of a [`Plaintext`], produced by a sequential encryptor as it is read.
struct Ciphertext {
    source: Plaintext,
    encryptor: Option<Encryptor<Pipe>>,
    pipe: Pipe,
}

impl Read for Ciphertext {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pipe.0.borrow().is_empty() {
            let Some(enc) = &mut self.encryptor else {
                return Ok(0);
            };
            let mut chunk = vec![0u8; SEGMENT];
            let n = self.source.read(&mut chunk)?;
            if n == 0 {
                if let Some(enc) = self.encryptor.take() {
                    enc.finish()?;
                }
            } else {
                enc.write_all(&chunk[..n])?;
            }
        }
        self.pipe.0.borrow_mut().read(out)
    }
}

#[test]
fn parallel_streams_use_bounded_memory() {
    let key = Key256::from_bytes([5; 32]);
    let options = Options::native(SEGMENT as u32)
        .expect("valid")
        .threads(WORKERS);
    // Warm the pool up so its own allocations are not counted as the stream's.
    // (`cap`'s high-water mark is all-time: keep this small.)
    let warm = Options::native(4096).expect("valid").threads(WORKERS);
    drop(warm.seal(&key, b"", &[0u8; 3 * 4096]));
    // Two segments per worker, and at least 256 KiB of plaintext (`RING_MIN_BYTES`).
    let ring = (WORKERS * 2).max((256 << 10) / SEGMENT) * (SEGMENT + 16);

    let baseline = ALLOCATOR.allocated();
    let mut enc = options.encryptor(io::sink(), &key, b"").expect("encryptor");
    let copied = io::copy(&mut Plaintext { at: 0, len: STREAM }, &mut enc).expect("copy");
    enc.finish().expect("finish");
    assert_eq!(copied, STREAM);
    let peak = ALLOCATOR.max_allocated().saturating_sub(baseline);
    println!("Encryptor, 2 workers, 256 MiB: peak {peak} bytes (one ring is {ring})");
    // The ring, plus the one-slot buffer it replaced while growing.
    assert!(peak <= ring + 2 * SEGMENT, "encryptor peak {peak}");

    let pipe = Pipe::default();
    let source = Ciphertext {
        source: Plaintext { at: 0, len: STREAM },
        encryptor: Some(
            Options::native(SEGMENT as u32)
                .expect("valid")
                .threads(1)
                .encryptor(pipe.clone(), &key, b"")
                .expect("encryptor"),
        ),
        pipe,
    };
    let baseline = ALLOCATOR.allocated().min(baseline);
    let mut dec = options.decryptor(source, &key, b"").expect("decryptor");
    let mut check = Check { at: 0 };
    let copied = io::copy(&mut dec, &mut check).expect("copy");
    assert_eq!(copied, STREAM);
    let peak = ALLOCATOR.max_allocated().saturating_sub(baseline);
    // A ring of ciphertext and, since io::copy reads 8 KiB at a time, one of plaintext;
    // plus the generating encryptor's segment and its pipe.
    println!("Decryptor, 2 workers, 256 MiB: peak {peak} bytes (one ring is {ring})");
    assert!(peak <= 2 * ring + 4 * SEGMENT, "decryptor peak {peak}");

    // One large write: sealed straight from the slice into the ring of slots
    // while the caller writes them in order. The input itself is allocated before the
    // baseline.
    let input: Vec<u8> = (0..64usize << 20).map(|i| (i % 251) as u8).collect();
    let baseline = ALLOCATOR.allocated();
    let mut enc = options.encryptor(io::sink(), &key, b"").expect("encryptor");
    enc.write_all(&input).expect("write");
    enc.finish().expect("finish");
    let peak = ALLOCATOR.max_allocated().saturating_sub(baseline);
    println!("Encryptor, 2 workers, one 64 MiB write: peak {peak} bytes (one ring is {ring})");
    assert!(
        peak <= ring + 2 * SEGMENT,
        "encryptor (large write) peak {peak}"
    );
}
