// The kill and pause fault packages: process faults on whole nodes through ClusterControl. kill sends
// SIGKILL to a node's service (its container stops, its data stays on disk) and the stop op restarts it;
// pause freezes a node's container (docker pause, the cgroup freezer) and the stop op resumes it. Both
// remember every node they touched, so heal() restarts or resumes all of them even after a failed op.
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp } from './types.ts';
import { collectErrors } from './net.ts';
import { completion, healReport, HEAL_FIRST, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes, targetKinds, type TargetKind } from './schedule.ts';

export interface ProcessFaultOptions extends FaultPackageOptions {
  /** Target kinds to draw from. @default one, minority, majority, all, random */
  readonly targets?: readonly TargetKind[];
}

interface ProcessFault {
  readonly name: 'kill' | 'pause';
  /** Applies the fault to one node. */
  readonly apply: (cluster: ClusterControl, node: string) => Promise<void>;
  /** Undoes it on one node. */
  readonly undo: (cluster: ClusterControl, node: string) => Promise<void>;
  /** What undo does, for messages. */
  readonly undoVerb: string;
}

const KILL: ProcessFault = {
  name: 'kill',
  apply: (cluster, node) => cluster.kill(node, 'SIGKILL'),
  undo: (cluster, node) => cluster.restart(node),
  undoVerb: 'restart',
};

const PAUSE: ProcessFault = {
  name: 'pause',
  apply: (cluster, node) => cluster.pause(node),
  undo: (cluster, node) => cluster.unpause(node),
  undoVerb: 'unpause',
};

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

function processPackage(fault: ProcessFault, options: ProcessFaultOptions): FaultlinePackage {
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

/** kill: SIGKILL the targets' services; the stop op restarts them (after --nemesis-interval). */
export function killPackage(options: ProcessFaultOptions): FaultlinePackage {
  return processPackage(KILL, options);
}

/** pause: freeze the targets' containers; the stop op resumes them. */
export function pausePackage(options: ProcessFaultOptions): FaultlinePackage {
  return processPackage(PAUSE, options);
}
