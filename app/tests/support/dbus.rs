//! A private D-Bus session bus, for the tests that run Debian's real `rauc
//! service` on it (RAUC picks the session bus when `DBUS_STARTER_BUS_TYPE=session`,
//! its `service.c`) and ask it things: the update tests of the streamer
//! (`update.rs`) and of the backend scripts (`update_slots.rs`).

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `dbus-daemon --session` listening on a socket file; killed on drop.
pub struct PrivateBus {
    child: Child,
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
}

impl PrivateBus {
    /// Starts a bus whose socket is `dir/bus` (a file, so a process in another
    /// mount or network namespace reaches it too) and waits for its address.
    pub fn start(dir: &Path) -> PrivateBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon runs (apt-get install dbus)");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        PrivateBus { child, address }
    }

    /// The environment that puts a program (RAUC, its client, the streamer) on
    /// this bus.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("DBUS_SESSION_BUS_ADDRESS", self.address.as_str()),
            ("DBUS_STARTER_BUS_TYPE", "session"),
        ]
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
