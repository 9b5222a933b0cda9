// Invariants of every partition shape at 3 to 9 nodes, over many seeds, without Docker.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../harness/rng.ts';
import {
  asymmetric,
  bridge,
  complete,
  connectivity,
  flapSchedule,
  grudgeFromComponents,
  grudgeNodes,
  isolateOne,
  majoritiesRing,
  majority,
  majorityMinority,
  makeGrudge,
  randomHalves,
  shapeNames,
  twoWayConnectivity,
  validateGrudge,
  visibleFrom,
  type Grudge,
} from '../grudge.ts';

const sizes = [3, 4, 5, 6, 7, 8, 9];
const seeds = Array.from({ length: 25 }, (_, i) => i * 7919 + 1);

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `n${i + 1}`);
}

function forEachCase(body: (nodes: string[], seed: number) => void): void {
  for (const n of sizes) for (const seed of seeds) body(names(n), seed);
}

/** Groups nodes into classes of mutual two-way visibility, asserting the classes are cliques cut from each other. */
function components(nodes: string[], grudge: Grudge): string[][] {
  const m = twoWayConnectivity(nodes, grudge);
  const seen = new Set<string>();
  const out: string[][] = [];
  for (const a of nodes) {
    if (seen.has(a)) continue;
    const comp = nodes.filter((b) => m[a][b]);
    for (const b of comp) seen.add(b);
    out.push(comp);
  }
  return out;
}

function isSymmetric(nodes: string[], grudge: Grudge): boolean {
  const m = connectivity(nodes, grudge);
  return nodes.every((a) => nodes.every((b) => m[a][b] === m[b][a]));
}

/** Asserts the grudge splits the nodes into exactly the given component sizes, cut completely from each other. */
function expectExactPartition(nodes: string[], grudge: Grudge, sizesSorted: number[]): void {
  expect(isSymmetric(nodes, grudge)).toBe(true);
  const comps = components(nodes, grudge);
  expect(comps.flat().sort()).toEqual([...nodes].sort());
  expect(comps.map((c) => c.length).sort((a, b) => a - b)).toEqual(sizesSorted);
  const m = twoWayConnectivity(nodes, grudge);
  for (const comp of comps) {
    for (const a of comp) {
      for (const b of nodes) expect(m[a][b]).toBe(comp.includes(b));
    }
  }
}

describe('connectivity', () => {
  it('is one-way: a node that drops another still reaches it', () => {
    const nodes = names(3);
    const m = connectivity(nodes, { n1: ['n2'] });
    expect(m.n2.n1).toBe(false);
    expect(m.n1.n2).toBe(true);
    expect(m.n3.n1).toBe(true);
    expect(twoWayConnectivity(nodes, { n1: ['n2'] }).n1.n2).toBe(false);
    expect(twoWayConnectivity(nodes, { n1: ['n2'] }).n1.n3).toBe(true);
  });

  it('is full for the empty grudge', () => {
    const nodes = names(4);
    const m = connectivity(nodes, {});
    expect(nodes.every((a) => nodes.every((b) => m[a][b]))).toBe(true);
  });

  it('rejects unknown nodes and self-drops with a message naming them', () => {
    expect(() => validateGrudge(names(3), { n9: ['n1'] })).toThrow(/unknown node "n9".*n1, n2, n3/);
    expect(() => validateGrudge(names(3), { n1: ['n7'] })).toThrow(/Grudge of n1 names unknown node "n7"/);
    expect(() => validateGrudge(names(3), { n1: ['n1'] })).toThrow(/drops its own packets/);
  });
});

describe('shapes', () => {
  it('random halves partition the nodes exactly into floor(n/2) and ceil(n/2)', () => {
    forEachCase((nodes, seed) => {
      const g = randomHalves(nodes, createRng(seed));
      expectExactPartition(nodes, g, [Math.floor(nodes.length / 2), Math.ceil(nodes.length / 2)]);
    });
  });

  it('isolate cuts exactly one node from all the others', () => {
    forEachCase((nodes, seed) => {
      const g = isolateOne(nodes, createRng(seed));
      expectExactPartition(nodes, g, [1, nodes.length - 1]);
    });
  });

  it('majority/minority leaves one strict majority and a non-empty minority', () => {
    forEachCase((nodes, seed) => {
      const g = majorityMinority(nodes, createRng(seed));
      const comps = components(nodes, g);
      expect(comps).toHaveLength(2);
      const [small, big] = comps.map((c) => c.length).sort((a, b) => a - b);
      expect(small).toBeGreaterThanOrEqual(1);
      expect(big).toBeGreaterThanOrEqual(majority(nodes.length));
      expectExactPartition(nodes, g, [small, big]);
    });
  });

  it('majority/minority draws more than one minority size when the cluster allows it', () => {
    const seen = new Set<number>();
    for (const seed of seeds) {
      const comps = components(names(9), majorityMinority(names(9), createRng(seed)));
      seen.add(Math.min(...comps.map((c) => c.length)));
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('bridge: one node reaches everyone, the other two sides cannot hear each other', () => {
    forEachCase((nodes, seed) => {
      const g = bridge(nodes, createRng(seed));
      expect(isSymmetric(nodes, g)).toBe(true);
      const m = twoWayConnectivity(nodes, g);
      const bridges = nodes.filter((a) => nodes.every((b) => m[a][b]));
      expect(bridges).toHaveLength(1);
      const rest = nodes.filter((a) => a !== bridges[0]);
      expectExactPartition(rest, g, [Math.floor(rest.length / 2), Math.ceil(rest.length / 2)]);
    });
  });

  it('majorities ring: every node sees a majority, no two see the same one (only the middle of the 3-node path sees all)', () => {
    forEachCase((nodes, seed) => {
      const g = majoritiesRing(nodes, createRng(seed));
      expect(isSymmetric(nodes, g)).toBe(true);
      const views = nodes.map((node) => visibleFrom(nodes, g, node));
      for (const view of views) expect(view.length).toBeGreaterThanOrEqual(majority(nodes.length));
      expect(new Set(views.map((v) => v.join(','))).size).toBe(nodes.length);
      const seeingAll = views.filter((v) => v.length === nodes.length).length;
      expect(seeingAll).toBe(nodes.length === 3 ? 1 : 0);
    });
  });

  it('asymmetric drops in one direction only, and some pair is cut', () => {
    forEachCase((nodes, seed) => {
      const g = asymmetric(nodes, createRng(seed));
      const m = connectivity(nodes, g);
      let cut = 0;
      for (const a of nodes) {
        for (const b of nodes) {
          if (!m[a][b]) {
            cut++;
            expect(m[b][a]).toBe(true);
          }
        }
      }
      expect(cut).toBeGreaterThan(0);
      // The first half hears nobody from the second; the second hears everyone.
      const deaf = Object.keys(g);
      const unheard = grudgeNodes(g).filter((node) => !deaf.includes(node));
      expect(deaf.length + unheard.length).toBe(nodes.length);
      for (const a of deaf) for (const b of unheard) expect(m[b][a]).toBe(false);
    });
  });

  it('complete cuts every node from every other', () => {
    for (const n of sizes) {
      const nodes = names(n);
      expectExactPartition(nodes, complete(nodes), nodes.map(() => 1));
    }
  });

  it('every shape is deterministic for a seed and varies across seeds', () => {
    for (const shape of shapeNames) {
      const nodes = names(7);
      expect(makeGrudge(shape, nodes, createRng(42))).toEqual(makeGrudge(shape, nodes, createRng(42)));
      if (shape === 'complete') continue;
      const distinct = new Set(seeds.map((seed) => JSON.stringify(makeGrudge(shape, nodes, createRng(seed)))));
      expect(distinct.size).toBeGreaterThan(1);
    }
  });

  it('every shape yields a valid, non-empty grudge at every size', () => {
    forEachCase((nodes, seed) => {
      for (const shape of shapeNames) {
        const g = makeGrudge(shape, nodes, createRng(seed));
        expect(() => validateGrudge(nodes, g)).not.toThrow();
        expect(Object.keys(g).length).toBeGreaterThan(0);
      }
    });
  });

  it('rejects too few nodes and duplicates with a fix', () => {
    expect(() => bridge(names(2), createRng(1))).toThrow(/needs at least 3 nodes, got 2; use --nodes 3/);
    expect(() => randomHalves(['n1', 'n1'], createRng(1))).toThrow(/duplicate node names/);
    expect(() => makeGrudge('nope' as never, names(3), createRng(1))).toThrow(/Unknown partition shape "nope"; expected one of: halves/);
  });

  it('grudgeFromComponents leaves unlisted nodes untouched', () => {
    expect(grudgeFromComponents([['n1'], ['n2', 'n3']])).toEqual({ n1: ['n2', 'n3'], n2: ['n1'], n3: ['n1'] });
  });
});

describe('flapping', () => {
  it('toggles the grudge on and off every period', () => {
    const g = { n1: ['n2'], n2: ['n1'] };
    const steps = flapSchedule(g, 300);
    const first = Array.from({ length: 5 }, () => steps.next().value);
    expect(first.map((s) => s.atMs)).toEqual([0, 300, 600, 900, 1200]);
    expect(first.map((s) => Object.keys(s.grudge).length > 0)).toEqual([true, false, true, false, true]);
    expect(first[2].grudge).toEqual(g);
  });

  it('rejects a non-positive period', () => {
    expect(() => flapSchedule({}, 0).next()).toThrow(/positive number of ms, got 0/);
  });
});
