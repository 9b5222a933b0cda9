import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op, OpType } from '../../harness/history.ts';
import { linearizable } from '../linearizable.ts';
import { HistoryBuilder, ctx } from './builder.ts';

const register = linearizable({ model: 'register' });
const casRegister = linearizable({ model: 'cas-register' });

describe('linearizability (hand-made)', () => {
  it('accepts concurrent ops that have a valid order', () => {
    const b = new HistoryBuilder();
    b.add(0, 'invoke', 'write', 1);
    b.add(1, 'invoke', 'read', null);
    b.add(1, 'ok', 'read', 1); // the write took effect before the read, though it has not returned
    b.add(0, 'ok', 'write', 1);
    const r = register(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.keys).toBe(1);
  });

  it('reports a stale read after a completed write, with the op where it breaks and the prefix', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', 1, 'ok');
    b.call(0, 'n1', 'write', 2, 'ok');
    const [inv, done] = b.call(1, 'n2', 'read', null, 'ok', 1);
    b.call(1, 'n2', 'read', null, 'ok', 2);
    const r = register(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.failedKeys).toEqual(['']);
    const a = r.anomalies![0];
    expect(a.type).toBe('non-linearizable');
    expect(a.ops).toEqual([done, inv]);
    expect(a.prefixEnd).toBe(done);
    expect(a.possibleStates).toEqual([2]);
    expect(a.op).toEqual({ f: 'read', value: 1 });
  });

  it('lets an info write take effect late, or never', () => {
    const late = new HistoryBuilder();
    late.add(0, 'invoke', 'write', 1);
    late.add(0, 'info', 'write', 1);
    late.call(1, 'n1', 'read', null, 'ok', null);
    late.call(1, 'n1', 'read', null, 'ok', 1);
    expect(register(late.ops, ctx()).valid).toBe(true);
    // But once it has been seen, it cannot be un-seen without another write.
    late.call(1, 'n1', 'read', null, 'ok', null);
    expect(register(late.ops, ctx()).valid).toBe(false);
  });

  it('ignores failed ops and splits by key', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', { key: 'x', value: 1 }, 'fail');
    b.call(0, 'n1', 'write', { key: 'y', value: 1 }, 'ok');
    b.call(0, 'n1', 'read', { key: 'x' }, 'ok', { key: 'x', value: null });
    b.call(0, 'n1', 'read', { key: 'y' }, 'ok', { key: 'y', value: 1 });
    const r = register(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.keys).toBe(2);
  });

  it('checks compare-and-set: a cas succeeds only from its old value', () => {
    const ok = new HistoryBuilder();
    ok.call(0, 'n1', 'write', 1, 'ok');
    ok.call(0, 'n1', 'cas', [1, 2], 'ok');
    ok.call(0, 'n1', 'cas', [1, 3], 'fail');
    ok.call(0, 'n1', 'read', null, 'ok', 2);
    expect(casRegister(ok.ops, ctx()).valid).toBe(true);

    const bad = new HistoryBuilder();
    bad.call(0, 'n1', 'write', 1, 'ok');
    const [inv, done] = bad.call(0, 'n1', 'cas', [5, 2], 'ok');
    const r = casRegister(bad.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies![0].ops).toEqual([done, inv]);
  });

  it('refuses cas ops under the plain register model', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'cas', [1, 2], 'ok');
    expect(() => register(b.ops, ctx())).toThrow(/cas-register/);
  });

  it('keys the lww workload by entity/component and marks the advisory result', () => {
    const b = new HistoryBuilder();
    const w = { entity: 'e1', component: 'pos', value: 'a', requestId: 'r1' };
    b.call(0, 'n1', 'write', w, 'ok');
    b.call(1, 'n2', 'read', { entity: 'e1', component: 'pos' }, 'ok', { entity: 'e1', component: 'pos', value: null, ts: null });
    const r = linearizable({ model: 'register', advisory: true })(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.failedKeys).toEqual(['e1/pos']);
    expect(r.advisory).toBe(true);
    expect(r.expected).toBe('AP store: not linearizable under partitions');
  });

  it('returns unknown rather than hanging when the budget runs out', () => {
    // Many concurrent info writes and reads make the search space large; a 0 ms budget must stop it.
    const b = new HistoryBuilder();
    for (let p = 0; p < 40; p++) b.add(p, 'invoke', 'write', p);
    for (let p = 0; p < 40; p++) b.add(p, 'info', 'write', p);
    for (let i = 0; i < 5000; i++) b.call(100, 'n1', 'read', null, 'ok', i % 40);
    b.call(100, 'n1', 'read', null, 'ok', 'never-written');
    const r = register(b.ops, { ...ctx(), linearizableBudgetMs: 0 });
    expect(r.valid).toBe('unknown');
    expect(r.unknownKeys).toEqual(['']);
  });
});

describe('linearizability (models and options)', () => {
  it('starts the register at --initial-value: a first read of 0 is right only if it started at 0', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'read', null, 'ok', 0);
    expect(casRegister(b.ops, ctx()).valid).toBe(false);
    expect(linearizable({ model: 'cas-register', initialValue: 0 })(b.ops, ctx()).valid).toBe(true);
  });

  it('with nil-read unknown a nil read is not judged (and counted); alone it leaves the check unknown', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', 1, 'ok');
    b.call(1, 'n2', 'read', null, 'ok', null);
    expect(register(b.ops, ctx()).valid).toBe(false); // nil = empty, but 1 was written
    const knossos = linearizable({ model: 'register', nilRead: 'unknown' })(b.ops, ctx());
    expect(knossos.valid).toBe(true);
    expect(Object.values(knossos.notJudged)).toEqual([1]);
    const onlyNil = new HistoryBuilder();
    onlyNil.call(1, 'n2', 'read', null, 'ok', null);
    const r = linearizable({ model: 'register', nilRead: 'unknown' })(onlyNil.ops, ctx());
    expect(r.valid).toBe('unknown');
    expect(r.error).toMatch(/not judged: 1 read of nil/);
  });

  it('kv: append concatenates per key; a get that misses an acknowledged append fails, naming the key', () => {
    const kv = linearizable({ model: 'kv' });
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'put', { key: 'a', value: 'x' }, 'ok');
    b.call(0, 'n1', 'append', { key: 'a', value: 'y' }, 'ok');
    b.call(0, 'n1', 'append', { key: 'b', value: 'z' }, 'ok');
    b.call(1, 'n2', 'get', { key: 'b' }, 'ok', { key: 'b', value: 'z' });
    b.call(1, 'n2', 'get', { key: 'a' }, 'ok', { key: 'a', value: 'xy' });
    expect(kv(b.ops, ctx()).valid).toBe(true);
    const [inv] = b.call(1, 'n2', 'get', { key: 'a' }, 'ok', { key: 'a', value: 'x' });
    const r = kv(b.ops, ctx());
    expect(r.failedKeys).toEqual(['a']);
    const a = r.anomalies![0];
    expect(a.cannotPlace).toEqual({ op: inv, describe: 'get() → "x"' });
    expect((a.linearization as { describe: string; state: string }[]).map((s) => `${s.describe} ${s.state}`)).toEqual(['put("x") "x"', 'append("y") "xy"', 'get() → "xy" "xy"']);
  });

  it('stops undecided keys once one fails, unless asked to decide all', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write', { key: 'bad', value: 1 }, 'ok');
    b.call(0, 'n1', 'read', { key: 'bad' }, 'ok', { key: 'bad', value: 2 });
    // A hard key: many concurrent info writes and a read no write explains, which takes a long search to refute.
    for (let p = 0; p < 14; p++) b.add(10 + p, 'invoke', 'write', { key: 'hard', value: p });
    for (let i = 0; i < 30; i++) b.call(100, 'n1', 'read', { key: 'hard' }, 'ok', { key: 'hard', value: i % 14 });
    b.call(100, 'n1', 'read', { key: 'hard' }, 'ok', { key: 'hard', value: 'never' });
    const r = register(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.failedKeys).toEqual(['bad']);
    expect(r.stoppedKeys).toEqual(['hard']);
    const all = register(b.ops, { ...ctx(), linearizableAllKeys: true });
    expect([...all.failedKeys].sort()).toEqual(['bad', 'hard']);
    expect(all.stoppedKeys).toEqual([]);
  });
});

/**
 * A concurrent register history that is linearizable by construction: each op picks a linearization
 * point inside its [invoke, complete] interval, and reads return the value at their point.
 */
function linearizableHistory(spec: { ops: { kind: 'read' | 'write'; start: number; len: number; point: number; info: boolean }[] }): Op[] {
  const events: { time: number; order: number; op: Omit<Op, 'index'> }[] = [];
  // Linearization points decide the values: sort ops by their point.
  const ops = spec.ops.map((o, i) => ({ ...o, i, at: o.start + o.point * o.len }));
  const byPoint = [...ops].sort((a, b) => a.at - b.at || a.i - b.i);
  const readValue = new Map<number, number | null>();
  let value: number | null = null;
  for (const o of byPoint) {
    if (o.kind === 'write') value = o.i;
    else readValue.set(o.i, value);
  }
  for (const o of ops) {
    const type: OpType = o.kind === 'write' && o.info ? 'info' : 'ok';
    const v = o.kind === 'write' ? o.i : null;
    events.push({ time: o.start, order: 0, op: { time: 0, process: o.i, type: 'invoke', f: o.kind, value: v } });
    events.push({ time: o.start + o.len, order: 1, op: { time: 0, process: o.i, type, f: o.kind, value: o.kind === 'read' ? readValue.get(o.i)! : v } });
  }
  events.sort((a, b) => a.time - b.time || a.order - b.order);
  return events.map((e, index) => ({ ...e.op, index, time: e.time }));
}

const opSpec = fc.record({
  kind: fc.constantFrom<'read' | 'write'>('read', 'write'),
  start: fc.integer({ min: 0, max: 1000 }),
  len: fc.integer({ min: 1, max: 200 }),
  point: fc.double({ min: 0.01, max: 0.99, noNaN: true }),
  info: fc.boolean(),
});

describe('linearizability (properties)', () => {
  it('a correct sequential register is always linearizable', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(-1)), { minLength: 1, maxLength: 200 }), (steps) => {
        const b = new HistoryBuilder();
        let value: number | null = null;
        for (const s of steps) {
          if (s < 0) b.call(0, 'n1', 'read', null, 'ok', value);
          else {
            b.call(0, 'n1', 'write', s, 'ok');
            value = s;
          }
        }
        return register(b.ops, ctx()).valid === true;
      }),
    );
  });

  it('a concurrent history that is linearizable by construction is accepted', () => {
    fc.assert(
      fc.property(fc.array(opSpec, { minLength: 1, maxLength: 40 }), (ops) => register(linearizableHistory({ ops }), ctx()).valid === true),
      { numRuns: 300 },
    );
  });

  it('one stale read injected after a completed write makes it non-linearizable', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 2, maxLength: 100 }),
        fc.nat(),
        (writes, pick) => {
          const b = new HistoryBuilder();
          // Distinct values, so "stale" is unambiguous.
          const values = writes.map((_, i) => i);
          const at = 1 + (pick % (values.length - 1));
          for (let i = 0; i < values.length; i++) {
            b.call(0, 'n1', 'write', values[i], 'ok');
            b.call(1, 'n2', 'read', null, 'ok', values[i]);
          }
          // After every write completed, read a value that an earlier completed write overwrote.
          const [, done] = b.call(1, 'n2', 'read', null, 'ok', values[at - 1]);
          const r = register(b.ops, ctx());
          return r.valid === false && r.anomalies![0].ops[0] === done;
        },
      ),
    );
  });
});
