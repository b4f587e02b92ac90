//! The H.264 reader against real streams: the Raspberry Pi sample and streams that
//! ffmpeg (libx264) generates, checked against what ffprobe says about them.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamer::h264::split::Splitter;
use streamer::h264::{AccessUnit, AccessUnitReader, Nal, NalType, RandomAccess, Sps};

const PI_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/pi-raspivid-1080p25.h264"
);

/// Reads `data` in chunks of the given sizes (cycled), checking invariants.
fn read_chunked(data: &[u8], sizes: &[usize]) -> (Vec<AccessUnit>, AccessUnitReader) {
    let mut reader = AccessUnitReader::new();
    let mut units = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        reader.push(chunk, &mut units);
        reader.check_invariants();
        rest = tail;
    }
    reader.flush(&mut units);
    reader.check_invariants();
    for unit in &units {
        unit.check_invariants();
    }
    (units, reader)
}

fn first_sps(units: &[AccessUnit]) -> Sps {
    let nal = units
        .iter()
        .flat_map(|u| u.nals_of(NalType::Sps))
        .next()
        .expect("stream has an SPS");
    Sps::parse(nal.data()).expect("SPS parses")
}

#[test]
fn pi_sample_access_units() {
    let data = std::fs::read(PI_SAMPLE).expect("the Pi sample is in shared/samples");
    let (units, reader) = read_chunked(&data, &[data.len()]);
    assert_eq!(units.len(), 116, "116 frames (ffprobe nb_read_frames)");
    let idr: Vec<usize> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.random_access == RandomAccess::Idr)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(idr.len(), 2);
    assert_eq!(idr[0], 0);
    assert_eq!(units.iter().filter(|u| u.is_keyframe()).count(), 2);
    // SPS and PPS once, in the first access unit, in front of the IDR slice.
    let sps_units: Vec<usize> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.contains(NalType::Sps))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sps_units, [0]);
    assert!(units[0].contains(NalType::Pps));
    assert_eq!(
        units.iter().map(|u| u.nals.len()).sum::<usize>(),
        1 + 1 + 116,
        "SPS, PPS and one slice per picture"
    );
    let sps = first_sps(&units);
    assert_eq!(sps.codec_string(), "avc1.640028");
    assert_eq!((sps.width, sps.height), (1920, 1080));
    assert_eq!((sps.coded_width, sps.coded_height), (1920, 1088));
    // raspivid writes a VUI without timing info (timing_info_present_flag = 0, as
    // ffmpeg's trace_headers shows): the "25 fps" ffprobe reports is its default
    // guess for raw H.264, not from the stream. So no frame rate here.
    assert_eq!(sps.frame_rate, None);
    assert_eq!(sps.pic_order_cnt_type, 2);
    assert!(sps.frame_mbs_only);
    assert_eq!(reader.stats().errors(), 0, "{:?}", reader.stats());
    assert!(reader.pending().is_empty());

    // Annex-B output of every unit together is the input's NAL units again.
    let total: usize = units.iter().map(|u| u.annex_b_len()).sum();
    assert!(total <= data.len() + 4 * units.len());

    for sizes in [&[1usize, 2, 3, 5, 7][..], &[4096], &[65_537, 13], &[188]] {
        let (chunked, _) = read_chunked(&data, sizes);
        assert_eq!(chunked, units, "chunk sizes {sizes:?}");
    }
}

/// Every NAL unit the splitter finds is in exactly one access unit, in order.
fn assert_conserved(data: &[u8], units: &[AccessUnit], reader: &AccessUnitReader) {
    let mut splitter = Splitter::new();
    let mut nals = Vec::new();
    splitter.push(data, &mut nals);
    splitter.flush(&mut nals);
    let emitted: Vec<Nal> = units.iter().flat_map(|u| u.nals.iter().cloned()).collect();
    assert!(reader.pending().is_empty());
    assert_eq!(emitted, nals);
}

/// Runs a tool, panicking with its stderr when it fails; FAILS (not skips) when
/// the tool is missing.
fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {tool} ({e}): ffmpeg and ffprobe must be installed for this test \
             (apt-get install ffmpeg)"
        )
    });
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// What ffprobe says about a raw H.264 file.
#[derive(Debug)]
struct Probe {
    frames: usize,
    width: u32,
    height: u32,
    profile: String,
    level: u8,
    /// Indices of frames the decoder marks `key_frame=1`.
    key_frames: Vec<usize>,
    /// Indices of packets the parser flags `K` (IDR or recovery point SEI).
    key_packets: Vec<usize>,
}

fn probe(path: &Path) -> Probe {
    let path = path.to_str().expect("UTF-8 temp path");
    let json = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height,profile,level",
            "-of",
            "json",
            path,
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&json).expect("ffprobe JSON");
    let stream = &json["streams"][0];
    let flags = |what: &str, entry: &str| -> Vec<String> {
        let out = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                "v:0",
                what,
                "-show_entries",
                entry,
                "-of",
                "csv=p=0",
                path,
            ],
        );
        String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l.trim().trim_end_matches(',').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let frame_flags = flags("-show_frames", "frame=key_frame");
    let packet_flags = flags("-show_packets", "packet=flags");
    Probe {
        frames: stream["nb_read_frames"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("nb_read_frames"),
        width: stream["width"].as_u64().expect("width") as u32,
        height: stream["height"].as_u64().expect("height") as u32,
        profile: stream["profile"].as_str().expect("profile").to_string(),
        level: stream["level"].as_u64().expect("level") as u8,
        key_frames: frame_flags
            .iter()
            .enumerate()
            .filter(|(_, f)| f.starts_with('1'))
            .map(|(i, _)| i)
            .collect(),
        key_packets: packet_flags
            .iter()
            .enumerate()
            .filter(|(_, f)| f.starts_with('K'))
            .map(|(i, _)| i)
            .collect(),
    }
}

/// `profile_idc` for ffprobe's profile name.
fn profile_idc(name: &str) -> u8 {
    match name {
        "Baseline" | "Constrained Baseline" => 66,
        "Main" => 77,
        "High" => 100,
        "High 10" => 110,
        "High 4:2:2" => 122,
        "High 4:4:4 Predictive" => 244,
        other => panic!("unexpected profile {other}"),
    }
}

/// A stream ffmpeg encodes from its test source, in a temporary directory.
struct Case {
    name: &'static str,
    size: &'static str,
    frames: u32,
    args: &'static [&'static str],
}

fn encode(dir: &Path, case: &Case) -> PathBuf {
    let path = dir.join(format!("{}.h264", case.name));
    let input = format!("testsrc2=size={}:rate=25", case.size);
    let frames = case.frames.to_string();
    let mut args = vec![
        "-v",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
        "-i",
        &input,
        "-frames:v",
        &frames,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ];
    args.extend_from_slice(case.args);
    let out = path.to_str().expect("UTF-8 temp path");
    args.extend_from_slice(&["-f", "h264", out]);
    run("ffmpeg", &args);
    path
}

/// Checks a stream against ffprobe; returns the access units.
fn check_against_ffprobe(path: &Path, name: &str) -> Vec<AccessUnit> {
    let data = std::fs::read(path).expect("encoded file");
    let probe = probe(path);
    let (units, reader) = read_chunked(&data, &[1000, 7, 333, 4096, 1]);
    assert_eq!(
        units.len(),
        probe.frames,
        "{name}: access units vs ffprobe frames"
    );
    assert_eq!(reader.stats().errors(), 0, "{name}: {:?}", reader.stats());
    assert_conserved(&data, &units, &reader);
    let (whole, _) = read_chunked(&data, &[data.len()]);
    assert_eq!(whole, units, "{name}: chunking changed the result");

    let sps = first_sps(&units);
    assert_eq!(
        (sps.width, sps.height),
        (probe.width, probe.height),
        "{name}"
    );
    assert_eq!(sps.profile_idc, profile_idc(&probe.profile), "{name}");
    assert_eq!(sps.level_idc, probe.level, "{name}");
    assert_eq!(
        sps.codec_string(),
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            profile_idc(&probe.profile),
            sps.constraint_flags,
            probe.level
        ),
        "{name}"
    );
    if probe.profile == "Constrained Baseline" {
        assert_ne!(sps.constraint_flags & 0x40, 0, "{name}: constraint_set1");
    }
    // x264 writes timing info: 25 fps from the test source.
    assert_eq!(sps.frame_rate, Some(25.0), "{name}");

    // IDR pictures are what the decoder flags as key frames; the parser (packet
    // flags) also flags recovery points, as this crate does.
    let idr: Vec<usize> = indices(&units, |u| u.random_access == RandomAccess::Idr);
    let keys: Vec<usize> = indices(&units, AccessUnit::is_keyframe);
    assert_eq!(idr, probe.key_frames, "{name}: IDR vs ffprobe key_frame");
    assert_eq!(
        keys, probe.key_packets,
        "{name}: keyframes vs ffprobe K packets"
    );
    units
}

fn indices(units: &[AccessUnit], f: impl Fn(&AccessUnit) -> bool) -> Vec<usize> {
    units
        .iter()
        .enumerate()
        .filter(|(_, u)| f(u))
        .map(|(i, _)| i)
        .collect()
}

fn slices_per_unit(unit: &AccessUnit) -> usize {
    unit.nals.iter().filter(|n| n.nal_type().is_vcl()).count()
}

#[test]
fn ffmpeg_streams_match_ffprobe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        Case {
            name: "baseline",
            size: "320x240",
            frames: 60,
            args: &["-profile:v", "baseline", "-g", "25"],
        },
        Case {
            name: "main_bframes",
            size: "320x240",
            frames: 60,
            args: &[
                "-profile:v",
                "main",
                "-bf",
                "3",
                "-g",
                "30",
                "-x264-params",
                "b-pyramid=normal",
            ],
        },
        Case {
            name: "high_slices",
            size: "640x360",
            frames: 40,
            args: &[
                "-profile:v",
                "high",
                "-bf",
                "2",
                "-x264-params",
                "slices=4:keyint=20",
            ],
        },
        Case {
            name: "high_aud",
            size: "320x240",
            frames: 30,
            args: &["-profile:v", "high", "-x264-params", "aud=1:keyint=10"],
        },
        Case {
            name: "odd_size",
            size: "1640x1232",
            frames: 8,
            args: &["-profile:v", "high", "-bf", "2"],
        },
        Case {
            name: "mbaff",
            size: "320x240",
            frames: 30,
            args: &["-flags", "+ildct+ilme", "-x264-params", "tff=1"],
        },
        Case {
            name: "gray_odd",
            size: "318x238",
            frames: 10,
            args: &["-pix_fmt", "gray"],
        },
        Case {
            name: "yuv422_odd",
            size: "318x238",
            frames: 10,
            args: &["-pix_fmt", "yuv422p", "-x264-params", "slices=3"],
        },
        Case {
            name: "yuv444_10bit",
            size: "318x238",
            frames: 10,
            args: &["-pix_fmt", "yuv444p10le", "-bf", "1"],
        },
    ];
    for case in &cases {
        let path = encode(dir.path(), case);
        let units = check_against_ffprobe(&path, case.name);
        let sps = first_sps(&units);
        match case.name {
            "high_slices" => {
                assert!(
                    units.iter().all(|u| slices_per_unit(u) == 4),
                    "4 slices each"
                );
            }
            "yuv422_odd" => {
                assert!(
                    units.iter().all(|u| slices_per_unit(u) == 3),
                    "3 slices each"
                );
                assert_eq!(sps.chroma_format_idc, 2);
            }
            "high_aud" => {
                assert!(units.iter().all(|u| u.nals[0].nal_type() == NalType::Aud));
                assert_eq!(
                    units.iter().filter(|u| u.contains(NalType::Aud)).count(),
                    units.len()
                );
            }
            "mbaff" => {
                assert!(!sps.frame_mbs_only && sps.mb_adaptive_frame_field);
            }
            "gray_odd" => assert_eq!(sps.chroma_format_idc, 0),
            "yuv444_10bit" => {
                assert_eq!(sps.chroma_format_idc, 3);
                assert_eq!(sps.bit_depth_luma, 10);
            }
            "main_bframes" => {
                assert_eq!(sps.pic_order_cnt_type, 0);
                // Non-reference B pictures are their own access units.
                assert!(units.iter().any(|u| u
                    .nals
                    .iter()
                    .any(|n| n.nal_type().is_vcl() && n.ref_idc() == 0)));
            }
            _ => {}
        }
        // x264 writes its version SEI into the first access unit.
        assert!(units[0].contains(NalType::Sei), "{}", case.name);
    }
}

#[test]
fn intra_refresh_recovery_points() {
    let dir = tempfile::tempdir().expect("temp dir");
    let case = Case {
        name: "intra_refresh",
        size: "320x240",
        frames: 95,
        args: &[
            "-profile:v",
            "high",
            "-x264-params",
            "intra-refresh=1:keyint=30",
        ],
    };
    let path = encode(dir.path(), &case);
    let units = check_against_ffprobe(&path, case.name);
    let recovery: Vec<(usize, u32)> = units
        .iter()
        .enumerate()
        .filter_map(|(i, u)| match u.random_access {
            RandomAccess::RecoveryPoint { recovery_frame_cnt } => Some((i, recovery_frame_cnt)),
            _ => None,
        })
        .collect();
    // One IDR at the start, then a recovery point per refresh period.
    assert_eq!(units[0].random_access, RandomAccess::Idr);
    assert_eq!(
        indices(&units, |u| u.random_access == RandomAccess::Idr),
        [0]
    );
    assert!(recovery.len() >= 2, "{recovery:?}");
    assert!(
        recovery.iter().all(|&(_, cnt)| cnt > 0 && cnt < 30),
        "{recovery:?}"
    );
}
