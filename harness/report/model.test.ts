// The report model: fault windows, clock offsets, timeline lanes, buckets and per-node values are the
// numbers the report draws, so they are checked here on small hand-written histories.
import { describe, expect, it } from 'vitest';
import type { Op } from '../history.ts';
import type { RunResults } from '../results.ts';
import { bucketWidth, buckets, buildModel, clockSeries, faultWindows, nemesisEvents, nodeValues, quantile, timeline } from './model.ts';

const ms = 1e6;
let next = 0;
function op(timeMs: number, process: Op['process'], type: Op['type'], f: string, value: unknown = {}, node?: string, error?: string): Op {
  return { index: next++, time: timeMs * ms, process, type, f, value, ...(node ? { node } : {}), ...(error ? { error } : {}) };
}
function history(build: () => Op[]): Op[] {
  next = 0;
  return build();
}

const results = (checkers: RunResults['checkers'] = {}): RunResults => ({
  formatVersion: 1,
  valid: true,
  test: { name: 't', seed: 1, workload: 'lww', nemesis: ['partition'], nodes: ['n1', 'n2', 'n3'], startTime: '2026-11-22T15:30:12.345Z' },
  checkers,
  durationMs: 1,
  opCounts: { ok: 0, fail: 0, info: 0 },
});

describe('nemesis events and fault windows', () => {
  const h = history(() => [
    op(100, 'nemesis', 'invoke', 'start-partition', { grudge: { n1: ['n2', 'n3'], n2: ['n1'], n3: ['n1'] } }),
    op(103, 'nemesis', 'info', 'start-partition', { grudge: { n1: ['n2', 'n3'], n2: ['n1'], n3: ['n1'] } }),
    op(200, 'nemesis', 'invoke', 'start-clock', { offsets: { n2: 500 } }),
    op(201, 'nemesis', 'info', 'start-clock', { offsets: { n2: 500 } }),
    op(300, 'nemesis', 'invoke', 'stop-partition', {}),
    op(305, 'nemesis', 'info', 'stop-partition', {}),
    op(350, 'nemesis', 'info', 'bump-clock', { offsets: { n3: -2000 } }),
    op(400, 'nemesis', 'invoke', 'start-kill', { nodes: ['n3'] }),
    op(401, 'nemesis', 'info', 'start-kill', { nodes: ['n3'] }, undefined, 'n3: docker kill exited 1'),
    op(500, 'nemesis', 'invoke', 'heal', {}),
    op(510, 'nemesis', 'info', 'heal', {}),
    op(600, 'nemesis', 'invoke', 'start-pause', { nodes: ['n1'] }),
  ]);
  const events = nemesisEvents(h);

  it('pairs invokes with completions and keeps a lone info op and an unfinished invoke', () => {
    expect(events.map((e) => [e.f, e.invokeMs, e.timeMs])).toEqual([
      ['start-partition', 100, 103],
      ['start-clock', 200, 201],
      ['stop-partition', 300, 305],
      ['bump-clock', 350, 350],
      ['start-kill', 400, 401],
      ['heal', 500, 510],
      ['start-pause', 600, 600],
    ]);
    expect(events[0].summary).toBe('n1 ⊘ n2,n3; n2 ⊘ n1; n3 ⊘ n1');
    expect(events[1].offsets).toEqual({ n2: 500 });
    expect(events[4].error).toBe('n3: docker kill exited 1');
  });

  it('opens a window at start-x, closes it at stop-x or heal, and runs an unstopped one to the end', () => {
    const w = faultWindows(events, 700);
    expect(w.map((x) => [x.kind, x.startMs, x.endMs, x.startOp, x.stopOp])).toEqual([
      ['partition', 103, 305, 1, 5],
      ['clock', 201, 510, 3, 10],
      ['kill', 401, 510, 8, 10],
      ['pause', 600, 700, 11, undefined],
    ]);
    expect(w[0].label).toBe('partition: n1 ⊘ n2,n3; n2 ⊘ n1; n3 ⊘ n1');
    expect(w[2].error).toBe('n3: docker kill exited 1');
  });

  it('builds clock offsets as a step function that heal resets', () => {
    const c = clockSeries(events, ['n1', 'n2', 'n3'], 700)!;
    expect(c.nodes).toEqual(['n1', 'n2', 'n3']);
    expect(c.t).toEqual([0, 201, 350, 510, 700]);
    expect(c.offsets).toEqual([
      [0, 0, 0, 0, 0],
      [0, 500, 500, 0, 0],
      [0, 0, -2000, 0, 0],
    ]);
  });

  it('draws a strobe step by step: each step at its time into the strobe, then the offsets it ended with', () => {
    const strobe = { nodes: ['n2'], deltaMs: 300, offsets: { n2: 0 }, elapsedMs: 250, steps: [{ atMs: 10, offsets: { n2: 300 } }, { atMs: 110, offsets: { n2: 0 } }, { atMs: 210, offsets: { n2: 300 } }] };
    const ev = nemesisEvents(history(() => [op(1000, 'nemesis', 'info', 'strobe-clock', strobe)]));
    expect(ev[0].steps).toEqual([{ timeMs: 760, offsets: { n2: 300 } }, { timeMs: 860, offsets: { n2: 0 } }, { timeMs: 960, offsets: { n2: 300 } }]);
    const c = clockSeries(ev, ['n1', 'n2'], 2000)!;
    expect(c.t).toEqual([0, 760, 860, 960, 1000, 2000]);
    expect(c.offsets[1]).toEqual([0, 300, 0, 300, 0, 0]);
  });

  it('has no clock series when no op carried offsets', () => {
    expect(clockSeries(nemesisEvents(history(() => [op(1, 'nemesis', 'info', 'start-partition', { grudge: {} })])), ['n1'], 10)).toBeNull();
  });
});

describe('faults and probes', () => {
  it('lists each package from the faults checker, and every partition probe, also those of a node that came back', () => {
    const probe = { n1: { n1: true, n2: false }, n2: { n1: true, n2: true } };
    const h = history(() => [
      op(100, 'nemesis', 'info', 'start-partition', { grudge: { n2: ['n1'] }, probe, verified: true, excluded: { n3: 'paused' } }),
      op(200, 'nemesis', 'info', 'stop-pause', { nodes: ['n3'], reapplied: { n3: { partition: { grudge: { n2: ['n1'] }, probe, verified: false, unverified: 'n3→n2 is cut' } } } }),
      op(300, 'nemesis', 'info', 'stop-partition', { grudge: {} }),
    ]);
    const packages = {
      partition: { named: true, starts: { total: 1, errors: 0, verified: 1 }, stops: { total: 1, errors: 0, verified: 0 }, firstStartMs: 100, firstStopMs: 300, ran: true },
      kill: { named: true, starts: { total: 0, errors: 0, verified: 0 }, stops: { total: 0, errors: 0, verified: 0 }, firstStartMs: null, firstStopMs: null, ran: false, why: 'never drawn' },
    };
    const m = buildModel(h, results({ faults: { valid: 'unknown', packages } }), undefined);
    expect(m.faults.map((f) => [f.name, f.ran, f.why])).toEqual([['partition', true, undefined], ['kill', false, 'never drawn']]);
    expect(m.probes).toEqual([
      { index: 0, f: 'start-partition', timeMs: 100, probe, grudge: { n2: ['n1'] }, verified: true, excluded: { n3: 'paused' } },
      { index: 1, f: 'stop-pause: n3 came back', timeMs: 200, probe, grudge: { n2: ['n1'] }, verified: false, unverified: 'n3→n2 is cut', node: 'n3' },
    ]);
    expect(buildModel(h, results(), undefined).faults).toEqual([]);
  });
});

describe('timeline', () => {
  it('puts a process that ended in info and its successor in one lane, and marks ops without completion', () => {
    const h = history(() => [
      op(0, 0, 'invoke', 'write', { entity: 'e1' }, 'n1'),
      op(0, 1, 'invoke', 'read', {}, 'n2'),
      op(5, 0, 'ok', 'write', { entity: 'e1' }, 'n1'),
      op(6, 1, 'info', 'read', {}, 'n2', 'DEADLINE_EXCEEDED'),
      op(7, 0, 'invoke', 'write', {}, 'n1'),
      op(8, 3, 'invoke', 'read', {}, 'n2'), // process 1's successor
      op(9, 0, 'fail', 'write', {}, 'n1', 'UNAVAILABLE'),
      op(12, 3, 'ok', 'read', {}, 'n2'),
      op(13, 0, 'invoke', 'read', {}, 'n1'),
    ]);
    const fs: string[] = [];
    const { lanes, ops } = timeline(h, 20, (f) => (fs.includes(f) ? fs.indexOf(f) : fs.push(f) - 1));
    expect(lanes.map((l) => [l.node, l.processes, l.label])).toEqual([
      ['n1', [0], 'n1 · p0'],
      ['n2', [1, 3], 'n2 · p1 +1'],
    ]);
    expect(ops.laneStart).toEqual([0, 3, 5]);
    expect(ops.lane).toEqual([0, 0, 0, 1, 1]);
    expect(ops.startMs).toEqual([0, 7, 13, 0, 8]);
    expect(ops.endMs).toEqual([5, 9, 20, 6, 12]);
    expect(ops.type).toEqual([0, 1, 3, 2, 0]);
    expect(ops.invoke).toEqual([0, 4, 8, 1, 5]);
    expect(ops.done).toEqual([2, 6, -1, 3, 7]);
    expect(ops.f.map((i) => fs[i])).toEqual(['write', 'write', 'read', 'read', 'read']);
  });
});

describe('buckets', () => {
  it('picks nice widths', () => {
    expect(bucketWidth(15_000, 150)).toBe(100);
    expect(bucketWidth(31_000, 150)).toBe(500);
    expect(bucketWidth(10, 150)).toBe(1);
  });

  it('computes nearest-rank quantiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([quantile(xs, 0.5), quantile(xs, 0.95), quantile(xs, 0.99), quantile([7], 0.99)]).toEqual([50, 95, 99, 7]);
  });

  it('counts completions per second by outcome, availability, and ok latency quantiles', () => {
    // Width 1 ms over 2 ms: bucket 0 has two ok ops (latency 0.2, 0.6) and one fail; bucket 1 has one info.
    const ops = {
      lane: [0, 0, 1, 1],
      startMs: [0, 0.3, 0, 1],
      endMs: [0.2, 0.9, 0.5, 1.5],
      type: [0, 0, 1, 2],
      f: [0, 0, 0, 0],
      invoke: [0, 1, 2, 3],
      done: [4, 5, 6, 7],
      laneStart: [0, 2, 4],
    };
    const b = buckets(ops, 2, 2);
    expect(b.widthMs).toBe(1);
    expect(b.t).toEqual([0, 1]);
    expect(b.ok).toEqual([2000, 0]);
    expect(b.fail).toEqual([1000, 0]);
    expect(b.info).toEqual([0, 1000]);
    expect(b.availability).toEqual([66.667, 0]);
    expect(b.p50).toEqual([0.2, null]);
    expect(b.p99).toEqual([0.6, null]);
  });
});

describe('nodeValues', () => {
  it('finds anomalies with a per-node field and renders each value as text', () => {
    const r = results({
      convergence: {
        valid: false,
        anomalies: [
          { type: 'non-converged', ops: [10, 11], message: 'disagree', key: 'e1/pos', values: { n1: { value: 'a', ts: '1' }, n2: 'b' } },
          { type: 'slow', ops: [], message: 'no per-node map here', count: 3 },
        ],
      },
      counters: { valid: false, anomalies: [{ type: 'diverged', ops: [12], message: 'm', entity: 'e2', counter: 'hits', byNode: { n3: 4, n1: 5 } }] },
    });
    expect(nodeValues(r, ['n1', 'n2', 'n3'])).toEqual([
      { checker: 'convergence', key: 'e1/pos', message: 'disagree', ops: [10, 11], values: { n1: 'value: a\nts: 1', n2: 'b' } },
      { checker: 'counters', key: 'e2/hits', message: 'm', ops: [12], values: { n3: '4', n1: '5' } },
    ]);
  });
});

describe('buildModel', () => {
  it('encodes the history as columns with node and f tables, and cuts long values', () => {
    const h = history(() => [
      op(0, 0, 'invoke', 'write', { v: 'x'.repeat(50) }, 'n2'),
      op(1, 0, 'ok', 'write', { v: 'x'.repeat(50) }, 'n2'),
      op(2, 'nemesis', 'info', 'start-partition', { grudge: { n1: ['n2'] } }),
      op(3, 4, 'invoke', 'final-read', { round: 0 }, 'n9'),
    ]);
    const m = buildModel(h, results({ perf: { valid: true }, x: { valid: false, anomalies: [{ type: 'a', ops: [3, 1], message: '' }] } }), undefined, { maxValueChars: 20 });
    expect(m.nodes).toEqual(['n1', 'n2', 'n3', 'n9']);
    expect(m.history.index).toBeNull();
    expect(m.history.process).toEqual([0, 0, -1, 4]);
    expect(m.history.node).toEqual([1, 1, -1, 3]);
    expect(m.history.type).toEqual([0, 1, 3, 0]);
    expect(m.history.f.map((i) => m.fs[i])).toEqual(['write', 'write', 'start-partition', 'final-read']);
    expect(m.history.value[0]).toMatch(/^\{"v":"x{14}… \(58 chars; full op in history\.jsonl\)$/);
    expect(m.history.value[3]).toBe('{"round":0}');
    expect(m.anomalyOps).toEqual([1, 3]);
    expect(m.endMs).toBe(3);
    expect(m.windows).toHaveLength(1);
    expect(m.stats).toBeNull();
  });
});
