// The nemesis contract. A Nemesis injects one family of faults into the real node containers; a
// FaultPackage bundles it with the seeded schedule of fault ops, and is registered by name
// (`--nemesis partition,clock`). The harness core owns time: it walks the packages in rounds (each
// package's start, then its stop, in a seeded order; nemesis/schedule.ts), one op every
// --nemesis-interval, records each op once it has completed (one op, process "nemesis", type "info",
// with `invokedAt`, whether it was verified, and any error), and at the end calls heal() on every
// nemesis, which is the final generator of every package: one op that undoes all its faults.
import type { ShapeName } from './grudge.ts';
import type { TargetKind } from './schedule.ts';
import type { NemesisValue } from '../harness/history.ts';
import type { Rng } from '../harness/rng.ts';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** A node's container as Docker reports it: running, paused (cgroup freezer), or stopped (killed, exited). */
export type NodeState = 'running' | 'paused' | 'stopped';

/**
 * A node came back: `restarted` as soon as a stopped container runs again (before its service answers,
 * so network rules are back before the service can talk to its peers), `healthy` once it answers
 * Health after a restart, `unpaused` right after a paused container was resumed.
 */
export type NodeBackEvent = 'restarted' | 'healthy' | 'unpaused';

/**
 * Re-applies what a nemesis has in force on a node that came back (Docker gives a restarted container
 * a fresh network namespace, and `docker exec` into a paused container fails, so rules and offsets
 * meant for it may be missing). Returns what it re-applied and whether that was verified, recorded in
 * the op that brought the node back; undefined when it had nothing to do. A failure is reported in the
 * value's `error` (node, command, output), not thrown.
 */
export type NodeBackListener = (node: string, event: NodeBackEvent) => Promise<NemesisValue | undefined>;

/** What the listeners did when a node came back, by listener (nemesis) name, and their errors. */
export interface NodeBackReport {
  readonly reapplied: Readonly<Record<string, NemesisValue>>;
  /** "partition: n3: sh -c ... exited 1: ..." */
  readonly errors: readonly string[];
}

/** What a nemesis may do to the cluster. The harness's Cluster implements it with dockerode. */
export interface ClusterControl {
  /** Node names (n1..nN) with their container IP on the run's bridge network. */
  readonly nodes: readonly { readonly name: string; readonly ip: string }[];
  /** Runs a command in the node's container as root; never throws for a non-zero exit (check exitCode). */
  exec(node: string, cmd: readonly string[], options?: { readonly timeoutMs?: number }): Promise<ExecResult>;
  /** Sends a signal to the node's service process (SIGKILL stops the container; it stays on disk). */
  kill(node: string, signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /**
   * Starts a stopped node's container again and waits until its service answers Health. The node-back
   * listeners run at `restarted` and at `healthy` (before it resolves); their report is returned.
   */
  restart(node: string): Promise<NodeBackReport>;
  pause(node: string): Promise<void>;
  /** Resumes a paused node; the node-back listeners run (`unpaused`) before it resolves. */
  unpause(node: string): Promise<NodeBackReport>;
  /** The node's container state now. */
  state(node: string): Promise<NodeState>;
  /**
   * Registers the listener a nemesis uses to re-apply its faults on a node that comes back, under the
   * nemesis's name (a second registration under a name replaces the first). Returns its removal.
   */
  onNodeBack(name: string, listener: NodeBackListener): () => void;
  /** The port the system under test serves its clients on in every container (what connectivity probes connect to). */
  readonly port?: number;
  /** Capability of the system under test: a node's wall clock in ms as its service sees it. */
  wallClock?(node: string, timeoutMs: number): Promise<number>;
  /** Fault packages the system under test cannot take, with why. */
  readonly unsupportedFaults?: Readonly<Record<string, string>>;
}

export interface NemesisOp {
  readonly f: string;
  readonly value: NemesisValue;
}

/** The completion of a nemesis op: what was actually done, or why it failed. */
export interface NemesisCompletion {
  readonly f: string;
  readonly value: NemesisValue;
  /** Set when the fault could not be applied or removed: names the node, the command and its output. */
  readonly error?: string;
}

export interface HealReport {
  /** True only when every heal step succeeded. */
  readonly ok: boolean;
  /** One entry per failed step: "n3: iptables -D ... exited 1: <stderr>". */
  readonly errors: readonly string[];
  readonly value: NemesisValue;
}

export interface Nemesis {
  readonly name: string;
  setup(cluster: ClusterControl): Promise<void>;
  invoke(op: NemesisOp): Promise<NemesisCompletion>;
  /** Removes every fault this nemesis applied. Must work at any time, also after a failed invoke. */
  heal(): Promise<HealReport>;
  teardown(): Promise<void>;
}

export interface FaultPackageOptions {
  readonly nodes: readonly string[];
  /** Seconds between fault ops (--nemesis-interval); undefined for auto, which the runner resolves once it knows how many packages run. No package reads it today. */
  readonly intervalS?: number;
  /** Target kinds faults draw their nodes from (--nemesis-targets). @default one, minority, majority, all, random */
  readonly targets?: readonly TargetKind[];
  /** Partition shapes to draw from (--partition-shapes; see nemesis/grudge.ts). @default every shape */
  readonly shapes?: readonly ShapeName[];
  /** Disk faults to draw from (--disk-faults; see nemesis/disk.ts). @default every fault */
  readonly diskFaults?: readonly ('lose-unsynced' | 'full' | 'eio-write' | 'eio-fsync' | 'slow')[];
  /** The slow disk fault's fsync delay (--disk-delay-ms). @default 100 */
  readonly diskDelayMs?: number;
  /** What the delay fault draws from (--delay-ms, --delay-jitter-ms, --delay-duplicate-percent; nemesis/delay.ts). @default its DEFAULT_* lists */
  readonly delay?: {
    readonly delaysMs?: readonly number[];
    readonly jittersMs?: readonly number[];
    readonly duplicatePercents?: readonly number[];
  };
}

/** What a fault package needs in every node container (devices, capabilities, environment), granted only to runs that name it. */
export interface ContainerNeeds {
  readonly devices: readonly string[];
  readonly capAdd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export interface FaultPackage {
  readonly name: string;
  /** Why this package cannot run on this machine (e.g. no tc netem), or undefined when it can. */
  unsupported(cluster: ClusterControl): Promise<string | undefined>;
  readonly nemesis: Nemesis;
  /**
   * The seeded schedule: an endless sequence of fault ops (start, stop, start, ...). The same rng state
   * gives the same sequence. The harness interleaves the packages' schedules in rounds.
   */
  ops(rng: Rng): Iterator<NemesisOp>;
  /**
   * The nodes a start op of this package makes unavailable while it is in force (stopped or paused),
   * or [] for faults that leave the nodes running. The schedule uses it so that a start that follows
   * never lands only on nodes that are down (nemesis/schedule.ts walkSchedule). @default none
   */
  unavailable?(op: NemesisOp): readonly string[];
}

export type FaultPackageFactory = (options: FaultPackageOptions) => FaultPackage;
