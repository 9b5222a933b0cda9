import { describe, expect, it } from 'vitest';
import { faultWindows, perf } from '../perf.ts';
import { HistoryBuilder, ctx } from './builder.ts';

describe('perf', () => {
  it('computes latency per f and outcome, buckets, and splits fault from calm windows', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', {}, 'ok');      // 1..2 ms, calm, latency 1 ms
    b.nemesis('start-partition');            // 3 ms
    b.add(1, 'invoke', 'read', {}, 'n1');    // 4 ms, in the fault window
    b.nemesis('stop-partition');             // 5 ms
    b.add(1, 'info', 'read', {}, 'n1');      // 6 ms, latency 2 ms
    b.call(2, 'n1', 'read', {}, 'fail');     // 7..8 ms, calm
    const r = perf({ bucketMs: 5 })(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.latencyMs.write.ok).toEqual({ count: 1, p50: 1, p95: 1, p99: 1, max: 1 });
    expect(r.latencyMs.read.info.max).toBe(2);
    expect(r.latencyMs.read.all.count).toBe(2);
    expect(r.faultWindows).toEqual([{ startMs: 3, endMs: 5, f: ['start-partition'] }]);
    expect([r.fault.ops, r.fault.availability, r.calm.ops, r.calm.availability]).toEqual([1, 0, 2, 0.5]);
    // Bucket 0 (0-5 ms): the write; bucket 1 (5-10 ms): the info read and the failed read.
    expect(r.buckets.map((x) => [x.okPerSec, x.failPerSec, x.infoPerSec, x.fault])).toEqual([[200, 0, 0, true], [0, 200, 200, true]]);
    expect(r.availability).toBeCloseTo(1 / 3);
  });

  it('closes every open fault at the final heal and merges overlapping faults', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-partition');
    b.nemesis('start-clock');
    b.nemesis('stop-partition');
    b.nemesis('heal');
    b.nemesis('start-kill');
    expect(faultWindows(b.ops).map((w) => [w.start, w.end, w.f])).toEqual([[1e6, 4e6, ['start-partition', 'start-clock']], [5e6, 5e6, ['start-kill']]]);
  });
});

describe('fault windows', () => {
  it('counts a clock bump or strobe as a fault until stop-clock or heal, and merges overlapping faults', () => {
    const b = new HistoryBuilder();
    const bump = b.nemesis('bump-clock', { nodes: ['n1'], deltaMs: -1500 });
    const part = b.nemesis('start-partition', { grudge: { n1: ['n2'] } });
    b.nemesis('stop-partition', {});
    const heal = b.nemesis('heal', {});
    const strobe = b.nemesis('strobe-clock', { nodes: ['n2'] });
    const stop = b.nemesis('stop-clock', {});
    const t = (i: number) => b.ops[i].time;
    expect(faultWindows(b.ops)).toEqual([
      { start: t(bump), end: t(heal), f: ['start-clock', 'start-partition'] },
      { start: t(strobe), end: t(stop), f: ['start-clock'] },
    ]);
    expect(part).toBe(bump + 1);
  });
});
