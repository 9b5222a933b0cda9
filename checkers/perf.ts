// Performance data for the report, never a verdict (valid unless the history has no client op at all): latency quantiles per f and
// per outcome, throughput and availability (ok fraction of completed ops) per time bucket, and the same
// quantiles split into fault windows and calm windows.
//
// A fault window opens at a nemesis "start-X" op and closes at the next "stop-X" op or at any "heal"
// (which heals everything); overlapping faults merge into one window. An op belongs to the window its
// invoke falls in. Final reads, the harness's node "stats" ops and its watch streams are left out: they
// are not client load (recovery is reported by the convergence checker). Times in the result are milliseconds since the run started.
import { faultSpans } from './windows.ts';
import { opIndex } from './history-index.ts';
import type { History } from '../harness/history.ts';
import type { CheckContext, CheckResult } from './types.ts';
import { isWorkloadOp, nsToMs, pairing, quantiles, type Quantiles } from './util.ts';

export interface PerfOptions {
  /** Width of the throughput/availability buckets. @default 1000 */
  readonly bucketMs?: number;
}

export interface Bucket {
  /** Bucket start, ms since the run started. */
  readonly startMs: number;
  /** Completions per second in this bucket, by outcome. */
  readonly okPerSec: number;
  readonly failPerSec: number;
  readonly infoPerSec: number;
  /** ok / (ok + fail + info) of ops completed in the bucket; null when nothing completed. */
  readonly availability: number | null;
  /** True when any part of the bucket lies in a fault window. */
  readonly fault: boolean;
}

export interface WindowStats {
  readonly ops: number;
  readonly availability: number | null;
  /** Latency in ms per f, all outcomes. */
  readonly latencyMs: Readonly<Record<string, Quantiles>>;
}

export interface PerfResult extends CheckResult {
  readonly valid: true | 'unknown';
  /** Latency in ms: f → outcome ("ok" | "fail" | "info" | "all") → quantiles. */
  readonly latencyMs: Readonly<Record<string, Readonly<Record<string, Quantiles>>>>;
  readonly bucketMs: number;
  readonly buckets: readonly Bucket[];
  /** Fault windows in ms since the run started, with the nemesis f that opened each. */
  readonly faultWindows: readonly { readonly startMs: number; readonly endMs: number; readonly f: readonly string[] }[];
  readonly fault: WindowStats;
  readonly calm: WindowStats;
  readonly ops: number;
  readonly availability: number | null;
  readonly durationMs: number;
}

const OUTCOMES = ['ok', 'fail', 'info'] as const;

interface Window {
  start: number;
  end: number;
  f: string[];
}

/** Fault windows (ns) from the nemesis ops, merged where faults overlap. */
export function faultWindows(history: History): Window[] {
  const index = opIndex(history);
  const endTime = index.endTime;
  const nemesisOps = [...index.nemesis].map((i) => history[i]).filter((op) => op.type !== 'invoke');
  const windows: Window[] = faultSpans(nemesisOps).map((s) => ({ start: s.start.time, end: s.stop?.time ?? endTime, f: ['start-' + s.kind] }));
  windows.sort((a, b) => a.start - b.start);
  const merged: Window[] = [];
  for (const w of windows) {
    const top = merged[merged.length - 1];
    if (top && w.start <= top.end) {
      top.end = Math.max(top.end, w.end);
      if (!top.f.includes(w.f[0])) top.f.push(w.f[0]);
    } else merged.push({ start: w.start, end: w.end, f: [...w.f] });
  }
  return merged;
}

/** Builds the perf checker. */
export function perf(options: PerfOptions = {}): (history: History, ctx: CheckContext) => PerfResult {
  const bucketMs = options.bucketMs ?? 1000;
  if (!(bucketMs > 0)) throw new Error(`Expected bucketMs to be a positive number of milliseconds, got ${bucketMs}.`);
  return (history: History, _ctx: CheckContext): PerfResult => {
    const { completion } = pairing(history);
    const windows = faultWindows(history);
    const bucketNs = bucketMs * 1e6;
    // One latency sample (ns) per judged op, with its f and a tag (outcome + 3 × calm), in exactly sized
    // typed arrays: the per-f, per-outcome and per-window samples are cut from them one f at a time, so
    // no growing buffers (whose discarded halves would stay until a major collection) are needed.
    const index = opIndex(history);
    const durationNs = index.endTime;
    const invokes = index.workloadInvokes;
    const latencies = new Float64Array(invokes.length);
    const fOf = new Int32Array(invokes.length);
    const tags = new Uint8Array(invokes.length);
    const fIds = new Map<string, number>();
    let samples = 0;
    const windowOps = [0, 0];
    const windowOk = [0, 0];
    const counts: number[] = []; // bucket*3 + outcome
    let ops = 0;
    let okOps = 0;
    let w = 0;
    for (let p = 0; p < invokes.length; p++) {
      const i = invokes[p];
      const op = history[i];
      if (op.type !== 'invoke' || !isWorkloadOp(op)) continue;
      const c = completion[i];
      if (c < 0) continue;
      const done = history[c];
      const outcome = done.type === 'ok' ? 0 : done.type === 'fail' ? 1 : 2;
      const latency = done.time - op.time;
      let fi = fIds.get(op.f);
      if (fi === undefined) fIds.set(op.f, (fi = fIds.size));
      // Invokes come in time order, so the window cursor only moves forward.
      while (w < windows.length && windows[w].end < op.time) w++;
      const faulty = w < windows.length && windows[w].start <= op.time ? 0 : 1;
      latencies[samples] = latency;
      fOf[samples] = fi;
      tags[samples] = outcome + 3 * faulty;
      samples++;
      windowOps[faulty]++;
      if (outcome === 0) windowOk[faulty]++;
      const b = Math.floor(done.time / bucketNs) * 3 + outcome;
      while (counts.length <= b) counts.push(0);
      counts[b]++;
      ops++;
      if (outcome === 0) okOps++;
    }

    const toMs = (q: Quantiles): Quantiles => ({ count: q.count, p50: nsToMs(q.p50), p95: nsToMs(q.p95), p99: nsToMs(q.p99), max: nsToMs(q.max) });
    const latencyMs: Record<string, Record<string, Quantiles>> = {};
    // counts[fi * 6 + tag]: samples per f, outcome and window.
    const counts6 = new Int32Array(fIds.size * 6);
    for (let j = 0; j < samples; j++) counts6[fOf[j] * 6 + tags[j]]++;
    /** The samples of f `fi` whose tag passes `keep`, in a new array of exactly that many. */
    const cut = (fi: number, size: number, keep: (tag: number) => boolean): Float64Array => {
      const out = new Float64Array(size);
      for (let j = 0, k = 0; j < samples; j++) if (fOf[j] === fi && keep(tags[j])) out[k++] = latencies[j];
      return out;
    };
    const windowLatency: Record<string, Quantiles>[] = [{}, {}];
    for (const [f, fi] of [...fIds.entries()].sort(byName)) {
      const per: Record<string, Quantiles> = {};
      let total = 0;
      for (let o = 0; o < 3; o++) {
        const n = counts6[fi * 6 + o] + counts6[fi * 6 + o + 3];
        total += n;
        if (n > 0) per[OUTCOMES[o]] = toMs(quantiles(cut(fi, n, (t) => t % 3 === o)));
      }
      per.all = toMs(quantiles(cut(fi, total, () => true)));
      latencyMs[f] = per;
      for (let k = 0; k < 2; k++) {
        const n = counts6[fi * 6 + 3 * k] + counts6[fi * 6 + 3 * k + 1] + counts6[fi * 6 + 3 * k + 2];
        if (n > 0) windowLatency[k][f] = toMs(quantiles(cut(fi, n, (t) => (t >= 3 ? 1 : 0) === k)));
      }
    }
    const windowStats = (k: number): WindowStats => ({ ops: windowOps[k], availability: windowOps[k] > 0 ? windowOk[k] / windowOps[k] : null, latencyMs: windowLatency[k] });
    const buckets: Bucket[] = [];
    const perSec = 1000 / bucketMs;
    let wi = 0;
    for (let b = 0; b * 3 < counts.length; b++) {
      const ok = counts[b * 3] ?? 0;
      const fail = counts[b * 3 + 1] ?? 0;
      const info = counts[b * 3 + 2] ?? 0;
      const start = b * bucketNs;
      const end = start + bucketNs;
      while (wi < windows.length && windows[wi].end < start) wi++;
      const total = ok + fail + info;
      buckets.push({
        startMs: b * bucketMs,
        okPerSec: ok * perSec,
        failPerSec: fail * perSec,
        infoPerSec: info * perSec,
        availability: total > 0 ? ok / total : null,
        fault: wi < windows.length && windows[wi].start < end,
      });
    }
    return {
      // A report, not a check: valid whenever there was anything to measure.
      valid: ops > 0 ? true : 'unknown',
      ...(ops > 0 ? {} : { error: 'no client ops in the history, so nothing was measured' }),
      judged: ops,
      latencyMs,
      bucketMs,
      buckets,
      faultWindows: windows.map((x) => ({ startMs: nsToMs(x.start), endMs: nsToMs(x.end), f: x.f })),
      fault: windowStats(0),
      calm: windowStats(1),
      ops,
      availability: ops > 0 ? okOps / ops : null,
      durationMs: nsToMs(durationNs),
    };
  };
}

/** Code-unit order of op names: locale-free, and it spares loading ICU's collator (~10 ms of start-up). */
function byName(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
