//! The clock V4L2 stamps buffers with (`CLOCK_MONOTONIC`, time since boot), and
//! the conversion of such a stamp to the wall clock that viewers' latency figures
//! use.

use std::time::{Duration, SystemTime};

/// `CLOCK_MONOTONIC` now, as a duration since boot.
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Converts a buffer's `CLOCK_MONOTONIC` timestamp to the wall clock, given both
/// clocks' readings now. A zero timestamp, or one more than a minute away from
/// now (a driver that fills in something else), gives `now_system`.
pub fn monotonic_to_system(
    timestamp: Duration,
    now_monotonic: Duration,
    now_system: SystemTime,
) -> SystemTime {
    const PLAUSIBLE: Duration = Duration::from_secs(60);
    if timestamp.is_zero() {
        return now_system;
    }
    if timestamp <= now_monotonic {
        let age = now_monotonic - timestamp;
        if age > PLAUSIBLE {
            return now_system;
        }
        now_system.checked_sub(age).unwrap_or(now_system)
    } else {
        let ahead = timestamp - now_monotonic;
        if ahead > PLAUSIBLE {
            return now_system;
        }
        now_system.checked_add(ahead).unwrap_or(now_system)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_timestamps_become_wall_clock_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mono_now = Duration::from_secs(5_000);
        // Captured 40 ms ago.
        let ts = mono_now - Duration::from_millis(40);
        assert_eq!(
            monotonic_to_system(ts, mono_now, now),
            now - Duration::from_millis(40)
        );
        // A hair in the future (clocks read in the other order).
        assert_eq!(
            monotonic_to_system(mono_now + Duration::from_micros(5), mono_now, now),
            now + Duration::from_micros(5)
        );
        // Zero, and nonsense far away, fall back to now.
        assert_eq!(monotonic_to_system(Duration::ZERO, mono_now, now), now);
        assert_eq!(
            monotonic_to_system(Duration::from_secs(1), mono_now, now),
            now
        );
        assert_eq!(
            monotonic_to_system(Duration::from_secs(90_000), mono_now, now),
            now
        );
    }

    #[test]
    fn the_monotonic_clock_runs() {
        let a = monotonic_now();
        std::thread::sleep(Duration::from_millis(2));
        let b = monotonic_now();
        assert!(b > a && !a.is_zero());
    }
}
