//! The appliance boots (`make test-boot`): the disk `.ci/test-boot/assemble` made
//! (a Debian arm64 stand-in base, this repository's overlay and units, the
//! aarch64 streamer, the SD card's A/B layout with `streamer.toml` on the FAT
//! boot partition) boots in `qemu-system-aarch64 -M virt` under software
//! emulation, with user-mode networking and ports forwarded to 127.0.0.1.
//!
//! qemu has no Raspberry Pi firmware: [`firmware`] plays its part before each
//! start (docs/testing.md, "The stand-in firmware"): it reads config.txt, or
//! tryboot.txt after a `0 tryboot` restart, from the card's boot partition,
//! and starts the slot folder's kernel, initramfs, device tree and command
//! line. qemu runs with -no-reboot: a restart ends qemu and the harness powers
//! on again; a power cut is qemu killed.
//!
//! Each check is named and says what went wrong; all are run and the test
//! fails listing those that failed:
//! 1. the streamer is reached with no login or manual step: streamer.service
//!    active (READY reported) and streamer-setup.service succeeded;
//! 2. from the host: `/` serves the player, `/api/status` answers and names the
//!    camera probe results, a WebSocket viewer receives H.264 that ffprobe decodes;
//! 3. hostname, static address, DNS, mDNS and the non-default port of
//!    streamer.toml took effect;
//! 4. the root is slot A (partition 2), mounted read-only as squashfs, the
//!    kernel wrote no sector to its partition, which is bit-for-bit unchanged
//!    after the run;
//! 5. a streamer.toml with errors still boots to a working stream (on the
//!    defaults: port 80), with the errors in `/api/status`;
//! 6. a killed streamer, and a stalled one (SIGSTOP: the watchdog), is
//!    restarted by systemd and the viewer resumes;
//! 7. the time from power-on (qemu start) to the first decodable frame;
//! 8. SSH only with `/boot/authorized_keys`, and then by public key only;
//! 9. systemd arms the watchdog device (here Linux's softdog stands in for the
//!    Pi's bcm2835-wdt) with `RuntimeWatchdogSec` and feeds it;
//! 10. a WHEP viewer on the host (`support::whep_client`, str0m) gets video
//!     ffprobe decodes, through qemu's UDP forward to the guest's port 8189, with
//!     the appliance's `[webrtc] announce` set to the forwarded 127.0.0.1 port:
//!     the answer announces that and never the guest's own 10.0.2.x address;
//! 11. ffprobe reads the appliance's RTSP stream (`rtsp://.../stream`, RTP
//!     interleaved over TCP) through qemu's TCP forward to the guest's port 8554
//!     and decodes H.264 at the configured 320x240. (RTP over UDP is not checked
//!     here: the appliance sends it to the client's ports at the address it sees,
//!     qemu's 10.0.2.2, which user networking does not map back to the client's
//!     ports.)
//! 12. with `[access] password` in the streamer.toml with errors, every page
//!     answers 401 without the password (a wrong one too), `/healthz` only
//!     "ok", and the viewer of check 5 streams with it (Basic).
//!     (Check 5 boots that file.)
//!
//!
//! The updates (`the_appliance_updates_itself`, with bundles made here by
//! `.ci/bundle` from slot A's image: the good one uploaded over HTTP, the bad
//! one on a read-only second disk, as a USB stick would bring it):
//! 13. the owner uploads a good bundle to slot A's streamer (curl, `POST
//!     /api/update` with the password, through qemu's forward) while a viewer
//!     keeps getting frames, through the upload and RAUC's install; the device
//!     restarts by itself into slot B's trial (tryboot.txt), the trial check
//!     commits it (config.txt says slot-b/, last-update.txt "updated", RAUC
//!     booted B, `/api/status` says so, `GET /api/update`'s `boot_id` is the
//!     guest kernel's and a new one), a plain restart stays on B, video flows;
//! 14. a bundle whose streamer never becomes ready is tried in slot A, given up
//!     after the trial's limit, and the device restarts by itself into slot B,
//!     streaming; last-update.txt says "rolled-back";
//! 15. (run before 14) the power cut while RAUC writes slot A leaves
//!     config.txt and tryboot.txt on slot B, which the next start boots.
//!
//! Each test (qemu and every client) runs in a loopback-only network
//! namespace (`support::netns`): nothing reaches or announces another address.
//!
//! The guest is asked about itself through a test-only root shell on a virtio
//! serial port (streamer-test-control.service, written by `assemble`).
//!
//! Ignored in `cargo test`: `make test-boot` assembles the disk and sets
//! `STREAMER_BOOT_ENV` to its `boot.env`.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::process::{http_get, http_get_with};

/// How long a boot may take under software emulation on 2 cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// A `Key=Ns` setting (whole seconds) of the overlay's streamer.service: the
/// restart checks are timed by the unit the image ships.
fn streamer_unit_seconds(key: &str) -> Duration {
    let path = support::repo_root().join("overlay/usr/lib/systemd/system/streamer.service");
    let unit = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = unit
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{} sets no {key}", path.display()));
    let seconds = value
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key}={value}: expected whole seconds such as 10s"));
    Duration::from_secs(seconds)
}
/// An emulated start of the streamer (its process, the first encoded frame).
const EMULATED_START: Duration = Duration::from_secs(60);

/// The guest's fixed address (streamer.toml [network]) in qemu's user network.
const GUEST_ADDRESS: &str = "10.0.2.50";
/// The appliance's WebRTC UDP port (the default `webrtc.udp_port`).
const WEBRTC_PORT: u16 = 8189;
/// The appliance's RTSP port (the default `rtsp.port`).
const RTSP_PORT: u16 = 8554;
const HOSTNAME: &str = "boot-test-cam";

/// The [network] section of both configurations: a hostname and a fixed address
/// in qemu's user network (its gateway 10.0.2.2 and DNS 10.0.2.3).
fn network_toml() -> String {
    format!(
        "[network]\nhostname = \"{HOSTNAME}\"\naddress = \"{GUEST_ADDRESS}/24\"\n\
         gateway = \"10.0.2.2\"\ndns = [\"10.0.2.3\"]\n"
    )
}

/// The good configuration: the network, a non-default port, a test pattern
/// small enough for an emulated CPU to encode (and [`webrtc_toml`]).
const GOOD_TOML: &str = r#"
[server]
port = 8080

[camera]
source = "auto"
width = 320
height = 240
framerate = 10

[encoder]
bitrate = 300000
intra_period = 10
"#;

/// WebRTC through qemu's forward: the appliance announces the host's end of it
/// (127.0.0.1 and the forwarded port), never its own 10.0.2.x address.
fn webrtc_toml(port: u16) -> String {
    format!("\n[webrtc]\nannounce = [\"127.0.0.1:{port}\"]\n")
}

/// A configuration with mistakes outside [network]: the streamer runs on its
/// defaults (port 80) and reports them; the network section still applies.
const BROKEN_TOML: &str = r#"
[server]
port = 8080
max_viewrs = 3

[camera]
source = "webcam-please"

[access]
password = "boot test passphrase"
"#;

/// The `[access]` password of [`BROKEN_TOML`].
const BOOT_PASSWORD: &str = "boot test passphrase";

/// boot.env, as `.ci/test-boot/assemble` wrote it.
struct BootEnv {
    /// The SD card: boot partition, slot A, slot B (empty).
    disk: PathBuf,
    /// Slot A's root file system image (squashfs), which the update checks
    /// make bundles of.
    rootfs: PathBuf,
    /// The throwaway key that signs the update checks' bundles, and its
    /// certificate (the image's RAUC keyring).
    signing_key: PathBuf,
    signing_cert: PathBuf,
    /// RAUC's compatible of the test system (streamer-test).
    compatible: String,
}

impl BootEnv {
    fn read() -> Self {
        let path = std::env::var("STREAMER_BOOT_ENV").expect(
            "STREAMER_BOOT_ENV: the boot.env of .ci/test-boot/assemble (make test-boot sets it)",
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let values: HashMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| {
            values
                .get(key)
                .unwrap_or_else(|| panic!("{path} has no {key}"))
                .to_string()
        };
        BootEnv {
            disk: get("DISK").into(),
            rootfs: get("ROOTFS").into(),
            signing_key: get("SIGNING_KEY").into(),
            signing_cert: get("SIGNING_CERT").into(),
            compatible: get("COMPATIBLE"),
        }
    }
}

/// The kernel's console line when it restarts with the argument systemd took
/// from /run/systemd/reboot-param, which the update backend writes: on the Pi
/// the firmware driver turns "tryboot" into the firmware's one-shot flag.
const TRYBOOT_LINE: &str = "reboot: Restarting system with command '0 tryboot'";

/// What the stand-in firmware read and loaded for one start of the machine.
#[derive(Clone, Debug)]
struct Loaded {
    /// config.txt, or tryboot.txt after a tryboot restart.
    file: &'static str,
    /// Its `os_prefix`: the slot folder (slot-a/, slot-b/).
    os_prefix: String,
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    dtb: PathBuf,
    /// The slot's cmdline.txt, mapped to the virt machine ([`virt_cmdline`]).
    cmdline: String,
}

/// The `mtools` name of the disk's boot partition (FAT, partition 1).
fn boot_partition(disk: &Path) -> String {
    format!("{}@@{}", disk.display(), partition(disk, 1).0)
}

/// A file of the boot partition (`slot-a/Image`), read with mtools.
fn read_boot_file(disk: &Path, name: &str) -> Result<Vec<u8>, String> {
    let output = Command::new("mcopy")
        .args(["-n", "-i", &boot_partition(disk)])
        .arg(format!("::{name}"))
        .arg("-")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("mcopy (mtools): {e}"))?;
    expect(output.status.success(), || {
        format!(
            "no {name} on the boot partition: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    Ok(output.stdout)
}

/// The `os_prefix` line of a firmware file on the disk's boot partition.
fn os_prefix_on(disk: &Path, file: &str) -> String {
    read_boot_file(disk, file)
        .map(|text| {
            firmware_settings(&String::from_utf8_lossy(&text))
                .remove("os_prefix")
                .unwrap_or_default()
        })
        .unwrap_or_else(|why| why)
}

/// The settings of config.txt (or tryboot.txt) for the board the stand-in
/// plays, a 64-bit Pi 4: lines under `[all]` and `[pi4]` (and before any
/// section), `key=value`, the last one of a key winning; comments skipped.
fn firmware_settings(text: &str) -> HashMap<String, String> {
    let mut settings = HashMap::new();
    let mut applies = true;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(filter) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            applies = matches!(filter, "all" | "pi4");
        } else if let (true, Some((key, value))) = (applies, line.split_once('=')) {
            settings.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    settings
}

/// A slot's cmdline.txt as this machine needs it: the Pi's card partitions
/// (root=/dev/mmcblk0pN) are the virtio disk's /dev/vdaN, its consoles
/// (serial0, tty1) the virt machine's ttyAMA0, and a panic ends the machine at
/// once (panic=-1: the harness sees it; the Pi's watchdog would restart it).
/// Everything else (rootfstype=squashfs, ro, rauc.slot=) as the slot has it.
fn virt_cmdline(pi: &str) -> String {
    let mut words: Vec<String> = pi
        .split_whitespace()
        .filter(|word| !word.starts_with("console="))
        .map(|word| match word.strip_prefix("root=/dev/mmcblk0p") {
            Some(number) => format!("root=/dev/vda{number}"),
            None => word.to_owned(),
        })
        .collect();
    words.extend(["console=ttyAMA0".to_owned(), "panic=-1".to_owned()]);
    words.join(" ")
}

/// The stand-in for the Raspberry Pi firmware (docs/testing.md): reads the
/// disk's boot partition as the firmware would before each start: config.txt,
/// or tryboot.txt when the machine's last run ended in a tryboot restart; takes
/// its `os_prefix` and `kernel` (`cmdline` too); copies `${os_prefix}` + the
/// kernel, `initrd.img` (the Debian kernel's initramfs; the Pi's kernel has
/// none), the slot's device tree (the one `.dtb`: qemu's virt machine) and
/// cmdline.txt from the partition into `dir`.
fn firmware(disk: &Path, dir: &Path, tryboot: bool) -> Result<Loaded, String> {
    let file = if tryboot { "tryboot.txt" } else { "config.txt" };
    let settings = firmware_settings(&String::from_utf8_lossy(&read_boot_file(disk, file)?));
    let os_prefix = settings.get("os_prefix").cloned().unwrap_or_default();
    let kernel_name = settings
        .get("kernel")
        .ok_or_else(|| format!("{file} names no kernel for a Pi 4"))?;
    let cmdline_name = settings
        .get("cmdline")
        .map_or("cmdline.txt", String::as_str);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let fetch = |name: &str, to: &str| -> Result<PathBuf, String> {
        let path = dir.join(to);
        std::fs::write(&path, read_boot_file(disk, &format!("{os_prefix}{name}"))?)
            .map_err(|e| e.to_string())?;
        Ok(path)
    };
    let kernel = fetch(kernel_name, "Image")?;
    let initrd = fetch("initrd.img", "initrd.img").ok();
    let listing = Command::new("mdir")
        .args(["-b", "-i", &boot_partition(disk)])
        .arg(format!("::{os_prefix}"))
        .output()
        .map_err(|e| format!("mdir (mtools): {e}"))?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    let dtbs: Vec<&str> = listing
        .lines()
        .filter(|line| line.ends_with(".dtb"))
        .filter_map(|line| line.rsplit('/').next())
        .collect();
    let [dtb_name] = dtbs.as_slice() else {
        return Err(format!("{os_prefix} has not one device tree but {dtbs:?}"));
    };
    let dtb = fetch(dtb_name, dtb_name)?;
    let cmdline = String::from_utf8_lossy(&read_boot_file(
        disk,
        &format!("{os_prefix}{cmdline_name}"),
    )?)
    .into_owned();
    Ok(Loaded {
        file,
        os_prefix,
        kernel,
        initrd,
        dtb,
        cmdline: virt_cmdline(&cmdline),
    })
}

/// A free TCP port on 127.0.0.1 (for qemu's forwards).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A free UDP port on 127.0.0.1 (for qemu's WebRTC forward).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// The byte range (offset, length) of a primary partition (1-4) of an MBR disk.
fn partition(disk: &Path, number: usize) -> (u64, u64) {
    let mut mbr = [0u8; 512];
    std::fs::File::open(disk)
        .and_then(|mut f| f.read_exact(&mut mbr))
        .expect("read the MBR");
    let entry = &mbr[446 + 16 * (number - 1)..446 + 16 * number];
    let start = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as u64;
    let sectors = u32::from_le_bytes(entry[12..16].try_into().unwrap()) as u64;
    (start * 512, sectors * 512)
}

/// sha256 of a byte range of a file, by sha256sum (no extra crate).
fn sha256_of_range(path: &Path, (offset, length): (u64, u64)) -> String {
    let mut file = std::fs::File::open(path).expect("open the disk");
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(offset)).unwrap();
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    std::io::copy(&mut file.take(length), &mut stdin).expect("hash the partition");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One run of the test system, from power-on (the stand-in firmware's start of
/// qemu) to qemu's end (power-off, reboot: qemu runs with -no-reboot) or a
/// power cut (qemu killed).
struct Machine {
    qemu: Child,
    /// Numbers the commands, so a late answer is never taken for a newer one's.
    commands: u64,
    control: BufReader<UnixStream>,
    /// Host ports forwarded to the guest's 8080, 80 and 22.
    port_8080: u16,
    port_80: u16,
    port_22: u16,
    /// Host UDP port forwarded to the guest's WebRTC port 8189.
    port_webrtc: u16,
    /// Host TCP port forwarded to the guest's RTSP port 8554.
    port_rtsp: u16,
    powered_on: Instant,
    console: PathBuf,
    /// What the stand-in firmware started.
    loaded: Loaded,
    /// The machine: its name, disk, bundle disk and how many runs it had
    /// (for the next power-on).
    work: PathBuf,
    name: String,
    disk: PathBuf,
    bundles: Option<PathBuf>,
    run: u32,
}

impl Machine {
    /// Copies the disk, writes `toml` (given the host's UDP port forwarded to the
    /// guest's WebRTC port) as the boot partition's streamer.toml (and
    /// `authorized_keys` as its authorized_keys, when given) and powers on,
    /// with `bundles` as a second (read-only) disk when given.
    fn boot(
        env: &BootEnv,
        work: &Path,
        name: &str,
        toml: impl FnOnce(u16) -> String,
        authorized_keys: Option<&Path>,
        bundles: Option<&Path>,
    ) -> (Machine, PathBuf) {
        let port_webrtc = free_udp_port();
        let toml = toml(port_webrtc);
        let disk = work.join(format!("{name}.img"));
        let status = Command::new("cp")
            .arg("--sparse=always")
            .arg(&env.disk)
            .arg(&disk)
            .status()
            .expect("cp");
        assert!(status.success(), "copy {}", env.disk.display());
        let toml_path = work.join(format!("{name}.toml"));
        std::fs::write(&toml_path, toml).unwrap();
        let boot_partition = boot_partition(&disk);
        let mut files = vec![(toml_path.as_path(), "::streamer.toml")];
        files.extend(authorized_keys.map(|keys| (keys, "::authorized_keys")));
        for (file, target) in files {
            let status = Command::new("mcopy")
                .args(["-o", "-i", &boot_partition])
                .arg(file)
                .arg(target)
                .status()
                .expect("mcopy (mtools)");
            assert!(status.success(), "write {target} onto the boot partition");
        }
        let machine = Machine::power_on(work, name, &disk, bundles, 1, false, port_webrtc);
        (machine, disk)
    }

    /// The stand-in firmware's start of run `run` of machine `name`: it reads
    /// config.txt (tryboot.txt when `tryboot`) and the slot's files from the
    /// disk ([`firmware`]) and starts qemu with them.
    fn power_on(
        work: &Path,
        name: &str,
        disk: &Path,
        bundles: Option<&Path>,
        run: u32,
        tryboot: bool,
        port_webrtc: u16,
    ) -> Machine {
        let run_name = if run == 1 {
            name.to_owned()
        } else {
            format!("{name}-{run}")
        };
        let loaded = firmware(disk, &work.join(format!("{run_name}.firmware")), tryboot)
            .unwrap_or_else(|why| panic!("the stand-in firmware cannot start {run_name}: {why}"));
        let socket = work.join(format!("{run_name}.control"));
        let _ = std::fs::remove_file(&socket);
        let console = work.join(format!("{run_name}.console.log"));
        let (port_8080, port_80, port_22) = (free_port(), free_port(), free_port());
        let port_rtsp = free_port();
        let mut command = Command::new("qemu-system-aarch64");
        // The machine options assemble dumped virt.dtb with (dumpdtb).
        command
            .args([
                "-M",
                "virt",
                "-cpu",
                "cortex-a72",
                "-smp",
                "2",
                "-m",
                "1024",
            ])
            .args(["-accel", "tcg,thread=multi"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-kernel")
            .arg(&loaded.kernel)
            .arg("-dtb")
            .arg(&loaded.dtb)
            .args(["-append", &loaded.cmdline]);
        if let Some(initrd) = &loaded.initrd {
            command.arg("-initrd").arg(initrd);
        }
        // The card first: it is /dev/vda.
        command
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()));
        if let Some(bundles) = bundles {
            command.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                bundles.display()
            ));
        }
        command
            .arg("-netdev")
            .arg(format!(
                "user,id=net,hostfwd=tcp:127.0.0.1:{port_8080}-{GUEST_ADDRESS}:8080,\
                 hostfwd=tcp:127.0.0.1:{port_80}-{GUEST_ADDRESS}:80,\
                 hostfwd=tcp:127.0.0.1:{port_22}-{GUEST_ADDRESS}:22,\
                 hostfwd=tcp:127.0.0.1:{port_rtsp}-{GUEST_ADDRESS}:{RTSP_PORT},\
                 hostfwd=udp:127.0.0.1:{port_webrtc}-{GUEST_ADDRESS}:{WEBRTC_PORT}"
            ))
            .args(["-device", "virtio-net-pci,netdev=net"])
            .args(["-device", "virtio-serial-pci"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=control,path={},server=on,wait=off",
                socket.display()
            ))
            .args([
                "-device",
                "virtserialport,chardev=control,name=streamer.control",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let powered_on = Instant::now();
        let mut qemu = command
            .spawn()
            .expect("qemu-system-aarch64 (apt-get install qemu-system-arm)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            if let Ok(stream) = UnixStream::connect(&socket) {
                break stream;
            }
            if let Ok(Some(status)) = qemu.try_wait() {
                let mut stderr = String::new();
                qemu.stderr.take().unwrap().read_to_string(&mut stderr).ok();
                panic!("qemu exited at once ({status}): {stderr}");
            }
            assert!(Instant::now() < deadline, "qemu made no control socket");
            std::thread::sleep(Duration::from_millis(100));
        };
        println!(
            "boot {run_name}: the stand-in firmware read {} (os_prefix={}) and started qemu; console in {}",
            loaded.file,
            loaded.os_prefix,
            console.display()
        );
        Machine {
            qemu,
            commands: 0,
            control: BufReader::new(stream),
            port_8080,
            port_80,
            port_22,
            port_webrtc,
            port_rtsp,
            powered_on,
            console,
            loaded,
            work: work.to_owned(),
            name: name.to_owned(),
            disk: disk.to_owned(),
            bundles: bundles.map(Path::to_owned),
            run,
        }
    }

    /// Waits up to `within` for the guest to end this run by restarting (qemu
    /// exits: -no-reboot), then powers on again as the Pi restarts: the stand-in
    /// firmware reads tryboot.txt when the kernel restarted with "0 tryboot"
    /// ([`TRYBOOT_LINE`]), config.txt otherwise. A power-off is an error.
    fn restart(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while !matches!(self.qemu.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                return Err(format!(
                    "the guest did not restart within {within:?}; console:\n{}",
                    self.console_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let console = std::fs::read_to_string(&self.console).unwrap_or_default();
        expect(!console.contains("reboot: Power down"), || {
            format!(
                "the guest powered off instead of restarting:\n{}",
                self.console_tail()
            )
        })?;
        let tryboot = console.contains(TRYBOOT_LINE);
        self.next_run(tryboot);
        Ok(())
    }

    /// Pulls the power: qemu is killed wherever the guest is, and the machine
    /// powers on again (the firmware reads config.txt: the tryboot flag never
    /// outlives a power cut).
    fn power_cut(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        self.next_run(false);
    }

    /// Powers on again (this run's qemu has ended or been killed).
    fn next_run(&mut self, tryboot: bool) {
        let (work, name, disk, bundles) = (
            self.work.clone(),
            self.name.clone(),
            self.disk.clone(),
            self.bundles.clone(),
        );
        let (run, port_webrtc) = (self.run + 1, self.port_webrtc);
        *self = Machine::power_on(
            &work,
            &name,
            &disk,
            bundles.as_deref(),
            run,
            tryboot,
            port_webrtc,
        )
    }

    /// Runs a shell command in the guest as root; its exit status and output.
    /// `None` when the guest did not answer in `timeout` (it is still booting).
    fn try_run(&mut self, command: &str, timeout: Duration) -> Option<(i32, String)> {
        self.commands += 1;
        let marker = format!("@@streamer-test-done-{}", self.commands);
        self.control
            .get_mut()
            .set_read_timeout(Some(timeout))
            .unwrap();
        let line = format!("{{ {command} ; }} 2>&1; echo \"{marker} $?\"\n");
        self.control.get_mut().write_all(line.as_bytes()).ok()?;
        let mut output = String::new();
        loop {
            let mut line = String::new();
            match self.control.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if let Some(status) = line.trim_end().strip_prefix(&marker) {
                return Some((status.trim().parse().unwrap_or(-1), output));
            }
            if !line.starts_with("@@streamer-test-done-") {
                output.push_str(&line);
            }
        }
    }

    /// Like [`Machine::try_run`], but the guest must answer.
    fn run(&mut self, command: &str) -> (i32, String) {
        self.try_run(command, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("the guest did not answer `{command}`"))
    }

    /// Waits until the guest's command channel answers (the system is up far
    /// enough to start services).
    fn wait_for_control(&mut self) {
        let deadline = self.powered_on + BOOT_TIMEOUT;
        while Instant::now() < deadline {
            // An earlier, unanswered try's late output is dropped by its marker.
            if let Some((0, _)) = self.try_run("true", Duration::from_secs(5)) {
                return;
            }
        }
        panic!(
            "the guest's command channel did not answer within {BOOT_TIMEOUT:?}; console:\n{}",
            self.console_tail()
        );
    }

    /// `systemctl show` properties of a unit.
    fn unit(&mut self, unit: &str) -> HashMap<String, String> {
        let (_, out) = self.run(&format!(
            "systemctl show {unit} -p ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStatus,Type"
        ));
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn address(&self, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Powers off cleanly and waits for qemu to exit.
    fn power_off(mut self) {
        let _ = self.try_run("systemctl --no-block poweroff", Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.qemu.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        panic!("the guest did not power off within 120 s");
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Ok(None) = self.qemu.try_wait() {
            let _ = self.qemu.kill();
            let _ = self.qemu.wait();
        }
    }
}

/// Frames from a WebSocket viewer, saved as Annex-B, with ffprobe's count of
/// decoded frames. Errors are text for the check's message.
fn watch(
    address: SocketAddr,
    frames: usize,
    timeout: Duration,
    save: &Path,
    authorization: Option<&str>,
) -> Result<u64, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{address}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert("authorization", value.parse().map_err(|_| "bad header")?);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = runtime.block_on(async {
        let (mut client, _) = tokio::time::timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .map_err(|_| "the WebSocket did not open within 20 s".to_string())?
        .map_err(|e| format!("the WebSocket did not open: {e}"))?;
        let mut data = Vec::new();
        let mut received = 0;
        let deadline = tokio::time::Instant::now() + timeout;
        while received < frames {
            use futures_util::StreamExt;
            let message = tokio::time::timeout_at(deadline, client.next())
                .await
                .map_err(|_| format!("{received} of {frames} frames within {timeout:?}"))?;
            match message {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(frame))) => {
                    data.extend_from_slice(&frame);
                    received += 1;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("after {received} frames: {e}")),
                None => return Err(format!("closed after {received} frames")),
            }
        }
        Ok::<_, String>(data)
    })?;
    std::fs::write(save, &data).map_err(|e| e.to_string())?;
    let (decoded, width, height) = support::ffprobe_frames(save);
    if decoded == 0 {
        return Err(format!("ffprobe decoded no frame of {}", save.display()));
    }
    println!("    {decoded} frames decoded by ffprobe, {width}x{height}");
    Ok(decoded)
}

/// A WHEP session from the host (`support::whep_client`): the answer announces
/// exactly 127.0.0.1 and the forwarded `udp_port` (no address of the guest's),
/// and 30 frames arrive that ffprobe decodes at the configured 320x240.
fn whep(server: SocketAddr, udp_port: u16, save: &Path) -> Result<(), String> {
    let support::whep_client::Watched {
        video,
        answer,
        decoded,
        width,
        height,
    } = support::whep_client::watch(server, 30, Duration::from_secs(120), save)?;
    let candidates = support::whep_client::candidates(&answer);
    expect(candidates == [format!("127.0.0.1 {udp_port}")], || {
        format!("the answer announces {candidates:?}, not only 127.0.0.1 {udp_port}:\n{answer}")
    })?;
    expect(!answer.contains("10.0.2."), || {
        format!("the answer names the guest's own address:\n{answer}")
    })?;
    expect(decoded > 0 && (width, height) == (320, 240), || {
        format!(
            "ffprobe decoded {decoded} frames at {width}x{height} of the {} received",
            video.frames
        )
    })?;
    println!(
        "    WHEP: {} frames, first after {:.1?}, {decoded} decoded by ffprobe, {width}x{height}",
        video.frames,
        video.first_frame_after.unwrap_or_default()
    );
    Ok(())
}

/// ffprobe, a client nobody here wrote, reads `rtsp://127.0.0.1:PORT/stream`
/// with RTP interleaved over TCP (`-rtsp_transport tcp`): the stream is H.264 at
/// the configured 320x240, and frames decode.
fn rtsp(port: u16) -> Result<(), String> {
    let url = format!("rtsp://127.0.0.1:{port}/stream");
    // coreutils' timeout: a stalled session must fail the check, not the test.
    let output = Command::new("timeout")
        .args(["120", "ffprobe", "-v", "error", "-rtsp_transport", "tcp"])
        .args(["-select_streams", "v:0", "-count_frames"])
        // The first 20 packets: under emulation the stream runs at 10 fps.
        .args(["-read_intervals", "%+#20"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ffprobe (apt-get install ffmpeg): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    expect(output.status.success(), || {
        format!("ffprobe {url} failed ({}): {errors}{text}", output.status)
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let frames: u64 = field("nb_read_frames").parse().unwrap_or(0);
    expect(
        field("codec_name") == "h264"
            && field("width") == "320"
            && field("height") == "240"
            && frames > 0,
        || format!("ffprobe {url}: {text} {errors}"),
    )?;
    println!("    RTSP over TCP: ffprobe decoded {frames} frames of h264 at 320x240");
    Ok(())
}

/// Polls until a WebSocket viewer gets a first frame; the time it happened.
fn first_frame(
    address: SocketAddr,
    until: Instant,
    save: &Path,
    authorization: Option<&str>,
) -> Option<Instant> {
    while Instant::now() < until {
        if watch(address, 1, Duration::from_secs(30), save, authorization).is_ok() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    None
}

/// `ssh root@` the guest through its forwarded port 22, as a user would, with
/// no configuration, agent or known hosts of this machine's: whether it
/// succeeded, its standard output and its standard error.
fn ssh(port: u16, key: Option<&Path>, options: &[&str], command: &str) -> (bool, String, String) {
    let mut ssh = Command::new("ssh");
    ssh.args(["-F", "/dev/null", "-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=30",
            "-o",
            "IdentityAgent=none",
        ])
        .args(["-o", "IdentitiesOnly=yes"]);
    if let Some(key) = key {
        ssh.arg("-i").arg(key);
    }
    let output = ssh
        .args(options)
        .args(["root@127.0.0.1", command])
        .stdin(Stdio::null())
        .output()
        .expect("ssh (apt-get install openssh-client)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The outcome of the named checks.
#[derive(Default)]
struct Checks {
    /// Each check's name (it starts with its number) and whether it passed.
    outcomes: Vec<(String, bool)>,
    failed: Vec<String>,
}

impl Checks {
    /// Records and prints a check's outcome as it happens.
    fn check(&mut self, name: &str, result: Result<(), String>) {
        self.outcomes.push((name.to_owned(), result.is_ok()));
        match result {
            Ok(()) => println!("ok   {name}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failed.push(format!("{name}: {why}"));
            }
        }
    }

    /// The outcomes in the order of their numbers (they run in the order the
    /// boots allow).
    fn summary(&self) -> String {
        let number = |name: &str| {
            name.split('.')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        };
        let mut outcomes = self.outcomes.clone();
        outcomes.sort_by_key(|(name, _)| number(name));
        outcomes
            .iter()
            .map(|(name, ok)| format!("  {} {name}", if *ok { "ok  " } else { "FAIL" }))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn expect(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

/// After the streamer process `old` was killed or stalled: waits until systemd
/// has started a new one (a MainPID other than `old`, NRestarts counted up) within
/// `restart_limit`, then until that one is active (READY) within
/// [`EMULATED_START`]. Returns the new MainPID and the time to its start.
fn wait_for_restart(
    machine: &mut Machine,
    old: &str,
    restarts_before: u64,
    restart_limit: Duration,
) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let (pid, took) = loop {
        let unit = machine.unit("streamer.service");
        let pid = unit.get("MainPID").cloned().unwrap_or_default();
        let restarts: u64 = unit
            .get("NRestarts")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if pid != old && pid != "0" && restarts > restarts_before {
            break (pid, started.elapsed());
        }
        if started.elapsed() > restart_limit {
            return Err(format!(
                "systemd did not start a new streamer within {restart_limit:?}: {unit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    loop {
        let unit = machine.unit("streamer.service");
        if unit.get("ActiveState").map(String::as_str) == Some("active") {
            return Ok((pid, took));
        }
        if started.elapsed() > took + EMULATED_START {
            return Err(format!(
                "the new streamer {pid} did not report READY within {EMULATED_START:?}: {unit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn restarts(machine: &mut Machine) -> u64 {
    machine
        .unit("streamer.service")
        .get("NRestarts")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs the assembled disk and qemu-system-aarch64; run by `make test-boot`"]
fn the_appliance_boots_into_the_streamer() {
    // qemu and every client in a network namespace with only lo.
    if !support::netns::isolated("the_appliance_boots_into_the_streamer") {
        return;
    }
    let env = BootEnv::read();
    let work = env.disk.parent().unwrap().join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut checks = Checks::default();
    // The user's SSH key, put on the boot partition as /boot/authorized_keys.
    let key = work.join("id_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "boot-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (apt-get install openssh-client)");
    assert!(keygen.success(), "ssh-keygen failed");

    // ---- Boot 1: the good configuration.
    let (mut machine, disk) = Machine::boot(
        &env,
        &work,
        "good",
        |udp| network_toml() + GOOD_TOML + &webrtc_toml(udp),
        Some(&key.with_extension("pub")),
        None,
    );
    let root_range = partition(&disk, 2);
    let root_before = sha256_of_range(&disk, root_range);
    let viewer = machine.address(machine.port_8080);
    let first = first_frame(
        viewer,
        machine.powered_on + BOOT_TIMEOUT,
        &work.join("first.h264"),
        None,
    );
    let to_first_frame = first.map(|t| t - machine.powered_on);
    machine.wait_for_control();
    println!(
        "boot good: the command channel answers after {:.0?}",
        machine.powered_on.elapsed()
    );

    let streamer = machine.unit("streamer.service");
    let setup = machine.unit("streamer-setup.service");
    checks.check(
        "1. boots into the streamer with no login: streamer.service active (READY), streamer-setup.service succeeded",
        expect(
            streamer.get("ActiveState").map(String::as_str) == Some("active")
                && streamer.get("SubState").map(String::as_str) == Some("running")
                && streamer.get("Type").map(String::as_str) == Some("notify")
                && setup.get("Result").map(String::as_str) == Some("success")
                && setup.get("ActiveState").map(String::as_str) == Some("active"),
            || format!("streamer.service: {streamer:?}; streamer-setup.service: {setup:?}"),
        ),
    );

    let (index_status, index) = http_get(viewer, "/");
    let (status_code, status_body) = http_get(viewer, "/api/status");
    let status: serde_json::Value = serde_json::from_str(&status_body).unwrap_or_default();
    let video = watch(
        viewer,
        30,
        Duration::from_secs(120),
        &work.join("good.h264"),
        None,
    );
    checks.check(
        "2. from the host: / serves the player, /api/status names the probe results, a viewer gets decodable H.264",
        (|| {
            expect(index_status == 200 && index.contains(r#"<canvas id="canvas""#), || {
                format!("GET / answered {index_status}: {}", &index[..index.len().min(200)])
            })?;
            expect(status_code == 200, || format!("GET /api/status answered {status_code}"))?;
            let notes = status["device"]["notes"].to_string();
            expect(notes.contains("no camera found"), || {
                format!("/api/status device.notes do not report the camera probe: {notes}")
            })?;
            let message = status["source"]["message"].as_str().unwrap_or_default();
            expect(message.contains("No camera found"), || {
                format!("/api/status source.message does not say why the test pattern: {message:?}")
            })?;
            video.map(|_| ())
        })(),
    );

    let whep = whep(viewer, machine.port_webrtc, &work.join("whep.h264"));
    checks.check(
        &format!(
            "10. from the host: a WHEP viewer gets decodable video through qemu's UDP forward \
             (127.0.0.1:{} to the guest's {WEBRTC_PORT}), announced as that and never as 10.0.2.x",
            machine.port_webrtc
        ),
        whep,
    );

    checks.check(
        &format!(
            "11. from the host: ffprobe reads the RTSP stream over TCP through qemu's forward \
             (127.0.0.1:{} to the guest's {RTSP_PORT}): h264 at 320x240",
            machine.port_rtsp
        ),
        rtsp(machine.port_rtsp),
    );

    let (_, hostname) = machine.run("cat /proc/sys/kernel/hostname");
    // The Ethernet interface: eth0 on the Pi; here the initramfs's udev may
    // have given it a predictable name before the overlay's policy applied.
    let (_, route) = machine.run("ip -4 route show default");
    let link = route
        .split_whitespace()
        .skip_while(|word| *word != "dev")
        .nth(1)
        .unwrap_or("eth0")
        .to_owned();
    let (_, addresses) = machine.run(&format!("ip -4 -o address show dev {link}"));
    let (_, resolve) = machine.run(&format!("resolvectl status {link}"));
    let (_, listening) = machine.run("ss -Hltn");
    let (port_80_status, _) = http_get(machine.address(machine.port_80), "/");
    checks.check(
        "3. streamer.toml took effect: hostname, fixed address, gateway, DNS, mDNS, port 8080",
        (|| {
            expect(hostname.trim() == HOSTNAME, || {
                format!("hostname is {hostname:?}")
            })?;
            expect(addresses.contains(&format!("{GUEST_ADDRESS}/24")), || {
                format!("{link} has not 10.0.2.50/24: {addresses}")
            })?;
            expect(route.contains("via 10.0.2.2"), || {
                format!("default route: {route}")
            })?;
            expect(resolve.contains("10.0.2.3"), || {
                format!("DNS of {link}: {resolve}")
            })?;
            expect(resolve.contains("+mDNS"), || {
                format!("mDNS is off on {link}: {resolve}")
            })?;
            expect(
                listening.contains(":8080 ") && !listening.contains(":80 "),
                || format!("listening sockets: {listening}"),
            )?;
            expect(port_80_status == 0, || {
                format!("port 80 answered HTTP {port_80_status}: the default port is in use")
            })
        })(),
    );

    let (logged_in, login_output, login_errors) = ssh(
        machine.port_22,
        Some(&key),
        &[],
        "cat /proc/sys/kernel/hostname",
    );
    let (no_key, _, methods) = ssh(
        machine.port_22,
        None,
        &["-v", "-o", "PubkeyAuthentication=no"],
        "true",
    );
    let ssh_with_key = (|| {
        expect(logged_in && login_output.trim() == HOSTNAME, || {
            format!("ssh with the key in /boot/authorized_keys failed: {login_errors}")
        })?;
        let offered = methods
            .lines()
            .find(|line| line.contains("Authentications that can continue:"))
            .unwrap_or_default()
            .to_owned();
        expect(
            !no_key && !offered.is_empty() && !offered.contains("password"),
            || format!("the server offers more than public keys: {offered:?} (ssh: {no_key})"),
        )
    })();

    let watchdog_query =
        "systemctl show -p RuntimeWatchdogUSec -p WatchdogLastPingTimestampMonotonic; \
         echo state=$(cat /sys/class/watchdog/watchdog0/state); \
         echo timeout=$(cat /sys/class/watchdog/watchdog0/timeout)";
    let (_, watchdog) = machine.run(watchdog_query);
    std::thread::sleep(Duration::from_secs(6));
    let (_, watchdog_later) = machine.run(watchdog_query);
    let last_ping = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("WatchdogLastPingTimestampMonotonic="))
            .unwrap_or_default()
            .to_owned()
    };
    checks.check(
        "9. systemd arms the board's watchdog (RuntimeWatchdogSec=10s) and feeds it",
        expect(
            watchdog.contains("RuntimeWatchdogUSec=10s")
                && watchdog.contains("state=active")
                && watchdog.contains("timeout=10")
                && !last_ping(&watchdog).is_empty()
                && last_ping(&watchdog) != last_ping(&watchdog_later),
            || format!("watchdog: {watchdog} then {watchdog_later}"),
        ),
    );

    let (_, root_mount) = machine.run("findmnt -no SOURCE,FSTYPE,OPTIONS /");
    let (touch_status, touch) = machine.run("touch /streamer-test-write");
    let (_, var) = machine.run("findmnt -no FSTYPE /var");
    let (_, boot) = machine.run("findmnt -no FSTYPE,OPTIONS /boot");
    // Sectors written to slot A's partition since the kernel started.
    let root_writes = "awk '$3 == \"vda2\" { print $10 }' /proc/diskstats";
    let (_, written_before) = machine.run(root_writes);

    // Check 6 before powering off: a killed streamer, then a stalled one.
    let pid = streamer.get("MainPID").cloned().unwrap_or_default();
    let watchdog_sec = streamer_unit_seconds("WatchdogSec");
    let restart_sec = streamer_unit_seconds("RestartSec");
    // Killed: Restart=always starts a new one after RestartSec, well within
    // the watchdog time.
    let before = restarts(&mut machine);
    machine.run(&format!("kill -KILL {pid}"));
    let killed =
        wait_for_restart(&mut machine, &pid, before, watchdog_sec).and_then(|(new_pid, took)| {
            println!("    killed streamer {pid}: systemd started {new_pid} after {took:.1?}");
            watch(
                viewer,
                10,
                Duration::from_secs(120),
                &work.join("after-kill.h264"),
                None,
            )?;
            Ok(new_pid)
        });
    // Stalled: no more keep-alives; the watchdog fires after WatchdogSec, then
    // RestartSec. Emulation adds its own delays: a few seconds of margin.
    let stalled = killed.clone().and_then(|pid| {
        let before = restarts(&mut machine);
        machine.run(&format!("kill -STOP {pid}"));
        let limit = watchdog_sec + restart_sec + Duration::from_secs(5);
        let (new_pid, took) = wait_for_restart(&mut machine, &pid, before, limit)?;
        println!("    stalled streamer {pid}: the watchdog had it replaced by {new_pid} after {took:.1?}");
        let (_, journal) =
            machine.run("journalctl -u streamer.service -o cat --no-pager | grep -i watchdog");
        expect(journal.contains("Watchdog timeout"), || {
            format!("the journal does not show the watchdog: {journal}")
        })?;
        watch(
            viewer,
            10,
            Duration::from_secs(120),
            &work.join("after-stall.h264"),
            None,
        )
        .map(|_| ())
    });
    checks.check(
        "6. a killed and a stalled (watchdog) streamer are restarted by systemd, and the viewer resumes",
        killed.map(|_| ()).and(stalled),
    );

    let (_, written_after) = machine.run(root_writes);
    machine.power_off();
    let root_after = sha256_of_range(&disk, root_range);
    checks.check(
        "4. the root file system is read-only (slot A, squashfs) and nothing wrote to it",
        (|| {
            // The slot the stand-in firmware started, as squashfs, read-only.
            let mut fields = root_mount.split_whitespace();
            let (source, fstype, options) = (fields.next(), fields.next(), fields.next());
            expect(
                source == Some("/dev/vda2")
                    && fstype == Some("squashfs")
                    && options.and_then(|o| o.split(',').next()) == Some("ro"),
                || format!("/ is mounted {root_mount} (not slot A's /dev/vda2, squashfs, ro)"),
            )?;
            expect(
                touch_status != 0 && touch.contains("Read-only file system"),
                || format!("root could write to /: {touch}"),
            )?;
            expect(var.trim() == "tmpfs", || format!("/var is {var}"))?;
            expect(boot.starts_with("vfat") && boot.contains("ro,"), || {
                format!("/boot is {boot}")
            })?;
            expect(
                written_before.trim() == "0" && written_after.trim() == "0",
                || format!("the kernel wrote to the root's partition: {written_before:?} then {written_after:?} sectors"),
            )?;
            expect(root_before == root_after, || {
                "the root partition's bytes changed during the run".to_string()
            })
        })(),
    );

    // ---- Boot 2: a streamer.toml with errors.
    let (mut machine, _) = Machine::boot(
        &env,
        &work,
        "broken",
        |_| network_toml() + BROKEN_TOML,
        None,
        None,
    );
    let viewer = machine.address(machine.port_80);
    let basic = streamer::access::credentials::basic_header("streamer", BOOT_PASSWORD);
    let streams = first_frame(
        viewer,
        machine.powered_on + BOOT_TIMEOUT,
        &work.join("broken-first.h264"),
        Some(&basic),
    );
    // The password of a file with mistakes elsewhere still holds.
    let locked = (|| {
        for path in ["/", "/api/status", "/snapshot.jpg"] {
            let (code, _) = http_get(viewer, path);
            expect(code == 401, || {
                format!("GET {path} without the password answered {code}, not 401")
            })?;
        }
        let wrong = streamer::access::credentials::basic_header("streamer", "guess");
        let (code, _) = http_get_with(
            viewer,
            "/api/status",
            &format!("Authorization: {wrong}\r\n"),
        );
        expect(code == 401, || format!("a wrong password answered {code}"))?;
        let (code, body) = http_get(viewer, "/healthz");
        expect(code == 200 && body == "ok\n", || {
            format!("/healthz answered {code} {body:?}, not just ok")
        })?;
        expect(
            watch(
                viewer,
                1,
                Duration::from_secs(20),
                &work.join("no-password.h264"),
                None,
            )
            .is_err(),
            || "a WebSocket without the password got video".to_string(),
        )
    })();
    let result = (|| {
        streams
            .ok_or_else(|| "no frame on the default port 80 within the boot timeout".to_string())?;
        watch(
            viewer,
            5,
            Duration::from_secs(180),
            &work.join("broken.h264"),
            Some(&basic),
        )?;
        let (code, body) = http_get_with(
            viewer,
            "/api/status",
            &format!("Authorization: {basic}\r\n"),
        );
        expect(code == 200, || format!("GET /api/status answered {code}"))?;
        let status: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let errors = status["config"]["errors"].to_string();
        expect(
            errors.contains("server.max_viewrs") && errors.contains("camera.source"),
            || format!("/api/status config.errors do not name both mistakes: {errors}"),
        )
    })();
    machine.wait_for_control();
    let dropbear = machine.unit("dropbear.service");
    let (logged_in, _, _) = ssh(machine.port_22, Some(&key), &[], "true");
    checks.check(
        "8. SSH: only with /boot/authorized_keys, and then by public key only",
        ssh_with_key.and_then(|()| {
            expect(
                dropbear.get("ActiveState").map(String::as_str) == Some("inactive") && !logged_in,
                || format!("without /boot/authorized_keys: dropbear.service {dropbear:?}, ssh login {logged_in}"),
            )
        }),
    );
    checks.check(
        "5. a streamer.toml with errors boots to a working stream (defaults) and /api/status shows the errors",
        result,
    );
    checks.check(
        "12. with a password in streamer.toml (kept despite mistakes elsewhere) the device answers 401 without it, streams with it, and /healthz says only ok",
        locked,
    );
    machine.power_off();

    // ---- 7: a trend figure only (emulated).
    checks.check(
        &format!(
            "7. power-on (qemu start) to the first decodable frame on the host: {} (emulated)",
            to_first_frame.map_or("none".to_owned(), |took| format!("{took:.1?}"))
        ),
        to_first_frame
            .map(|_| ())
            .ok_or_else(|| "no frame arrived".to_owned()),
    );
    println!("summary:\n{}", checks.summary());

    assert!(
        checks.failed.is_empty(),
        "{} boot check(s) failed:\n{}",
        checks.failed.len(),
        checks.failed.join("\n")
    );
}

/// A signed update bundle of root file system `image` (`.ci/bundle`, as `make
/// bundle` makes them), for the test system's compatible, with the test key.
fn make_bundle(env: &BootEnv, image: &Path, version: &str, out: &Path) {
    let status = Command::new(support::repo_root().join(".ci/bundle"))
        .arg(image)
        .arg(&env.compatible)
        .arg(version)
        .arg(&env.signing_key)
        .arg(&env.signing_cert)
        .arg(out)
        .status()
        .expect(".ci/bundle runs");
    assert!(status.success(), ".ci/bundle {} failed", out.display());
}

/// Slot A's image with a streamer that never becomes ready: it says so and
/// exits (systemd restarts it every RestartSec, for ever).
fn broken_image(env: &BootEnv, work: &Path) -> PathBuf {
    let root = work.join("broken-root");
    let _ = std::fs::remove_dir_all(&root);
    let status = Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&root)
        .arg(&env.rootfs)
        .stdout(Stdio::null())
        .status()
        .expect("unsquashfs (squashfs-tools)");
    assert!(status.success(), "unsquashfs {}", env.rootfs.display());
    let streamer = root.join("usr/bin/streamer");
    std::fs::write(
        &streamer,
        "#!/bin/sh\necho 'streamer: a broken build (make test-boot): never ready' >&2\nexit 1\n",
    )
    .unwrap();
    let status = Command::new("chmod")
        .arg("0755")
        .arg(&streamer)
        .status()
        .unwrap();
    assert!(status.success());
    let image = work.join("broken.squashfs");
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&image)
        .args(["-noappend", "-quiet", "-no-progress"])
        .stdout(Stdio::null())
        .status()
        .expect("mksquashfs (squashfs-tools)");
    assert!(status.success(), "mksquashfs {}", image.display());
    let _ = std::fs::remove_dir_all(&root);
    image
}

/// The bundles installed with `rauc install` on a disk of their own (ext4,
/// attached read-only), as a USB stick would bring them (check 13's comes
/// over HTTP instead).
fn bundle_disk(dir: &Path, out: &Path) {
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    let megabytes = bytes / (1 << 20) + 64;
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "bundles", "-E", "root_owner=0:0", "-d"])
        .arg(dir)
        .arg(out)
        .arg(format!("{megabytes}M"))
        .status()
        .expect("mkfs.ext4 (e2fsprogs)");
    assert!(status.success(), "mkfs.ext4 {}", out.display());
}

/// Mounts the bundle disk (the second virtio disk) at /run/bundles.
fn mount_bundles(machine: &mut Machine) -> Result<(), String> {
    let (status, out) = machine.run(
        "mountpoint -q /run/bundles || { mkdir -p /run/bundles && mount -o ro /dev/vdb /run/bundles; }",
    );
    expect(status == 0, || {
        format!("cannot mount the bundle disk: {out}")
    })
}

/// `rauc install` of a bundle on the bundle disk, to the end.
fn install(machine: &mut Machine, bundle: &str) -> Result<(), String> {
    mount_bundles(machine)?;
    let (status, out) = machine
        .try_run(
            &format!("rauc install /run/bundles/{bundle}"),
            Duration::from_secs(900),
        )
        .ok_or_else(|| format!("rauc install {bundle} did not end within 900 s"))?;
    expect(status == 0, || {
        format!("rauc install {bundle} failed: {out}")
    })?;
    println!(
        "    rauc install {bundle}: {}",
        out.lines().last().unwrap_or_default()
    );
    Ok(())
}

/// Waits for streamer-update-check.service to end its work at this boot
/// (active: RemainAfterExit; or failed), within `within`.
fn trial_ended(machine: &mut Machine, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let unit = machine.unit("streamer-update-check.service");
        match unit.get("ActiveState").map(String::as_str) {
            Some("active") => return Ok(()),
            Some("failed") => return Err(format!("streamer-update-check failed: {unit:?}")),
            _ if Instant::now() > deadline => {
                return Err(format!(
                    "streamer-update-check did not end within {within:?}: {unit:?}"
                ));
            }
            _ => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// The slot state as the guest sees it: the command line's slot, the firmware
/// files' os_prefix lines, the update record and `rauc status`.
struct Slots {
    cmdline: String,
    config: String,
    tryboot: String,
    record: String,
    rauc: String,
}

impl Slots {
    fn read(machine: &mut Machine) -> Slots {
        let mut read = |command: &str| machine.run(command).1;
        Slots {
            cmdline: read("cat /proc/cmdline"),
            config: read("grep '^os_prefix=' /boot/config.txt"),
            tryboot: read("grep '^os_prefix=' /boot/tryboot.txt"),
            record: read("cat /boot/last-update.txt"),
            rauc: read("rauc status"),
        }
    }

    /// Running slot `slot` (its command line, RAUC agreeing) with config.txt
    /// and tryboot.txt both naming it (no trial pending).
    fn committed(&self, slot: &str) -> Result<(), String> {
        let prefix = format!("os_prefix=slot-{}/", slot.to_lowercase());
        let root = if slot == "A" { "vda2" } else { "vda3" };
        expect(
            self.cmdline.contains(&format!("rauc.slot={slot}"))
                && self.cmdline.contains(&format!("root=/dev/{root}"))
                && self.rauc.contains(&format!(
                    "Booted from: rootfs.{} ({slot})",
                    if slot == "A" { 0 } else { 1 }
                ))
                && self.config.trim() == prefix
                && self.tryboot.trim() == prefix,
            || format!("not running and committed to slot {slot}: {self}"),
        )
    }
}

impl std::fmt::Display for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "/proc/cmdline: {}; config.txt: {}; tryboot.txt: {}; last-update.txt:\n{}\nrauc status:\n{}",
            self.cmdline.trim(),
            self.config.trim(),
            self.tryboot.trim(),
            self.record.trim(),
            self.rauc.trim()
        )
    }
}

/// Waits for the first frame of a (re)started machine and its command
/// channel, then 10 more frames that ffprobe decodes.
fn streams_again(
    machine: &mut Machine,
    work: &Path,
    name: &str,
    authorization: Option<&str>,
) -> Result<(), String> {
    let viewer = machine.address(machine.port_8080);
    first_frame(
        viewer,
        machine.powered_on + BOOT_TIMEOUT,
        &work.join(format!("{name}-first.h264")),
        authorization,
    )
    .ok_or_else(|| format!("no frame within {BOOT_TIMEOUT:?} of power-on"))?;
    machine.wait_for_control();
    watch(
        viewer,
        10,
        Duration::from_secs(120),
        &work.join(format!("{name}.h264")),
        authorization,
    )
    .map(|_| ())
}

/// The owner's password on the updating machine: `POST /api/update` needs one.
const UPDATE_PASSWORD: &str = "update test passphrase";

fn update_access_toml() -> String {
    format!("\n[access]\npassword = \"{UPDATE_PASSWORD}\"\n")
}

/// A JSON answer of the streamer's on the forwarded port 8080, with `basic`.
fn api_json(machine: &Machine, path: &str, basic: &str) -> Result<serde_json::Value, String> {
    let (code, body) = http_get_with(
        machine.address(machine.port_8080),
        path,
        &format!("Authorization: {basic}\r\n"),
    );
    expect(code == 200, || {
        format!("GET {path} answered {code}: {body}")
    })?;
    serde_json::from_str(&body).map_err(|e| format!("GET {path}: not JSON ({e}): {body}"))
}

/// The owner's way: curl (a client nobody here wrote) sends `bundle` to
/// `POST /api/update` through qemu's forward, with the password, while a
/// viewer keeps watching; then `GET /api/update` is followed until RAUC's
/// install ended well, the viewer still getting frames. The device restarts
/// by itself afterwards (the post-install handler).
fn upload(machine: &mut Machine, work: &Path, bundle: &Path, basic: &str) -> Result<(), String> {
    let viewer = machine.address(machine.port_8080);
    let (_, free) = machine.run("df -k --output=avail /run/streamer-update | tail -n 1");
    let size = std::fs::metadata(bundle).map_err(|e| e.to_string())?.len();
    println!(
        "    bundle {} MiB; the guest's /run/streamer-update has {} MiB free",
        size >> 20,
        free.trim().parse::<u64>().unwrap_or(0) >> 10
    );
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "900", "-X", "POST"])
        .args(["-H", &format!("Authorization: {basic}")])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
        ])
        .arg("--upload-file")
        .arg(bundle)
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://{viewer}/api/update"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    // Video flows while the bundle arrives.
    let during = watch(
        viewer,
        20,
        Duration::from_secs(180),
        &work.join("update-during-upload.h264"),
        Some(basic),
    );
    let output = curl.wait_with_output().map_err(|e| e.to_string())?;
    during.map_err(|e| format!("the viewer stalled during the upload: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, code) = text.trim_end().rsplit_once('\n').unwrap_or(("", &text));
    expect(output.status.success() && code == "202", || {
        format!(
            "POST /api/update answered {code}: {body} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    // RAUC installs; the viewer goes on.
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut watched = false;
    loop {
        let report = match api_json(machine, "/api/update", basic) {
            Ok(report) => report,
            // The handler restarts the device 5 s after a good install: the
            // answer may be gone before it was read. The restart into slot
            // B's trial, checked next, says how it ended.
            Err(error) if watched => {
                println!("    the device went to restart before the result was read ({error})");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let upload = &report["upload"];
        if upload["phase"] == "finished" {
            expect(upload["ok"] == true, || {
                format!("RAUC did not install the uploaded bundle: {report}")
            })?;
            expect(watched, || {
                "the install ended before the viewer's frames were counted".to_owned()
            })?;
            return Ok(());
        }
        expect(Instant::now() < deadline, || {
            format!("the install did not end within 900 s: {report}")
        })?;
        if !watched && upload["phase"] == "installing" {
            watch(
                viewer,
                10,
                Duration::from_secs(180),
                &work.join("update-during-install.h264"),
                Some(basic),
            )
            .map_err(|e| format!("the viewer stalled while RAUC installed: {e}"))?;
            watched = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `GET /api/update`'s `boot_id`, which must be the guest kernel's.
fn boot_id(machine: &mut Machine, basic: &str) -> Result<String, String> {
    let report = api_json(machine, "/api/update", basic)?;
    let said = report["boot_id"].as_str().unwrap_or_default().to_owned();
    let (_, kernel) = machine.run("cat /proc/sys/kernel/random/boot_id");
    expect(!said.is_empty() && said == kernel.trim(), || {
        format!("GET /api/update's boot_id {said:?} is not the kernel's {kernel:?}")
    })?;
    Ok(said)
}

/// The trial's time limit in the test system (assemble's drop-in).
const TRIAL_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
#[ignore = "needs the assembled disk and qemu-system-aarch64; run by `make test-boot`"]
fn the_appliance_updates_itself() {
    if !support::netns::isolated("the_appliance_updates_itself") {
        return;
    }
    let env = BootEnv::read();
    let work = env.disk.parent().unwrap().join("run-update");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("bundles")).unwrap();
    let mut checks = Checks::default();

    // The bundles, made here from the assembled root: slot A's own image
    // (good), and one whose streamer never becomes ready (bad).
    let made = Instant::now();
    // The good one is uploaded from here (check 13); the bad one is
    // installed from the bundle disk.
    let good_bundle = work.join("good.raucb");
    make_bundle(&env, &env.rootfs, "boot-test-2", &good_bundle);
    let broken = broken_image(&env, &work);
    make_bundle(
        &env,
        &broken,
        "boot-test-3-broken",
        &work.join("bundles/bad.raucb"),
    );
    let _ = std::fs::remove_file(&broken);
    let bundles = work.join("bundles.img");
    bundle_disk(&work.join("bundles"), &bundles);
    std::fs::remove_dir_all(work.join("bundles")).unwrap();
    println!("update: bundles made in {:.0?}", made.elapsed());

    let (mut machine, disk) = Machine::boot(
        &env,
        &work,
        "update",
        |udp| network_toml() + GOOD_TOML + &webrtc_toml(udp) + &update_access_toml(),
        None,
        Some(&bundles),
    );
    let basic = streamer::access::credentials::basic_header("streamer", UPDATE_PASSWORD);
    let auth = Some(basic.as_str());

    // ---- 13: slot A installs a good bundle into B, tries it, keeps it.
    let good = (|| {
        streams_again(&mut machine, &work, "update-a", auth)?;
        Slots::read(&mut machine).committed("A")?;
        let boot_before = boot_id(&mut machine, &basic)?;
        let started = Instant::now();
        upload(&mut machine, &work, &good_bundle, &basic)?;
        println!("    uploaded and installed in {:.0?}", started.elapsed());
        // The post-install handler restarts the device by itself.
        machine.restart(Duration::from_secs(120))?;
        let trial = machine.loaded.clone();
        expect(
            trial.file == "tryboot.txt" && trial.os_prefix == "slot-b/",
            || {
                format!(
                    "after the install the firmware started {trial:?}, not tryboot.txt's slot-b/"
                )
            },
        )?;
        streams_again(&mut machine, &work, "update-b", auth)?;
        trial_ended(&mut machine, TRIAL_TIMEOUT + Duration::from_secs(60))?;
        let slots = Slots::read(&mut machine);
        slots.committed("B")?;
        expect(
            slots.record.contains("result=updated")
                && slots.record.contains("version=boot-test-2")
                && slots.record.contains("slot=B"),
            || format!("last-update.txt does not say boot-test-2 updated slot B: {slots}"),
        )?;
        // The streamer says so too.
        let status = api_json(&machine, "/api/status", &basic)?;
        let update = &status["update"];
        expect(
            update["slot"] == "B"
                && update["last"]["result"] == "updated"
                && update["last"]["version"] == "boot-test-2",
            || format!("/api/status update does not say slot B, boot-test-2 updated: {update}"),
        )?;
        // The update page tells the restart by the boot id.
        let boot_after = boot_id(&mut machine, &basic)?;
        expect(boot_after != boot_before, || {
            format!("GET /api/update's boot_id is {boot_after} before and after the restart")
        })?;
        // A plain restart stays on B (config.txt).
        // The channel may go before it answers.
        let _ = machine.try_run("systemctl --no-block reboot", Duration::from_secs(10));
        machine.restart(Duration::from_secs(120))?;
        let plain = machine.loaded.clone();
        expect(
            plain.file == "config.txt" && plain.os_prefix == "slot-b/",
            || format!("a plain restart started {plain:?}, not config.txt's slot-b/"),
        )?;
        streams_again(&mut machine, &work, "update-b-again", auth)?;
        Slots::read(&mut machine).committed("B")
    })();
    let good_ok = good.is_ok();
    checks.check(
        "13. update: a signed bundle uploaded to slot A's POST /api/update installs while video flows; \
         the device restarts by itself into slot B's trial (tryboot.txt), commits it (config.txt slot-b/, last-update.txt updated, rauc booted B), \
         stays on B after a plain restart and streams",
        good,
    );

    // ---- 15: the power goes while RAUC writes slot A; B stays the one.
    let power_cut = (|| {
        expect(good_ok, || {
            "check 13 did not leave the device on slot B".to_owned()
        })?;
        mount_bundles(&mut machine)?;
        let sectors = "awk '$3 == \"vda2\" { print $10 }' /proc/diskstats";
        let before: u64 = machine.run(sectors).1.trim().parse().unwrap_or(0);
        // In the background (setsid -f), off the command channel.
        let (status, out) = machine
            .run("setsid -f rauc install /run/bundles/bad.raucb > /run/cut.log 2>&1 < /dev/null");
        expect(status == 0, || format!("cannot start rauc install: {out}"))?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let progress =
            "busctl get-property de.pengutronix.rauc / de.pengutronix.rauc.Installer Progress";
        // Cut once RAUC says it copies the image into slot A (rootfs.0) and
        // 8 MiB of it reached the partition.
        let at_cut = loop {
            let (_, now) = machine.run(&format!("{progress}; {sectors}"));
            let written = now
                .lines()
                .last()
                .and_then(|l| l.trim().parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_sub(before);
            // The step's own message (its end adds " done.").
            if now.contains("\"Copying image to rootfs.0\"") && written >= 16384 {
                break format!(
                    "{} ({} MiB written)",
                    now.lines().next().unwrap_or_default(),
                    written / 2048
                );
            }
            if Instant::now() > deadline {
                let (_, log) = machine.run("cat /run/cut.log");
                return Err(format!(
                    "RAUC was not seen writing slot A within 300 s: {now}; {log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        machine.power_cut();
        println!("    power cut while RAUC reported {at_cut}");
        let (config, tryboot) = (
            os_prefix_on(&disk, "config.txt"),
            os_prefix_on(&disk, "tryboot.txt"),
        );
        expect(config == "slot-b/" && tryboot == "slot-b/", || {
            format!("after the cut config.txt says {config}, tryboot.txt {tryboot}: the half-written slot A could be started")
        })?;
        let loaded = machine.loaded.clone();
        expect(
            loaded.file == "config.txt" && loaded.os_prefix == "slot-b/",
            || format!("after the cut the firmware started {loaded:?}"),
        )?;
        streams_again(&mut machine, &work, "update-after-cut", auth)?;
        trial_ended(&mut machine, TRIAL_TIMEOUT)?;
        Slots::read(&mut machine).committed("B")
    })();
    let cut_ok = power_cut.is_ok();
    checks.check(
        "15. update: the power cut while RAUC writes slot A leaves config.txt and tryboot.txt on slot B, \
         which the next start boots and streams",
        power_cut,
    );

    // ---- 14: a bundle whose streamer never becomes ready goes back by itself.
    let bad = (|| {
        expect(cut_ok, || {
            "check 15 did not leave the device on slot B".to_owned()
        })?;
        install(&mut machine, "bad.raucb")?;
        machine.restart(Duration::from_secs(120))?;
        let trial = machine.loaded.clone();
        expect(
            trial.file == "tryboot.txt" && trial.os_prefix == "slot-a/",
            || {
                format!(
                    "after the install the firmware started {trial:?}, not tryboot.txt's slot-a/"
                )
            },
        )?;
        // The trial gives up after TRIAL_TIMEOUT and restarts plainly.
        machine.restart(BOOT_TIMEOUT + TRIAL_TIMEOUT + Duration::from_secs(120))?;
        let back = machine.loaded.clone();
        expect(
            back.file == "config.txt" && back.os_prefix == "slot-b/",
            || {
                format!("after the failed trial the firmware started {back:?}, not config.txt's slot-b/")
            },
        )?;
        streams_again(&mut machine, &work, "update-rolled-back", auth)?;
        trial_ended(&mut machine, TRIAL_TIMEOUT)?;
        let slots = Slots::read(&mut machine);
        slots.committed("B")?;
        expect(
            slots.record.contains("result=rolled-back")
                && slots.record.contains("version=boot-test-3-broken")
                && slots.record.contains("slot=A"),
            || format!("last-update.txt does not say the broken version was rolled back: {slots}"),
        )
    })();
    checks.check(
        "14. update: a bundle whose streamer never becomes ready is tried (tryboot.txt, slot A), \
         given up after TRIAL_TIMEOUT, and the device restarts by itself into slot B, streaming; \
         last-update.txt says rolled-back",
        bad,
    );
    machine.power_off();
    println!("summary:\n{}", checks.summary());
    assert!(
        checks.failed.is_empty(),
        "{} update check(s) failed:\n{}",
        checks.failed.len(),
        checks.failed.join("\n")
    );
}
