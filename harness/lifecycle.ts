// One test run from start to verdict: the lifecycle of shared/DESIGN.md. It turns Options into the
// Test (one plain value, written to test.json), makes the run folder, builds the image, starts the
// cluster, runs the workload and the nemesis, heals, reads the final states, collects node stats,
// copies logs and tears the cluster down (on every path: success, failure, abort), then runs the
// checkers and writes results.json, report.html and junit.xml. It never calls process.exit: the CLI
// maps the verdict to an exit code.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { compose, mergeResults, type CheckResult, type Validity } from '../checkers/types.ts';
import { containerNeeds, resolveNemeses } from '../nemesis/index.ts';
import { autoSchedule } from '../nemesis/schedule.ts';
import type { FaultPackage } from '../nemesis/types.ts';
import { Cluster, removeLeftovers } from './cluster.ts';
import { connectEngines, distributeImage, measureClockOffsets, parseEngineList, placeNodes, placementRecord, type ClockOffset, type Engine, type EngineRecord } from './engines.ts';
import { connectDocker } from './image.ts';
import { HistoryWriter } from './history-writer.ts';
import type { System } from './system.ts';
import { checkContext } from './check-context.ts';
import { defaultTestName, reproduceCommand, type Options } from './options.ts';
import { writeRunOutputs } from './report/index.ts';
import { packagesRan } from './report/faults.ts';
import { countOps, createRunFolder, writeTest, type NodeStats, type RunFolder, type RunResults } from './results.ts';
import { nemesisPlan, Interpreter, type Progress, type InterpreterPlan } from './interpreter.ts';

export const HARNESS_VERSION = '0.1.0';

/** The whole test as one plain value (Jepsen's test map), written to test.json. */
export interface Test {
  readonly name: string;
  /** The system under test, as `--system` names it. */
  readonly system: string;
  readonly runId: string;
  readonly startTime: string;
  readonly seed: number;
  readonly nodes: readonly string[];
  readonly workload: string;
  readonly nemesis: readonly string[];
  readonly options: Options;
  readonly command: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly host: string;
  /** With --engines: the engines, e1..eN, as given. */
  readonly engines?: readonly { readonly name: string; readonly url: string }[];
  /** With --engines: node → the engine that runs it (e1..eN). */
  readonly placement?: Readonly<Record<string, string>>;
}

export interface TestReport {
  readonly valid: Validity;
  readonly folder: RunFolder;
  readonly results: RunResults;
  readonly test: Test;
}

export interface LifecycleHooks {
  /** Progress lines (phase changes, image build, cluster start). */
  readonly log?: (line: string) => void;
  /** Called once the interpreter exists, so the CLI can show live progress. */
  readonly onProgress?: (progress: Progress, startedAt: number) => void;
  /** Called once the cluster is healthy (soak samples node memory through it); not awaited. */
  readonly onCluster?: (cluster: Cluster, signal: AbortSignal) => void;
}

/** Logs the fault schedule: its interval, the first round's order, and the packages that will miss a turn. */
function logNemesisPlan(plan: InterpreterPlan, packages: readonly FaultPackage[], auto: boolean, log: (line: string) => void): void {
  const p = nemesisPlan(plan, packages);
  const interval = `${Number(plan.nemesisIntervalS.toFixed(3))} s${auto ? ' (auto)' : ''}`;
  const lead = plan.nemesisLeadS ? `, the first after ${Number((plan.nemesisLeadS + plan.nemesisIntervalS).toFixed(3))} s of calm` : '';
  log(`nemesis: one op every ${interval}${lead}, ${p.opsDue} before the time limit; first round: ${p.firstRound.join(', ')}`);
  if (p.noStart.length || p.noStop.length) {
    const misses = [...p.noStart.map((n) => `${n} (no start)`), ...p.noStop.map((n) => `${n} (no stop)`)];
    log(
      `nemesis: warning: --nemesis-interval ${plan.nemesisIntervalS} is too long for a whole round of ${2 * packages.length} ops in ${plan.timeLimitS} s; ` +
        `these packages will miss a turn and the verdict will be unknown at best: ${misses.join(', ')}`,
    );
  }
}

export function makeTest(options: Options, startTime = new Date()): Test {
  const name = options.name ?? defaultTestName(options);
  const nodes = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const engines = options.engines && options.engines.length > 0 ? options.engines : undefined;
  return {
    name,
    system: options.system,
    runId: `${startTime.toISOString().replace(/\D/g, '').slice(2, 14)}${randomBytes(2).toString('hex')}`,
    startTime: startTime.toISOString(),
    seed: options.seed,
    nodes: Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`),
    workload: options.workload,
    nemesis: options.nemesis,
    options,
    command: reproduceCommand(options),
    versions: { faultline: HARNESS_VERSION, node: process.version },
    host: hostname(),
    ...(engines ? { engines: engines.map((url, i) => ({ name: `e${i + 1}`, url })), placement: placementRecord(nodes, placeNodes(nodes, engines.length, options.placement)) } : {}),
  };
}

/**
 * Runs one test of `system` (the entry points look it up by options.system in harness/systems/). `signal`
 * aborts the workload early (SIGINT): the run still heals, reads, tears down and writes its results,
 * with the verdict at best `unknown`.
 */
export async function runTest(system: System, options: Options, signal: AbortSignal, hooks: LifecycleHooks = {}): Promise<TestReport> {
  if (system.name !== options.system) throw new Error(`runTest was given the ${system.name} system for options naming ${options.system}`);
  const log = hooks.log ?? (() => undefined);
  const test = makeTest(options);
  const started = Date.now();
  const folder = await createRunFolder(path.resolve(options.resultsDir), test.name, new Date(test.startTime));
  await writeTest(folder, test);
  log(`seed=${test.seed} run folder ${folder.dir}`);
  const history = new HistoryWriter(folder.history);

  let cluster: Cluster | undefined;
  let interpreter: Interpreter | undefined;
  let packages: FaultPackage[] = [];
  let runError: string | undefined;
  let healErrors: readonly string[] = [];
  let recoveryMs: number | undefined;
  let stats: Record<string, NodeStats> | undefined;
  let image = '';
  let stopSampling = () => {};
  /** The fault packages the run is meant to exercise (`all` expands to what this machine supports). */
  let nemesisNamed: string[] = [...options.nemesis];
  /** With --engines: the engines, and each one's host clock against ours at the start and the end (Jepsen's check-offsets). */
  let engines: Engine[] = [];
  let clocksStart: (ClockOffset | { readonly error: string })[] = [];
  let clocksEnd: (ClockOffset | { readonly error: string })[] = [];
  const engineVersions: string[] = [];
  try {
    const removed = await removeLeftovers();
    if (removed.length) log(`removed leftovers of crashed runs: ${removed.join(', ')}`);
    if (test.engines) {
      engines = await connectEngines(parseEngineList(test.engines.map((e) => e.url).join(',')));
      for (const e of engines) engineVersions.push(((await e.docker.version()) as { Version?: string }).Version ?? '');
      clocksStart = await measureClockOffsets(engines);
      log(`engines: ${engines.map((e, i) => `${e.name} ${e.url} (${engineVersions[i]}, clock ${clockText(clocksStart[i])})`).join('; ')}`);
    }
    image = await system.image({ onProgress: log });
    // The image is built on the default engine; every engine of the run gets it from there (docker save | load).
    if (engines.length > 0) await distributeImage(await connectDocker(), image, engines, log);
    if (signal.aborted) throw new Error('aborted before the cluster started');
    log(`starting ${options.nodes} nodes from ${image}`);
    cluster = await Cluster.start({
      runId: test.runId,
      nodes: options.nodes,
      image,
      options,
      onProgress: log,
      system,
      keep: options.leaveRunning,
      needs: containerNeeds(options.nemesis, system.unsupportedFaults),
      ...(engines.length > 0 ? { engines, placement: options.placement } : {}),
    });
    const clusterDone = new AbortController();
    hooks.onCluster?.(cluster, clusterDone.signal);
    signal.addEventListener('abort', () => clusterDone.abort(), { once: true });
    stopSampling = () => clusterDone.abort();
    packages = await resolveNemeses(options.nemesis, cluster, { nodes: test.nodes, intervalS: options.nemesisIntervalS, targets: options.nemesisTargets, shapes: options.partitionShapes, diskFaults: options.diskFaults, diskDelayMs: options.diskDelayMs, delay: { delaysMs: options.delayMs, jittersMs: options.delayJitterMs, duplicatePercents: options.delayDuplicatePercent } }, (skipped) =>
      log(`nemesis: skipping ${skipped.name}: ${skipped.reason}`),
    );
    nemesisNamed = packages.map((p) => p.name);
    for (const p of packages) await p.nemesis.setup(cluster);
    const schedule = options.nemesisIntervalS === undefined ? autoSchedule(options.timeLimitS, packages.length) : { intervalS: options.nemesisIntervalS, leadS: 0 };
    const plan: InterpreterPlan = {
      seed: test.seed,
      nodes: cluster.nodes,
      workload: options.workload,
      concurrency: options.concurrency,
      rate: options.rate,
      timeLimitS: options.timeLimitS,
      // auto: a calm lead-in, then one whole round (every start and stop) with two intervals to spare.
      nemesisIntervalS: schedule.intervalS,
      nemesisLeadS: schedule.leadS,
      recoveryMs: options.recoveryMs,
      opTimeoutMs: options.opTimeoutMs,
      keys: options.keys,
      runTag: test.runId,
      options,
    };
    if (packages.length > 0) logNemesisPlan(plan, packages, options.nemesisIntervalS === undefined, log);
    interpreter = new Interpreter(plan, history, packages, system);
    const live = interpreter;
    // A restarted node gets fresh client connections once it is ready (see Interpreter.reconnect). Not
    // earlier: a connection attempted while the container is still coming up waited about a second for
    // TCP's SYN retransmission (measured), while one made once it answers is up at once.
    cluster.onNodeBack('clients', async (node, event) => {
      if (event === 'healthy') live.reconnect(node);
      return undefined;
    });
    hooks.onProgress?.(interpreter.progress, started);
    log(`running ${options.workload} for ${options.timeLimitS}s with nemesis ${options.nemesis.join(',') || 'none'}`);
    const outcome = await interpreter.run(signal);
    healErrors = outcome.healErrors;
    recoveryMs = outcome.convergedAfterMs;
    stats = outcome.stats as Record<string, NodeStats>;
    if (signal.aborted) runError = 'the run was interrupted before its time limit';
  } catch (error) {
    runError = error instanceof Error ? error.message : String(error);
    log(`run error: ${runError}`);
    // Faults must not outlive a failed run, and a heal failure must be visible in the verdict.
    if (interpreter) healErrors = [...healErrors, ...(await interpreter.heal().catch((e) => [`heal threw ${(e as Error).message}`]))];
  } finally {
    stopSampling();
    if (interpreter) interpreter.progress.phase = 'teardown';
    interpreter?.close();
    for (const p of packages) await p.nemesis.teardown().catch(() => undefined);
    history.close();
    if (cluster) {
      await cluster.copyLogs(folder.nodesDir).catch((e) => log(`could not copy node logs: ${(e as Error).message}`));
      if (options.leaveRunning) {
        const remove = `docker rm -f $(docker ps -aq --filter label=faultline=${test.runId}) && docker network rm $(docker network ls -q --filter label=faultline=${test.runId})`;
        const where = engines.length > 0 ? `on each engine (DOCKER_HOST=${engines.map((e) => e.url).join(', ')}; the network on the swarm manager)` : '';
        log(`cluster left running (--leave-running); later runs leave it alone. Its nodes: ${cluster.nodes.map((n) => `${n.name} ${n.address}${n.engine ? ` on ${n.engine}` : ''}`).join(', ')}. Remove it with: ${remove}${where ? ` ${where}` : ''}`);
      } else {
        await cluster.teardown();
      }
    }
    if (engines.length > 0) {
      clocksEnd = await measureClockOffsets(engines);
      log(`engine clocks at the end: ${engines.map((e, i) => `${e.name} ${clockText(clocksEnd[i])}`).join('; ')}`);
    }
  }
  const engineRecords: EngineRecord[] = engines.map((e, i) => ({
    name: e.name,
    url: e.url,
    version: engineVersions[i],
    nodes: test.nodes.filter((n) => test.placement?.[n] === e.name),
    ...clockFields('clockStart', clocksStart[i]),
    ...clockFields('clockEnd', clocksEnd[i]),
  }));

  if (interpreter) interpreter.progress.phase = 'check';
  const ctx = { ...checkContext(test.nodes, test.workload, options, system.workloads[test.workload]?.calls), nemesis: nemesisNamed };
  const checked = compose(system.checkers(test.workload, options))(history.ops, ctx);
  const checkers: Record<string, CheckResult> = { ...checked.results };
  if (healErrors.length) checkers.heal = { valid: 'unknown', error: `heal failed: ${healErrors.join('; ')}` };
  if (runError) checkers.run = { valid: 'unknown', error: runError };
  const valid = mergeResults(Object.values(checkers));
  const results: RunResults = {
    formatVersion: 1,
    valid,
    test: {
      name: test.name,
      system: test.system,
      seed: test.seed,
      workload: test.workload,
      nemesis: nemesisNamed,
      nemesisRan: packagesRan(checkers.faults, nemesisNamed),
      nodes: test.nodes,
      startTime: test.startTime,
      command: test.command,
      bug: options.bug ?? null,
      image,
    },
    checkers,
    stats,
    durationMs: Date.now() - started,
    recoveryMs,
    opCounts: countOps(history.ops),
    ...(engineRecords.length > 0 ? { engines: engineRecords } : {}),
    ...(runError ? { error: runError } : {}),
    versions: test.versions,
  };
  await writeRunOutputs(folder, { test, history: history.ops, results, nodeStats: stats });
  if (interpreter) interpreter.progress.phase = 'done';
  return { valid, folder, results, test };
}

function clockText(c: ClockOffset | { readonly error: string } | undefined): string {
  if (!c) return 'not measured';
  return 'error' in c ? `unknown (${c.error})` : `${c.offsetMs >= 0 ? '+' : ''}${c.offsetMs} ms ± ${c.rttMs / 2} ms`;
}

/** An engine's clock reading as results.json keeps it: the offset, or why it could not be read. */
function clockFields(key: 'clockStart' | 'clockEnd', c: ClockOffset | { readonly error: string } | undefined): Partial<EngineRecord> {
  if (!c) return {};
  return 'error' in c ? { clockError: c.error } : { [key]: c };
}
