//! The modules' layers (ARCHITECTURE.md, "Layers"): a module of `app/src/` uses
//! only modules of lower layers, so no arrow runs back up. Read from the source
//! text: every `crate::<module>` outside comments, in code and tests alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer; a module may use only lower layers.
const LAYERS: &[(&str, u32)] = &[
    // Pure foundations: H.264 parsing and the configuration's types.
    ("h264", 0),
    ("access", 0),
    ("config", 1),
    ("netif", 0),
    // What the accept loops of HTTP and RTSP share.
    ("listen", 0),
    // RTP for H.264: packetization, timestamps, RTCP (RTSP and WebRTC send it).
    ("rtp", 1),
    // The hardware boundary (its test fakes make H.264 with `h264`).
    ("v4l2", 1),
    // What this board is; encoding raw pictures; the fan-out hub.
    ("probe", 2),
    ("encode", 2),
    ("hub", 2),
    // Sources: they encode, and their supervisor publishes to the hub.
    ("source", 3),
    // The hub's consumers and the boot-time network setup.
    ("websocket", 4),
    ("rtsp", 4),
    ("privacy_led", 4),
    ("service", 4),
    ("setup", 4),
    ("snapshot", 4),
    // Updates through RAUC: the [update] section, and the password's state.
    ("update", 4),
    // WebRTC: a consumer of the hub that speaks the WebSocket protocol's JSON
    // messages on its data channel.
    ("webrtc", 5),
    // The shared HTTP layer that mounts the protocols.
    ("web", 6),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `line` names as `crate::<module>`, outside a `//` comment.
fn crate_uses(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn every_module_of_lib_rs_has_a_layer() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layered: Vec<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort_unstable();
    let mut layered_sorted = layered.clone();
    layered_sorted.sort_unstable();
    assert_eq!(
        declared_sorted, layered_sorted,
        "lib.rs's modules and the layer table differ: give a new module a layer here and in ARCHITECTURE.md"
    );
}

#[test]
fn no_module_uses_one_of_its_own_or_a_higher_layer() {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(src()).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The library's root and the command line sit above every layer.
        let Some(&own) = layer.get(top.as_str()) else {
            assert!(
                top == "lib" || top == "main",
                "{} is in no layer",
                relative.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for used in crate_uses(line) {
                if used == top {
                    continue;
                }
                checked += 1;
                match layer.get(used) {
                    Some(&theirs) if theirs < own => {}
                    Some(&theirs) => wrong.push(format!(
                        "{}:{}: {top} (layer {own}) uses {used} (layer {theirs})",
                        relative.display(),
                        number + 1
                    )),
                    None => wrong.push(format!(
                        "{}:{}: crate::{used} is no module of the layer table",
                        relative.display(),
                        number + 1
                    )),
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} uses across modules found");
    assert!(
        wrong.is_empty(),
        "arrows that run up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn uses_are_found_in_code_and_not_in_comments() {
    assert_eq!(crate_uses("use crate::hub::{Hub, Viewer};"), ["hub"]);
    assert_eq!(
        crate_uses("    let x = crate::v4l2::fourcc(b\"H264\"); // crate::web"),
        ["v4l2"]
    );
    assert_eq!(crate_uses("/// See [`crate::web`]."), Vec::<&str>::new());
    assert_eq!(crate_uses("use other_crate::web;"), Vec::<&str>::new());
}
