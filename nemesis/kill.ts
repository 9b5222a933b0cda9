// The kill fault package: SIGKILL a node's service (its container stops; its data stays on disk) and
// restart it with the package's next (stop) op. An acknowledged write must survive.
import type { FaultlinePackage } from './package.ts';
import { processPackage, type ProcessFault, type ProcessFaultOptions } from './process.ts';

const KILL: ProcessFault = {
  name: 'kill',
  apply: (cluster, node) => cluster.kill(node, 'SIGKILL'),
  // restart() waits until the node answers Health again.
  undo: (cluster, node) => cluster.restart(node),
  appliedState: 'stopped',
  deferWhenStopped: false,
  undoVerb: 'restart',
};

/** kill: SIGKILL the targets' services; the stop op restarts them. */
export function killPackage(options: ProcessFaultOptions): FaultlinePackage {
  return processPackage(KILL, options);
}
