//! Which cameras libcamera sees, from `rpicam-vid --list-cameras` (every rpicam app
//! takes the option). `camera.source = "auto"` asks before it chooses rpicam, so a
//! Pi with the camera stack loaded but no camera connected shows the test pattern
//! and says why, instead of a camera that never starts.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One camera as libcamera lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibcameraCamera {
    /// Its number (rpicam-vid `--camera N`).
    pub index: u32,
    /// The sensor, e.g. `imx708`.
    pub sensor: String,
    /// The sensor's full size and format, e.g. `4608x2592 10-bit RGGB`.
    pub mode: String,
    /// Where it sits in the device tree.
    pub path: String,
}

/// How long `--list-cameras` may take (libcamera starts in well under a second).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// The cameras in `--list-cameras` output: lines like
/// `0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)`.
/// "No cameras available!" and mode lines give nothing.
pub fn parse_list(output: &str) -> Vec<LibcameraCamera> {
    output
        .lines()
        .filter_map(|line| {
            let (index, rest) = line.trim().split_once(" : ")?;
            let index = index.trim().parse().ok()?;
            let (sensor, rest) = rest.split_once(" [")?;
            let (mode, rest) = rest.split_once(']')?;
            let path = rest
                .trim()
                .strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'))
                .unwrap_or_default();
            Some(LibcameraCamera {
                index,
                sensor: sensor.trim().to_owned(),
                mode: mode.trim().to_owned(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// Runs `program --list-cameras` and parses what it prints, giving up after
/// `timeout` (the process is killed then).
pub fn list_cameras(program: &Path, timeout: Duration) -> Result<Vec<LibcameraCamera>, String> {
    let mut child = Command::new(program)
        .arg("--list-cameras")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {} --list-cameras: {e}", program.display()))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stdout) = stdout.as_mut() {
            // At most 64 KiB: the list is a few lines.
            let _ = stdout.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --list-cameras did not answer within {} s",
                    program.display(),
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("waiting for {}: {e}", program.display())),
        }
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() && parse_list(&text).is_empty() {
        return Err(format!(
            "{} --list-cameras failed ({status})",
            program.display()
        ));
    }
    Ok(parse_list(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CAMERAS: &str = "Available cameras\n-----------------\n\
        0 : imx708 [4608x2592 10-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a)\n    \
        Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n                             \
        2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]\n\n\
        1 : ov5647 [2592x1944 10-bit GBRG] (/base/axi/pcie@120000/rp1/i2c@80000/ov5647@36)\n    \
        Modes: 'SGBRG10_CSI2P' : 640x480 [58.92 fps - (16, 0)/2560x1920 crop]\n";

    #[test]
    fn lists_every_camera_and_skips_mode_lines() {
        let cameras = parse_list(TWO_CAMERAS);
        assert_eq!(cameras.len(), 2);
        assert_eq!(cameras[0].index, 0);
        assert_eq!(cameras[0].sensor, "imx708");
        assert_eq!(cameras[0].mode, "4608x2592 10-bit RGGB");
        assert!(cameras[0].path.ends_with("imx708@1a"));
        assert_eq!(cameras[1].sensor, "ov5647");
    }

    #[test]
    fn no_cameras_and_garbage_give_nothing() {
        assert!(parse_list("No cameras available!\n").is_empty());
        assert!(parse_list("x : y\n : [ ] ()\n0 : \n\u{0}\u{ffff}").is_empty());
    }
}
