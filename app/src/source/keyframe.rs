//! Keyframes on request for the sources whose H.264 comes from a V4L2 encoder:
//! the legacy camera's GPU encoder (bcm2835-v4l2) and a webcam's own H.264
//! (uvcvideo), both set on the capture node, and the Pi's memory-to-memory encoder
//! (bcm2835-codec) behind a raw webcam. Each takes
//! `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`, a button control, when its driver lists
//! it: the next coded picture is then an IDR picture (with SPS/PPS, which these
//! sources always ask the encoder to repeat, and which the hub puts in front of
//! every keyframe anyway).
//!
//! A viewer's request reaches the source through [`Sink::keyframe_requested`]
//! (already limited by the hub to one a second). Setting the control is one ioctl
//! between two pictures, never a wait; a driver that refuses it costs a log line,
//! never the video: [`ForcedKeyframes`] logs the first failure and then at most one
//! line a minute with the count.
//!
//! [`Sink::keyframe_requested`]: super::Sink::keyframe_requested

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::v4l2::{sys, ControlInfo};

/// At most one warning about a failing control per this long.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Whether a node whose controls are `controls` can make a keyframe on request:
/// it lists `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME` and it is writable. Logs, for
/// the source `source_name`, what that means for viewers.
pub fn can_force(source_name: &'static str, controls: &[ControlInfo]) -> bool {
    let control = controls
        .iter()
        .find(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME);
    let usable = control.is_some_and(ControlInfo::is_writable);
    if usable {
        tracing::debug!(
            source = source_name,
            "keyframes on request: V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME"
        );
    } else {
        tracing::info!(
            source = source_name,
            "the camera's driver has no usable Force Key Frame control: a viewer that \
             asks for a keyframe waits for the next one"
        );
    }
    usable
}

/// Counts keyframes forced on a V4L2 encoder and logs failures without flooding.
#[derive(Debug)]
pub struct ForcedKeyframes {
    source_name: &'static str,
    /// Controls set.
    forced: u64,
    /// Controls the driver refused.
    failed: u64,
    /// Failures since the last warning.
    unreported: u64,
    last_warning: Option<Instant>,
}

impl ForcedKeyframes {
    /// For the source `source_name`.
    pub fn new(source_name: &'static str) -> Self {
        ForcedKeyframes {
            source_name,
            forced: 0,
            failed: 0,
            unreported: 0,
            last_warning: None,
        }
    }

    /// Records what setting the control once gave: a failure is logged the first
    /// time, then at most once per [`WARNING_INTERVAL`] with how many failed since.
    pub fn record<E: Display>(&mut self, result: Result<(), E>) {
        self.record_at(result, Instant::now());
    }

    fn record_at<E: Display>(&mut self, result: Result<(), E>, now: Instant) {
        match result {
            Ok(()) => {
                self.forced += 1;
                tracing::debug!(
                    source = self.source_name,
                    forced = self.forced,
                    "keyframe requested from the encoder"
                );
            }
            Err(error) => {
                self.failed += 1;
                self.unreported += 1;
                let due = self
                    .last_warning
                    .is_none_or(|t| now.duration_since(t) >= WARNING_INTERVAL);
                if due {
                    tracing::warn!(
                        source = self.source_name,
                        %error,
                        failed = self.unreported,
                        "cannot ask the encoder for a keyframe (viewers wait for the next one)"
                    );
                    self.last_warning = Some(now);
                    self.unreported = 0;
                }
            }
        }
    }

    /// Keyframes asked of the encoder so far.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// Requests the encoder refused so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Whether a failure was warned about yet.
    #[cfg(test)]
    fn warned(&self) -> bool {
        self.last_warning.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_warned_about_once_a_minute_at_most() {
        let mut keyframes = ForcedKeyframes::new("test");
        let t0 = Instant::now();
        keyframes.record_at(Ok::<(), String>(()), t0);
        assert!(!keyframes.warned());
        keyframes.record_at(Err("EINVAL"), t0);
        assert_eq!(keyframes.last_warning, Some(t0));
        for s in 1..60 {
            keyframes.record_at(Err("EINVAL"), t0 + Duration::from_secs(s));
        }
        assert_eq!(
            keyframes.last_warning,
            Some(t0),
            "no second warning within a minute"
        );
        assert_eq!(keyframes.unreported, 59);
        let later = t0 + WARNING_INTERVAL;
        keyframes.record_at(Err("EINVAL"), later);
        assert_eq!(keyframes.last_warning, Some(later));
        assert_eq!(keyframes.unreported, 0);
        assert_eq!((keyframes.forced(), keyframes.failed()), (1, 61));
    }

    #[test]
    fn only_a_writable_force_key_frame_control_counts() {
        let encoder = crate::v4l2::fake::encoder::description();
        assert!(can_force("test", &encoder.controls));
        let mut locked = encoder.controls.clone();
        for control in &mut locked {
            control.flags |= sys::V4L2_CTRL_FLAG_DISABLED;
        }
        assert!(!can_force("test", &locked));
        let camera = crate::v4l2::fake::camera::fixture("uvc-c920");
        assert!(!can_force("test", &camera.controls));
    }
}
