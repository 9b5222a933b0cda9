// Availability, after Maelstrom's --availability: the store promises that a node that is up answers its
// clients, during partitions too (it is AP: local reads and writes never wait for peers). So every client
// op whose node was up and not paused from the op's invoke to its completion must succeed; the share of
// such ops that did (ok / judged) must reach `minAvailability` on every node.
//
// A node is down from the invocation of a `start-kill`, `start-pause` or `start-disk` (all but the slow
// disk) that names it (`invokedAt`) to the completion of the `stop-kill`, `stop-pause` or `stop-disk` (or the final heal) that brings it back, and
// during a `stop-disk` that ends its fault with a power loss (`crashAtStop`), plus
// `graceMs` for clients to reconnect. Ops outside those spans count; every other fault (partition, clock
// skew, packet loss and bandwidth limits between peers) must not stop a node from answering.
//
// It also catches a request that one node will not answer while it answers everything else:
// "request-unanswered", when two attempts in a row of one request id (a retry after an indefinite
// outcome) both ran into the client's deadline (`opTimeoutMs`) on a node that was not down, while
// that node gave other clients a definite answer (ok or fail) within the same span. Counting alone
// hides it (a few hung retries among hundreds of answered ops stay above the threshold), and it is
// what a request table that keeps an entry nobody will complete does: every later attempt waits for
// it. A failing disk does not excuse it: a node whose log refuses writes says so at once.
import type { History } from '../harness/history.ts';
import type { Anomaly, CheckContext, CheckResult, Checker } from './types.ts';
import { isWorkloadOp, pairing } from './util.ts';
import { opIndex } from './history-index.ts';
import { isKillOp, killedNodes } from './windows.ts';

export interface AvailabilityResult extends CheckResult {
  readonly minAvailability: number;
  readonly graceMs: number;
  /** Requests whose attempts hung twice in a row while their node answered others (see the module comment). */
  readonly unanswered: number;
  /** Ops judged (their node was up throughout). */
  readonly judged: number;
  readonly ok: number;
  readonly availability: number | null;
  /** Per node: judged, ok, availability, and the first failed ops (history indexes). */
  readonly nodes: Readonly<Record<string, { judged: number; ok: number; availability: number | null; failed: number[] }>>;
}

/** The default threshold: the correct service answers all but a few ops (see the README's measurement). */
export const DEFAULT_MIN_AVAILABILITY = 0.95;

const DOWN: Record<string, string> = { 'start-kill': 'stop-kill', 'start-pause': 'stop-pause', 'start-disk': 'stop-disk' };
const STARTS = Object.fromEntries(Object.entries(DOWN).map(([start, stop]) => [stop, start]));
/**
 * A disk fault stops its nodes from answering writes (a power loss stops them altogether; a full or
 * failing disk makes them refuse writes), except the slow disk, under which every op must still be
 * answered (its delay is well under the clients' deadline).
 */
const downs = (op: { readonly f: string; readonly value?: unknown }) => op.f in DOWN && !(op.f === 'start-disk' && (op.value as { fault?: unknown } | undefined)?.fault === 'slow');

export const availability = (history: History, ctx: CheckContext): AvailabilityResult => {
  const min = typeof ctx.minAvailability === 'number' ? ctx.minAvailability : DEFAULT_MIN_AVAILABILITY;
  const graceMs = typeof ctx.graceMs === 'number' ? ctx.graceMs : 1000;
  const graceNs = graceMs * 1e6;
  const { completion, invocation } = pairing(history);
  // node → spans [from, to] in which it may have been down or frozen.
  const down = new Map<string, { from: number; to: number }[]>();
  const open = new Map<string, number>();
  const index = opIndex(history);
  const end = index.endTime;
  // The spans in which a node was stopped or frozen (not merely refusing writes on a failing disk).
  const offline = new Map<string, { from: number; to: number }[]>();
  const push = (map: Map<string, { from: number; to: number }[]>, node: string, span: { from: number; to: number }) => {
    let list = map.get(node);
    if (!list) map.set(node, (list = []));
    list.push(span);
  };
  const close = (key: string, to: number) => {
    const from = open.get(key);
    if (from === undefined) return;
    open.delete(key);
    const node = key.slice(key.indexOf('\u0000') + 1);
    push(down, node, { from, to: to + graceNs });
    if (offlineKeys.delete(key)) push(offline, node, { from, to: to + graceNs });
  };
  const offlineKeys = new Set<string>();
  const nemesisOps = [...index.nemesis].map((i) => history[i]);
  for (const op of nemesisOps) {
    if (op.process !== 'nemesis') continue;
    const v = (op.value ?? {}) as { nodes?: unknown; invokedAt?: unknown };
    const nodes = Array.isArray(v.nodes) ? (v.nodes as string[]) : [];
    if (downs(op)) {
      const from = typeof v.invokedAt === 'number' ? v.invokedAt : op.time - 30e9;
      const stops = op.f !== 'start-disk' || isKillOp(op);
      for (const n of nodes) {
        if (open.has(`${op.f}\u0000${n}`)) continue;
        open.set(`${op.f}\u0000${n}`, from);
        if (stops) offlineKeys.add(`${op.f}\u0000${n}`);
      }
    } else if (op.f in STARTS) {
      for (const n of nodes) close(`${STARTS[op.f]}\u0000${n}`, op.time);
      // A stop that ends its fault with a power loss (crashAtStop) has the node down while it runs.
      if (isKillOp(op)) {
        const from = typeof v.invokedAt === 'number' ? v.invokedAt : op.time - 30e9;
        for (const n of killedNodes(op)) {
          push(down, n, { from, to: op.time + graceNs });
          push(offline, n, { from, to: op.time + graceNs });
        }
      }
    } else if (op.f === 'heal') {
      for (const key of [...open.keys()]) close(key, op.time);
    }
  }
  for (const key of [...open.keys()]) close(key, end);
  const heal = nemesisOps.find((op) => op.f === 'heal');
  const workloadEnd = heal ? heal.time : Infinity;

  const nodes: Record<string, { judged: number; ok: number; availability: number | null; failed: number[] }> = {};
  let judged = 0;
  let ok = 0;
  const none: { from: number; to: number }[] = [];
  const invokes = index.workloadInvokes;
  for (let p = 0; p < invokes.length; p++) {
    const i = invokes[p];
    const op = history[i];
    if (op.type !== 'invoke' || op.node === undefined || !isWorkloadOp(op)) continue;
    const c = completion[i];
    const doneAt = c >= 0 ? history[c].time : end;
    if (doneAt > workloadEnd) continue;
    const spans = down.get(op.node) ?? none;
    let wasDown = false;
    for (let k = 0; k < spans.length && !wasDown; k++) wasDown = spans[k].from < doneAt && spans[k].to > op.time;
    if (wasDown) continue;
    let n = nodes[op.node];
    if (!n) nodes[op.node] = n = { judged: 0, ok: 0, availability: null, failed: [] };
    n.judged++;
    judged++;
    if (c >= 0 && history[c].type === 'ok') {
      n.ok++;
      ok++;
    } else if (n.failed.length < 10) n.failed.push(c >= 0 ? history[c].index : op.index);
  }
  const anomalies: Anomaly[] = [];
  const unanswered = unansweredRequests(history, completion, invocation, offline, workloadEnd, typeof ctx.opTimeoutMs === 'number' ? ctx.opTimeoutMs : 1000);
  for (const u of unanswered) anomalies.push(u);
  for (const [node, n] of Object.entries(nodes)) {
    n.availability = n.judged === 0 ? null : n.ok / n.judged;
    if (n.availability !== null && n.availability < min) {
      anomalies.push({
        type: 'unavailable',
        ops: n.failed,
        node,
        availability: n.availability,
        message: `${node} answered ${n.ok} of ${n.judged} client ops while it was up and not paused (${(100 * n.availability).toFixed(1)}%), below the ${(100 * min).toFixed(1)}% an AP store must reach.`,
      });
    }
  }
  return {
    valid: anomalies.length > 0 ? false : judged === 0 ? 'unknown' : true,
    unanswered: unanswered.length,
    ...(judged === 0 ? { error: 'no client op ran on a node that was up, so availability was not judged' } : {}),
    minAvailability: min,
    graceMs,
    judged,
    ok,
    availability: judged === 0 ? null : ok / judged,
    nodes,
    anomalies,
  };
};
/**
 * The request-unanswered anomalies (see the module comment): per request id, its attempts in history
 * order; two in a row that hung (info after at least 90 % of the deadline) on a node that was not stopped or frozen,
 * each while the node answered another op that began after it and ended before it.
 */
function unansweredRequests(
  history: History,
  completion: Int32Array,
  invocation: Int32Array,
  offline: ReadonlyMap<string, readonly { from: number; to: number }[]>,
  workloadEnd: number,
  opTimeoutMs: number,
): Anomaly[] {
  const hungNs = 0.9 * opTimeoutMs * 1e6;
  const invokes = opIndex(history).workloadInvokes;
  // Per request id, the hung attempts in a row so far: [count, the last one's completion position].
  // Only ids with a hung attempt are tracked, so a run without one reads no request id at all.
  const streak = new Map<string, [number, number]>();
  const hung: { rid: string; node: string; i: number; c: number; first: number }[] = [];
  for (let p = 0; p < invokes.length; p++) {
    const i = invokes[p];
    const c = completion[i];
    if (c < 0) continue;
    const op = history[i];
    const done = history[c];
    const isHung = done.type === 'info' && done.time - op.time >= hungNs && done.time <= workloadEnd && op.node !== undefined && !(offline.get(op.node) ?? []).some((s) => s.from < done.time && s.to > op.time);
    if (!isHung && streak.size === 0) continue;
    const rid = (op.value as { requestId?: unknown } | null)?.requestId;
    if (typeof rid !== 'string' || rid === '') continue;
    if (isHung) {
      const s = streak.get(rid);
      if (s && s[0] >= 1) hung.push({ rid, node: op.node!, i, c, first: s[1] });
      streak.set(rid, [(s?.[0] ?? 0) + 1, c]);
    } else streak.delete(rid);
  }
  if (hung.length === 0) return [];
  // Per node with a candidate, the definite answers: invoke and completion times, in invoke order.
  const answers = new Map<string, { from: number[]; to: number[] }>();
  for (const h of hung) answers.set(h.node, { from: [], to: [] });
  for (let p = 0; p < invokes.length; p++) {
    const i = invokes[p];
    const c = completion[i];
    const a = c >= 0 ? answers.get(history[i].node ?? '') : undefined;
    if (!a || (history[c].type !== 'ok' && history[c].type !== 'fail')) continue;
    a.from.push(history[i].time);
    a.to.push(history[c].time);
  }
  /** Whether the node answered an op invoked after `from` and completed before `to`. */
  const answeredWithin = (node: string, from: number, to: number): boolean => {
    const a = answers.get(node);
    if (!a) return false;
    let lo = 0;
    let hi = a.from.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a.from[mid] <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < a.from.length && a.from[k] < to; k++) if (a.to[k] < to) return true;
    return false;
  };
  const out: Anomaly[] = [];
  const reported = new Set<string>();
  for (const h of hung) {
    if (reported.has(h.rid)) continue;
    const prev = history[h.first];
    const inv = invocation[h.first];
    const prevInvoke = history[inv >= 0 ? inv : h.first];
    if (!answeredWithin(h.node, history[h.i].time, history[h.c].time) || !answeredWithin(prev.node ?? h.node, prevInvoke.time, prev.time)) continue;
    reported.add(h.rid);
    out.push({
      type: 'request-unanswered',
      ops: [prev.index, history[h.c].index],
      node: h.node,
      requestId: h.rid,
      message: `${h.node} let two attempts in a row of request ${h.rid} run into the ${opTimeoutMs} ms deadline (ops ${prev.index} and ${history[h.c].index}) while it answered other clients within each of them.`,
    });
  }
  return out;
}

availability satisfies Checker;
