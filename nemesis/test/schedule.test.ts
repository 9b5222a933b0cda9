// The seeded fault schedules, targets, offsets and the registry's validation, without Docker.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../harness/rng.ts';
import type { ClusterControl, NemesisOp } from '../types.ts';
import { majority, validateGrudge } from '../grudge.ts';
import { autoSchedule, opDueNs, opsBefore, roundOrder, roundShortfall, rounds, targetKinds, targetNodes, walkSchedule, type ScheduledOp } from '../schedule.ts';
import { formatOffset, parseOffset } from '../clock.ts';
import { faultPackageNames, faultPackages, resolveNemeses } from '../index.ts';
import { netemArgs } from '../net.ts';

const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
const options = { nodes, intervalS: 10 };

function take(it: Iterator<NemesisOp>, n: number): NemesisOp[] {
  return Array.from({ length: n }, () => {
    const next = it.next();
    if (next.done) throw new Error('schedule ended');
    return next.value;
  });
}

/** A cluster that must never be touched: resolveNemeses rejects bad names before using it. */
const untouchable = new Proxy({}, {
  get(_target, key) {
    throw new Error(`the cluster was used (${String(key)})`);
  },
}) as ClusterControl;

describe('targets', () => {
  it('draw the promised number of distinct, known nodes', () => {
    for (let seed = 0; seed < 50; seed++) {
      for (const n of [1, 2, 3, 5, 9]) {
        const all = nodes.concat(['n6', 'n7', 'n8', 'n9']).slice(0, n);
        for (const kind of targetKinds) {
          const picked = targetNodes(kind, all, createRng(seed));
          expect(new Set(picked).size).toBe(picked.length);
          expect(picked.every((p) => all.includes(p))).toBe(true);
          expect(picked.length).toBeGreaterThan(0);
          if (kind === 'one') expect(picked).toHaveLength(1);
          if (kind === 'all') expect(picked).toHaveLength(n);
          if (kind === 'majority') expect(picked).toHaveLength(majority(n));
          if (kind === 'minority' && n >= 3) expect(picked.length).toBeLessThan(majority(n));
        }
      }
    }
  });
});

describe('the round-robin schedule', () => {
  it('orders one round as P0, P1, P0, P2, P1, …, P(k-1), P(k-1)', () => {
    expect(roundOrder([])).toEqual([]);
    expect(roundOrder([4])).toEqual([4, 4]);
    expect(roundOrder([1, 0])).toEqual([1, 0, 1, 0]);
    expect(roundOrder([2, 0, 1])).toEqual([2, 0, 2, 1, 0, 1]);
    expect(roundOrder([3, 1, 4, 0, 2])).toEqual([3, 1, 3, 4, 1, 0, 4, 2, 0, 2]);
  });

  it('gives every package its start then its stop each round, stops a fault only after the next one started, and keeps at most two faults on', () => {
    for (let seed = 0; seed < 30; seed++) {
      for (const k of [1, 2, 3, 5, 6]) {
        const it = rounds(k, createRng(seed));
        for (let round = 0; round < 4; round++) {
          const order = Array.from({ length: 2 * k }, () => it.next().value as number);
          const active = new Set<number>();
          const turns = new Map<number, number>();
          order.forEach((p, i) => {
            turns.set(p, (turns.get(p) ?? 0) + 1);
            if (turns.get(p) === 1) active.add(p);
            else {
              // A stop: unless it is the last package, another package has started in between.
              if (k > 1) expect(order.slice(order.indexOf(p) + 1, i).length).toBeGreaterThan(0);
              active.delete(p);
            }
            expect(active.size).toBeLessThanOrEqual(2);
          });
          expect([...turns.values()].every((n) => n === 2)).toBe(true);
          expect(turns.size).toBe(k);
          expect(active.size).toBe(0);
        }
      }
    }
  });

  it('is seeded: the same rng gives the same rounds, another seed another permutation', () => {
    const take = (seed: number) => { const it = rounds(5, createRng(seed)); return Array.from({ length: 30 }, () => it.next().value); };
    expect(take(1)).toEqual(take(1));
    expect(new Set(Array.from({ length: 20 }, (_, s) => JSON.stringify(take(s).slice(0, 10)))).size).toBeGreaterThan(10);
  });

  it('auto schedule: one calm interval first, then one whole round due two intervals before the time limit', () => {
    for (const [limit, k] of [[30, 5], [30, 1], [20, 5], [7, 3], [30, 6], [25, 7]]) {
      const { intervalS, leadS } = autoSchedule(limit, k);
      expect(leadS).toBe(intervalS);
      expect(opsBefore(limit, intervalS, leadS)).toBe(2 * k + 1);
      // The first fault comes after two intervals of calm; the round's last op two intervals before the limit.
      expect(opDueNs(0, intervalS, leadS)).toBe(Math.round(2 * intervalS * 1e9));
      expect(opDueNs(2 * k - 1, intervalS, leadS)).toBeLessThanOrEqual(limit * 1e9 - 2 * intervalS * 1e9 + 1);
    }
    expect(autoSchedule(30, 5).intervalS).toBeCloseTo(30 / 13);
    // Seven packages at 25 s: the first fault 2.94 s in, more than the lag checker's default 1.5 s bound.
    expect(opDueNs(0, autoSchedule(25, 7).intervalS, autoSchedule(25, 7).leadS) / 1e9).toBeCloseTo(2.941, 3);
  });

  it('shifts the whole schedule by a lead', () => {
    expect([0, 1, 2].map((i) => opDueNs(i, 2, 1))).toEqual([3e9, 5e9, 7e9]);
    expect(opsBefore(7, 2, 1)).toBe(2);
    expect(opsBefore(7.5, 2, 1)).toBe(3);
  });

  it('schedules op i at (i + 1) × interval, and none at or after the limit', () => {
    expect([0, 1, 2].map((i) => opDueNs(i, 2.5))).toEqual([2.5e9, 5e9, 7.5e9]);
    expect(opsBefore(10, 2.5)).toBe(3);
    expect(opsBefore(10, 3)).toBe(3);
    expect(opsBefore(30, 10)).toBe(2);
    expect(opsBefore(1, 5)).toBe(0);
    expect(opsBefore(86_400, 0.001)).toBe(86_399_999);
  });

  it('names the packages that miss a start or a stop when a round does not fit', () => {
    const order = roundOrder([3, 1, 4, 0, 2]);
    expect(roundShortfall(order, 10)).toEqual({ noStart: [], noStop: [] });
    expect(roundShortfall(order, 2)).toEqual({ noStart: [4, 0, 2], noStop: [3, 1] });
    expect(roundShortfall(order, 5)).toEqual({ noStart: [0, 2], noStop: [4] });
  });
});

describe('walking the schedule', () => {
  /** Package p's endless start/stop ops on the given targets (one list per start, cycled). */
  const stream = (name: string, targets: string[][]): Iterator<NemesisOp> =>
    (function* () {
      for (let i = 0; ; i++) {
        const nodes = targets[i % targets.length];
        yield { f: `start-${name}`, value: { nodes } };
        yield { f: `stop-${name}`, value: { nodes } };
      }
    })();
  const names = ['kill', 'clock', 'partition'];
  const walk = (targets: string[][][], order: number[], downs: (k: number) => boolean, n = order.length): ScheduledOp[] => {
    const it = walkSchedule(targets.map((t, k) => stream(names[k], t)), order[Symbol.iterator](), (k, op) => (downs(k) ? (op.value.nodes as string[]) : []));
    return Array.from({ length: n }, () => it.next().value as ScheduledOp);
  };
  const show = (ops: ScheduledOp[]) => ops.map((s) => `${s.op.f} ${(s.op.value.nodes as string[]).join(',')}${s.movedAfter ? ' (moved)' : ''}`);

  it('keeps the round order when a start has a target that is up', () => {
    const ops = walk([[['n2']], [['n2', 'n3']], [['n1']]], [0, 1, 0, 2, 1, 2], (k) => k === 0);
    expect(show(ops)).toEqual(['start-kill n2', 'start-clock n2,n3', 'stop-kill n2', 'start-partition n1', 'stop-clock n2,n3', 'stop-partition n1']);
  });

  it('lets the stop of the fault that holds every target down go first, and says so on the start', () => {
    const ops = walk([[['n1', 'n2', 'n3']], [['n2']], [['n1']]], [0, 1, 0, 2, 1, 2], (k) => k === 0);
    expect(show(ops)).toEqual(['start-kill n1,n2,n3', 'stop-kill n1,n2,n3', 'start-clock n2 (moved)', 'start-partition n1', 'stop-clock n2', 'stop-partition n1']);
    expect(ops[2].movedAfter).toBe('stop-kill: every target (n2) was down');
  });

  it('does not move a start whose targets a fault that leaves nodes running touches', () => {
    const ops = walk([[['n1', 'n2', 'n3']], [['n2']], [['n1']]], [0, 1, 0, 2, 1, 2], () => false);
    expect(show(ops)).toEqual(['start-kill n1,n2,n3', 'start-clock n2', 'stop-kill n1,n2,n3', 'start-partition n1', 'stop-clock n2', 'stop-partition n1']);
  });

  it('keeps the order when the next op is not the stop of the fault that holds the targets down', () => {
    // kill (in force on n2) and pause are both in force; clock's start on n2 is next, then partition: nothing to swap with.
    const ops = walk([[['n2']], [['n2']], [['n3']]], [0, 2, 1, 2, 0, 1], (k) => k === 0);
    expect(show(ops)).toEqual(['start-kill n2', 'start-partition n3', 'start-clock n2', 'stop-partition n3', 'stop-kill n2', 'stop-clock n2']);
  });

  it('is what a real run walks: kill, pause and a power loss take their nodes down, the others do not', () => {
    const pkgs = (['kill', 'pause', 'disk', 'clock', 'partition'] as const).map((n) => faultPackages[n](options));
    const kill = pkgs[0].unavailable!({ f: 'start-kill', value: { nodes: ['n1'] } });
    expect(kill).toEqual(['n1']);
    expect(pkgs[1].unavailable!({ f: 'start-pause', value: { nodes: ['n2'] } })).toEqual(['n2']);
    expect(pkgs[2].unavailable!({ f: 'start-disk', value: { fault: 'lose-unsynced', nodes: ['n3'] } })).toEqual(['n3']);
    expect(pkgs[2].unavailable!({ f: 'start-disk', value: { fault: 'eio-fsync', nodes: ['n3'] } })).toEqual([]);
    expect(pkgs[0].unavailable!({ f: 'stop-kill', value: { nodes: ['n1'] } })).toEqual([]);
    expect(pkgs[3].unavailable).toBeUndefined();
    expect(pkgs[4].unavailable).toBeUndefined();
  });
});

describe('fault package schedules', () => {
  for (const name of faultPackageNames) {
    it(`${name}: alternates start and stop ops, deterministically per seed`, () => {
      const pkg = faultPackages[name](options);
      const ops = take(pkg.ops(createRng(9)), 40);
      expect(take(faultPackages[name](options).ops(createRng(9)), 40)).toEqual(ops);
      expect(take(faultPackages[name](options).ops(createRng(10)), 40)).not.toEqual(ops);
      ops.forEach((op, i) => {
        expect(pkg.handles(op)).toBe(true);
        if (i % 2 === 1) expect(op.f).toBe(`stop-${name === 'netem' ? 'packet' : name}`);
        else expect(op.f.startsWith('stop-')).toBe(false);
        expect(op.value.nodes?.length).toBeGreaterThan(0);
        expect(op.value.nodes?.every((n) => nodes.includes(n))).toBe(true);
      });
    });
  }

  it('partition start ops carry valid grudges, and some of them flap', () => {
    const ops = take(faultPackages.partition(options).ops(createRng(3)), 200).filter((op) => op.f === 'start-partition');
    for (const op of ops) {
      expect(() => validateGrudge(nodes, op.value.grudge ?? {})).not.toThrow();
      expect(Object.keys(op.value.grudge ?? {}).length).toBeGreaterThan(0);
    }
    expect(ops.some((op) => typeof op.value.flapPeriodMs === 'number')).toBe(true);
    expect(new Set(ops.map((op) => op.value.shape)).size).toBe(7);
  });

  it('clock start ops give every target an offset, and bump and strobe appear', () => {
    const ops = take(faultPackages.clock(options).ops(createRng(4)), 200).filter((op) => !op.f.startsWith('stop-'));
    expect(new Set(ops.map((op) => op.f))).toEqual(new Set(['start-clock', 'bump-clock', 'strobe-clock']));
    for (const op of ops.filter((o) => o.f === 'start-clock')) {
      expect(Object.keys(op.value.offsets ?? {}).sort()).toEqual([...(op.value.nodes ?? [])].sort());
    }
  });
});

describe('registry', () => {
  it('rejects an unknown name, naming it and listing the valid ones', async () => {
    await expect(resolveNemeses(['partition', 'flood'], untouchable, options)).rejects.toThrow(
      /Unknown fault package "flood"; valid: partition, clock, kill, pause, packet, delay, netem, disk, or all, none/,
    );
    await expect(resolveNemeses(['all', 'kill'], untouchable, options)).rejects.toThrow(/`all`, `none` or a comma list/);
  });

  it('resolves none to no packages', async () => {
    expect(await resolveNemeses('none', untouchable, options)).toEqual([]);
    expect(await resolveNemeses(['none'], untouchable, options)).toEqual([]);
    expect(await resolveNemeses([], untouchable, options)).toEqual([]);
  });
});

describe('clock offsets', () => {
  it('format as libfaketime seconds and parse back', () => {
    expect(formatOffset(30_000)).toBe('+30');
    expect(formatOffset(-1250)).toBe('-1.25');
    expect(formatOffset(500)).toBe('+0.5');
    expect(formatOffset(0)).toBe('+0');
    expect(formatOffset(-7)).toBe('-0.007');
    for (const ms of [0, 1, -1, 999, -30_000, 123_456]) expect(parseOffset(formatOffset(ms))).toBe(ms);
    expect(parseOffset('+2s\n')).toBe(2000);
    expect(() => parseOffset('@2020-01-01')).toThrow(/Expected a libfaketime offset/);
    expect(() => formatOffset(Number.NaN)).toThrow(/Expected a clock offset in ms/);
  });
});

describe('netem arguments', () => {
  it('spell delay, duplicate and reorder as tc netem expects', () => {
    expect(netemArgs({ delayMs: 100, jitterMs: 10 })).toEqual(['delay', '100ms', '10ms']);
    expect(netemArgs({ duplicatePercent: 5 })).toEqual(['duplicate', '5%']);
    expect(netemArgs({ reorderPercent: 25 })).toEqual(['delay', '10ms', 'reorder', '25%', '50%']);
    expect(() => netemArgs({})).toThrow(/needs delayMs/);
  });
});
