//! Stored password hashes (Argon2/scrypt/PBKDF2 PHC, passlib, Django, bcrypt) from untrusted
//! bytes: never panic, never allocate or compute in proportion to hostile parameters. The
//! logic lives in `atrest_password::fuzzing`, which plain `cargo test` also runs.
#![no_main]

use std::alloc::System;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, atrest_fuzz::FUZZ_ALLOC_LIMIT);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    atrest_password::fuzzing::parse_and_verify(data);
});
