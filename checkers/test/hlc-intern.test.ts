import { describe, expect, it } from 'vitest';
import { createRng } from '../../harness/rng.ts';
import { HlcInterner } from '../hlc-intern.ts';

const hlc = (ms: number, logical: number, node: string) => `${String(ms).padStart(15, '0')}:${String(logical).padStart(5, '0')}:${node}`;

/** Checks ids and order numbers against the strings themselves: same id iff same string, order as string order. */
function agrees(strings: readonly string[]): void {
  const interner = new HlcInterner();
  const ids = strings.map((s) => interner.id(s));
  const order = interner.order();
  const firstId = new Map<string, number>();
  const bad = strings.filter((s, i) => {
    if (!firstId.has(s)) firstId.set(s, ids[i]);
    return ids[i] !== firstId.get(s) || interner.find(s) !== ids[i] || interner.str[ids[i]] !== s;
  });
  expect(bad).toEqual([]);
  expect(interner.str.length).toBe(firstId.size);
  // Sorted as strings, the order numbers must rise strictly (so equal only for the same string).
  const sorted = [...firstId.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const wrong = sorted.slice(1).findIndex((s, i) => !(order[firstId.get(sorted[i])!] < order[firstId.get(s)!]));
  expect(wrong < 0 ? undefined : [sorted[wrong], sorted[wrong + 1]]).toBeUndefined();
}

describe('HlcInterner', () => {
  it('gives one id per distinct canonical timestamp and orders them as strings sort, node ids seen in any order', () => {
    const rng = createRng(7);
    const nodes = ['n3', 'n1', 'n10', 'n2', 'b', 'n1x'];
    const strings: string[] = [];
    const base = 1_764_000_000_000;
    // Enough distinct values that the table grows several times; repeats, and ms before the first one seen.
    for (let i = 0; i < 20_000; i++) strings.push(hlc(base + rng.int(4000) - 2000, rng.int(3), rng.pick(nodes)));
    agrees(strings);
  });

  it('falls back to the strings for anything not canonical, and still orders everything as strings sort', () => {
    const rng = createRng(8);
    const strings: string[] = [];
    for (let i = 0; i < 3000; i++) strings.push(hlc(1000 + rng.int(50), rng.int(4), rng.pick(['n1', 'n2'])));
    strings.push('not-a-clock', '', '1:2:3', hlc(5, 1, 'n1').replace(':', ';'));
    // A wall clock days away from the first one seen is outside the packed range.
    strings.push(hlc(1000 + 30 * 86_400_000, 0, 'n1'));
    agrees([...strings].sort(() => rng.int(3) - 1));
  });

  it('finds nothing it never interned', () => {
    const interner = new HlcInterner();
    expect(interner.find(hlc(1, 0, 'n1'))).toBe(-1);
    interner.id(hlc(1, 0, 'n1'));
    expect(interner.find(hlc(1, 0, 'n1'))).toBe(0);
    expect(interner.find(hlc(1, 1, 'n1'))).toBe(-1);
    expect(interner.find(hlc(1, 0, 'n2'))).toBe(-1);
    expect(interner.find('junk')).toBe(-1);
  });

  it('ranks more node ids than it can pack by sorting the strings', () => {
    const strings = Array.from({ length: 600 }, (_, i) => hlc(10, i % 3, `node-${(i * 7919) % 300}`));
    agrees(strings);
  });
});
