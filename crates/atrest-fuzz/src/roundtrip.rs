//! Encrypt with `Encryptor` in input-chosen writes, decrypt, compare.

use std::io::{Read, Write};

use atrest_crypto::Key256;
use atrest_stream::{Decryptor, Encryptor};

use crate::input::{self, Input};
use crate::paths;
use crate::seek_model::Shape;

/// Encrypts a plaintext with [`Encryptor`] using write sizes (and flushes, and
/// `write_in_place` for every other write) decoded from `data`, then checks: the length is `Layout::ciphertext_len`, `Options::open` and
/// `Decryptor` return the plaintext, `Options::seal` of the same plaintext has the same
/// length and decrypts identically, and with the insecure provider both match the
/// docs/FORMAT.md reference model (native: byte-identical segments from both writers).
///
/// Input: `flags: u8` (bit 0 Tink, bit 1 insecure provider, bit 2 flush after each write,
/// bit 3 every other write through `Encryptor::write_in_place` on a copy of the chunk)
/// `|| size: u8 || len: u16 || writes: u8 || writes * size: u16 || pattern...`.
pub fn stream_roundtrip(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let shape = Shape::decode(flags, input.byte());
    let flush = flags & 4 == 4;
    let in_place = flags & 8 == 8;
    let len = shape.plaintext_len(input.u16());
    let writes = 1 + usize::from(input.byte() % 8);
    let mut sizes: Vec<usize> = (0..writes)
        .map(|_| usize::from(input.u16()) % (2 * len + 2))
        .collect();
    if sizes.iter().all(|&size| size == 0) {
        sizes.push(len.max(1));
    }
    let plaintext = input::plaintext(len, input.rest(), flags);
    let options = shape.options();
    let key = Key256::from_bytes([flags; 32]);
    let aad = b"roundtrip";

    let mut encryptor =
        Encryptor::with_options(Vec::new(), &key, aad, &options).expect("in-memory encryptor");
    let expected_len = encryptor
        .layout()
        .ciphertext_len(len as u64)
        .expect("short stream");
    let mut rest = &plaintext[..];
    for (i, &size) in sizes.iter().cycle().enumerate() {
        if rest.is_empty() {
            break;
        }
        let chunk = &rest[..size.min(rest.len())];
        let accepted = if in_place && i % 2 == 0 {
            let mut owned = chunk.to_vec();
            encryptor
                .write_in_place(&mut owned)
                .expect("write in place to a Vec");
            chunk.len()
        } else {
            encryptor.write(chunk).expect("write to a Vec")
        };
        assert!(accepted <= chunk.len());
        assert!(chunk.is_empty() || accepted > 0, "write accepted nothing");
        rest = &rest[accepted..];
        if flush {
            encryptor.flush().expect("flush to a Vec");
        }
    }
    let ciphertext = encryptor.finish().expect("finish to a Vec");
    assert_eq!(ciphertext.len() as u64, expected_len, "ciphertext_len");
    assert_eq!(
        options
            .open(&key, aad, &ciphertext)
            .expect("open own stream"),
        plaintext
    );
    let mut decrypted = Vec::new();
    Decryptor::with_options(&ciphertext[..], &key, aad, &options)
        .expect("header")
        .read_to_end(&mut decrypted)
        .expect("decrypt own stream");
    assert_eq!(decrypted, plaintext);

    let sealed = options.seal(&key, aad, &plaintext).expect("seal");
    assert_eq!(sealed.len(), ciphertext.len(), "seal and Encryptor lengths");
    assert_eq!(
        options.open(&key, aad, &sealed).expect("open sealed"),
        plaintext
    );
    let mut in_place = plaintext.clone();
    options
        .seal_in_place(&key, aad, &mut in_place)
        .expect("seal in place");
    assert_eq!(in_place.len(), ciphertext.len(), "seal_in_place length");
    options
        .open_in_place(&key, aad, &mut in_place)
        .expect("open in place");
    assert_eq!(in_place, plaintext, "in-place round trip");

    if std::ptr::eq(
        options.crypto_provider(),
        &atrest_crypto::insecure_fuzzing::PROVIDER,
    ) {
        for stream in [&ciphertext, &sealed] {
            let (released, end) = paths::model(stream, &options);
            assert_eq!(end, Ok(()), "the model accepts what the writers wrote");
            assert_eq!(released, plaintext, "the model reads the plaintext back");
        }
        if !shape.tink {
            // Native nonces do not depend on the salt: with an identity cipher, the segments
            // of both writers must be byte-identical.
            assert_eq!(
                ciphertext[42..],
                sealed[42..],
                "Encryptor and seal segments"
            );
        }
    }
}
