import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op } from '../../harness/history.ts';
import { opIndex } from '../history-index.ts';
import { keyIndex } from '../util.ts';

const op = (index: number, type: Op['type'], f: string, value: unknown, process: Op['process'] = 0): Op => ({ index, time: index * 10, process, type, f, value, node: 'n1' });

/** A history whose ops and watch events carry the given timestamps, to read the HLC table back. */
function withTimestamps(ts: readonly string[]): Op[] {
  const ops: Op[] = [];
  ts.forEach((t, i) => {
    if (i % 2 === 0) ops.push(op(ops.length, 'ok', 'read', { entity: 'e', component: 'c', value: null, ts: t }));
    else ops.push(op(ops.length, 'ok', 'watch-events', { stream: 'n1#0', events: [[0, 'e', 'c', 'v', t, 'lww', false, 0]] }, 7));
  });
  return ops;
}

describe('opIndex', () => {
  it('selects ops by f and type in history order, and pairs invokes with completions', () => {
    const h = [
      op(0, 'invoke', 'write', {}, 1),
      op(1, 'invoke', 'read', {}, 2),
      op(2, 'info', 'start-partition', {}, 'nemesis'),
      op(3, 'ok', 'read', {}, 2),
      op(4, 'fail', 'write', {}, 1),
      op(5, 'invoke', 'final-read', {}, 9),
    ];
    const index = opIndex(h);
    expect([...index.select(['write', 'read'])]).toEqual([0, 1, 3, 4]);
    expect([...index.select(['read', 'start-partition'], ['ok', 'info'])]).toEqual([2, 3]);
    expect([...index.select(['nothing'])]).toEqual([]);
    expect([...index.nemesis]).toEqual([2]);
    expect([...index.workloadInvokes]).toEqual([0, 1]);
    expect([...index.clientInvokes]).toEqual([0, 1, 5]);
    expect(index.endTime).toBe(50);
    expect([...index.pairing.completion]).toEqual([4, 3, -1, -1, -1, -1]);
    expect([...index.pairing.invocation]).toEqual([-1, -1, -1, 1, 0, -1]);
  });
});

describe('HLC order numbers', () => {
  const hlc = (ms: number, logical: number, node: string) => `${String(ms).padStart(15, '0')}:${String(logical).padStart(5, '0')}:${node}`;
  const expectStringOrder = (ts: readonly string[]) => {
    const table = keyIndex(withTimestamps(ts)).hlc;
    const order = table.order();
    for (let a = 0; a < table.str.length; a++) {
      for (let b = 0; b < table.str.length; b++) {
        const x = table.str[a];
        const y = table.str[b];
        expect(Math.sign(order[a] - order[b]), `${x} vs ${y}`).toBe(x < y ? -1 : x > y ? 1 : 0);
      }
    }
    for (const t of ts) expect(table.str[table.find(t)]).toBe(t);
  };

  it('orders canonical timestamps as their strings sort, node ids included', () => {
    expectStringOrder([hlc(1796181741491, 0, 'n3'), hlc(1796181741491, 0, 'n10'), hlc(1796181741491, 0, 'n1'), hlc(1796181741491, 1, 'a'), hlc(5, 99999, 'n2'), hlc(1796181741492, 0, 'n1')]);
  });

  it('falls back to ranking the strings when a timestamp is not canonical or the range is too wide', () => {
    expectStringOrder([hlc(1796181741491, 0, 'n3'), 'garbage', '', hlc(10, 0, 'n1')]);
    expectStringOrder([hlc(999999999999999, 0, 'n1'), hlc(0, 0, 'n2'), hlc(0, 1, 'n1')]);
  });

  it('agrees with string order on random timestamps', () => {
    const arb = fc.array(
      fc.oneof(
        fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3 }), fc.constantFrom('n1', 'n2', 'n10', 'x')).map(([ms, l, n]) => hlc(1796181740000 + ms, l, n)),
        fc.string({ maxLength: 6 }),
      ),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(fc.property(arb, (ts) => expectStringOrder(ts)));
  });
});
