//! Which Raspberry Pi this is: the device-tree model string, `/proc/cpuinfo` and the
//! board revision code.
//!
//! The revision code decoding follows the Raspberry Pi documentation, "Raspberry Pi
//! revision codes" (`documentation/asciidoc/computers/raspberry-pi/revision-codes.adoc`
//! in github.com/raspberrypi/documentation, published at
//! <https://www.raspberrypi.com/documentation/computers/raspberry-pi.html#raspberry-pi-revision-codes>):
//!
//! - old-style codes `0002`..`0015` are a plain table (all BCM2835 boards);
//! - new-style codes have bit 23 (`F`) set and pack the fields
//!   `NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR`: `RRRR` (bits 0-3) the PCB revision, `T` (4-11)
//!   the board type, `P` (12-15) the processor, `C` (16-19) the manufacturer, `M`
//!   (20-22) the memory size (256 MB << M, 7 = "other"), `W` (25) the warranty bit.
//!
//! The documentation advises deciding on the type and memory fields rather than on
//! whole codes, which is what [`decode_revision`] does: a new board revision or a new
//! factory still decodes.

use serde::{Serialize, Serializer};

/// The family of board; what the software cares about, not every variant (3B, 3B+ and
/// 3A+ are all [`Board::Pi3`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Board {
    /// Raspberry Pi Zero (BCM2835, no wireless).
    #[serde(rename = "zero")]
    Zero,
    /// Raspberry Pi Zero W / WH (BCM2835).
    #[serde(rename = "zero_w")]
    ZeroW,
    /// Raspberry Pi Zero 2 W (BCM2710A1, which revision codes call BCM2837).
    #[serde(rename = "zero_2_w")]
    Zero2W,
    /// The first generation: models A, B, A+, B+ (BCM2835).
    #[serde(rename = "pi1")]
    Pi1,
    /// Raspberry Pi 2 Model B (BCM2836, later BCM2837).
    #[serde(rename = "pi2")]
    Pi2,
    /// Raspberry Pi 3 models B, B+, A+ (BCM2837).
    #[serde(rename = "pi3")]
    Pi3,
    /// Raspberry Pi 4 Model B (BCM2711).
    #[serde(rename = "pi4")]
    Pi4,
    /// Raspberry Pi 400 (BCM2711).
    #[serde(rename = "pi400")]
    Pi400,
    /// Compute Module 1 (BCM2835).
    #[serde(rename = "cm1")]
    Cm1,
    /// Compute Module 3 and 3+ (BCM2837).
    #[serde(rename = "cm3")]
    Cm3,
    /// Compute Module 4 and 4S (BCM2711).
    #[serde(rename = "cm4")]
    Cm4,
    /// Raspberry Pi 5 (BCM2712).
    #[serde(rename = "pi5")]
    Pi5,
    /// Raspberry Pi 500 / 500+ (BCM2712).
    #[serde(rename = "pi500")]
    Pi500,
    /// Compute Module 5 and 5 Lite (BCM2712).
    #[serde(rename = "cm5")]
    Cm5,
    /// Compute Module 0.
    #[serde(rename = "cm0")]
    Cm0,
    /// A Raspberry Pi this code does not know (prototype, internal, or newer).
    #[serde(rename = "other")]
    Other,
}

/// The system on chip, as the revision code names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Soc {
    /// ARM1176JZF-S (ARMv6), VideoCore IV: Pi 1, Zero, Zero W, CM1.
    #[serde(rename = "BCM2835")]
    Bcm2835,
    /// Cortex-A7 (ARMv7), VideoCore IV: the first Pi 2.
    #[serde(rename = "BCM2836")]
    Bcm2836,
    /// Cortex-A53 (ARMv8), VideoCore IV: Pi 3, later Pi 2, CM3, Zero 2 W.
    #[serde(rename = "BCM2837")]
    Bcm2837,
    /// Cortex-A72 (ARMv8), VideoCore VI: Pi 4, 400, CM4.
    #[serde(rename = "BCM2711")]
    Bcm2711,
    /// Cortex-A76 (ARMv8), VideoCore VII, no H.264 encoder: Pi 5, 500, CM5.
    #[serde(rename = "BCM2712")]
    Bcm2712,
}

impl Soc {
    /// The chip's name, e.g. `BCM2711`.
    pub fn name(self) -> &'static str {
        match self {
            Soc::Bcm2835 => "BCM2835",
            Soc::Bcm2836 => "BCM2836",
            Soc::Bcm2837 => "BCM2837",
            Soc::Bcm2711 => "BCM2711",
            Soc::Bcm2712 => "BCM2712",
        }
    }

    /// True when the chip's VideoCore has the H.264 encoder that the `bcm2835-codec`
    /// driver exposes: every chip before the BCM2712 (Pi 5), which dropped it.
    pub fn has_hw_h264_encoder(self) -> bool {
        !matches!(self, Soc::Bcm2712)
    }

    /// The CPU cores' architecture.
    pub fn cpu_arch(self) -> CpuArch {
        match self {
            Soc::Bcm2835 => CpuArch::Armv6,
            Soc::Bcm2836 => CpuArch::Armv7,
            Soc::Bcm2837 | Soc::Bcm2711 | Soc::Bcm2712 => CpuArch::Aarch64,
        }
    }

    /// The chip from its device-tree `compatible` name (`bcm2711`), if known.
    fn from_compatible(name: &str) -> Option<Soc> {
        match name {
            "bcm2835" => Some(Soc::Bcm2835),
            "bcm2836" => Some(Soc::Bcm2836),
            "bcm2837" => Some(Soc::Bcm2837),
            "bcm2711" => Some(Soc::Bcm2711),
            "bcm2712" => Some(Soc::Bcm2712),
            _ => None,
        }
    }
}

/// The CPU architecture the chip implements. An ARMv8 chip running a 32-bit OS is
/// still [`CpuArch::Aarch64`] here: this describes the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CpuArch {
    /// ARMv6 (BCM2835): single core, armhf binaries built for ARMv7 do not run.
    #[serde(rename = "armv6")]
    Armv6,
    /// ARMv7 (BCM2836).
    #[serde(rename = "armv7")]
    Armv7,
    /// ARMv8 / AArch64 (BCM2837 and later).
    #[serde(rename = "aarch64")]
    Aarch64,
}

/// Old-style or new-style revision code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisionStyle {
    /// Sequential codes `0002`..`0015` of the first boards.
    Old,
    /// Bit-field codes (bit 23 set), from the Pi 2 on.
    New,
}

/// A decoded board revision code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// The code as `/proc/cpuinfo` shows it, e.g. `c03111`.
    #[serde(serialize_with = "serialize_hex")]
    pub code: u32,
    /// Old-style (table) or new-style (bit fields).
    pub style: RevisionStyle,
    /// The board type as the documentation names it, e.g. `4B`, `Zero W`, `CM4`.
    pub type_name: &'static str,
    /// The board family.
    pub board: Board,
    /// The PCB revision, e.g. `1.4`.
    pub pcb_revision: String,
    /// The processor field, when it names a known chip.
    pub soc: Option<Soc>,
    /// Memory size in MB, when the code says (`None` for "other" and for old-style
    /// `0015`, which was made with 256 MB and 512 MB).
    pub memory_mb: Option<u32>,
    /// The manufacturer, when known.
    pub manufacturer: Option<&'static str>,
    /// The warranty bit: set when the board has been over-volted/over-clocked.
    pub warranty_voided: bool,
}

fn serialize_hex<S: Serializer>(code: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{code:04x}"))
}

/// The Raspberry Pi this runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiModel {
    /// The model string, e.g. `Raspberry Pi 4 Model B Rev 1.4` (from the device tree
    /// or `/proc/cpuinfo`, or built from the revision code).
    pub name: String,
    /// The board family.
    pub board: Board,
    /// The system on chip, when known.
    pub soc: Option<Soc>,
    /// Memory size in MB, when the revision code says.
    pub memory_mb: Option<u32>,
    /// True when the chip has the VideoCore H.264 encoder (every chip before the
    /// BCM2712 of the Pi 5). Whether its driver is loaded is a separate question: see
    /// [`super::ProbeReport::hardware_encoder`].
    pub has_hw_h264_encoder: bool,
    /// The CPU architecture of the chip, when known.
    pub cpu_arch: Option<CpuArch>,
    /// The decoded revision code, when one was found.
    pub revision: Option<Revision>,
}

/// Memory sizes of the `MMM` field, in MB; 7 is "other".
fn memory_mb(field: u32) -> Option<u32> {
    if field <= 6 {
        Some(256u32 << field)
    } else {
        None
    }
}

/// The `TTTTTTTT` field: the documentation's name and the board family.
fn board_type(field: u32) -> Option<(&'static str, Board)> {
    let entry = match field {
        0x00 => ("A", Board::Pi1),
        0x01 => ("B", Board::Pi1),
        0x02 => ("A+", Board::Pi1),
        0x03 => ("B+", Board::Pi1),
        0x04 => ("2B", Board::Pi2),
        0x05 => ("Alpha", Board::Other),
        0x06 => ("CM1", Board::Cm1),
        0x08 => ("3B", Board::Pi3),
        0x09 => ("Zero", Board::Zero),
        0x0a => ("CM3", Board::Cm3),
        0x0c => ("Zero W", Board::ZeroW),
        0x0d => ("3B+", Board::Pi3),
        0x0e => ("3A+", Board::Pi3),
        0x10 => ("CM3+", Board::Cm3),
        0x11 => ("4B", Board::Pi4),
        0x12 => ("Zero 2 W", Board::Zero2W),
        0x13 => ("400", Board::Pi400),
        0x14 => ("CM4", Board::Cm4),
        0x15 => ("CM4S", Board::Cm4),
        0x17 => ("5", Board::Pi5),
        0x18 => ("CM5", Board::Cm5),
        0x19 => ("500", Board::Pi500),
        0x1a => ("CM5 Lite", Board::Cm5),
        0x1b => ("CM0", Board::Cm0),
        _ => return None,
    };
    Some(entry)
}

/// The `PPPP` field.
fn processor(field: u32) -> Option<Soc> {
    match field {
        0 => Some(Soc::Bcm2835),
        1 => Some(Soc::Bcm2836),
        2 => Some(Soc::Bcm2837),
        3 => Some(Soc::Bcm2711),
        4 => Some(Soc::Bcm2712),
        _ => None,
    }
}

/// The `CCCC` field.
fn manufacturer(field: u32) -> Option<&'static str> {
    match field {
        0 => Some("Sony UK"),
        1 => Some("Egoman"),
        2 | 4 => Some("Embest"),
        3 => Some("Sony Japan"),
        5 => Some("Stadium"),
        _ => None,
    }
}

/// One row of the old-style table: type, PCB revision, memory (MB), manufacturer.
type OldRow = (&'static str, &'static str, Option<u32>, &'static str);

/// The old-style table (codes `0002`..`0015`).
fn old_style(code: u32) -> Option<OldRow> {
    let row = match code {
        0x02 | 0x03 => ("B", "1.0", Some(256), "Egoman"),
        0x04 => ("B", "2.0", Some(256), "Sony UK"),
        0x05 => ("B", "2.0", Some(256), "Qisda"),
        0x06 => ("B", "2.0", Some(256), "Egoman"),
        0x07 => ("A", "2.0", Some(256), "Egoman"),
        0x08 => ("A", "2.0", Some(256), "Sony UK"),
        0x09 => ("A", "2.0", Some(256), "Qisda"),
        0x0d | 0x0f => ("B", "2.0", Some(512), "Egoman"),
        0x0e => ("B", "2.0", Some(512), "Sony UK"),
        0x10 => ("B+", "1.2", Some(512), "Sony UK"),
        0x11 => ("CM1", "1.0", Some(512), "Sony UK"),
        0x12 => ("A+", "1.1", Some(256), "Sony UK"),
        0x13 => ("B+", "1.2", Some(512), "Embest"),
        0x14 => ("CM1", "1.0", Some(512), "Embest"),
        0x15 => ("A+", "1.1", None, "Embest"),
        _ => return None,
    };
    Some(row)
}

/// Decodes a board revision code. `None` when the code is not one this table knows
/// (an unknown board type, or an old-style code outside `0002`..`0015`).
pub fn decode_revision(code: u32) -> Option<Revision> {
    const NEW_FLAG: u32 = 1 << 23;
    const WARRANTY: u32 = 1 << 25;
    if code & NEW_FLAG != 0 {
        let (type_name, board) = board_type((code >> 4) & 0xff)?;
        return Some(Revision {
            code,
            style: RevisionStyle::New,
            type_name,
            board,
            pcb_revision: format!("1.{}", code & 0xf),
            soc: processor((code >> 12) & 0xf),
            memory_mb: memory_mb((code >> 20) & 0x7),
            manufacturer: manufacturer((code >> 16) & 0xf),
            warranty_voided: code & WARRANTY != 0,
        });
    }
    // Old style: an over-volted board shows the warranty bit (bit 24) in front, e.g.
    // `1000002`; the code itself is the low bits.
    let warranty_voided = code & 0xff00_0000 != 0;
    let (type_name, pcb_revision, memory_mb, manufacturer) = old_style(code & 0x00ff_ffff)?;
    let board = if type_name == "CM1" {
        Board::Cm1
    } else {
        Board::Pi1
    };
    Some(Revision {
        code,
        style: RevisionStyle::Old,
        type_name,
        board,
        pcb_revision: pcb_revision.to_owned(),
        soc: Some(Soc::Bcm2835),
        memory_mb,
        manufacturer: Some(manufacturer),
        warranty_voided,
    })
}

/// Parses a revision code as `/proc/cpuinfo` prints it (`a02082`, `0x...` accepted);
/// `None` unless it is 1 to 8 hex digits.
pub fn parse_revision(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The lines of `/proc/cpuinfo` that identify a Raspberry Pi.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// The `Model` line (Raspberry Pi kernels add it), e.g. `Raspberry Pi 3 Model B Rev 1.2`.
    pub model: Option<String>,
    /// The `Revision` line's value, unparsed.
    pub revision: Option<String>,
    /// The `Hardware` line, e.g. `BCM2835` (every Pi says so, whatever its chip).
    pub hardware: Option<String>,
}

/// Extracts the `Model`, `Revision` and `Hardware` lines (`Key<tabs> : value`). The last
/// occurrence wins; other lines are ignored.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "Model" => info.model = Some(value.to_owned()),
            "Revision" => info.revision = Some(value.to_owned()),
            "Hardware" => info.hardware = Some(value.to_owned()),
            _ => {}
        }
    }
    info
}

/// Cleans a device-tree string property: the bytes up to the first NUL, lossily
/// decoded, trimmed. Also tells whether the bytes were valid UTF-8.
pub fn dt_string(bytes: &[u8]) -> (String, bool) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let head = bytes.get(..end).unwrap_or(bytes);
    let valid = std::str::from_utf8(head).is_ok();
    (String::from_utf8_lossy(head).trim().to_owned(), valid)
}

/// True for a model string naming a Raspberry Pi.
pub fn is_pi_name(name: &str) -> bool {
    name.starts_with("Raspberry Pi")
}

/// The board family from a model string such as `Raspberry Pi Zero 2 W Rev 1.0` or
/// `Raspberry Pi Compute Module 4 Rev 1.0`; `None` if it is not a Raspberry Pi name.
pub fn board_from_name(name: &str) -> Option<Board> {
    let rest = name.strip_prefix("Raspberry Pi")?;
    let mut words = rest.split_whitespace();
    let board = match words.next() {
        Some("Zero") => match words.next() {
            Some("2") => Board::Zero2W,
            Some("W") | Some("WH") => Board::ZeroW,
            _ => Board::Zero,
        },
        Some("Compute") => {
            // "Compute Module", then a generation number or nothing (CM1).
            let _module = words.next();
            match words.next() {
                Some("3") => Board::Cm3,
                Some("4") | Some("4S") => Board::Cm4,
                Some("5") => Board::Cm5,
                Some("0") => Board::Cm0,
                _ => Board::Cm1,
            }
        }
        Some("Model") => Board::Pi1,
        Some("2") => Board::Pi2,
        Some("3") => Board::Pi3,
        Some("4") => Board::Pi4,
        Some("400") => Board::Pi400,
        Some("5") => Board::Pi5,
        Some("500") | Some("500+") => Board::Pi500,
        _ => Board::Other,
    };
    Some(board)
}

/// The chip a board family has, where that is unambiguous (a Pi 2 may be BCM2836 or
/// BCM2837; its revision code or device tree says which).
pub fn default_soc(board: Board) -> Option<Soc> {
    match board {
        Board::Zero | Board::ZeroW | Board::Pi1 | Board::Cm1 => Some(Soc::Bcm2835),
        Board::Pi2 => Some(Soc::Bcm2836),
        Board::Pi3 | Board::Cm3 | Board::Zero2W => Some(Soc::Bcm2837),
        Board::Pi4 | Board::Pi400 | Board::Cm4 => Some(Soc::Bcm2711),
        Board::Pi5 | Board::Pi500 | Board::Cm5 => Some(Soc::Bcm2712),
        Board::Cm0 | Board::Other => None,
    }
}

/// The chip named by a device-tree `compatible` property (NUL-separated strings such
/// as `raspberrypi,4-model-b` `brcm,bcm2711`).
pub fn soc_from_compatible(bytes: &[u8]) -> Option<Soc> {
    bytes
        .split(|&b| b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter_map(|entry| entry.strip_prefix("brcm,"))
        .find_map(Soc::from_compatible)
}

/// What [`identify`] is given: the raw facts read from the files.
#[derive(Debug, Clone, Default)]
pub struct ModelFacts {
    /// `/proc/device-tree/model`, cleaned.
    pub dt_model: Option<String>,
    /// `/proc/device-tree/compatible`, raw.
    pub dt_compatible: Option<Vec<u8>>,
    /// `/proc/device-tree/system/linux,revision` (4 bytes, big-endian), when present.
    pub dt_revision: Option<u32>,
    /// The identifying lines of `/proc/cpuinfo`.
    pub cpuinfo: CpuInfo,
}

/// Decides from the facts whether this is a Raspberry Pi and which. Problems (an
/// unparsable revision, a model string that disagrees with the revision code) are
/// added to `notes`.
pub fn identify(facts: &ModelFacts, notes: &mut Vec<String>) -> Option<PiModel> {
    let dt_name = facts.dt_model.as_deref().filter(|name| is_pi_name(name));
    let cpu_name = facts
        .cpuinfo
        .model
        .as_deref()
        .filter(|name| is_pi_name(name));

    let mut code = None;
    if let Some(text) = facts.cpuinfo.revision.as_deref() {
        match parse_revision(text) {
            Some(value) => code = Some(value),
            None => notes.push(format!(
                "/proc/cpuinfo has a Revision line that is not a hex code: {:?}",
                truncate(text, 40)
            )),
        }
    }
    if code.is_none() {
        code = facts.dt_revision;
    }

    // Older Raspberry Pi kernels have neither a device tree model nor a Model line, but
    // say `Hardware : BCM27xx` and give a revision code that decodes.
    let bcm_hardware = facts
        .cpuinfo
        .hardware
        .as_deref()
        .is_some_and(|hw| hw.starts_with("BCM2") && hw.len() == 7);
    let decoded = code.and_then(decode_revision);

    let name = match (dt_name, cpu_name, &decoded) {
        (Some(name), _, _) | (None, Some(name), _) => name.to_owned(),
        (None, None, Some(rev)) if bcm_hardware => {
            format!("Raspberry Pi {} Rev {}", rev.type_name, rev.pcb_revision)
        }
        _ => return None,
    };

    if let (Some(value), None) = (code, &decoded) {
        notes.push(format!(
            "revision code {value:04x} is not one this program knows; the board is judged from its name"
        ));
    }

    let name_board = board_from_name(&name);
    let board = match (&decoded, name_board) {
        (Some(rev), Some(from_name)) => {
            if rev.board != from_name && from_name != Board::Other {
                notes.push(format!(
                    "the model name {name:?} and revision code {:04x} disagree; trusting the revision code",
                    rev.code
                ));
            }
            rev.board
        }
        (Some(rev), None) => rev.board,
        (None, Some(from_name)) => from_name,
        (None, None) => Board::Other,
    };

    let soc = decoded
        .as_ref()
        .and_then(|rev| rev.soc)
        .or_else(|| facts.dt_compatible.as_deref().and_then(soc_from_compatible))
        .or_else(|| default_soc(board));

    Some(PiModel {
        name,
        board,
        soc,
        memory_mb: decoded.as_ref().and_then(|rev| rev.memory_mb),
        has_hw_h264_encoder: soc.is_some_and(Soc::has_hw_h264_encoder),
        cpu_arch: soc.map(Soc::cpu_arch),
        revision: decoded,
    })
}

/// At most `max` characters of `text`, for quoting garbage in notes.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(code: u32) -> Revision {
        decode_revision(code).unwrap()
    }

    #[test]
    fn documented_new_style_codes() {
        // Rows of the "New-style revision codes in use" table.
        let r = rev(0xa02082);
        assert_eq!((r.type_name, r.board), ("3B", Board::Pi3));
        assert_eq!(r.soc, Some(Soc::Bcm2837));
        assert_eq!(r.memory_mb, Some(1024));
        assert_eq!(r.manufacturer, Some("Sony UK"));
        assert_eq!(r.pcb_revision, "1.2");
        assert_eq!(r.style, RevisionStyle::New);

        let r = rev(0xa22082);
        assert_eq!((r.board, r.manufacturer), (Board::Pi3, Some("Embest")));

        let r = rev(0xc03111);
        assert_eq!((r.type_name, r.board), ("4B", Board::Pi4));
        assert_eq!((r.soc, r.memory_mb), (Some(Soc::Bcm2711), Some(4096)));
        assert_eq!(r.pcb_revision, "1.1");

        let r = rev(0xd03114);
        assert_eq!((r.board, r.memory_mb), (Board::Pi4, Some(8192)));
        assert_eq!(r.pcb_revision, "1.4");

        let r = rev(0xd04170);
        assert_eq!((r.type_name, r.board), ("5", Board::Pi5));
        assert_eq!((r.soc, r.memory_mb), (Some(Soc::Bcm2712), Some(8192)));

        let r = rev(0xe04171);
        assert_eq!((r.board, r.memory_mb), (Board::Pi5, Some(16384)));

        let r = rev(0x9000c1);
        assert_eq!((r.type_name, r.board), ("Zero W", Board::ZeroW));
        assert_eq!((r.soc, r.memory_mb), (Some(Soc::Bcm2835), Some(512)));

        let r = rev(0x902120);
        assert_eq!((r.type_name, r.board), ("Zero 2 W", Board::Zero2W));
        assert_eq!((r.soc, r.memory_mb), (Some(Soc::Bcm2837), Some(512)));

        let r = rev(0x900093);
        assert_eq!((r.board, r.pcb_revision.as_str()), (Board::Zero, "1.3"));

        let r = rev(0xa01041);
        assert_eq!((r.board, r.soc), (Board::Pi2, Some(Soc::Bcm2836)));
        let r = rev(0xa02042);
        assert_eq!((r.board, r.soc), (Board::Pi2, Some(Soc::Bcm2837)));

        assert_eq!(rev(0xc03130).board, Board::Pi400);
        assert_eq!(rev(0xa020a0).board, Board::Cm3);
        assert_eq!(rev(0xa02100).board, Board::Cm3);
        assert_eq!(rev(0xd03140).board, Board::Cm4);
        assert_eq!(rev(0xd04180).board, Board::Cm5);
        assert_eq!(rev(0xd041a0).board, Board::Cm5);
        assert_eq!(rev(0xe04190).board, Board::Pi500);
        assert_eq!(rev(0xa020d3).type_name, "3B+");
        assert_eq!(rev(0x9020e0).type_name, "3A+");
        assert_eq!(rev(0x900032).board, Board::Pi1);
        assert_eq!(rev(0x900061).board, Board::Cm1);
    }

    #[test]
    fn high_bits_do_not_change_the_board() {
        // Bit 31 set (over-voltage disallowed), as a mailbox query returns it.
        let r = rev(0x80c0_3111);
        assert_eq!((r.board, r.memory_mb), (Board::Pi4, Some(4096)));
        assert!(!r.warranty_voided);
        let r = rev(0x02a0_2082);
        assert!(r.warranty_voided);
        assert_eq!(r.board, Board::Pi3);
    }

    #[test]
    fn old_style_codes() {
        let r = rev(0x000e);
        assert_eq!((r.type_name, r.board), ("B", Board::Pi1));
        assert_eq!((r.memory_mb, r.manufacturer), (Some(512), Some("Sony UK")));
        assert_eq!(r.pcb_revision, "2.0");
        assert_eq!(r.style, RevisionStyle::Old);
        assert_eq!(r.soc, Some(Soc::Bcm2835));
        assert!(!r.warranty_voided);

        assert_eq!(rev(0x0002).memory_mb, Some(256));
        assert_eq!(rev(0x0011).board, Board::Cm1);
        assert_eq!(rev(0x0015).memory_mb, None);
        assert_eq!(rev(0x0010).type_name, "B+");
        // Over-volted: "100" in front.
        let r = rev(0x100_0002);
        assert!(r.warranty_voided);
        assert_eq!(r.board, Board::Pi1);

        for unknown in [0x0000, 0x0001, 0x000a, 0x000b, 0x000c, 0x0016, 0xffff] {
            assert_eq!(decode_revision(unknown), None, "{unknown:04x}");
        }
    }

    #[test]
    fn unknown_new_style_types_are_not_guessed() {
        // Type 0x07 and 0x0b are not in the table; 0xff neither.
        assert_eq!(decode_revision(0xa02070), None);
        assert_eq!(decode_revision(0xa020b0), None);
        assert_eq!(decode_revision(0xa02ff0), None);
        // Memory "other" and an unknown processor decode with the gaps left empty.
        let r = rev(0xf99111);
        assert_eq!((r.board, r.memory_mb, r.soc), (Board::Pi4, None, None));
        assert_eq!(r.manufacturer, None);
    }

    #[test]
    fn revision_text() {
        assert_eq!(parse_revision("a02082"), Some(0xa02082));
        assert_eq!(parse_revision("  c03111\n"), Some(0xc03111));
        assert_eq!(parse_revision("0x9000C1"), Some(0x9000c1));
        assert_eq!(parse_revision("000e"), Some(0xe));
        assert_eq!(parse_revision("1000002"), Some(0x100_0002));
        assert_eq!(parse_revision(""), None);
        assert_eq!(parse_revision("0x"), None);
        assert_eq!(parse_revision("xyz"), None);
        assert_eq!(parse_revision("+a0"), None);
        assert_eq!(parse_revision("123456789"), None);
        assert_eq!(parse_revision("a02082 extra"), None);
    }

    #[test]
    fn cpuinfo_lines() {
        let text = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\n\
                    Revision\t: c03114\nSerial\t\t: 100000002a3bbd45\n\
                    Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        let info = parse_cpuinfo(text);
        assert_eq!(
            info.model.as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(info.revision.as_deref(), Some("c03114"));
        assert_eq!(info.hardware.as_deref(), Some("BCM2835"));
        // model name (x86) is not Model.
        let laptop = parse_cpuinfo("model name\t: Intel(R) Core(TM)\nmodel\t\t: 142\n");
        assert_eq!(laptop, CpuInfo::default());
    }

    #[test]
    fn names() {
        let cases = [
            ("Raspberry Pi 4 Model B Rev 1.4", Board::Pi4),
            ("Raspberry Pi Zero W Rev 1.1", Board::ZeroW),
            ("Raspberry Pi Zero Rev 1.3", Board::Zero),
            ("Raspberry Pi Zero 2 W Rev 1.0", Board::Zero2W),
            ("Raspberry Pi 5 Model B Rev 1.0", Board::Pi5),
            ("Raspberry Pi 3 Model B Plus Rev 1.3", Board::Pi3),
            ("Raspberry Pi 3 Model A Plus Rev 1.0", Board::Pi3),
            ("Raspberry Pi 2 Model B Rev 1.1", Board::Pi2),
            ("Raspberry Pi 400 Rev 1.0", Board::Pi400),
            ("Raspberry Pi 500 Rev 1.0", Board::Pi500),
            ("Raspberry Pi Compute Module 4 Rev 1.0", Board::Cm4),
            ("Raspberry Pi Compute Module 3 Plus Rev 1.0", Board::Cm3),
            ("Raspberry Pi Compute Module 5 Rev 1.0", Board::Cm5),
            ("Raspberry Pi Compute Module Rev 1.1", Board::Cm1),
            ("Raspberry Pi Model B Plus Rev 1.2", Board::Pi1),
            ("Raspberry Pi Model B Rev 2", Board::Pi1),
            ("Raspberry Pi 9 Model X", Board::Other),
        ];
        for (name, board) in cases {
            assert_eq!(board_from_name(name), Some(board), "{name}");
        }
        assert_eq!(board_from_name("Pine64 RockPro64 v2.1"), None);
    }

    #[test]
    fn dt_strings() {
        assert_eq!(
            dt_string(b"Raspberry Pi 4 Model B Rev 1.4\0"),
            ("Raspberry Pi 4 Model B Rev 1.4".to_owned(), true)
        );
        assert_eq!(dt_string(b"abc"), ("abc".to_owned(), true));
        assert_eq!(dt_string(b"a\xffb\0junk"), ("a\u{fffd}b".to_owned(), false));
        assert_eq!(dt_string(b""), (String::new(), true));
        assert_eq!(
            soc_from_compatible(b"raspberrypi,5-model-b\0brcm,bcm2712\0"),
            Some(Soc::Bcm2712)
        );
        assert_eq!(soc_from_compatible(b"brcm,bcm9999\0"), None);
        assert_eq!(soc_from_compatible(b"\xff\xfe"), None);
    }

    #[test]
    fn identify_prefers_the_revision_code() {
        let mut notes = Vec::new();
        let facts = ModelFacts {
            dt_model: Some("Raspberry Pi 3 Model B Rev 1.2".into()),
            cpuinfo: CpuInfo {
                revision: Some("a02082".into()),
                ..CpuInfo::default()
            },
            ..ModelFacts::default()
        };
        let model = identify(&facts, &mut notes).unwrap();
        assert_eq!(model.board, Board::Pi3);
        assert_eq!(model.memory_mb, Some(1024));
        assert_eq!(model.cpu_arch, Some(CpuArch::Aarch64));
        assert!(model.has_hw_h264_encoder);
        assert!(notes.is_empty(), "{notes:?}");

        // A disagreeing name is noted, the revision code wins.
        let facts = ModelFacts {
            dt_model: Some("Raspberry Pi 4 Model B Rev 1.4".into()),
            ..facts
        };
        let model = identify(&facts, &mut notes).unwrap();
        assert_eq!(model.board, Board::Pi3);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn identify_from_hardware_and_revision_only() {
        let mut notes = Vec::new();
        let facts = ModelFacts {
            cpuinfo: parse_cpuinfo("Hardware\t: BCM2708\nRevision\t: 000e\n"),
            ..ModelFacts::default()
        };
        let model = identify(&facts, &mut notes).unwrap();
        assert_eq!(model.name, "Raspberry Pi B Rev 2.0");
        assert_eq!(model.board, Board::Pi1);
        assert_eq!(model.cpu_arch, Some(CpuArch::Armv6));
        assert_eq!(model.memory_mb, Some(512));

        // Hardware alone, with a revision that does not decode: not a Pi we can name.
        let facts = ModelFacts {
            cpuinfo: parse_cpuinfo("Hardware\t: BCM2708\nRevision\t: 0000\n"),
            ..ModelFacts::default()
        };
        assert_eq!(identify(&facts, &mut notes), None);
    }

    #[test]
    fn identify_non_pi() {
        let mut notes = Vec::new();
        let facts = ModelFacts {
            dt_model: Some("Pine64 RockPro64 v2.1".into()),
            cpuinfo: parse_cpuinfo("Revision\t: 0000\nHardware\t: Generic DT based system\n"),
            ..ModelFacts::default()
        };
        assert_eq!(identify(&facts, &mut notes), None);
        assert_eq!(identify(&ModelFacts::default(), &mut notes), None);
    }

    #[test]
    fn identify_with_a_garbage_revision() {
        let mut notes = Vec::new();
        let facts = ModelFacts {
            dt_model: Some("Raspberry Pi Zero W Rev 1.1".into()),
            dt_compatible: Some(b"raspberrypi,model-zero-w\0brcm,bcm2835\0".to_vec()),
            cpuinfo: parse_cpuinfo("Revision\t: zz9\n"),
            ..ModelFacts::default()
        };
        let model = identify(&facts, &mut notes).unwrap();
        assert_eq!(model.board, Board::ZeroW);
        assert_eq!(model.soc, Some(Soc::Bcm2835));
        assert_eq!(model.memory_mb, None);
        assert_eq!(model.revision, None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("zz9"));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn decoding_any_code_is_consistent(code in any::<u32>()) {
                if let Some(r) = decode_revision(code) {
                    prop_assert_eq!(r.code, code);
                    if let Some(mb) = r.memory_mb {
                        prop_assert!((256..=16384).contains(&mb));
                    }
                    if r.style == RevisionStyle::New {
                        prop_assert!(code & (1 << 23) != 0);
                    }
                }
            }

            #[test]
            fn text_parsers_never_panic(text in ".{0,200}") {
                let _ = parse_revision(&text);
                let _ = parse_cpuinfo(&text);
                let _ = board_from_name(&text);
            }

            #[test]
            fn cpuinfo_finds_embedded_lines(
                noise in "[a-z \t]{0,20}",
                code in any::<u32>(),
            ) {
                let text = format!("{noise}\nRevision\t: {code:x}\n{noise}\n");
                let info = parse_cpuinfo(&text);
                let parsed = info.revision.as_deref().and_then(parse_revision);
                prop_assert_eq!(parsed, Some(code));
            }

            #[test]
            fn byte_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let (text, _) = dt_string(&bytes);
                prop_assert!(!text.contains('\0'));
                let _ = soc_from_compatible(&bytes);
                let mut notes = Vec::new();
                let facts = ModelFacts {
                    dt_model: Some(text.clone()),
                    dt_compatible: Some(bytes.clone()),
                    dt_revision: None,
                    cpuinfo: parse_cpuinfo(&String::from_utf8_lossy(&bytes)),
                };
                let _ = identify(&facts, &mut notes);
            }
        }
    }
}
