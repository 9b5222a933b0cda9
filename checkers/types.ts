// The checker contract: a checker is a pure function (history, test) → result, and results merge by
// priority (false beats unknown beats true), as in Jepsen's merge-valid. `checkSafe` turns a checker
// that throws into an `unknown` result that carries the error, so a broken checker never crashes a run.
import type { History } from '../harness/history.ts';

export type Validity = true | false | 'unknown';

/** One anomaly, always naming the ops (history indexes) that prove it. */
export interface Anomaly {
  /** e.g. "lost", "lost-update", "non-converged", "max-decreased", "duplicated", "double-applied". */
  readonly type: string;
  /** History indexes of the ops that prove it, most telling first. */
  readonly ops: readonly number[];
  /** One sentence a person can read in the report. */
  readonly message: string;
  readonly [detail: string]: unknown;
}

export interface CheckResult {
  readonly valid: Validity;
  readonly anomalies?: readonly Anomaly[];
  /** Set when the checker threw or ran out of budget. */
  readonly error?: string;
  /**
   * True for a result that is reported but does not count: compose() leaves it out of the merged
   * validity (e.g. linearizability of an AP store, expected to fail under partitions).
   */
  readonly advisory?: boolean;
  readonly [detail: string]: unknown;
}

/** What checkers may know about the test besides the history. */
export interface CheckContext {
  readonly nodes: readonly string[];
  readonly workload: string;
  /** Milliseconds of quiet time allowed after the final heal. */
  readonly recoveryMs?: number;
  /** Per-key time budget for the linearizability search. */
  readonly linearizableBudgetMs?: number;
  /**
   * The fault packages the run was meant to exercise (after `all` was expanded to what the machine
   * supports); the faults checker requires each of them to have run. Absent or [] for a run without faults.
   */
  readonly nemesis?: readonly string[];
  readonly [option: string]: unknown;
}

export type Checker = (history: History, test: CheckContext) => CheckResult;

const rank: Record<string, number> = { true: 0, unknown: 1, false: 2 };

/** Merges validities: false beats unknown beats true. */
export function mergeValid(values: Iterable<Validity>): Validity {
  let worst: Validity = true;
  for (const v of values) if (rank[String(v)] > rank[String(worst)]) worst = v;
  return worst;
}

/** Merges the validities of checker results, leaving advisory results out (see CheckResult.advisory). */
export function mergeResults(results: Iterable<CheckResult>): Validity {
  const counted: Validity[] = [];
  for (const r of results) if (r.advisory !== true) counted.push(r.valid);
  return mergeValid(counted);
}

/** Runs a checker; a throw becomes `unknown` with the error message instead of a crash. */
export function checkSafe(checker: Checker, history: History, test: CheckContext): CheckResult {
  try {
    return checker(history, test);
  } catch (error) {
    return { valid: 'unknown', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

export interface ComposedResult extends CheckResult {
  readonly results: Readonly<Record<string, CheckResult>>;
}

/** Runs several named checkers safely and merges their validities; advisory results are reported but not merged. */
export function compose(checkers: Readonly<Record<string, Checker>>): (history: History, test: CheckContext) => ComposedResult {
  return (history, test) => {
    const results: Record<string, CheckResult> = {};
    for (const [name, checker] of Object.entries(checkers)) results[name] = checkSafe(checker, history, test);
    return { valid: mergeResults(Object.values(results)), results };
  };
}
