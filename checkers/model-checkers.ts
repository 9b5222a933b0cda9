// The checkers of a model workload (register, cas-register, kv): linearizability under that model,
// perf and faults. Apart from index.ts so that `npm run check` on a Jepsen history loads only these.
import { faults } from './faults.ts';
import { linearizable } from './linearizable.ts';
import type { ModelName } from './models/index.ts';
import type { ModelOptions } from './models/model.ts';
import { perf, type PerfOptions } from './perf.ts';
import type { Checker } from './types.ts';

export function modelCheckers(model: ModelName, options: ModelOptions = {}, perfOptions: PerfOptions = {}): Record<string, Checker> {
  return { linearizability: linearizable({ ...options, model }), perf: perf(perfOptions), faults };
}
