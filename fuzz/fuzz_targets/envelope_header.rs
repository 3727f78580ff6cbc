//! Envelope headers from untrusted bytes (attached form): both parsers agree, parsed headers
//! re-encode to their own bytes, opening and decrypting never panic, allocation stays bounded.
//! Logic and docs: `atrest_envelope::fuzzing::header`.
#![no_main]

use std::alloc::System;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, atrest_fuzz::FUZZ_ALLOC_LIMIT);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = atrest_envelope::fuzzing::header(data);
});
