// The System role of shared/DESIGN.md (Jepsen's DB): the contract between the engine (cluster, runner,
// run lifecycle) and one system under test. A System says which image every node container runs, the
// command line and environment of one node, which client the workers use, how to tell that a node
// serves, which workloads it has and which checkers judge them. Everything else is an optional
// capability the engine uses only where a System declares it, as Jepsen's db/Kill, db/Pause and
// db/LogFiles are: cluster formation, final reads, node stats, watch streams, planted bugs, a wall-clock
// reading (the clock fault's proof), faults it cannot take. Each System lives in its own folder under
// harness/systems/ and is registered once in harness/systems/index.ts; the engine never imports one.
import type Docker from 'dockerode';
import type { Checker } from '../checkers/types.ts';
import type { Op } from './history.ts';
import type { Gen, OpSpec } from './generator.ts';
import type { Options } from './options.ts';

export type { OpSpec };

/** What a client call came to: ok (happened), fail (definitely did not), info (may or may not have). */
export interface Completion {
  readonly type: 'ok' | 'fail' | 'info';
  readonly value: unknown;
  readonly error?: string;
}

/** Jepsen's Client role: invoke(op) → completion. open/close are System.client() and close(). */
export interface SystemClient {
  invoke(op: OpSpec): Promise<Completion>;
  close(): void;
  /** Capability: the node's own counters, recorded as `stats` ops after the final reads. */
  stats?(timeoutMs: number): Promise<object>;
}

/** A node as the engine knows it: its name (n1..nN, also its host name) and host:port of its client API. */
export interface NodeAddress {
  readonly name: string;
  readonly address: string;
}

/** What the run passes a System for every node: the test's options and the run's secret. */
export interface NodeSettings {
  readonly options: Options;
  /** A fresh 256-bit secret per run (hex), for systems whose peers authenticate each other. Never logged. */
  readonly secret: string;
}

/** Where a workload's ops are appended (the history writer); `now` is the history's clock in ns. */
export interface HistoryAppender {
  append(op: Omit<Op, 'index' | 'time'> & { readonly time?: number }): Op;
  now(): number;
}

/** A stream that runs alongside the workload on one node (e.g. watch streams). */
export interface Companion {
  /** Opens it; resolves once it is ready, or after a bounded wait (its node may be down). */
  start(): Promise<void>;
  /** The node's client was replaced (its node restarted): move to the new one. */
  clientReplaced(): void;
  stop(): void;
}

export interface WorkloadOptions {
  /** How many keys the workload spreads over. Few keys mean more conflicts. */
  readonly keys: number;
  /** A prefix that makes request ids unique across runs against the same cluster. */
  readonly runTag: string;
}

/** A workload: what the clients do. Its checkers come from its System's checkers(). */
export interface Workload {
  readonly name: string;
  readonly description: string;
  /** Every client call (op f) the workload makes; the api checker requires each to be acknowledged at least once. */
  readonly calls: readonly string[];
  /** The generator of one worker (the runner gives every worker its own, with its own Rng). */
  generator(worker: number, options: WorkloadOptions): Gen;
  /** Mutating ops that ended `info` are retried with the same request id once their node is back (see generator.ts retrying). */
  readonly retryOf?: (op: Op) => OpSpec | undefined;
  /** One acknowledged mutating op in this many is sent again later with its request id (needs retryOf). */
  readonly resendEvery?: number;
}

/** A command-line option a System owns; parsed into Options.systemOptions[flag]. */
export interface SystemOptionSpec {
  readonly flag: string;
  readonly default: string;
  readonly values: readonly string[];
  readonly description: string;
}

export interface ImageOptions {
  readonly onProgress?: (line: string) => void;
  /** Rebuild without Docker's layer cache, even when the tag exists. @default false */
  readonly force?: boolean;
  readonly docker?: Docker;
}

export interface System {
  /** As `--system` spells it. */
  readonly name: string;
  readonly description: string;
  /** The port every node serves its client API on. */
  readonly port: number;
  /** Where the node keeps its durable state inside the container (it survives kill and restart). */
  readonly dataDir: string;
  /** Builds or reuses the image every node runs; returns its tag. */
  image(options: ImageOptions): Promise<string>;
  /** The arguments of one node's service, given every node's name (peers are reached by name). */
  command(node: string, nodes: readonly string[], settings: NodeSettings): string[];
  /** Environment variables of one node's service: where secrets go (a command line is visible to every process). */
  env?(node: string, nodes: readonly string[], settings: NodeSettings): Record<string, string>;
  /** A client bound to one node's address (host:port). */
  client(address: string, options: { readonly opTimeoutMs: number; readonly options?: Options }): SystemClient;
  /**
   * One readiness probe: resolves once the node serves, rejects with why not. An error with
   * `permanent: true` (the node answers as another node) stops the waiting at once.
   */
  ready(node: NodeAddress, timeoutMs: number): Promise<void>;
  /** Capability: what still keeps the cluster from being formed (empty: formed); the run starts only then. */
  unformed?(nodes: readonly NodeAddress[], timeoutMs: number): Promise<readonly string[]>;
  readonly workloads: Readonly<Record<string, Workload>>;
  readonly defaultWorkload: string;
  /** The named checkers that judge a workload's history (composed by the engine, merged by priority). */
  checkers(workload: string, options: Options): Record<string, Checker>;
  /** Capability: after the heal, the client answers `final-read` with { state }; rounds run until all nodes agree. */
  readonly finalReads?: boolean;
  /** Capability: a stream per node alongside the workload (e.g. watch streams). */
  companion?(node: string, client: () => SystemClient, history: HistoryAppender, processBase: number): Companion;
  /** Capability: planted bugs (`--bug NAME`), name → what it breaks. */
  readonly bugs?: Readonly<Record<string, string>>;
  /** Capability: the node's wall clock in ms as its service sees it (the clock fault proves a skew with it). */
  wallClock?(node: NodeAddress, timeoutMs: number): Promise<number>;
  /** Fault packages this system cannot take, with why (the run refuses them, or `all` skips them). */
  readonly unsupportedFaults?: Readonly<Record<string, string>>;
  /** Options this system owns. */
  readonly options?: readonly SystemOptionSpec[];
}
