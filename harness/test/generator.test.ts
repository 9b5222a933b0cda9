import { describe, expect, it } from 'vitest';
import { limit, mix, once, phases, preview, repeatedly, retrying, stagger, timeLimit, type Gen } from '../generator.ts';
import { createRng } from '../rng.ts';
import { workerGenerator, workerRngs, type InterpreterPlan } from '../interpreter.ts';
import { retryOf, workloads } from '../systems/store-mesh/workloads.ts';

const ctx = { worker: 0, process: 0, node: 'n1' };
const counter = repeatedly<number>(0, (_c, _r, n) => ({ op: { f: 'op', value: n }, state: n + 1 }));

function plan(over: Partial<InterpreterPlan> = {}): InterpreterPlan {
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
        return rngs.map((rng, w) => preview(workerGenerator(plan({ seed, workload: name }), workloads, w), rng, { worker: w, process: w, node: 'n1' }, 200));
      };
      const first = sched(42);
      expect(sched(42)).toEqual(first);
      expect(sched(43)).not.toEqual(first);
      expect(first.every((ops) => ops.length === 200)).toBe(true);
    });
  }

  it('lww sessions read a key, then write a unique value to it or delete it, on the same worker', () => {
    const ops = preview(workloads.lww.generator(1, { keys: 3, runTag: 't' }), createRng(9), { ...ctx, worker: 1 }, 400);
    const values = new Set<string>();
    let deletes = 0;
    for (let i = 0; i < ops.length; i += 2) {
      const read = ops[i].value as any;
      const write = ops[i + 1].value as any;
      if (ops[i].f === 'read') expect(['write', 'delete']).toContain(ops[i + 1].f);
      else expect([ops[i].f, ops[i + 1].f]).toEqual(['read-max', 'write-max']);
      expect([write.entity, write.component]).toEqual([read.entity, read.component]);
      if (ops[i + 1].f === 'write') {
        expect(values.has(write.value)).toBe(false);
        values.add(write.value);
      }
      if (ops[i + 1].f === 'delete') {
        deletes++;
        // Deletes go to hot entities only, so a cold write is never taken back.
        expect(write.entity).toMatch(/^e\d+$/);
      }
    }
    expect(values.size).toBeGreaterThan(100);
    expect(deletes).toBeGreaterThan(5);
  });

  it('lww threat writes only ever increase within a session', () => {
    const ops = preview(workloads.lww.generator(0, { keys: 1, runTag: 't' }), createRng(2), ctx, 400).filter((o) => o.f === 'write-max');
    const values = ops.map((o) => (o.value as any).value as number);
    expect(values.length).toBeGreaterThan(20);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]);
  });

  it('retries an info increment later with the same request id, backing off, until it is acknowledged', () => {
    const gen = retrying({ retryOf }, workloads.counter.generator(0, { keys: 3, runTag: 't' }));
    const rng = createRng(11);
    let step = gen.next({ ...ctx, timeNs: 0 }, rng)!;
    while (step.op.f !== 'incr') step = step.gen.next({ ...ctx, timeNs: 0 }, rng)!;
    const first = step.op.value as any;
    const info = { index: 1, time: 1000, process: 0, type: 'info' as const, f: 'incr', value: first };
    // Before the backoff (250 ms) the session goes on with new ops, waiting no longer than the retry.
    let next = step.gen.next({ ...ctx, timeNs: 1000, last: info }, rng)!;
    expect((next.op.value as any).requestId).not.toBe(first.requestId);
    const other = { index: 3, time: 2000, process: 6, type: 'ok' as const, f: next.op.f, value: next.op.value };
    next = next.gen.next({ ...ctx, timeNs: 250e6 + 1000, last: other }, rng)!;
    expect(next.op).toMatchObject({ f: 'incr', value: { requestId: first.requestId, delta: first.delta, attempt: 1 } });
    // The retry failed (its node is down): sent again after twice the backoff.
    const failed = { index: 5, time: 260e6, process: 6, type: 'fail' as const, f: 'incr', value: next.op.value };
    next = next.gen.next({ ...ctx, timeNs: 260e6, last: failed }, rng)!;
    expect((next.op.value as any).requestId).not.toBe(first.requestId);
    next = next.gen.next({ ...ctx, timeNs: 760e6, last: { ...other, time: 700e6 } }, rng)!;
    expect(next.op).toMatchObject({ f: 'incr', value: { requestId: first.requestId, attempt: 2 } });
    // Acknowledged: no more retries.
    let later = next.gen.next({ ...ctx, timeNs: 770e6, last: { ...failed, type: 'ok', time: 770e6, value: next.op.value } }, rng)!;
    for (let t = 1; t < 50; t++) {
      expect((later.op.value as any).requestId).not.toBe(first.requestId);
      later = later.gen.next({ ...ctx, timeNs: 770e6 + t * 1e9, last: { ...other, time: 770e6 + t * 1e9, f: later.op.f, value: later.op.value } }, rng)!;
    }
  });

  it('sends every n-th acknowledged mutating op again later, with its request id and without its result', () => {
    const gen = retrying({ retryOf, resendEvery: 3, resendAfterNs: 5e9 }, workloads.lww.generator(0, { keys: 3, runTag: 't' }));
    const rng = createRng(5);
    let step = gen.next({ ...ctx, timeNs: 0 }, rng)!;
    const acked: any[] = [];
    const sent: any[] = [];
    let t = 0;
    for (let i = 0; i < 200 && t < 12e9; i++) {
      t += 100e6;
      const v = step.op.value as any;
      sent.push({ f: step.op.f, ...v, at: t });
      // Every op is acknowledged; a write's ok carries its timestamp and the duplicate flag.
      const result = step.op.f === 'write' ? { ...v, ts: `ts${i}`, duplicate: false } : v;
      if (retryOf({ index: i, time: t, process: 0, type: 'ok', f: step.op.f, value: v }) && v.attempt === undefined) acked.push({ ...result, at: t });
      step = step.gen.next({ ...ctx, timeNs: t, last: { index: i, time: t, process: 0, type: 'ok', f: step.op.f, value: result } }, rng)!;
    }
    const resent = sent.filter((o) => o.attempt === 1);
    expect(resent.length).toBeGreaterThan(2);
    for (const r of resent) {
      const original = acked.find((a) => a.requestId === r.requestId)!;
      expect(original, r.requestId).toBeDefined();
      expect(r.value).toBe(original.value);
      expect(r.ts, JSON.stringify(r)).toBeUndefined();
      expect(r.duplicate).toBeUndefined();
      expect(r.at - original.at).toBeGreaterThanOrEqual(5e9);
    }
    // Every third acknowledged mutating op (of those acknowledged long enough before the end) came back.
    expect(resent.length).toBe(acked.filter((a) => a.at + 5e9 < t).filter((_, i) => i % 3 === 2).length);
  });

  it('keeps a session thread intact around retries and in a mix (each generator sees its own last op)', () => {
    const gen = retrying({ retryOf }, workloads.all.generator(0, { keys: 3, runTag: 't' }));
    const ops = preview(gen, createRng(4), ctx, 600);
    // preview completes every op ok: every lww read is followed, later, by its write or delete.
    const open = new Map<string, number>();
    for (const op of ops) {
      const v = op.value as any;
      if (op.f === 'read' || op.f === 'read-max') open.set(`${v.entity}/${v.component}`, (open.get(`${v.entity}/${v.component}`) ?? 0) + 1);
      if (op.f === 'write' || op.f === 'delete' || op.f === 'write-max') {
        const k = `${v.entity}/${v.component}`;
        expect(open.get(k) ?? 0).toBeGreaterThan(0);
        open.set(k, open.get(k)! - 1);
      }
    }
    const fs = new Set(ops.map((o) => o.f));
    for (const f of ['read', 'write', 'delete', 'read-max', 'write-max', 'incr', 'read-counter', 'add', 'remove', 'read-set']) expect(fs).toContain(f);
    // Request ids never collide between the interleaved workloads.
    const ids = ops.filter((o) => (o.value as any).requestId && (o.value as any).attempt === undefined).map((o) => (o.value as any).requestId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('counter c0 only goes up, the others both ways', () => {
    const ops = preview(workloads.counter.generator(0, { keys: 3, runTag: 't' }), createRng(5), ctx, 500).filter((o) => o.f === 'incr');
    const deltas = (c: string) => ops.filter((o) => (o.value as any).counter === c).map((o) => (o.value as any).delta as number);
    expect(deltas('c0').every((d) => d >= 1 && d <= 5)).toBe(true);
    expect(deltas('c1').some((d) => d < 0)).toBe(true);
    expect([...deltas('c1'), ...deltas('c2')].every((d) => d !== 0 && Math.abs(d) <= 5)).toBe(true);
  });
});
