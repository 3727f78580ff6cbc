//! Whole-second timestamps: the keyring never reads the clock itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time in whole seconds since the Unix epoch (UTC).
///
/// Every keyring operation that depends on time takes one as `now`, so tests and replays are
/// deterministic. Convert from [`SystemTime`] with `Timestamp::from` (instants before 1970
/// clamp to 0, sub-second parts are dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// A timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_secs(self) -> u64 {
        self.0
    }

    /// `self + duration` (whole seconds), saturating at the far future.
    pub const fn saturating_add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration.as_secs()))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Self(
            time.duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        )
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        UNIX_EPOCH + Duration::from_secs(time.0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_arithmetic() {
        let t = Timestamp::from(UNIX_EPOCH + Duration::from_millis(5_999));
        assert_eq!(t, Timestamp::from_unix_secs(5));
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)),
            Timestamp::EPOCH
        );
        assert_eq!(
            SystemTime::from(t),
            UNIX_EPOCH + Duration::from_secs(5),
            "round trip drops sub-seconds only"
        );
        assert_eq!(
            Timestamp::from_unix_secs(u64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp::from_unix_secs(u64::MAX)
        );
        assert_eq!(
            t.saturating_since(Timestamp::from_unix_secs(2)),
            Duration::from_secs(3)
        );
        assert_eq!(Timestamp::EPOCH.saturating_since(t), Duration::ZERO);
    }
}
