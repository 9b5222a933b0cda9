// The checkers by workload: `checkerFor(workload)` returns the composed checker a run of that workload
// is judged by. Linearizability of the lww workload is advisory (reported, not merged into the verdict):
// the store is AP, so under partitions it is expected to fail, and the report says so.
import { convergence } from './convergence.ts';
import { faults } from './faults.ts';
import { api } from './api.ts';
import { idempotency } from './idempotency.ts';
import { linearizable } from './linearizable.ts';
import { lostWrites } from './lost-writes.ts';
import { maxWins } from './max-wins.ts';
import { mesh } from './mesh.ts';
import { perf, type PerfOptions } from './perf.ts';
import { setChecker } from './set.ts';
import { counters } from './counters.ts';
import { deletesChecker, durableReads, sessionChecker } from './session.ts';
import { lagChecker, watchChecker } from './watch.ts';
import { availability } from './availability.ts';
import { values } from './values.ts';
import { compose, type Checker, type ComposedResult, type CheckContext } from './types.ts';
import type { History } from '../harness/history.ts';
import { modelCheckers } from './model-checkers.ts';
import { isModelName } from './models/index.ts';
import type { ModelOptions } from './models/model.ts';

import { WORKLOADS, type WorkloadName } from './workload-names.ts';
export { WORKLOADS, type WorkloadName };

export interface CheckerForOptions extends PerfOptions {
  /** Make the lww workload's linearizability count toward the verdict. @default false */
  readonly strictLinearizability?: boolean;
  /** The model's options (initial value, nil reads) for a model workload. */
  readonly model?: ModelOptions;
}

/**
 * The named checkers of a workload, before composition (the CLI and the report list them in this order).
 * Any string is accepted so a test's workload can be passed straight from test.json; an unknown one throws.
 */
export function checkersFor(workload: WorkloadName | (string & {}), options: CheckerForOptions = {}): Record<string, Checker> {
  // Every checker, in the order results list them; a workload takes those that judge its ops.
  const every: Record<string, Checker> = {
    convergence,
    'lost-writes': lostWrites,
    values,
    'max-wins': maxWins,
    set: setChecker,
    idempotency,
    counters,
    session: sessionChecker,
    'durable-reads': durableReads,
    deletes: deletesChecker,
    watch: watchChecker,
    lag: lagChecker,
    availability,
    linearizability: linearizable({ model: 'register', advisory: options.strictLinearizability !== true }),
    mesh,
    perf: perf(options),
    faults,
    api,
  };
  const only = (names: readonly string[]) => Object.fromEntries(Object.entries(every).filter(([name]) => names.includes(name)));
  // What every workload of the store-and-mesh service gets besides its own (watch streams, faults, API).
  const common = ['convergence', 'idempotency', 'watch', 'availability', 'mesh', 'perf', 'faults', 'api'];
  const timestamped = ['session', 'durable-reads', 'deletes', 'lag'];
  switch (workload) {
    case 'lww':
      return only([...common, 'lost-writes', 'values', 'max-wins', ...timestamped, 'linearizability']);
    case 'counter':
      return only([...common, 'counters', 'lag']);
    case 'set':
      return only([...common, 'set', ...timestamped]);
    case 'all':
      return every;
    default:
      if (isModelName(workload)) return modelCheckers(workload, options.model, options);
      throw new Error(`Unknown workload ${JSON.stringify(workload)}: expected one of ${WORKLOADS.join(', ')}.`);
  }
}

/** The composed checker of a workload. */
export function checkerFor(workload: WorkloadName | (string & {}), options: CheckerForOptions = {}): (history: History, ctx: CheckContext) => ComposedResult {
  return compose(checkersFor(workload, options));
}

export { compose, checkSafe, mergeResults, mergeValid } from './types.ts';
export type { Anomaly, Checker, CheckContext, CheckResult, ComposedResult, Validity } from './types.ts';
export { convergence, type ConvergenceResult } from './convergence.ts';
export { lostWrites, type LostWritesResult } from './lost-writes.ts';
export { maxWins, type MaxWinsResult } from './max-wins.ts';
export { mesh, MESH_SLACK, type MeshResult } from './mesh.ts';
export { setChecker, finalSetElements, type SetResult, type SetEntityResult } from './set.ts';
export { counters, type CountersResult } from './counters.ts';
export { sessionChecker, durableReads, deletesChecker, analyzeSessions } from './session.ts';
export { watchChecker, lagChecker, defaultLagBoundMs, type WatchResult, type LagResult } from './watch.ts';
export { availability, DEFAULT_MIN_AVAILABILITY, type AvailabilityResult } from './availability.ts';
export { idempotency, type IdempotencyResult, type CounterResult } from './idempotency.ts';
export { linearizable, type LinearizableOptions, type LinearizableResult, type RegisterModel, type KeyResult } from './linearizable.ts';
export { perf, faultWindows, type PerfOptions, type PerfResult, type Bucket, type WindowStats } from './perf.ts';
export { parseEdnHistory, EdnHistoryError } from './edn.ts';
export { api, type ApiResult } from './api.ts';
export { faults, faultOp, type FaultsResult, type PackageCoverage } from './faults.ts';
