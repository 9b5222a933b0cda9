// Start-up on a damaged or unusable data dir, with real node processes: a log damaged before intact
// records stops the node (exit 65) with an error naming the file, the offset and the way to recover,
// and --salvage-log 1 recovers every intact record; a well-framed record of the wrong shape or with a
// timestamp that is no HLC stops it the same way; a data dir that is a file is bad configuration (254).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrames } from '../wal.ts';
import { StoreApi, clusterSpecs, removeDataDirs, startNode, type NodeProcess, type NodeSpec } from '../testing.ts';

const procs: NodeProcess[] = [];
const closers: { close(): void }[] = [];
const specsToRemove: NodeSpec[] = [];
const paths: string[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
  removeDataDirs(specsToRemove.splice(0));
  for (const p of paths.splice(0)) rmSync(p, { recursive: true, force: true });
});

const main = new URL('../main.ts', import.meta.url).pathname;
/** Runs a node that is expected to stop at start; its exit code and output. */
function runToExit(dataDir: string, extra: string[] = []) {
  const r = spawnSync(process.execPath, [main, '--id', 'n1', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extra], { encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'faultline-startup-'));
  paths.push(d);
  return d;
}

describe('start-up', () => {
  it('stops on a log damaged before intact records (exit 65), and recovers every intact record with --salvage-log 1', async () => {
    const [spec] = await clusterSpecs({ size: 1 });
    specsToRemove.push(spec);
    const proc = await startNode(spec);
    const api = new StoreApi(spec.port);
    for (let i = 0; i < 502; i += 1) await api.put(`k${i}`, 'c', `v${i}`, `r${i}`);
    api.close();
    await proc.kill('SIGKILL');
    const log = join(spec.dataDir, readdirSync(spec.dataDir).find((f) => f.startsWith('log-'))!);
    const data = readFileSync(log);
    const { offsets } = decodeFrames(data);
    const at = offsets[250];
    data[at + 12] ^= 0x01;
    writeFileSync(log, data);
    const refused = runToExit(spec.dataDir);
    expect(refused.status).toBe(65);
    expect(refused.output).toContain(`refusing to start: ${log} is damaged at byte ${at} of ${data.length} (a frame whose CRC-32 does not match) after 250 intact records;`);
    expect(refused.output).toMatch(/intact records \(\d+ bytes\) follow from byte \d+, so this is not a torn tail left by a crash/);
    expect(refused.output).toContain('--salvage-log 1');
    expect(readFileSync(log)).toEqual(data);
    // Salvage: every record but the damaged one comes back.
    const salvaging = await startNode({ ...spec, extraArgs: ['--salvage-log', '1'] });
    procs.push(salvaging);
    const after = new StoreApi(spec.port);
    closers.push(after);
    expect((await after.scan()).length).toBe(501);
    expect(salvaging.output).toMatch(/salvaged .*log-00000001\.dat: replayed its \d+ intact records and dropped 1 damaged ranges or unusable records .* the original is kept as .*\.damaged-\d+/);
  });

  it.each([
    ['a record of the wrong shape', { t: 'c', e: 42, k: 'c', v: 'v', ts: '000000000000001:00000:n1', d: false, kd: 'lww' }, /field e is not a non-empty string/],
    ['a record whose ts is no HLC', { t: 'c', e: 'pinned', k: 'c', v: 'v', ts: 'garbage', d: false, kd: 'lww' }, /field ts "garbage" is not a canonical HLC/],
    ['a record of an unknown type', { t: 'x' }, /its type t "x" is none of "c", "s", "r", "inc"/],
  ])('stops on %s with a clear error naming the file and the offset (exit 65)', (_what, record, message) => {
    const dir = tempDir();
    const frames = [JSON.stringify({ t: 'inc', n: 1 }), JSON.stringify(record), JSON.stringify({ t: 'inc', n: 2 })];
    writeFileSync(join(dir, 'log-00000001.dat'), encodeFrames(frames));
    const at = 8 + Buffer.byteLength(frames[0]);
    const r = runToExit(dir);
    expect(r.status).toBe(65);
    expect(r.output).toContain(`${join(dir, 'log-00000001.dat')}: the record at byte ${at} (record 2 of the file) is well framed but unusable:`);
    expect(r.output).toMatch(message);
    expect(r.output).not.toMatch(/TypeError|\n\s+at /);
  });

  it('refuses a data dir that is a file with exit 254 and a clear message', () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    const r = runToExit(file);
    expect(r.status).toBe(254);
    expect(r.output).toContain(`faultline node: --data-dir ${file} is not a directory (a file is in the way); pass a directory this node may write (it is created if missing)`);
  });
});
