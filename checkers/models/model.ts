// The model contract of the linearizability checker, kept apart from the search as in Porcupine's
// Model{Init, Step, Equal, Describe}: a model says how one op changes a state and whether its output
// could have been seen from that state; the search (linearizable.ts) only orders ops. A new model is one
// small file exporting a `ModelFactory`, registered once in models/index.ts.
//
// States are plain values. The search interns them by `stateKey` (equal keys are equal states, which is
// Porcupine's Equal) and remembers every (state, op) step it has taken, so `step` runs once per distinct
// pair however often the search backtracks: a model can be written for clarity, not speed.

export interface ModelOptions {
  /** The value every key holds before the first op. @default null for registers, "" for the key-value model */
  readonly initialValue?: unknown;
  /**
   * What an ok read of nil means: "empty" (the key held nil, i.e. the initial value when none was
   * given), or "unknown" (Knossos's convention: the read's value was not recorded, so it says nothing
   * and is counted as not judged). @default "empty"
   */
  readonly nilRead?: NilRead;
}

export type NilRead = 'empty' | 'unknown';
export const NIL_READS: readonly NilRead[] = ['empty', 'unknown'];

/** One op of the history as the model sees it: the invoke's value, and the completion's when it was ok. */
export interface HistoryOp {
  readonly f: string;
  readonly invokeValue: unknown;
  /** The ok completion's value; undefined when the outcome is unknown (info, or never answered). */
  readonly okValue: unknown;
  readonly ok: boolean;
}

/** An op the model can judge: the key it touches (P-compositionality), its input and its output. */
export interface Prepared<I, O> {
  readonly key: string;
  readonly input: I;
  /** undefined when the outcome is unknown: any output is possible. */
  readonly output: O | undefined;
  /** What an anomaly shows as the op's value (the value read, written, or [old, new]). */
  readonly shown: unknown;
}

/**
 * How `prepare` answers an op it will not put into the search: `{ skip }` counts it as not judged (with
 * the reason, reported), `{ drop: true }` leaves out an op that carries no information (an info read).
 */
export type NotJudged = { readonly skip: string } | { readonly drop: true };

export interface Model<S = unknown, I = unknown, O = unknown> {
  readonly name: string;
  /** The op names (`f`) this model judges; any other client op is skipped and counted. */
  readonly fs: readonly string[];
  /** Turns one history op (not a fail: those never happened) into the model's terms. Throws on a malformed value. */
  prepare(op: HistoryOp, index: number): Prepared<I, O> | NotJudged;
  init(): S;
  /** The state after the op, or undefined when the op (with this output) is impossible from `state`. */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** A primitive identifying the state: states with equal keys are equal. */
  stateKey(state: S): string | number | null;
  describeOperation(input: I, output: O | undefined): string;
  describeState(state: S): string;
}

export type ModelFactory = (options?: ModelOptions) => Model<any, any, any>;

/** Splits a register value into key and value: {key, value} (Jepsen independent), {entity, component, value} (lww), or a plain value (one key, ""). */
export function keyed(value: unknown): [string, unknown] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.entity === 'string' && typeof v.component === 'string') return [v.entity + '/' + v.component, v.value];
    if ('key' in v) return [String(v.key), v.value];
  }
  return ['', value];
}

/** Equality of JSON values (registers hold numbers and strings, but a Jepsen value may be a vector). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A state key for a JSON value: primitives as themselves (1 and "1" stay apart), the rest as JSON. */
export function valueKey(v: unknown): string | number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return `s${v}`;
  return `j${JSON.stringify(v)}`;
}

export function show(v: unknown): string {
  return v === undefined || v === null ? 'nil' : JSON.stringify(v);
}
