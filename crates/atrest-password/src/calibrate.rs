//! Calibration: the parameters that take about a target duration on this machine, never below
//! a floor policy.

use core::fmt;
use std::time::{Duration, Instant};

use crate::stored::{Argon2Hash, argon2_into};
use crate::{ConfigError, Policy};

/// What [`calibrate`] picked and what it measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calibration {
    /// The chosen policy: the floor with memory and passes raised.
    pub policy: Policy,
    /// One hash at the chosen parameters, as last measured (the faster of two runs).
    pub measured: Duration,
    /// The requested duration.
    pub target: Duration,
    /// Whether the floor alone already takes longer than the target (nothing was raised).
    pub floor_exceeds_target: bool,
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.policy;
        write!(
            f,
            "Argon2id m={} KiB, t={}, p={}: {:.0?} per hash (target {:.0?}{})",
            p.memory_kib(),
            p.iterations(),
            p.lanes(),
            self.measured,
            self.target,
            if self.floor_exceeds_target {
                "; the floor alone exceeds it"
            } else {
                ""
            },
        )
    }
}

/// Picks Argon2id parameters that take about `target` per hash on this machine, never weaker
/// than `floor` (e.g. `Policy::owasp()`, "at least OWASP, about 250 ms").
///
/// Memory is raised first, up to `max_memory_kib` (clamped to the floor's memory and its cap;
/// pass the floor's own memory to keep it), then passes, up to the floor's iteration cap.
/// Lanes, salt and output lengths stay as in the floor. Runs a handful of hashes; expect it to
/// take about ten times `target`. Run it at deployment time on the production hardware, not on
/// every start: the chosen policy is what you configure.
///
/// # Errors
/// [`ConfigError::CalibrationTarget`] for a zero target; [`ConfigError::Random`].
pub fn calibrate(
    floor: &Policy,
    target: Duration,
    max_memory_kib: u32,
) -> Result<Calibration, ConfigError> {
    if target.is_zero() {
        return Err(ConfigError::CalibrationTarget);
    }
    let ceiling = max_memory_kib.clamp(floor.memory_kib, floor.max_memory_kib);
    let (mut m, mut t) = (floor.memory_kib, floor.iterations);
    let mut measured = measure(floor, m, t)?;
    let floor_exceeds_target = measured >= target;
    if !floor_exceeds_target && m < ceiling {
        m = scale(m, measured, target).clamp(floor.memory_kib, ceiling);
        measured = measure(floor, m, t)?;
    }
    if measured < target {
        let raised = scale(t, measured, target).clamp(floor.iterations, floor.max_iterations);
        if raised > t {
            t = raised;
            measured = measure(floor, m, t)?;
        }
    }
    let policy = floor
        .to_builder()
        .memory_kib(m)
        .iterations(t)
        .build()
        .map_err(|_| ConfigError::Argon2Params)?;
    Ok(Calibration {
        policy,
        measured,
        target,
        floor_exceeds_target,
    })
}

/// `value * target / measured`: Argon2's time is close to linear in `m * t`.
fn scale(value: u32, measured: Duration, target: Duration) -> u32 {
    let measured = measured.as_nanos().max(1);
    let scaled = u128::from(value) * target.as_nanos() / measured;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// The faster of two timed hashes (the first also warms the allocator and caches).
fn measure(floor: &Policy, m: u32, t: u32) -> Result<Duration, ConfigError> {
    let mut builder = argon2::ParamsBuilder::new();
    builder
        .m_cost(m)
        .t_cost(t)
        .p_cost(floor.lanes)
        .output_len(floor.output_len);
    let params = builder.build().map_err(|_| ConfigError::Argon2Params)?;
    let mut salt = vec![0; floor.salt_len];
    let mut password = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| ConfigError::Random)?;
    getrandom::fill(&mut password).map_err(|_| ConfigError::Random)?;
    let job = Argon2Hash {
        algorithm: argon2::Algorithm::Argon2id,
        version: argon2::Version::V0x13,
        params,
        salt,
        hash: Vec::new(),
    };
    let mut out = [0u8; 64];
    let mut best = Duration::MAX;
    for _ in 0..2 {
        let start = Instant::now();
        if !argon2_into(&job, &password, None, &mut out[..floor.output_len]) {
            return Err(ConfigError::Argon2Params);
        }
        best = best.min(start.elapsed());
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_memory_then_passes_toward_the_target_and_never_below_the_floor() {
        let floor = Policy::builder()
            .memory_kib(64)
            .iterations(1)
            .build()
            .expect("valid");
        let target = Duration::from_millis(20);
        let picked = calibrate(&floor, target, 4096).expect("calibrates");
        assert!(floor.is_met_by(&picked.policy), "{picked}");
        assert!(picked.policy.memory_kib() <= 4096, "{picked}");
        assert!(
            picked.policy.memory_kib() > 64,
            "memory raised first: {picked}"
        );
        assert!(!picked.floor_exceeds_target);
        assert!(picked.to_string().contains("Argon2id m="), "{picked}");
    }

    #[test]
    fn floor_slower_than_target_is_kept() {
        let floor = Policy::builder()
            .memory_kib(1024)
            .iterations(1)
            .build()
            .expect("valid");
        let picked = calibrate(&floor, Duration::from_nanos(1), 1 << 20).expect("calibrates");
        assert_eq!(picked.policy, floor);
        assert!(picked.floor_exceeds_target);
        assert_eq!(
            calibrate(&floor, Duration::ZERO, 1024),
            Err(ConfigError::CalibrationTarget)
        );
    }

    #[test]
    fn scale_is_proportional_and_saturates() {
        assert_eq!(
            scale(100, Duration::from_millis(10), Duration::from_millis(250)),
            2500
        );
        assert_eq!(
            scale(u32::MAX, Duration::from_nanos(1), Duration::from_secs(9)),
            u32::MAX
        );
    }
}
