//! `test`: a live, moving test pattern encoded in-process with OpenH264.
//!
//! Needs no camera and no ffmpeg. Every frame is drawn (colour bars, a moving box,
//! the UTC wall clock and a frame counter; the colours are [`BARS`], [`BACKGROUND`],
//! [`BOX`] and [`TEXT_Y`], the geometry is described in `render.rs`), encoded to one
//! access unit (constrained baseline, no B-frames, one access unit out per picture
//! in) and written to the sink. Frames are paced against absolute deadlines at the
//! configured frame rate. Every `intra_period` frames the encoder makes an IDR
//! picture, and every IDR access unit carries the SPS and PPS in front of it. A
//! viewer's keyframe request ([`Sink::keyframe_requested`], asked once per picture)
//! makes the next picture an IDR picture, and the period counts from there.

mod font;
mod render;

use std::time::{Duration, Instant, SystemTime};

use super::{Sink, Source, SourceError};
use crate::encode::software::{SoftwareEncoder, SoftwareSettings};
use render::Renderer;
pub use render::{Ycbcr, BACKGROUND, BARS, BOX, TEXT_Y};

const NAME: &str = "test";
/// Longest single sleep, so `should_stop` is checked often.
const MAX_SLEEP: Duration = Duration::from_millis(50);
pub use crate::encode::software::{MAX_FRAMERATE, MAX_SIZE, MIN_SIZE};

/// What the test pattern renders and how it is encoded (see [`SoftwareSettings`]).
pub type TestPatternSettings = SoftwareSettings;

/// The built-in test pattern source.
pub struct TestPattern {
    settings: TestPatternSettings,
    renderer: Renderer,
}

impl std::fmt::Debug for TestPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPattern")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TestPattern {
    /// A test pattern with `settings`; fails when they are out of range.
    pub fn new(settings: TestPatternSettings) -> Result<Self, SourceError> {
        settings.validate().map_err(|reason| SourceError::Start {
            source_name: NAME,
            reason,
        })?;
        let info = format!(
            "{}x{} {} FPS {} KBIT/S",
            settings.width,
            settings.height,
            settings.framerate,
            settings.bitrate / 1000
        );
        let renderer = Renderer::new(settings.width as usize, settings.height as usize, info);
        Ok(TestPattern { settings, renderer })
    }

    fn encoder(&self) -> Result<SoftwareEncoder, SourceError> {
        SoftwareEncoder::new(self.settings.clone()).map_err(|reason| SourceError::Start {
            source_name: NAME,
            reason,
        })
    }
}

impl Source for TestPattern {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "test pattern {}x{} at {} fps, {} kbit/s",
            s.width,
            s.height,
            s.framerate,
            s.bitrate / 1000
        )
    }

    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let mut encoder = self.encoder()?;
        let mut pacer = Pacer::new(self.settings.framerate);
        let mut frame: u64 = 0;
        loop {
            if sink.should_stop() {
                return Ok(());
            }
            let due = pacer.next_due(Instant::now());
            if !wait_until(due, sink) {
                return Ok(());
            }
            let captured = SystemTime::now();
            self.renderer.render(frame, captured);
            if sink.keyframe_requested() {
                encoder.force_keyframe();
            }
            let out = encoder
                .encode(self.renderer.picture(), frame)
                .map_err(|reason| {
                    if frame == 0 {
                        SourceError::Start {
                            source_name: NAME,
                            reason,
                        }
                    } else {
                        SourceError::Failed {
                            source_name: NAME,
                            reason,
                        }
                    }
                })?;
            if !out.is_empty() {
                sink.write(out, true, captured);
            }
            frame += 1;
        }
    }
}

/// Frame deadlines at a fixed rate: frame `n` after the anchor is due at
/// `anchor + n / fps`, computed exactly so the rate never drifts. A caller more than
/// two frame periods late re-anchors at the present instead of bursting to catch up.
#[derive(Debug)]
struct Pacer {
    fps: u32,
    anchor: Option<Instant>,
    /// Frames handed out since the anchor.
    count: u64,
}

impl Pacer {
    fn new(fps: u32) -> Self {
        Pacer {
            fps: fps.max(1),
            anchor: None,
            count: 0,
        }
    }

    /// Time from the anchor to frame `n`.
    fn offset(&self, n: u64) -> Duration {
        let fps = u64::from(self.fps);
        Duration::from_secs(n / fps) + Duration::from_nanos((n % fps) * 1_000_000_000 / fps)
    }

    /// When the next frame is due, given that it is `now`.
    fn next_due(&mut self, now: Instant) -> Instant {
        let due = match self.anchor {
            Some(anchor) => anchor.checked_add(self.offset(self.count)).filter(|due| {
                due.checked_add(self.offset(2))
                    .is_some_and(|late| now <= late)
            }),
            None => None,
        };
        match due {
            Some(due) => {
                self.count += 1;
                due
            }
            None => {
                self.anchor = Some(now);
                self.count = 1;
                now
            }
        }
    }
}

/// Sleeps until `due` in slices of at most [`MAX_SLEEP`]; false when told to stop.
fn wait_until(due: Instant, sink: &dyn Sink) -> bool {
    loop {
        if sink.should_stop() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(MAX_SLEEP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::nal::START_CODE;

    fn settings(width: u32, height: u32) -> TestPatternSettings {
        TestPatternSettings {
            width,
            height,
            framerate: 30,
            bitrate: 1_000_000,
            intra_period: 10,
        }
    }

    #[test]
    fn pacer_deadlines_are_exact_multiples_of_the_period() {
        let t0 = Instant::now();
        let mut p = Pacer::new(30);
        assert_eq!(p.next_due(t0), t0);
        // On time (or early): deadlines follow the anchor, whatever `now` is.
        for n in 1..=90u64 {
            let now = t0 + Duration::from_millis(n * 33);
            let due = p.next_due(now);
            assert_eq!(
                due,
                t0 + Duration::from_nanos(n * 1_000_000_000 / 30),
                "{n}"
            );
        }
        // 3 s after t0 exactly, frame 91 is due at 3.0333 s: no drift.
        assert_eq!(p.offset(90), Duration::from_secs(3));
    }

    #[test]
    fn pacer_tolerates_small_lateness_without_reanchoring() {
        let t0 = Instant::now();
        let mut p = Pacer::new(25); // 40 ms
        p.next_due(t0);
        // 70 ms late for the frame due at 40 ms: less than two periods, keep the grid.
        let due = p.next_due(t0 + Duration::from_millis(110));
        assert_eq!(due, t0 + Duration::from_millis(40));
        let due = p.next_due(t0 + Duration::from_millis(111));
        assert_eq!(due, t0 + Duration::from_millis(80));
    }

    #[test]
    fn pacer_reanchors_when_more_than_two_periods_late() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10); // 100 ms
        p.next_due(t0);
        p.next_due(t0 + Duration::from_millis(100));
        // Frame 2 is due at 200 ms; at 401 ms we are more than 200 ms late.
        let late = t0 + Duration::from_millis(401);
        assert_eq!(p.next_due(late), late);
        assert_eq!(p.next_due(late), late + Duration::from_millis(100));
        assert_eq!(p.next_due(late), late + Duration::from_millis(200));
    }

    #[test]
    fn settings_are_validated() {
        assert!(settings(1280, 720).validate().is_ok());
        assert!(settings(16, 16).validate().is_ok());
        assert!(settings(3840, 2160).validate().is_ok());
        assert!(settings(2160, 3840).validate().is_ok());
        for (w, h) in [
            (15, 16),
            (17, 16),
            (14, 16),
            (16, 4098),
            (4096, 2160),
            (3840, 2162),
        ] {
            assert!(settings(w, h).validate().is_err(), "{w}x{h}");
        }
        let mut s = settings(320, 240);
        s.framerate = 0;
        assert!(s.validate().unwrap_err().contains("frame rate"));
        let mut s = settings(320, 240);
        s.intra_period = 0;
        assert!(s.validate().unwrap_err().contains("intra period"));
        let mut s = settings(320, 240);
        s.bitrate = u32::MAX;
        assert!(s.validate().unwrap_err().contains("bitrate"));
        let err = TestPattern::new(settings(15, 16)).unwrap_err();
        assert!(matches!(err, SourceError::Start { .. }), "{err}");
        assert!(err.to_string().contains("width 15"), "{err}");
    }

    #[test]
    fn describes_itself() {
        let mut s = settings(1280, 720);
        s.bitrate = 3_000_000;
        let p = TestPattern::new(s).unwrap();
        assert_eq!(p.describe(), "test pattern 1280x720 at 30 fps, 3000 kbit/s");
        assert_eq!(p.name(), "test");
    }

    fn nal_types(annex_b: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut i = 0;
        while i + 4 < annex_b.len() {
            if annex_b[i..i + 4] == START_CODE {
                types.push(annex_b[i + 4] & 0x1f);
                i += 4;
            } else {
                i += 1;
            }
        }
        types
    }

    #[test]
    fn encodes_idr_with_parameter_sets_every_intra_period() {
        for (w, h) in [(16, 16), (18, 30), (320, 240)] {
            let mut p = TestPattern::new(settings(w, h)).unwrap();
            let mut enc = p.encoder().unwrap();
            for frame in 0..25u64 {
                p.renderer.render(frame, SystemTime::now());
                let out = enc.encode(p.renderer.picture(), frame).unwrap();
                let types = nal_types(out);
                assert_eq!(out[..4], START_CODE);
                if frame % 10 == 0 {
                    assert_eq!(types[..2], [7, 8], "{w}x{h} frame {frame}: {types:?}");
                    assert!(types.contains(&5), "{w}x{h} frame {frame}: {types:?}");
                } else {
                    assert!(!types.contains(&5), "{w}x{h} frame {frame}: {types:?}");
                    assert!(types.contains(&1), "{w}x{h} frame {frame}: {types:?}");
                }
            }
        }
    }

    #[test]
    fn a_forced_keyframe_is_the_next_picture_and_restarts_the_period() {
        let mut p = TestPattern::new(settings(64, 48)).unwrap();
        let mut enc = p.encoder().unwrap();
        let mut idr = Vec::new();
        for frame in 0..30u64 {
            if frame == 4 || frame == 17 {
                enc.force_keyframe();
            }
            p.renderer.render(frame, SystemTime::now());
            let types = nal_types(enc.encode(p.renderer.picture(), frame).unwrap());
            if types.contains(&5) {
                assert_eq!(types[..2], [7, 8], "frame {frame}: {types:?}");
                idr.push(frame);
            }
        }
        // 0, then 4 on request, 14 (ten after it), 17 on request, 27.
        assert_eq!(idr, [0, 4, 14, 17, 27]);
    }

    /// A viewer's keyframe request, through a real hub and the supervisor's sink,
    /// makes the test pattern send an IDR picture within two pictures, long before
    /// its intra period would; one request makes one keyframe.
    #[tokio::test]
    async fn a_keyframe_request_through_the_hub_gets_a_keyframe_within_two_pictures() {
        use crate::hub::{Frame, Hub, HubLimits, Item, Transport, Viewer};
        use crate::source::supervisor::{spawn, SourcePlan, SupervisorSettings};
        use std::collections::VecDeque;

        async fn next_frame(viewer: &Viewer, items: &mut VecDeque<Item>) -> Frame {
            loop {
                while let Some(item) = items.pop_front() {
                    if let Item::Frame(frame) = item {
                        return frame;
                    }
                }
                let mut out = Vec::new();
                let got = tokio::time::timeout(Duration::from_secs(10), viewer.recv(&mut out, 64))
                    .await
                    .expect("a frame within 10 s");
                assert!(got, "the hub closed");
                items.extend(out);
            }
        }

        let hub = Hub::new(HubLimits::for_frame_rate(30.0, 4), None);
        let mut pattern = settings(64, 48);
        pattern.intra_period = 600; // 20 s at 30 fps: longer than the test
        let plan = SourcePlan {
            kind: "test".into(),
            description: "test pattern".into(),
            reason: None,
            factory: Box::new(move || {
                Ok(Box::new(TestPattern::new(pattern.clone())?) as Box<dyn Source>)
            }),
        };
        let handle = spawn(hub.clone(), plan, SupervisorSettings::default());
        let viewer = hub.subscribe(None, Transport::Internal).unwrap();
        let mut items = VecDeque::new();
        let mut seen = Vec::new();
        while seen.len() < 5 {
            seen.push(next_frame(&viewer, &mut items).await);
        }
        assert!(
            seen[0].keyframe && seen[0].seq == 0,
            "the stream starts with a keyframe"
        );
        assert!(
            seen[1..].iter().all(|f| !f.keyframe),
            "no keyframe before the request"
        );

        assert!(hub.request_keyframe());
        // Frames published so far came before the request or were being encoded
        // when it came (at most one): the next picture after those is the keyframe.
        let published = hub.snapshot().frames;
        let keyframe = loop {
            let frame = next_frame(&viewer, &mut items).await;
            if frame.keyframe {
                break frame;
            }
            assert!(
                frame.seq <= published + 2,
                "frame {} and still no keyframe ({published} published at the request)",
                frame.seq
            );
        };
        assert!(
            keyframe.seq <= published + 2,
            "{} vs {published}",
            keyframe.seq
        );
        // One request, one keyframe: the flag was taken, not left set.
        for _ in 0..10 {
            let frame = next_frame(&viewer, &mut items).await;
            assert!(!frame.keyframe, "frame {} is another keyframe", frame.seq);
        }
        let snapshot = hub.snapshot();
        assert_eq!(snapshot.keyframe_requests_forwarded, 1);
        drop(viewer);
        handle.stop(Duration::from_secs(5));
    }

    /// Render and encode cost per frame. Run with
    /// `cargo test --release --lib test_pattern::tests::speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; meaningful only in an optimised build"]
    fn speed() {
        for (w, h, bitrate) in [(1280, 720, 3_000_000), (1920, 1080, 5_000_000)] {
            let mut s = settings(w, h);
            s.bitrate = bitrate;
            s.intra_period = 60;
            let mut p = TestPattern::new(s).unwrap();
            let mut enc = p.encoder().unwrap();
            let frames = 300u64;
            let (mut render, mut encode) = (Duration::ZERO, Duration::ZERO);
            let mut bytes = 0;
            for frame in 0..frames {
                let t0 = Instant::now();
                p.renderer.render(frame, SystemTime::now());
                let t1 = Instant::now();
                bytes += enc.encode(p.renderer.picture(), frame).unwrap().len();
                encode += t1.elapsed();
                render += t1 - t0;
            }
            let ms = |d: Duration| d.as_secs_f64() * 1000.0 / frames as f64;
            println!(
                "{w}x{h}: render {:.2} ms/frame, encode {:.2} ms/frame, {:.0} kbit/s at 30 fps",
                ms(render),
                ms(encode),
                bytes as f64 * 8.0 * 30.0 / frames as f64 / 1000.0
            );
        }
    }
}
