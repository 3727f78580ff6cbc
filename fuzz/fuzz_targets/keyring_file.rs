//! Sealed keyring files from untrusted bytes: the header and payload parsers never panic and
//! never allocate past their caps. Uses the insecure fuzzing provider so the fuzzer reaches
//! the payload decoder behind the AEAD, and also decodes the input as a bare payload.
//! Logic and docs: `atrest_keyring::fuzzing`.
#![no_main]

use std::alloc::System;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, atrest_fuzz::FUZZ_ALLOC_LIMIT);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = atrest_keyring::fuzzing::open_sealed(data, &atrest_crypto::insecure_fuzzing::PROVIDER);
    atrest_keyring::fuzzing::decode_payload(data);
});
