//! Encryptor with arbitrary write sizes, then every reader.
//! Logic and docs: `atrest_fuzz::stream_roundtrip`.
#![no_main]

use std::alloc::System;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, atrest_fuzz::FUZZ_ALLOC_LIMIT);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    atrest_fuzz::stream_roundtrip(data);
});
