// The partition fault package: network partitions as iptables DROP rules inside the node containers.
// Each start op carries a grudge of a seeded shape (halves, isolate, majority/minority, bridge,
// majorities ring, asymmetric, complete), sometimes flapping (switched on and off every few hundred
// ms until the stop op); the stop op and heal() empty faultline's own chain on every node. Every
// non-flapping start and every stop is proven with a connectivity probe from inside the running nodes
// (recorded in the op: `probe`, `verified`), and a node that comes back from a kill or a pause gets
// the grudge in force again (Docker gives a restarted container a fresh network namespace).
import type { Rng } from '../harness/rng.ts';
import type { NemesisValue } from '../harness/history.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent } from './types.ts';
import {
  flapSchedule,
  grudgeNodes,
  makeGrudge,
  minNodes,
  normalizeGrudge,
  shapeNames,
  validateGrudge,
  type Connectivity,
  type Grudge,
  type ShapeName,
} from './grudge.ts';
import { allNodes, collectErrors, errorText, flushChain, listChain, onEveryNode, PARTITION_CHAIN, partitionRules, removeChain, run, setChainRules } from './net.ts';
import { completion, failedOp, healReport, HEAL_LATER, nodeStates, notRunningText, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { PROBE_LEAD_MS, PROBE_WINDOW_MS, grudgeMismatches, probeConnectivity, type ProbeOptions } from './probe.ts';
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
  readonly #apply: (grudge: Grudge) => Promise<Error[]>;
  readonly #grudge: Grudge;
  readonly #periodMs: number;
  #stopped = false;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  /** Settles once the first step (the grudge on) was applied, with that step's errors. */
  readonly first: Promise<Error[]>;
  #firstDone!: (errors: Error[]) => void;
  flips = 0;
  readonly errors: string[] = [];

  constructor(apply: (grudge: Grudge) => Promise<Error[]>, grudge: Grudge, periodMs: number) {
    this.#apply = apply;
    this.#grudge = grudge;
    this.#periodMs = periodMs;
    this.first = new Promise((resolve) => (this.#firstDone = resolve));
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
      if (this.#stopped) break;
      // Keep flapping: one failed flip (a node briefly busy) should not end the fault early, but the
      // stop op reports every failure. A stopped or paused node is no failure (it gets the step in
      // force when it comes back).
      const errors = await this.#apply(step.grudge).catch((error: unknown) => [error instanceof Error ? error : new Error(String(error))]);
      if (errors.length === 0) this.flips++;
      for (const error of errors) if (this.errors.length < 10) this.errors.push(errorText(error));
      if (step.atMs === 0) this.#firstDone(errors);
    }
    this.#firstDone([]);
  }

  /** Stops flapping and waits for a flip in progress to finish, so nothing is applied after it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#done;
  }
}

/** What a probe after a partition op measured, and whether it matched the grudge in force. */
export interface PartitionCheck {
  /** The measured one-way (UDP) matrix among the nodes that could run the probe. */
  readonly probe?: Connectivity;
  /** Nodes that could not run the probe (stopped or paused), with their state. */
  readonly excluded?: Record<string, string>;
  readonly verified: boolean;
  /** Why not verified, naming nodes and pairs. */
  readonly unverified?: string;
  /** How long the probe took, in ms. */
  readonly probeMs?: number;
  /** How many probes it took, when more than one (a pair heard nothing and was probed again). */
  readonly probeAttempts?: number;
}

export class PartitionNemesis implements Nemesis {
  readonly name = 'partition';
  #cluster: ClusterControl | undefined;
  #flapper: Flapper | undefined;
  /** The grudge in force (while flapping, the step in force), which a node that comes back gets again. */
  #grudge: Grudge = {};
  /** Nodes whose last change was deferred (stopped or paused): they need it when they come back. */
  readonly #pending = new Set<string>();
  #unlisten: (() => void) | undefined;
  /** Probes run one at a time (they share a UDP port); a probe asked for while one is queued joins it. */
  #queued: Promise<PartitionCheck> | undefined;
  #probing: Promise<unknown> = Promise.resolve();

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    // Creates the (empty) chain and its jump on every node now, so the first fault is one transaction.
    await allNodes(cluster.nodes.map((n) => n.name), (node) => setChainRules(cluster, node, PARTITION_CHAIN, []));
    this.#unlisten?.();
    this.#unlisten = cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f === F.start) return await this.#start(cluster, op);
      if (op.f === F.stop) return await this.#stop(cluster, op);
      return unknownOp(this.name, op, [F.start, F.stop]);
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /**
   * Puts a grudge in force on every node; a stopped or paused node is deferred (it gets the grudge in
   * force when it comes back). Returns the real failures.
   */
  async #apply(cluster: ClusterControl, grudge: Grudge): Promise<{ deferred: Record<string, string>; errors: Error[] }> {
    this.#grudge = grudge;
    const rules = partitionRules(cluster, grudge);
    const result = await onEveryNode(cluster.nodes.map((n) => n.name), (node) => setChainRules(cluster, node, PARTITION_CHAIN, rules[node]));
    for (const node of cluster.nodes.map((n) => n.name)) {
      if (node in result.deferred) this.#pending.add(node);
      else if (!result.errors.some((e) => e.message.includes(node))) this.#pending.delete(node);
    }
    return result;
  }

  async #start(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const grudge = normalizeGrudge(op.value.grudge ?? {});
    validateGrudge(cluster.nodes.map((n) => n.name), grudge);
    // A start while a flapping partition is still on replaces it (the alternation never does this).
    await this.#stopFlapping();
    const periodMs = op.value.flapPeriodMs;
    const done = { grudge, nodes: grudgeNodes(grudge) };
    if (periodMs !== undefined) {
      if (typeof periodMs !== 'number' || !(periodMs > 0)) {
        throw new Error(`start-partition: expected value.flapPeriodMs to be a positive number of ms, got ${String(periodMs)}`);
      }
      // A flapping partition is verified by its flips: the first one (the grudge on) here, every one
      // in the stop op (flips and errors). It switches faster than a probe can measure.
      const flapper = new Flapper(async (g) => (await this.#apply(cluster, g)).errors, grudge, periodMs);
      this.#flapper = flapper;
      const errors = await flapper.first;
      const verified = errors.length === 0;
      return completion(op, { ...done, verified, ...(verified ? {} : { unverified: `the first flip failed: ${errors.map((e) => errorText(e)).join('; ')}` }) });
    }
    const applied = await this.#apply(cluster, grudge);
    if (applied.errors.length > 0) {
      return completion(op, { ...done, ...deferredValue(applied.deferred), verified: false, unverified: `not applied on every node: ${applied.errors.map((e) => errorText(e)).join('; ')}` }, new AggregateError(applied.errors));
    }
    const check = await this.#check(cluster);
    return completion(op, { ...done, ...deferredValue(applied.deferred), ...check });
  }

  async #stop(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const flapped = await this.#stopFlapping();
    const applied = await this.#apply(cluster, {});
    const check = applied.errors.length === 0 ? await this.#check(cluster) : { verified: false, unverified: `not removed on every node: ${applied.errors.map((e) => errorText(e)).join('; ')}` };
    const value = { grudge: {}, ...(flapped.flips > 0 ? { flips: flapped.flips } : {}), ...deferredValue(applied.deferred), ...check };
    const errors = [...(flapped.errors.length > 0 ? [new Error(`while flapping: ${flapped.errors.join('; ')}`)] : []), ...applied.errors];
    return completion(op, value, errors.length > 0 ? new AggregateError(errors) : undefined);
  }

  /** Probes the running nodes (queued behind any probe in progress) and compares with the grudge in force. */
  #check(cluster: ClusterControl): Promise<PartitionCheck> {
    if (this.#queued) return this.#queued;
    const queued = this.#probing.then(() => {
      this.#queued = undefined;
      return checkPartition(cluster, this.#grudge);
    });
    this.#queued = queued;
    this.#probing = queued.catch(() => undefined);
    return queued;
  }

  /**
   * A node came back: it gets its rules of the grudge in force again, read back as proof. Addresses are
   * fixed (harness/cluster.ts), so the other nodes' rules still name it correctly and only the node that
   * came back needs them; a probe here (all nodes, up to three attempts) made one restart of two nodes
   * during a partition take 8 s, which pushed the last fault of a round past the time limit.
   */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    if (event === 'healthy') return undefined;
    const active = this.#flapper !== undefined || Object.keys(this.#grudge).length > 0;
    if (!active && !this.#pending.has(node)) return undefined;
    // A flapping partition puts its grudge on every node at its next flip.
    if (this.#flapper) return { node, verified: true, flapping: true };
    const grudge = this.#grudge;
    const rules = partitionRules(cluster, grudge)[node] ?? [];
    try {
      await setChainRules(cluster, node, PARTITION_CHAIN, rules);
      const listed = await listChain(cluster, node, PARTITION_CHAIN);
      this.#pending.delete(node);
      const verified = listed.length === rules.length;
      return {
        node,
        grudge,
        rules: listed.length,
        verified,
        ...(verified ? {} : { unverified: `${node} lists ${listed.length} rules in ${PARTITION_CHAIN} after re-applying ${rules.length}` }),
      };
    } catch (error) {
      const message = errorText(error);
      return { node, grudge, verified: false, unverified: `re-applying failed: ${message}`, error: message };
    }
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
      this.#grudge = {};
      this.#pending.clear();
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
    this.#unlisten?.();
    this.#unlisten = undefined;
    const cluster = this.#cluster;
    if (!cluster) return;
    await allNodes(cluster.nodes.map((n) => n.name), (node) => removeChain(cluster, node, PARTITION_CHAIN));
  }
}

/** `deferred: { n2: "stopped" }` when some nodes got the change only when they come back; {} otherwise. */
function deferredValue(deferred: Record<string, string>): { deferred?: Record<string, string> } {
  return Object.keys(deferred).length > 0 ? { deferred } : {};
}

/**
 * Probes every running node (stopped and paused ones cannot run the probe: they are excluded and named)
 * and compares the one-way matrix with the grudge: verified when every probed pair matches it.
 */
export async function checkPartition(cluster: ClusterControl, grudge: Grudge, options: ProbeOptions = {}): Promise<PartitionCheck> {
  const nodes = sortNodes(cluster.nodes.map((n) => n.name));
  const states = await nodeStates(cluster, nodes);
  const running = nodes.filter((n) => states[n] === 'running');
  const excluded = Object.fromEntries(nodes.filter((n) => states[n] !== 'running').map((n) => [n, states[n]]));
  const ex = Object.keys(excluded).length > 0 ? { excluded } : {};
  if (running.length < 2) {
    return { ...ex, verified: false, unverified: `fewer than two nodes are running (${running.join(', ') || 'none'}; ${notRunningText(states)}), so nothing could be probed; the rules are re-applied and probed when they come back` };
  }
  const started = performance.now();
  // A packet that arrived proves its pair is not cut; a pair that heard nothing may only have missed
  // the window (a probe that started late on a loaded machine). So a probe that finds a pair cut that
  // the grudge lets through is repeated, up to PROBE_ATTEMPTS in all, and a pair counts as through when
  // any attempt heard it; a pair that got through against the grudge is conclusive at once. Each repeat
  // doubles the window and the launch lead: with the load average at 6.6 on 2 cores (a validation run
  // beside other work), docker exec of the three probes started so far apart that three 700 ms
  // probes in a row each missed a pair the grudge lets through, in 3 of 6 partition ops of one run.
  // A pair a rule really cuts stays silent however long the window, so only the time grows.
  let probe: Connectivity | undefined;
  let attempts = 0;
  const windowMs = options.windowMs ?? PROBE_WINDOW_MS;
  const leadMs = options.leadMs ?? PROBE_LEAD_MS;
  try {
    while (attempts < PROBE_ATTEMPTS) {
      const scale = 2 ** attempts;
      attempts++;
      const next = (await probeConnectivity(cluster, { ...options, windowMs: windowMs * scale, leadMs: leadMs * scale, only: running })).oneWay;
      probe = probe ? orMatrices(probe, next) : next;
      const mismatches = grudgeMismatches(probe, grudge);
      if (mismatches.length === 0 || mismatches.some((m) => m.includes('got through'))) break;
    }
  } catch (error) {
    return { ...ex, verified: false, unverified: `the probe failed: ${errorText(error)}` };
  }
  if (!probe) return { ...ex, verified: false, unverified: 'the probe did not run' };
  const probeMs = Math.round(performance.now() - started);
  const mismatches = grudgeMismatches(probe, grudge);
  const note = Object.keys(excluded).length > 0 ? ` (${notRunningText(states)} could not run the probe)` : '';
  const tries = attempts > 1 ? { probeAttempts: attempts } : {};
  return mismatches.length === 0
    ? { probe, ...ex, verified: true, probeMs, ...tries }
    : { probe, ...ex, verified: false, unverified: `the probe does not match the grudge: ${mismatches.join('; ')}${note}`, probeMs, ...tries };
}

/** How many probes a partition check may take before it calls a pair cut. */
export const PROBE_ATTEMPTS = 3;

/** Pairs that got through in either matrix. */
function orMatrices(a: Connectivity, b: Connectivity): Connectivity {
  return Object.fromEntries(Object.keys(a).map((from) => [from, Object.fromEntries(Object.keys(a[from]).map((to) => [to, a[from][to] || b[from]?.[to] === true]))]));
}
