//! RTP timestamps for one viewer's frames (90 kHz), from the frames' capture times.
//!
//! A joining viewer is sent the cached keyframe and every frame since at once (the
//! hub's backlog), so that it shows a picture at once. Were those frames stamped
//! with their capture times, the browser's jitter buffer would see frames arriving
//! up to a GOP late and hold every later frame back by as much to "smooth" them:
//! the GOP's age would be added to the delay for good. So backlog frames are
//! stamped one tick apart (they arrive together, and say so), the last of them
//! stands for "now", and live frames then advance by their capture-time
//! differences. A gap (frames skipped after the viewer fell behind) advances the
//! clock by the gap, as it should.
//!
//! Invariant: timestamps strictly increase, frame after frame.

/// The RTP clock rate of video.
pub const RATE_HZ: u64 = 90_000;

/// Stamps one viewer's frames, in order.
#[derive(Debug, Clone)]
pub struct RtpClock {
    /// The previous frame's timestamp (one tick before the start at first).
    last_ts: u64,
    /// The previous frame's capture time, µs; `None` before the first frame.
    last_captured: Option<u64>,
}

impl RtpClock {
    /// A clock whose first timestamp is `start` (random per viewer, RFC 3550 5.1).
    pub fn new(start: u32) -> Self {
        RtpClock {
            last_ts: u64::from(start).wrapping_sub(1),
            last_captured: None,
        }
    }

    /// The timestamp of the next frame, captured at `captured_us`; `backlog` when
    /// it is part of a joining viewer's backlog (sent at once, not as it was
    /// captured). The RTP header carries the low 32 bits.
    pub fn stamp(&mut self, captured_us: u64, backlog: bool) -> u64 {
        let step = match self.last_captured {
            Some(last) if !backlog => {
                // Capture times from a file or a restarted source may go
                // backwards: the timestamps never do.
                (captured_us.saturating_sub(last).saturating_mul(RATE_HZ) / 1_000_000).max(1)
            }
            _ => 1,
        };
        self.last_ts = self.last_ts.wrapping_add(step);
        self.last_captured = Some(captured_us);
        self.last_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_backlog_is_stamped_together_and_live_frames_follow_their_capture_times() {
        let mut clock = RtpClock::new(1000);
        // A GOP of four frames captured 33 ms apart, sent at once.
        let backlog: Vec<u64> = (0..4)
            .map(|i| clock.stamp(10_000_000 + i * 33_333, true))
            .collect();
        assert_eq!(backlog, [1000, 1001, 1002, 1003]);
        // The next live frame is 33.333 ms after the last backlog frame: 3000 ticks.
        assert_eq!(clock.stamp(10_000_000 + 4 * 33_333, false), 1003 + 2999);
        // Frames skipped (the viewer fell behind): the gap shows.
        assert_eq!(
            clock.stamp(10_000_000 + 4 * 33_333 + 1_000_000, false),
            1003 + 2999 + 90_000
        );
    }

    #[test]
    fn a_first_live_frame_starts_the_clock() {
        let mut clock = RtpClock::new(7);
        assert_eq!(clock.stamp(5_000_000, false), 7);
        assert_eq!(clock.stamp(5_040_000, false), 7 + 3600);
    }

    proptest! {
        #[test]
        fn timestamps_always_increase(
            start in any::<u32>(),
            // Capture times within 30 years of the epoch.
            frames in proptest::collection::vec((0u64..1_000_000_000_000_000, any::<bool>()), 1..100),
        ) {
            let mut clock = RtpClock::new(start);
            let mut last = None;
            for (captured, backlog) in frames {
                let ts = clock.stamp(captured, backlog);
                if let Some(last) = last {
                    prop_assert!(ts > last);
                }
                last = Some(ts);
            }
        }
    }
}
