//! The configuration loader on arbitrary text: it never panics, keeps at most
//! `MAX_PROBLEMS` problems (and a line counting the rest), each short, and a
//! configuration without problems is what it says. Slow inputs (anything
//! quadratic) are caught by libFuzzer's `-timeout` (`.ci/fuzz` sets it).
//!
//! The input is the file's text (bytes that are not UTF-8 are replaced); after a NUL
//! byte, `NAME=VALUE` lines are the environment.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use streamer::config::{self, MAX_PROBLEMS};

/// Longest problem line: the path, a line number, a key cut to 60 characters and a
/// reason capped at 500.
const LONGEST_LINE: usize = 800;

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(file);
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let loaded = config::load_or_defaults_from_text(Path::new("streamer.toml"), &text, env);
    assert!(loaded.errors.len() <= MAX_PROBLEMS + 1, "{:?}", loaded.errors);
    for line in &loaded.errors {
        assert!(line.chars().count() <= LONGEST_LINE, "{line}");
    }
    if loaded.errors.len() == MAX_PROBLEMS + 1 {
        let last = loaded.errors.last().unwrap();
        assert!(last.starts_with("and ") && last.contains(" more problem"), "{last}");
    }
    // The effective configuration (check-config's output) reads back as itself.
    let printed = config::effective_toml(&loaded.config);
    if loaded.errors.is_empty() {
        let again = config::load_or_defaults_from_text(Path::new("effective.toml"), &printed, []);
        assert!(again.errors.is_empty(), "{printed}\n{:?}", again.errors);
        // The Wi-Fi password is printed as "(not shown)".
        let mut expected = loaded.config.clone();
        if !expected.network.wifi_passphrase.is_empty() {
            expected.network.wifi_passphrase = "(not shown)".into();
        }
        assert_eq!(again.config, expected);
    }
});
