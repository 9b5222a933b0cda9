// The interpreter of a test: it owns time and the workers. Client workers (one per process, each
// bound to one node) pull ops from their own seeded generator and record invoke + completion in the
// history; the nemesis worker draws fault ops from the fault packages' seeded schedules and records
// each one. When the time limit is up (or the run is aborted) it heals every fault, records the heal,
// then reads the final state of every node in rounds until all nodes agree or the recovery time runs
// out. Everything that shapes the schedule comes from the test's seed.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Options } from './options.ts';
import type { Companion, System, SystemClient, Workload } from './system.ts';
import { retrying, stagger, timeLimit, type Gen } from './generator.ts';
import type { HistoryWriter } from './history-writer.ts';
import type { FinalState, Op } from './history.ts';
import { createRng, type Rng } from './rng.ts';
import type { FaultPackage, NemesisOp } from '../nemesis/types.ts';
import { opDueNs, opsBefore, roundShortfall, rounds, walkSchedule, type ScheduledOp } from '../nemesis/schedule.ts';

export interface InterpreterPlan {
  readonly seed: number;
  readonly nodes: readonly { readonly name: string; readonly address: string }[];
  readonly workload: string;
  readonly concurrency: number;
  /** Ops per second over all workers; 0 means as fast as possible. */
  readonly rate: number;
  /** How long the clients run, from the start of the workload (not of the run: setup is not counted). */
  readonly timeLimitS: number;
  /** Seconds between fault ops, already resolved (lifecycle.ts turns `auto` into nemesis/schedule.ts autoSchedule). */
  readonly nemesisIntervalS: number;
  /** Fault-free seconds before the schedule's first interval (the auto schedule's calm lead-in); 0 when absent. */
  readonly nemesisLeadS?: number;
  readonly recoveryMs: number;
  readonly opTimeoutMs: number;
  readonly keys: number;
  readonly runTag: string;
  /** The test's options, for a System whose client reads options of its own. */
  readonly options?: Options;
}

export interface Progress {
  phase: 'setup' | 'workload' | 'heal' | 'recovery' | 'final-reads' | 'check' | 'teardown' | 'done';
  ok: number;
  fail: number;
  info: number;
  faultsActive: string[];
  /** Date.now() when the workload began (the time limit counts from there). */
  workloadStartedMs?: number;
}

export interface InterpreterOutcome {
  /** Errors of the heal step (node, command, output); non-empty means the verdict cannot be valid. */
  readonly healErrors: readonly string[];
  /** Milliseconds from the end of the heal to the first round in which all nodes agreed. */
  readonly convergedAfterMs: number | undefined;
  readonly finalRounds: number;
  /** Each node's Stats after the final reads (or its error). */
  readonly stats: Record<string, Record<string, unknown>>;
}

/** Deterministic per-worker streams: worker i always gets the i-th fork of the seed's Rng. */
export function workerRngs(seed: number, workers: number): { workers: Rng[]; nemesis: Rng } {
  const root = createRng(seed);
  const nemesis = root.fork();
  return { nemesis, workers: Array.from({ length: workers }, () => root.fork()) };
}

/**
 * A worker's generator. `startNs` is when the workload started on the history's clock: the time limit
 * counts from there, as the nemesis schedule does, so the setup before it (image, cluster start) never
 * eats into the clients' time or into the time the faults get.
 */
export function workerGenerator(plan: InterpreterPlan, workloads: Readonly<Record<string, Workload>>, worker: number, startNs = 0): Gen {
  const workload = workloads[plan.workload];
  if (!workload) throw new Error(`Unknown workload "${plan.workload}": expected one of ${Object.keys(workloads).join(', ')}`);
  const own = workload.generator(worker, { keys: plan.keys, runTag: plan.runTag });
  // Mutating ops that ended info are retried later with the same request id (after their node is back),
  // and one acknowledged op in resendEvery is sent again 6 s later, when a kill may have come between
  // (for workloads whose system dedupes by request id).
  const base = workload.retryOf ? retrying({ retryOf: workload.retryOf, resendEvery: workload.resendEvery }, own) : own;
  // Each worker staggers its ops so that all workers together approach --rate.
  const meanDelayS = plan.rate > 0 ? plan.concurrency / plan.rate : 0;
  return timeLimit(plan.timeLimitS, stagger(meanDelayS, base), startNs);
}

/**
 * The nemesis's streams, derived from its rng in a fixed way: each package's own start/stop schedule
 * (a fork each) and the round-robin order of packages. The runner walks them; nemesisPlan() derives the
 * same streams again to say beforehand what the first round will do.
 */
function nemesisStreams(packages: readonly FaultPackage[], rng: Rng): { iterators: Iterator<NemesisOp>[]; walk: Generator<ScheduledOp> } {
  const iterators = packages.map((p) => p.ops(rng.fork()));
  return { iterators, walk: walkSchedule(iterators, rounds(packages.length, rng.fork()), (k, op) => packages[k].unavailable?.(op) ?? []) };
}

/** What the nemesis schedule will do: one line to log, plus a warning when a round does not fit. */
export interface NemesisPlan {
  /** The first round's order of ops, e.g. ["start kill", "start clock", "stop kill", ...]. */
  readonly firstRound: readonly string[];
  /** Ops due before the time limit. */
  readonly opsDue: number;
  /** Packages that get no start, or a start but no stop, before the time limit; empty when a round fits. */
  readonly noStart: readonly string[];
  readonly noStop: readonly string[];
}

/** The plan of a run's nemesis schedule, from the seed alone (the same streams the runner walks). */
export function nemesisPlan(plan: InterpreterPlan, packages: readonly FaultPackage[]): NemesisPlan {
  if (packages.length === 0) return { firstRound: [], opsDue: 0, noStart: [], noStop: [] };
  const { walk } = nemesisStreams(packages, workerRngs(plan.seed, plan.concurrency).nemesis);
  const first = Array.from({ length: 2 * packages.length }, () => (walk.next().value as ScheduledOp).k);
  const seen = new Set<number>();
  const firstRound = first.map((i) => {
    const verb = seen.has(i) ? 'stop' : 'start';
    seen.add(i);
    return `${verb} ${packages[i].name}`;
  });
  const opsDue = opsBefore(plan.timeLimitS, plan.nemesisIntervalS, plan.nemesisLeadS ?? 0);
  const short = roundShortfall(first, opsDue);
  return { firstRound, opsDue, noStart: short.noStart.map((i) => packages[i].name), noStop: short.noStop.map((i) => packages[i].name) };
}

async function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

export class Interpreter {
  readonly progress: Progress = { phase: 'setup', ok: 0, fail: 0, info: 0, faultsActive: [] };
  readonly #plan: InterpreterPlan;
  readonly #history: HistoryWriter;
  readonly #clients = new Map<string, SystemClient>();
  readonly #packages: readonly FaultPackage[];
  /** The system's streams alongside the workload (e.g. watch streams), one per node; [] without that capability. */
  #companions: Companion[] = [];

  readonly #system: System;
  /** When the workload started, on the history's clock; the time limit and the fault schedule count from here. */
  #startNs = 0;

  constructor(plan: InterpreterPlan, history: HistoryWriter, packages: readonly FaultPackage[], system: System) {
    this.#plan = plan;
    this.#history = history;
    this.#packages = packages;
    this.#system = system;
    for (const n of plan.nodes) this.#clients.set(n.name, system.client(n.address, { opTimeoutMs: plan.opTimeoutMs, options: plan.options }));
  }

  /**
   * Gives a node that was restarted fresh connections. A client's connection attempts to a node that is
   * down hang in TCP's SYN retransmission (1, 2, 4 s...), so without this the workers reached a restarted
   * node only seconds after it was back (measured: 1.8 s in a bare test, up to 7 s in a run), which is the
   * harness's delay, not the service's unavailability. Calls still in flight on the old connection fail.
   */
  reconnect(node: string): void {
    const old = this.#clients.get(node);
    const address = this.#plan.nodes.find((n) => n.name === node)?.address;
    if (!old || !address) return;
    this.#clients.set(node, this.#system.client(address, { opTimeoutMs: this.#plan.opTimeoutMs, options: this.#plan.options }));
    // Its watch stream moves to the new client (before the old one closes under it).
    this.#companions[this.#plan.nodes.findIndex((n) => n.name === node)]?.clientReplaced();
    old.close();
  }

  client(node: string): SystemClient {
    const c = this.#clients.get(node);
    if (!c) throw new Error(`No client for node ${node}`);
    return c;
  }

  /** Runs the workload and the nemesis until the time limit or the signal, then heals and reads. */
  async run(signal: AbortSignal): Promise<InterpreterOutcome> {
    const plan = this.#plan;
    const rngs = workerRngs(plan.seed, plan.concurrency);
    this.progress.phase = 'workload';
    const stopNemesis = new AbortController();
    const onAbort = () => stopNemesis.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    // One watch stream per node alongside the workload (where the system has them), open before the first
    // op (or after 3 s, if a node is slow to register it), closed after the final reads.
    const companion = this.#system.companion;
    const watchers = companion ? plan.nodes.map((n, i) => companion(n.name, () => this.client(n.name), this.#history, this.#watchProcess(i))) : [];
    this.#companions = watchers;
    await Promise.all(watchers.map((w) => w.start()));
    // The time limit counts from here, not from the start of the run (image build, cluster start).
    this.#startNs = this.#history.now();
    this.progress.workloadStartedMs = Date.now();
    const nemesis = this.#nemesisLoop(rngs.nemesis, stopNemesis.signal);
    let workersDone = false;
    try {
      await Promise.all(rngs.workers.map((rng, i) => this.#workerLoop(i, rng, signal)));
      workersDone = true;
    } finally {
      // The workers ended at the time limit: the nemesis ends too, once it has stopped the faults it
      // started (see #nemesisLoop). Interrupted, or a worker failed: no fault may be injected or stopped
      // after this point (the heal undoes them all).
      if (!workersDone) stopNemesis.abort();
      await nemesis;
      signal.removeEventListener('abort', onAbort);
    }

    this.progress.phase = 'heal';
    const healErrors = await this.heal();
    this.progress.phase = 'final-reads';
    // An interrupted run still waits for convergence: the signal stops the workload, not the
    // recovery, or writes still being relayed would look like divergence. A second signal exits.
    const { convergedAfterMs, rounds } = this.#system.finalReads ? await this.#finalReads() : { convergedAfterMs: undefined, rounds: 0 };
    // Events of the last changes are on their way; give them a moment before closing the streams.
    if (watchers.length) await sleep(200);
    for (const w of watchers) w.stop();
    const stats = await this.#recordStats();
    return { healErrors, convergedAfterMs, finalRounds: rounds, stats };
  }

  /** The process that makes the final reads and stats reads of node i: far above any worker's. */
  #finalProcess(i: number): number {
    return this.#plan.concurrency * 1_000_000 + i;
  }

  /** The first process of node i's watch streams (each new stream takes the next number). */
  #watchProcess(i: number): number {
    return this.#plan.concurrency * 1_000_000 + 100_000 + i * 10_000;
  }

  /**
   * Records every node's Stats as an op (f "stats"), so that pure checkers can judge the nodes' own counters (e.g. messages per write)
   * (messages per write) from the history alone.
   */
  async #recordStats(): Promise<Record<string, Record<string, unknown>>> {
    const out: Record<string, Record<string, unknown>> = {};
    await Promise.all(
      this.#plan.nodes.map(async (n, i) => {
        const client = this.client(n.name);
        if (!client.stats) return;
        const process = this.#finalProcess(i);
        this.#history.append({ process, node: n.name, type: 'invoke', f: 'stats', value: null });
        try {
          const stats = { ...(await client.stats(3000)) };
          this.#history.append({ process, node: n.name, type: 'ok', f: 'stats', value: stats });
          out[n.name] = stats;
        } catch (error) {
          const message = (error as Error).message;
          this.#history.append({ process, node: n.name, type: 'fail', f: 'stats', value: null, error: message });
          out[n.name] = { node: n.name, error: message };
        }
      }),
    );
    return out;
  }

  async #workerLoop(worker: number, rng: Rng, signal: AbortSignal): Promise<void> {
    const plan = this.#plan;
    const node = plan.nodes[worker % plan.nodes.length].name;
    let gen: Gen | null = workerGenerator(plan, this.#system.workloads, worker, this.#startNs);
    let process = worker;
    let last: Op | undefined;
    while (gen && !signal.aborted) {
      const step = gen.next({ timeNs: this.#history.now(), worker, process, node, last }, rng);
      if (!step) break;
      await abortableSleep(step.delayNs / 1e6, signal);
      if (signal.aborted) break;
      this.#history.append({ process, node, type: 'invoke', f: step.op.f, value: step.op.value });
      // Looked up per op: a restarted node's client is replaced (see reconnect).
      const c = await this.client(node).invoke(step.op);
      last = this.#history.append({ process, node, type: c.type, f: step.op.f, value: c.value, error: c.error });
      this.progress[c.type]++;
      // After an indeterminate outcome the process may still be in flight, so, as in Jepsen, the
      // worker continues as a new process and every process's ops stay strictly sequential.
      if (c.type === 'info') process += plan.concurrency;
      gen = step.gen;
    }
  }

  /**
   * Walks the fault schedule in rounds (nemesis/schedule.ts): each round takes a seeded permutation of
   * the packages and advances their own start/stop schedules in the order P0, P1, P0, P2, P1, …, so
   * every package starts and stops once per round and consecutive faults overlap (except that a start
   * whose every target a fault in force holds down waits for that fault's stop). Op i is due at
   * lead + (i + 1) × interval after the workload started, whatever earlier ops took, and no op starts at
   * or after the time limit.
   */
  async #nemesisLoop(rng: Rng, signal: AbortSignal): Promise<void> {
    if (this.#packages.length === 0) return;
    const { iterators, walk } = nemesisStreams(this.#packages, rng);
    const deadlineNs = this.#startNs + Math.round(this.#plan.timeLimitS * 1e9);
    // Packages whose last op started a fault (start, bump or strobe) that no stop has ended yet.
    const started = new Set<number>();
    for (let i = 0; ; i++) {
      const dueNs = this.#startNs + opDueNs(i, this.#plan.nemesisIntervalS, this.#plan.nemesisLeadS ?? 0);
      if (dueNs >= deadlineNs) break;
      await abortableSleep((dueNs - this.#history.now()) / 1e6, signal);
      if (signal.aborted) return;
      if (this.#history.now() >= deadlineNs) break;
      const next = walk.next();
      if (next.done) break;
      const { k, op, movedAfter } = next.value;
      await this.#nemesisOp(this.#packages[k], op, movedAfter);
      if (op.f.startsWith('stop-')) started.delete(k);
      else started.add(k);
    }
    // At the time limit, a fault still in force gets its own stop now rather than only the final heal:
    // slow ops (restarts, probes) can push a round's last stops past the limit, and then that package
    // would not have run (a start and a stop) although it was drawn.
    for (const k of started) {
      if (signal.aborted) return;
      const next = iterators[k].next();
      if (!next.done) await this.#nemesisOp(this.#packages[k], next.value);
    }
  }

  /** Invokes one fault op and records it; `movedAfter`: why the schedule let a stop go first (walkSchedule). */
  async #nemesisOp(pkg: FaultPackage, op: NemesisOp, movedAfter?: string): Promise<void> {
    // The fault took effect somewhere in [invokedAt, time]: checkers use it as the fault's uncertain edge.
    const invokedAt = this.#history.now();
    let completion;
    try {
      completion = await pkg.nemesis.invoke(op);
    } catch (error) {
      completion = { f: op.f, value: op.value, error: `${pkg.name}: ${(error as Error).message}` };
    }
    this.#history.append({ process: 'nemesis', type: 'info', f: completion.f, value: { ...completion.value, ...(movedAfter ? { movedAfter } : {}), invokedAt }, error: completion.error });
    const active = new Set(this.progress.faultsActive);
    if (!completion.error && !op.f.startsWith('stop-')) active.add(pkg.name);
    if (op.f.startsWith('stop-')) active.delete(pkg.name);
    this.progress.faultsActive = [...active];
  }

  /** Heals every fault package; records one "heal" op. Returns the errors (empty when all healed). */
  async heal(): Promise<string[]> {
    if (this.#packages.length === 0) return [];
    const invokedAt = this.#history.now();
    const errors: string[] = [];
    const healed: string[] = [];
    for (const pkg of this.#packages) {
      try {
        const report = await pkg.nemesis.heal();
        errors.push(...report.errors.map((e) => `${pkg.name}: ${e}`));
        if (report.ok) healed.push(pkg.name);
      } catch (error) {
        errors.push(`${pkg.name}: heal threw ${(error as Error).message}`);
      }
    }
    this.progress.faultsActive = [];
    this.#history.append({
      process: 'nemesis',
      type: 'info',
      f: 'heal',
      value: { packages: this.#packages.map((p) => p.name), healed, invokedAt },
      error: errors.length ? errors.join('; ') : undefined,
    });
    return errors;
  }

  /**
   * Final reads in rounds: every node is scanned; when all nodes answer with the same state the
   * cluster has converged and the rounds stop. Rounds back off (250 ms doubling to 2 s) so a cluster
   * that never converges costs a bounded number of scans within --recovery-ms.
   */
  async #finalReads(): Promise<{ convergedAfterMs: number | undefined; rounds: number }> {
    const plan = this.#plan;
    const startNs = this.#history.now();
    let delayMs = 250;
    for (let round = 0; ; round++) {
      const states = await Promise.all(
        plan.nodes.map(async (n, i) => {
          const process = this.#finalProcess(i);
          const op = { f: 'final-read', value: { round } };
          this.#history.append({ process, node: n.name, type: 'invoke', f: op.f, value: op.value });
          const c = await this.client(n.name).invoke(op);
          this.#history.append({ process, node: n.name, type: c.type, f: op.f, value: c.value, error: c.error });
          return c.type === 'ok' ? JSON.stringify((c.value as { state: FinalState }).state) : undefined;
        }),
      );
      const elapsedMs = (this.#history.now() - startNs) / 1e6;
      if (states.every((s) => s !== undefined && s === states[0])) return { convergedAfterMs: elapsedMs, rounds: round + 1 };
      if (elapsedMs + delayMs > plan.recoveryMs) return { convergedAfterMs: undefined, rounds: round + 1 };
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }

  close(): void {
    for (const w of this.#companions) w.stop();
    for (const c of this.#clients.values()) c.close();
  }
}
