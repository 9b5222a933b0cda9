// The partition fault package: network partitions as iptables DROP rules inside the node containers.
// Each start op carries a grudge of a seeded shape (halves, isolate, majority/minority, bridge,
// majorities ring, asymmetric, complete), sometimes flapping (switched on and off every few hundred
// ms until the stop op); the stop op and heal() empty faultline's own chain on every node.
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp } from './types.ts';
import {
  flapSchedule,
  grudgeNodes,
  makeGrudge,
  minNodes,
  normalizeGrudge,
  shapeNames,
  validateGrudge,
  type Grudge,
  type ShapeName,
} from './grudge.ts';
import { applyGrudge, collectErrors, errorText, flushChain, PARTITION_CHAIN, removeChain, run, setChainRules, allNodes } from './net.ts';
import { completion, healReport, HEAL_LATER, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, sortNodes } from './schedule.ts';

export interface PartitionOptions extends FaultPackageOptions {
  /** Shapes to draw from; shapes needing more nodes than the cluster has are left out. @default all */
  readonly shapes?: readonly ShapeName[];
  /** Probability that a partition flaps instead of holding still. @default 0.2 */
  readonly flapProbability?: number;
  /** Range [min, max] of the flapping half-period in ms, drawn per fault. @default [300, 1000]; applying a grudge to 3 nodes takes about 200 ms (p50) */
  readonly flapPeriodMs?: readonly [number, number];
}

const F = { start: 'start-partition', stop: 'stop-partition' } as const;

/** The seeded start op of a partition: a grudge of a drawn shape, flapping or not. */
export function partitionStartOp(options: PartitionOptions, rng: Rng): NemesisOp {
  const shapes = (options.shapes ?? shapeNames).filter((s) => minNodes(s) <= options.nodes.length);
  if (shapes.length === 0) {
    throw new Error(`No partition shape fits ${options.nodes.length} node(s); partitions need at least 2 nodes (--nodes 2 or more)`);
  }
  const shape = rng.pick(shapes);
  const grudge = makeGrudge(shape, options.nodes, rng);
  const flapping = rng.next() < (options.flapProbability ?? 0.2);
  const [lo, hi] = options.flapPeriodMs ?? [300, 1000];
  const value: NemesisOp['value'] = { nodes: grudgeNodes(grudge), shape, grudge };
  if (flapping) value.flapPeriodMs = rng.range(lo, hi);
  return { f: F.start, value };
}

export function partitionPackage(options: PartitionOptions): FaultlinePackage {
  const nemesis = new PartitionNemesis();
  return {
    name: 'partition',
    healOrder: HEAL_LATER,
    nemesis,
    handles: (op) => op.f === F.start || op.f === F.stop,
    unsupported: (cluster) => iptablesUnsupported(cluster),
    ops: (rng) =>
      alternate(
        rng,
        (r) => partitionStartOp(options, r),
        (started) => ({ f: F.stop, value: { nodes: started.value.nodes ?? [], grudge: {} } }),
      ),
  };
}

/** Why iptables cannot be used in this cluster's containers, or undefined when it can. */
export async function iptablesUnsupported(cluster: ClusterControl): Promise<string | undefined> {
  const node = cluster.nodes[0]?.name;
  if (!node) return 'the cluster has no nodes';
  try {
    await run(cluster, node, ['iptables', '-w', '-n', '-L', 'INPUT']);
    return undefined;
  } catch (error) {
    return `iptables does not work in the node containers (${errorText(error)}); they need the iptables package and the NET_ADMIN capability`;
  }
}

/** Walks a flapping schedule with timers until stopped, applying each step's grudge. */
class Flapper {
  readonly #cluster: ClusterControl;
  readonly #grudge: Grudge;
  readonly #periodMs: number;
  #stopped = false;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  flips = 0;
  readonly errors: string[] = [];

  constructor(cluster: ClusterControl, grudge: Grudge, periodMs: number) {
    this.#cluster = cluster;
    this.#grudge = grudge;
    this.#periodMs = periodMs;
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    const startedAt = performance.now();
    for (const step of flapSchedule(this.#grudge, this.#periodMs)) {
      const waitMs = startedAt + step.atMs - performance.now();
      if (waitMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (this.#stopped) return;
      try {
        await applyGrudge(this.#cluster, step.grudge);
        this.flips++;
      } catch (error) {
        // Keep flapping: one failed flip (a node briefly busy) should not end the fault early, but the
        // stop op reports every failure.
        if (this.errors.length < 10) this.errors.push(errorText(error));
      }
    }
  }

  /** Stops flapping and waits for a flip in progress to finish, so nothing is applied after it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#done;
  }
}

export class PartitionNemesis implements Nemesis {
  readonly name = 'partition';
  #cluster: ClusterControl | undefined;
  #flapper: Flapper | undefined;

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    // Creates the (empty) chain and its jump on every node now, so the first fault is one transaction.
    await allNodes(cluster.nodes.map((n) => n.name), (node) => setChainRules(cluster, node, PARTITION_CHAIN, []));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f === F.start) return await this.#start(cluster, op);
      if (op.f === F.stop) return await this.#stop(cluster, op);
      return unknownOp(this.name, op, [F.start, F.stop]);
    } catch (error) {
      return completion(op, {}, error);
    }
  }

  async #start(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const grudge = normalizeGrudge(op.value.grudge ?? {});
    validateGrudge(cluster.nodes.map((n) => n.name), grudge);
    // A start while a flapping partition is still on replaces it (the alternation never does this).
    await this.#stopFlapping();
    const periodMs = op.value.flapPeriodMs;
    if (periodMs !== undefined) {
      if (typeof periodMs !== 'number' || !(periodMs > 0)) {
        throw new Error(`start-partition: expected value.flapPeriodMs to be a positive number of ms, got ${String(periodMs)}`);
      }
      this.#flapper = new Flapper(cluster, grudge, periodMs);
      return completion(op, { grudge, nodes: grudgeNodes(grudge) });
    }
    await applyGrudge(cluster, grudge);
    return completion(op, { grudge, nodes: grudgeNodes(grudge) });
  }

  async #stop(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const flapped = await this.#stopFlapping();
    await applyGrudge(cluster, {});
    const value = { grudge: {}, ...(flapped.flips > 0 ? { flips: flapped.flips } : {}) };
    const error = flapped.errors.length > 0 ? new Error(`while flapping: ${flapped.errors.join('; ')}`) : undefined;
    return completion(op, value, error);
  }

  async #stopFlapping(): Promise<{ flips: number; errors: string[] }> {
    const flapper = this.#flapper;
    this.#flapper = undefined;
    if (!flapper) return { flips: 0, errors: [] };
    await flapper.stop();
    return { flips: flapper.flips, errors: flapper.errors };
  }

  async heal() {
    const errors: unknown[] = [];
    try {
      await this.#stopFlapping();
      const cluster = requireCluster(this.name, this.#cluster);
      const nodes = sortNodes(cluster.nodes.map((n) => n.name));
      errors.push(...(await collectErrors(nodes, (node) => flushChain(cluster, node, PARTITION_CHAIN))));
      return healReport(errors, { nodes, grudge: {} });
    } catch (error) {
      return healReport([...errors, error], { grudge: {} });
    }
  }

  async teardown(): Promise<void> {
    await this.#stopFlapping();
    const cluster = this.#cluster;
    if (!cluster) return;
    await allNodes(cluster.nodes.map((n) => n.name), (node) => removeChain(cluster, node, PARTITION_CHAIN));
  }
}
