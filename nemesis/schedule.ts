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
