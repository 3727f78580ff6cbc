//! Fuzz logic for the stored-hash parsers, shared by `fuzz/fuzz_targets/password_parse.rs` and
//! this crate's unit tests. Not part of the public API.

use std::sync::OnceLock;

use crate::{Error, Hasher, Pepper, PepperSet, Policy};

/// A hasher whose caps are tiny, so any stored hash the fuzzer makes up that passes the caps
/// verifies in well under a millisecond. A cap that let hostile parameters through would show
/// up as a slow unit or a memory blow-up (the fuzzer runs with `-rss_limit_mb`).
fn hasher() -> &'static Hasher {
    static HASHER: OnceLock<Hasher> = OnceLock::new();
    HASHER.get_or_init(|| {
        let policy = Policy::builder()
            .memory_kib(8)
            .iterations(1)
            .max_memory_kib(64)
            .max_iterations(2)
            .max_lanes(2)
            .max_bcrypt_cost(4)
            .max_pbkdf2_iterations(1000)
            .max_password_len(64)
            .build()
            .expect("valid fuzz policy");
        let pepper = |b: u8| Pepper::new(vec![b; 16]).expect("16 bytes");
        let peppers = PepperSet::new(b"cur", pepper(1))
            .and_then(|set| set.with_previous(b"old", pepper(2)))
            .expect("valid fuzz peppers");
        Hasher::builder(policy)
            .peppers(peppers)
            .memory_budget(1 << 20)
            .build()
            .expect("valid fuzz hasher")
    })
}

/// Splits `data` into a password (first byte = its length) and a stored hash, and verifies.
/// Must never panic; any stored hash that passes the caps must verify cheaply.
#[allow(clippy::panic, reason = "a fuzz target reports a bug by panicking")]
pub fn parse_and_verify(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(len).min(rest.len());
    let (password, stored) = rest.split_at(split);
    let Ok(stored) = core::str::from_utf8(stored) else {
        return;
    };
    match hasher().verify(stored, password) {
        Ok(_) | Err(Error::MalformedHash | Error::UnsupportedAlgorithm | Error::ExceedsCap(_)) => {}
        Err(Error::UnknownPepper | Error::PasswordTooLong { .. }) => {}
        Err(other) => panic!("unexpected error from verify: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: &[&str] = &[
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2id$v=19$m=64,t=2,p=2,keyid=Y3Vy$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2i$m=16,t=1,p=1,data=ZGF0YQ$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2id$v=19$m=4294967295,t=4294967295,p=16777215$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$scrypt$ln=4,r=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$scrypt$ln=63,r=4294967295,p=4294967295$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$pbkdf2-sha256$i=10,l=32$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs",
        "$pbkdf2-sha256$10$c2FsdA$RdescudvJCsgt3ub.b.dWRWJTmaaJObGRdescudvJCs",
        "pbkdf2_sha256$10$salt$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs=",
        "$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
        "$2y$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
    ];

    #[test]
    fn seeds_and_mutations_never_panic() {
        // xorshift64*: deterministic, no dev-dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for seed in SEEDS {
            let mut input = vec![2, b'p', b'w'];
            input.extend_from_slice(seed.as_bytes());
            parse_and_verify(&input);
            for _ in 0..300 {
                let mut mutated = input.clone();
                for _ in 0..=(next() % 4) {
                    let at = usize::try_from(next() % mutated.len() as u64).unwrap_or(0);
                    match next() % 4 {
                        0 => {
                            mutated[at] = b"$=,0123456789abcxyzAZ+/."
                                [usize::try_from(next() % 24).unwrap_or(0)]
                        }
                        1 => {
                            mutated.remove(at);
                        }
                        2 => mutated.insert(at, b"9$=,"[usize::try_from(next() % 4).unwrap_or(0)]),
                        _ => mutated.truncate(at.max(1)),
                    }
                    if mutated.is_empty() {
                        break;
                    }
                }
                parse_and_verify(&mutated);
            }
        }
        for _ in 0..2000 {
            let len = usize::try_from(next() % 128).unwrap_or(0);
            let random: Vec<u8> = (0..len).map(|_| (next() % 128) as u8).collect();
            parse_and_verify(&random);
        }
    }
}
