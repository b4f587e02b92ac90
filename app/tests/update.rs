//! Updates end to end (`POST`/`GET /api/update`, `crate::update`), against the
//! real binary: refused without a password (403), from a page elsewhere (403),
//! over the size limit (413), while another runs (409), and the whole flow
//! against a REAL `rauc service` (Debian's RAUC) on a private D-Bus session bus
//! (`DBUS_STARTER_BUS_TYPE=session`, as RAUC decides in its `service.c`), with
//! a test `system.conf` whose two raw slots are files, a keyring made with
//! openssl here, bundles made with `rauc bundle` here, and a custom bootloader
//! backend script written here.
//!
//! RAUC mounts a bundle through a loop device, so the RAUC test needs root and
//! `/dev/loop-control` (CI runs as root); without them it fails saying so, as
//! `update_slots.rs` does: it is never skipped.
//! The bundles are `format=plain`: a `verity` bundle needs the device mapper
//! (`/dev/mapper/control`), which this machine's kernel does not offer. The
//! image's own system.conf allows only verity bundles; the streamer's side does
//! not depend on the format.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::dbus::PrivateBus;
use support::process::{http_get_with, status_and_body, StreamerProcess};

const PASSWORD: &str = "update test password";
/// `access.user`'s default.
const USER: &str = "streamer";

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// `Authorization: Basic` for the test password.
fn auth() -> String {
    format!(
        "Authorization: {}\r\n",
        streamer::access::credentials::basic_header(USER, PASSWORD)
    )
}

/// Starts the streamer with `config` (TOML text) and `env`.
fn streamer(dir: &Path, config: &str, env: &[(&str, &str)]) -> StreamerProcess {
    let file = dir.join("streamer.toml");
    std::fs::write(&file, config).unwrap();
    let spool = dir.join("spool");
    let os_release = dir.join("os-release");
    std::fs::write(&os_release, "NAME=test\nIMAGE_VERSION=\"test-1\"\n").unwrap();
    let mut all = support::process::SMALL_TEST_PATTERN.to_vec();
    all.extend([
        ("STREAMER_UPDATE_SPOOL", spool.to_str().unwrap()),
        ("STREAMER_UPDATE_OS_RELEASE", os_release.to_str().unwrap()),
    ]);
    all.extend_from_slice(env);
    StreamerProcess::start(&binary(), &file, &all)
}

/// `POST /api/update` with `more` header lines and `body`; status and body.
fn post(address: SocketAddr, more: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/update HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n{more}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before taking the whole body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    status_and_body(&String::from_utf8_lossy(&response))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A D-Bus address where nothing listens: RAUC is not there.
const NO_BUS: &[(&str, &str)] = &[
    ("DBUS_STARTER_BUS_TYPE", "session"),
    (
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/streamer-test-bus",
    ),
];

#[test]
fn an_update_is_refused_without_a_password_and_rauc_absent_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let server = streamer(dir.path(), "", NO_BUS);
    let (status, body) = post(server.address, "", b"not a bundle");
    assert_eq!(status, 403, "{body}");
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("updates need a password"));
    let (status, body) = http_get_with(server.address, "/api/update", "");
    assert_eq!(status, 200);
    let report = json(&body);
    assert_eq!(report["available"], false);
    assert_eq!(report["needs_password"], true);
    assert!(report["reason"]
        .as_str()
        .unwrap()
        .contains("updates are not available here"));
    assert_eq!(report["version"], "test-1");
    // The kernel's id of this boot, which the update page watches to see the restart.
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(report["boot_id"], boot_id.trim(), "{report}");
    let status = server.status();
    assert_eq!(status["update"]["available"], false, "{status}");
    assert_eq!(status["update"]["version"], "test-1");
    assert!(status["update"]["last"].is_null());
    // "not here" is said once, not at every status.
    for _ in 0..3 {
        http_get_with(server.address, "/api/update", "");
    }
    let log = server.log();
    assert_eq!(log.matches("RAUC is not here").count(), 1, "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("update")),
        "{log}"
    );

    // Allowed without a password: past the 403, to RAUC's absence (503).
    let dir = tempfile::tempdir().unwrap();
    let server = streamer(
        dir.path(),
        "[update]\nallow_without_password = true\n",
        NO_BUS,
    );
    let (status, body) = post(server.address, "", b"not a bundle");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not available here"), "{body}");
}

#[test]
fn a_cross_site_update_is_refused_and_a_same_site_one_passes_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[access]\npassword = \"{PASSWORD}\"\n");
    let server = streamer(dir.path(), &config, NO_BUS);
    let (status, body) = post(
        server.address,
        &format!("{}Origin: http://evil.example\r\n", auth()),
        b"x",
    );
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("not available here"), "{body}");
    // Without the password: 401.
    let (status, _) = post(server.address, "", b"x");
    assert_eq!(status, 401);
    // From the device's own page: through to the handler (RAUC is absent: 503).
    let origin = format!("Origin: http://{}\r\n", server.address);
    let (status, body) = post(server.address, &format!("{}{origin}", auth()), b"x");
    assert_eq!(status, 503, "{body}");
}

/// A private D-Bus session bus and a real `rauc service` on it.
struct Rauc {
    dir: PathBuf,
    service: Child,
    /// Dropped after the service is killed.
    bus: PrivateBus,
}

impl Drop for Rauc {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Why RAUC cannot run here, if it cannot.
fn rauc_missing() -> Option<String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Some("RAUC mounts bundles through loop devices: needs root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control".into());
    }
    for program in ["rauc", "dbus-daemon", "openssl"] {
        if Command::new(program).arg("--version").output().is_err() {
            return Some(format!("no {program}"));
        }
    }
    None
}

/// Makes a signing key and certificate named `name` in `dir`.
fn key_pair(dir: &Path, name: &str) {
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .args(["-subj", &format!("/CN=streamer {name} test key")])
        .stderr(Stdio::null()));
}

/// A bundle of `image` (the root image) signed by `key`, at `dir/<out>`.
fn bundle(dir: &Path, key: &str, image: &[u8], out: &str) -> PathBuf {
    let content = dir.join(format!("{out}.content"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("rootfs.img"), image).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        "[update]\ncompatible=streamer-test\nversion=test-2\n\n[bundle]\nformat=plain\n\n\
         [image.rootfs]\nfilename=rootfs.img\n",
    )
    .unwrap();
    let path = dir.join(out);
    run(Command::new("rauc")
        .arg("bundle")
        .arg(format!(
            "--cert={}",
            dir.join(format!("{key}.pem")).display()
        ))
        .arg(format!(
            "--key={}",
            dir.join(format!("{key}.key")).display()
        ))
        .arg(&content)
        .arg(&path));
    path
}

impl Rauc {
    fn start(dir: &Path) -> Rauc {
        key_pair(dir, "good");
        for slot in ["slotA.img", "slotB.img"] {
            std::fs::write(dir.join(slot), vec![0u8; 2 * 1024 * 1024]).unwrap();
        }
        let boot = dir.join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        let backend = dir.join("backend.sh");
        std::fs::write(
            &backend,
            format!(
                "#!/bin/sh\nS={}\necho \"$@\" >> $S/calls\ncase \"$1\" in\n\
                 get-primary) cat $S/primary 2>/dev/null || echo A ;;\n\
                 set-primary) echo \"$2\" > $S/primary ;;\n\
                 get-state) cat $S/state.$2 2>/dev/null || echo good ;;\n\
                 set-state) echo \"$3\" > $S/state.$2 ;;\n\
                 get-current) echo A ;;\n*) exit 1 ;;\nesac\n",
                boot.display()
            ),
        )
        .unwrap();
        run(Command::new("chmod").arg("+x").arg(&backend));
        let d = dir.display();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        std::fs::write(
            dir.join("system.conf"),
            format!(
                "[system]\ncompatible=streamer-test\nbootloader=custom\nmountprefix={d}/mnt\n\
                 statusfile={d}/status.raucs\n\n[keyring]\npath={d}/good.pem\n\n\
                 [handlers]\nbootloader-custom-backend={d}/backend.sh\n\n\
                 [slot.rootfs.0]\ndevice={d}/slotA.img\ntype=raw\nbootname=A\n\n\
                 [slot.rootfs.1]\ndevice={d}/slotB.img\ntype=raw\nbootname=B\n"
            ),
        )
        .unwrap();
        let bus = PrivateBus::start(dir);
        let service = Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={d}/system.conf"))
            .arg("--override-boot-slot=A")
            .envs(bus.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rauc.log")).unwrap())
            .spawn()
            .unwrap();
        Rauc {
            dir: dir.to_owned(),
            service,
            bus,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rauc.log")).unwrap_or_default()
    }
}

/// `GET /api/update` until `done` holds (at most 60 s).
fn wait_report(
    server: &StreamerProcess,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http_get_with(server.address, "/api/update", &auth());
        if status == 200 {
            let report = json(&body);
            if done(&report) {
                return report;
            }
            assert!(Instant::now() < deadline, "gave up waiting; last: {report}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bundle_installs_with_a_real_rauc_service() {
    if let Some(why) = rauc_missing() {
        panic!("this test runs Debian's RAUC as the camera runs it, and cannot here: {why} (run it as root, as CI does; make deps installs rauc and dbus)");
    }
    let dir = tempfile::tempdir().unwrap();
    let rauc = Rauc::start(dir.path());
    let image: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = bundle(dir.path(), "good", &image, "good.raucb");
    key_pair(dir.path(), "wrong");
    let wrong = bundle(dir.path(), "wrong", &image, "wrong.raucb");
    std::fs::write(
        dir.path().join("last-update.txt"),
        "result=updated\nversion=test-1\nslot=A\ntime=2026-01-01T00:00:00Z\nmessage=ok\n",
    )
    .unwrap();
    let config = format!("[access]\npassword = \"{PASSWORD}\"\n");
    let server = streamer(dir.path(), &config, &rauc.bus.env());
    let report = wait_report(&server, |r| r["available"] == true);
    assert_eq!(report["rauc"]["boot_slot"], "A", "{report}");
    assert_eq!(report["rauc"]["compatible"], "streamer-test");
    assert_eq!(report["rauc"]["slots"].as_array().unwrap().len(), 2);
    assert_eq!(report["last"]["result"], "updated");
    assert_eq!(report["needs_password"], false);

    // 413: announced over the limit, refused before any byte is taken.
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/update HTTP/1.1\r\nHost: {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.address,
        auth(),
        u64::MAX / 2
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let (status, body) = status_and_body(&String::from_utf8_lossy(&response));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("too large"), "{body}");

    // 409: one upload under way (half its body sent), a second is refused.
    let mut first = TcpStream::connect(server.address).unwrap();
    let head = format!(
        "POST /api/update HTTP/1.1\r\nHost: {}\r\n{}Content-Length: 1000\r\nConnection: close\r\n\r\n",
        server.address,
        auth()
    );
    first.write_all(head.as_bytes()).unwrap();
    first.write_all(&[0u8; 500]).unwrap();
    wait_report(&server, |r| r["upload"]["phase"] == "receiving");
    let (status, body) = post(server.address, &auth(), b"second");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already being received"), "{body}");
    // The first goes away: the place comes back and its file is removed.
    drop(first);
    wait_report(&server, |r| r["upload"]["phase"] == "finished");
    assert!(!dir.path().join("spool/upload.raucb").exists());

    // A bundle signed by a key not in the keyring: RAUC refuses it.
    let (status, body) = post(server.address, &auth(), &std::fs::read(&wrong).unwrap());
    assert_eq!(status, 202, "{body}");
    let report = wait_report(&server, |r| r["upload"]["phase"] == "finished");
    assert_eq!(report["upload"]["ok"], false, "{report}\n{}", rauc.log());
    assert!(!dir.path().join("spool/upload.raucb").exists());
    assert_eq!(
        std::fs::read(dir.path().join("slotB.img")).unwrap()[..image.len()],
        vec![0u8; image.len()][..],
        "a refused bundle wrote the slot"
    );

    // The good bundle: installed into slot B, which becomes the primary.
    let (status, body) = post(server.address, &auth(), &std::fs::read(&good).unwrap());
    assert_eq!(status, 202, "{body}");
    let report = wait_report(&server, |r| r["upload"]["phase"] == "finished");
    assert_eq!(report["upload"]["ok"], true, "{report}\n{}", rauc.log());
    assert_eq!(report["rauc"]["operation"], "idle");
    let slot_b = std::fs::read(dir.path().join("slotB.img")).unwrap();
    assert_eq!(&slot_b[..image.len()], &image[..], "slot B holds the image");
    let calls = std::fs::read_to_string(dir.path().join("boot/calls")).unwrap();
    assert!(calls.contains("set-primary B"), "{calls}");
    assert!(!dir.path().join("spool/upload.raucb").exists());
    let status = json(&http_get_with(server.address, "/api/status", &auth()).1);
    assert_eq!(status["update"]["slot"], "A", "{status}");
    assert_eq!(status["update"]["last"]["result"], "updated");
    // The video went on all along.
    assert!(status["video"]["frames"].as_u64().unwrap() > 0);
}
