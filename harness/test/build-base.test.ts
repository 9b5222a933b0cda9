// harness/docker/build-base.sh must never tar or delete into a file system debootstrap left mounted
// under its root (proc, sys, dev/pts): the mount helpers it sources (rootfs.sh) run here for real
// against tmpfs mounts when the test may mount, and against a recorded mountinfo otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const dockerDir = fileURLToPath(new URL('../docker/', import.meta.url));
const helpers = path.join(dockerDir, 'rootfs.sh');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    spawnSync('bash', ['-c', `source "${helpers}"; unmount_under "$1"`, '_', d]);
    rmSync(d, { recursive: true, force: true });
  }
});

function bash(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', ['-c', `source "${helpers}"; ${script}`, '_', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const d = mkdtempSync(path.join(tmpdir(), 'faultline-mount-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', 'none', d]).status === 0;
  if (ok) spawnSync('umount', [d]);
  rmSync(d, { recursive: true, force: true });
  return ok;
})();

describe('rootfs.sh', () => {
  it('lists the mounts under a root, deepest first, and nothing beside it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faultline-mountinfo-'));
    dirs.push(dir);
    const info = path.join(dir, 'mountinfo');
    writeFileSync(
      info,
      [
        '22 1 0:21 / / rw - ext4 /dev/sda1 rw',
        '45 22 0:39 / /cache/rootfs.x/rootfs/proc rw - proc proc rw',
        '46 22 0:40 / /cache/rootfs.x/rootfs/dev/pts rw - devpts devpts rw',
        '47 22 0:41 / /cache/rootfs.x/rootfs2/proc rw - proc proc rw',
        '48 22 0:42 / /cache/rootfs.x/rootfs/with\\040space rw - tmpfs none rw',
      ].join('\n') + '\n',
    );
    const r = bash('mounts_under "$1"', ['/cache/rootfs.x/rootfs'], { FAULTLINE_MOUNTINFO: info });
    expect(r.stdout.trim().split('\n')).toEqual(['/cache/rootfs.x/rootfs/with space', '/cache/rootfs.x/rootfs/dev/pts', '/cache/rootfs.x/rootfs/proc']);
    // What cannot be unmounted is named, and the caller is told to stop.
    const stuck = bash('unmount_under "$1"', ['/cache/rootfs.x/rootfs'], { FAULTLINE_MOUNTINFO: info });
    expect(stuck.status).toBe(1);
    expect(stuck.stderr).toContain('still mounted under /cache/rootfs.x/rootfs: /cache/rootfs.x/rootfs/with space /cache/rootfs.x/rootfs/dev/pts /cache/rootfs.x/rootfs/proc');
  });

  it.runIf(canMount)('unmounts what is left mounted under a root, nested mounts first', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faultline-rootfs-'));
    dirs.push(dir);
    const root = path.join(dir, 'rootfs');
    mkdirSync(path.join(root, 'proc'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'none', path.join(root, 'proc')]);
    mkdirSync(path.join(root, 'proc', 'inner'));
    execFileSync('mount', ['-t', 'tmpfs', 'none', path.join(root, 'proc', 'inner')]);
    writeFileSync(path.join(root, 'proc', 'inner', 'host-file'), 'must not be tarred');
    expect(bash('mounts_under "$1"', [root]).stdout.trim().split('\n')).toEqual([path.join(root, 'proc', 'inner'), path.join(root, 'proc')]);
    expect(bash('unmount_under "$1"', [root]).status).toBe(0);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
    expect(existsSync(path.join(root, 'proc', 'inner'))).toBe(false);
  });
});

describe('build-base.sh', () => {
  const script = readFileSync(path.join(dockerDir, 'build-base.sh'), 'utf8');

  it('unmounts under the debootstrap root and refuses to go on while anything is mounted there', () => {
    expect(script).toMatch(/source "\$repo\/harness\/docker\/rootfs\.sh"/);
    const debootstrap = script.indexOf('debootstrap --variant=minbase');
    const check = script.indexOf('unmount_under "$work/rootfs" || die');
    const tar = script.indexOf('tar --numeric-owner --one-file-system -C "$work/rootfs"');
    expect(debootstrap).toBeGreaterThan(0);
    expect(check).toBeGreaterThan(debootstrap);
    expect(tar).toBeGreaterThan(check);
  });

  it('removes work folders only through remove_work (unmount first, --one-file-system), never with a bare rm -rf', () => {
    expect(script).not.toMatch(/rm -rf "\$work"(\s|$)/);
    expect(script).toMatch(/rm -rf --one-file-system -- "\$dir"/);
    expect(script.match(/trap 'remove_work "\$work"' EXIT/g)).toHaveLength(2);
    expect(spawnSync('bash', ['-n', path.join(dockerDir, 'build-base.sh')]).status).toBe(0);
  });
});
