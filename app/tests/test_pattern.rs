//! The `test` source end to end: run it in real time into a collecting sink, decode
//! what it wrote with ffmpeg (an independent decoder) and look at the pixels.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use streamer::source::test_pattern::{TestPattern, TestPatternSettings};
use streamer::source::{Sink, Source, SourceError};

/// The bars as the brief specifies them (BT.601 limited range), left to right.
const BARS: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];

struct Write {
    data: Vec<u8>,
    frame_end: bool,
    captured: SystemTime,
}

/// Keeps every write; asks to stop at `stop_at` or when `stop` is set.
struct Collect {
    writes: Vec<Write>,
    stop_at: Instant,
    stop: Arc<AtomicBool>,
}

impl Sink for Collect {
    fn write(&mut self, annex_b: &[u8], frame_end: bool, captured: SystemTime) {
        self.writes.push(Write {
            data: annex_b.to_vec(),
            frame_end,
            captured,
        });
    }

    fn should_stop(&self) -> bool {
        Instant::now() >= self.stop_at || self.stop.load(Ordering::SeqCst)
    }
}

fn settings(width: u32, height: u32, framerate: u32, bitrate: u32) -> TestPatternSettings {
    TestPatternSettings {
        width,
        height,
        framerate,
        bitrate,
        intra_period: 30,
    }
}

/// Real-time runs take turns, so they do not slow each other down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the pattern for `duration`; returns the writes and how long run() took.
fn run_for(settings: TestPatternSettings, duration: Duration) -> (Vec<Write>, Duration) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut source = TestPattern::new(settings).unwrap();
    let mut sink = Collect {
        writes: Vec::new(),
        stop_at: Instant::now() + duration,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let start = Instant::now();
    source.run(&mut sink).unwrap();
    (sink.writes, start.elapsed())
}

/// NAL unit types in Annex-B data, found by scanning for start codes.
fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            types.push(data[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("-version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} is needed as an independent decoder for this test: apt-get install ffmpeg"
    );
    Command::new(name)
}

/// Decodes an Annex-B file to I420 frames; fails on any decoder complaint.
fn decode(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = tool("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "ffmpeg reported errors: {errors}");
    let frame_size = width * height * 3 / 2;
    assert_eq!(out.stdout.len() % frame_size, 0, "partial frame decoded");
    out.stdout
        .chunks_exact(frame_size)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Width, height, profile and level as ffprobe sees the stream.
fn probe(path: &Path) -> (usize, usize, String, u32) {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,profile,level",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("ffprobe gave no {key}: {text}"))
            .to_string()
    };
    (
        field("width").parse().unwrap(),
        field("height").parse().unwrap(),
        field("profile"),
        field("level").parse().unwrap(),
    )
}

/// Mean Y, Cb, Cr over a 4x4 luma patch at (`x`, `y`) (both even) of an I420 frame.
fn colour_at(frame: &[u8], width: usize, height: usize, x: usize, y: usize) -> (f64, f64, f64) {
    let (cw, ch) = (width / 2, height / 2);
    let (mut sy, mut scb, mut scr) = (0.0, 0.0, 0.0);
    for dy in 0..4 {
        for dx in 0..4 {
            let (px, py) = (x + dx - 2, y + dy - 2);
            sy += f64::from(frame[py * width + px]);
            let c = (py / 2) * cw + px / 2;
            scb += f64::from(frame[width * height + c]);
            scr += f64::from(frame[width * height + cw * ch + c]);
        }
    }
    (sy / 16.0, scb / 16.0, scr / 16.0)
}

/// Checks everything a viewer relies on; returns the decoded frames.
fn check_stream(
    writes: &[Write],
    width: usize,
    height: usize,
    intra_period: usize,
) -> Vec<Vec<u8>> {
    // One write per frame, each a complete access unit.
    assert!(writes.iter().all(|w| w.frame_end));
    for (i, w) in writes.iter().enumerate() {
        let types = nal_types(&w.data);
        assert_eq!(
            w.data[..4],
            [0, 0, 0, 1],
            "write {i} starts with a 4-byte start code"
        );
        let idr = types.contains(&5);
        assert_eq!(
            idr,
            i % intra_period == 0,
            "write {i}: IDR expected every {intra_period}: {types:?}"
        );
        if idr {
            // SPS and PPS first, in the same write as the IDR slice.
            assert_eq!(types[..2], [7, 8], "write {i}: {types:?}");
        } else {
            assert!(types.contains(&1), "write {i} has no slice: {types:?}");
        }
        assert!(
            types.iter().all(|t| matches!(t, 1 | 5 | 6 | 7 | 8 | 9)),
            "{types:?}"
        );
    }
    for pair in writes.windows(2) {
        assert!(pair[1].captured > pair[0].captured);
    }

    let mut file = tempfile::Builder::new().suffix(".h264").tempfile().unwrap();
    for w in writes {
        file.write_all(&w.data).unwrap();
    }
    file.flush().unwrap();
    let (w, h, profile, level) = probe(file.path());
    assert_eq!((w, h), (width, height));
    assert_eq!(profile, "Constrained Baseline");
    assert!((10..=52).contains(&level), "level {level}");
    eprintln!("{width}x{height}: {profile} level {level}");

    let frames = decode(file.path(), width, height);
    assert_eq!(
        frames.len(),
        writes.len(),
        "every access unit decodes to a picture"
    );

    for (n, frame) in frames.iter().enumerate() {
        for (i, &(y, cb, cr)) in BARS.iter().enumerate() {
            let x = ((2 * i + 1) * width / 16) & !1;
            for row in [height / 16, height / 8, height * 3 / 16] {
                let got = colour_at(frame, width, height, x, row & !1);
                let want = (f64::from(y), f64::from(cb), f64::from(cr));
                assert!(
                    (got.0 - want.0).abs() <= 10.0
                        && (got.1 - want.1).abs() <= 12.0
                        && (got.2 - want.2).abs() <= 12.0,
                    "frame {n} bar {i} at ({x},{row}): {got:?}, want {want:?}"
                );
            }
        }
        // Below the bars: mostly the dark grey background.
        let below = &frame[(height / 4 + 2) * width..height * width];
        let dark = below.iter().filter(|&&v| v.abs_diff(40) <= 8).count();
        assert!(
            dark * 2 > below.len(),
            "frame {n}: background is not dark grey"
        );
    }
    let below_bars = (height / 4 + 2) * width..height * width;
    for (n, pair) in frames.windows(2).enumerate() {
        let changed = pair[0][below_bars.clone()]
            .iter()
            .zip(&pair[1][below_bars.clone()])
            .filter(|(a, b)| a.abs_diff(**b) > 30)
            .count();
        assert!(
            changed > 50,
            "frames {n} and {} look the same below the bars ({changed})",
            n + 1
        );
    }
    frames
}

#[test]
fn qvga_stream_decodes_with_bars_and_motion() {
    let s = settings(320, 240, 30, 1_000_000);
    let (writes, elapsed) = run_for(s, Duration::from_secs(2));
    // Paced: about 30 frames a second, no burst.
    assert!(
        (40..=62).contains(&writes.len()),
        "{} frames in {elapsed:?}",
        writes.len()
    );
    let span = writes
        .last()
        .unwrap()
        .captured
        .duration_since(writes[0].captured)
        .unwrap();
    let mean = span.as_secs_f64() / (writes.len() - 1) as f64;
    // Never faster than the frame rate; slower only when the machine is busy.
    assert!(
        (1.0 / 30.0 - 0.002..1.5 / 30.0).contains(&mean),
        "mean frame interval {mean}"
    );
    check_stream(&writes, 320, 240, 30);
    let bits: usize = writes.iter().map(|w| w.data.len() * 8).sum();
    let rate = bits as f64 / (writes.len() as f64 / 30.0);
    assert!(
        rate < 2.0 * 1_000_000.0,
        "{rate} bit/s for a 1 Mbit/s target"
    );
}

#[test]
fn hd_stream_decodes_with_bars_and_motion() {
    let s = settings(1280, 720, 30, 3_000_000);
    let (writes, elapsed) = run_for(s, Duration::from_secs(2));
    // An unoptimised test build takes about 16 ms per 720p frame on the x86 dev
    // machine, several times that when other builds share its two cores; the pacer
    // then re-anchors instead of bursting. Never more than real time allows.
    assert!(
        (15..=62).contains(&writes.len()),
        "{} frames in {elapsed:?}",
        writes.len()
    );
    check_stream(&writes, 1280, 720, 30);
    let bits: usize = writes.iter().map(|w| w.data.len() * 8).sum();
    let rate = bits as f64 / (writes.len() as f64 / 30.0);
    assert!(
        rate < 2.0 * 3_000_000.0,
        "{rate} bit/s for a 3 Mbit/s target"
    );
}

#[test]
fn odd_sizes_encode_and_decode() {
    for (w, h) in [(16, 16), (64, 36), (322, 242)] {
        let (writes, _) = run_for(settings(w, h, 30, 500_000), Duration::from_millis(400));
        assert!(writes.len() >= 8, "{w}x{h}: {} frames", writes.len());
        let mut file = tempfile::Builder::new().suffix(".h264").tempfile().unwrap();
        for wr in &writes {
            file.write_all(&wr.data).unwrap();
        }
        file.flush().unwrap();
        let (pw, ph, _, _) = probe(file.path());
        assert_eq!((pw, ph), (w as usize, h as usize));
        let frames = decode(file.path(), w as usize, h as usize);
        assert_eq!(frames.len(), writes.len(), "{w}x{h}");
    }
}

#[test]
fn stops_within_100_ms() {
    // One frame a second: run() spends nearly all its time waiting.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut source = TestPattern::new(settings(320, 240, 1, 200_000)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut sink = Collect {
        writes: Vec::new(),
        stop_at: Instant::now() + Duration::from_secs(60),
        stop: stop.clone(),
    };
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1300));
            stop.store(true, Ordering::SeqCst);
            Instant::now()
        })
    };
    source.run(&mut sink).unwrap();
    let returned = Instant::now();
    let asked = stopper.join().unwrap();
    let delay = returned.duration_since(asked);
    assert!(
        delay < Duration::from_millis(100),
        "run() took {delay:?} to stop"
    );
    // Frames at 0 s and 1 s.
    assert_eq!(sink.writes.len(), 2);
}

#[test]
fn bad_settings_do_not_start() {
    let mut s = settings(1280, 720, 30, 3_000_000);
    s.width = 1281;
    let err = TestPattern::new(s).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Start {
                source_name: "test",
                ..
            }
        ),
        "{err}"
    );
    let s = settings(4096, 2304, 30, 3_000_000);
    let err = TestPattern::new(s).unwrap_err();
    assert!(err.to_string().contains("3840x2160"), "{err}");
}

#[test]
fn runs_again_after_stopping_and_starts_with_a_keyframe() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut source = TestPattern::new(settings(160, 120, 30, 300_000)).unwrap();
    assert_eq!(source.name(), "test");
    assert_eq!(
        source.describe(),
        "test pattern 160x120 at 30 fps, 300 kbit/s"
    );
    for round in 0..2 {
        let mut sink = Collect {
            writes: Vec::new(),
            stop_at: Instant::now() + Duration::from_millis(300),
            stop: Arc::new(AtomicBool::new(false)),
        };
        source.run(&mut sink).unwrap();
        assert!(
            sink.writes.len() >= 5,
            "round {round}: {}",
            sink.writes.len()
        );
        let first = nal_types(&sink.writes[0].data);
        assert_eq!(first[..2], [7, 8], "round {round}: {first:?}");
        assert!(first.contains(&5), "round {round}: {first:?}");
    }
}
