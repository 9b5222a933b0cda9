// Watch streams and replication lag, from the streams the harness records alongside every workload (one
// per node, see harness/systems/store-mesh/watch-recorder.ts for the ops: watch-open, watch-events, watch-close).
//
// watch: per stream and key, events arrive in order and once: an LWW key's timestamps strictly increase
// ("watch-out-of-order", "watch-duplicate"), a max-wins key's value never goes down. A stream that was open
// until the end of the run and lost nothing (no event says dropped_before > 0, and its node counted no
// watcher drops) must have delivered every change: for each key of the node's final state, the last
// event equals the final value, and a key with no event must have got its final value before the stream
// opened ("watch-missed"). The drops the events report never exceed what the node counted
// ("watch-drops-uncounted"). A stream the node ended while it was neither killed nor paused is
// "watch-ended".
//
// lag: the time from an acknowledged write's completion to the first event on another node's stream with
// an equal or later timestamp (for max-wins, an equal or greater value): how long replication takes. An
// increment of a counter that was never decremented counts as a max-wins write of its result (the counter's
// value on its node): a counter that only grows shows that value or more on every node it reached. Only
// writes in calm windows are judged: no fault active from `settleMs` (1 s; 5 s after a kill or pause)
// before the write to `lagBoundMs` after it, and only streams open through that span without drops. A write that reaches a node later
// than the bound, or never, is "lag-exceeded". Relays deliver in milliseconds and anti-entropy only every
// period, so when the 95th percentile of the judged lags (20 or more) exceeds `relayBoundMs` (a fifth of
// the anti-entropy period, at least 50 ms) writes are arriving by anti-entropy: "slow-replication". On a
// machine so busy that the clients' own ops take that long, the default bound is RELAY_LOAD_FACTOR times
// the 95th percentile of the clients' ok ops in the same calm windows instead, when that is larger: a
// relay is two RPC hops and two fsyncs where a client op is one, so a starved machine delays both alike.
// Measured in ten runs of the correct service at load 8 to 23 on 2 cores: p95 lag 0.6 to 1.5 times the
// clients' p95 (131 ms beside 87 ms at worst, a false alarm under the fixed bound); quiet, 9 ms beside
// 3 ms. A service that relays no deletes showed 268 ms beside 108 ms. The result gives the quantiles of
// every judged lag, and per kind of write (`lagByKind`). Each kind with 20 or more samples is held to
// the same bound on its own: every kind takes the same relay path, and a service that relays all but one
// kind (deletes are a tenth of the lww writes) keeps the overall 95th percentile fast while that kind
// arrives only by anti-entropy or behind the next write to its key.
import type { FinalState, History, Op } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { AnomalyList, FloatBuffer, finalReads, keyIndex, nsToMs, pairing, quantiles, valueOf } from './util.ts';
import { faultSpans, killWindows } from './windows.ts';
import { opIndex } from './history-index.ts';

/** [atNs, entity, component, value, ts, kind, deleted, droppedBefore], as recorded. */
type Event = [number, string, string, string, string, string, boolean, number];


/**
 * One key's events on one stream, in arrival order (the recorded arrays themselves, not copies), with
 * each event's HLC order number (util.HlcTable; NaN when its ts is not a string) beside them, so that
 * the order checks and the lag merge compare numbers without touching the events.
 */
interface KeyEvents {
  readonly events: Event[];
  readonly ord: number[];
  readonly kind: string;
}

interface Stream {
  readonly name: string;
  readonly node: string;
  /** History position and time of the ok watch-open. */
  readonly openPos: number;
  readonly openTime: number;
  closeTime: number;
  closeReason: string | undefined;
  /** entity → component (or counter) → its events. */
  readonly keys: Map<string, Map<string, KeyEvents>>;
  events: number;
  dropped: number;
  /** Arrival time of the first event that reported drops, or Infinity. */
  firstDrop: number;
}

/** The streams of a history (only those that opened), in the order they opened. */
function streams(history: History): Stream[] {
  const byProcess = new Map<number | string, Stream>();
  const out: Stream[] = [];
  const positions = opIndex(history).select(['watch-open', 'watch-events', 'watch-close'], ['ok']);
  const keys = keyIndex(history);
  const order = keys.hlc.order();
  for (let p = 0; p < positions.length; p++) {
    const i = positions[p];
    const op = history[i];
    if (op.type !== 'ok' || !op.f.startsWith('watch-') || op.node === undefined) continue;
    const v = valueOf<{ stream: string; events: Event[]; reason: string }>(op);
    if (op.f === 'watch-open') {
      const s: Stream = { name: String(v.stream), node: op.node, openPos: i, openTime: op.time, closeTime: Infinity, closeReason: undefined, keys: new Map(), events: 0, dropped: 0, firstDrop: Infinity };
      byProcess.set(op.process, s);
      out.push(s);
    } else {
      const s = byProcess.get(op.process);
      if (!s) continue;
      if (op.f === 'watch-events' && Array.isArray(v.events)) {
        const ids = keys.eventTs(i)!;
        for (let j = 0; j < v.events.length; j++) {
          const e = v.events[j];
          if (!Array.isArray(e) || e.length < 8) continue;
          s.events++;
          const dropped = Number(e[7]) || 0;
          if (dropped > 0) {
            s.dropped += dropped;
            if (e[0] < s.firstDrop) s.firstDrop = e[0];
          }
          let byComponent = s.keys.get(e[1]);
          if (!byComponent) s.keys.set(e[1], (byComponent = new Map()));
          let k = byComponent.get(e[2]);
          if (!k) byComponent.set(e[2], (k = { events: [], ord: [], kind: e[5] }));
          k.events.push(e);
          k.ord.push(ids[j] >= 0 ? order[ids[j]] : NaN);
        }
      } else if (op.f === 'watch-close') {
        s.closeTime = op.time;
        s.closeReason = typeof v.reason === 'string' ? v.reason : '';
      }
    }
  }
  return out;
}

const cache = new WeakMap<History, Stream[]>();
function streamsOf(history: History): Stream[] {
  let s = cache.get(history);
  if (!s) cache.set(history, (s = streams(history)));
  return s;
}

/** Each node's watcher drops from the end-of-run stats ops. */
function watcherDrops(history: History): Map<string, number> {
  const out = new Map<string, number>();
  for (const i of opIndex(history).select(['stats'], ['ok'])) {
    const op = history[i];
    if (op.f !== 'stats' || op.type !== 'ok' || op.node === undefined) continue;
    const d = (op.value as { watcherDrops?: unknown })?.watcherDrops;
    if (typeof d === 'number') out.set(op.node, d);
  }
  return out;
}

/**
 * Acknowledged writes by timestamp: when their request was first invoked (a final value's origin). The
 * first attempt, not the acknowledged one: a retry that the node recognised returns the timestamp of
 * an earlier attempt, which may have been applied before a stream opened.
 */
function writesByTs(history: History): Map<string, number> {
  const firstInvoke = new Map<string, number>();
  for (const op of history) {
    if (op.type !== 'invoke' || op.process === 'nemesis') continue;
    const id = (op.value as { requestId?: unknown } | null)?.requestId;
    if (typeof id === 'string' && !firstInvoke.has(id)) firstInvoke.set(id, op.time);
  }
  const { invocation } = pairing(history);
  const out = new Map<string, number>();
  for (let c = 0; c < history.length; c++) {
    const op = history[c];
    const v = op.value as { ts?: unknown; requestId?: unknown } | null;
    if (op.type !== 'ok' || typeof v?.ts !== 'string') continue;
    if (!['write', 'write-max', 'delete', 'add', 'remove'].includes(op.f)) continue;
    const i = invocation[c];
    const at = (typeof v.requestId === 'string' ? firstInvoke.get(v.requestId) : undefined) ?? (i >= 0 ? history[i].time : op.time);
    const prev = out.get(v.ts);
    if (prev === undefined || at < prev) out.set(v.ts, at);
  }
  return out;
}

const PAUSES = new Set(['start-pause']);
/**
 * Faults after which the mesh itself needs time: peers' connections to a restarted (or long frozen) node
 * wait in reconnect backoff and TCP SYN retransmission for seconds, dropping relays meanwhile (anti-
 * entropy repairs them). Measured: writes 1.3 s after a restart of two nodes had a 95th percentile lag of
 * 290 ms. So the calm window after such a fault starts 5 s after it ended.
 */
const PROCESS_FAULTS = new Set(['kill', 'pause', 'disk']);
const NO_EVENTS: readonly Event[] = [];
const NO_NUMBERS: readonly number[] = [];
const PROCESS_SETTLE_NS = 5e9;
/** The writes whose replication lag is judged. */
const LAGGED = new Set(['write', 'write-max', 'delete', 'add', 'remove']);

export interface WatchResult extends CheckResult {
  readonly streams: number;
  readonly events: number;
  /** Streams judged for completeness (open to the end, no drops). */
  readonly complete: number;
  readonly dropped: number;
}

export const watchChecker = (history: History, ctx: CheckContext): WatchResult => {
  const all = streamsOf(history);
  const anomalies = new AnomalyList();
  const kills = killWindows(history);
  const drops = watcherDrops(history);
  // Built only when a final value has no event on a complete stream (then: which write made it, and when).
  let originsMap: Map<string, number> | undefined;
  const origins = () => (originsMap ??= writesByTs(history));
  let incrMap: Map<string, number[]> | undefined;
  const incrInvokes = () => {
    if (incrMap) return incrMap;
    incrMap = new Map();
    for (const op of history) {
      if (op.f !== 'incr' || op.type !== 'invoke') continue;
      const v = valueOf<{ entity: string; counter: string }>(op);
      const k = `${v.entity}\u0000${v.counter}`;
      let list = incrMap.get(k);
      if (!list) incrMap.set(k, (list = []));
      list.push(op.time);
    }
    return incrMap;
  };
  const fr = finalReads(history, ctx);
  let events = 0;
  let complete = 0;
  let dropped = 0;
  const paused = [...opIndex(history).nemesis].map((i) => history[i]).filter((op) => PAUSES.has(op.f));

  for (const s of all) {
    events += s.events;
    dropped += s.dropped;
    const first = history[s.openPos].index;
    for (const [entity, byComponent] of s.keys) {
      for (const [component, k] of byComponent) {
        if (k.kind === 'counter') continue;
        const ev = k.events;
        const ord = k.ord;
        const max = k.kind === 'max';
        for (let j = 1; j < ev.length; j++) {
          // The common case first, with one comparison: a later timestamp (max-wins: a greater value).
          if (!max) {
            const before = ord[j - 1];
            const after = ord[j];
            if (before === before && after === after ? after > before : ev[j][4] > ev[j - 1][4]) continue;
          } else if (Number(ev[j][3]) > Number(ev[j - 1][3])) continue;
          const a = ev[j - 1];
          const b = ev[j];
          const same = b[4] === a[4] && b[3] === a[3] && b[6] === a[6];
          const back = max ? Number(b[3]) < Number(a[3]) : b[4] < a[4];
          if (!same && !back) continue;
          anomalies.add({
            type: same ? 'watch-duplicate' : 'watch-out-of-order',
            ops: [first],
            node: s.node,
            stream: s.name,
            message: `Stream ${s.name} delivered ${entity}/${component} = ${JSON.stringify(b[3])} (ts ${b[4]}) ${same ? 'twice' : `after ${JSON.stringify(a[3])} (ts ${a[4]})`}.`,
          });
        }
      }
    }
    const view = fr.view.get(s.node);
    const nodeDrops = drops.get(s.node);
    if (nodeDrops !== undefined && s.closeReason === 'end of run' && s.dropped > nodeDrops) {
      anomalies.add({
        type: 'watch-drops-uncounted',
        ops: [first],
        node: s.node,
        stream: s.name,
        message: `Stream ${s.name} was told of ${s.dropped} dropped events, more than the ${nodeDrops} watcher drops ${s.node} counted.`,
      });
    }
    if (s.closeReason !== undefined && s.closeReason !== 'end of run' && s.closeReason !== 'harness reconnected') {
      const killed = kills.between(s.node, s.openTime, s.closeTime + 1);
      const pausedMeanwhile = paused.some((p) => (p.value as { nodes?: string[] })?.nodes?.includes(s.node) && p.time >= s.openTime && p.time <= s.closeTime);
      if (killed === undefined && !pausedMeanwhile) {
        anomalies.add({ type: 'watch-ended', ops: [first], node: s.node, stream: s.name, message: `Stream ${s.name} ended (${s.closeReason}) while ${s.node} was neither killed nor paused.` });
      }
    }
    // Completeness: a stream open to the end that lost nothing has seen every change of its node.
    if (!view || s.closeReason !== 'end of run' || s.dropped > 0 || (nodeDrops ?? 0) > 0) continue;
    complete++;
    checkComplete(s, view.state, history[view.pos].index);
  }

  function checkComplete(s: Stream, state: FinalState, finalIndex: number): void {
    for (const [entity, fe] of Object.entries(state)) {
      const byComponent = s.keys.get(entity);
      for (const [component, fc] of Object.entries(fe.components ?? {})) {
        const k = byComponent?.get(component);
        const what = `${entity}/${component}`;
        if (k) {
          const e = k.events[k.events.length - 1];
          if (e[4] === fc.ts && (fc.deleted === true ? e[6] === true : e[3] === fc.value)) continue;
          anomalies.add({ type: 'watch-missed', ops: [finalIndex], node: s.node, stream: s.name, message: `Stream ${s.name} last delivered ${what} = ${JSON.stringify(e[3])} (ts ${e[4]}), but ${s.node} ends with ${JSON.stringify(fc.value)} (ts ${fc.ts}).` });
        } else {
          const invokedAt = origins().get(fc.ts);
          if (invokedAt === undefined || invokedAt <= s.openTime) continue;
          anomalies.add({ type: 'watch-missed', ops: [finalIndex], node: s.node, stream: s.name, message: `Stream ${s.name} never delivered ${what}, though ${s.node} ends with ${JSON.stringify(fc.value)} (ts ${fc.ts}) from a write made after the stream opened.` });
        }
      }
      for (const [counter, value] of Object.entries(fe.counters ?? {})) {
        const k = byComponent?.get(counter);
        const last = k ? k.events[k.events.length - 1][3] : undefined;
        if (k ? Number(last) === value : !(incrInvokes().get(`${entity}\u0000${counter}`) ?? []).some((t) => t > s.openTime)) continue;
        anomalies.add({
          type: 'watch-missed',
          ops: [finalIndex],
          node: s.node,
          stream: s.name,
          message: k
            ? `Stream ${s.name} last delivered counter ${entity}/${counter} = ${last}, but ${s.node} ends with ${value}.`
            : `Stream ${s.name} never delivered counter ${entity}/${counter}, though it was incremented after the stream opened (${s.node} ends with ${value}).`,
        });
      }
    }
  }

  const valid = anomalies.count > 0 ? false : all.length === 0 ? 'unknown' : true;
  return {
    valid,
    ...(all.length === 0 ? { error: 'no watch stream opened in this history, so no watcher was judged' } : {}),
    streams: all.length,
    events,
    complete,
    dropped,
    ...anomalies.summary(),
  };
};

export interface LagResult extends CheckResult {
  readonly boundMs: number;
  /** Bound on the 95th percentile of calm-window lag (at least MIN_RELAY_SAMPLES samples). */
  readonly relayBoundMs: number;
  /** The 95th percentile latency of the clients' ok ops in calm windows, which can raise the default relayBoundMs; null without any. */
  readonly clientP95Ms: number | null;
  readonly settleMs: number;
  /** Writes judged (in calm windows, with a stream of another node open throughout). */
  readonly writes: number;
  /** (write, node) pairs judged. */
  readonly samples: number;
  /** (write, node) pairs where the write never reached that node's stream. */
  readonly never: number;
  readonly lagMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number } | null;
  /** The same per kind of write (op f: write, delete, write-max, add, remove, incr), each judged on its own. */
  readonly lagByKind: Readonly<Record<string, { readonly samples: number; readonly p50: number; readonly p95: number; readonly max: number }>>;
}

/** Calm-window lag samples needed before their 95th percentile is judged. */
const MIN_RELAY_SAMPLES = 20;
/** Samples one kind of write needs before its own 95th percentile is judged. */
const MIN_KIND_SAMPLES = 20;
/** The default relay bound is at least this many times the clients' p95 latency in calm windows (see the module comment). */
export const RELAY_LOAD_FACTOR = 2;

/** The default bound on the 95th percentile of calm-window lag: a fifth of the anti-entropy period, at least 50 ms. */
export function defaultRelayBoundMs(antiEntropyMs: number | undefined): number {
  return Math.max(50, (antiEntropyMs ?? 500) / 5);
}

/** The default lag bound: a small multiple of the anti-entropy period, at least one second. */
export function defaultLagBoundMs(antiEntropyMs: number | undefined): number {
  return Math.max(1000, 3 * (antiEntropyMs ?? 500));
}

export const lagChecker = (history: History, ctx: CheckContext): LagResult => {
  const boundMs = typeof ctx.lagBoundMs === 'number' ? ctx.lagBoundMs : defaultLagBoundMs(typeof ctx.antiEntropyMs === 'number' ? ctx.antiEntropyMs : undefined);
  const settleMs = typeof ctx.settleMs === 'number' ? ctx.settleMs : 1000;
  const boundNs = boundMs * 1e6;
  const settleNs = settleMs * 1e6;
  const all = streamsOf(history);
  const anomalies = new AnomalyList();
  // Fault spans, from each op's invocation (when known) to its stop.
  const index = opIndex(history);
  const endTime = index.endTime;
  const nemesisOps = [...index.nemesis].map((i) => history[i]);
  // A fault's span reaches `settleMs` past its stop (a restarted or resumed node longer, see below).
  const spans = faultSpans(nemesisOps).map((s) => {
    const inv = (s.start.value as { invokedAt?: unknown })?.invokedAt;
    const settle = PROCESS_FAULTS.has(s.kind) ? Math.max(settleNs, PROCESS_SETTLE_NS) : settleNs;
    return { from: typeof inv === 'number' ? inv : s.start.time - 30e9, to: (s.stop?.time ?? endTime) + settle };
  });
  // Heal and final reads end the judged part of the run: only writes before the heal are judged.
  const heal = nemesisOps.find((op) => op.f === 'heal');
  const workloadEnd = heal ? heal.time : endTime;
  // Spans merged and sorted, so that writes, which come in time order, are tested with a moving index.
  const merged: { from: number; to: number }[] = [];
  for (const sp of [...spans].sort((a, b) => a.from - b.from)) {
    const top = merged[merged.length - 1];
    if (top && sp.from <= top.to) top.to = Math.max(top.to, sp.to);
    else merged.push({ ...sp });
  }
  /** A test of calm windows for one walk over ops in time order (each walk gets its own moving index). */
  const calmWalk = () => {
    let span = 0;
    return (from: number, to: number): boolean => {
      if (to > workloadEnd) return false;
      while (span < merged.length && merged[span].to <= from) span++;
      return span >= merged.length || merged[span].from >= to;
    };
  };
  // The judged writes, grouped by key and sorted by timestamp (max-wins: by value), so each key's writes
  // are matched with each stream's events for that key in one merge pass (events come in that order on
  // a correct stream; the watch checker reports any that do not).
  interface Judged { readonly op: Op; readonly component: string; readonly ts: string; readonly ord: number; readonly value: number; readonly max: boolean; readonly acked: number; judged: boolean }
  const keys = keyIndex(history);
  const order = keys.hlc.order();
  const groups: Judged[][] = [];
  const calm = calmWalk();
  const lagged = index.select([...LAGGED], ['ok']);
  for (let p = 0; p < lagged.length; p++) {
    const c = lagged[p];
    const op = history[c];
    if (op.type !== 'ok' || op.node === undefined || !LAGGED.has(op.f)) continue;
    const v = valueOf<{ ts: string; value: number; duplicate?: boolean }>(op);
    const key = keys.opKey[c];
    if (typeof v.ts !== 'string' || key < 0 || v.duplicate === true) continue;
    const acked = op.time;
    if (!calm(acked, acked + boundNs)) continue;
    (groups[key] ??= []).push({ op, component: keys.component[key], ts: v.ts, ord: order[keys.opTs[c]], value: Number(v.value), max: op.f === 'write-max', acked, judged: false });
  }
  // Increments of monotone counters (no negative delta was ever sent to them): an acknowledged
  // increment's result is the counter's value on its node, and a counter that only grows shows every
  // other node a value at least that high once the increment (and the shares it had counted) reached it.
  // So they are judged as max-wins writes of their result. A counter that was ever decremented can go
  // down on another node for reasons of its own, and is not judged. The result also counts the other
  // nodes' shares its node had, so a late one times their arrival too: every relay carries a node's whole
  // share, so that too is replication that relays should have done.
  const decremented = new Set<string>();
  for (const i of index.select(['incr'], ['invoke'])) {
    const v = valueOf<{ entity: unknown; counter: unknown; delta: unknown }>(history[i]);
    if (typeof v.delta !== 'number' || !(v.delta >= 0)) decremented.add(`${String(v.entity)}\u0000${String(v.counter)}`);
  }
  const counterGroups = new Map<string, { entity: string; counter: string; ws: Judged[] }>();
  const calmIncr = calmWalk();
  for (const c of index.select(['incr'], ['ok'])) {
    const op = history[c];
    if (op.node === undefined) continue;
    const v = valueOf<{ entity: unknown; counter: unknown; result: unknown; duplicate?: boolean }>(op);
    if (typeof v.entity !== 'string' || typeof v.counter !== 'string' || typeof v.result !== 'number' || v.duplicate === true) continue;
    const k = `${v.entity}\u0000${v.counter}`;
    if (decremented.has(k)) continue;
    const acked = op.time;
    if (!calmIncr(acked, acked + boundNs)) continue;
    let g = counterGroups.get(k);
    if (!g) counterGroups.set(k, (g = { entity: v.entity, counter: v.counter, ws: [] }));
    g.ws.push({ op, component: v.counter, ts: '', ord: NaN, value: v.result, max: true, acked, judged: false });
  }
  // Lags in ms; a write that never arrived counts as MAX_VALUE (sorted last). Also kept per kind of
  // write: a relay path that loses one kind (deletes, say) while the others arrive hides inside the
  // overall 95th percentile when that kind is a tenth of the writes.
  const lags = new FloatBuffer();
  const kindLags = new Map<string, FloatBuffer>();
  let never = 0;
  /** Matches one key's judged writes (all max-wins or all LWW) with every other node's stream. */
  const judge = (entity: string, component: string, ws: Judged[]): void => {
    if (ws.length === 0) return;
    const max = ws[0].max;
    ws.sort(max ? (a, b) => a.value - b.value : (a, b) => a.ord - b.ord);
    for (const s of all) {
      const k = s.keys.get(entity)?.get(component);
      const ev = k?.events ?? NO_EVENTS;
      const ord = k?.ord ?? NO_NUMBERS;
      let j = 0;
      for (const w of ws) {
        if (s.node === w.op.node || s.openTime > w.acked || s.closeTime < w.acked + boundNs || s.firstDrop < w.acked + boundNs) continue;
        w.judged = true;
        if (max) while (j < ev.length && Number(ev[j][3]) < w.value) j++;
        else while (j < ev.length && (ord[j] === ord[j] ? ord[j] < w.ord : ev[j][4] < w.ts)) j++;
        const at = j < ev.length ? ev[j][0] : Infinity;
        const lagNs = Math.max(0, at - w.acked);
        if (at === Infinity) never++;
        const lagMs = at === Infinity ? Number.MAX_VALUE : nsToMs(lagNs);
        lags.push(lagMs);
        let kl = kindLags.get(w.op.f);
        if (!kl) kindLags.set(w.op.f, (kl = new FloatBuffer()));
        kl.push(lagMs);
        if (lagNs > boundNs) {
          const what = w.op.f === 'incr' ? `incr of counter ${entity}/${component} (value ${w.value} on ${w.op.node})` : `${w.op.f} of ${entity}/${component} (ts ${w.ts})`;
          anomalies.add({
            type: 'lag-exceeded',
            ops: [w.op.index, history[s.openPos].index],
            node: s.node,
            lagMs: at === Infinity ? null : nsToMs(lagNs),
            message: `${what} acknowledged on ${w.op.node} in a calm window ${at === Infinity ? `never reached ${s.node}'s watch stream` : `reached ${s.node} only after ${nsToMs(lagNs)} ms, above the bound`} (bound ${boundMs} ms).`,
          });
        }
      }
    }
  };
  for (let key = 0; key < groups.length; key++) {
    const ws = groups[key];
    if (ws === undefined) continue;
    judge(keys.entity[key], keys.component[key], ws.filter((w) => !w.max));
    judge(keys.entity[key], keys.component[key], ws.filter((w) => w.max));
  }
  for (const g of counterGroups.values()) judge(g.entity, g.counter, g.ws);
  let writes = 0;
  for (const ws of groups) if (ws) for (const w of ws) if (w.judged) writes++;
  for (const g of counterGroups.values()) for (const w of g.ws) if (w.judged) writes++;
  const q = quantiles(lags.view());
  const samples = lags.length;
  // Relays carry a write to its peers within milliseconds; anti-entropy only every period. When most
  // calm-window writes take a good part of a period, they are arriving by anti-entropy: relays are lost.
  // The clients' own latency in calm windows: what the machine's load does to one RPC and one fsync.
  // Counted in 0.1 ms buckets up to 10 s (a fixed array: a million ops allocate nothing more).
  const buckets = new Int32Array(100_001);
  let counted = 0;
  const { completion } = pairing(history);
  const calmOp = calmWalk();
  const invokes = index.workloadInvokes;
  for (let p = 0; p < invokes.length; p++) {
    const i = invokes[p];
    const c = completion[i];
    if (c < 0 || history[c].type !== 'ok') continue;
    const from = history[i].time;
    const to = history[c].time;
    if (!calmOp(from, to)) continue;
    buckets[Math.min(100_000, Math.max(0, Math.ceil((to - from) / 1e5)))]++;
    counted++;
  }
  let clientP95Ms: number | null = null;
  if (counted > 0) {
    const rank = Math.ceil(0.95 * counted);
    let seen = 0;
    for (let b = 0; b < buckets.length; b++) {
      seen += buckets[b];
      if (seen >= rank) {
        clientP95Ms = b / 10;
        break;
      }
    }
  }
  const aePart = defaultRelayBoundMs(typeof ctx.antiEntropyMs === 'number' ? ctx.antiEntropyMs : undefined);
  const loadPart = clientP95Ms === null ? 0 : Math.round(RELAY_LOAD_FACTOR * clientP95Ms * 1000) / 1000;
  const relayBoundMs = typeof ctx.relayBoundMs === 'number' ? ctx.relayBoundMs : Math.max(aePart, loadPart);
  const why = typeof ctx.relayBoundMs === 'number' ? 'the given bound' : loadPart > aePart ? `${RELAY_LOAD_FACTOR} times the clients' own p95 latency of ${clientP95Ms} ms in the same windows, above a fifth of the anti-entropy period` : 'a fifth of the anti-entropy period';
  const p95 = samples === 0 ? 0 : q.p95 === Number.MAX_VALUE ? Infinity : q.p95;
  if (samples >= MIN_RELAY_SAMPLES && p95 > relayBoundMs) {
    anomalies.add({
      type: 'slow-replication',
      ops: [],
      p95Ms: Number.isFinite(p95) ? p95 : null,
      message: `In calm windows, 95% of writes reached the other nodes only within ${Number.isFinite(p95) ? `${p95} ms` : 'never'}, above ${relayBoundMs} ms (${why}): writes arrive by anti-entropy, so relays are being lost.`,
    });
  }
  const finiteMax = (x: number) => (x === Number.MAX_VALUE ? -1 : x);
  // Every kind of write takes the same relay path as the others, so each kind with enough samples of
  // its own is held to the same bound.
  const lagByKind: Record<string, { samples: number; p50: number; p95: number; max: number }> = {};
  for (const [kind, buf] of [...kindLags].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const kq = quantiles(buf.view());
    lagByKind[kind] = { samples: buf.length, p50: finiteMax(kq.p50), p95: finiteMax(kq.p95), max: finiteMax(kq.max) };
    const kp95 = kq.p95 === Number.MAX_VALUE ? Infinity : kq.p95;
    if (kindLags.size > 1 && buf.length >= MIN_KIND_SAMPLES && kp95 > relayBoundMs) {
      anomalies.add({
        type: 'slow-replication',
        ops: [],
        kind,
        p95Ms: Number.isFinite(kp95) ? kp95 : null,
        message: `In calm windows, 95% of ${kind} ops (${buf.length} samples) reached the other nodes only within ${Number.isFinite(kp95) ? `${kp95} ms` : 'never'}, above ${relayBoundMs} ms (${why}), while all writes together had a p95 of ${Number.isFinite(p95) ? `${p95} ms` : 'never'}: ${kind} ops arrive by anti-entropy or behind later writes, so relays lose them.`,
      });
    }
  }
  // -1 stands for "never" in the quantiles (a write that did not reach a node at all).
  const lagMs = samples === 0 ? null : { p50: finiteMax(q.p50), p95: finiteMax(q.p95), p99: finiteMax(q.p99), max: never > 0 ? -1 : q.max };
  const valid = anomalies.count > 0 ? false : samples === 0 ? 'unknown' : true;
  return {
    valid,
    ...(samples === 0 ? { error: 'no write was acknowledged in a calm window while another node had a watch stream open, so no lag was judged' } : {}),
    boundMs,
    relayBoundMs,
    clientP95Ms,
    settleMs,
    writes,
    samples,
    never,
    lagMs,
    lagByKind,
    ...anomalies.summary(),
  };
};
lagChecker satisfies Checker;
watchChecker satisfies Checker;
