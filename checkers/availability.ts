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
import type { History } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { isWorkloadOp, pairing } from './util.ts';
import { opIndex } from './history-index.ts';
import { isKillOp, killedNodes } from './windows.ts';

export interface AvailabilityResult extends CheckResult {
  readonly minAvailability: number;
  readonly graceMs: number;
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
  const { completion } = pairing(history);
  // node → spans [from, to] in which it may have been down or frozen.
  const down = new Map<string, { from: number; to: number }[]>();
  const open = new Map<string, number>();
  const index = opIndex(history);
  const end = index.endTime;
  const close = (key: string, to: number) => {
    const from = open.get(key);
    if (from === undefined) return;
    open.delete(key);
    const node = key.slice(key.indexOf('\u0000') + 1);
    let list = down.get(node);
    if (!list) down.set(node, (list = []));
    list.push({ from, to: to + graceNs });
  };
  const nemesisOps = [...index.nemesis].map((i) => history[i]);
  for (const op of nemesisOps) {
    if (op.process !== 'nemesis') continue;
    const v = (op.value ?? {}) as { nodes?: unknown; invokedAt?: unknown };
    const nodes = Array.isArray(v.nodes) ? (v.nodes as string[]) : [];
    if (downs(op)) {
      const from = typeof v.invokedAt === 'number' ? v.invokedAt : op.time - 30e9;
      for (const n of nodes) if (!open.has(`${op.f}\u0000${n}`)) open.set(`${op.f}\u0000${n}`, from);
    } else if (op.f in STARTS) {
      for (const n of nodes) close(`${STARTS[op.f]}\u0000${n}`, op.time);
      // A stop that ends its fault with a power loss (crashAtStop) has the node down while it runs.
      if (isKillOp(op)) {
        const from = typeof v.invokedAt === 'number' ? v.invokedAt : op.time - 30e9;
        for (const n of killedNodes(op)) {
          let list = down.get(n);
          if (!list) down.set(n, (list = []));
          list.push({ from, to: op.time + graceNs });
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
  const anomalies = [];
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
availability satisfies Checker;
