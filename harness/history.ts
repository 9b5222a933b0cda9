// The history: the contract between the harness, which records it, and the checkers, which judge it.
//
// One JSON object per line in history.jsonl, appended and flushed as the run goes (see HistoryWriter
// in harness/history-writer.ts). Every client op is an `invoke` followed, for the same process, by
// exactly one completion: `ok` (it happened), `fail` (it definitely did not happen) or `info` (it may
// or may not have happened). A process whose op ended in `info` is never used again; its worker takes
// a fresh process number, as in Jepsen, so a process's ops are strictly sequential.
//
// The value shapes of every workload are documented once, in the types below, which the workloads
// produce and the checkers consume.

/** A client process number, or the nemesis. */
export type Process = number | 'nemesis';

export type OpType = 'invoke' | 'ok' | 'fail' | 'info';

export interface Op<V = unknown> {
  /** Position in the history, 0-based, dense. */
  readonly index: number;
  /** Nanoseconds since the run started, from the harness's monotonic clock (never a node's skewed wall clock). */
  readonly time: number;
  readonly process: Process;
  /** The node the process is bound to (absent for the nemesis). */
  readonly node?: string;
  readonly type: OpType;
  readonly f: string;
  readonly value: V;
  /** For fail/info: why, e.g. "DEADLINE_EXCEEDED: deadline exceeded after 1000ms". */
  readonly error?: string;
}

export type History = readonly Op[];

// ---------------------------------------------------------------------------
// Workload value shapes. `invoke` carries the request; the completion repeats it and adds results. An ok
// completion of a mutating op (write, write-max, delete, incr, add, remove) adds `duplicate: true` when
// the node recognised its request id as already applied (it then returns the first reply, e.g. its ts).
// ---------------------------------------------------------------------------

/**
 * lww workload: f "read" (LWW component). ok adds value (null when absent or deleted) and ts: the
 * component's HLC, also for a tombstone (then `deleted` is true), null when the component is absent.
 */
export interface ReadValue {
  entity: string;
  component: string;
  value?: string | null;
  ts?: string | null;
  deleted?: boolean;
}

/**
 * lww workload: f "write" of a unique string value to an LWW component. ok adds ts (canonical HLC).
 * A write that ended info is retried later with the same requestId and attempt + 1 (as every mutating
 * op of every workload is, see harness/generator.ts `retrying`), so the history shows every attempt.
 */
export interface WriteValue {
  entity: string;
  component: string;
  value: string;
  requestId: string;
  attempt?: number;
  ts?: string;
}

/** lww workload: f "delete" of an LWW component (a tombstone). ok adds ts, the tombstone's HLC. */
export interface DeleteValue {
  entity: string;
  component: string;
  requestId: string;
  attempt?: number;
  ts?: string;
}

/** lww workload: f "read-max" of a max-wins component (e.g. "threat"). ok adds value (null when absent). */
export interface ReadMaxValue {
  entity: string;
  component: string;
  value?: number | null;
  ts?: string | null;
}

/** lww workload: f "write-max" of a number to a max-wins component; the workload only ever increases it. */
export interface WriteMaxValue {
  entity: string;
  component: string;
  value: number;
  requestId: string;
  attempt?: number;
  ts?: string;
  /** The component's value on the node after the write (the max). */
  result?: number;
}

/**
 * counter workload: f "incr" (delta may be negative). A retry reuses requestId with attempt > 0, as a
 * new invoke/completion pair (a new process when the earlier attempt ended in info), so the history
 * shows every attempt.
 */
export interface IncrValue {
  entity: string;
  counter: string;
  delta: number;
  requestId: string;
  attempt: number;
  /** ok only: the counter's value on the node after the increment. */
  result?: number;
}

/**
 * counter workload: f "read-counter". ok adds value and shares: each origin node's PN share as the node
 * holds it, origin → [p, n] (value = Σ p − n). An origin's share only grows by increments made on it.
 */
export interface ReadCounterValue {
  entity: string;
  counter: string;
  value?: number;
  shares?: Record<string, [number, number]>;
}

/** set workload: f "add" of a unique integer element. ok adds ts. */
export interface AddValue {
  entity: string;
  element: number;
  requestId: string;
  attempt?: number;
  ts?: string;
}

/** set workload: f "remove" of an element the same worker added (a tombstone). ok adds ts. */
export interface RemoveValue {
  entity: string;
  element: number;
  requestId: string;
  attempt?: number;
  ts?: string;
}

/**
 * set workload: f "read-set"; ok adds the elements read, in the order the node returned them, and the
 * removed elements the node holds tombstones for.
 */
export interface ReadSetValue {
  entity: string;
  elements?: number[];
  removed?: number[];
  /** The newest HLC among the set's elements, live or removed (absent for an empty set). */
  maxTs?: string;
}

// ---------------------------------------------------------------------------
// Final reads: after every fault is healed, each node is scanned, in rounds, until all nodes agree or
// the recovery time runs out. Each scan is an op with f "final-read" on that node.
// ---------------------------------------------------------------------------

export interface FinalComponent {
  value: string;
  /** Canonical HLC string. */
  ts: string;
  kind: 'lww' | 'max';
  /** True for a tombstone; value is then "". */
  deleted?: boolean;
}

export interface FinalEntity {
  components: Record<string, FinalComponent>;
  /** Counter name → value (sum of every origin's p minus n). */
  counters: Record<string, number>;
}

/** Entity id → entity. Keys are in sorted order so equal states serialise identically. */
export type FinalState = Record<string, FinalEntity>;

export interface FinalReadValue {
  /** 0-based round of final reads. */
  round: number;
  /** ok only. */
  state?: FinalState;
}

// ---------------------------------------------------------------------------
// Nemesis ops: process "nemesis", type "info", one op when a fault starts and one when it stops.
// ---------------------------------------------------------------------------

/**
 * f names: "start-partition"/"stop-partition", "start-clock"/"stop-clock" (also "bump-clock", "strobe-clock"),
 * "start-kill"/"stop-kill", "start-pause"/"stop-pause", "start-packet"/"stop-packet", and "heal" (the final
 * heal of everything; its completion marks the start of recovery). A nemesis op may carry `error` when a
 * fault or heal step failed.
 */
export interface NemesisValue {
  /**
   * ns on the history's clock (as `time`) at which the runner invoked the op; the op is recorded only
   * at completion (`time`), so the fault took effect somewhere in [invokedAt, time]: its uncertain edge.
   */
  invokedAt?: number;
  /** Nodes the fault acts on. */
  nodes?: string[];
  /** partition: node → nodes whose packets it drops. */
  grudge?: Record<string, string[]>;
  /** clock: node → wall-clock offset in ms now in force. */
  offsets?: Record<string, number>;
  [key: string]: unknown;
}
