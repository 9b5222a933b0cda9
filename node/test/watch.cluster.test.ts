// Watch memory against a real node process on loopback: watchers that never read cost the node at most
// its byte budget (--watch-buffer-bytes) in total, however many there are and however much is written,
// the excess is dropped and counted, and a watcher that resumes is told exactly what it lost.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { WatchEvent } from '../../proto/gen/faultline.ts';
import { StoreApi, clusterSpecs, startNode, waitUntil, TestResources } from '../testing.ts';

const resources = new TestResources();
const { procs, closers, specs: specsToRemove } = resources;
afterEach(() => resources.release());

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('watch memory', () => {
  it('bounds what 200 watchers that never read cost the node, in bytes, and counts what it drops', async () => {
    const [spec] = await clusterSpecs({ size: 1 });
    specsToRemove.push(spec);
    const budget = 16 * 1024 * 1024;
    const proc = await startNode({ ...spec, extraArgs: ['--watch-buffer-bytes', String(budget)] });
    procs.push(proc);
    const writers = Array.from({ length: 4 }, () => new StoreApi(spec.port));
    const watchApis = Array.from({ length: 10 }, () => new StoreApi(spec.port));
    closers.push(...writers, ...watchApis);
    const calls = Array.from({ length: 200 }, (_, i) => {
      // Each asks for the largest per-watcher buffer (65,536 events) and never reads.
      const call = watchApis[i % watchApis.length].client.watch({ entityPrefix: '', buffer: 65_536 });
      call.on('error', () => {});
      call.pause();
      return call;
    });
    const resumed: WatchEvent[] = [];
    calls[0].on('data', (e: WatchEvent) => resumed.push(e));
    await new Promise((r) => setTimeout(r, 500));
    const before = rssMb(proc.child.pid!);
    for (let done = 0; done < 20_000; done += 400) {
      await Promise.all(Array.from({ length: 400 }, (_, i) => writers[i % 4].put(`e${done + i}`, 'c', `value-${done + i}`)));
    }
    const stats = await writers[0].stats();
    const grown = rssMb(proc.child.pid!) - before;
    // 20,000 events to 200 watchers would be 4 million held events (about 600 MB here) without a node-wide bound.
    expect(grown).toBeLessThan(200);
    expect(stats.watcherDrops).toBeGreaterThan(3_000_000);
    expect(stats.watchBufferedBytes).toBeGreaterThan(budget / 2);
    expect(stats.watchBufferedBytes).toBeLessThanOrEqual(budget);
    // One watcher reads again: it is told exactly how many events it lost on the way.
    calls[0].resume();
    let n = 0;
    expect(
      await waitUntil(async () => {
        await writers[0].put('last', 'c', `end-${n++}`);
        return resumed.some((e) => e.entity === 'last');
      }, 20_000, 50),
    ).toBe(true);
    // Events reach a watcher in the order they were published: up to the first marker that arrived
    // (end-j), each of the 20,000 + j events before it was delivered or is counted in a dropped_before.
    const first = resumed.findIndex((e) => e.entity === 'last');
    const j = Number(resumed[first].value.slice('end-'.length));
    const lost = resumed.slice(0, first + 1).reduce((t, e) => t + e.droppedBefore, 0);
    expect(first + lost).toBe(20_000 + j);
    expect(resumed.reduce((t, e) => t + e.droppedBefore, 0)).toBeLessThanOrEqual((await writers[0].stats()).watcherDrops);
    for (const c of calls) c.cancel();
  });

  it('refuses a watch stream beyond the node limit with RESOURCE_EXHAUSTED', async () => {
    const [spec] = await clusterSpecs({ size: 1 });
    specsToRemove.push(spec);
    procs.push(await startNode(spec));
    const apis = Array.from({ length: 20 }, () => new StoreApi(spec.port));
    closers.push(...apis);
    const calls = Array.from({ length: 1000 }, (_, i) => {
      const call = apis[i % apis.length].client.watch({ entityPrefix: 'x', buffer: 1 });
      call.on('error', () => {});
      return call;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const extra = apis[0].client.watch({ entityPrefix: 'x', buffer: 1 });
    const error = await new Promise<{ code: number; details: string }>((resolve) => {
      extra.on('error', resolve);
      setTimeout(() => resolve({ code: -1, details: 'no error within 10 s: the stream was accepted' }), 10_000);
    });
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.details).toMatch(/already serves 1000 watch streams/);
    for (const c of calls) c.cancel();
  });
});
