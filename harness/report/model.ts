// The report model: pure functions that turn a history and its results into the compact, columnar
// data that report.html embeds and draws (timeline lanes and bars, fault windows, latency and
// throughput buckets, clock offsets, per-node values of non-converged keys, the history table).
// Keeping this apart from the HTML means every number the report shows is unit-tested here.
import { describeDelayLinks, type DelayLinks } from '../../nemesis/delay.ts';
import { faultSpans } from '../../checkers/windows.ts';
import type { Anomaly } from '../../checkers/types.ts';
import type { History, NemesisValue, Op } from '../history.ts';
import type { NodeStats, RunResults } from '../results.ts';
import { delayViews, faultRows, probeViews, type DelayView, type FaultRow, type ProbeView } from './faults.ts';

/** A fault in force: from the completion of start-X (or the first bump) to the completion of stop-X or heal. */
export interface FaultWindow {
  /** The fault family: "partition", "clock", "kill", "pause", "packet", ... */
  readonly kind: string;
  readonly startMs: number;
  readonly endMs: number;
  /** History index of the op that started it. */
  readonly startOp: number;
  /** History index of the op that ended it; absent when it was still in force at the end of the history. */
  readonly stopOp?: number;
  /** A short description, e.g. "n1 ⊘ n3,n4" for a partition. */
  readonly label: string;
  /** Set when the start op reported an error (the fault may be only partly in force). */
  readonly error?: string;
}

/** One nemesis op, with its invoke time when the history has one. */
export interface NemesisEvent {
  readonly index: number;
  readonly invokeMs: number;
  readonly timeMs: number;
  readonly f: string;
  readonly summary: string;
  /** Clock offsets (node → ms) this op reported in force, when it carried any. */
  readonly offsets?: Record<string, number>;
  /** Offsets a strobe set on its way (ms into the run), before the `offsets` it ended with. */
  readonly steps?: readonly { readonly timeMs: number; readonly offsets: Record<string, number> }[];
  readonly error?: string;
}

export interface Lane {
  readonly node: string;
  /** Processes drawn in this lane, in order: a worker's next process continues its lane. */
  readonly processes: number[];
  readonly label: string;
}

/** Client ops as columns, sorted by lane, then start; a lane's ops never overlap. */
export interface TimelineOps {
  readonly lane: number[];
  readonly startMs: number[];
  readonly endMs: number[];
  /** 0 ok, 1 fail, 2 info, 3 pending (no completion in the history). */
  readonly type: number[];
  /** Index into ReportModel.fs. */
  readonly f: number[];
  /** History index of the invoke. */
  readonly invoke: number[];
  /** History index of the completion, -1 when pending. */
  readonly done: number[];
  /** Offsets into the arrays where each lane starts; laneStart[lanes.length] is the total. */
  readonly laneStart: number[];
}

export interface Buckets {
  readonly widthMs: number;
  /** Bucket start times. */
  readonly t: number[];
  /** Completions per second by type. */
  readonly ok: number[];
  readonly fail: number[];
  readonly info: number[];
  /** ok / all completions in the bucket, in percent; null when nothing completed. */
  readonly availability: (number | null)[];
  /** Latency quantiles (ms) of ok ops invoked in the bucket; null when none. */
  readonly p50: (number | null)[];
  readonly p95: (number | null)[];
  readonly p99: (number | null)[];
}

export interface ClockSeries {
  readonly nodes: string[];
  /** Times at which offsets changed (a step function), starting at 0 and ending at the run's end. */
  readonly t: number[];
  /** Per node (same order as nodes), the offset in ms in force from t[i]. */
  readonly offsets: number[][];
}

export interface NodeValues {
  readonly checker: string;
  readonly key: string;
  readonly message: string;
  readonly ops: readonly number[];
  /** Node → the value it holds, as display text. */
  readonly values: Record<string, string>;
}

/** The history as columns; strings are indexes into fs / nodes tables to keep the page small. */
export interface HistoryColumns {
  /** History indexes, or null when every op's index equals its position. */
  readonly index: number[] | null;
  readonly timeMs: number[];
  /** Process number, -1 for the nemesis. */
  readonly process: number[];
  /** Index into ReportModel.nodes, -1 when absent. */
  readonly node: number[];
  /** 0 invoke, 1 ok, 2 fail, 3 info. */
  readonly type: number[];
  readonly f: number[];
  /** JSON of the value, cut to maxValueChars. */
  readonly value: string[];
  /** Error text or 0. */
  readonly error: (string | 0)[];
}

export interface ReportModel {
  readonly endMs: number;
  readonly nodes: string[];
  readonly fs: string[];
  readonly lanes: Lane[];
  readonly ops: TimelineOps;
  readonly nemesis: NemesisEvent[];
  readonly windows: FaultWindow[];
  readonly buckets: Buckets;
  readonly clock: ClockSeries | null;
  readonly stats: Record<string, NodeStats> | null;
  readonly nodeValues: NodeValues[];
  /** History indexes named by any anomaly, for highlighting. */
  readonly anomalyOps: number[];
  readonly history: HistoryColumns;
  /** Per fault package: ran or not, and why (from the faults checker). */
  readonly faults: FaultRow[];
  /** Every partition probe (start, stop, re-apply on a node that came back). */
  readonly probes: ProbeView[];
  /** Every delay start, link by link, with the handshake time its sender measured. */
  readonly delays: DelayView[];
}

export type { DelayView, FaultRow, ProbeView };

export interface ModelOptions {
  /** Values longer than this are cut in the history table (the full op is in history.jsonl). @default 400 */
  readonly maxValueChars?: number;
  /** Roughly how many buckets the latency and throughput charts get. @default 150 */
  readonly targetBuckets?: number;
}

const typeCode: Record<string, number> = { invoke: 0, ok: 1, fail: 2, info: 3 };

/** Nanoseconds → milliseconds, kept to microseconds so the embedded JSON stays short. */
export function nsToMs(ns: number): number {
  return Math.round(ns / 1e3) / 1e3;
}

/** Pairs nemesis invokes with their completions, in time order. A lone info op is its own event. */
export function nemesisEvents(history: History): NemesisEvent[] {
  const pending = new Map<string, Op>();
  const events: NemesisEvent[] = [];
  const push = (op: Op, inv: Op | undefined) => {
    const value = op.value as NemesisValue | undefined;
    const offsets = value?.offsets && typeof value.offsets === 'object' && Object.keys(value.offsets).length > 0 ? value.offsets : undefined;
    // A strobe reports its steps relative to its own start, which is its completion minus its length.
    const rawSteps = Array.isArray(value?.steps) ? (value.steps as { atMs?: unknown; offsets?: unknown }[]) : [];
    const strobeStartMs = nsToMs(op.time) - (typeof value?.elapsedMs === 'number' ? value.elapsedMs : 0);
    const steps = rawSteps
      .filter((s) => typeof s.atMs === 'number' && s.offsets !== null && typeof s.offsets === 'object')
      .map((s) => ({ timeMs: strobeStartMs + (s.atMs as number), offsets: s.offsets as Record<string, number> }));
    events.push({
      index: op.index,
      invokeMs: nsToMs((inv ?? op).time),
      timeMs: nsToMs(op.time),
      f: op.f,
      summary: summarizeNemesis(value),
      ...(offsets ? { offsets } : {}),
      ...(steps.length ? { steps } : {}),
      ...(op.error ? { error: op.error } : {}),
    });
  };
  for (const op of history) {
    if (op.process !== 'nemesis') continue;
    if (op.type === 'invoke') {
      pending.set(op.f, op);
      continue;
    }
    const inv = pending.get(op.f);
    pending.delete(op.f);
    push(op, inv);
  }
  // An invoke without a completion (the run stopped mid-fault) still marks when the fault began.
  for (const inv of pending.values()) push(inv, inv);
  return events.sort((a, b) => a.timeMs - b.timeMs || a.index - b.index);
}

/** A short human description of a nemesis value: the partition, offsets or nodes it acted on. */
export function summarizeNemesis(value: NemesisValue | undefined): string {
  if (!value || typeof value !== 'object') return '';
  if (value.grudge) {
    return Object.entries(value.grudge)
      .filter(([, dropped]) => dropped.length > 0)
      .map(([node, dropped]) => `${node} ⊘ ${dropped.join(',')}`)
      .join('; ');
  }
  if (value.offsets) {
    return Object.entries(value.offsets)
      .map(([node, ms]) => `${node} ${ms >= 0 ? '+' : ''}${ms}ms`)
      .join(', ');
  }
  // The delay fault's links (sender → peer → delay); packet's `links` is a grudge (node → peers), shown by its nodes.
  const links = value.links as Record<string, unknown> | undefined;
  if (links && typeof links === 'object' && Object.values(links).some((peers) => peers !== null && typeof peers === 'object' && !Array.isArray(peers))) {
    return describeDelayLinks(links as DelayLinks);
  }
  if (value.nodes) return value.nodes.join(',');
  return '';
}

/** Fault windows from nemesis events (the rule is checkers/windows.ts); a window still open at the end runs to endMs. */
export function faultWindows(events: readonly NemesisEvent[], endMs: number): FaultWindow[] {
  return faultSpans(events)
    .map(({ kind, start, stop }) => ({
      kind,
      startMs: start.timeMs,
      endMs: stop ? stop.timeMs : endMs,
      startOp: start.index,
      ...(stop ? { stopOp: stop.index } : {}),
      label: start.summary ? `${kind}: ${start.summary}` : kind,
      ...(start.error ? { error: start.error } : {}),
    }))
    .sort((a, b) => a.startMs - b.startMs);
}

/** Clock offsets per node as a step function, or null when no nemesis op carried offsets. */
export function clockSeries(events: readonly NemesisEvent[], nodes: readonly string[], endMs: number): ClockSeries | null {
  const withOffsets = events.filter((e) => e.offsets);
  if (withOffsets.length === 0) return null;
  const names = [...nodes];
  for (const e of withOffsets) for (const n of Object.keys(e.offsets!)) if (!names.includes(n)) names.push(n);
  const current = new Map(names.map((n) => [n, 0]));
  const t = [0];
  const offsets = names.map(() => [0]);
  for (const e of events) {
    for (const step of e.steps ?? []) {
      for (const [n, ms] of Object.entries(step.offsets)) current.set(n, ms);
      t.push(step.timeMs);
      names.forEach((n, i) => offsets[i].push(current.get(n)!));
    }
    const o = e.offsets;
    if (o) for (const [n, ms] of Object.entries(o)) current.set(n, ms);
    else if (e.f === 'stop-clock' || e.f === 'heal') for (const n of names) current.set(n, 0);
    else continue;
    t.push(e.timeMs);
    names.forEach((n, i) => offsets[i].push(current.get(n)!));
  }
  t.push(Math.max(endMs, t[t.length - 1]));
  names.forEach((n, i) => offsets[i].push(current.get(n)!));
  return { nodes: names, t, offsets };
}

interface ProcInfo {
  readonly process: number;
  readonly node: string;
  firstMs: number;
  lastMs: number;
}

/**
 * Client ops as timeline bars. Processes are packed into lanes: a process that ended in info is
 * replaced by a fresh process on the same node, and that successor continues the same lane, so the
 * timeline has one lane per worker instead of one per (short-lived) process number.
 */
export function timeline(history: History, endMs: number, fIndex: (f: string) => number): { lanes: Lane[]; ops: TimelineOps } {
  const pending = new Map<number, Op>();
  const bars: { process: number; startMs: number; endMs: number; type: number; f: number; invoke: number; done: number }[] = [];
  const procs = new Map<number, ProcInfo>();
  for (const op of history) {
    // The harness's watch streams are not client ops: they would only add a lane of dots per node.
    if (op.process === 'nemesis' || op.f.startsWith('watch-')) continue;
    const p = op.process;
    if (!procs.has(p)) procs.set(p, { process: p, node: op.node ?? '', firstMs: nsToMs(op.time), lastMs: nsToMs(op.time) });
    procs.get(p)!.lastMs = nsToMs(op.time);
    if (op.type === 'invoke') {
      pending.set(p, op);
      continue;
    }
    const inv = pending.get(p);
    if (!inv) continue;
    pending.delete(p);
    bars.push({ process: p, startMs: nsToMs(inv.time), endMs: nsToMs(op.time), type: typeCode[op.type] - 1, f: fIndex(inv.f), invoke: inv.index, done: op.index });
  }
  for (const [p, inv] of pending) {
    bars.push({ process: p, startMs: nsToMs(inv.time), endMs, type: 3, f: fIndex(inv.f), invoke: inv.index, done: -1 });
    procs.get(p)!.lastMs = endMs;
  }

  const lanes: (Lane & { lastMs: number })[] = [];
  const laneOf = new Map<number, number>();
  for (const p of [...procs.values()].sort((a, b) => a.firstMs - b.firstMs || a.process - b.process)) {
    let li = lanes.findIndex((l) => l.node === p.node && l.lastMs <= p.firstMs);
    if (li < 0) {
      li = lanes.length;
      lanes.push({ node: p.node, processes: [], label: '', lastMs: 0 });
    }
    lanes[li].processes.push(p.process);
    lanes[li].lastMs = p.lastMs;
    laneOf.set(p.process, li);
  }
  // Lanes are shown grouped by node, in node order, each node's lanes in the order they appeared.
  const order = lanes.map((_, i) => i).sort((a, b) => lanes[a].node.localeCompare(lanes[b].node, 'en', { numeric: true }) || a - b);
  const rank = new Map(order.map((li, r) => [li, r]));
  const sorted: Lane[] = order.map((li) => {
    const l = lanes[li];
    const more = l.processes.length > 1 ? ` +${l.processes.length - 1}` : '';
    return { node: l.node, processes: l.processes, label: `${l.node ? `${l.node} · ` : ''}p${l.processes[0]}${more}` };
  });

  bars.sort((a, b) => rank.get(laneOf.get(a.process)!)! - rank.get(laneOf.get(b.process)!)! || a.startMs - b.startMs);
  const ops: TimelineOps = { lane: [], startMs: [], endMs: [], type: [], f: [], invoke: [], done: [], laneStart: [] };
  let lane = -1;
  for (const b of bars) {
    const l = rank.get(laneOf.get(b.process)!)!;
    while (lane < l) {
      lane++;
      ops.laneStart.push(ops.lane.length);
    }
    ops.lane.push(l);
    ops.startMs.push(b.startMs);
    ops.endMs.push(b.endMs);
    ops.type.push(b.type);
    ops.f.push(b.f);
    ops.invoke.push(b.invoke);
    ops.done.push(b.done);
  }
  while (lane < sorted.length) {
    lane++;
    ops.laneStart.push(ops.lane.length);
  }
  return { lanes: sorted, ops };
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** A "nice" bucket width (1, 2 or 5 × 10^k ms) near durationMs / target, at least 1 ms. */
export function bucketWidth(durationMs: number, target: number): number {
  const raw = Math.max(1, durationMs / Math.max(1, target));
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

/** Throughput, availability and latency quantiles per time bucket. */
export function buckets(ops: TimelineOps, endMs: number, target: number): Buckets {
  const widthMs = bucketWidth(endMs, target);
  const n = Math.max(1, Math.ceil(endMs / widthMs));
  const counts = [new Array<number>(n).fill(0), new Array<number>(n).fill(0), new Array<number>(n).fill(0)];
  const lat: number[][] = Array.from({ length: n }, () => []);
  const at = (ms: number) => Math.min(n - 1, Math.max(0, Math.floor(ms / widthMs)));
  for (let i = 0; i < ops.type.length; i++) {
    const type = ops.type[i];
    if (type === 3) continue;
    counts[type][at(ops.endMs[i])]++;
    if (type === 0) lat[at(ops.startMs[i])].push(ops.endMs[i] - ops.startMs[i]);
  }
  const perS = 1000 / widthMs;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const q = (k: number, p: number) => (lat[k].length ? round(quantile(lat[k], p)) : null);
  for (const l of lat) l.sort((a, b) => a - b);
  return {
    widthMs,
    t: Array.from({ length: n }, (_, k) => k * widthMs),
    ok: counts[0].map((c) => round(c * perS)),
    fail: counts[1].map((c) => round(c * perS)),
    info: counts[2].map((c) => round(c * perS)),
    availability: counts[0].map((ok, k) => {
      const all = ok + counts[1][k] + counts[2][k];
      return all ? round((100 * ok) / all) : null;
    }),
    p50: lat.map((_, k) => q(k, 0.5)),
    p95: lat.map((_, k) => q(k, 0.95)),
    p99: lat.map((_, k) => q(k, 0.99)),
  };
}

/**
 * Anomalies that carry a per-node map (a field whose keys are all node names), such as the
 * convergence checker's non-converged keys, with each node's value as text for a side-by-side table.
 */
export function nodeValues(results: RunResults, nodes: readonly string[]): NodeValues[] {
  const known = new Set(nodes);
  const out: NodeValues[] = [];
  for (const [checker, result] of Object.entries(results.checkers)) {
    for (const a of result.anomalies ?? []) {
      const values = perNodeField(a, known);
      if (!values) continue;
      out.push({ checker, key: anomalyKey(a), message: a.message, ops: a.ops, values: Object.fromEntries(Object.entries(values).map(([n, v]) => [n, display(v)])) });
    }
  }
  return out;
}

function perNodeField(a: Anomaly, nodes: ReadonlySet<string>): Record<string, unknown> | undefined {
  for (const [k, v] of Object.entries(a)) {
    if (k === 'type' || k === 'ops' || k === 'message' || !v || typeof v !== 'object' || Array.isArray(v)) continue;
    const keys = Object.keys(v);
    if (keys.length > 0 && keys.every((n) => nodes.has(n))) return v as Record<string, unknown>;
  }
  return undefined;
}

function anomalyKey(a: Anomaly): string {
  if (typeof a.key === 'string') return a.key;
  const parts = [a.entity, a.component ?? a.counter].filter((p) => typeof p === 'string');
  return parts.length ? parts.join('/') : a.type;
}

/** A value as text; a flat object (such as a FinalComponent) becomes one "key: value" line per field. */
function display(v: unknown): string {
  if (v === undefined) return '(absent)';
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.entries(v)
      .map(([k, x]) => `${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`)
      .join('\n');
  }
  return JSON.stringify(v);
}

/** The history as columns for the table. */
export function historyColumns(history: History, nodeIndex: (n: string) => number, fIndex: (f: string) => number, maxValueChars: number): HistoryColumns {
  const dense = history.every((op, i) => op.index === i);
  const cols: HistoryColumns = { index: dense ? null : [], timeMs: [], process: [], node: [], type: [], f: [], value: [], error: [] };
  for (const op of history) {
    if (!dense) cols.index!.push(op.index);
    cols.timeMs.push(nsToMs(op.time));
    cols.process.push(op.process === 'nemesis' ? -1 : op.process);
    cols.node.push(op.node === undefined ? -1 : nodeIndex(op.node));
    cols.type.push(typeCode[op.type] ?? 3);
    cols.f.push(fIndex(op.f));
    const v = op.value === undefined ? '' : JSON.stringify(op.value);
    cols.value.push(v.length > maxValueChars ? `${v.slice(0, maxValueChars)}… (${v.length} chars; full op in history.jsonl)` : v);
    cols.error.push(op.error ?? 0);
  }
  return cols;
}

/** Builds everything the report draws. */
export function buildModel(history: History, results: RunResults, nodeStats: Record<string, NodeStats> | undefined, options: ModelOptions = {}): ReportModel {
  const maxValueChars = options.maxValueChars ?? 400;
  const targetBuckets = options.targetBuckets ?? 150;
  const nodes = [...results.test.nodes];
  const fs: string[] = [];
  const fMap = new Map<string, number>();
  const fIndex = (f: string) => {
    let i = fMap.get(f);
    if (i === undefined) {
      i = fs.push(f) - 1;
      fMap.set(f, i);
    }
    return i;
  };
  const nodeMap = new Map(nodes.map((n, i) => [n, i]));
  const nodeIndex = (n: string) => {
    let i = nodeMap.get(n);
    if (i === undefined) {
      i = nodes.push(n) - 1;
      nodeMap.set(n, i);
    }
    return i;
  };
  let lastNs = 0;
  for (const op of history) if (op.time > lastNs) lastNs = op.time;
  const endMs = Math.max(nsToMs(lastNs), 1);

  const historyCols = historyColumns(history, nodeIndex, fIndex, maxValueChars);
  const { lanes, ops } = timeline(history, endMs, fIndex);
  const events = nemesisEvents(history);
  const anomalyOps = new Set<number>();
  for (const r of Object.values(results.checkers)) for (const a of r.anomalies ?? []) for (const i of a.ops) anomalyOps.add(i);
  const stats = nodeStats ?? results.stats;
  return {
    endMs,
    nodes,
    fs,
    lanes,
    ops,
    nemesis: events,
    windows: faultWindows(events, endMs),
    buckets: buckets(ops, endMs, targetBuckets),
    clock: clockSeries(events, results.test.nodes, endMs),
    stats: stats && Object.keys(stats).length ? { ...stats } : null,
    nodeValues: nodeValues(results, nodes),
    anomalyOps: [...anomalyOps].sort((a, b) => a - b),
    history: historyCols,
    faults: faultRows(results.checkers.faults),
    probes: probeViews(history),
    delays: delayViews(history),
  };
}
