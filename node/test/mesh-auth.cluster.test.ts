// Mesh authentication against real node processes on loopback: a client that reaches the port but does
// not hold the cluster's secret cannot read the store through Repair nor inject writes, tombstones or
// counter shares, whatever sender it claims; a member may only relay its own writes; a node with peers
// but no secret refuses to start; the secret never shows up in a node's output.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { MeshPeer, StoreApi, clusterSpecs, newMeshSecret, startNode, waitForMesh, waitUntil, TestResources } from '../testing.ts';

const resources = new TestResources();
const { procs, closers, specs: specsToRemove } = resources;
afterEach(() => resources.release());

/** n1 (and n2 when `both`) running; n3 is a member that never starts, so a test can speak for it. */
async function cluster(both = false) {
  const specs = await clusterSpecs({ size: 3, antiEntropyMs: 100 });
  specsToRemove.push(...specs);
  const running = both ? specs.slice(0, 2) : specs.slice(0, 1);
  for (const spec of running) procs.push(await startNode(spec));
  const apis = running.map((s) => new StoreApi(s.port));
  closers.push(...apis);
  const peer = (sender: string, secret: string | undefined) => {
    const p = new MeshPeer(specs[0].port, sender, secret);
    closers.push(p);
    return p;
  };
  return { specs, apis, peer, secret: specs[0].meshSecret! };
}

const write = (origin: string, entity: string, extra: Record<string, unknown> = {}) => ({
  origin,
  seq: 1,
  entity,
  component: 'c',
  value: 'injected',
  kind: 'lww',
  ts: { wallMs: Date.now(), logical: 0, node: origin },
  ...extra,
});

describe('mesh authentication', () => {
  it('refuses every mesh call without the secret, whatever sender it claims, and applies nothing', async () => {
    const { apis, peer, secret } = await cluster();
    await apis[0].put('private', 'c', 'secret-value');
    for (const outsider of [peer('n2', undefined), peer('n2', newMeshSecret())]) {
      await expect(outsider.relay([[write('n2', 'forged')]])).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      await expect(outsider.relay([[{ ...write('n2', 'forged'), deleted: true, value: '' }]])).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      await expect(
        outsider.relay([[{ origin: 'n2', seq: 2, entity: 'forged', counter: 'n', share: { origin: 'n2', p: 1000, n: 0 } }]]),
      ).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      await expect(outsider.digest()).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      // Repair would answer with the whole store (every bucket) and merge the pushed writes.
      const everyBucket = Array.from({ length: 64 }, (_, b) => b);
      await expect(outsider.repair({ buckets: everyBucket, writes: [write('n2', 'forged')] })).rejects.toMatchObject({
        code: status.UNAUTHENTICATED,
        details: expect.stringMatching(/FAULTLINE_MESH_SECRET/),
      });
    }
    expect((await apis[0].get('forged')).found).toBe(false);
    expect((await apis[0].stats()).meshRejected).toBeGreaterThanOrEqual(10);
    // A member with the secret is let in.
    const member = peer('n2', secret);
    expect((await member.digest()).hashes).toHaveLength(64);
    expect((await member.repair({ buckets: Array.from({ length: 64 }, (_, b) => b) })).writes.map((w) => w.entity)).toEqual(['private']);
  });

  it('lets a member relay only its own writes, tombstones and counter shares', async () => {
    const { apis, peer, secret } = await cluster();
    const n3 = peer('n3', secret);
    const cases = [
      [write('n2', 'as-n2')], // another node's write
      [write('n3', 'ts-of-n2', { ts: { wallMs: Date.now(), logical: 0, node: 'n2' } })], // its own write with another node's timestamp
      [{ ...write('n2', 'tomb'), deleted: true, value: '' }],
      [{ origin: 'n3', seq: 3, entity: 'count', counter: 'n', share: { origin: 'n1', p: 1000, n: 0 } }], // a share of n1
    ];
    for (const batch of cases) await expect(n3.relay([batch])).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    // The batch must name the authenticated sender.
    await expect(n3.relay([[write('n2', 'named')]], 'n2')).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    for (const entity of ['as-n2', 'ts-of-n2', 'tomb', 'count', 'named']) expect((await apis[0].get(entity)).found).toBe(false);
    // Its own writes and shares are applied.
    await n3.relay([[write('n3', 'own'), { origin: 'n3', seq: 2, entity: 'own', counter: 'n', share: { origin: 'n3', p: 5, n: 0 } }]]);
    expect(await waitUntil(async () => (await apis[0].get('own')).entity?.counters[0]?.value === 5, 5000, 20)).toBe(true);
    // Repair carries other members' writes (whole states), but never those of a node outside the cluster.
    await expect(n3.repair({ writes: [{ ...write('n3', 'alien'), ts: { wallMs: Date.now(), logical: 0, node: 'n9' } }] })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
    });
    await n3.repair({ writes: [write('n3', 'of-n2', { ts: { wallMs: Date.now(), logical: 0, node: 'n2' } })] });
    expect(await waitUntil(async () => (await apis[0].get('of-n2')).found, 5000, 20)).toBe(true);
  });

  it('still replicates between nodes that share the secret', async () => {
    const { specs, apis } = await cluster(true);
    await waitForMesh(specs.slice(0, 2).map((s) => ({ ...s, peers: Object.fromEntries(Object.entries(s.peers).filter(([id]) => id !== 'n3')) })));
    await apis[0].put('shared', 'c', 'v1');
    expect(await waitUntil(async () => (await apis[1].get('shared')).found, 10_000, 20)).toBe(true);
  });

  it('refuses to start with peers but no secret (exit 254), and never prints the secret', async () => {
    const main = new URL('../main.ts', import.meta.url).pathname;
    const env = { ...process.env };
    delete env.FAULTLINE_MESH_SECRET;
    const run = (args: string[], extraEnv: Record<string, string> = {}) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 10_000 });
    const none = run(['--id', 'n1', '--data-dir', '/tmp/faultline-no-secret', '--peers', 'n2=127.0.0.1:1']);
    expect(none.status).toBe(254);
    expect(none.stderr).toMatch(/FAULTLINE_MESH_SECRET is not set: a node with `--peers` needs the cluster's mesh secret/);
    const short = run(['--id', 'n1', '--data-dir', '/tmp/faultline-no-secret', '--peers', 'n2=127.0.0.1:1'], { FAULTLINE_MESH_SECRET: 'short' });
    expect(short.status).toBe(254);
    expect(short.stderr).toMatch(/at least 16 characters, got 5/);
    const flag = run(['--id', 'n1', '--data-dir', '/tmp/faultline-no-secret', '--mesh-secret', 'x'.repeat(32)]);
    expect(flag.status).toBe(254);
    expect(flag.stderr).toMatch(/`--mesh-secret` is not a flag: pass it in FAULTLINE_MESH_SECRET/);

    const { specs, apis, peer } = await cluster();
    await peer('n2', undefined).digest().catch(() => undefined);
    await apis[0].put('x', 'c', 'v');
    expect(procs[0].output).toMatch(/listening on/);
    expect(procs[0].output).not.toContain(specs[0].meshSecret!);
  });
});
