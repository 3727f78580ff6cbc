//! Helpers shared by the integration tests.

#![allow(
    clippy::cast_possible_truncation,
    clippy::panic,
    reason = "test code: sizes are small and a failed check should panic"
)]
#![allow(dead_code, reason = "each test binary uses a different subset")]

use atrest_envelope::fuzzing::TestWrapper;
use atrest_envelope::{Context, Error, KeyId, UnwrapError};

pub(crate) fn key_id(name: &str) -> KeyId {
    KeyId::new(name).expect("valid key id")
}

/// A keyring with key `"tenant-acme"` at version 1 (KEK `[0xA1; 32]`).
pub(crate) fn keyring() -> (TestWrapper, KeyId) {
    let wrapper = TestWrapper::new();
    let id = key_id("tenant-acme");
    wrapper.add_version(&id, [0xA1; 32]);
    (wrapper, id)
}

pub(crate) fn context() -> Context {
    Context::new()
        .with("tenant", "acme")
        .and_then(|c| c.with("object", "invoice-17"))
        .expect("valid context")
}

/// Deterministic plaintext of `len` bytes.
pub(crate) fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The `UnwrapError` inside an [`Error::Unwrap`], with the key and version it names.
pub(crate) fn unwrap_error(result: Result<impl Sized, Error>) -> (String, u32, UnwrapError) {
    match result {
        Err(Error::Unwrap {
            key_id,
            version,
            source,
        }) => (key_id.to_string(), version, source),
        Err(other) => panic!("expected Error::Unwrap, got {other:?}"),
        Ok(_) => panic!("expected Error::Unwrap, got Ok"),
    }
}
