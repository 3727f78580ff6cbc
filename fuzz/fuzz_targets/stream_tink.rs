//! Tink AES256_GCM_HKDF decryption of untrusted bytes, every read path, real and insecure provider.
//! Logic and docs: `atrest_fuzz::stream_decrypt_tink`.
#![no_main]

use std::alloc::System;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, atrest_fuzz::FUZZ_ALLOC_LIMIT);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = atrest_fuzz::stream_decrypt_tink(data);
});
