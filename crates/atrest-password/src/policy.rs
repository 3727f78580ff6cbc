//! Hashing policy: the Argon2id parameters new hashes get, and the caps stored hashes must obey.

use crate::{Cap, ConfigError};

/// Argon2id parameters for new hashes, plus caps on what a stored hash may demand.
///
/// Two presets: [`Policy::owasp`] (the default) and [`Policy::rfc9106_second`]; anything else
/// through [`Policy::builder`], which validates.
///
/// The caps bound the cost of *verifying*: a stored hash whose parameters exceed any of them is
/// refused with [`Error::ExceedsCap`](crate::Error::ExceedsCap) before anything is allocated.
/// Caps must be at least the policy's own parameters; defaults leave room to strengthen the
/// policy later without touching the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) lanes: u32,
    pub(crate) salt_len: usize,
    pub(crate) output_len: usize,
    pub(crate) max_password_len: usize,
    pub(crate) max_memory_kib: u32,
    pub(crate) max_iterations: u32,
    pub(crate) max_lanes: u32,
    pub(crate) max_salt_len: usize,
    pub(crate) max_output_len: usize,
    pub(crate) max_bcrypt_cost: u32,
    pub(crate) max_pbkdf2_iterations: u32,
}

/// Argon2's lower bound on memory per lane (two blocks per sync point, four sync points).
const MIN_KIB_PER_LANE: u32 = 8;
/// RFC 9106 §3.1: `p` is at most `2^24 - 1`.
const MAX_LANES: u32 = 0x00FF_FFFF;
/// The PHC string format's limits (the `phc` crate's `Salt::MAX_LENGTH` / `Output::MAX_LENGTH`).
const PHC_MAX_SALT: usize = 48;
const PHC_MAX_OUTPUT: usize = 64;

impl Policy {
    /// OWASP's minimum for Argon2id (m = 19456 KiB, t = 2, p = 1), 16-byte salt, 32-byte hash.
    /// See the [OWASP Password Storage Cheat
    /// Sheet](https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id).
    pub const fn owasp() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            lanes: 1,
            salt_len: 16,
            output_len: 32,
            max_password_len: 1024,
            max_memory_kib: 256 * 1024,
            max_iterations: 16,
            max_lanes: 16,
            max_salt_len: PHC_MAX_SALT,
            max_output_len: PHC_MAX_OUTPUT,
            max_bcrypt_cost: 16,
            max_pbkdf2_iterations: 2_000_000,
        }
    }

    /// RFC 9106's second recommended option (m = 64 MiB, t = 3, p = 4), for machines with less
    /// memory than the first (2 GiB) needs. See [RFC 9106 §4](https://www.rfc-editor.org/rfc/rfc9106#section-4).
    pub const fn rfc9106_second() -> Self {
        let mut policy = Self::owasp();
        policy.memory_kib = 64 * 1024;
        policy.iterations = 3;
        policy.lanes = 4;
        policy
    }

    /// A builder starting from [`Policy::owasp`].
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder(Self::owasp())
    }

    /// A builder starting from this policy.
    pub fn to_builder(&self) -> PolicyBuilder {
        PolicyBuilder(self.clone())
    }

    /// Argon2 memory cost `m` in KiB.
    pub const fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Argon2 passes `t`.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Argon2 lanes `p`.
    pub const fn lanes(&self) -> u32 {
        self.lanes
    }

    /// Salt length of new hashes in bytes.
    pub const fn salt_len(&self) -> usize {
        self.salt_len
    }

    /// Output length of new hashes in bytes.
    pub const fn output_len(&self) -> usize {
        self.output_len
    }

    /// Longest password accepted, in bytes.
    pub const fn max_password_len(&self) -> usize {
        self.max_password_len
    }

    /// Memory cap for stored hashes in KiB (Argon2 `m`; scrypt's total memory).
    pub const fn max_memory_kib(&self) -> u32 {
        self.max_memory_kib
    }

    /// Whether `other` is at least as strong as this policy in every parameter that costs an
    /// attacker: memory, passes, salt and output length. Lanes are not compared: at equal memory
    /// they change the defender's parallelism, not the attacker's cost.
    pub const fn is_met_by(&self, other: &Self) -> bool {
        other.memory_kib >= self.memory_kib
            && other.iterations >= self.iterations
            && other.salt_len >= self.salt_len
            && other.output_len >= self.output_len
    }

    /// Memory one hash at this policy needs, in bytes.
    pub const fn memory_bytes(&self) -> u64 {
        self.memory_kib as u64 * 1024
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.iterations == 0
            || self.lanes == 0
            || self.lanes > MAX_LANES
            || self.memory_kib < MIN_KIB_PER_LANE.saturating_mul(self.lanes)
        {
            return Err(ConfigError::Argon2Params);
        }
        if !(16..=PHC_MAX_SALT).contains(&self.salt_len) {
            return Err(ConfigError::SaltLength);
        }
        if !(16..=PHC_MAX_OUTPUT).contains(&self.output_len) {
            return Err(ConfigError::OutputLength);
        }
        if self.max_password_len == 0 {
            return Err(ConfigError::PasswordLimit);
        }
        let caps = [
            (self.memory_kib > self.max_memory_kib, Cap::Memory),
            (self.iterations > self.max_iterations, Cap::Iterations),
            (self.lanes > self.max_lanes, Cap::Lanes),
            (self.salt_len > self.max_salt_len, Cap::SaltLength),
            (self.output_len > self.max_output_len, Cap::OutputLength),
        ];
        match caps.iter().find(|(exceeded, _)| *exceeded) {
            Some((_, cap)) => Err(ConfigError::AboveCap(*cap)),
            None => Ok(()),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::owasp()
    }
}

/// Builds a custom [`Policy`]; [`build`](Self::build) validates it.
///
/// ```
/// use atrest_password::Policy;
///
/// let policy = Policy::builder().memory_kib(47_104).iterations(1).build()?;
/// assert_eq!((policy.memory_kib(), policy.iterations(), policy.lanes()), (47_104, 1, 1));
/// # Ok::<(), atrest_password::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder(Policy);

impl PolicyBuilder {
    /// Argon2 memory cost `m` in KiB (at least `8 * lanes`).
    pub fn memory_kib(mut self, kib: u32) -> Self {
        self.0.memory_kib = kib;
        self
    }

    /// Argon2 passes `t` (at least 1).
    pub fn iterations(mut self, t: u32) -> Self {
        self.0.iterations = t;
        self
    }

    /// Argon2 lanes `p` (1 to 2^24 - 1).
    pub fn lanes(mut self, p: u32) -> Self {
        self.0.lanes = p;
        self
    }

    /// Salt length of new hashes, 16 to 48 bytes.
    pub fn salt_len(mut self, bytes: usize) -> Self {
        self.0.salt_len = bytes;
        self
    }

    /// Output length of new hashes, 16 to 64 bytes.
    pub fn output_len(mut self, bytes: usize) -> Self {
        self.0.output_len = bytes;
        self
    }

    /// Longest password accepted, in bytes (default 1024).
    pub fn max_password_len(mut self, bytes: usize) -> Self {
        self.0.max_password_len = bytes;
        self
    }

    /// Cap on a stored hash's memory in KiB (default 256 MiB).
    pub fn max_memory_kib(mut self, kib: u32) -> Self {
        self.0.max_memory_kib = kib;
        self
    }

    /// Cap on a stored Argon2 hash's passes (default 16).
    pub fn max_iterations(mut self, t: u32) -> Self {
        self.0.max_iterations = t;
        self
    }

    /// Cap on a stored hash's lanes / scrypt parallelism (default 16).
    pub fn max_lanes(mut self, p: u32) -> Self {
        self.0.max_lanes = p;
        self
    }

    /// Cap on a stored hash's salt length in bytes (default 48).
    pub fn max_salt_len(mut self, bytes: usize) -> Self {
        self.0.max_salt_len = bytes;
        self
    }

    /// Cap on a stored hash's output length in bytes (default 64).
    pub fn max_output_len(mut self, bytes: usize) -> Self {
        self.0.max_output_len = bytes;
        self
    }

    /// Cap on a stored bcrypt hash's cost (default 16, about 4 s of CPU).
    pub fn max_bcrypt_cost(mut self, cost: u32) -> Self {
        self.0.max_bcrypt_cost = cost;
        self
    }

    /// Cap on a stored PBKDF2 hash's iterations (default 2 000 000; Django 5.2 uses 1 000 000).
    pub fn max_pbkdf2_iterations(mut self, iterations: u32) -> Self {
        self.0.max_pbkdf2_iterations = iterations;
        self
    }

    /// Validates and returns the policy.
    ///
    /// # Errors
    /// [`ConfigError::Argon2Params`], [`ConfigError::SaltLength`],
    /// [`ConfigError::OutputLength`], [`ConfigError::PasswordLimit`], or
    /// [`ConfigError::AboveCap`] when a parameter is above its own cap.
    pub fn build(self) -> Result<Policy, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_as_published() {
        let owasp = Policy::owasp();
        assert_eq!(owasp.validate(), Ok(()));
        assert_eq!(
            (owasp.memory_kib(), owasp.iterations(), owasp.lanes()),
            (19_456, 2, 1)
        );
        let rfc = Policy::rfc9106_second();
        assert_eq!(rfc.validate(), Ok(()));
        assert_eq!(
            (rfc.memory_kib(), rfc.iterations(), rfc.lanes()),
            (65_536, 3, 4)
        );
        assert_eq!(Policy::default(), owasp);
        assert!(owasp.is_met_by(&rfc));
        assert!(!rfc.is_met_by(&owasp));
    }

    #[test]
    fn builder_rejects_invalid_parameters() {
        let b = Policy::builder;
        assert_eq!(b().iterations(0).build(), Err(ConfigError::Argon2Params));
        assert_eq!(b().lanes(0).build(), Err(ConfigError::Argon2Params));
        assert_eq!(b().lanes(1 << 24).build(), Err(ConfigError::Argon2Params));
        assert_eq!(
            b().memory_kib(31).lanes(4).build(),
            Err(ConfigError::Argon2Params)
        );
        assert!(b().memory_kib(32).lanes(4).build().is_ok());
        assert_eq!(b().salt_len(15).build(), Err(ConfigError::SaltLength));
        assert_eq!(b().salt_len(49).build(), Err(ConfigError::SaltLength));
        assert_eq!(b().output_len(15).build(), Err(ConfigError::OutputLength));
        assert_eq!(b().output_len(65).build(), Err(ConfigError::OutputLength));
        assert_eq!(
            b().max_password_len(0).build(),
            Err(ConfigError::PasswordLimit)
        );
        assert_eq!(
            b().max_memory_kib(1024).build(),
            Err(ConfigError::AboveCap(Cap::Memory))
        );
        assert_eq!(
            b().max_iterations(1).build(),
            Err(ConfigError::AboveCap(Cap::Iterations))
        );
        assert_eq!(
            b().lanes(4).memory_kib(65_536).max_lanes(2).build(),
            Err(ConfigError::AboveCap(Cap::Lanes))
        );
        assert_eq!(
            b().max_salt_len(8).build(),
            Err(ConfigError::AboveCap(Cap::SaltLength))
        );
        assert_eq!(
            b().max_output_len(16).build(),
            Err(ConfigError::AboveCap(Cap::OutputLength))
        );
    }
}
