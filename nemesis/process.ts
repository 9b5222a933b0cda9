// What the kill and pause fault packages share: a nemesis for a process fault on whole nodes through
// ClusterControl (apply on start, undo on stop), which remembers every node it touched, so heal() undoes
// the fault on all of them even after a failed op, and the seeded schedule of drawn targets.
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp } from './types.ts';
import { collectErrors } from './net.ts';
import { completion, healReport, HEAL_FIRST, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes, targetKinds } from './schedule.ts';

export type ProcessFaultOptions = FaultPackageOptions;

export interface ProcessFault {
  readonly name: 'kill' | 'pause';
  /** Applies the fault to one node. */
  readonly apply: (cluster: ClusterControl, node: string) => Promise<void>;
  /** Undoes it on one node. */
  readonly undo: (cluster: ClusterControl, node: string) => Promise<void>;
  /** What undo does, for messages. */
  readonly undoVerb: string;
}

/** A nemesis for one process fault (kill or pause). */
export class ProcessNemesis implements Nemesis {
  readonly name: string;
  readonly #fault: ProcessFault;
  #cluster: ClusterControl | undefined;
  /** Nodes the fault was applied to (or attempted on) and not yet undone. */
  readonly #affected = new Set<string>();

  constructor(fault: ProcessFault) {
    this.#fault = fault;
    this.name = fault.name;
  }

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
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
      const errors = await collectErrors(nodes, async (node) => {
        // Remember the node before acting: a SIGKILL that timed out may still have landed.
        if (starting) this.#affected.add(node);
        await (starting ? this.#fault.apply : this.#fault.undo)(cluster, node);
        if (!starting) this.#affected.delete(node);
      });
      return completion(op, { nodes, affected: this.affected() }, errors.length > 0 ? new AggregateError(errors) : undefined);
    } catch (error) {
      return completion(op, {}, error);
    }
  }

  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      const nodes = this.affected();
      const errors = await collectErrors(nodes, async (node) => {
        try {
          await this.#fault.undo(cluster, node);
        } catch (error) {
          throw new Error(`${node}: ${this.#fault.undoVerb} failed: ${(error as Error).message}`, { cause: error });
        }
        this.#affected.delete(node);
      });
      return healReport(errors, { nodes, affected: this.affected() });
    } catch (error) {
      return healReport([error], { affected: this.affected() });
    }
  }

  async teardown(): Promise<void> {}
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
  };
}
