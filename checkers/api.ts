// API coverage: did the run exercise every call its workload names? A workload declares the client
// calls it makes (its System's workload, passed as ctx.calls); each must have been acknowledged at least once,
// or the guarantees that call carries went untested and the verdict is `unknown`, as a fault package
// that never ran is. It also reports what the retries covered: requests sent again with the same id
// (after an `info` outcome) and how many of those were retried after their node had been killed and
// restarted, which is what exercises deduplication across a restart.
import type { History } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { isWorkloadOp, pairing } from './util.ts';
import { killWindows } from './windows.ts';
import { opIndex } from './history-index.ts';

export interface ApiResult extends CheckResult {
  /** f → invoked, ok. */
  readonly calls: Readonly<Record<string, { readonly invoked: number; readonly ok: number }>>;
  /** Named calls never acknowledged. */
  readonly missing: readonly string[];
  /** Requests with more than one attempt, and those with an attempt after a kill of their node. */
  readonly retried: number;
  readonly retriedAcrossRestart: number;
  /** One line for the CLI and the report, e.g. "10 of 10 calls acknowledged; 31 requests retried, 4 after their node restarted". */
  readonly summary: string;
}

export const api = (history: History, ctx: CheckContext): ApiResult => {
  const named = Array.isArray(ctx.calls) ? (ctx.calls as string[]) : [];
  const { completion } = pairing(history);
  const kills = killWindows(history);
  const calls: Record<string, { invoked: number; ok: number }> = {};
  // Retries carry attempt > 0: collect their request ids first, so only those requests are followed
  // (a map of every request id would cost more than the rest of this checker).
  const retriedIds = new Set<string>();
  const index = opIndex(history);
  for (const i of index.clientInvokes) {
    const op = history[i];
    if (op.type !== 'invoke' || op.process === 'nemesis') continue;
    const v = op.value as { requestId?: unknown; attempt?: unknown } | null;
    if (v && typeof v.attempt === 'number' && v.attempt > 0 && typeof v.requestId === 'string') retriedIds.add(v.requestId);
  }
  const first = new Map<string, { node: string; time: number; acrossRestart: boolean }>();
  const invokes = index.workloadInvokes;
  for (let p = 0; p < invokes.length; p++) {
    const i = invokes[p];
    const op = history[i];
    if (op.type !== 'invoke' || !isWorkloadOp(op)) continue;
    let c = calls[op.f];
    if (!c) calls[op.f] = c = { invoked: 0, ok: 0 };
    c.invoked++;
    const done = completion[i];
    if (done >= 0 && history[done].type === 'ok') c.ok++;
    if (retriedIds.size === 0 || op.node === undefined) continue;
    const id = (op.value as { requestId?: unknown } | null)?.requestId;
    if (typeof id !== 'string' || !retriedIds.has(id)) continue;
    const a = first.get(id);
    if (!a) first.set(id, { node: op.node, time: op.time, acrossRestart: false });
    else if (!a.acrossRestart && kills.between(a.node, a.time, op.time) !== undefined) a.acrossRestart = true;
  }
  const retried = retriedIds.size;
  let retriedAcrossRestart = 0;
  for (const a of first.values()) if (a.acrossRestart) retriedAcrossRestart++;
  const missing = named.filter((f) => (calls[f]?.ok ?? 0) === 0);
  const covered = named.length - missing.length;
  const summary = named.length
    ? `${covered} of ${named.length} calls acknowledged${missing.length ? ` (never: ${missing.join(', ')})` : ''}; ${retried} requests retried, ${retriedAcrossRestart} after their node restarted`
    : `${Object.keys(calls).length} calls seen; ${retried} requests retried, ${retriedAcrossRestart} after their node restarted`;
  return {
    valid: missing.length > 0 ? 'unknown' : true,
    ...(missing.length > 0 ? { error: `the workload names ${missing.join(', ')}, but no such call was acknowledged, so what ${missing.length === 1 ? 'it carries' : 'they carry'} went untested` } : {}),
    judged: Object.values(calls).reduce((t, c) => t + c.invoked, 0),
    calls,
    missing,
    retried,
    retriedAcrossRestart,
    summary,
  };
};

api satisfies Checker;
