import { describe, expect, it } from 'vitest';
import { limit, mix, once, phases, preview, repeatedly, stagger, timeLimit, type Gen } from '../generator.ts';
import { createRng } from '../rng.ts';
import { workerGenerator, workerRngs, type RunPlan } from '../runner.ts';
import { workloads } from '../workloads/index.ts';

const ctx = { worker: 0, process: 0, node: 'n1' };
const counter = repeatedly<number>(0, (_c, _r, n) => ({ op: { f: 'op', value: n }, state: n + 1 }));

function plan(over: Partial<RunPlan> = {}): RunPlan {
  return {
    seed: 42, nodes: [{ name: 'n1', address: 'x' }, { name: 'n2', address: 'y' }], workload: 'lww', concurrency: 4, rate: 100,
    timeLimitS: 1e6, nemesisIntervalS: 10, recoveryMs: 1000, opTimeoutMs: 1000, keys: 5, runTag: 't', ...over,
  };
}

describe('generator combinators', () => {
  it('limit stops after n ops and once emits its ops in order', () => {
    expect(preview(limit(3, counter), createRng(1), ctx, 10).map((o) => o.value)).toEqual([0, 1, 2]);
    expect(preview(once({ f: 'a', value: 1 }, { f: 'b', value: 2 }), createRng(1), ctx, 10).map((o) => o.f)).toEqual(['a', 'b']);
  });

  it('phases runs each generator to exhaustion before the next', () => {
    const g = phases(limit(2, counter), once({ f: 'final', value: null }));
    expect(preview(g, createRng(1), ctx, 10).map((o) => o.f)).toEqual(['op', 'op', 'final']);
  });

  it('timeLimit refuses ops that would start at or after the limit', () => {
    const g = timeLimit(1, stagger(0.1, counter));
    const ops = preview(g, createRng(7), ctx, 1000);
    const total = ops.reduce((s, o) => s + o.delayNs, 0);
    expect(ops.length).toBeGreaterThan(3);
    expect(total).toBeLessThan(1e9);
    expect(ops.length).toBeLessThan(30);
  });

  it('stagger gives a mean delay close to the requested one', () => {
    const ops = preview(stagger(0.01, counter), createRng(3), ctx, 2000);
    const mean = ops.reduce((s, o) => s + o.delayNs, 0) / ops.length / 1e9;
    expect(mean).toBeGreaterThan(0.009);
    expect(mean).toBeLessThan(0.011);
    expect(Math.max(...ops.map((o) => o.delayNs))).toBeLessThanOrEqual(0.02e9);
  });

  it('mix draws by weight and drops exhausted generators', () => {
    const a: Gen = repeatedly(0, () => ({ op: { f: 'a', value: null }, state: 0 }));
    const b: Gen = repeatedly(0, () => ({ op: { f: 'b', value: null }, state: 0 }));
    const ops = preview(mix([a, b], [9, 1]), createRng(5), ctx, 5000);
    const share = ops.filter((o) => o.f === 'a').length / ops.length;
    expect(share).toBeGreaterThan(0.87);
    expect(share).toBeLessThan(0.93);
    const finite = preview(mix([limit(2, a), limit(3, b)]), createRng(5), ctx, 100);
    expect(finite.length).toBe(5);
  });
});

describe('schedules are reproducible from the seed', () => {
  for (const name of Object.keys(workloads)) {
    it(`${name}: the same seed gives the same ops for every worker, another seed does not`, () => {
      const sched = (seed: number) => {
        const rngs = workerRngs(seed, 4).workers;
        return rngs.map((rng, w) => preview(workerGenerator(plan({ seed, workload: name }), w), rng, { worker: w, process: w, node: 'n1' }, 200));
      };
      const first = sched(42);
      expect(sched(42)).toEqual(first);
      expect(sched(43)).not.toEqual(first);
      expect(first.every((ops) => ops.length === 200)).toBe(true);
    });
  }

  it('lww sessions read a key, then write a unique value to the same key on the same worker', () => {
    const ops = preview(workloads.lww.generator(1, { keys: 3, runTag: 't' }), createRng(9), { ...ctx, worker: 1 }, 400);
    const values = new Set<string>();
    for (let i = 0; i < ops.length; i += 2) {
      const read = ops[i].value as any;
      const write = ops[i + 1].value as any;
      expect([ops[i].f, ops[i + 1].f]).toEqual(ops[i].f === 'read' ? ['read', 'write'] : ['read-max', 'write-max']);
      expect([write.entity, write.component]).toEqual([read.entity, read.component]);
      if (ops[i].f === 'read') {
        expect(values.has(write.value)).toBe(false);
        values.add(write.value);
      }
    }
    expect(values.size).toBeGreaterThan(100);
  });

  it('lww threat writes only ever increase within a session', () => {
    const ops = preview(workloads.lww.generator(0, { keys: 1, runTag: 't' }), createRng(2), ctx, 400).filter((o) => o.f === 'write-max');
    const values = ops.map((o) => (o.value as any).value as number);
    expect(values.length).toBeGreaterThan(20);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
  });

  it('counter retries an info increment with the same request id and a higher attempt', () => {
    const gen = workloads.counter.generator(0, { keys: 3, runTag: 't' });
    const rng = createRng(11);
    let step = gen.next({ ...ctx, timeNs: 0 }, rng)!;
    while (step.op.f !== 'incr') step = step.gen.next({ ...ctx, timeNs: 0 }, rng)!;
    const last = { index: 1, time: 1, process: 0, type: 'info' as const, f: 'incr', value: step.op.value };
    const retry = step.gen.next({ ...ctx, timeNs: 1, last }, rng)!;
    expect(retry.op.f).toBe('incr');
    expect((retry.op.value as any).requestId).toBe((step.op.value as any).requestId);
    expect((retry.op.value as any).attempt).toBe(1);
    expect((retry.op.value as any).delta).toBe((step.op.value as any).delta);
  });
});
