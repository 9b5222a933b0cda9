// The HLC's offset rule and borrowing against real node processes on loopback: one mesh message stamped
// far in the future must not stop writes (now, after a restart, or from a poisoned log record), and a
// peer 120 s ahead (the clock nemesis's largest skew) must not make the node refuse writes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LOGICAL, MAX_WALL_MS } from '../hlc.ts';
import { encodeFrames } from '../wal.ts';
import { MeshPeer, StoreApi, clusterSpecs, removeDataDirs, startNode, waitUntil, type NodeProcess, type NodeSpec } from '../testing.ts';

const procs: NodeProcess[] = [];
const closers: { close(): void }[] = [];
const specsToRemove: NodeSpec[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
  removeDataDirs(specsToRemove.splice(0));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** n1 running, n2 a member that this test speaks for. */
async function single(spec?: Partial<NodeSpec>) {
  const [n1] = await clusterSpecs({ size: 2 });
  specsToRemove.push(n1);
  const s = { ...n1, ...spec };
  const proc = await startNode(s);
  procs.push(proc);
  const api = new StoreApi(s.port);
  const n2 = new MeshPeer(s.port, 'n2', s.meshSecret);
  closers.push(api, n2);
  return { spec: s, proc, api, n2 };
}

const relayed = (entity: string, wallMs: number, logical = 0) => ({ origin: 'n2', seq: 1, entity, component: 'c', value: 'from-n2', kind: 'lww', ts: { wallMs, logical, node: 'n2' } });

describe('the offset rule', () => {
  it('rejects a relayed write stamped far in the future: writes go on, also after a restart', async () => {
    const { spec, proc, api, n2 } = await single();
    await n2.relay([[relayed('poison', MAX_WALL_MS, MAX_LOGICAL)]]);
    await api.put('after', 'c', 'v1');
    await api.delete('after', 'c');
    const stats = await api.stats();
    expect(stats.timestampsRejected).toBe(1);
    expect((await api.get('poison')).found).toBe(false);
    expect(proc.output).toMatch(/rejected a relayed write of "poison"\/"c" from "n2": its HLC "999999999999999:65535:n2" is \d+ ms ahead of local wall \d+, beyond --max-offset-ms 600000/);
    // The write was rejected, not logged, so a restart does not bring it back either.
    await proc.kill('SIGKILL');
    const again = await startNode(spec);
    procs.push(again);
    const api2 = new StoreApi(spec.port);
    closers.push(api2);
    const put = await api2.put('after', 'c', 'v2');
    expect(Number(put.ts.slice(0, 15))).toBeLessThan(Date.now() + 60_000);
  });

  it('keeps a poisoned log record from pinning the clock or its key after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'faultline-poisoned-'));
    dirs.push(dataDir);
    // A log as an earlier version could have written it: the poisoned relay was accepted and logged.
    const poisoned = { t: 'c', e: 'poison', k: 'c', v: 'stuck', ts: `${MAX_WALL_MS}:${MAX_LOGICAL}:n2`, d: false, kd: 'lww' };
    const fine = { t: 'c', e: 'fine', k: 'c', v: 'kept', ts: `${String(Date.now() - 1000).padStart(15, '0')}:00000:n1`, d: false, kd: 'lww' };
    writeFileSync(join(dataDir, 'log-00000001.dat'), encodeFrames([JSON.stringify({ t: 'inc', n: 1 }), JSON.stringify(poisoned), JSON.stringify(fine)]));
    const { proc, api } = await single({ dataDir });
    expect(proc.output).toMatch(/replay: 1 logged writes carry a timestamp more than --max-offset-ms 600000 ahead of the wall clock \(first: "poison"\/"c" at "999999999999999:65535:n2"\)/);
    const put = await api.put('poison', 'c', 'new');
    expect(put.value).toBe('new');
    expect(Number(put.ts.slice(0, 15))).toBeLessThan(Date.now() + 60_000);
    expect((await api.get('fine')).entity?.components[0]?.value).toBe('kept');
    expect((await api.stats()).timestampsRejected).toBe(1);
  });

  it('admits a peer 120 s ahead, orders later writes after it, and never refuses a write meanwhile', async () => {
    const { api, n2 } = await single();
    const ahead = Date.now() + 120_000;
    await n2.relay([[relayed('skewed', ahead)]]);
    expect(await waitUntil(async () => (await api.get('skewed')).found, 5000, 5)).toBe(true);
    // More than 65,535 writes within the 120 s the HLC runs ahead of the wall clock.
    const total = 70_000;
    let refused = 0;
    let last = '';
    for (let done = 0; done < total; done += 500) {
      const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => api.put(`k${(done + i) % 100}`, 'c', String(done + i)).catch(() => undefined)));
      refused += replies.filter((r) => r === undefined).length;
      last = replies.reduce((m, r) => (r && r.ts > m ? r.ts : m), last);
    }
    expect(refused).toBe(0);
    const put = await api.put('skewed', 'c', 'after');
    expect(put.value).toBe('after');
    expect(put.ts > `${String(ahead).padStart(15, '0')}:00000:n2`).toBe(true);
    expect(put.ts > last).toBe(true);
    expect((await api.stats()).timestampsRejected).toBe(0);
  });
});
