//! The one error type of the primitive layer.

/// Failures of a cryptographic primitive.
///
/// Deliberately coarse: an authentication failure says nothing about *why* the tag did not
/// verify (wrong key, wrong nonce, wrong associated data or modified bytes look the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authentication tag did not verify. No plaintext was released.
    #[error("authentication failed")]
    Authentication,
    /// An input was longer than the primitive allows (AES-GCM: 2^36 - 32 bytes of plaintext
    /// per nonce; HKDF-SHA256: 255 * 32 bytes of output). This is caller misuse.
    #[error("input exceeds the primitive's length limit")]
    LengthLimit,
    /// An output buffer did not have the length the operation requires. This is caller misuse.
    #[error("output buffer length does not match the input length")]
    BufferLength,
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}
