//! `make bench` part 3: loading a broken `streamer.toml` must stay linear and
//! bounded, so a bad file never keeps the device dark (the unit gives the streamer
//! 30 s to start; the target is well under a second). Each case is loaded in this
//! process (median of `BENCH_CONFIG_RUNS` runs, default 5) and checked end to end
//! with the release `streamer check-config` (wall time and peak RSS of the process).
//! Reported: problems listed (at most `config::MAX_PROBLEMS` and the "and N more"
//! line) and the longest line, which reach `/api/status` and every viewer's hello.
//!
//! The files are written to `target/bench-data/config/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamer::config::{self, MAX_FILE_BYTES};

/// One file to load: what it is, and its text (bytes: one case is not UTF-8).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
}

/// `unit` repeated to just under `size` bytes, cut after its last whole repetition.
fn repeat(unit: &str, size: usize) -> Vec<u8> {
    unit.repeat(size / unit.len()).into_bytes()
}

/// Lines from `line(i)`, to just under `size` bytes.
fn lines(prefix: &str, size: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut text = prefix.to_string();
    for i in 0.. {
        let next = line(i);
        if text.len() + next.len() > size {
            break;
        }
        text.push_str(&next);
    }
    text.into_bytes()
}

/// Pseudo-random bytes (a fixed xorshift sequence).
fn garbage(size: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let limit = MAX_FILE_BYTES as usize;
    let under = limit - 64;
    vec![
        Case {
            name: "10 MiB of random bytes",
            bytes: garbage(10 * limit),
        },
        Case {
            name: "100 KB of `= = =` lines",
            bytes: repeat("= = =\n", 100_000),
        },
        Case {
            name: "1 MiB of `= = =` lines",
            bytes: repeat("= = =\n", under),
        },
        Case {
            name: "1 MiB of `= = =`, one line",
            bytes: repeat("= ", under),
        },
        Case {
            name: "1 MiB of unknown top-level keys",
            bytes: lines("", under, |i| format!("key{i} = 1\n")),
        },
        Case {
            name: "1 MiB of unknown keys in [server]",
            bytes: lines("[server]\n", under, |i| format!("key{i} = 1\n")),
        },
        Case {
            name: "1 MiB string value",
            bytes: format!("[camera]\nsource = \"{}\"\n", "x".repeat(under - 30)).into_bytes(),
        },
        Case {
            name: "1 MiB key",
            bytes: format!("[server]\n{} = 1\n", "k".repeat(under - 30)).into_bytes(),
        },
        Case {
            name: "1 MiB of random bytes",
            bytes: garbage(under),
        },
    ]
}

/// Wall time of `streamer check-config path`.
fn check_config(path: &Path) -> Duration {
    let start = Instant::now();
    Command::new(env!("CARGO_BIN_EXE_streamer"))
        .arg("check-config")
        .arg(path)
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run streamer check-config");
    start.elapsed()
}

/// The environment variable that makes this program load one file and print its
/// peak RSS in KiB (each case in a fresh process, so peaks do not mix).
const CHILD: &str = "BENCH_CONFIG_CHILD";

/// This process's peak RSS (`VmHWM`) in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Peak RSS in KiB of a fresh process that loads `path` once, and of one that
/// loads nothing (the baseline).
fn load_peak_rss_kib(path: Option<&Path>) -> u64 {
    let exe = std::env::current_exe().expect("this program's path");
    let output = Command::new(exe)
        .env(CHILD, path.map(Path::as_os_str).unwrap_or_default())
        .output()
        .expect("run the loading child");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the child prints its peak RSS")
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD) {
        if !path.is_empty() {
            std::hint::black_box(config::load_or_defaults_from(Path::new(&path), []));
        }
        println!("{}", peak_rss_kib());
        return;
    }
    let runs: usize = std::env::var("BENCH_CONFIG_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/config");
    std::fs::create_dir_all(&dir).expect("create target/bench-data/config");
    let baseline = load_peak_rss_kib(None);
    println!(
        "| case | size | load (median of {runs}) | load: peak RSS above a process that loads nothing | check-config wall time | lines shown | longest line |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (i, case) in cases().into_iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, &case.bytes).expect("write the case");
        let mut times = Vec::new();
        let mut loaded = None;
        for _ in 0..runs {
            let start = Instant::now();
            let result = config::load_or_defaults_from(&path, []);
            times.push(start.elapsed());
            loaded = Some(result);
        }
        times.sort();
        let errors = loaded.map(|l| l.errors).unwrap_or_default();
        let longest = errors.iter().map(|e| e.chars().count()).max().unwrap_or(0);
        let rss_kib = load_peak_rss_kib(Some(&path)).saturating_sub(baseline);
        let wall = check_config(&path);
        println!(
            "| {} | {} bytes | {:.1} ms | {:.1} MB | {:.1} ms | {} | {} chars |",
            case.name,
            case.bytes.len(),
            times[times.len() / 2].as_secs_f64() * 1e3,
            rss_kib as f64 / 1024.0,
            wall.as_secs_f64() * 1e3,
            errors.len(),
            longest
        );
    }
}
