// A real `rauc service` (Debian's RAUC) for the update page's browser test, as
// app/tests/update.rs sets it up: a private D-Bus session bus on a unix socket in
// a folder of its own (the streamer and RAUC find it through
// DBUS_STARTER_BUS_TYPE=session and DBUS_SESSION_BUS_ADDRESS), a system.conf
// whose two raw slots are files, a keyring and bundles made here with openssl and
// `rauc bundle`, and a custom bootloader backend script that records its calls.
//
// RAUC mounts a bundle through a loop device: it needs real root (no user
// namespace: loopback-only.sh keeps root real) and /dev/loop-control. The bundles
// are `format=plain`: a verity bundle needs the device mapper.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Why RAUC cannot run here, or null when it can. */
export function raucMissing() {
  if (process.getuid?.() !== 0) return 'RAUC mounts bundles through loop devices: needs real root';
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  try {
    // The initial user namespace maps all uids to themselves; in another one
    // (unshare --map-root-user, even as root: "0 0 1") loop devices cannot be set up.
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    if (map.join(' ') !== '0 0 4294967295') return 'in a user namespace: RAUC cannot mount bundles (loopback-only.sh keeps real root real)';
  } catch {
    // No /proc: let RAUC say.
  }
  for (const program of ['rauc', 'dbus-daemon', 'openssl']) {
    if (spawnSync(program, ['--version'], { stdio: 'ignore' }).error) return `no ${program}`;
  }
  return null;
}

/** Runs `program` with `args`; throws with its output when it fails. */
function run(program, args) {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(`${program} ${args.join(' ')} failed: ${result.error ?? ''}${result.stderr}`);
  }
}

/** Makes a signing key and certificate `dir/name.key`, `dir/name.pem`. */
export function keyPair(dir, name) {
  run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', path.join(dir, `${name}.key`),
    '-out', path.join(dir, `${name}.pem`),
    '-subj', `/CN=streamer ${name} test key`,
  ]);
}

/** A plain bundle of `image` (version `version`) signed by `key`, at `dir/out`. */
export function bundle(dir, key, image, out, version = 'test-2') {
  const content = path.join(dir, `${out}.content`);
  mkdirSync(content, { recursive: true });
  writeFileSync(path.join(content, 'rootfs.img'), image);
  writeFileSync(
    path.join(content, 'manifest.raucm'),
    `[update]\ncompatible=streamer-test\nversion=${version}\n\n[bundle]\nformat=plain\n\n` +
      '[image.rootfs]\nfilename=rootfs.img\n',
  );
  const file = path.join(dir, out);
  run('rauc', ['bundle', `--cert=${path.join(dir, `${key}.pem`)}`, `--key=${path.join(dir, `${key}.key`)}`, content, file]);
  return file;
}

/**
 * Starts a session bus and `rauc service` in `dir` (slots `slotA.img`, `slotB.img`
 * of 2 MiB, booted from A, keyring `good.pem`; the backend writes its calls to
 * `boot/calls`). Returns `{env, log(), reboot(slot), stop()}`: `env` points the streamer at the bus.
 */
export async function startRauc(dir) {
  keyPair(dir, 'good');
  for (const slot of ['slotA.img', 'slotB.img']) writeFileSync(path.join(dir, slot), Buffer.alloc(2 * 1024 * 1024));
  const boot = path.join(dir, 'boot');
  mkdirSync(boot, { recursive: true });
  const backend = path.join(dir, 'backend.sh');
  writeFileSync(
    backend,
    `#!/bin/sh\nS=${boot}\necho "$@" >> $S/calls\ncase "$1" in\n` +
      'get-primary) cat $S/primary 2>/dev/null || echo A ;;\n' +
      'set-primary) echo "$2" > $S/primary ;;\n' +
      'get-state) cat $S/state.$2 2>/dev/null || echo good ;;\n' +
      'set-state) echo "$3" > $S/state.$2 ;;\n' +
      'get-current) echo A ;;\n*) exit 1 ;;\nesac\n',
  );
  chmodSync(backend, 0o755);
  mkdirSync(path.join(dir, 'mnt'), { recursive: true });
  writeFileSync(
    path.join(dir, 'system.conf'),
    `[system]\ncompatible=streamer-test\nbootloader=custom\nmountprefix=${dir}/mnt\n` +
      `statusfile=${dir}/status.raucs\n\n[keyring]\npath=${dir}/good.pem\n\n` +
      `[handlers]\nbootloader-custom-backend=${backend}\n\n` +
      `[slot.rootfs.0]\ndevice=${dir}/slotA.img\ntype=raw\nbootname=A\n\n` +
      `[slot.rootfs.1]\ndevice=${dir}/slotB.img\ntype=raw\nbootname=B\n`,
  );

  const bus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1', `--address=unix:path=${dir}/bus`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const address = await new Promise((resolve, reject) => {
    let text = '';
    bus.once('error', reject);
    bus.once('exit', (code) => reject(new Error(`dbus-daemon exited (${code}) before saying its address`)));
    bus.stdout.on('data', (chunk) => {
      text += chunk;
      const newline = text.indexOf('\n');
      if (newline >= 0) resolve(text.slice(0, newline).trim());
    });
  });
  if (!address.startsWith('unix:')) throw new Error(`dbus-daemon said ${JSON.stringify(address)}`);
  const env = { DBUS_STARTER_BUS_TYPE: 'session', DBUS_SESSION_BUS_ADDRESS: address };
  const logFile = path.join(dir, 'rauc.log');
  const logStream = createWriteStream(logFile);
  await new Promise((resolve) => logStream.once('open', resolve));
  /** `rauc service`, as booted from `slot`. */
  const serve = (slot) =>
    spawn('rauc', ['service', `--conf=${dir}/system.conf`, `--override-boot-slot=${slot}`], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', logStream],
    });
  let service = serve('A');

  /** Kills `child` and waits until it is gone. */
  const end = (child) =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  return {
    env,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    /** Restarts `rauc service` as booted from `slot` (the device came back from a restart). */
    async reboot(slot) {
      await end(service);
      service = serve(slot);
    },
    async stop() {
      await end(service);
      await end(bus);
      logStream.end();
    },
  };
}
