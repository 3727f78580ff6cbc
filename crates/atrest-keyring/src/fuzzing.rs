//! Fuzz logic for the keyring file parsers, for `fuzz/` targets and this crate's unit tests.
//! Not part of the public API.

use atrest_crypto::{CryptoProvider, Key256};

use crate::codec::{decode, encode};
use crate::root::{Argon2Params, PassphraseRoot, RawKeyRoot, RootKey};
use crate::{FileError, Keyring};

/// Parses `data` as a sealed keyring file and opens it with a fixed raw root key, or a
/// passphrase root with tiny Argon2 limits if the header asks for one. Must never panic and
/// never allocate beyond the caps. Pass `atrest_crypto::insecure_fuzzing::PROVIDER` so the
/// fuzzer gets past the tag and into the payload decoder.
pub fn open_sealed(data: &[u8], provider: &'static CryptoProvider) -> Result<Keyring, FileError> {
    let raw = RawKeyRoot::new(Key256::from_bytes([0x42; 32]));
    match Keyring::open_with_provider(data, &raw, provider) {
        Err(FileError::RootKindMismatch { .. }) => {
            let limits = Argon2Params::new(64, 2, 2).map_err(FileError::RootKey)?;
            let pass = PassphraseRoot::new("fuzz", limits).with_limits(limits);
            Keyring::open_with_provider(data, &pass as &dyn RootKey, provider)
        }
        other => other,
    }
}

/// Decodes `data` as a plaintext keyring payload. Whatever decodes must re-encode to the
/// same bytes (the encoding is canonical) and satisfy the keyring's invariants.
#[allow(clippy::panic, reason = "a fuzz target reports a bug by panicking")]
pub fn decode_payload(data: &[u8]) {
    if let Ok(ring) = decode(data, atrest_crypto::DEFAULT_PROVIDER) {
        for key in ring.keys.values() {
            if let Err(why) = key.check() {
                panic!("decoded keyring breaks an invariant: {why}");
            }
        }
        let _ = ring.status();
        if encode(&ring).as_slice() != data {
            panic!("payload encoding is not canonical");
        }
    }
}

#[cfg(test)]
mod tests {
    use atrest_envelope::KeyId;

    use super::*;
    use crate::Timestamp;

    /// A cheap deterministic byte stream (xorshift) for mutation tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        let t0 = Timestamp::from_unix_secs(7);
        let mut ring = Keyring::new();
        for name in ["a", "b"] {
            let id = KeyId::new(name).expect("valid id");
            ring.create_key(&id, t0).expect("create");
            ring.rotate(&id, t0).expect("rotate");
        }
        let raw = RawKeyRoot::new(Key256::from_bytes([0x42; 32]));
        let tiny = Argon2Params::new(8, 1, 1).expect("params");
        let pass = PassphraseRoot::new("fuzz", tiny);
        vec![
            encode(&ring).to_vec(),
            ring.seal(&raw).expect("seal"),
            ring.seal(&pass).expect("seal"),
        ]
    }

    #[test]
    fn seeds_open_and_mutants_never_panic() {
        let seeds = seeds();
        let p = atrest_crypto::DEFAULT_PROVIDER;
        decode_payload(&seeds[0]);
        open_sealed(&seeds[1], p).expect("raw-root seed opens");
        open_sealed(&seeds[2], p).expect("passphrase seed opens");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..3000 {
            let mut data = seeds[round % seeds.len()].clone();
            for _ in 0..=rng.below(4) {
                match rng.below(3) {
                    0 if !data.is_empty() => {
                        let i = rng.below(data.len());
                        data[i] ^= 1 << rng.below(8);
                    }
                    1 => data.truncate(rng.below(data.len() + 1)),
                    _ => {
                        let i = rng.below(data.len() + 1);
                        data.insert(i, rng.next().to_be_bytes()[0]);
                    }
                }
            }
            decode_payload(&data);
            let _ = open_sealed(&data, p);
        }
    }
}
