// Synthetic runs for the report's tests and benchmark: a seeded, realistic-looking lww history (workers
// bound to nodes, a partition that makes the minority fail and time out, a clock nemesis with offsets,
// the final heal and final reads) plus matching results and node stats. It exercises every part of
// the report without a cluster; real runs come from harness/interpreter.
import { createRng } from '../rng.ts';
import type { NemesisValue, Op } from '../history.ts';
import type { NodeStats, RunResults } from '../results.ts';
import { countOps } from '../results.ts';
import { mergeValid } from '../../checkers/types.ts';
import type { CheckResult } from '../../checkers/types.ts';

export interface SyntheticOptions {
  /** Client operations (each is an invoke and a completion). @default 2000 */
  readonly ops?: number;
  /** Concurrent workers, spread over the nodes. @default 10 */
  readonly workers?: number;
  /** @default 5 */
  readonly nodeCount?: number;
  /** @default 42 */
  readonly seed?: number;
  /** Whether to run the partition and clock faults (and make the verdict invalid). @default true */
  readonly faults?: boolean;
}

export interface SyntheticRun {
  readonly test: Record<string, unknown>;
  readonly history: Op[];
  readonly results: RunResults;
  readonly nodeStats: Record<string, NodeStats>;
}

type Draft = Omit<Op, 'index'> & { order: number };

const ms = 1e6;

/** Builds a synthetic run; the same options always give the same run. */
export function syntheticRun(options: SyntheticOptions = {}): SyntheticRun {
  const opCount = options.ops ?? 2000;
  const workers = options.workers ?? 10;
  const nodes = Array.from({ length: options.nodeCount ?? 5 }, (_, i) => `n${i + 1}`);
  const seed = options.seed ?? 42;
  const faults = options.faults ?? true;
  const rng = createRng(seed);
  const perWorker = Math.ceil(opCount / workers);
  // The plan: mean step per op ~6 ms, so the run lasts about perWorker × 6 ms.
  const plannedMs = perWorker * 6;
  const partition = { start: plannedMs * 0.3, stop: plannedMs * 0.5 };
  const clock = { start: plannedMs * 0.6, bump: plannedMs * 0.68, stop: plannedMs * 0.75 };
  const minority = new Set(nodes.slice(0, Math.floor(nodes.length / 2)));
  const drafts: Draft[] = [];
  let order = 0;
  const add = (d: Omit<Draft, 'order'>) => drafts.push({ ...d, order: order++ });

  let made = 0;
  let lastMs = 0;
  for (let w = 0; w < workers; w++) {
    const node = nodes[w % nodes.length];
    let process = w;
    let t = rng.next() * 5;
    for (let k = 0; k < perWorker && made < opCount; k++, made++) {
      const write = rng.next() < 0.6;
      const entity = `e${rng.int(20)}`;
      const value = write ? { entity, component: 'pos', value: `p${process}-${k}`, requestId: `r${w}-${k}` } : { entity, component: 'pos' };
      const cut = faults && minority.has(node) && t >= partition.start && t < partition.stop;
      let latency = 0.5 + -Math.log(1 - rng.next()) * 2;
      let type: 'ok' | 'fail' | 'info' = 'ok';
      let error: string | undefined;
      if (cut && rng.next() < 0.5) {
        if (rng.next() < 0.6) {
          type = 'fail';
          error = 'UNAVAILABLE: no quorum of peers reachable';
        } else {
          type = 'info';
          latency = 1000;
          error = 'DEADLINE_EXCEEDED: deadline exceeded after 1000ms';
        }
      }
      add({ time: Math.round(t * ms), process, node, type: 'invoke', f: write ? 'write' : 'read', value });
      t += latency;
      const done = type === 'ok' ? (write ? { ...value, ts: hlc(t, k, node) } : { ...value, value: `p${rng.int(workers)}-${rng.int(perWorker)}`, ts: hlc(t, k, node) }) : value;
      add({ time: Math.round(t * ms), process, node, type, f: write ? 'write' : 'read', value: done, ...(error ? { error } : {}) });
      if (type === 'info') process += workers;
      t += rng.next() * 6;
    }
    lastMs = Math.max(lastMs, t);
  }

  const nemesis = (atMs: number, f: string, value: NemesisValue, took = 2) => {
    add({ time: Math.round(atMs * ms), process: 'nemesis', type: 'invoke', f, value });
    add({ time: Math.round((atMs + took) * ms), process: 'nemesis', type: 'info', f, value });
  };
  if (faults) {
    const grudge: Record<string, string[]> = {};
    for (const n of nodes) grudge[n] = nodes.filter((m) => minority.has(n) !== minority.has(m));
    // What the partition nemesis records: the probe's one-way matrix and whether it matched the grudge.
    const probe = (g: Record<string, string[]>) => Object.fromEntries(nodes.map((from) => [from, Object.fromEntries(nodes.map((to) => [to, from === to || !(g[to] ?? []).includes(from)]))]));
    nemesis(partition.start, 'start-partition', { grudge, probe: probe(grudge), verified: true });
    nemesis(partition.stop, 'stop-partition', { grudge: {}, probe: probe({}), verified: true });
    nemesis(clock.start, 'start-clock', { nodes: ['n3', 'n4'], offsets: { n3: 5000, n4: -3000 } });
    nemesis(clock.bump, 'bump-clock', { nodes: ['n3'], offsets: { n3: 12000 } });
    nemesis(clock.stop, 'stop-clock', { nodes: ['n3', 'n4'], offsets: { n3: 0, n4: 0 } });
  }
  const healAt = lastMs + 5;
  nemesis(healAt, 'heal', {}, 3);
  const finalReadAt = healAt + 20;
  nodes.forEach((n, i) => {
    // Every node holds the same replicated write except n1, which kept its own when faults ran.
    const stale = faults && i === 0;
    const state = { e1: { components: { pos: { value: stale ? 'p3-41' : 'p7-2', ts: stale ? hlc(finalReadAt - 400, 3, 'n1') : hlc(finalReadAt - 300, 7, 'n4'), kind: 'lww' } }, counters: {} } };
    add({ time: Math.round((finalReadAt + i * 0.2) * ms), process: 1000 + i, node: n, type: 'invoke', f: 'final-read', value: { round: 0 } });
    add({ time: Math.round((finalReadAt + 4 + i * 0.2) * ms), process: 1000 + i, node: n, type: 'ok', f: 'final-read', value: { round: 0, state } });
  });

  drafts.sort((a, b) => a.time - b.time || a.order - b.order);
  const history: Op[] = drafts.map(({ order: _order, ...d }, index) => ({ index, ...d }));

  const finalReads = history.filter((op) => op.f === 'final-read' && op.type === 'ok');
  const firstOkWrite = history.find((op) => op.f === 'write' && op.type === 'ok' && op.node === nodes[0]);
  const checkers: Record<string, CheckResult> = faults
    ? {
        convergence: {
          valid: false,
          'converged-after-ms': null,
          anomalies: [
            {
              type: 'non-converged',
              ops: finalReads.map((op) => op.index),
              message: `Nodes disagree on e1/pos after ${nodes.length} final reads: n1 holds "p3-41", the others "p7-2".`,
              key: 'e1/pos',
              values: Object.fromEntries(finalReads.map((op) => [op.node!, (op.value as { state: Record<string, { components: Record<string, unknown> }> }).state.e1.components.pos])),
            },
          ],
        },
        'lost-writes': {
          valid: false,
          'acknowledged-writes': history.filter((op) => op.f === 'write' && op.type === 'ok').length,
          anomalies: firstOkWrite
            ? [{ type: 'lost', ops: [firstOkWrite.index, finalReads[1].index], message: `Acknowledged write ${JSON.stringify((firstOkWrite.value as { value: string }).value)} to ${(firstOkWrite.value as { entity: string }).entity}/pos is in no node's final state, and no later write superseded it.` }]
            : [],
        },
        linearizability: { valid: 'unknown', error: 'Budget exceeded: key e4/pos needed more than 2000 ms of search' },
        perf: { valid: true, 'latency-p99-ms': 9.4 },
        faults: {
          valid: true,
          packages: {
            partition: { named: true, starts: { total: 1, errors: 0, verified: 1 }, stops: { total: 1, errors: 0, verified: 1 }, firstStartMs: partition.start + 2, firstStopMs: partition.stop + 2, ran: true },
            clock: { named: true, starts: { total: 2, errors: 0, verified: 2 }, stops: { total: 1, errors: 0, verified: 1 }, firstStartMs: clock.start + 2, firstStopMs: clock.stop + 2, ran: true },
          },
          notRan: [],
          unverifiedStarts: [],
        },
      }
    : { convergence: { valid: true, 'converged-after-ms': 12 }, 'lost-writes': { valid: true }, perf: { valid: true } };

  const durationMs = Math.round(history[history.length - 1].time / ms);
  const startTime = '2026-11-22T15:30:12.345Z';
  const nemesisNames = faults ? ['partition', 'clock'] : [];
  const command = `npm run jepsen -- --workload lww --nodes ${nodes.length} --concurrency ${workers}${faults ? ' --nemesis partition,clock' : ''} --seed ${seed}`;
  const results: RunResults = {
    formatVersion: 1,
    valid: mergeValid(Object.values(checkers).map((c) => c.valid)),
    test: { name: 'lww-synthetic', seed, workload: 'lww', nemesis: nemesisNames, nemesisRan: nemesisNames, nodes, startTime, command },
    checkers,
    durationMs,
    recoveryMs: 24,
    opCounts: countOps(history),
    versions: { harness: '0.1.0', node: 'v24.21.0' },
  };
  const nodeStats: Record<string, NodeStats> = Object.fromEntries(
    nodes.map((n, i) => {
      const writes = history.filter((op) => op.node === n && op.f === 'write' && op.type === 'ok').length;
      const meshMessages = writes * (nodes.length - 1) + 40 * (i + 1);
      return [n, { node: n, writes, relaysSent: writes * (nodes.length - 1), relaysReceived: meshMessages - writes, echoesSuppressed: 3 * writes, antiEntropyRounds: 50, keysRepaired: minority.has(n) ? 17 + i : i, skewEvents: n === 'n3' ? 4 : 0, watcherDrops: 0, meshMessages, messagesPerWrite: writes ? meshMessages / writes : 0, duplicateRequests: 1, meshThrottled: 0, fsyncs: writes }];
    }),
  );
  const test = { name: 'lww-synthetic', seed, workload: 'lww', nemesis: nemesisNames, nodes, concurrency: workers, timeLimitS: Math.round(durationMs / 1000), recoveryMs: 10_000, command };
  return { test, history, results: { ...results, stats: nodeStats }, nodeStats };
}

function hlc(atMs: number, logical: number, node: string): string {
  return `${String(Math.round(1_790_000_000_000 + atMs)).padStart(15, '0')}:${String(logical % 100000).padStart(5, '0')}:${node}`;
}
