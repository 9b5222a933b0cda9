// API coverage: did the run exercise every call its workload names? A workload declares the client
// calls it makes (harness/workloads, passed as ctx.calls); each must have been acknowledged at least once,
// or the guarantees that call carries went untested and the verdict is `unknown`, as a fault package
// that never ran is. It also reports what the retries covered: requests sent again with the same id
// (after an `info` outcome) and how many of those were retried after their node had been killed and
// restarted, which is what exercises deduplication across a restart.
import type { History } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { isWorkloadOp, pairing, valueOf } from './util.ts';
import { killWindows } from './windows.ts';

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
  const attempts = new Map<string, { node: string; first: number; acrossRestart: boolean; count: number }>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    if (op.type !== 'invoke' || !isWorkloadOp(op)) continue;
    const c = (calls[op.f] ??= { invoked: 0, ok: 0 });
    c.invoked++;
    const done = completion[i];
    if (done >= 0 && history[done].type === 'ok') c.ok++;
    const v = valueOf<{ requestId: string }>(op);
    if (typeof v.requestId !== 'string' || op.node === undefined) continue;
    const a = attempts.get(v.requestId);
    if (!a) attempts.set(v.requestId, { node: op.node, first: op.time, acrossRestart: false, count: 1 });
    else {
      a.count++;
      if (kills.between(a.node, a.first, op.time) !== undefined) a.acrossRestart = true;
    }
  }
  let retried = 0;
  let retriedAcrossRestart = 0;
  for (const a of attempts.values()) {
    if (a.count > 1) retried++;
    if (a.acrossRestart) retriedAcrossRestart++;
  }
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
