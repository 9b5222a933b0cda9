// Seeded building blocks shared by every fault package's schedule: which nodes a fault targets (one,
// a minority, a majority, all, or a random subset, as Jepsen's node specs), and the endless alternation
// of start and stop ops. Pure: the same rng state always gives the same targets and ops.
import type { Rng } from '../harness/rng.ts';
import type { NemesisOp } from './types.ts';
import { majority } from './grudge.ts';

export const targetKinds = ['one', 'minority', 'majority', 'all', 'random'] as const;
export type TargetKind = (typeof targetKinds)[number];

/** The nodes of the given target kind, sorted; never empty. */
export function targetNodes(kind: TargetKind, nodes: readonly string[], rng: Rng): string[] {
  if (nodes.length === 0) throw new Error('Cannot target nodes of an empty cluster');
  const shuffled = rng.shuffle(nodes);
  let picked: string[];
  switch (kind) {
    case 'one':
      picked = shuffled.slice(0, 1);
      break;
    case 'minority':
      // The largest minority of a 1- or 2-node cluster is empty; one node is the closest honest choice.
      picked = shuffled.slice(0, rng.range(1, Math.max(1, nodes.length - majority(nodes.length))));
      break;
    case 'majority':
      picked = shuffled.slice(0, majority(nodes.length));
      break;
    case 'all':
      picked = shuffled;
      break;
    case 'random': {
      picked = shuffled.filter(() => rng.next() < 0.5);
      if (picked.length === 0) picked = shuffled.slice(0, 1);
      break;
    }
    default:
      throw new Error(`Unknown target "${String(kind)}"; expected one of: ${targetKinds.join(', ')}`);
  }
  return sortNodes(picked);
}

/** Draws a target kind from `kinds` and returns it with its nodes. */
export function drawTargets(
  nodes: readonly string[],
  rng: Rng,
  kinds: readonly TargetKind[] = targetKinds,
): { kind: TargetKind; nodes: string[] } {
  if (kinds.length === 0) throw new Error(`Expected at least one target kind of: ${targetKinds.join(', ')}`);
  const kind = rng.pick(kinds);
  return { kind, nodes: targetNodes(kind, nodes, rng) };
}

/**
 * The endless schedule start, stop, start, stop, ... Each start op is drawn from the rng when it is
 * needed; the stop op may depend on the start it ends (e.g. which nodes to restart).
 */
export function* alternate(
  rng: Rng,
  start: (rng: Rng) => NemesisOp,
  stop: (started: NemesisOp, rng: Rng) => NemesisOp,
): Generator<NemesisOp> {
  for (;;) {
    const started = start(rng);
    yield started;
    yield stop(started, rng);
  }
}

/** Node names in natural order (n2 before n10). */
export function sortNodes(nodes: Iterable<string>): string[] {
  return [...nodes].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

// ---------------------------------------------------------------------------
// The round-robin schedule of a run's fault packages (harness/interpreter.ts walks it).
// ---------------------------------------------------------------------------

/**
 * The order in which one round advances k packages, given a permutation of their indexes:
 * P0, P1, P0, P2, P1, P3, P2, …, P(k-1), P(k-1). Each package gets two turns, its start and then its
 * stop, and its stop comes after the next package has started, so consecutive faults overlap while
 * every fault is stopped within the round. For k = 1 it is P0, P0.
 */
export function roundOrder(permutation: readonly number[]): number[] {
  const k = permutation.length;
  if (k === 0) return [];
  const order = [permutation[0]];
  for (let j = 1; j < k; j++) order.push(permutation[j], permutation[j - 1]);
  order.push(permutation[k - 1]);
  return order;
}

/** The endless sequence of package indexes: round after round, each with a fresh seeded permutation. */
export function* rounds(k: number, rng: Rng): Generator<number> {
  if (k <= 0) return;
  const indexes = Array.from({ length: k }, (_, i) => i);
  for (;;) yield* roundOrder(rng.shuffle(indexes));
}

/** One op of the walked schedule (walkSchedule): the package's index, its op, and why it moved, if it did. */
export interface ScheduledOp {
  readonly k: number;
  readonly op: NemesisOp;
  /** Set on a start that waited for the stop before it (see walkSchedule). */
  readonly movedAfter?: string;
}

/** The nodes an op names (value.nodes), or [] when it names none. */
function opTargets(op: NemesisOp): string[] {
  const nodes = op.value.nodes;
  return Array.isArray(nodes) ? nodes.filter((n): n is string => typeof n === 'string') : [];
}

/**
 * The packages' schedules walked in the round order (rounds()), with one exception. A start whose every
 * target is down because of a fault still in force (a kill, a pause, a power loss: what
 * `unavailable(k, op)` says package k's start op takes down) could take effect nowhere: a clock strobe
 * on a stopped node ends before the node is back, a partition of stopped nodes cannot be probed, a kill
 * of a stopped node kills nothing. When the next op in the order is the stop of such a fault, that stop
 * goes first and the start takes the next turn, on nodes that are back. Measured before: seed 1 of
 * `--nemesis all --workload lww` started its clock strobe on n2 while a power loss held all three nodes
 * down, and the run's verdict was unknown because clock never took effect. Pure: the same streams give
 * the same walk.
 */
export function* walkSchedule(
  iterators: readonly Iterator<NemesisOp>[],
  order: Iterator<number>,
  unavailable: (k: number, op: NemesisOp) => readonly string[],
): Generator<ScheduledOp> {
  // Package index → the nodes its start in force took down ([] when it leaves them running).
  const inForce = new Map<number, readonly string[]>();
  let peeked: number | undefined;
  const nextIndex = (): number | undefined => {
    if (peeked !== undefined) {
      const k = peeked;
      peeked = undefined;
      return k;
    }
    const n = order.next();
    return n.done ? undefined : n.value;
  };
  const emit = (s: ScheduledOp): ScheduledOp => {
    if (s.op.f.startsWith('stop-')) inForce.delete(s.k);
    else inForce.set(s.k, unavailable(s.k, s.op));
    return s;
  };
  for (;;) {
    const k = nextIndex();
    if (k === undefined) return;
    const next = iterators[k].next();
    if (next.done) continue;
    const op = next.value;
    const targets = opTargets(op);
    if (!op.f.startsWith('stop-') && targets.length > 0) {
      const downBy = [...inForce].filter(([j, down]) => j !== k && targets.some((t) => down.includes(t)));
      const down = new Set(downBy.flatMap(([, d]) => d));
      if (targets.every((t) => down.has(t))) {
        const j = nextIndex();
        if (j !== undefined && downBy.some(([d]) => d === j)) {
          const stop = iterators[j].next();
          if (!stop.done && stop.value.f.startsWith('stop-')) {
            yield emit({ k: j, op: stop.value });
            yield emit({ k, op, movedAfter: `${stop.value.f}: every target (${targets.join(', ')}) was down` });
            continue;
          }
          if (!stop.done) {
            // Not a stop after all (a package whose schedule is not start/stop): keep the order.
            yield emit({ k, op });
            yield emit({ k: j, op: stop.value });
            continue;
          }
        } else if (j !== undefined) peeked = j;
      }
    }
    yield emit({ k, op });
  }
}

/**
 * The default schedule for k packages (no --nemesis-interval): interval timeLimit / (2k + 3) and one
 * interval of calm before the first op, so the workload runs fault-free first, then one whole round
 * (every start and every stop) is due with two intervals to spare: slow ops (a restart waits for
 * Health, a probe may be repeated) push later ops back, and the clients still run after the last stop
 * (a killed node is restarted while they still run). Measured with (2k + 1) and no lead: one run in five
 * of `--nemesis all` at 25 s had its last stop pushed past the limit. The lead is there because
 * consecutive faults overlap, so in an `all` run the only calm window the lag checker (which needs its
 * bound, 1.5 s by default, free of faults after a write) can judge is the run's start: with seven
 * packages at 25 s and no lead, the first fault came 1.56 s in and left it 0.06 s of writes, often none
 * (its verdict is then unknown). With it, the first fault comes 2.94 s in.
 */
export function autoSchedule(timeLimitS: number, k: number): { readonly intervalS: number; readonly leadS: number } {
  const intervalS = timeLimitS / (2 * Math.max(1, k) + 3);
  return { intervalS, leadS: intervalS };
}

/**
 * When op i of the schedule is due, in ns after the workload started: lead + (i + 1) × interval. Times
 * are absolute, so an op that overran (a restart waits for Health, a probe takes a while) does not push
 * the later ones back; the next op then runs at once.
 */
export function opDueNs(i: number, intervalS: number, leadS = 0): number {
  return Math.round((leadS + (i + 1) * intervalS) * 1e9);
}

/** How many ops are due before the time limit (no op starts at or after it). */
export function opsBefore(timeLimitS: number, intervalS: number, leadS = 0): number {
  const limitNs = Math.round(timeLimitS * 1e9);
  // Start near the answer and correct for rounding, so a tiny interval costs no long loop.
  let n = Math.max(0, Math.ceil((limitNs - leadS * 1e9) / (intervalS * 1e9)) - 2);
  while (n > 0 && opDueNs(n - 1, intervalS, leadS) >= limitNs) n--;
  while (opDueNs(n, intervalS, leadS) < limitNs) n++;
  return n;
}

/** Which packages of the first round get no start, or a start but no stop, when only `fit` ops run. */
export function roundShortfall(order: readonly number[], fit: number): { noStart: number[]; noStop: number[] } {
  const turns = new Map<number, number>();
  for (const i of order.slice(0, Math.max(0, fit))) turns.set(i, (turns.get(i) ?? 0) + 1);
  const all = [...new Set(order)];
  return {
    noStart: all.filter((i) => (turns.get(i) ?? 0) === 0),
    noStop: all.filter((i) => turns.get(i) === 1),
  };
}
