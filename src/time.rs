//! Time as an argument: the caller's monotonic clock, read by the caller
//!
//! The crate reads no clock. Every call that starts or checks a deadline takes `now`,
//! an [`Instant`] on a clock the caller chooses: the time since its program started,
//! say, or since the connection was accepted. Only differences between instants
//! matter, and they must come from one monotonic clock.
//!
//! ```
//! use std::time::Duration;
//! use wsgate::Instant;
//!
//! let origin = std::time::Instant::now();
//! let now = Instant::from_origin(origin.elapsed());
//! let deadline = now + Duration::from_secs(10);
//! // Turned back into the caller's clock to arm a timer:
//! let wake_at = origin + deadline.since_origin();
//! assert!(wake_at >= origin);
//! ```

use core::ops::Add;
use core::time::Duration;

/// A point in time: how long after the caller's chosen origin
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin itself
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `elapsed` after the origin
    pub const fn from_origin(elapsed: Duration) -> Self {
        Instant(elapsed)
    }

    /// How long after the origin this instant is
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this instant is; zero when it is not later
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the largest representable instant, which is never reached
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_order_and_add_without_overflow() {
        let a = Instant::from_origin(Duration::from_secs(5));
        let b = a + Duration::from_millis(1);
        assert!(b > a);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(1));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        let end = Instant::from_origin(Duration::MAX) + Duration::from_secs(1);
        assert_eq!(end.since_origin(), Duration::MAX);
    }
}
