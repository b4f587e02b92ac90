//! `make bench` part: what a `/snapshot.jpg` costs at 1080p. The snapshot decodes
//! the hub's GOP (the latest keyframe and the frames since) with OpenH264 and
//! encodes the newest picture as a JPEG; its decoder is kept, so a request one frame
//! later decodes one frame.
//!
//! - cold: a new decoder, the keyframe plus N frames, and the JPEG (the first
//!   request, or the first after 30 s without one);
//! - warm: the decoder already at the frame before, one new frame and the JPEG
//!   (requests in a row, a frame apart: the player's button pressed again, a
//!   script polling fast). Requests further apart than the keyframe interval
//!   (Home Assistant's every 10 s) start at the new keyframe: a cold case;
//! - the two parts of it apart: decoding one frame, encoding one JPEG;
//! - memory: the process's resident set before, at its peak and after the decoder
//!   and the JPEG are dropped.
//!
//! Inputs: the real Pi recording (`shared/samples/pi-raspivid-1080p25.h264`, High
//! profile, about 4.7 Mbit/s, IDR every 60 frames) and the fan-out bench's noisy
//! 1080p25 8 Mbit/s libx264 stream (made by ffmpeg in `target/bench-data`).
//! Target on the 2-core development machine: under 150 ms for a cold 1080p
//! snapshot. Options: `BENCH_SNAPSHOT_RUNS` (repetitions per case, default 10).
//! Results go to docs/benchmarks.md by hand, with the machine they ran on.
//!
//! End to end: the release streamer with the 1080p test pattern (a keyframe every
//! 2 s, made on request too), `GET /snapshot.jpg` every 1.3 s (so requests land
//! all over the GOP, as a poller's do): a cold request late in a GOP asks the
//! source for a keyframe and decodes that alone.

#[path = "support/load.rs"]
mod load;
#[path = "../tests/support/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use load::{ensure_video, machine, peak_rss_mb, rss_mb, setting, VideoSettings};
use streamer::h264::AccessUnitReader;
use streamer::hub::{Frame, Hub, HubLimits};
use streamer::snapshot::decode::GopDecoder;
use streamer::snapshot::jpeg;

/// The hub's GOP after each frame of `file`, as `/snapshot.jpg` would see it.
fn gops(file: &Path) -> Vec<Vec<Frame>> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    reader.push(&data, &mut units);
    reader.flush(&mut units);
    let hub = Hub::new(HubLimits::for_frame_rate(25.0, 10), Some(25.0));
    units
        .iter()
        .map(|unit| {
            hub.publish(unit, SystemTime::now());
            hub.gop()
        })
        .collect()
}

/// The median and the largest of `samples`, in ms.
fn median_max(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(samples[samples.len() / 2]), ms(*samples.last().unwrap()))
}

/// One snapshot of `gop`'s newest frame with `decoder`: its time and JPEG size.
fn snapshot(decoder: &mut GopDecoder, gop: &[Frame]) -> (Duration, usize) {
    let started = Instant::now();
    let (jpeg, _) = decoder
        .decode_latest(gop, |picture| jpeg::encode(picture, jpeg::QUALITY))
        .expect("the frame decodes");
    let bytes = jpeg.expect("the picture encodes").len();
    (started.elapsed(), bytes)
}

fn main() {
    let runs: usize = setting("BENCH_SNAPSHOT_RUNS", 10);
    let pi = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/samples/pi-raspivid-1080p25.h264");
    let noisy = ensure_video(&VideoSettings {
        width: 1920,
        height: 1080,
        fps: 25,
        mbps: 8.0,
    });
    let pid = std::process::id();
    println!("snapshot cost at 1080p on {}", machine());
    println!("{runs} runs per case; ms as median / largest");
    println!();
    println!("| input | case | frames decoded | ms | JPEG bytes |");
    println!("| --- | --- | --- | --- | --- |");
    let mut memory = None;
    for (name, file) in [
        ("Pi recording (High, 4.7 Mbit/s)", pi.as_path()),
        ("noisy libx264 (High, 8 Mbit/s)", noisy.as_path()),
    ] {
        let gops = gops(file);
        // The frame numbers N frames after the first keyframe; the GOP is the
        // keyframe and the N frames.
        let longest = gops.iter().map(Vec::len).max().expect("frames");
        let rss_before = rss_mb(pid);
        for frames_after in [0, 24, longest - 1] {
            let gop = &gops[frames_after];
            assert_eq!(gop.len(), frames_after + 1);
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..runs {
                let mut decoder = GopDecoder::new();
                let (time, size) = snapshot(&mut decoder, gop);
                times.push(time);
                bytes = size;
            }
            if memory.is_none() && frames_after == longest - 1 {
                let peak = peak_rss_mb(pid);
                memory = Some((rss_before, peak));
            }
            let (median, max) = median_max(times);
            println!(
                "| {name} | cold: keyframe + {frames_after} | {} | {median:.1} / {max:.1} | {bytes} |",
                frames_after + 1
            );
        }
        // Warm: one decoder following the stream, a snapshot after every frame
        // (each decodes the one new frame).
        let mut decoder = GopDecoder::new();
        let start = 10;
        snapshot(&mut decoder, &gops[start - 1]);
        let mut times = Vec::new();
        for gop in gops.iter().skip(start).take(runs) {
            if gop.len() == 1 {
                continue; // a keyframe: cold by nature
            }
            times.push(snapshot(&mut decoder, gop).0);
        }
        let (median, max) = median_max(times);
        println!("| {name} | warm: one new frame | 1 | {median:.1} / {max:.1} | |");

        // The parts apart: decoding one frame (warm), encoding one JPEG.
        let mut decode = Vec::new();
        let mut encode = Vec::new();
        let mut decoder = GopDecoder::new();
        snapshot(&mut decoder, &gops[start - 1]);
        for gop in gops.iter().skip(start).take(runs) {
            if gop.len() == 1 {
                continue;
            }
            let started = Instant::now();
            let (encoded, _) = decoder
                .decode_latest(gop, |picture| {
                    let decoded = started.elapsed();
                    let encoding = Instant::now();
                    let jpeg = jpeg::encode(picture, jpeg::QUALITY).expect("encodes");
                    (decoded, encoding.elapsed(), jpeg.len())
                })
                .expect("decodes");
            decode.push(encoded.0);
            encode.push(encoded.1);
        }
        let (median, max) = median_max(decode);
        println!("| {name} | decoding one frame only | 1 | {median:.1} / {max:.1} | |");
        let (median, max) = median_max(encode);
        println!(
            "| {name} | JPEG encoding only (quality {}) | 0 | {median:.1} / {max:.1} | |",
            jpeg::QUALITY
        );
    }
    end_to_end(runs);
    if let Some((before, peak)) = memory {
        let dropped = rss_mb(pid);
        streamer::snapshot::service::release_free_memory();
        println!();
        println!(
            "memory (Pi recording, cold snapshots, the process's RSS): {before:.1} MB before, \
             {peak:.1} MB at the peak (+{:.1} MB for one 1080p decoder and JPEG); {dropped:.1} MB \
             after the decoders were dropped, {:.1} MB once that memory is given back \
             (as the service does when it drops its idle decoder)",
            peak - before,
            rss_mb(pid)
        );
    }
}

/// `GET /snapshot.jpg` from the real server, requests 1.3 s apart.
fn end_to_end(runs: usize) {
    let server = process::StreamerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_streamer")),
        Path::new("/nonexistent/streamer.toml"),
        &[
            ("STREAMER_CAMERA__SOURCE", "test"),
            ("STREAMER_CAMERA__WIDTH", "1920"),
            ("STREAMER_CAMERA__HEIGHT", "1080"),
            ("STREAMER_CAMERA__FRAMERATE", "25"),
            ("STREAMER_ENCODER__INTRA_PERIOD", "50"),
            ("STREAMER_RTSP__ENABLED", "false"),
            ("STREAMER_WEBRTC__ENABLED", "false"),
            ("STREAMER_LOG__LEVEL", "info"),
        ],
    );
    server.wait_live();
    let mut times = Vec::new();
    for _ in 0..runs.max(5) {
        std::thread::sleep(Duration::from_millis(1300));
        let started = Instant::now();
        let (status, _) = server.get("/snapshot.jpg");
        times.push(started.elapsed());
        assert_eq!(status, 200, "/snapshot.jpg\n{}", server.log());
    }
    let (_, metrics) = server.get("/metrics");
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (median, max) = median_max(times);
    println!();
    println!(
        "end to end (release server, 1080p25 test pattern, keyframe every 50 frames, \
         requests 1.3 s apart): {median:.1} / {max:.1} ms (median / largest); \
         {} of {} answered from a keyframe asked for, {} frames decoded in all",
        counter("streamer_snapshot_keyframe_shortcuts_total"),
        counter("streamer_snapshots_total"),
        counter("streamer_snapshot_decoded_frames_total"),
    );
}
