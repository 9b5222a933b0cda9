// Network partitions as pure data. A grudge maps each node to the nodes whose packets it drops, as in
// Jepsen: `{ n1: ['n3'] }` means n1 discards every packet whose source is n3, while n3 may still hear
// n1. Every shape here is computed from the node list and a seeded Rng, with no I/O, so the shapes are
// unit-tested without Docker and nemesis/net.ts only has to turn a grudge into iptables rules.
import type { Rng } from '../harness/rng.ts';

/** Node → nodes whose packets it drops. Nodes that drop nothing may be absent or map to []. */
export type Grudge = Record<string, string[]>;

/** from → to → true when packets sent by `from` arrive at `to`. */
export type Connectivity = Record<string, Record<string, boolean>>;

export const shapeNames = [
  'halves',
  'isolate',
  'majority-minority',
  'bridge',
  'majorities-ring',
  'asymmetric',
  'complete',
] as const;

export type ShapeName = (typeof shapeNames)[number];

/** The smallest number of nodes that is more than half of n. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The grudge that cuts the given components from each other: every node drops every node outside its
 * own component. Nodes listed in no component are left untouched (they hear and are heard by everyone).
 */
export function grudgeFromComponents(components: readonly (readonly string[])[]): Grudge {
  const all = components.flat();
  const grudge: Grudge = {};
  for (const component of components) {
    const inside = new Set(component);
    for (const node of component) grudge[node] = all.filter((other) => !inside.has(other));
  }
  return normalizeGrudge(grudge);
}

/** Random halves: the nodes, shuffled, split into floor(n/2) and ceil(n/2) that cannot hear each other. */
export function randomHalves(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('halves', nodes, 2);
  const shuffled = rng.shuffle(nodes);
  const cut = Math.floor(shuffled.length / 2);
  return grudgeFromComponents([shuffled.slice(0, cut), shuffled.slice(cut)]);
}

/** One random node cut off from all the others (and they from it). */
export function isolateOne(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('isolate', nodes, 2);
  const loner = rng.pick(nodes);
  return grudgeFromComponents([[loner], nodes.filter((node) => node !== loner)]);
}

/**
 * A strict majority on one side and a minority of random size (1 up to the largest minority) on the
 * other. Unlike random halves with an even node count, one side can always still form a quorum.
 */
export function majorityMinority(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('majority-minority', nodes, 2);
  const shuffled = rng.shuffle(nodes);
  const minoritySize = rng.range(1, nodes.length - majority(nodes.length));
  return grudgeFromComponents([shuffled.slice(0, minoritySize), shuffled.slice(minoritySize)]);
}

/**
 * Two halves that cannot hear each other plus one bridge node that hears and is heard by both, as in
 * Jepsen's `bridge`. Gossip can cross only through the bridge.
 */
export function bridge(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('bridge', nodes, 3);
  const [bridgeNode, ...rest] = rng.shuffle(nodes);
  const cut = Math.floor(rest.length / 2);
  const grudge = grudgeFromComponents([rest.slice(0, cut), rest.slice(cut)]);
  grudge[bridgeNode] = [];
  return normalizeGrudge(grudge);
}

/**
 * Every node sees a majority (itself included, in both directions), but no two nodes see the same
 * majority. The nodes are shuffled onto a ring and each one keeps only its r nearest neighbours on
 * either side, with r the smallest radius whose window is a majority. With three nodes such a window
 * is the whole ring, so the ring degrades to a path (n1 - n2 - n3): the ends see different majorities
 * and the middle sees everyone. The grudge is symmetric, so TCP works exactly between visible pairs.
 */
export function majoritiesRing(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('majorities-ring', nodes, 3);
  const ring = rng.shuffle(nodes);
  const n = ring.length;
  if (n === 3) {
    const [end1, middle, end2] = ring;
    return normalizeGrudge({ [end1]: [end2], [middle]: [], [end2]: [end1] });
  }
  const radius = Math.ceil((majority(n) - 1) / 2);
  const grudge: Grudge = {};
  ring.forEach((node, i) => {
    grudge[node] = ring.filter((_, j) => {
      const distance = Math.min((i - j + n) % n, (j - i + n) % n);
      return distance > radius;
    });
  });
  return normalizeGrudge(grudge);
}

/**
 * One direction only: the nodes are split into random halves, and every node of the first half drops
 * the packets of every node of the second half, while the second half still hears the first. Plain
 * TCP needs both directions, so it breaks both ways; one-way traffic (UDP, or the SYN of a connect)
 * still flows from the first half to the second.
 */
export function asymmetric(nodes: readonly string[], rng: Rng): Grudge {
  requireNodes('asymmetric', nodes, 2);
  const shuffled = rng.shuffle(nodes);
  const cut = Math.max(1, Math.floor(shuffled.length / 2));
  const deaf = shuffled.slice(0, cut);
  const unheard = shuffled.slice(cut);
  const grudge: Grudge = {};
  for (const node of deaf) grudge[node] = unheard.slice();
  return normalizeGrudge(grudge);
}

/** Every node cut from every other node. */
export function complete(nodes: readonly string[]): Grudge {
  requireNodes('complete', nodes, 2);
  return grudgeFromComponents(nodes.map((node) => [node]));
}

/** Computes a grudge of the named shape. */
export function makeGrudge(shape: ShapeName, nodes: readonly string[], rng: Rng): Grudge {
  switch (shape) {
    case 'halves':
      return randomHalves(nodes, rng);
    case 'isolate':
      return isolateOne(nodes, rng);
    case 'majority-minority':
      return majorityMinority(nodes, rng);
    case 'bridge':
      return bridge(nodes, rng);
    case 'majorities-ring':
      return majoritiesRing(nodes, rng);
    case 'asymmetric':
      return asymmetric(nodes, rng);
    case 'complete':
      return complete(nodes);
    default:
      throw new Error(`Unknown partition shape "${String(shape)}"; expected one of: ${shapeNames.join(', ')}`);
  }
}

/** The smallest node count each shape needs. */
export function minNodes(shape: ShapeName): number {
  return shape === 'bridge' || shape === 'majorities-ring' ? 3 : 2;
}

// ---------------------------------------------------------------------------
// Flapping: a shape switched on and off on a fixed period.
// ---------------------------------------------------------------------------

export interface FlapStep {
  /** Milliseconds after the flapping started at which this grudge takes effect. */
  readonly atMs: number;
  /** The grudge in force from atMs on; {} while the partition is switched off. */
  readonly grudge: Grudge;
}

/**
 * The endless schedule of a flapping partition: the grudge at 0 ms, nothing at periodMs, the grudge
 * again at 2 × periodMs, and so on. The nemesis walks it with timers until the fault is stopped.
 */
export function* flapSchedule(grudge: Grudge, periodMs: number): Generator<FlapStep> {
  if (!Number.isFinite(periodMs) || periodMs <= 0) {
    throw new Error(`Expected the flapping period periodMs to be a positive number of ms, got ${periodMs}`);
  }
  const on = normalizeGrudge(grudge);
  for (let step = 0; ; step++) yield { atMs: step * periodMs, grudge: step % 2 === 0 ? on : {} };
}

// ---------------------------------------------------------------------------
// What a grudge promises.
// ---------------------------------------------------------------------------

/**
 * The one-way connectivity a grudge promises: m[from][to] is true when packets sent by `from` reach
 * `to`, that is, when `to` does not drop `from`. A node always reaches itself.
 */
export function connectivity(nodes: readonly string[], grudge: Grudge): Connectivity {
  validateGrudge(nodes, grudge);
  const matrix: Connectivity = {};
  for (const from of nodes) {
    matrix[from] = {};
    for (const to of nodes) matrix[from][to] = from === to || !(grudge[to] ?? []).includes(from);
  }
  return matrix;
}

/**
 * The two-way connectivity a grudge promises: true when packets flow both ways, which is what a TCP
 * connection (and so gRPC) needs.
 */
export function twoWayConnectivity(nodes: readonly string[], grudge: Grudge): Connectivity {
  const oneWay = connectivity(nodes, grudge);
  const matrix: Connectivity = {};
  for (const a of nodes) {
    matrix[a] = {};
    for (const b of nodes) matrix[a][b] = oneWay[a][b] && oneWay[b][a];
  }
  return matrix;
}

/** The nodes `node` exchanges packets with in both directions, itself included. */
export function visibleFrom(nodes: readonly string[], grudge: Grudge, node: string): string[] {
  const matrix = twoWayConnectivity(nodes, grudge);
  return nodes.filter((other) => matrix[node][other]);
}

/** Throws a clear error when the grudge names unknown nodes or makes a node drop itself. */
export function validateGrudge(nodes: readonly string[], grudge: Grudge): void {
  const known = new Set(nodes);
  for (const [node, dropped] of Object.entries(grudge)) {
    if (!known.has(node)) {
      throw new Error(`Grudge names unknown node "${node}"; the cluster has: ${nodes.join(', ')}`);
    }
    for (const other of dropped) {
      if (!known.has(other)) {
        throw new Error(`Grudge of ${node} names unknown node "${other}"; the cluster has: ${nodes.join(', ')}`);
      }
      if (other === node) throw new Error(`Grudge of ${node} drops its own packets; remove "${node}" from its list`);
    }
  }
}

/** Sorted keys and lists with empty entries removed, so equal grudges serialise identically. */
export function normalizeGrudge(grudge: Grudge): Grudge {
  const out: Grudge = {};
  for (const node of Object.keys(grudge).sort()) {
    const dropped = [...new Set(grudge[node])].sort();
    if (dropped.length > 0) out[node] = dropped;
  }
  return out;
}

/** The nodes a grudge touches: those that drop packets and those whose packets are dropped. */
export function grudgeNodes(grudge: Grudge): string[] {
  const touched = new Set<string>();
  for (const [node, dropped] of Object.entries(grudge)) {
    if (dropped.length === 0) continue;
    touched.add(node);
    for (const other of dropped) touched.add(other);
  }
  return [...touched].sort();
}

function requireNodes(shape: string, nodes: readonly string[], min: number): void {
  if (new Set(nodes).size !== nodes.length) {
    throw new Error(`The ${shape} partition got duplicate node names: ${nodes.join(', ')}`);
  }
  if (nodes.length < min) {
    throw new Error(`The ${shape} partition needs at least ${min} nodes, got ${nodes.length}; use --nodes ${min} or more`);
  }
}
