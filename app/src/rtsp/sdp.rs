//! The SDP a DESCRIBE is answered with (RFC 4566, RFC 6184 8.2.1 for H.264): one
//! video media, RTP/AVP, dynamic payload type 96 at 90 kHz, the stream's own
//! profile-level-id, packetization-mode 1 (single NAL units and FU-A), the SPS and
//! PPS in `sprop-parameter-sets` (so that a recorder can set its decoder up before
//! the first keyframe), the frame rate when known, and `a=control` naming the
//! track for SETUP.

use std::fmt::Write as _;
use std::net::IpAddr;

use base64::Engine as _;

use crate::hub::StreamInfo;

/// The payload type of the video.
pub const PAYLOAD_TYPE: u8 = 96;

/// The track's control URL, relative to the presentation (`.../stream/trackID=0`).
pub const TRACK: &str = "trackID=0";

/// What the SDP says about the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Presentation<'a> {
    /// Origin's session id (`o=`): changes when the stream's parameters do.
    pub session_id: u64,
    /// The server's address as the client reached it (`o=`).
    pub address: IpAddr,
    /// Codec string, size and frame rate.
    pub stream: &'a StreamInfo,
    /// The SPS NAL unit (without start code).
    pub sps: &'a [u8],
    /// The PPS NAL unit (without start code).
    pub pps: &'a [u8],
}

/// The SDP text (CRLF line ends), or `None` when the stream is not H.264 as an
/// RFC 6381 `avc1.PPCCLL` codec string says.
pub fn describe(p: &Presentation<'_>) -> Option<String> {
    let profile_level_id = p.stream.codec.strip_prefix("avc1.")?;
    if profile_level_id.len() != 6 || !profile_level_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let (family, address) = match p.address {
        IpAddr::V4(v4) => ("IP4", v4.to_string()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ("IP4", v4.to_string()),
            None => ("IP6", v6.to_string()),
        },
    };
    let mut sdp = String::with_capacity(512);
    let _ = write!(
        sdp,
        "v=0\r\n\
         o=- {id} 1 IN {family} {address}\r\n\
         s=streamer\r\n\
         t=0 0\r\n\
         a=control:*\r\n\
         a=range:npt=now-\r\n\
         m=video 0 RTP/AVP {pt}\r\n\
         c=IN {family} {unspecified}\r\n\
         a=rtpmap:{pt} H264/90000\r\n\
         a=fmtp:{pt} packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sps},{pps}\r\n",
        id = p.session_id,
        pt = PAYLOAD_TYPE,
        unspecified = if family == "IP4" { "0.0.0.0" } else { "::" },
        plid = profile_level_id.to_ascii_lowercase(),
        sps = b64.encode(p.sps),
        pps = b64.encode(p.pps),
    );
    if let Some(fps) = p.stream.fps.filter(|f| f.is_finite() && *f > 0.0) {
        let _ = write!(sdp, "a=framerate:{}\r\n", (fps * 1000.0).round() / 1000.0);
    }
    let _ = write!(
        sdp,
        "a=x-dimensions:{},{}\r\na=control:{TRACK}\r\n",
        p.stream.width, p.stream.height
    );
    Some(sdp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::{unhex, PPS, SPS};

    fn stream(codec: &str, fps: Option<f64>) -> StreamInfo {
        StreamInfo {
            codec: codec.into(),
            width: 1920,
            height: 1080,
            fps,
        }
    }

    #[test]
    fn the_sdp_carries_what_a_recorder_needs() {
        let info = stream("avc1.640028", Some(25.0));
        let (sps, pps) = (unhex(SPS), unhex(PPS));
        let sdp = describe(&Presentation {
            session_id: 42,
            address: "192.168.1.20".parse().unwrap(),
            stream: &info,
            sps: &sps,
            pps: &pps,
        })
        .unwrap();
        assert!(
            sdp.starts_with("v=0\r\no=- 42 1 IN IP4 192.168.1.20\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("m=video 0 RTP/AVP 96\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"), "{sdp}");
        assert!(
            sdp.contains("packetization-mode=1;profile-level-id=640028;"),
            "{sdp}"
        );
        let sprop = sdp
            .split("sprop-parameter-sets=")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let (s, p) = sprop.split_once(',').unwrap();
        assert_eq!(b64.decode(s).unwrap(), sps);
        assert_eq!(b64.decode(p).unwrap(), pps);
        assert!(sdp.contains("a=framerate:25\r\n"), "{sdp}");
        assert!(sdp.ends_with("a=control:trackID=0\r\n"), "{sdp}");
        assert!(sdp.lines().all(|l| !l.is_empty()), "no empty lines");
    }

    #[test]
    fn ipv6_and_mapped_addresses_and_unknown_rates() {
        let info = stream("avc1.42C01F", None);
        let p = |address: &str| Presentation {
            session_id: 1,
            address: address.parse().unwrap(),
            stream: &info,
            sps: b"\x67",
            pps: b"\x68",
        };
        let v6 = describe(&p("2001:db8::20")).unwrap();
        assert!(
            v6.contains("IN IP6 2001:db8::20\r\n") && v6.contains("c=IN IP6 ::\r\n"),
            "{v6}"
        );
        assert!(!v6.contains("framerate"));
        assert!(v6.contains("profile-level-id=42c01f"));
        let mapped = describe(&p("::ffff:10.0.0.5")).unwrap();
        assert!(mapped.contains("IN IP4 10.0.0.5\r\n"), "{mapped}");
    }

    #[test]
    fn a_stream_that_is_not_avc1_has_no_sdp() {
        let info = stream("hvc1.1.6.L93", Some(30.0));
        let p = Presentation {
            session_id: 1,
            address: "127.0.0.1".parse().unwrap(),
            stream: &info,
            sps: b"",
            pps: b"",
        };
        assert_eq!(describe(&p), None);
    }
}
