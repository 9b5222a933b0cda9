// Relay identity against real node processes on loopback: a node that lost its log still gets its new
// writes relayed (its sequence numbers start again, its relay stream is new), and no member can push
// another node's dedupe window by forging sequence numbers under its origin.
import { mkdirSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { MeshPeer, StoreApi, clusterSpecs, startNode, waitForMesh, waitUntil, type NodeSpec, TestResources } from '../testing.ts';

const resources = new TestResources();
const { procs, closers, specs: specsToRemove } = resources;
afterEach(() => resources.release());

async function start(spec: NodeSpec): Promise<StoreApi> {
  procs.push(await startNode(spec));
  const api = new StoreApi(spec.port);
  closers.push(api);
  return api;
}

const has = (api: StoreApi, ids: string[]) => async () => (await Promise.all(ids.map((id) => api.get(id)))).every((g) => g.found);

describe('relay identity', () => {
  it('relays the writes of a node that lost its log (its sequences start over)', async () => {
    // Anti-entropy effectively off: only relays can carry the writes.
    const specs = await clusterSpecs({ size: 2, antiEntropyMs: 600_000 });
    specsToRemove.push(...specs);
    const n1 = await start(specs[0]);
    const n2 = await start(specs[1]);
    await waitForMesh(specs);
    const first = Array.from({ length: 5 }, (_, i) => `old-${i}`);
    for (const id of first) await n1.put(id, 'c', 'v');
    expect(await waitUntil(has(n2, first), 5000, 20)).toBe(true);
    // n1 loses its disk: killed, data dir emptied, started again (incarnation 1 again).
    await procs[0].kill('SIGKILL');
    rmSync(specs[0].dataDir, { recursive: true, force: true });
    mkdirSync(specs[0].dataDir);
    const again = await start(specs[0]);
    await waitForMesh(specs);
    const fresh = Array.from({ length: 5 }, (_, i) => `new-${i}`);
    for (const id of fresh) await again.put(id, 'c', 'v');
    expect(await waitUntil(has(n2, fresh), 5000, 20)).toBe(true);
  });

  it('keeps a member from poisoning another origin\'s dedupe window with forged sequence numbers', async () => {
    const specs = await clusterSpecs({ size: 3, antiEntropyMs: 600_000 });
    specsToRemove.push(...specs);
    const n1 = await start(specs[0]);
    const n2 = await start(specs[1]);
    await waitForMesh(specs.slice(0, 2).map((s) => ({ ...s, peers: Object.fromEntries(Object.entries(s.peers).filter(([id]) => id !== 'n3')) })));
    // n3 (a member holding the secret, spoken for by this test) forges 200,000 sequence numbers of n2.
    const n3 = new MeshPeer(specs[0].port, 'n3', specs[0].meshSecret);
    closers.push(n3);
    const forged = Array.from({ length: 200 }, (_, b) =>
      Array.from({ length: 1000 }, (_, i) => ({ origin: 'n2', seq: 2 ** 40 + b * 1000 + i, entity: 'forged', counter: 'n', share: { origin: 'n2', p: 1, n: 0 } })),
    );
    await expect(n3.relay(forged.slice(0, 20))).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    // And under its own origin it only moves its own window: n2's real relays all arrive.
    await n3.relay(forged.map((batch) => batch.map((w) => ({ ...w, origin: 'n3', share: { origin: 'n3', p: 1, n: 0 } }))));
    const real = Array.from({ length: 10 }, (_, i) => `real-${i}`);
    for (const id of real) await n2.put(id, 'c', 'v');
    expect(await waitUntil(has(n1, real), 5000, 20)).toBe(true);
    expect((await n1.stats()).relaysReceived).toBeGreaterThanOrEqual(10);
  });

  it('refuses relayed writes without a sequence or a relay stream', async () => {
    const specs = await clusterSpecs({ size: 2 });
    specsToRemove.push(...specs);
    await start(specs[0]);
    const n2 = new MeshPeer(specs[0].port, 'n2', specs[0].meshSecret);
    closers.push(n2);
    const write = { origin: 'n2', entity: 'e', component: 'c', value: 'v', kind: 'lww', ts: { wallMs: Date.now(), logical: 0, node: 'n2' } };
    await expect(n2.relay([[{ ...write, seq: 0 }]])).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/writes\[0\] needs a seq of at least 1 and an incarnation/) });
    await expect(n2.relay([[{ ...write, seq: 1, incarnation: '' }]])).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});
