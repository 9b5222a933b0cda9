// What the checkers know of a run besides its history: its nodes, workload, the calls the workload makes
// and the options the checkers read. Built by the run (harness/lifecycle.ts) and rebuilt from test.json by
// `npm run check`; apart from options.ts so the check CLI's bundle does not load the option table and
// with it every system under test.
import type { CheckContext } from '../checkers/types.ts';
import type { Options } from './options.ts';

export function checkContext(nodes: readonly string[], workload: string, options: Partial<Options>, calls?: readonly string[]): CheckContext {
  return {
    nodes,
    workload,
    ...(calls ? { calls } : {}),
    ...(options.recoveryMs !== undefined ? { recoveryMs: options.recoveryMs } : {}),
    ...(options.antiEntropyMs !== undefined ? { antiEntropyMs: options.antiEntropyMs } : {}),
    ...(options.lagBoundMs !== undefined ? { lagBoundMs: options.lagBoundMs } : {}),
    ...(options.minAvailability !== undefined ? { minAvailability: options.minAvailability } : {}),
    ...(options.opTimeoutMs !== undefined ? { opTimeoutMs: options.opTimeoutMs } : {}),
  };
}
