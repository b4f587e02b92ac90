# shellcheck shell=sh
# The A/B boot slots as the Raspberry Pi firmware sees them: a library sourced
# by the RAUC bootloader backend (rauc-backend), the post-install handler,
# the trial-boot check (update-check) and, on the build machine, the SD card's
# layout (board/raspberrypi/sdcard.sh). docs/updates.md explains the design.
#
# The boot partition (FAT) holds the shared firmware and, per slot, a folder
# slot-a/ or slot-b/ with that slot's kernel, device trees, overlays and
# cmdline.txt. config.txt's `os_prefix=slot-X/` line names the committed slot
# (the firmware boots it every time); tryboot.txt is config.txt with the slot
# on trial, read instead of config.txt only on the one boot after
# `reboot "0 tryboot"` (the firmware clears the flag before it starts, so any
# crash, reset or power cut during the trial boots config.txt again). With no
# trial pending, tryboot.txt names the committed slot too.
#
# Everything is a plain file operation on BOOT_DIR, so the same code runs on
# the device and against a folder in the tests. Paths, each overridable for
# tests:
#   BOOT_DIR      the boot partition (/boot), mounted read-only; made writable
#                 only while a write runs (boot_rw_begin/boot_rw_end)
#   RAUC_CONF     RAUC's system.conf (/etc/rauc/system.conf): the slots' devices
#   REBOOT_PARAM  systemd's reboot argument (/run/systemd/reboot-param): "0
#                 tryboot" there makes the next reboot, however it is asked
#                 for, the trial boot
#   PROC_CMDLINE  the kernel command line (/proc/cmdline): rauc.slot=A|B

BOOT_DIR=${BOOT_DIR:-/boot}
RAUC_CONF=${RAUC_CONF:-/etc/rauc/system.conf}
REBOOT_PARAM=${REBOOT_PARAM:-/run/systemd/reboot-param}
PROC_CMDLINE=${PROC_CMDLINE:-/proc/cmdline}

# Prints an error on stderr (the journal, through RAUC or systemd) and fails.
slots_die() {
    echo "boot-slots: $*" >&2
    exit 1
}

# The folder of slot $1 (A or B), relative to BOOT_DIR.
slot_dir() {
    case $1 in
        A) echo slot-a ;;
        B) echo slot-b ;;
        *) slots_die "no slot named '$1' (A or B)" ;;
    esac
}

# The other slot of $1.
other_slot() {
    case $1 in
        A) echo B ;;
        B) echo A ;;
        *) slots_die "no slot named '$1' (A or B)" ;;
    esac
}

# The slot named by the os_prefix line of firmware file $1 (config.txt or
# tryboot.txt): A or B, or an error when the file or the line is missing.
slot_of() {
    [ -f "$BOOT_DIR/$1" ] || slots_die "$BOOT_DIR/$1 is missing"
    prefix=$(sed -n 's/^[[:space:]]*os_prefix[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$BOOT_DIR/$1" | tail -n 1)
    case $prefix in
        slot-a/) echo A ;;
        slot-b/) echo B ;;
        "") slots_die "$BOOT_DIR/$1 has no os_prefix line" ;;
        *) slots_die "$BOOT_DIR/$1: os_prefix=$prefix is not slot-a/ or slot-b/" ;;
    esac
}

# The committed slot: the one config.txt boots.
committed_slot() {
    slot_of config.txt
}

# The slot the next "0 tryboot" reboot boots (the committed one when no trial
# is pending).
trial_slot() {
    if [ -f "$BOOT_DIR/tryboot.txt" ]; then
        slot_of tryboot.txt
    else
        committed_slot
    fi
}

# The slot running now, from rauc.slot= on the kernel command line.
booted_slot() {
    slot=$(tr ' ' '\n' < "$PROC_CMDLINE" | sed -n 's/^rauc\.slot=//p' | tail -n 1)
    case $slot in
        A | B) echo "$slot" ;;
        *) slots_die "no rauc.slot=A|B on the kernel command line ($PROC_CMDLINE)" ;;
    esac
}

# The block device of slot $1, from RAUC's system.conf (the section whose
# bootname is $1).
slot_device() {
    device=$(awk -v want="$1" '
        /^\[/ { section = $0; device = ""; bootname = "" }
        section ~ /^\[slot\.rootfs\./ && /^device=/ { device = substr($0, 8) }
        section ~ /^\[slot\.rootfs\./ && /^bootname=/ { bootname = substr($0, 10) }
        device != "" && bootname == want { print device; exit }
    ' "$RAUC_CONF")
    [ -n "$device" ] || slots_die "no slot with bootname=$1 in $RAUC_CONF"
    echo "$device"
}

# Writes file $1 (relative to BOOT_DIR) from standard input, all or nothing as
# far as FAT allows: a temporary file, flushed, renamed over the old one,
# flushed again.
write_boot_file() {
    tmp="$BOOT_DIR/$1.new"
    cat > "$tmp" || slots_die "cannot write $tmp"
    sync "$tmp" 2> /dev/null || sync
    mv -f "$tmp" "$BOOT_DIR/$1" || slots_die "cannot replace $BOOT_DIR/$1"
    sync
}

# Points firmware file $2 (config.txt or tryboot.txt) at slot $3, starting
# from the text of $1 (config.txt: so that tryboot.txt is always config.txt
# with another slot, including the owner's own edits of config.txt).
point_at() {
    dir=$(slot_dir "$3")
    [ -f "$BOOT_DIR/$1" ] || slots_die "$BOOT_DIR/$1 is missing"
    grep -q '^[[:space:]]*os_prefix[[:space:]]*=' "$BOOT_DIR/$1" ||
        slots_die "$BOOT_DIR/$1 has no os_prefix line to change"
    sed "s|^\([[:space:]]*os_prefix[[:space:]]*=[[:space:]]*\)[^[:space:]#]*|\1$dir/|" "$BOOT_DIR/$1" |
        write_boot_file "$2"
}

# Whether BOOT_DIR is a mount point of its own (on the device it is; in the
# tests it is a plain folder, never remounted).
boot_is_mounted() {
    awk -v dir="$BOOT_DIR" '$2 == dir { found = 1 } END { exit !found }' /proc/self/mounts
}

# Makes BOOT_DIR writable for the writes that follow (a lock keeps two writers
# apart); boot_rw_end makes it read-only again. Every write to the boot
# partition happens between the two, and only during an update.
boot_rw_begin() {
    exec 9> "${SLOTS_LOCK:-/run/streamer-boot-slots.lock}"
    flock 9 || slots_die "cannot lock the boot partition"
    if boot_is_mounted; then
        mount -o remount,rw "$BOOT_DIR" || slots_die "cannot make $BOOT_DIR writable"
        boot_remounted=yes
    fi
}

boot_rw_end() {
    sync
    if [ "${boot_remounted:-}" = yes ]; then
        mount -o remount,ro "$BOOT_DIR" || echo "boot-slots: $BOOT_DIR stays writable: remount failed" >&2
        boot_remounted=
    fi
    exec 9>&-
}

# Writes cmdline.txt for slot $2 into folder $3 from the template $1 (the
# image's cmdline.txt, which names slot A: root=/dev/mmcblk0p2 rauc.slot=A):
# slot B's root is partition 3.
slot_cmdline() {
    case $2 in
        A) sed 's|\(root=/dev/mmcblk0p\)[0-9]*|\12|; s|rauc\.slot=[AB]|rauc.slot=A|' "$1" ;;
        B) sed 's|\(root=/dev/mmcblk0p\)[0-9]*|\13|; s|rauc\.slot=[AB]|rauc.slot=B|' "$1" ;;
        *) slots_die "no slot named '$2' (A or B)" ;;
    esac > "$3/cmdline.txt.new" || slots_die "cannot write $3/cmdline.txt"
    grep -q "rauc\.slot=$2" "$3/cmdline.txt.new" || slots_die "$1 has no rauc.slot= to set"
    mv -f "$3/cmdline.txt.new" "$3/cmdline.txt"
}

# Fills slot folder $3 (absolute) for slot $2 from a slot's boot files in $1:
# the kernel (Image or zImage), an initrd.img when there is one (the emulated
# boot's kernel needs its initramfs; config.txt's `initramfs` line would name
# it), the device trees, overlays/ and the cmdline.txt template. The folder is built beside and then swapped in, so a
# half-copied folder is never the slot's; its overlays/README makes the
# firmware load overlays from the slot too (os_prefix rules).
install_boot_files() {
    src=$1
    slot=$2
    dest=$3
    [ -e "$src/Image" ] || [ -e "$src/zImage" ] || slots_die "no kernel (Image or zImage) in $src"
    [ -f "$src/cmdline.txt" ] || slots_die "no cmdline.txt in $src"
    ls "$src"/*.dtb > /dev/null 2>&1 || slots_die "no device trees (*.dtb) in $src"
    rm -rf "$dest.new" "$dest.old"
    mkdir -p "$dest.new" || slots_die "cannot make $dest.new"
    for file in "$src"/Image "$src"/zImage "$src"/initrd.img "$src"/*.dtb; do
        [ -e "$file" ] || continue
        cp "$file" "$dest.new/" || slots_die "cannot copy $file"
    done
    if [ -d "$src/overlays" ]; then
        cp -r "$src/overlays" "$dest.new/" || slots_die "cannot copy $src/overlays"
    fi
    mkdir -p "$dest.new/overlays"
    [ -e "$dest.new/overlays/README" ] ||
        echo "Overlays of this slot (the firmware's os_prefix uses them when this file exists)." > "$dest.new/overlays/README"
    slot_cmdline "$src/cmdline.txt" "$slot" "$dest.new"
    sync
    if [ -e "$dest" ]; then
        mv "$dest" "$dest.old" || slots_die "cannot move $dest aside"
    fi
    mv "$dest.new" "$dest" || slots_die "cannot put $dest in place"
    rm -rf "$dest.old"
    sync
}

# Writes the durable record of the last update, /boot/last-update.txt, read by
# the streamer (GET /api/update, /api/status): result, version, slot, time and
# a message, from $1..$4. Call between boot_rw_begin and boot_rw_end.
write_last_update() {
    {
        echo "# The last update of this camera, written by the update machinery"
        echo "# (docs/updates.md). Do not edit."
        echo "result=$1"
        echo "version=$2"
        echo "slot=$3"
        echo "time=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "message=$4"
    } | write_boot_file last-update.txt
}

# A key of the last update's record (empty when there is none).
last_update() {
    [ -f "$BOOT_DIR/last-update.txt" ] || return 0
    sed -n "s/^$1=//p" "$BOOT_DIR/last-update.txt" | tail -n 1
}
