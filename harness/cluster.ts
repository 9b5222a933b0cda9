// The cluster: N node containers (n1..nN) on a private Docker bridge network, driven with dockerode.
// With several engines (ClusterOptions.engines, `--engines`) the nodes are placed over them and share one
// attachable overlay network instead; each node's client port is then published on its engine's host
// and the harness dials that (harness/engines.ts says why), and every operation on a node goes through
// the engine that holds it.
// It implements the nemesis's ClusterControl (exec, kill, restart, pause, unpause) and the lifecycle the
// interpreter needs: start and wait until every node is ready (as its System says), logs, and a teardown that leaves nothing
// behind. The harness talks to each node straight at its container IP on the system's port, so no ports are
// published and several clusters can run side by side.
//
// Every Docker object carries labels: faultline=<runId>, faultline.node, and the owner's host name and
// pid (plus the pid's start time), so removeLeftovers() can find objects whose harness died without
// tearing down, and never touches a cluster whose harness is still alive.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import pRetry, { AbortError } from 'p-retry';
import type { ClusterControl, ContainerNeeds, ExecResult, NodeBackEvent, NodeBackListener, NodeBackReport, NodeState } from '../nemesis/types.ts';
import { placeNodes, swarmManager, type Engine } from './engines.ts';
import { connectDocker, errorText } from './image.ts';
import type { Options } from './options.ts';
import type { System } from './system.ts';

export interface ClusterOptions {
  /** Names this run's Docker objects: network faultline-<runId>, containers faultline-<runId>-nN. Letters, digits, '.', '_', '-'. */
  readonly runId: string;
  /** Number of nodes, 1 to 26. */
  readonly nodes: number;
  /** The node image tag, from ensureImage(). */
  readonly image: string;
  /** The system under test: its nodes' command line, environment, readiness and capabilities. */
  readonly system: System;
  /** The test's options that shape every node (--bug, and the options the system reads); the system's defaults where absent. */
  readonly options?: Partial<Options>;
  /** How long start() and restart() wait for a node to be ready. @default 30000 */
  readonly healthTimeoutMs?: number;
  /** Remove objects of dead harness runs on this host before starting. @default true */
  readonly removeLeftovers?: boolean;
  /** Called with one human-readable line per step. */
  readonly onProgress?: (line: string) => void;
  /** An existing client; by default one is made with connectDocker(). */
  readonly docker?: Docker;
  /** The cluster is meant to outlive the harness (--leave-running): later runs must not sweep it away. @default false */
  readonly keep?: boolean;
  /** Devices, capabilities and environment the run's fault packages need in every node (nemesis/index.ts containerNeeds). @default none */
  readonly needs?: ContainerNeeds;
  /**
   * Several engines, all in one swarm (harness/engines.ts): the nodes are placed on them and talk over
   * an attachable overlay network created on the first swarm manager among them. Absent: one engine,
   * `docker`, and a private bridge network, as always.
   */
  readonly engines?: readonly Engine[];
  /** With `engines`: the engine (0-based index) of each node, in node order. @default round-robin */
  readonly placement?: readonly number[];
}

export interface ClusterNode {
  /** n1..nN: the node id, host name and network alias. */
  readonly name: string;
  /** The container's IP on the run's network. */
  readonly ip: string;
  /** host:port of the system's client API: the container IP, or with several engines the engine's host and the published port. */
  readonly address: string;
  /** With several engines: the name of the engine that holds the node (e1, e2, ...). */
  readonly engine?: string;
}

export interface ExecOptions {
  /** Give up waiting for the command after this long (the error names node and command). @default 30000 */
  readonly timeoutMs?: number;
}

const labelRun = 'faultline';
const labelNode = 'faultline.node';
const labelPid = 'faultline.pid';
const labelPidStart = 'faultline.pidstart';
const labelHost = 'faultline.host';
/** Set on a cluster kept with --leave-running: it outlives its harness on purpose, so it is no leftover. */
const labelKeep = 'faultline.keep';

/**
 * The engines of multi-engine clusters this process started, so forceRemoveOwn (second Ctrl-C, a crash)
 * sweeps them too, not only the default engine.
 */
const ownEngines = new Set<Docker>();

/** Where a node's client port is published on its engine's host (multi-engine only): a fixed port, picked below the ephemeral range. */
function randomHostPort(): number {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

export class Cluster implements ClusterControl {
  readonly runId: string;
  readonly networkName: string;
  readonly image: string;
  #nodes: ClusterNode[];
  /** The engine of the network (the only engine, or the swarm manager). */
  readonly #docker: Docker;
  /** Multi-engine: each node's engine, its host (where published ports are dialled) and its published client port. */
  readonly #placed: ReadonlyMap<string, { readonly engine: Engine; hostPort: number }>;
  readonly #healthTimeoutMs: number;
  readonly #system: System;
  readonly #progress: (line: string) => void;
  /** Node-back listeners by nemesis name, called in registration order. */
  readonly #listeners = new Map<string, NodeBackListener>();
  #tornDown = false;

  private constructor(init: {
    runId: string;
    networkName: string;
    image: string;
    nodes: ClusterNode[];
    docker: Docker;
    healthTimeoutMs: number;
    progress: (line: string) => void;
    system: System;
    placed?: ReadonlyMap<string, { readonly engine: Engine; hostPort: number }>;
  }) {
    this.#system = init.system;
    this.#placed = init.placed ?? new Map();
    this.runId = init.runId;
    this.networkName = init.networkName;
    this.image = init.image;
    this.#nodes = init.nodes;
    this.#docker = init.docker;
    this.#healthTimeoutMs = init.healthTimeoutMs;
    this.#progress = init.progress;
  }

  /** The nodes in order n1..nN with their current container IPs. */
  get nodes(): readonly ClusterNode[] {
    return this.#nodes;
  }

  /** The Docker container name of a node. */
  containerName(node: string): string {
    return `faultline-${this.runId}-${node}`;
  }

  /**
   * Creates the network and the containers, starts them all at once and waits until every node is
   * ready. On failure everything created is removed again and the error names the node and shows its
   * last log lines.
   */
  static async start(options: ClusterOptions): Promise<Cluster> {
    validateOptions(options);
    const started = performance.now();
    const progress = options.onProgress ?? (() => {});
    const engines = options.engines ?? [];
    const multi = engines.length > 0;
    const docker = multi ? (await swarmManager(engines)).docker : (options.docker ?? (await connectDocker()));
    if (options.removeLeftovers ?? true) {
      const removed = (await Promise.all((multi ? engines.map((e) => e.docker) : [docker]).map((d) => removeLeftovers({ docker: d })))).flat();
      if (removed.length > 0) progress(`removed leftovers of dead runs: ${removed.join(', ')}`);
    }

    const names = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    const placement = multi ? placeNodes(names, engines.length, options.placement) : [];
    const placed = new Map<string, { readonly engine: Engine; hostPort: number }>(names.flatMap((name, i) => (multi ? [[name, { engine: engines[placement[i]], hostPort: randomHostPort() }]] : [])));
    if (multi) for (const e of engines) ownEngines.add(e.docker);
    const networkName = `faultline-${options.runId}`;
    const labels = { ...ownerLabels(options.runId), ...(options.keep ? { [labelKeep]: 'true' } : {}) };
    const cluster = new Cluster({
      runId: options.runId,
      networkName,
      image: options.image,
      nodes: names.map((name) => ({ name, ip: '', address: '', ...(multi ? { engine: placed.get(name)!.engine.name } : {}) })),
      docker,
      healthTimeoutMs: options.healthTimeoutMs ?? 30_000,
      progress,
      system: options.system,
      placed,
    });
    // One secret per run (for peers that authenticate each other), shared by every node (a restart reuses the container and its environment).
    // It lives only in the containers' environment: never in a log line, the test or the results.
    const meshSecret = randomBytes(32).toString('hex');
    try {
      const ips = multi ? await createOverlay(docker, networkName, labels, names.length) : await createNetwork(docker, networkName, labels, names.length);
      // allSettled, not all: on a failure, teardown must not race creates that are still in flight.
      const created = await Promise.allSettled(
        names.map(async (name, i) => {
          const spot = placed.get(name);
          if (!spot) {
            const container = await docker.createContainer(containerSpec(cluster.containerName(name), name, names, networkName, options, labels, ips[i], meshSecret));
            await container.start();
            return;
          }
          // A published port may be taken on that engine's host already: pick another and try again.
          for (let attempt = 1; ; attempt++) {
            const container = await spot.engine.docker.createContainer(containerSpec(cluster.containerName(name), name, names, networkName, options, labels, ips[i], meshSecret, spot.hostPort));
            try {
              await container.start();
              return;
            } catch (error) {
              if (attempt >= 5 || !/port is already allocated|address already in use/i.test(dockerMessage(error))) throw error;
              await container.remove({ force: true, v: true });
              spot.hostPort = randomHostPort();
            }
          }
        }),
      );
      const createFailures = created.flatMap((c, i) => (c.status === 'rejected' ? [`${names[i]}${multi ? ` on ${placed.get(names[i])!.engine.name}` : ''}: ${dockerMessage(c.reason)}`] : []));
      if (createFailures.length) throw new Error(`could not create or start ${createFailures.length} of ${names.length} containers:\n${createFailures.join('\n')}`);
      const where = multi ? ` over ${engines.length} engines (${engines.map((e) => `${e.name}: ${names.filter((_, i) => placement[i] === engines.indexOf(e)).join(',') || 'none'}`).join('; ')})` : '';
      progress(`started ${names.length} containers on network ${networkName}${where} (${Math.round(performance.now() - started)} ms)`);
      await Promise.all(names.map((name) => cluster.#refreshIp(name)));
      // Wait for all of them, so a failure reports every node that did not come up, not just the first.
      const waits = await Promise.allSettled(names.map((name) => cluster.#waitHealthy(name)));
      const failures = waits.flatMap((w) => (w.status === 'rejected' ? [w.reason as Error] : []));
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) {
        throw new Error(`${failures.length} of ${names.length} nodes did not become healthy:\n\n${failures.map((f) => f.message).join('\n\n')}`, { cause: failures[0] });
      }
      // Ready is not yet formed (every peer connected, or a leader elected): the run starts only from a
      // formed cluster, where the system declares what that means.
      await cluster.#waitFormed(names);
      progress(`cluster ${options.runId}: ${names.length} nodes ready and formed in ${Math.round(performance.now() - started)} ms`);
      return cluster;
    } catch (error) {
      await cluster.teardown().catch((teardownError: unknown) => {
        progress(`teardown after failed start also failed: ${errorText(teardownError)}`);
      });
      throw error;
    }
  }

  /** Runs a command in the node's container as root. Never throws for a non-zero exit; throws when it cannot run or times out. */
  async exec(node: string, cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const container = this.#container(node);
    const what = `${node}: exec ${JSON.stringify(cmd.join(' '))}`;
    let exec: Docker.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await container.exec({ Cmd: [...cmd], AttachStdout: true, AttachStderr: true, User: 'root' });
      stream = await exec.start({ hijack: true, stdin: false });
    } catch (error) {
      throw new Error(`${what} could not start: ${dockerMessage(error)}`, { cause: error });
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const out = new PassThrough().on('data', (chunk: Buffer) => stdout.push(chunk));
    const err = new PassThrough().on('data', (chunk: Buffer) => stderr.push(chunk));
    this.#dockerOf(node).modem.demuxStream(stream, out, err);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`${what} did not finish within ${timeoutMs} ms; output so far: ${Buffer.concat([...stdout, ...stderr]).toString('utf8').slice(-2000)}`));
          (stream as unknown as { destroy?: () => void }).destroy?.();
        }, timeoutMs);
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', (error: Error) => reject(new Error(`${what} failed: ${error.message}`, { cause: error })));
      });
    } finally {
      clearTimeout(timer);
    }
    const info = await exec.inspect();
    // A node killed while the command ran (SIGKILL takes the exec'd process with it): over several engines
    // an exec takes long enough for a kill fault to land in the middle of, e.g., a flapping partition's
    // iptables-restore (seen: exit 137), and on one loaded engine the same race is open. That is a
    // stopped node, as when the exec could not start, not a failed command.
    if (info.ExitCode === 137 && !(await this.#state(node).catch(() => ({ Running: true }))).Running) {
      throw new Error(`${what}: container ${this.containerName(node)} is not running (it was killed while the command ran)`);
    }
    return {
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
      exitCode: info.ExitCode ?? -1,
    };
  }

  /**
   * Signals the node. Docker's init (PID 1) forwards SIGTERM to the service; SIGKILL kills PID 1 and
   * with it the service at once. Waits until the container has stopped; the container and its /data
   * stay on disk for restart(). A node that is already stopped is left as it is.
   */
  async kill(node: string, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const container = this.#container(node);
    const state = await this.#state(node);
    if (!state.Running) return;
    // Docker delivers SIGKILL to a paused container as it is; SIGTERM needs the process thawed to act.
    if (state.Paused && signal === 'SIGTERM') await container.unpause();
    try {
      await container.kill({ signal });
    } catch (error) {
      if (statusCode(error) !== 409) throw new Error(`${node}: docker kill -s ${signal} failed: ${dockerMessage(error)}`, { cause: error });
    }
    const stopTimeoutMs = 15_000;
    const stopped = await pollUntil(async () => !(await this.#state(node)).Running, stopTimeoutMs);
    if (!stopped) throw new Error(`${node}: still running ${stopTimeoutMs} ms after ${signal}; last log lines:\n${await this.#logTail(node)}`);
  }

  /**
   * Starts a stopped node's container again and waits until its service is ready. The node-back
   * listeners run as soon as the container runs (`restarted`: a fresh network namespace, so network
   * faults are re-applied before the service can reach its peers) and once it is healthy (`healthy`);
   * what they did is returned. A node that was already running is left alone (no listener runs).
   */
  async restart(node: string): Promise<NodeBackReport> {
    const container = this.#container(node);
    let started = true;
    try {
      await container.start();
    } catch (error) {
      // 304: already running, which is what restart asks for.
      if (statusCode(error) !== 304) throw new Error(`${node}: docker start failed: ${dockerMessage(error)}`, { cause: error });
      started = false;
    }
    await this.#refreshIp(node);
    const report = started ? await this.#nodeBack(node, 'restarted') : emptyReport();
    await this.#waitHealthy(node);
    return started ? mergeReports(report, await this.#nodeBack(node, 'healthy')) : report;
  }

  /** The node's container state: running, paused or stopped. */
  async state(node: string): Promise<NodeState> {
    const state = await this.#state(node);
    return state.Running ? (state.Paused ? 'paused' : 'running') : 'stopped';
  }

  onNodeBack(name: string, listener: NodeBackListener): () => void {
    this.#listeners.set(name, listener);
    return () => {
      if (this.#listeners.get(name) === listener) this.#listeners.delete(name);
    };
  }

  /** Runs every node-back listener in turn; a listener that throws is reported, never fatal. */
  async #nodeBack(node: string, event: NodeBackEvent): Promise<NodeBackReport> {
    const reapplied: Record<string, NodeBackReport['reapplied'][string]> = {};
    const errors: string[] = [];
    for (const [name, listener] of [...this.#listeners]) {
      try {
        const value = await listener(node, event);
        if (value === undefined) continue;
        reapplied[name] = value;
        if (typeof value.error === 'string') errors.push(`${name}: ${value.error}`);
      } catch (error) {
        errors.push(`${name}: re-applying its faults on ${node} (${event}) threw: ${errorText(error)}`);
      }
    }
    return { reapplied, errors };
  }

  /** Freezes every process of the node (cgroup freezer): it keeps its connections but answers nothing. */
  async pause(node: string): Promise<void> {
    try {
      await this.#container(node).pause();
    } catch (error) {
      throw new Error(`${node}: docker pause failed: ${dockerMessage(error)}`, { cause: error });
    }
  }

  /**
   * Resumes a paused node. A node that is not paused (or not running: a kill heal may have restarted
   * it, or it is stopped) is already what unpause asks for, as restart treats 304.
   */
  async unpause(node: string): Promise<NodeBackReport> {
    try {
      await this.#container(node).unpause();
    } catch (error) {
      // Docker answers "is not paused" with 409 or (older engines, e.g. 20.10) 500: trust the state.
      if (!(await this.#state(node).catch(() => ({ Paused: true }))).Paused) return emptyReport();
      throw new Error(`${node}: docker unpause failed: ${dockerMessage(error)}`, { cause: error });
    }
    return this.#nodeBack(node, 'unpaused');
  }

  /** One readiness probe of the node (the system's own); rejects with why it is not ready. */
  ready(node: string, options: { readonly timeoutMs?: number } = {}): Promise<void> {
    return this.#system.ready(this.#node(node), options.timeoutMs ?? 2_000);
  }

  /** The port the system under test serves its clients on in every container. */
  get port(): number {
    return this.#system.port;
  }

  /** Fault packages the system under test cannot take, with why. */
  get unsupportedFaults(): Readonly<Record<string, string>> | undefined {
    return this.#system.unsupportedFaults;
  }

  /** A node's wall clock as its service sees it; undefined when the system declares no way to read it. */
  get wallClock(): ((node: string, timeoutMs: number) => Promise<number>) | undefined {
    const read = this.#system.wallClock;
    return read ? (node, timeoutMs) => read(this.#node(node), timeoutMs) : undefined;
  }

  /** The node's stdout and stderr so far, interleaved as written (also for a stopped container). */
  async logs(node: string, options: { readonly tailLines?: number } = {}): Promise<string> {
    const raw = (await this.#container(node).logs({
      stdout: true,
      stderr: true,
      follow: false,
      ...(options.tailLines === undefined ? {} : { tail: options.tailLines }),
    })) as unknown as Buffer;
    return demuxBuffer(raw);
  }

  /** Writes each node's log to <dir>/<node>.log and returns the paths. */
  async copyLogs(dir: string): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    return Promise.all(
      this.#nodes.map(async ({ name }) => {
        const file = path.join(dir, `${name}.log`);
        let text: string;
        try {
          text = await this.logs(name);
        } catch (error) {
          text = `(could not read the log of ${name}: ${dockerMessage(error)})\n`;
        }
        await writeFile(file, text);
        return file;
      }),
    );
  }

  /** Removes the containers (forcefully) and the network. Safe to call more than once. */
  async teardown(): Promise<void> {
    this.#tornDown = true;
    const errors: string[] = [];
    await Promise.all(
      this.#nodes.map(async ({ name }) => {
        try {
          await this.#dockerOf(name).getContainer(this.containerName(name)).remove({ force: true, v: true });
        } catch (error) {
          if (statusCode(error) !== 404) errors.push(`${name}: ${dockerMessage(error)}`);
        }
      }),
    );
    try {
      await this.#docker.getNetwork(this.networkName).remove();
    } catch (error) {
      if (statusCode(error) !== 404) errors.push(`network ${this.networkName}: ${dockerMessage(error)}`);
    }
    if (errors.length > 0) throw new Error(`Teardown of cluster ${this.runId} incomplete: ${errors.join('; ')}`);
  }

  #node(node: string): ClusterNode {
    const found = this.#nodes.find((n) => n.name === node);
    if (!found) throw new Error(`Unknown node "${node}"; this cluster has ${this.#nodes.map((n) => n.name).join(', ')}.`);
    return found;
  }

  #container(node: string): Docker.Container {
    this.#node(node);
    if (this.#tornDown) throw new Error(`${node}: cluster ${this.runId} has been torn down.`);
    return this.#dockerOf(node).getContainer(this.containerName(node));
  }

  /** The engine that holds a node: its own with several engines, else the one engine. */
  #dockerOf(node: string): Docker {
    return this.#placed.get(node)?.engine.docker ?? this.#docker;
  }

  async #state(node: string): Promise<Docker.ContainerInspectInfo['State']> {
    return (await this.#container(node).inspect()).State;
  }

  // Reads the container's IP on the run's network. Docker usually hands a restarted container the same
  // address, but nothing guarantees it, so the address is read again after every start.
  async #refreshIp(node: string): Promise<void> {
    const info = await this.#container(node).inspect();
    const ip = info.NetworkSettings.Networks[this.networkName]?.IPAddress;
    if (!ip) throw new Error(`${node}: container has no IP address on network ${this.networkName} (state ${info.State.Status}).`);
    const previous = this.#node(node);
    if (previous.ip && previous.ip !== ip) this.#progress(`${node}: IP changed from ${previous.ip} to ${ip}`);
    const spot = this.#placed.get(node);
    let address = `${ip}:${this.#system.port}`;
    if (spot) {
      // The client port is published at a fixed host port, so a restarted node keeps its address (the workers dial the address they were given).
      const published = info.NetworkSettings.Ports?.[`${this.#system.port}/tcp`]?.find((b) => b.HostPort)?.HostPort;
      if (published !== String(spot.hostPort)) throw new Error(`${node}: port ${this.#system.port} is published at ${published ?? 'no port'} on ${spot.engine.name}, expected ${spot.hostPort}`);
      address = `${spot.engine.host}:${spot.hostPort}`;
    }
    this.#nodes = this.#nodes.map((n) => (n.name === node ? { name: node, ip, address, ...(spot ? { engine: spot.engine.name } : {}) } : n));
  }

  async #waitHealthy(node: string): Promise<void> {
    const started = performance.now();
    const timeoutMs = this.#healthTimeoutMs;
    try {
      await pRetry(
        async () => {
          try {
            await this.#system.ready(this.#node(node), 1_000);
          } catch (error) {
            // A node that answers as another node will not become this one by waiting.
            throw (error as { permanent?: boolean }).permanent ? new AbortError((error as Error).message) : error;
          }
        },
        {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 25,
          factor: 1.5,
          maxTimeout: 250,
          randomize: false,
          maxRetryTime: timeoutMs,
          // A container that has exited will never answer; stop at once and show why it exited.
          shouldRetry: async () => (await this.#state(node)).Running,
        },
      );
    } catch (error) {
      const state = await this.#state(node).catch(() => undefined);
      const status = state ? `container ${state.Status}${state.Running ? '' : `, exit code ${state.ExitCode}`}` : 'container state unknown';
      throw new Error(
        `${node} (${this.containerName(node)}, ${this.#node(node).address}) was not ready within ` +
          `${Math.round(performance.now() - started)} ms (timeout ${timeoutMs} ms; ${status}; last error: ${errorText(error)}).\n` +
          `Last log lines of ${node}:\n${await this.#logTail(node)}`,
        { cause: error },
      );
    }
  }

  /** Waits until the system says the cluster is formed (a system without that capability is formed once every node is ready). */
  async #waitFormed(names: readonly string[]): Promise<void> {
    const unformed = this.#system.unformed;
    if (!unformed) return;
    const deadline = performance.now() + this.#healthTimeoutMs;
    for (;;) {
      const last = await unformed(names.map((name) => this.#node(name)), 1_000);
      if (last.length === 0) return;
      if (performance.now() > deadline) throw new Error(`the ${this.#system.name} cluster did not form within ${this.#healthTimeoutMs} ms: ${last.join('; ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #logTail(node: string): Promise<string> {
    try {
      return (await this.logs(node, { tailLines: 30 })).trimEnd() || '(empty log)';
    } catch (error) {
      return `(could not read the log: ${dockerMessage(error)})`;
    }
  }
}

/**
 * Removes containers and networks of harness runs on this host whose process is gone (or whose pid now
 * belongs to another process), and returns their names. Objects of live runs, of other hosts and
 * without owner labels (docker compose) are left alone, so several harnesses can run at once.
 */
export async function removeLeftovers(options: { readonly docker?: Docker } = {}): Promise<string[]> {
  return removeOwnedBy((labels) => labels[labelKeep] !== 'true' && processGone(Number(labels[labelPid]), labels[labelPidStart] ?? ''), options.docker);
}

/**
 * Removes every container and network this process created, at once and without waiting for
 * anything else: for a second Ctrl-C, when an orderly teardown takes too long. Returns their names.
 */
export async function forceRemoveOwn(options: { readonly docker?: Docker } = {}): Promise<string[]> {
  const own = (labels: Record<string, string>) => labels[labelPid] === String(process.pid);
  if (options.docker || ownEngines.size === 0) return removeOwnedBy(own, options.docker);
  // Multi-engine clusters of this process: every engine they used, and the default engine.
  const swept = await Promise.allSettled([removeOwnedBy(own), ...[...ownEngines].map((d) => removeOwnedBy(own, d))]);
  return swept.flatMap((s) => (s.status === 'fulfilled' ? s.value : [])).sort();
}

async function removeOwnedBy(owned: (labels: Record<string, string>) => boolean, client?: Docker): Promise<string[]> {
  const docker = client ?? (await connectDocker());
  const filters = { label: [labelRun, labelPid, `${labelHost}=${os.hostname()}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const removed: string[] = [];
  // Containers first: a network cannot be removed while containers are attached to it.
  await Promise.all(
    containers
      .filter((info) => owned(info.Labels ?? {}))
      .map(async (info) => {
        try {
          await docker.getContainer(info.Id).remove({ force: true, v: true });
          removed.push(info.Names[0]?.replace(/^\//, '') ?? info.Id);
        } catch (error) {
          if (statusCode(error) !== 404) throw error;
        }
      }),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks
      .filter((info) => owned(info.Labels ?? {}))
      .map(async (info) => {
        try {
          await docker.getNetwork(info.Id).remove();
          removed.push(info.Name);
        } catch (error) {
          // 404: gone. A swarm worker cannot remove an overlay network (403); its manager does, and the worker's copy goes with it.
          if (statusCode(error) !== 404 && !(statusCode(error) === 403 && info.Driver === 'overlay')) throw error;
        }
      }),
  );
  return removed.sort();
}

function validateOptions(options: ClusterOptions): void {
  if (typeof options.runId !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(options.runId)) {
    throw new Error(`Expected \`runId\` to be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${JSON.stringify(options.runId)}`);
  }
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 26) {
    throw new Error(`Expected \`nodes\` to be an integer from 1 to 26, got ${JSON.stringify(options.nodes)}`);
  }
  if (typeof options.image !== 'string' || options.image === '') {
    throw new Error('Expected `image` to be an image tag (from ensureImage()), got ' + JSON.stringify(options.image));
  }
  for (const key of ['healthTimeoutMs'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
      throw new Error(`Expected \`${key}\` to be a non-negative integer number of milliseconds, got ${JSON.stringify(value)}`);
    }
  }
  const bug = options.options?.bug;
  if (bug !== undefined && !/^[a-zA-Z0-9_-]+$/.test(bug)) {
    throw new Error(`Expected \`bug\` to be a bug name (letters, digits, '-', '_'), got ${JSON.stringify(bug)}`);
  }
}

/** The labels that make an object this process's (removeLeftovers sweeps it once the process is gone). */
export function ownerLabels(runId: string): Record<string, string> {
  return {
    [labelRun]: runId,
    [labelPid]: String(process.pid),
    [labelPidStart]: processStartTime(process.pid) ?? '',
    [labelHost]: os.hostname(),
  };
}

/**
 * Creates the run's network and returns one fixed IP per node. Internal: the nodes reach each other and
 * the host reaches them, but nothing leaves the machine. Every node gets a fixed address, because Docker
 * hands out addresses afresh when stopped containers start again, so two killed nodes could swap
 * addresses on restart and a client bound to one node would then talk to another (seen: increments sent
 * "to n2" applied by n3). Fixed addresses need a subnet given at creation, so the network is first made
 * with Docker's own choice of subnet, then made again with that subnet stated (retried if another run
 * takes it in between).
 */
async function createNetwork(docker: Docker, networkName: string, labels: Record<string, string>, count: number): Promise<string[]> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const probe = await docker.createNetwork({ Name: networkName, Driver: 'bridge', Internal: true, CheckDuplicate: true, Labels: labels });
    const info = await probe.inspect();
    await probe.remove();
    const config = info.IPAM?.Config?.[0];
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(config?.Subnet ?? '');
    if (!config || !m || Number(m[5]) > 30 - Math.ceil(Math.log2(count + 3))) throw new Error(`Docker gave network ${networkName} the subnet ${config?.Subnet ?? '(none)'}, too small for ${count} nodes`);
    const base = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const ip = (n: number) => [24, 16, 8, 0].map((shift) => ((base + n) >>> shift) & 255).join('.');
    const gateway = config.Gateway ?? ip(1);
    try {
      await docker.createNetwork({
        Name: networkName,
        Driver: 'bridge',
        Internal: true,
        CheckDuplicate: true,
        Labels: labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: config.Subnet, Gateway: gateway }] },
      });
    } catch (error) {
      lastError = error;
      continue;
    }
    const ips: string[] = [];
    for (let n = 2; ips.length < count; n++) if (ip(n) !== gateway) ips.push(ip(n));
    return ips;
  }
  throw new Error(`could not create network ${networkName} with a fixed subnet: ${dockerMessage(lastError)}`, { cause: lastError });
}

/**
 * Several engines: the run's network is an attachable overlay (a swarm-scoped network that plain
 * containers on every engine of the swarm may join), created on the swarm manager, with one fixed
 * address per node for the same reason as createNetwork's. A swarm fills in a new network's subnet
 * asynchronously (an inspect right after the create showed none), so the subnet is picked here: a random
 * /24 in 10.200.0.0-10.255.255.0 (the swarm's default pool is 10.0.0.0/8 from 10.0.0.0 up), tried again
 * when it overlaps one in use. It is not internal: an internal overlay gets no docker_gwbridge, and the
 * published client ports reach the containers through that bridge. The nodes' addresses start at .100,
 * since the swarm gives each engine's load-balancer endpoint an address from the start of the subnet.
 */
async function createOverlay(docker: Docker, networkName: string, labels: Record<string, string>, count: number): Promise<string[]> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const prefix = `10.${200 + Math.floor(Math.random() * 56)}.${Math.floor(Math.random() * 256)}`;
    try {
      await docker.createNetwork({
        Name: networkName,
        Driver: 'overlay',
        Attachable: true,
        Internal: false,
        CheckDuplicate: true,
        Labels: labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: `${prefix}.0/24`, Gateway: `${prefix}.1` }] },
      });
    } catch (error) {
      lastError = error;
      continue;
    }
    return Array.from({ length: count }, (_, i) => `${prefix}.${100 + i}`);
  }
  throw new Error(`could not create the overlay network ${networkName} with a fixed subnet: ${dockerMessage(lastError)}`, { cause: lastError });
}

function containerSpec(
  containerName: string,
  name: string,
  names: readonly string[],
  networkName: string,
  options: ClusterOptions,
  labels: Record<string, string>,
  ip: string,
  meshSecret: string,
  hostPort?: number,
): Docker.ContainerCreateOptions {
  const port = `${options.system.port}/tcp`;
  const settings = { options: (options.options ?? {}) as Options, secret: meshSecret };
  const cmd = options.system.command(name, names, settings);
  const env = { ...(options.system.env?.(name, names, settings) ?? {}), ...(options.needs?.env ?? {}) };
  const devices = options.needs?.devices ?? [];
  return {
    name: containerName,
    Image: options.image,
    Hostname: name,
    Cmd: cmd,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: { ...labels, [labelNode]: name },
    ...(hostPort === undefined ? {} : { ExposedPorts: { [port]: {} } }),
    HostConfig: {
      // Several engines: the client port published on the engine's host (see the module comment).
      ...(hostPort === undefined ? {} : { PortBindings: { [port]: [{ HostPort: String(hostPort) }] } }),
      CapAdd: ['NET_ADMIN', ...(options.needs?.capAdd ?? [])],
      // Only for fault packages that need one (the disk layer: /dev/fuse).
      ...(devices.length > 0 ? { Devices: devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' })) } : {}),
      // Docker's init (tini) as PID 1: forwards SIGTERM to the service, reaps, and dies on SIGKILL.
      Init: true,
      NetworkMode: networkName,
      // Docker's embedded DNS answers the peers' names (A and AAAA) itself and forwards any other query
      // to these servers. Loopback inside the container refuses at once, so no query leaves the machine
      // and none is left pending in the daemon: with the host's resolver, a pending forward held up
      // every `docker kill` by about 3 s. Other names simply do not resolve, which nothing needs.
      Dns: ['127.0.0.1'],
      RestartPolicy: { Name: 'no' },
    },
    NetworkingConfig: { EndpointsConfig: { [networkName]: { Aliases: [name], IPAMConfig: { IPv4Address: ip } } } },
  };
}

function emptyReport(): NodeBackReport {
  return { reapplied: {}, errors: [] };
}

/** Two reports of one node coming back (restarted, then healthy): each listener's values merged. */
function mergeReports(a: NodeBackReport, b: NodeBackReport): NodeBackReport {
  const reapplied: Record<string, NodeBackReport['reapplied'][string]> = { ...a.reapplied };
  for (const [name, value] of Object.entries(b.reapplied)) reapplied[name] = { ...reapplied[name], ...value };
  return { reapplied, errors: [...a.errors, ...b.errors] };
}

// Demultiplexes a non-TTY `docker logs` buffer: frames of an 8-byte header (stream, 0, 0, 0, size
// big-endian) followed by the payload.
function demuxBuffer(raw: Buffer | string): string {
  if (typeof raw === 'string') return raw;
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The start time of a process (clock ticks since boot, field 22 of /proc/<pid>/stat), or undefined off Linux. */
function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses; the fields after the last ')' are fixed.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function processGone(pid: number, startTime: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // a label we do not understand: leave it alone
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // EPERM: the process exists but belongs to another user; it is alive.
  }
  // The pid is alive; it is still the owner only if it started at the same time (pids get reused).
  const current = processStartTime(pid);
  return startTime !== '' && current !== undefined && current !== startTime;
}

async function pollUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (let delayMs = 10; ; delayMs = Math.min(delayMs * 2, 200)) {
    if (await condition()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

// dockerode errors carry the engine's JSON reason in `json.message`; prefer it over the generic text.
function dockerMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } } | undefined)?.json;
  return json?.message ?? errorText(error);
}
