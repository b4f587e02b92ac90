//! Parameter set, slice header and SEI parsers: arbitrary bytes never panic, and
//! what parses is sane.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamer::h264::pps::Pps;
use streamer::h264::sei;
use streamer::h264::slice::SliceStart;
use streamer::h264::{Nal, Sps};

fuzz_target!(|data: &[u8]| {
    // As an SPS whatever the header says, and with the header forced to SPS.
    let _ = Sps::parse(data);
    let mut as_sps = data.to_vec();
    if let Some(first) = as_sps.first_mut() {
        *first = 0x67;
    }
    if let Ok(sps) = Sps::parse(&as_sps) {
        assert!(sps.width > 0 && sps.height > 0);
        assert!(sps.width <= sps.coded_width && sps.height <= sps.coded_height);
        assert!(sps.id <= 31);
        assert!((4..=16).contains(&sps.log2_max_frame_num));
        let _ = sps.codec_string();
        if let Some(fps) = sps.frame_rate {
            assert!(fps.is_finite() && fps > 0.0);
        }
    }
    let mut as_pps = data.to_vec();
    if let Some(first) = as_pps.first_mut() {
        *first = 0x68;
    }
    if let Ok(pps) = Pps::parse(&as_pps) {
        assert!(pps.id <= 255 && pps.sps_id <= 31);
    }
    if let Some(nal) = Nal::new(Bytes::copy_from_slice(data)) {
        let _ = SliceStart::parse(&nal);
        let _ = sei::recovery_frame_cnt(&nal);
    }
});
