//! The A/B update machinery of the image, on this machine (docs/updates.md):
//!
//! - the RAUC bootloader backend, the install handlers and the trial-boot check
//!   (overlay/usr/libexec/streamer/) against a boot partition in a folder:
//!   every step of an update, a commit, a rollback, and the refusals;
//! - Debian's RAUC (the `rauc` package; the image has RAUC 1.15 from Buildroot)
//!   as the judge of `.ci/bundle`'s bundles and the image's system.conf: a
//!   signed bundle verifies with its certificate and is refused with another;
//! - a whole install by a real `rauc service` (on a private D-Bus), which
//!   calls our backend and handlers with file-backed slots.
//!
//! The firmware's part (reading config.txt or tryboot.txt) and the verity
//! bundle's device mapper (this machine's kernel has none) are played in the
//! emulated boot (app/tests/boot.rs).

mod support;

use std::fs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::dbus::PrivateBus;

fn scripts() -> PathBuf {
    support::repo_root().join("overlay/usr/libexec/streamer")
}

fn board() -> PathBuf {
    support::repo_root().join("board/raspberrypi")
}

/// A camera's boot partition in a folder, two slots' root file systems as
/// folders, and the paths the scripts use, all under one temporary folder.
struct Card {
    dir: tempfile::TempDir,
}

impl Card {
    /// A freshly flashed card: config.txt and tryboot.txt name slot A, whose
    /// boot files are in slot-a/; slot B's root holds a newer kernel.
    fn fresh() -> Card {
        let card = Card {
            dir: tempfile::tempdir().expect("temporary folder"),
        };
        fs::create_dir_all(card.boot()).unwrap();
        fs::copy(board().join("config.txt"), card.boot().join("config.txt")).unwrap();
        fs::copy(board().join("config.txt"), card.boot().join("tryboot.txt")).unwrap();
        for (slot, kernel) in [("A", "kernel of A"), ("B", "kernel of B")] {
            let files = card.root(slot).join("usr/lib/streamer/boot");
            fs::create_dir_all(files.join("overlays")).unwrap();
            fs::write(files.join("Image"), kernel).unwrap();
            fs::write(files.join("bcm2711-rpi-4-b.dtb"), "device tree").unwrap();
            fs::write(files.join("overlays/imx219.dtbo"), "overlay").unwrap();
            fs::copy(board().join("cmdline.txt"), files.join("cmdline.txt")).unwrap();
        }
        let run = card.shell(
            ". \"$BOOT_SLOTS_LIB\"; install_boot_files \"$SLOT_ROOT_A/usr/lib/streamer/boot\" A \"$BOOT_DIR/slot-a\"",
        );
        assert!(run.status.success(), "{}", text(&run));
        card.boot_as("A");
        card
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn boot(&self) -> PathBuf {
        self.path().join("boot")
    }

    fn root(&self, slot: &str) -> PathBuf {
        self.path().join(format!("root-{slot}"))
    }

    fn reboot_param(&self) -> PathBuf {
        self.path().join("reboot-param")
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.boot().join(name)).unwrap_or_default()
    }

    /// The slot a boot file's os_prefix names.
    fn prefix(&self, name: &str) -> String {
        let text = self.read(name);
        let prefixes: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("os_prefix="))
            .collect();
        assert_eq!(prefixes.len(), 1, "{name}:\n{text}");
        prefixes[0].to_owned()
    }

    /// The kernel command line of a boot with slot `slot` (what the firmware
    /// passes from slot-x/cmdline.txt).
    fn boot_as(&self, slot: &str) {
        fs::write(
            self.path().join("cmdline"),
            format!("root=/dev/mmcblk0p2 ro rauc.slot={slot}\n"),
        )
        .unwrap();
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("BOOT_DIR", self.boot())
            .env("BOOT_SLOTS_LIB", scripts().join("boot-slots.sh"))
            .env("REBOOT_PARAM", self.reboot_param())
            .env("PROC_CMDLINE", self.path().join("cmdline"))
            .env("SLOTS_LOCK", self.path().join("lock"))
            .env("RAUC_CONF", self.path().join("system.conf"))
            .env("SLOT_ROOT_A", self.root("A"))
            .env("SLOT_ROOT_B", self.root("B"))
            .env("STREAMER_UPDATE_NO_REBOOT", "1")
            .stdin(Stdio::null());
        command
    }

    fn shell(&self, script: &str) -> Output {
        self.command(Path::new("/bin/sh"))
            .args(["-c", script])
            .output()
            .expect("sh runs")
    }

    /// The backend, as RAUC calls it.
    fn backend(&self, args: &[&str]) -> Output {
        self.command(&scripts().join("rauc-backend"))
            .args(args)
            .output()
            .expect("the backend runs")
    }

    /// The backend's answer to a query, which must succeed.
    fn ask(&self, args: &[&str]) -> String {
        let out = self.backend(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn must(&self, args: &[&str]) {
        let out = self.backend(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }

    fn refused(&self, args: &[&str]) -> String {
        let out = self.backend(args);
        assert!(
            !out.status.success(),
            "{args:?} was accepted: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The boot partition's files and their contents, to show nothing changed.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![self.boot()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((path.clone(), fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }

    /// Installs slot B as RAUC does: mark it bad, (write it), make it primary,
    /// then the post-install handler with RAUC's environment.
    fn install_b(&self, version: &str) {
        self.must(&["set-state", "B", "bad"]);
        self.must(&["set-primary", "B"]);
        let bundle = self.path().join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        fs::write(
            bundle.join("manifest.raucm"),
            format!("[update]\ncompatible=streamer-test\nversion={version}\n\n[image.rootfs]\nfilename=rootfs.img\n"),
        )
        .unwrap();
        let out = self
            .command(&scripts().join("rauc-post-install"))
            .env("RAUC_BUNDLE_MOUNT_POINT", &bundle)
            .env("RAUC_TARGET_SLOTS", "2")
            .env("RAUC_SLOT_BOOTNAME_2", "B")
            .output()
            .unwrap();
        assert!(out.status.success(), "post-install: {}", text(&out));
    }

    /// The trial-boot check with stand-ins for systemctl, rauc (which calls
    /// this backend as RAUC would) and `streamer health` answering `healthy`.
    /// Returns the stand-ins' log of calls.
    fn update_check(&self, healthy: bool) -> String {
        let bin = self.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let log = self.path().join("calls");
        let _ = fs::remove_file(&log);
        let backend = scripts().join("rauc-backend");
        write_script(
            &bin.join("systemctl"),
            &format!("echo \"systemctl $*\" >> '{}'\nexit 0\n", log.display()),
        );
        write_script(
            &bin.join("rauc"),
            &format!(
                "echo \"rauc $*\" >> '{log}'\n\
                 [ \"$1 $2\" = 'status mark-good' ] || [ \"$1 $2\" = 'status mark-bad' ] || exit 3\n\
                 booted=$(sed -n 's/.*rauc\\.slot=\\([AB]\\).*/\\1/p' \"$PROC_CMDLINE\")\n\
                 case $3 in booted) slot=$booted ;; other) [ \"$booted\" = A ] && slot=B || slot=A ;; *) exit 3 ;; esac\n\
                 state=${{2#mark-}}\n\
                 exec '{backend}' set-state \"$slot\" \"$state\"\n",
                log = log.display(),
                backend = backend.display()
            ),
        );
        write_script(
            &bin.join("streamer"),
            &format!(
                "echo \"streamer $*\" >> '{}'\nexit {}\n",
                log.display(),
                u8::from(!healthy)
            ),
        );
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = self
            .command(&scripts().join("update-check"))
            .env("PATH", path)
            .env("STREAMER", bin.join("streamer"))
            .env("TRIAL_TIMEOUT", if healthy { "30" } else { "0" })
            .output()
            .unwrap();
        assert!(out.status.success(), "update-check: {}", text(&out));
        fs::read_to_string(&log).unwrap_or_default()
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_fresh_card_boots_slot_a_and_has_nothing_to_try() {
    let card = Card::fresh();
    assert_eq!(card.prefix("config.txt"), "slot-a/");
    assert_eq!(card.ask(&["get-primary"]), "A");
    assert_eq!(card.ask(&["get-current"]), "A");
    assert_eq!(card.ask(&["get-state", "A"]), "good");
    assert_eq!(card.ask(&["get-state", "B"]), "bad");
    let cmdline = card.read("slot-a/cmdline.txt");
    assert!(cmdline.contains("root=/dev/mmcblk0p2 "), "{cmdline}");
    assert!(cmdline.trim_end().ends_with("rauc.slot=A"), "{cmdline}");
    assert!(card.boot().join("slot-a/overlays/README").exists());
    // An ordinary boot changes nothing and records nothing.
    let before = card.snapshot();
    let calls = card.update_check(true);
    assert_eq!(card.snapshot(), before, "calls: {calls}");
    assert!(calls.is_empty(), "{calls}");
}

#[test]
fn an_install_prepares_a_one_time_trial_of_the_other_slot() {
    let card = Card::fresh();
    // RAUC first marks the target bad: nothing to write while no trial is armed.
    let before = card.snapshot();
    card.must(&["set-state", "B", "bad"]);
    assert_eq!(card.snapshot(), before);
    card.install_b("2.0.0");
    // B's boot files came from its root file system, its command line names
    // partition 3 and slot B.
    assert_eq!(card.read("slot-b/Image"), "kernel of B");
    assert_eq!(card.read("slot-b/bcm2711-rpi-4-b.dtb"), "device tree");
    assert_eq!(card.read("slot-b/overlays/imx219.dtbo"), "overlay");
    assert!(card.boot().join("slot-b/overlays/README").exists());
    let cmdline = card.read("slot-b/cmdline.txt");
    assert!(cmdline.contains("root=/dev/mmcblk0p3 "), "{cmdline}");
    assert!(cmdline.contains("rauc.slot=B"), "{cmdline}");
    assert!(!cmdline.contains("rauc.slot=A"), "{cmdline}");
    // The firmware still boots A unless told to try: config.txt is unchanged,
    // tryboot.txt is config.txt naming B, and any reboot now is the trial.
    assert_eq!(card.prefix("config.txt"), "slot-a/");
    assert_eq!(card.prefix("tryboot.txt"), "slot-b/");
    assert_eq!(
        card.read("config.txt")
            .replace("os_prefix=slot-a/", "os_prefix=slot-b/"),
        card.read("tryboot.txt")
    );
    assert_eq!(
        fs::read_to_string(card.reboot_param()).unwrap(),
        "0 tryboot\n"
    );
    assert_eq!(card.ask(&["get-primary"]), "B");
    assert_eq!(card.ask(&["get-state", "B"]), "good");
    // The record says what was installed where.
    let record = card.read("last-update.txt");
    for line in ["result=installed", "version=2.0.0", "slot=B"] {
        assert!(record.lines().any(|l| l == line), "{line} in:\n{record}");
    }
    // No leftovers of the atomic writes.
    assert!(!card.boot().join("tryboot.txt.new").exists());
    assert!(!card.boot().join("slot-b.new").exists());
}

#[test]
fn a_healthy_trial_is_committed() {
    let card = Card::fresh();
    card.install_b("2.0.0");
    // The firmware read tryboot.txt: slot B runs.
    card.boot_as("B");
    fs::remove_file(card.reboot_param()).unwrap();
    // An install during the trial would overwrite the way back: refused.
    let out = card
        .command(&scripts().join("rauc-pre-install"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("on trial"),
        "{}",
        text(&out)
    );

    let calls = card.update_check(true);
    assert!(calls.contains("streamer --config"), "{calls}");
    assert!(calls.contains("rauc status mark-good booted"), "{calls}");
    assert!(!calls.contains("reboot"), "{calls}");
    assert_eq!(card.prefix("config.txt"), "slot-b/");
    assert_eq!(card.prefix("tryboot.txt"), "slot-b/");
    assert_eq!(card.ask(&["get-primary"]), "B");
    assert_eq!(card.ask(&["get-state", "A"]), "bad");
    let record = card.read("last-update.txt");
    assert!(record.contains("result=updated"), "{record}");
    assert!(record.contains("version=2.0.0"), "{record}");
    // Installs work again, into A now.
    let out = card
        .command(&scripts().join("rauc-pre-install"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_unhealthy_trial_goes_back_and_says_so() {
    let card = Card::fresh();
    card.install_b("2.0.0");
    card.boot_as("B");
    let calls = card.update_check(false);
    assert!(calls.contains("rauc status mark-bad booted"), "{calls}");
    assert!(calls.contains("systemctl reboot"), "{calls}");
    // The next boot, whatever it is, starts A: config.txt never named B, and
    // tryboot.txt no longer does either.
    assert_eq!(card.prefix("config.txt"), "slot-a/");
    assert_eq!(card.prefix("tryboot.txt"), "slot-a/");
    assert!(!card.reboot_param().exists());
    let record = card.read("last-update.txt");
    assert!(record.contains("result=rolled-back"), "{record}");
    assert!(record.contains("version=2.0.0"), "{record}");

    // Back on A, the check has nothing more to do.
    card.boot_as("A");
    let before = card.snapshot();
    let calls = card.update_check(true);
    assert!(calls.is_empty(), "{calls}");
    assert_eq!(card.snapshot(), before);
}

#[test]
fn a_trial_that_never_came_up_is_recorded_on_the_old_slot() {
    let card = Card::fresh();
    card.install_b("2.0.0");
    // The trial boot crashed (or the power went): the firmware started
    // config.txt's slot A again, with tryboot.txt still naming B.
    fs::remove_file(card.reboot_param()).unwrap();
    card.boot_as("A");
    let calls = card.update_check(true);
    assert!(calls.contains("rauc status mark-bad other"), "{calls}");
    assert!(!calls.contains("reboot"), "{calls}");
    assert_eq!(card.prefix("config.txt"), "slot-a/");
    assert_eq!(card.prefix("tryboot.txt"), "slot-a/");
    assert_eq!(card.ask(&["get-state", "B"]), "bad");
    let record = card.read("last-update.txt");
    assert!(record.contains("result=rolled-back"), "{record}");
    assert!(record.contains("slot=B"), "{record}");
}

#[test]
fn choosing_the_committed_slot_cancels_a_pending_trial() {
    let card = Card::fresh();
    card.install_b("2.0.0");
    card.must(&["set-primary", "A"]);
    assert_eq!(card.prefix("tryboot.txt"), "slot-a/");
    assert!(!card.reboot_param().exists());
    assert_eq!(card.ask(&["get-primary"]), "A");
}

#[test]
fn the_backend_refuses_what_would_break_the_way_back() {
    let card = Card::fresh();
    let before = card.snapshot();
    assert!(card
        .refused(&["set-state", "A", "bad"])
        .contains("committed"));
    assert!(card
        .refused(&["set-state", "B", "good"])
        .contains("not running"));
    assert!(card
        .refused(&["set-primary", "C"])
        .contains("no slot named 'C'"));
    assert!(card.refused(&["get-state"]).contains("usage"));
    assert!(card.refused(&["frobnicate"]).contains("usage"));
    assert_eq!(card.snapshot(), before);
    // A boot file without the slot line is named, not guessed at.
    let config = card.read("config.txt").replace("os_prefix=slot-a/\n", "");
    fs::write(card.boot().join("config.txt"), config).unwrap();
    assert!(card
        .refused(&["get-primary"])
        .contains("config.txt has no os_prefix"));
    // A slot whose root has no kernel is not made bootable.
    let card = Card::fresh();
    fs::remove_file(card.root("B").join("usr/lib/streamer/boot/Image")).unwrap();
    assert!(card.refused(&["set-primary", "B"]).contains("no kernel"));
    assert_eq!(card.prefix("tryboot.txt"), "slot-a/");
    assert!(!card.reboot_param().exists());
}

#[test]
fn owner_edits_of_config_txt_survive_a_commit() {
    let card = Card::fresh();
    let edited = card
        .read("config.txt")
        .replace("#start_x=1", "# The owner's legacy camera.\nstart_x=1");
    fs::write(card.boot().join("config.txt"), &edited).unwrap();
    card.install_b("2.0.0");
    assert!(card.read("tryboot.txt").contains("\nstart_x=1\n"));
    card.boot_as("B");
    card.update_check(true);
    assert_eq!(
        card.read("config.txt"),
        edited.replace("os_prefix=slot-a/", "os_prefix=slot-b/")
    );
}

/// A signing key pair made by `.ci/signing-key` (the throwaway kind) in `dir`.
fn signing_key(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new(support::repo_root().join(".ci/signing-key"))
        .arg(dir)
        .env_remove("STREAMER_SIGNING_KEY")
        .env_remove("STREAMER_SIGNING_CERT")
        .output()
        .expect(".ci/signing-key runs");
    assert!(out.status.success(), "{}", text(&out));
    let paths: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(paths.len(), 2, "{}", text(&out));
    let cert = fs::read_to_string(&paths[1]).unwrap();
    assert!(cert.contains("BEGIN CERTIFICATE"), "{cert}");
    (paths[0].clone(), paths[1].clone())
}

/// A squashfs root file system with slot boot files (and enough bytes for a
/// bundle), made from `card`'s slot `slot` folder.
fn squashfs_of(card: &Card, slot: &str) -> PathBuf {
    let image = card.path().join(format!("rootfs-{slot}.squashfs"));
    let filler: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(card.root(slot).join("filler"), filler).unwrap();
    let out = Command::new("mksquashfs")
        .arg(card.root(slot))
        .arg(&image)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .output()
        .expect("mksquashfs runs (make deps installs squashfs-tools)");
    assert!(out.status.success(), "{}", text(&out));
    image
}

/// `.ci/bundle` on `rootfs`.
fn bundle(rootfs: &Path, compatible: &str, version: &str, key: &(PathBuf, PathBuf), out: &Path) {
    let run = Command::new(support::repo_root().join(".ci/bundle"))
        .arg(rootfs)
        .args([compatible, version])
        .arg(&key.0)
        .arg(&key.1)
        .arg(out)
        .output()
        .expect(".ci/bundle runs");
    assert!(run.status.success(), "{}", text(&run));
}

/// `rauc info` on `bundle`, its signature checked against `keyring`.
fn rauc_info(keyring: &Path, bundle: &Path) -> Output {
    rauc(&[
        "info",
        &format!("--keyring={}", keyring.display()),
        bundle.to_str().unwrap(),
    ])
}

fn rauc(args: &[&str]) -> Output {
    Command::new("rauc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("rauc runs (make deps installs Debian's rauc)")
}

/// The image's system.conf (board/raspberrypi/rauc/system.conf.in) as
/// post-build.sh fills it in, with this machine's paths in place of the
/// device's: the keyring, the handlers (this repository's), and files for
/// the slots' partitions.
fn system_conf(card: &Card, compatible: &str, cert: &Path, formats: Option<&str>) -> PathBuf {
    let template = fs::read_to_string(board().join("rauc/system.conf.in")).unwrap();
    let mut text = template
        .replace("@COMPATIBLE@", compatible)
        .replace("/etc/rauc/keyring.pem", cert.to_str().unwrap())
        .replace("/usr/libexec/streamer", scripts().to_str().unwrap())
        .replace(
            "/run/rauc.status",
            card.path().join("rauc.status").to_str().unwrap(),
        )
        .replace(
            "mountprefix=/run/rauc",
            &format!("mountprefix={}", card.path().join("mnt").display()),
        )
        .replace(
            "/dev/mmcblk0p2",
            card.path().join("slot-a.img").to_str().unwrap(),
        )
        .replace(
            "/dev/mmcblk0p3",
            card.path().join("slot-b.img").to_str().unwrap(),
        );
    assert!(!text.contains('@'), "{text}");
    if let Some(formats) = formats {
        assert!(text.contains("bundle-formats=-plain\n"));
        text = text.replace(
            "bundle-formats=-plain\n",
            &format!("bundle-formats={formats}\n"),
        );
    }
    let path = card.path().join("system.conf");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn rauc_accepts_our_bundles_and_system_conf_and_refuses_another_key() {
    let card = Card::fresh();
    let key = signing_key(&card.path().join("keys"));
    let other = signing_key(&card.path().join("other-keys"));
    let rootfs = squashfs_of(&card, "B");
    let raucb = card.path().join("update.raucb");
    bundle(&rootfs, "streamer-test", "3.1.4", &key, &raucb);

    let info = rauc_info(&key.1, &raucb);
    assert!(info.status.success(), "{}", text(&info));
    let shown = String::from_utf8_lossy(&info.stdout);
    assert!(shown.contains("'streamer-test'"), "{shown}");
    assert!(shown.contains("'3.1.4'"), "{shown}");
    assert!(shown.contains("verity"), "{shown}");
    assert!(shown.contains("NOT FOR RELEASE"), "{shown}");

    let refused = rauc_info(&other.1, &raucb);
    assert!(
        !refused.status.success(),
        "another key's keyring accepted it: {}",
        text(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("signature verification failed"),
        "{}",
        text(&refused)
    );

    // The image's system.conf as RAUC reads it, its keyring included.
    let conf = system_conf(&card, "streamer-test", &key.1, None);
    let info = rauc(&[
        &format!("--conf={}", conf.display()),
        "info",
        raucb.to_str().unwrap(),
    ]);
    assert!(info.status.success(), "{}", text(&info));
    let conf = system_conf(&card, "streamer-test", &other.1, None);
    let info = rauc(&[
        &format!("--conf={}", conf.display()),
        "info",
        raucb.to_str().unwrap(),
    ]);
    assert!(!info.status.success(), "{}", text(&info));
    // A broken one is refused (RAUC 1.15 names a misspelt key; 1.8 the missing one).
    let broken = fs::read_to_string(&conf)
        .unwrap()
        .replace("bootloader=custom", "bootloder=custom");
    fs::write(&conf, broken).unwrap();
    let info = rauc(&[
        &format!("--conf={}", conf.display()),
        "info",
        raucb.to_str().unwrap(),
    ]);
    assert!(!info.status.success(), "{}", text(&info));
    assert!(
        String::from_utf8_lossy(&info.stderr).contains("Failed to load system config"),
        "{}",
        text(&info)
    );
}

/// A `rauc service` on a private session bus (RAUC picks it with
/// DBUS_STARTER_BUS_TYPE=session), in a mount namespace where /proc/cmdline
/// says slot A is running (RAUC 1.8 reads only that), with the card's paths in
/// its environment, which RAUC passes on to our backend and handlers. Killed
/// with its bus on drop.
struct RaucService {
    service: std::process::Child,
    /// Dropped after the service is killed.
    bus: PrivateBus,
    log: PathBuf,
}

impl RaucService {
    fn start(card: &Card, conf: &Path) -> RaucService {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "this test runs RAUC's service as it runs on the camera, as root (a mount \
             namespace for /proc/cmdline, loop devices for the slots): run it as root, as CI does"
        );
        let bus = PrivateBus::start(card.path());
        let log = card.path().join("rauc-service.log");
        let script = format!(
            "mount --bind '{}' /proc/cmdline && exec rauc --conf='{}' service",
            card.path().join("cmdline").display(),
            conf.display()
        );
        let service = card
            .command(Path::new("unshare"))
            .args(["-m", "sh", "-c", &script])
            .envs(bus.env())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("unshare runs");
        let service = RaucService { service, bus, log };
        for _ in 0..100 {
            if service.client(&["status"]).status.success() {
                return service;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("rauc service did not come up:\n{}", service.log());
    }

    fn client(&self, args: &[&str]) -> Output {
        Command::new("rauc")
            .args(args)
            .envs(self.bus.env())
            .stdin(Stdio::null())
            .output()
            .expect("rauc runs")
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RaucService {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

#[test]
fn a_real_rauc_service_installs_through_our_backend_and_handlers() {
    let card = Card::fresh();
    let key = signing_key(&card.path().join("keys"));
    for slot in ["slot-a.img", "slot-b.img"] {
        fs::write(card.path().join(slot), vec![0u8; 1 << 20]).unwrap();
    }
    // This machine's kernel has no device mapper, which RAUC needs to mount a
    // verity bundle: here (only) the plain format stands in; the emulated boot
    // installs the image's own verity bundles.
    let conf = system_conf(&card, "streamer-test", &key.1, Some("plain verity"));
    let rootfs = squashfs_of(&card, "B");
    let content = card.path().join("plain");
    fs::create_dir_all(&content).unwrap();
    fs::copy(&rootfs, content.join("rootfs.img")).unwrap();
    let manifest = |compatible: &str| {
        format!("[update]\ncompatible={compatible}\nversion=2.7.1\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n")
    };
    let make = |compatible: &str, name: &str| {
        fs::write(content.join("manifest.raucm"), manifest(compatible)).unwrap();
        let path = card.path().join(name);
        let out = rauc(&[
            "bundle",
            &format!("--cert={}", key.1.display()),
            &format!("--key={}", key.0.display()),
            content.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        path
    };
    let good = make("streamer-test", "good.raucb");
    let foreign = make("streamer-otherboard", "foreign.raucb");
    let service = RaucService::start(&card, &conf);

    let status = service.client(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("Booted from: rootfs.0 (A)"), "{shown}");

    // Another board's bundle: refused before anything is written.
    let before = card.snapshot();
    let out = service.client(&["install", foreign.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        format!("{}{}", text(&out), service.log()).contains("ompatible"),
        "{}",
        text(&out)
    );
    assert_eq!(card.snapshot(), before);

    let out = service.client(&["install", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}\nservice:\n{}",
        text(&out),
        service.log()
    );
    // RAUC wrote slot B's partition, and our backend made it the trial.
    let written = fs::read(card.path().join("slot-b.img")).unwrap();
    assert_eq!(
        &written[..rootfs.metadata().unwrap().len() as usize],
        &fs::read(&rootfs).unwrap()[..]
    );
    assert_eq!(card.read("slot-b/Image"), "kernel of B");
    assert_eq!(card.prefix("config.txt"), "slot-a/");
    assert_eq!(card.prefix("tryboot.txt"), "slot-b/");
    assert_eq!(
        fs::read_to_string(card.reboot_param()).unwrap(),
        "0 tryboot\n"
    );
    let record = card.read("last-update.txt");
    assert!(record.contains("result=installed"), "{record}");
    assert!(record.contains("version=2.7.1"), "{record}");
    assert!(record.contains("slot=B"), "{record}");
    let status = service.client(&["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("Activated: rootfs.1 (B)"), "{shown}");
}

#[test]
fn make_bundle_signs_the_built_image_with_the_key_it_trusts() {
    let card = Card::fresh();
    let key = signing_key(&card.path().join("keys"));
    let other = signing_key(&card.path().join("other-keys"));
    // What `make image BOARD=rpi4` leaves behind, in miniature.
    let out = card.path().join("output-rpi4");
    fs::create_dir_all(out.join("images")).unwrap();
    fs::create_dir_all(out.join("target/usr/lib")).unwrap();
    fs::create_dir_all(out.join("target/etc/rauc")).unwrap();
    fs::copy(squashfs_of(&card, "B"), out.join("images/rootfs.squashfs")).unwrap();
    fs::write(
        out.join("target/usr/lib/os-release"),
        "NAME=Buildroot\nIMAGE_VERSION=v1.4.0-2-gabcdef0\n",
    )
    .unwrap();
    let make_bundle = |trusted: &Path| {
        fs::copy(trusted, out.join("target/etc/rauc/keyring.pem")).unwrap();
        Command::new(support::repo_root().join(".ci/board-bundle"))
            .arg("rpi4")
            .env("BOARD_OUTPUT", &out)
            .env("STREAMER_SIGNING_KEY", &key.0)
            .env("STREAMER_SIGNING_CERT", &key.1)
            .output()
            .expect(".ci/board-bundle runs")
    };
    let run = make_bundle(&key.1);
    assert!(run.status.success(), "{}", text(&run));
    let raucb = out.join("streamer-rpi4-v1.4.0-2-gabcdef0.raucb");
    let info = rauc_info(&key.1, &raucb);
    assert!(info.status.success(), "{}", text(&info));
    let shown = String::from_utf8_lossy(&info.stdout);
    assert!(shown.contains("'streamer-rpi4'"), "{shown}");
    assert!(shown.contains("'v1.4.0-2-gabcdef0'"), "{shown}");
    // An image that trusts another key would refuse it: no bundle.
    fs::remove_file(&raucb).unwrap();
    let run = make_bundle(&other.1);
    assert!(!run.status.success(), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("trusts another key"),
        "{}",
        text(&run)
    );
    assert!(!raucb.exists());
}
