// When was each fault active? The one rule, shared by the perf checker and the report: `start-X`
// opens fault X (if not already open), `stop-X` closes it, a `bump-clock` or `strobe-clock` leaves the
// clocks skewed and so opens `clock` until `stop-clock` or the final `heal`, and `heal` closes every
// open fault. A fault still open at the end of the history has no stop event.

export interface FaultSpan<E> {
  /** The fault package's name: "partition", "clock", ... */
  readonly kind: string;
  readonly start: E;
  /** The event that ended it, or undefined when it was still active at the end. */
  readonly stop: E | undefined;
}

const CLOCK_POINTS = new Set(['bump-clock', 'strobe-clock']);

/** Fault spans from nemesis events in history order, sorted by their start event's position. */
export function faultSpans<E extends { readonly f: string }>(events: Iterable<E>): FaultSpan<E>[] {
  const open = new Map<string, E>();
  const spans: FaultSpan<E>[] = [];
  for (const e of events) {
    const m = /^(start|stop)-(.+)$/.exec(e.f);
    if (m && m[1] === 'start') {
      if (!open.has(m[2])) open.set(m[2], e);
    } else if (m && m[1] === 'stop') {
      const start = open.get(m[2]);
      if (start !== undefined) {
        spans.push({ kind: m[2], start, stop: e });
        open.delete(m[2]);
      }
    } else if (CLOCK_POINTS.has(e.f)) {
      if (!open.has('clock')) open.set('clock', e);
    } else if (e.f === 'heal') {
      for (const [kind, start] of open) spans.push({ kind, start, stop: e });
      open.clear();
    }
  }
  for (const [kind, start] of open) spans.push({ kind, start, stop: undefined });
  return spans;
}

/**
 * Whether a nemesis op kills its nodes: `start-kill`, and the disk package's power loss (`start-disk`
 * with fault lose-unsynced, which also throws away what was not synced, and a `stop-disk` that ends
 * its fault with one on the nodes `crashAtStop` lists, or on all of them where it is `true`, as
 * histories of 983a792 record it).
 */
export function isKillOp(op: { readonly f: string; readonly value?: unknown }): boolean {
  const v = op.value as { fault?: unknown; crashAtStop?: unknown } | undefined;
  return op.f === 'start-kill' || (op.f === 'start-disk' && v?.fault === 'lose-unsynced') || (op.f === 'stop-disk' && (v?.crashAtStop === true || (Array.isArray(v?.crashAtStop) && v.crashAtStop.length > 0)));
}

/** The nodes a kill op (isKillOp) may have killed: those it records as crashed, else those it meant to crash, else those it names. */
export function killedNodes(op: { readonly value?: unknown }): string[] {
  const v = (op.value ?? {}) as { nodes?: unknown; crashed?: unknown; crashAtStop?: unknown };
  const list = Array.isArray(v.crashed) ? v.crashed : Array.isArray(v.crashAtStop) ? v.crashAtStop : Array.isArray(v.nodes) ? v.nodes : [];
  return list.filter((n): n is string => typeof n === 'string');
}

/** When each node may have been killed: the span of every kill op that named it. */
export interface KillWindows {
  /** Kill ops seen. */
  readonly count: number;
  /** History index of a kill of `node` that may have happened after `fromNs` and before `toNs`, or undefined. */
  between(node: string, fromNs: number, toNs: number): number | undefined;
}

/**
 * Kill windows from the nemesis ops of a history: a `start-kill` op is recorded once it completed (the
 * container had stopped), and carries `invokedAt`, when it was invoked; the kill happened in between.
 * Without `invokedAt` (older histories) the window reaches 30 s back, so a crash is never ruled out.
 */
type NemesisLike = readonly { readonly index: number; readonly time: number; readonly process: unknown; readonly f: string; readonly value: unknown }[];
const killCache = new WeakMap<NemesisLike, { length: number; windows: KillWindows }>();

export function killWindows(history: NemesisLike): KillWindows {
  // Several checkers ask for the same history's windows; compute them once.
  const hit = killCache.get(history);
  if (hit && hit.length === history.length) return hit.windows;
  const windows = computeKillWindows(history);
  killCache.set(history, { length: history.length, windows });
  return windows;
}

function computeKillWindows(history: NemesisLike): KillWindows {
  const spans = new Map<string, { from: number; to: number; index: number }[]>();
  let count = 0;
  for (const op of history) {
    if (op.process !== 'nemesis' || !isKillOp(op)) continue;
    const v = (op.value ?? {}) as { invokedAt?: unknown };
    count++;
    const from = typeof v.invokedAt === 'number' ? v.invokedAt : op.time - 30e9;
    for (const node of killedNodes(op)) {
      let list = spans.get(node);
      if (!list) spans.set(node, (list = []));
      list.push({ from, to: op.time, index: op.index });
    }
  }
  return {
    count,
    between(node, fromNs, toNs) {
      for (const s of spans.get(node) ?? []) if (s.from < toNs && s.to > fromNs) return s.index;
      return undefined;
    },
  };
}
