//! The hasher: hash, verify with rehash-on-login, dummy verification, all under a memory budget.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::budget::{Budget, Permit};
use crate::stored::{Argon2Hash, LegacyAlgorithm, Stored, argon2_into, format_argon2};
use crate::{ConfigError, Error, PepperSet, Policy};

/// The outcome of [`Hasher::verify`]. A mismatch is an outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verification {
    /// The password matched and the stored hash is up to date.
    Match,
    /// The password matched; the stored hash should be replaced by [`Hasher::hash`] of the same
    /// password, now, while the plaintext is at hand.
    MatchNeedsRehash(RehashReason),
    /// The password did not match.
    Mismatch,
}

impl Verification {
    /// Whether the password matched (with or without a rehash due).
    pub const fn is_match(&self) -> bool {
        !matches!(self, Self::Mismatch)
    }

    /// Whether the password matched and the stored hash should be replaced.
    pub const fn needs_rehash(&self) -> bool {
        matches!(self, Self::MatchNeedsRehash(_))
    }
}

/// Why a matching stored hash should be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RehashReason {
    /// The hash is not Argon2 (bcrypt, scrypt, PBKDF2): migrate it.
    Legacy(LegacyAlgorithm),
    /// Argon2i, Argon2d, or Argon2 version 0x10.
    OutdatedArgon2,
    /// Made with a pepper that is no longer the current one.
    OldPepper,
    /// Made without a pepper, and the hasher now has one.
    Unpeppered,
    /// Memory, passes, salt or output length below the policy. (Stronger hashes are kept.)
    WeakerParameters,
}

/// Hashes and verifies passwords under a [`Policy`], optional [`PepperSet`] and a memory
/// budget. Cheap to clone (shared state); share one per process.
///
/// # Memory budget
/// Every hash or verification reserves memory before it starts: the policy's memory cost, or
/// more when a stored hash needs more (an op larger than the whole budget takes all of it and
/// runs alone). So at most [`max_concurrent`](Self::max_concurrent) = budget ÷ policy memory
/// run at once. Sync calls block the thread until memory is free (first come, first served);
/// `try_` variants return [`Error::Busy`] at once; `*_async` variants (feature `tokio`) wait
/// without blocking and compute on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policy: Policy,
    peppers: Option<PepperSet>,
    budget: Budget,
    capacity_kib: u64,
    dummy: String,
    #[cfg(test)]
    probe: tests::Probe,
}

/// Configures a [`Hasher`].
#[derive(Debug)]
#[must_use]
pub struct HasherBuilder {
    policy: Policy,
    peppers: Option<PepperSet>,
    budget_bytes: Option<u64>,
}

impl HasherBuilder {
    /// Peppers: the current one hashes, all of them verify.
    pub fn peppers(mut self, peppers: PepperSet) -> Self {
        self.peppers = Some(peppers);
        self
    }

    /// Memory budget in bytes for all concurrent hash and verify calls together. Default: one
    /// hash per available CPU core.
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.budget_bytes = Some(bytes);
        self
    }

    /// Builds the hasher.
    ///
    /// # Errors
    /// [`ConfigError::Budget`] if the budget cannot hold one hash at the policy's memory cost.
    pub fn build(self) -> Result<Hasher, ConfigError> {
        let per_hash = u64::from(self.policy.memory_kib);
        let capacity_kib = match self.budget_bytes {
            Some(bytes) => bytes / 1024,
            None => {
                let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
                per_hash.saturating_mul(u64::try_from(cores).unwrap_or(u64::MAX))
            }
        };
        if capacity_kib < per_hash {
            return Err(ConfigError::Budget);
        }
        // The dummy hash only needs the policy's cost. Its output is a constant no password is
        // known to produce, and dummy verification reports a mismatch whatever it computes.
        let keyid = self.peppers.as_ref().map(PepperSet::current_id);
        let policy = &self.policy;
        let dummy = format_argon2(
            policy.memory_kib,
            policy.iterations,
            policy.lanes,
            keyid,
            &vec![0xA5; policy.salt_len],
            &vec![0x5A; policy.output_len],
        );
        Ok(Hasher {
            inner: Arc::new(Inner {
                policy: self.policy,
                peppers: self.peppers,
                budget: Budget::new(capacity_kib),
                capacity_kib,
                dummy,
                #[cfg(test)]
                probe: tests::Probe::default(),
            }),
        })
    }
}

/// The pepper a stored Argon2 hash needs, and why it should be replaced.
struct Assessment {
    pepper_id: Option<Box<[u8]>>,
    rehash: Option<RehashReason>,
}

/// A parsed, cap-checked verification, ready to run.
#[derive(Debug)]
struct Job {
    stored: Stored,
    pepper_id: Option<Box<[u8]>>,
    rehash: Option<RehashReason>,
    dummy: bool,
}

impl Hasher {
    /// A hasher for `policy` with no pepper and the default memory budget (one hash per core).
    pub fn new(policy: Policy) -> Self {
        Self::builder(policy)
            .build()
            .expect("the default budget holds at least one hash")
    }

    /// A builder for a hasher with peppers or an explicit memory budget.
    pub fn builder(policy: Policy) -> HasherBuilder {
        HasherBuilder {
            policy,
            peppers: None,
            budget_bytes: None,
        }
    }

    /// The policy new hashes follow.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// How many hashes at the policy's cost may run at once: budget ÷ per-hash memory.
    pub fn max_concurrent(&self) -> u64 {
        self.inner.capacity_kib / u64::from(self.inner.policy.memory_kib)
    }

    /// Hashes `password` with a fresh random salt into an Argon2id PHC string, peppered with the
    /// current pepper if there is one. Blocks until the memory budget has room.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`]; [`Error::Random`] if the OS random source fails.
    pub fn hash(&self, password: &[u8]) -> Result<String, Error> {
        let salt = self.prepare_hash(password)?;
        let _permit = self.acquire(u64::from(self.inner.policy.memory_kib));
        Ok(self.run_hash(&salt, password))
    }

    /// [`hash`](Self::hash), or [`Error::Busy`] at once if the memory budget is full.
    ///
    /// # Errors
    /// As [`hash`](Self::hash), plus [`Error::Busy`].
    pub fn try_hash(&self, password: &[u8]) -> Result<String, Error> {
        let salt = self.prepare_hash(password)?;
        let _permit = self.try_acquire(u64::from(self.inner.policy.memory_kib))?;
        Ok(self.run_hash(&salt, password))
    }

    /// Verifies `password` against a stored hash (Argon2 PHC, bcrypt, scrypt, PBKDF2-SHA256 in
    /// PHC, passlib or Django form), comparing in constant time. Blocks until the memory budget
    /// has room.
    ///
    /// The stored hash is parsed and checked against the policy's caps before anything is
    /// allocated; hostile parameters are an error, never an allocation.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`]; stored-data errors ([`Error::is_stored_data`]):
    /// [`Error::MalformedHash`], [`Error::UnsupportedAlgorithm`], [`Error::ExceedsCap`],
    /// [`Error::UnknownPepper`].
    pub fn verify(&self, stored: &str, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(stored, password, false)?;
        let _permit = self.acquire(job.stored.memory_kib());
        Ok(self.run_verify(&job, password))
    }

    /// [`verify`](Self::verify), or [`Error::Busy`] at once if the memory budget is full.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), plus [`Error::Busy`].
    pub fn try_verify(&self, stored: &str, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(stored, password, false)?;
        let _permit = self.try_acquire(job.stored.memory_kib())?;
        Ok(self.run_verify(&job, password))
    }

    /// Does the work of verifying against a current hash and reports
    /// [`Verification::Mismatch`]: call it when the user does not exist, so that "unknown user"
    /// costs what "wrong password" costs and login timing does not reveal which accounts exist.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`], exactly as [`verify`](Self::verify) would.
    pub fn dummy_verify(&self, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(&self.inner.dummy, password, true)?;
        let _permit = self.acquire(job.stored.memory_kib());
        Ok(self.run_verify(&job, password))
    }

    /// [`dummy_verify`](Self::dummy_verify), or [`Error::Busy`] at once if the budget is full.
    ///
    /// # Errors
    /// As [`dummy_verify`](Self::dummy_verify), plus [`Error::Busy`].
    pub fn try_dummy_verify(&self, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(&self.inner.dummy, password, true)?;
        let _permit = self.try_acquire(job.stored.memory_kib())?;
        Ok(self.run_verify(&job, password))
    }

    fn reservation(&self, need_kib: u64) -> u64 {
        need_kib.clamp(
            u64::from(self.inner.policy.memory_kib),
            self.inner.capacity_kib,
        )
    }

    fn acquire(&self, need_kib: u64) -> Permit {
        self.inner.budget.acquire(self.reservation(need_kib))
    }

    fn try_acquire(&self, need_kib: u64) -> Result<Permit, Error> {
        self.inner
            .budget
            .try_acquire(self.reservation(need_kib))
            .ok_or(Error::Busy)
    }

    fn check_password(&self, password: &[u8]) -> Result<(), Error> {
        let max = self.inner.policy.max_password_len;
        if password.len() > max {
            return Err(Error::PasswordTooLong { max });
        }
        Ok(())
    }

    fn prepare_hash(&self, password: &[u8]) -> Result<Vec<u8>, Error> {
        self.check_password(password)?;
        let mut salt = vec![0; self.inner.policy.salt_len];
        getrandom::fill(&mut salt).map_err(|_| Error::Random)?;
        Ok(salt)
    }

    fn run_hash(&self, salt: &[u8], password: &[u8]) -> String {
        let policy = &self.inner.policy;
        let current = self.inner.peppers.as_ref().map(PepperSet::current);
        let mut builder = argon2::ParamsBuilder::new();
        builder
            .m_cost(policy.memory_kib)
            .t_cost(policy.iterations)
            .p_cost(policy.lanes)
            .output_len(policy.output_len);
        let params = builder
            .build()
            .expect("Policy::build validated these parameters");
        let job = Argon2Hash {
            algorithm: argon2::Algorithm::Argon2id,
            version: argon2::Version::V0x13,
            params,
            salt: salt.to_vec(),
            hash: Vec::new(),
        };
        let mut out = Zeroizing::new([0u8; 64]);
        let out = &mut out[..policy.output_len];
        let computed =
            self.instrumented(|| argon2_into(&job, password, current.map(|(_, p)| p), out));
        assert!(
            computed,
            "validated parameters, salt >= 16 bytes and a capped password always hash"
        );
        format_argon2(
            policy.memory_kib,
            policy.iterations,
            policy.lanes,
            current.map(|(id, _)| id),
            salt,
            out,
        )
    }

    fn prepare_verify(&self, stored: &str, password: &[u8], dummy: bool) -> Result<Job, Error> {
        self.check_password(password)?;
        let policy = &self.inner.policy;
        let stored = Stored::parse(stored, policy)?;
        let Assessment { pepper_id, rehash } = match &stored {
            Stored::Argon2(hash) => self.argon2_rehash(hash)?,
            legacy => Assessment {
                pepper_id: None,
                rehash: legacy.legacy().map(RehashReason::Legacy),
            },
        };
        Ok(Job {
            stored,
            pepper_id,
            rehash,
            dummy,
        })
    }

    /// The pepper a stored Argon2 hash needs and whether it should be replaced.
    fn argon2_rehash(&self, hash: &Argon2Hash) -> Result<Assessment, Error> {
        let policy = &self.inner.policy;
        let keyid = hash.params.keyid();
        let (pepper_id, pepper_reason) = if keyid.is_empty() {
            (
                None,
                self.inner
                    .peppers
                    .as_ref()
                    .map(|_| RehashReason::Unpeppered),
            )
        } else {
            let peppers = self.inner.peppers.as_ref().ok_or(Error::UnknownPepper)?;
            let (_, current) = peppers.find(keyid).ok_or(Error::UnknownPepper)?;
            (
                Some(keyid.into()),
                (!current).then_some(RehashReason::OldPepper),
            )
        };
        let outdated =
            hash.algorithm != argon2::Algorithm::Argon2id || hash.version != argon2::Version::V0x13;
        let weaker = hash.params.m_cost() < policy.memory_kib
            || hash.params.t_cost() < policy.iterations
            || hash.salt.len() < policy.salt_len
            || hash.hash.len() < policy.output_len;
        let reason = if outdated {
            Some(RehashReason::OutdatedArgon2)
        } else {
            pepper_reason.or(weaker.then_some(RehashReason::WeakerParameters))
        };
        Ok(Assessment {
            pepper_id,
            rehash: reason,
        })
    }

    fn run_verify(&self, job: &Job, password: &[u8]) -> Verification {
        let pepper = job.pepper_id.as_deref().and_then(|id| {
            self.inner
                .peppers
                .as_ref()
                .and_then(|set| set.find(id))
                .map(|(pepper, _)| pepper)
        });
        let matched = self.instrumented(|| job.stored.matches(password, pepper));
        match (matched && !job.dummy, job.rehash) {
            (false, _) => Verification::Mismatch,
            (true, None) => Verification::Match,
            (true, Some(reason)) => Verification::MatchNeedsRehash(reason),
        }
    }

    #[cfg(not(test))]
    fn instrumented<R>(&self, work: impl FnOnce() -> R) -> R {
        work()
    }

    #[cfg(test)]
    fn instrumented<R>(&self, work: impl FnOnce() -> R) -> R {
        self.inner.probe.run(work)
    }
}

/// The async variants: they wait for memory without blocking the runtime's threads and compute
/// on tokio's blocking pool, so the runtime never stalls. Call them from within a tokio runtime.
#[cfg(feature = "tokio")]
impl Hasher {
    /// [`hash`](Self::hash) without blocking the calling task's thread.
    ///
    /// # Errors
    /// As [`hash`](Self::hash), plus [`Error::Cancelled`] if the runtime shuts down first.
    pub async fn hash_async(&self, password: &[u8]) -> Result<String, Error> {
        let salt = self.prepare_hash(password)?;
        let need = self.reservation(u64::from(self.inner.policy.memory_kib));
        let permit = self.inner.budget.acquire_async(need).await;
        let password = Zeroizing::new(password.to_vec());
        let this = self.clone();
        blocking(move || {
            let _permit = permit;
            this.run_hash(&salt, &password)
        })
        .await
    }

    /// [`verify`](Self::verify) without blocking the calling task's thread.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), plus [`Error::Cancelled`] if the runtime shuts down first.
    pub async fn verify_async(&self, stored: &str, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(stored, password, false)?;
        self.run_verify_async(job, password).await
    }

    /// [`dummy_verify`](Self::dummy_verify) without blocking the calling task's thread.
    ///
    /// # Errors
    /// As [`dummy_verify`](Self::dummy_verify), plus [`Error::Cancelled`].
    pub async fn dummy_verify_async(&self, password: &[u8]) -> Result<Verification, Error> {
        let job = self.prepare_verify(&self.inner.dummy, password, true)?;
        self.run_verify_async(job, password).await
    }

    async fn run_verify_async(&self, job: Job, password: &[u8]) -> Result<Verification, Error> {
        let permit = self
            .inner
            .budget
            .acquire_async(self.reservation(job.stored.memory_kib()))
            .await;
        let password = Zeroizing::new(password.to_vec());
        let this = self.clone();
        blocking(move || {
            let _permit = permit;
            this.run_verify(&job, &password)
        })
        .await
    }
}

#[cfg(feature = "tokio")]
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use super::*;
    use crate::{Cap, Pepper};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts computations in flight (inside the budget) and the most ever seen at once.
    #[derive(Debug, Default)]
    pub(super) struct Probe {
        in_flight: AtomicU64,
        max_seen: AtomicU64,
    }

    impl Probe {
        pub(super) fn run<R>(&self, work: impl FnOnce() -> R) -> R {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_seen.fetch_max(now, Ordering::SeqCst);
            let result = work();
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    /// Small parameters so the suite stays fast.
    pub(crate) fn small_policy() -> Policy {
        Policy::builder()
            .memory_kib(256)
            .iterations(2)
            .build()
            .expect("valid policy")
    }

    fn pepper(byte: u8) -> Pepper {
        Pepper::new(vec![byte; 32]).expect("32 bytes")
    }

    #[test]
    fn hash_then_verify() {
        let hasher = Hasher::new(small_policy());
        let stored = hasher.hash(b"correct horse").expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=256,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(
            hasher.verify(&stored, b"correct horse"),
            Ok(Verification::Match)
        );
        assert_eq!(
            hasher.verify(&stored, b"correct horsf"),
            Ok(Verification::Mismatch)
        );
        assert_ne!(
            hasher.hash(b"correct horse").expect("hash"),
            stored,
            "salts are random"
        );
    }

    #[test]
    fn weaker_stored_hash_needs_rehash_stronger_does_not() {
        let weak = Hasher::new(
            Policy::builder()
                .memory_kib(128)
                .iterations(1)
                .build()
                .expect("valid"),
        );
        let strong = Hasher::new(
            Policy::builder()
                .memory_kib(512)
                .iterations(3)
                .lanes(2)
                .build()
                .expect("valid"),
        );
        let hasher = Hasher::new(small_policy());
        let old = weak.hash(b"pw").expect("hash");
        assert_eq!(
            hasher.verify(&old, b"pw"),
            Ok(Verification::MatchNeedsRehash(
                RehashReason::WeakerParameters
            ))
        );
        assert_eq!(hasher.verify(&old, b"wrong"), Ok(Verification::Mismatch));
        let better = strong.hash(b"pw").expect("hash");
        assert_eq!(
            hasher.verify(&better, b"pw"),
            Ok(Verification::Match),
            "never downgrade"
        );
        let short_salt = Hasher::new(
            small_policy()
                .to_builder()
                .salt_len(16)
                .output_len(16)
                .build()
                .expect("valid"),
        );
        let long = Hasher::new(
            small_policy()
                .to_builder()
                .output_len(32)
                .build()
                .expect("valid"),
        );
        let h = short_salt.hash(b"pw").expect("hash");
        assert_eq!(
            long.verify(&h, b"pw"),
            Ok(Verification::MatchNeedsRehash(
                RehashReason::WeakerParameters
            ))
        );
    }

    #[test]
    fn outdated_argon2_variants_need_rehash() {
        let policy = small_policy();
        let hasher = Hasher::new(policy.clone());
        for (algorithm, version) in [
            (argon2::Algorithm::Argon2i, argon2::Version::V0x13),
            (argon2::Algorithm::Argon2d, argon2::Version::V0x13),
            (argon2::Algorithm::Argon2id, argon2::Version::V0x10),
        ] {
            let params = argon2::Params::new(256, 2, 1, Some(32)).expect("params");
            let phc = argon2::PasswordHasher::hash_password_with_salt(
                &argon2::Argon2::new(algorithm, version, params),
                b"pw",
                b"saltsaltsaltsalt",
            )
            .expect("hash")
            .to_string();
            assert_eq!(
                hasher.verify(&phc, b"pw"),
                Ok(Verification::MatchNeedsRehash(RehashReason::OutdatedArgon2)),
                "{phc}"
            );
            assert_eq!(hasher.verify(&phc, b"px"), Ok(Verification::Mismatch));
        }
    }

    #[test]
    fn pepper_rotation() {
        let old_set = PepperSet::new(b"v1", pepper(1)).expect("set");
        let new_set = PepperSet::new(b"v2", pepper(2))
            .and_then(|s| s.with_previous(b"v1", pepper(1)))
            .expect("set");
        let old = Hasher::builder(small_policy())
            .peppers(old_set)
            .build()
            .expect("hasher");
        let new = Hasher::builder(small_policy())
            .peppers(new_set)
            .build()
            .expect("hasher");
        let plain = Hasher::new(small_policy());

        let h1 = old.hash(b"pw").expect("hash");
        assert!(h1.contains(",keyid=djE$"), "{h1}");
        assert_eq!(
            new.verify(&h1, b"pw"),
            Ok(Verification::MatchNeedsRehash(RehashReason::OldPepper))
        );
        assert_eq!(new.verify(&h1, b"px"), Ok(Verification::Mismatch));
        let h2 = new.hash(b"pw").expect("hash");
        assert!(h2.contains(",keyid=djI$"), "{h2}");
        assert_eq!(new.verify(&h2, b"pw"), Ok(Verification::Match));
        assert_eq!(old.verify(&h2, b"pw"), Err(Error::UnknownPepper));
        assert_eq!(plain.verify(&h2, b"pw"), Err(Error::UnknownPepper));

        let h0 = plain.hash(b"pw").expect("hash");
        assert_eq!(
            new.verify(&h0, b"pw"),
            Ok(Verification::MatchNeedsRehash(RehashReason::Unpeppered))
        );

        // The pepper really is an input: same keyid, other bytes, no match.
        let impostor = Hasher::builder(small_policy())
            .peppers(PepperSet::new(b"v2", pepper(9)).expect("set"))
            .build()
            .expect("hasher");
        assert_eq!(impostor.verify(&h2, b"pw"), Ok(Verification::Mismatch));
    }

    #[test]
    fn password_length_is_capped_everywhere() {
        let policy = small_policy()
            .to_builder()
            .max_password_len(8)
            .build()
            .expect("valid");
        let hasher = Hasher::new(policy);
        let too_long = Err(Error::PasswordTooLong { max: 8 });
        assert_eq!(hasher.hash(b"123456789"), too_long.map(|()| String::new()));
        let stored = hasher.hash(b"12345678").expect("hash");
        assert_eq!(
            hasher.verify(&stored, b"123456789"),
            too_long.map(|()| Verification::Match)
        );
        assert_eq!(
            hasher.dummy_verify(b"123456789"),
            Err(Error::PasswordTooLong { max: 8 })
        );
    }

    #[test]
    fn hostile_stored_hash_is_refused_before_work() {
        let hasher = Hasher::new(small_policy());
        let hostile =
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert_eq!(
            hasher.verify(hostile, b"pw"),
            Err(Error::ExceedsCap(Cap::Memory))
        );
        assert_eq!(
            hasher.inner.probe.max_seen.load(Ordering::SeqCst),
            0,
            "nothing was computed"
        );
        assert!(
            hasher
                .verify(hostile, b"pw")
                .err()
                .is_some_and(|e| e.is_stored_data())
        );
    }

    #[test]
    fn dummy_verify_costs_a_policy_hash_and_never_matches() {
        let peppers = PepperSet::new(b"cur", pepper(3)).expect("set");
        let hasher = Hasher::builder(small_policy())
            .peppers(peppers)
            .build()
            .expect("hasher");
        let Ok(Stored::Argon2(dummy)) = Stored::parse(&hasher.inner.dummy, hasher.policy()) else {
            panic!("dummy must parse");
        };
        let p = &dummy.params;
        assert_eq!(
            (p.m_cost(), p.t_cost(), p.p_cost(), p.keyid()),
            (256, 2, 1, &b"cur"[..])
        );
        assert_eq!((dummy.salt.len(), dummy.hash.len()), (16, 32));
        assert_eq!(hasher.dummy_verify(b"anything"), Ok(Verification::Mismatch));
        assert_eq!(hasher.try_dummy_verify(b""), Ok(Verification::Mismatch));
        assert_eq!(
            hasher.inner.probe.max_seen.load(Ordering::SeqCst),
            1,
            "it did compute"
        );
    }

    #[test]
    fn budget_must_hold_one_hash() {
        let policy = small_policy();
        let err = Hasher::builder(policy.clone())
            .memory_budget(255 * 1024)
            .build()
            .err();
        assert_eq!(err, Some(ConfigError::Budget));
        let hasher = Hasher::builder(policy)
            .memory_budget(1024 * 1024 + 1023)
            .build()
            .expect("fits");
        assert_eq!(hasher.max_concurrent(), 4);
    }

    #[test]
    fn try_variants_report_busy() {
        let hasher = Hasher::builder(small_policy())
            .memory_budget(256 * 1024)
            .build()
            .expect("hasher");
        let stored = hasher.hash(b"pw").expect("hash");
        let held = hasher.try_acquire(256).expect("free");
        assert_eq!(hasher.try_verify(&stored, b"pw"), Err(Error::Busy));
        assert_eq!(hasher.try_hash(b"pw"), Err(Error::Busy));
        assert_eq!(hasher.try_dummy_verify(b"pw"), Err(Error::Busy));
        drop(held);
        assert_eq!(hasher.try_verify(&stored, b"pw"), Ok(Verification::Match));
    }

    /// 64 concurrent verifications; the number computing at once never exceeds budget ÷
    /// per-hash memory, and does reach it (so this test can fail).
    #[test]
    fn sixty_four_concurrent_verifications_stay_within_budget() {
        let policy = Policy::builder()
            .memory_kib(1024)
            .iterations(2)
            .build()
            .expect("valid");
        let hasher = Hasher::builder(policy)
            .memory_budget(3 * 1024 * 1024)
            .build()
            .expect("hasher");
        assert_eq!(hasher.max_concurrent(), 3);
        let stored = hasher.hash(b"pw").expect("hash");
        let barrier = std::sync::Barrier::new(64);
        std::thread::scope(|scope| {
            for i in 0..64 {
                let (hasher, stored, barrier) = (&hasher, &stored, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let password: &[u8] = if i % 2 == 0 { b"pw" } else { b"nope" };
                    let expected = if i % 2 == 0 {
                        Verification::Match
                    } else {
                        Verification::Mismatch
                    };
                    assert_eq!(hasher.verify(stored, password), Ok(expected));
                });
            }
        });
        let max_seen = hasher.inner.probe.max_seen.load(Ordering::SeqCst);
        assert_eq!(
            max_seen, 3,
            "max in flight must reach, and never exceed, the limit"
        );
        assert_eq!(hasher.inner.probe.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn stronger_stored_hash_reserves_more_of_the_budget() {
        let hasher = Hasher::builder(small_policy())
            .memory_budget(1024 * 1024)
            .build()
            .expect("hasher");
        let strong = Hasher::new(
            Policy::builder()
                .memory_kib(768)
                .iterations(2)
                .build()
                .expect("valid"),
        );
        let stored = strong.hash(b"pw").expect("hash");
        let held = hasher.try_acquire(512).expect("free");
        assert_eq!(
            hasher.try_verify(&stored, b"pw"),
            Err(Error::Busy),
            "needs 768 of 512 left"
        );
        drop(held);
        assert_eq!(hasher.try_verify(&stored, b"pw"), Ok(Verification::Match));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixty_four_concurrent_async_verifications_stay_within_budget() {
        let policy = Policy::builder()
            .memory_kib(1024)
            .iterations(2)
            .build()
            .expect("valid");
        let hasher = Hasher::builder(policy)
            .memory_budget(2 * 1024 * 1024)
            .build()
            .expect("hasher");
        let stored = hasher.hash_async(b"pw").await.expect("hash");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let (hasher, stored) = (hasher.clone(), stored.clone());
            tasks.spawn(async move {
                let password: &[u8] = if i % 2 == 0 { b"pw" } else { b"nope" };
                (i, hasher.verify_async(&stored, password).await)
            });
        }
        // The runtime stays responsive while 64 verifications queue for 2 slots.
        let tick =
            tokio::time::timeout(std::time::Duration::from_secs(5), tokio::task::yield_now()).await;
        assert!(tick.is_ok());
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.expect("task");
            let expected = if i % 2 == 0 {
                Verification::Match
            } else {
                Verification::Mismatch
            };
            assert_eq!(result, Ok(expected));
        }
        assert_eq!(hasher.inner.probe.max_seen.load(Ordering::SeqCst), 2);
        assert_eq!(
            hasher.dummy_verify_async(b"x").await,
            Ok(Verification::Mismatch)
        );
    }
}
