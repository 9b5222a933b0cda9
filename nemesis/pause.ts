// The pause fault package: freeze a node's container (docker pause, the cgroup freezer: the process
// stops mid-instruction, its sockets stay open) and resume it with the stop op.
import type { FaultlinePackage } from './package.ts';
import { processPackage, type ProcessFault, type ProcessFaultOptions } from './process.ts';

const PAUSE: ProcessFault = {
  name: 'pause',
  apply: (cluster, node) => cluster.pause(node),
  undo: (cluster, node) => cluster.unpause(node),
  appliedState: 'paused',
  deferWhenStopped: true,
  undoVerb: 'unpause',
};

/** pause: freeze the targets' containers; the stop op resumes them. */
export function pausePackage(options: ProcessFaultOptions): FaultlinePackage {
  return processPackage(PAUSE, options);
}
