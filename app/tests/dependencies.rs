//! The offline part of a dependency audit (`cargo audit`/`cargo deny`-style; the
//! RustSec advisories themselves need the network: `.github/workflows/audit.yml`
//! checks them): every third-party crate comes from crates.io pinned by version
//! and checksum in `Cargo.lock`, nothing from git or a path outside the
//! workspace, and the crypto crates behind `access` (passwords, cookies, Digest)
//! exist in one version each, so a fix reaches all their users at once.

use std::collections::BTreeMap;
use std::path::Path;

const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// The crypto crates `access` relies on: one version of each.
const ONE_VERSION: &[&str] = &[
    "argon2",
    "password-hash",
    "blake2",
    "hmac",
    "sha2",
    "md-5",
    "subtle",
    "digest",
    "base64ct",
];

fn lock() -> Vec<toml::Table> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let text = std::fs::read_to_string(&path).expect("Cargo.lock");
    let lock: toml::Table = text.parse().expect("Cargo.lock is TOML");
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p.as_table().expect("a package table").clone())
        .collect()
}

#[test]
fn every_crate_comes_from_crates_io_pinned_by_checksum() {
    let packages = lock();
    assert!(packages.len() > 100, "{} packages", packages.len());
    let mut wrong = Vec::new();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default();
        let version = package["version"].as_str().unwrap_or_default();
        match package.get("source").and_then(|s| s.as_str()) {
            // The workspace's own crate.
            None if name == "streamer" => {}
            Some(CRATES_IO) => {
                let checksum = package.get("checksum").and_then(|c| c.as_str());
                let pinned = checksum
                    .is_some_and(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()));
                if !pinned {
                    wrong.push(format!("{name} {version}: no checksum"));
                }
            }
            other => wrong.push(format!("{name} {version}: from {other:?}, not crates.io")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_access_crypto_crates_exist_in_one_version_each() {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock() {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let version = package["version"].as_str().unwrap_or_default().to_owned();
        versions.entry(name).or_default().push(version);
    }
    for name in ONE_VERSION {
        let found = versions.get(*name).cloned().unwrap_or_default();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
    }
}
