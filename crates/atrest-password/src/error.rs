//! The errors of configuration (caller misuse) and of hash/verify (input and stored data).

use core::fmt;

/// A limit a stored hash (or a policy) can exceed. Named in [`Error::ExceedsCap`] and
/// [`ConfigError::AboveCap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cap {
    /// Memory: Argon2 `m` (KiB), or scrypt's `128 * r * (N + p)` bytes.
    Memory,
    /// Argon2 passes (`t`).
    Iterations,
    /// Argon2 lanes (`p`), or scrypt's parallelism.
    Lanes,
    /// Salt length in bytes.
    SaltLength,
    /// Hash output length in bytes.
    OutputLength,
    /// bcrypt's cost (log2 of the rounds).
    BcryptCost,
    /// PBKDF2 iterations.
    Pbkdf2Iterations,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Iterations => "iterations",
            Self::Lanes => "lanes",
            Self::SaltLength => "salt length",
            Self::OutputLength => "output length",
            Self::BcryptCost => "bcrypt cost",
            Self::Pbkdf2Iterations => "PBKDF2 iterations",
        })
    }
}

/// Failures of [`Hasher`](crate::Hasher) operations.
///
/// A password that does not match is *not* an error: it is
/// [`Verification::Mismatch`](crate::Verification::Mismatch). Errors fall in three groups:
/// the caller's input ([`PasswordTooLong`](Self::PasswordTooLong)), the stored hash
/// ([`MalformedHash`](Self::MalformedHash), [`UnsupportedAlgorithm`](Self::UnsupportedAlgorithm),
/// [`ExceedsCap`](Self::ExceedsCap), [`UnknownPepper`](Self::UnknownPepper); see
/// [`Error::is_stored_data`]) and load ([`Busy`](Self::Busy)). No message ever contains a
/// password, a pepper or the stored hash itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The password is longer than the policy's
    /// [`max_password_len`](crate::Policy::max_password_len). Checked before any work.
    #[error("password longer than the policy allows ({max} bytes)")]
    PasswordTooLong {
        /// The policy's limit in bytes.
        max: usize,
    },
    /// The stored hash is not a well-formed PHC, bcrypt or Django hash string.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// The stored hash is well formed but names an algorithm (or Argon2 version) this crate does
    /// not verify.
    #[error("stored password hash uses an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The stored hash's parameters exceed the policy's caps. Refused before anything was
    /// allocated or computed: a corrupted or hostile row must not cost memory or time.
    #[error("stored password hash exceeds the policy cap on {0}")]
    ExceedsCap(Cap),
    /// The stored hash was made with a pepper (its `keyid`) this hasher does not hold.
    #[error("stored password hash names a pepper this hasher does not hold")]
    UnknownPepper,
    /// A `try_` call found the memory budget fully in use (or others already waiting).
    #[error("password hashing memory budget is exhausted; try again later")]
    Busy,
    /// The operating system's random source failed while generating a salt.
    #[error("the operating system's random number generator failed")]
    Random,
    /// An async call's blocking task was cancelled because the runtime shut down.
    #[error("the password hashing task was cancelled")]
    Cancelled,
}

impl Error {
    /// Whether the error was caused by the stored hash (corrupted, hostile or from an unknown
    /// configuration) rather than by the caller's input or by load.
    pub fn is_stored_data(&self) -> bool {
        matches!(
            self,
            Self::MalformedHash
                | Self::UnsupportedAlgorithm
                | Self::ExceedsCap(_)
                | Self::UnknownPepper
        )
    }
}

/// Caller misuse: invalid policy, pepper or hasher configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Argon2 parameters outside RFC 9106's ranges: `t >= 1`, `1 <= p <= 2^24 - 1`,
    /// `m >= 8 * p` KiB.
    #[error("Argon2 parameters out of range (need t >= 1, 1 <= p < 2^24, m >= 8p KiB)")]
    Argon2Params,
    /// Salt length outside 16..=48 bytes (48 is the PHC string format's maximum).
    #[error("salt length must be 16 to 48 bytes")]
    SaltLength,
    /// Output length outside 16..=64 bytes (64 is the PHC string format's maximum).
    #[error("hash output length must be 16 to 64 bytes")]
    OutputLength,
    /// A policy parameter is above the policy's own cap for stored hashes, so hashes made
    /// under the policy would be refused by it.
    #[error("policy parameter above its own cap on {0}")]
    AboveCap(Cap),
    /// The password length limit is zero.
    #[error("the password length limit must be at least 1 byte")]
    PasswordLimit,
    /// The memory budget is smaller than one hash at the policy's memory cost.
    #[error("memory budget smaller than one hash at the policy's memory cost")]
    Budget,
    /// A pepper id is empty or longer than 8 bytes (Argon2's `keyid` limit).
    #[error("pepper id must be 1 to 8 bytes")]
    PepperId,
    /// A pepper is shorter than 16 or longer than 1024 bytes.
    #[error("pepper must be 16 to 1024 bytes")]
    PepperLength,
    /// Two peppers share an id.
    #[error("two peppers share an id")]
    DuplicatePepperId,
    /// The calibration target is zero.
    #[error("calibration target must be positive")]
    CalibrationTarget,
    /// The operating system's random source failed (calibration hashes a random password).
    #[error("the operating system's random number generator failed")]
    Random,
}
