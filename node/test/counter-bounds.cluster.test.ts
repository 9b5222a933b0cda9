// Counters near 2^53 against real node processes on loopback: an increment that could make a
// counter's value inexact is refused with a clear error, concurrent increments on different nodes up
// to the bound keep the counter exact and readable everywhere, and no share a peer sends makes Get or
// Scan fail.
import { afterEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { MeshPeer, StoreApi, clusterSpecs, startNode, waitForMesh, waitUntil, TestResources } from '../testing.ts';

const resources = new TestResources();
const { procs, closers, specs: specsToRemove } = resources;
afterEach(() => resources.release());

const MAX = Number.MAX_SAFE_INTEGER;

describe('counters near 2^53', () => {
  it('refuses Incr(2^53 − 1) on a 2-node cluster, and keeps two concurrent increments up to the bound exact and readable', async () => {
    const specs = await clusterSpecs({ size: 2, antiEntropyMs: 100 });
    specsToRemove.push(...specs);
    for (const s of specs) procs.push(await startNode(s));
    await waitForMesh(specs);
    const apis = specs.map((s) => new StoreApi(s.port));
    closers.push(...apis);
    const bound = Math.floor(MAX / 2);
    await expect(apis[0].incr('e', 'c', MAX)).rejects.toMatchObject({
      code: status.OUT_OF_RANGE,
      details: `counter "c" of entity "e" would reach ${MAX} in increments on node n1, beyond ${bound}: each of the cluster's 2 nodes may add up to ${MAX} (2^53 − 1) / 2 either way, so that the counter's value stays exact on every node`,
    });
    // The probe's case: the largest increment each node accepts, on both at once.
    await Promise.all([apis[0].incr('e', 'c', bound), apis[1].incr('e', 'c', bound)]);
    for (const api of apis) {
      expect(await waitUntil(async () => (await api.get('e')).entity?.counters[0]?.value === 2 * bound, 10_000, 50)).toBe(true);
      expect((await api.scan())[0].counters[0].value).toBe(2 * bound);
    }
    await expect(apis[0].incr('e', 'c', 1)).rejects.toMatchObject({ code: status.OUT_OF_RANGE });
    // Decrements have their own share, bounded the same way.
    await apis[1].incr('e', 'd', -bound);
    await expect(apis[1].incr('e', 'd', -1)).rejects.toMatchObject({ code: status.OUT_OF_RANGE, details: expect.stringMatching(/in decrements on node n2/) });
  });

  it('stays readable whatever shares a peer sends', async () => {
    const specs = await clusterSpecs({ size: 3 });
    specsToRemove.push(...specs);
    procs.push(await startNode(specs[0]));
    const api = new StoreApi(specs[0].port);
    closers.push(api);
    for (const sender of ['n2', 'n3']) {
      const peer = new MeshPeer(specs[0].port, sender, specs[0].meshSecret);
      closers.push(peer);
      await peer.relay([[{ origin: sender, seq: 1, entity: 'big', counter: 'c', share: { origin: sender, p: MAX, n: 0 } }]]);
    }
    expect(await waitUntil(async () => (await api.get('big')).entity?.counters[0]?.shares.length === 2, 5000, 20)).toBe(true);
    const counter = (await api.get('big')).entity!.counters[0];
    expect(counter.value).toBe(MAX); // saturated, not unreadable
    expect(counter.shares.map((s) => s.p)).toEqual([MAX, MAX]);
    expect((await api.scan()).length).toBe(1);
  });
});
