//! The H.264 reader against real streams: the Raspberry Pi sample and streams that
//! ffmpeg (libx264) generates, checked against what ffprobe says about them.

use streamer::h264::{AccessUnit, AccessUnitReader, NalType, RandomAccess, Sps};

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
