//! What a WHEP offer asks for, read from its SDP text before str0m sees it, so that
//! a client is told in plain words why it cannot be served: not SDP (400), no
//! video to receive (400), or no H.264 the stream can be sent as (422).
//!
//! The rules for H.264 are RFC 6184's: packetization-mode must be 1 (the stream's
//! pictures do not fit one packet each), and the profile (profile_idc with the
//! constraint flags that make "constrained baseline") must be the stream's. The
//! level may differ: RFC 6184 8.2.2 and `level-asymmetry-allowed`, which every
//! browser offers, let a sender's level exceed the offer's.

/// Why an offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not an SDP offer at all (answer 400).
    #[error("not an SDP offer: {0}")]
    NotSdp(String),
    /// SDP, but no video media to receive (answer 400).
    #[error("the offer has no video to receive: {0}")]
    NoVideo(String),
    /// No payload type the stream can be sent as (answer 422).
    #[error("no common codec: {0}")]
    NoCommonCodec(String),
}

/// One H.264 payload type of the offer's video media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264Format {
    /// RTP payload type.
    pub pt: u8,
    /// `profile-level-id`, when given (RFC 6184 default: 0x420010).
    pub profile_level_id: Option<u32>,
    /// `packetization-mode` (default 0).
    pub packetization_mode: u8,
    /// The payload type of its retransmissions (RFC 4588 `rtx` with `apt=` this),
    /// when offered.
    pub rtx: Option<u8>,
}

/// The H.264 profiles, as WebRTC tells them apart (RFC 6184 and libwebrtc's
/// `h264_profile_level_id`): profile_idc with the constraint flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// 0x42 with constraint_set1 (or 0x4d/0x58 with the constrained-baseline flags).
    ConstrainedBaseline,
    /// 0x42 without constraint_set1.
    Baseline,
    /// 0x4d.
    Main,
    /// 0x58.
    Extended,
    /// 0x64 with constraint_set4 and constraint_set5.
    ConstrainedHigh,
    /// 0x64.
    High,
    /// Anything else (High 10, 4:2:2, ...).
    Other(u8),
}

impl Profile {
    /// The profile of a `profile-level-id` (3 bytes: profile_idc, constraint
    /// flags, level_idc).
    pub fn of(profile_level_id: u32) -> Profile {
        let profile_idc = (profile_level_id >> 16) as u8;
        let iop = (profile_level_id >> 8) as u8;
        let set1 = iop & 0x40 != 0;
        match profile_idc {
            0x42 if set1 => Profile::ConstrainedBaseline,
            0x42 => Profile::Baseline,
            // Main or Extended with the flags that also make them constrained
            // baseline (RFC 6184 table 5: x1xx0000 / 11xx0000).
            0x4d if iop & 0x80 != 0 && iop & 0x0f == 0 => Profile::ConstrainedBaseline,
            0x4d => Profile::Main,
            0x58 if iop & 0xc0 == 0xc0 && iop & 0x0f == 0 => Profile::ConstrainedBaseline,
            0x58 => Profile::Extended,
            0x64 if iop & 0x0c == 0x0c => Profile::ConstrainedHigh,
            0x64 => Profile::High,
            other => Profile::Other(other),
        }
    }

    /// The profile's name, for messages.
    pub fn name(self) -> String {
        match self {
            Profile::ConstrainedBaseline => "Constrained Baseline".into(),
            Profile::Baseline => "Baseline".into(),
            Profile::Main => "Main".into(),
            Profile::Extended => "Extended".into(),
            Profile::ConstrainedHigh => "Constrained High".into(),
            Profile::High => "High".into(),
            Profile::Other(idc) => format!("profile_idc {idc}"),
        }
    }
}

/// The offer's video media: its H.264 formats (and how many others it has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOffer {
    /// The media's `a=mid` (empty when it has none).
    pub mid: String,
    /// H.264 payload types, in the offer's order of preference.
    pub h264: Vec<H264Format>,
    /// Names of the other video codecs offered (VP8, AV1, ...), for messages.
    pub others: Vec<String>,
}

/// Reads the first video media of an SDP offer that can receive.
pub fn video_of(sdp: &str) -> Result<VideoOffer, OfferError> {
    let sdp = sdp.trim_start_matches('\u{feff}');
    if !sdp.starts_with("v=0") {
        return Err(OfferError::NotSdp("it does not begin with \"v=0\"".into()));
    }
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    if sections.is_empty() {
        return Err(OfferError::NoVideo("it has no media (m=) lines".into()));
    }
    let mut reason = "it has no m=video line".to_string();
    for section in &sections {
        if !section[0].starts_with("m=video ") {
            continue;
        }
        let port_zero = section[0].split_whitespace().nth(1) == Some("0");
        let sends_only = section
            .iter()
            .any(|l| *l == "a=sendonly" || *l == "a=inactive");
        if port_zero || sends_only {
            reason = "its video is rejected, inactive or send-only (a WHEP offer receives video: recvonly)".into();
            continue;
        }
        return Ok(video_formats(section));
    }
    Err(OfferError::NoVideo(reason))
}

fn video_formats(section: &[&str]) -> VideoOffer {
    // The payload types in the m= line's order.
    let pts: Vec<u8> = section[0]
        .split_whitespace()
        .skip(3)
        .filter_map(|pt| pt.parse().ok())
        .collect();
    let attribute = |name: &str, pt: u8| -> Option<&str> {
        let prefix = format!("a={name}:{pt} ");
        section
            .iter()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
    };
    let mut h264 = Vec::new();
    let mut others = Vec::new();
    for pt in pts {
        let Some(rtpmap) = attribute("rtpmap", pt) else {
            continue;
        };
        let codec = rtpmap.split('/').next().unwrap_or("").trim();
        if codec.eq_ignore_ascii_case("H264") {
            let mut format = H264Format {
                pt,
                profile_level_id: None,
                packetization_mode: 0,
                rtx: None,
            };
            for parameter in attribute("fmtp", pt).unwrap_or("").split(';') {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                match key.trim().to_ascii_lowercase().as_str() {
                    "profile-level-id" => {
                        format.profile_level_id = u32::from_str_radix(value.trim(), 16)
                            .ok()
                            .filter(|v| *v <= 0xff_ffff)
                    }
                    "packetization-mode" => {
                        format.packetization_mode = value.trim().parse().unwrap_or(0)
                    }
                    _ => {}
                }
            }
            h264.push(format);
        } else if !["rtx", "red", "ulpfec", "flexfec-03"]
            .iter()
            .any(|c| codec.eq_ignore_ascii_case(c))
            && !others
                .iter()
                .any(|o: &String| o.eq_ignore_ascii_case(codec))
        {
            others.push(codec.to_string());
        }
    }
    // Retransmission payload types: `a=rtpmap:P rtx/90000` with `a=fmtp:P apt=X`.
    for pt in section[0]
        .split_whitespace()
        .skip(3)
        .filter_map(|p| p.parse::<u8>().ok())
    {
        let is_rtx = attribute("rtpmap", pt).is_some_and(|m| {
            m.split('/')
                .next()
                .is_some_and(|c| c.eq_ignore_ascii_case("rtx"))
        });
        let apt = attribute("fmtp", pt)
            .and_then(|f| f.trim().strip_prefix("apt="))
            .and_then(|a| a.trim().parse::<u8>().ok());
        if let (true, Some(apt)) = (is_rtx, apt) {
            if let Some(format) = h264.iter_mut().find(|f| f.pt == apt) {
                format.rtx = Some(pt);
            }
        }
    }
    let mid = section
        .iter()
        .find_map(|line| line.strip_prefix("a=mid:"))
        .unwrap_or("")
        .trim()
        .to_string();
    VideoOffer { mid, h264, others }
}

/// The payload type the stream (whose SPS gives `profile_level_id`) can be sent as,
/// or the reason why none.
pub fn choose(offer: &VideoOffer, profile_level_id: u32) -> Result<&H264Format, OfferError> {
    let wanted = Profile::of(profile_level_id);
    let usable = |f: &&H264Format| {
        f.packetization_mode == 1 && Profile::of(f.profile_level_id.unwrap_or(0x42_00_10)) == wanted
    };
    if let Some(format) = offer.h264.iter().find(usable) {
        return Ok(format);
    }
    let stream = format!(
        "the stream is H.264 {} (profile-level-id {profile_level_id:06x})",
        wanted.name()
    );
    if offer.h264.is_empty() {
        let offered = if offer.others.is_empty() {
            "no video codec".to_string()
        } else {
            offer.others.join(", ")
        };
        return Err(OfferError::NoCommonCodec(format!(
            "{stream} and the offer has no H.264, only {offered}"
        )));
    }
    let mut profiles: Vec<String> = Vec::new();
    for format in &offer.h264 {
        let name = format!(
            "{}{}",
            Profile::of(format.profile_level_id.unwrap_or(0x42_00_10)).name(),
            if format.packetization_mode == 1 {
                ""
            } else {
                " (packetization-mode 0)"
            }
        );
        if !profiles.contains(&name) {
            profiles.push(name);
        }
    }
    let hint = if wanted == Profile::High || wanted == Profile::Main {
        " (some browsers, Firefox and Debian's Chromium among them, take WebRTC H.264 \
         only as Constrained Baseline: with encoder.profile = \"baseline\" the camera \
         sends that)"
    } else {
        ""
    };
    Err(OfferError::NoCommonCodec(format!(
        "{stream}; the offer has H.264 only as {}, with packetization-mode 1 needed{hint}",
        profiles.join(", ")
    )))
}

/// The `profile-level-id` of an RFC 6381 codec string (`avc1.640028` → 0x640028).
pub fn profile_level_id_of_codec(codec: &str) -> Option<u32> {
    let hex = codec.strip_prefix("avc1.")?;
    if hex.len() != 6 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The video part of a Chromium offer (trimmed), as Chromium 120+ sends it.
    pub(crate) const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 112\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rtpmap:106 H264/90000\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:107 H264/90000\r\n\
a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:112 H264/90000\r\n\
a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n";

    #[test]
    fn profiles_are_told_apart_by_their_constraint_flags() {
        assert_eq!(Profile::of(0x42e01f), Profile::ConstrainedBaseline);
        assert_eq!(Profile::of(0x42c01f), Profile::ConstrainedBaseline);
        assert_eq!(Profile::of(0x42001f), Profile::Baseline);
        assert_eq!(Profile::of(0x4d001f), Profile::Main);
        assert_eq!(Profile::of(0x640028), Profile::High);
        assert_eq!(Profile::of(0x640c1f), Profile::ConstrainedHigh);
        assert_eq!(Profile::of(0x6e001f), Profile::Other(0x6e));
    }

    #[test]
    fn the_streams_own_profile_is_chosen_at_any_level() {
        let offer = video_of(CHROMIUM_OFFER).unwrap();
        assert_eq!(offer.h264.len(), 4);
        assert_eq!(offer.mid, "0");
        assert_eq!(offer.others, ["VP8"]);
        // The test pattern (constrained baseline, level 3.1 or 4.0).
        assert_eq!(choose(&offer, 0x42c028).unwrap().pt, 106);
        assert_eq!(offer.h264[0].rtx, Some(103));
        assert_eq!(offer.h264[1].rtx, None);
        // A Pi encoder (High 4.0) against High level 3.1: levels may differ.
        assert_eq!(choose(&offer, 0x640028).unwrap().pt, 112);
        // Main is not offered.
        let error = choose(&offer, 0x4d0028).unwrap_err();
        assert!(matches!(error, OfferError::NoCommonCodec(_)));
        let text = error.to_string();
        assert!(text.contains("Main"), "{text}");
        assert!(text.contains("Constrained Baseline"), "{text}");
    }

    #[test]
    fn an_offer_without_h264_is_refused_naming_what_it_has() {
        let vp8_only = CHROMIUM_OFFER
            .lines()
            .filter(|l| !l.contains("H264") && !l.contains("profile-level-id"))
            .collect::<Vec<_>>()
            .join("\r\n");
        let offer = video_of(&vp8_only).unwrap();
        let error = choose(&offer, 0x42e01f).unwrap_err().to_string();
        assert!(error.contains("no H.264, only VP8"), "{error}");
    }

    #[test]
    fn not_sdp_and_no_video_are_told_apart() {
        assert!(matches!(video_of("hello"), Err(OfferError::NotSdp(_))));
        assert!(matches!(video_of(""), Err(OfferError::NotSdp(_))));
        let audio = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(matches!(video_of(audio), Err(OfferError::NoVideo(_))));
        let send_only = CHROMIUM_OFFER.replace("a=recvonly", "a=sendonly");
        let error = video_of(&send_only).unwrap_err().to_string();
        assert!(error.contains("send-only"), "{error}");
    }

    #[test]
    fn codec_strings_give_the_profile_level_id() {
        assert_eq!(profile_level_id_of_codec("avc1.640028"), Some(0x640028));
        assert_eq!(profile_level_id_of_codec("avc1.42C01F"), Some(0x42c01f));
        assert_eq!(profile_level_id_of_codec("vp8"), None);
        assert_eq!(profile_level_id_of_codec("avc1.6400"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,400}") {
            if let Ok(offer) = video_of(&text) {
                let _ = choose(&offer, 0x640028);
            }
        }
    }
}
