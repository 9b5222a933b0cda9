// The names of the workloads that have checkers: the store's own, then one per linearizability model.
// The one owner of this list (index.ts re-exports it); kept in its own file so that reading it loads no checker.
import { MODEL_NAMES, type ModelName } from './models/index.ts';

export type WorkloadName = 'lww' | 'counter' | 'set' | 'all' | ModelName;

export const WORKLOADS: readonly WorkloadName[] = ['lww', 'counter', 'set', 'all', ...MODEL_NAMES];
