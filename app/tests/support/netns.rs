//! Loopback-only network namespaces for the tests that use UDP (WebRTC): such a
//! test runs its own test binary again, that test alone, inside `unshare -n`
//! (`-rn` when not root: a user namespace makes it work unprivileged) after
//! `ip link set lo up`, so nothing it sends or announces can leave loopback and no
//! other address of this machine exists for it to use.
//!
//! ```ignore
//! #[test]
//! fn a_udp_test() {
//!     if !support::netns::isolated("a_udp_test") {
//!         return; // the run inside the namespace passed
//!     }
//!     // the real work, inside the namespace
//! }
//! ```
//!
//! The outer run fails (never skips) when `unshare` or the namespace cannot be had,
//! shows the inner run's output, and checks that exactly that one test ran and
//! passed there.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// Set in the environment of the run inside the namespace.
pub const MARKER: &str = "STREAMER_TEST_LOOPBACK_NETNS";

/// Whether the caller is inside the loopback-only namespace and should do the
/// test's work. Outside it, runs the test `test_name` (its full name as libtest
/// knows it, e.g. `whep_viewer_gets_video`) again inside one, passes its output
/// through, panics when it failed, and returns false.
pub fn isolated(test_name: &str) -> bool {
    if std::env::var_os(MARKER).is_some() {
        assert_only_loopback();
        return true;
    }
    run_inside(test_name);
    false
}

/// Inside: the namespace has `lo` and nothing else, and `lo` is up.
fn assert_only_loopback() {
    // /proc/net/dev lists the interfaces of the reading process's namespace.
    let devices = std::fs::read_to_string("/proc/self/net/dev").expect("read /proc/self/net/dev");
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(
        names,
        ["lo"],
        "{MARKER} is set but this network namespace has more than lo"
    );
    // lo is up: a datagram to ourselves on 127.0.0.1 arrives.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1 in the namespace");
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let sent = socket.send_to(b"lo", socket.local_addr().unwrap());
    let mut buffer = [0u8; 2];
    assert!(
        sent.is_ok() && socket.recv(&mut buffer).is_ok(),
        "lo is not up in the namespace: {sent:?}"
    );
}

/// `unshare` (`-n` as root, `-rn` otherwise: a user namespace makes it work
/// unprivileged) running `exe` in a new network namespace after `ip link set lo
/// up` (exit status [`LO_UP_FAILED`] when that fails), with [`MARKER`] set; the
/// caller adds `exe`'s arguments. Also the `unshare` flags, for messages.
fn loopback_command(exe: &std::path::Path) -> (Command, &'static str) {
    let flags = if euid() == 0 { "-n" } else { "-rn" };
    let mut command = Command::new("unshare");
    command
        .arg(flags)
        .args([
            "sh",
            "-c",
            "ip link set lo up || exit 97; exec \"$0\" \"$@\"",
        ])
        .arg(exe)
        .env(MARKER, "1");
    (command, flags)
}

/// The exit status of [`loopback_command`] when `lo` could not be brought up.
const LO_UP_FAILED: i32 = 97;

/// For a whole program (a benchmark) rather than one test: inside the
/// loopback-only namespace, checks it and returns; outside, runs this program
/// again with the same arguments inside one and exits with its status.
pub fn run_program_inside() {
    if std::env::var_os(MARKER).is_some() {
        assert_only_loopback();
        return;
    }
    let exe = std::env::current_exe().expect("the program's path");
    let (mut command, _) = loopback_command(&exe);
    let status = command
        .args(std::env::args_os().skip(1))
        .status()
        .expect("unshare (util-linux) runs: UDP benchmarks run in a loopback-only namespace");
    if status.code() == Some(LO_UP_FAILED) {
        panic!("`ip link set lo up` failed in the new network namespace (iproute2 missing?)");
    }
    std::process::exit(status.code().unwrap_or(1));
}

/// Outside: runs `test_name` of this test binary inside `unshare`, streaming its
/// output, and panics unless it ran and passed.
fn run_inside(test_name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let (mut command, flags) = loopback_command(&exe);
    command
        .args([
            "--exact",
            test_name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|error| {
        panic!(
            "cannot run unshare ({error}): WebRTC/UDP tests run in a loopback-only network \
             namespace and need unshare (util-linux) and ip (iproute2)"
        )
    });
    // stderr on a thread, stdout here: both shown as they come (the inner test's
    // own output, e.g. a long emulated boot's progress).
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut output = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        println!("[netns] {line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait().expect("wait for unshare");
    let errors = errors.join().unwrap_or_default();
    if !errors.is_empty() {
        eprintln!("[netns stderr]\n{errors}");
    }
    if status.code() == Some(LO_UP_FAILED) {
        panic!(
            "`ip link set lo up` failed in the new network namespace (iproute2 missing?): {errors}"
        );
    }
    if !output.contains("running 1 test") {
        panic!(
            "`unshare {flags}` did not run the test {test_name:?} in a loopback-only network \
             namespace ({status}). WebRTC/UDP tests must not run on this machine's own network; \
             they need network namespaces (as root: unshare -n; unprivileged: user namespaces, \
             e.g. sysctl kernel.unprivileged_userns_clone=1). Output:\n{output}\n{errors}"
        );
    }
    assert!(
        status.success() && output.contains("test result: ok. 1 passed"),
        "{test_name} failed inside the loopback-only network namespace ({status}); its output \
         is above:\n{}",
        tail(&output, 60)
    );
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The effective user id, from /proc (no libc call needed).
fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
        })
        .unwrap_or(u32::MAX)
}
