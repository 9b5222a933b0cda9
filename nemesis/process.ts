// What the kill and pause fault packages share: a nemesis for a process fault on whole nodes through
// ClusterControl (apply on start, undo on stop), which remembers every node it touched, so heal() undoes
// the fault on all of them even after a failed op, and the seeded schedule of drawn targets. Each op
// checks the container state afterwards (`verified`): a killed node is stopped, a paused one paused, a
// restarted one answered Health and runs, a resumed one runs. What the other nemeses re-applied on a
// node that came back is recorded in the op (`reapplied`).
import type { NemesisValue } from '../harness/history.ts';
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent, NodeBackReport, NodeState } from './types.ts';
import { collectErrors, errorText } from './net.ts';
import { completion, failedOp, healReport, HEAL_FIRST, NodeBackLog, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes, targetKinds } from './schedule.ts';

export type ProcessFaultOptions = FaultPackageOptions;

export interface ProcessFault {
  readonly name: 'kill' | 'pause';
  /** Applies the fault to one node. */
  readonly apply: (cluster: ClusterControl, node: string) => Promise<void>;
  /** Undoes it on one node; returns what the other nemeses re-applied when it came back. */
  readonly undo: (cluster: ClusterControl, node: string) => Promise<NodeBackReport | void>;
  /** What undo does, for messages. */
  readonly undoVerb: string;
  /** The container state the fault leaves a node in (kill: stopped, pause: paused). */
  readonly appliedState: NodeState;
  /**
   * A fault that cannot act on a stopped node (pause) is deferred there instead: the node is paused
   * when it comes back (healthy after a restart), so the fault still holds while it is in force.
   */
  readonly deferWhenStopped: boolean;
}

/** A nemesis for one process fault (kill or pause). */
export class ProcessNemesis implements Nemesis {
  readonly name: string;
  readonly #fault: ProcessFault;
  #cluster: ClusterControl | undefined;
  /** Nodes the fault was applied to (or attempted on) and not yet undone. */
  readonly #affected = new Set<string>();
  /** Nodes the fault is meant to hold on but could not be applied to yet (stopped): applied when they are back. */
  readonly #deferred = new Set<string>();
  #unlisten: (() => void) | undefined;

  constructor(fault: ProcessFault) {
    this.#fault = fault;
    this.name = fault.name;
  }

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    this.#unlisten?.();
    this.#unlisten = this.#fault.deferWhenStopped ? cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event)) : undefined;
  }

  /** Nodes now killed or paused by this nemesis. */
  affected(): string[] {
    return sortNodes(this.#affected);
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    const f = { start: `start-${this.name}`, stop: `stop-${this.name}` };
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f !== f.start && op.f !== f.stop) return unknownOp(this.name, op, [f.start, f.stop]);
      const nodes = sortNodes(opNodes(cluster, op));
      const starting = op.f === f.start;
      const unverified: string[] = [];
      const deferred: string[] = [];
      const reapplied: Record<string, NemesisValue> = {};
      const errors = await collectErrors(nodes, async (node) => {
        if (starting) {
          // Remember the node before acting: a SIGKILL that timed out may still have landed.
          this.#affected.add(node);
          if (this.#fault.deferWhenStopped && (await cluster.state(node)) === 'stopped') {
            this.#deferred.add(node);
            deferred.push(node);
            return;
          }
          await this.#fault.apply(cluster, node);
          const state = await cluster.state(node);
          if (state !== this.#fault.appliedState) unverified.push(`${node} is ${state} after ${this.name}, expected ${this.#fault.appliedState}`);
          return;
        }
        this.#deferred.delete(node);
        const report = await this.#fault.undo(cluster, node);
        this.#affected.delete(node);
        if (report && Object.keys(report.reapplied).length > 0) reapplied[node] = report.reapplied;
        const state = await cluster.state(node);
        // A resumed node may be stopped by a kill in force meanwhile: it is no longer paused, which is what the stop asks.
        const undone = this.#fault.appliedState === 'paused' ? state !== 'paused' : state === 'running';
        if (!undone) unverified.push(`${node} is ${state} after ${this.#fault.undoVerb}`);
        if (report && report.errors.length > 0) throw new Error(`${node}: after ${this.#fault.undoVerb}: ${report.errors.join('; ')}`);
      });
      for (const e of errors) unverified.push(errorText(e));
      // A pause deferred on every target (all stopped) has not taken effect yet: it is verified when
      // the nodes come back and are paused (recorded in the op that restarted them, under `reapplied`).
      if (starting && deferred.length === nodes.length) unverified.push(`${deferred.join(', ')} ${deferred.length === 1 ? 'is' : 'are'} stopped: paused when restarted`);
      const value: NemesisValue = {
        nodes,
        affected: this.affected(),
        verified: unverified.length === 0,
        ...(unverified.length > 0 ? { unverified: unverified.join('; ') } : {}),
        ...(deferred.length > 0 ? { deferred: Object.fromEntries(deferred.map((n) => [n, 'stopped'])) } : {}),
        ...(Object.keys(reapplied).length > 0 ? { reapplied } : {}),
      };
      return completion(op, value, errors.length > 0 ? new AggregateError(errors) : undefined);
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /** A node this fault is deferred on came back: apply the fault now that it is healthy. */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    if (event !== 'healthy' || !this.#deferred.has(node)) return undefined;
    this.#deferred.delete(node);
    try {
      await this.#fault.apply(cluster, node);
    } catch (error) {
      return { node, verified: false, unverified: errorText(error), error: errorText(error) };
    }
    const state = await cluster.state(node);
    return state === this.#fault.appliedState
      ? { node, [`${this.name}d`]: true, verified: true }
      : { node, verified: false, unverified: `${node} is ${state} after ${this.name}, expected ${this.#fault.appliedState}` };
  }

  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      this.#deferred.clear();
      const nodes = this.affected();
      const back = new NodeBackLog();
      const errors = await collectErrors(nodes, async (node) => {
        try {
          back.add(node, await this.#fault.undo(cluster, node));
        } catch (error) {
          throw new Error(`${node}: ${this.#fault.undoVerb} failed: ${(error as Error).message}`, { cause: error });
        }
        this.#affected.delete(node);
      });
      return healReport(errors, { nodes, affected: this.affected(), ...back.value() });
    } catch (error) {
      return healReport([error], { affected: this.affected() });
    }
  }

  async teardown(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
  }
}

export function processPackage(fault: ProcessFault, options: ProcessFaultOptions): FaultlinePackage {
  const nemesis = new ProcessNemesis(fault);
  const f = { start: `start-${fault.name}`, stop: `stop-${fault.name}` };
  return {
    name: fault.name,
    healOrder: HEAL_FIRST,
    nemesis,
    handles: (op) => op.f === f.start || op.f === f.stop,
    // Docker can always stop, start, pause and resume a container.
    unsupported: async () => undefined,
    ops: (rng: Rng) =>
      alternate(
        rng,
        (r) => ({ f: f.start, value: { nodes: drawTargets(options.nodes, r, options.targets ?? targetKinds).nodes } }),
        (started) => ({ f: f.stop, value: { nodes: started.value.nodes ?? [] } }),
      ),
    // A killed node is stopped, a paused one frozen, until the stop.
    unavailable: (op) => (op.f === f.start && Array.isArray(op.value.nodes) ? (op.value.nodes as string[]) : []),
  };
}
