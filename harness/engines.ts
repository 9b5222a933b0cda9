// Several Docker engines under one cluster (`--engines`): parsing engine addresses (unix://, tcp://,
// ssh://, as dockerode's modem reads DOCKER_HOST), placing nodes on them, bringing the node image to each
// engine without a registry (docker save | docker load through the engine API, keyed by the image's
// content-hash tag), the swarm the engines must share for the overlay network, each engine's host clock
// against the harness's (Jepsen's check-offsets), and the preflight that says what an engine lacks.
//
// The nodes of a multi-engine cluster talk over one attachable overlay network of Docker's swarm mode;
// swarm is used for that network only, never for services. The harness's clients reach each node on its
// client port published on its engine's host (harness/cluster.ts), so client traffic enters the container
// through docker_gwbridge from a non-peer address and no partition rule (which matches peer overlay
// addresses) ever cuts a client.
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { errorText, imageExists } from './image.ts';
import type { EngineSpec } from './engine-spec.ts';

export { parseEngine, parseEngineList, placeNodes, placementRecord, type EngineSpec } from './engine-spec.ts';

/** An engine of the run: its spec, its name in the run (e1, e2, ...) and a client. */
export interface Engine extends EngineSpec {
  /** e1..eN in the order given. */
  readonly name: string;
  readonly docker: Docker;
}

/** An engine's host clock against the harness's, measured through `docker info` (SystemTime). */
export interface ClockOffset {
  /** The engine's wall clock minus the harness's at the midpoint of the call, in ms (best of several samples). */
  readonly offsetMs: number;
  /** Round-trip time of the sample used: the offset is uncertain by at most half of it. */
  readonly rttMs: number;
}

/** What results.json records per engine (`engines`), and the report shows. */
export interface EngineRecord {
  readonly name: string;
  readonly url: string;
  readonly version?: string;
  /** The nodes placed on it. */
  readonly nodes: readonly string[];
  readonly clockStart?: ClockOffset;
  readonly clockEnd?: ClockOffset;
  /** Why a clock could not be measured. */
  readonly clockError?: string;
}

/** Makes a client per engine and pings each; the error names every engine that did not answer. */
export async function connectEngines(specs: readonly EngineSpec[], options: { readonly timeoutMs?: number } = {}): Promise<Engine[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const engines = specs.map((spec, i): Engine => ({ ...spec, name: `e${i + 1}`, docker: new Docker(spec.dockerOptions) }));
  const pings = await Promise.allSettled(engines.map((e) => withTimeout(e.docker.ping(), timeoutMs, `no answer within ${timeoutMs} ms`)));
  const failed = pings.flatMap((p, i) => (p.status === 'rejected' ? [`${engines[i].name} ${engines[i].url}: ${errorText(p.reason)}`] : []));
  if (failed.length > 0) {
    throw new Error(`${failed.length} of ${engines.length} Docker engines are not reachable:\n${failed.join('\n')}\nCheck them with: npm run setup -- --engines ${specs.map((s) => s.url).join(',')}`);
  }
  return engines;
}

/**
 * The engine's wall clock against the harness's: `docker info` carries the daemon's SystemTime with
 * nanoseconds. Of `samples` readings the one with the shortest round trip is kept, as NTP does.
 */
export async function measureClockOffset(docker: Docker, samples = 5): Promise<ClockOffset> {
  let best: ClockOffset | undefined;
  for (let i = 0; i < samples; i++) {
    const before = Date.now();
    const info = (await docker.info()) as { SystemTime?: string };
    const after = Date.now();
    const engineMs = parseSystemTime(info.SystemTime);
    const sample = { offsetMs: Math.round((engineMs - (before + after) / 2) * 10) / 10, rttMs: after - before };
    if (!best || sample.rttMs < best.rttMs) best = sample;
  }
  return best!;
}

/** RFC 3339 with up to nanoseconds ("2026-12-02T13:52:01.318125025Z" or "+01:00") → ms with the fraction kept. */
export function parseSystemTime(text: string | undefined): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text ?? '');
  if (!m) throw new Error(`Expected the engine's SystemTime in RFC 3339, got ${JSON.stringify(text)}`);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const fraction = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + fraction;
}

/** Measures every engine's clock offset; an engine whose clock cannot be read gets `error`, never a throw. */
export async function measureClockOffsets(engines: readonly Engine[]): Promise<(ClockOffset | { readonly error: string })[]> {
  return Promise.all(engines.map((e) => measureClockOffset(e.docker).catch((error: unknown) => ({ error: `${e.name}: ${errorText(error)}` }))));
}

/**
 * Makes sure every engine has the image `tag`, copying it from `source` where it is missing: the
 * source's `docker save` stream goes straight into the engine's `docker load`, in parallel for all
 * engines that lack it. The tag is a content hash (harness/image.ts), so an engine that has it has
 * exactly this image. Returns the names of the engines it was copied to.
 */
export async function distributeImage(source: Docker, tag: string, engines: readonly Engine[], progress: (line: string) => void = () => {}): Promise<string[]> {
  const missing: Engine[] = [];
  for (const engine of engines) if (!(await imageExists(engine.docker, tag))) missing.push(engine);
  if (missing.length === 0) return [];
  const started = performance.now();
  progress(`copying ${tag} to ${missing.map((e) => e.name).join(', ')} (docker save | docker load)`);
  await Promise.all(
    missing.map(async (engine) => {
      try {
        const saved = (await source.getImage(tag).get()) as NodeJS.ReadableStream;
        const through = new PassThrough();
        saved.pipe(through);
        saved.on('error', (error) => through.destroy(error as Error));
        const loading = (await engine.docker.loadImage(through, { quiet: true })) as NodeJS.ReadableStream;
        // The load answers with a JSON stream; its end is when the image is in place, an `error` field a failure.
        const text = await readAll(loading);
        const failed = /"error"\s*:\s*"([^"]*)"/.exec(text);
        if (failed) throw new Error(failed[1]);
      } catch (error) {
        throw new Error(`copying ${tag} to ${engine.name} (${engine.url}) failed: ${errorText(error)}`, { cause: error });
      }
      if (!(await imageExists(engine.docker, tag))) throw new Error(`copying ${tag} to ${engine.name} (${engine.url}) reported success, but the image is not there`);
    }),
  );
  progress(`copied ${tag} to ${missing.length} engine(s) in ${Math.round(performance.now() - started)} ms`);
  return missing.map((e) => e.name);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** An engine's place in the swarm, from `docker info`. */
export interface SwarmMembership {
  readonly state: string;
  readonly nodeId: string;
  readonly manager: boolean;
  /** The swarm's id; only a manager knows it. */
  readonly clusterId?: string;
  /** The address others reach it on (NodeAddr). */
  readonly address?: string;
}

export async function swarmMembership(docker: Docker): Promise<SwarmMembership> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; NodeID?: string; ControlAvailable?: boolean; NodeAddr?: string; Cluster?: { ID?: string } } };
  const s = info.Swarm ?? {};
  return { state: s.LocalNodeState ?? 'inactive', nodeId: s.NodeID ?? '', manager: s.ControlAvailable === true, clusterId: s.Cluster?.ID, address: s.NodeAddr };
}

/**
 * Checks that every engine is an active member of one swarm and returns the first manager among them
 * (the overlay network is created there). The error says what to run for each engine that is not.
 */
export async function swarmManager(engines: readonly Engine[]): Promise<Engine> {
  const members = await Promise.all(engines.map((e) => swarmMembership(e.docker)));
  const inactive = engines.filter((_, i) => members[i].state !== 'active');
  if (inactive.length > 0) {
    throw new Error(
      `The overlay network needs every engine in one Docker swarm, and ${inactive.map((e) => `${e.name} (${e.url}) is ${members[engines.indexOf(e)].state}`).join(', ')}. ` +
        `Join them with: npm run setup -- --engines ${engines.map((e) => e.url).join(',')} --join-swarm`,
    );
  }
  const managerIndex = members.findIndex((m) => m.manager);
  if (managerIndex < 0) throw new Error(`None of the engines ${engines.map((e) => e.name).join(', ')} is a swarm manager; the overlay network is created on a manager, so list one (docker swarm init, or docker node promote)`);
  const manager = engines[managerIndex];
  // A manager lists the swarm's nodes: every engine must be one of them, not a member of another swarm.
  const swarmNodes = new Set((await manager.docker.listNodes()).map((n) => (n as { ID: string }).ID));
  const strangers = engines.filter((_, i) => !swarmNodes.has(members[i].nodeId));
  if (strangers.length > 0) throw new Error(`${strangers.map((e) => `${e.name} (${e.url})`).join(', ')} belong to another swarm than the manager ${manager.name}; make them leave it (docker swarm leave) and join ${manager.name}'s`);
  return manager;
}

/**
 * Joins the engines into one swarm: the first engine inits one (advertising `advertiseAddrs[0]`)
 * unless it already manages one, every other inactive engine joins it as a worker. Engines already in
 * the swarm are left as they are. `advertiseAddrs[i]` is the address engine i is reached on by the others.
 */
export async function joinSwarm(engines: readonly Engine[], advertiseAddrs: readonly (string | undefined)[], progress: (line: string) => void = () => {}): Promise<void> {
  const first = engines[0];
  let membership = await swarmMembership(first.docker);
  if (membership.state !== 'active') {
    const addr = advertiseAddrs[0] ?? first.host;
    progress(`${first.name}: docker swarm init --advertise-addr ${addr}`);
    await first.docker.swarmInit({ ListenAddr: '0.0.0.0:2377', AdvertiseAddr: addr });
    membership = await swarmMembership(first.docker);
  }
  if (!membership.manager) throw new Error(`${first.name} (${first.url}) is a swarm worker; the first engine must be a manager to let the others join`);
  const swarm = (await first.docker.swarmInspect()) as { JoinTokens: { Worker: string } };
  const managerAddr = `${membership.address ?? advertiseAddrs[0] ?? first.host}:2377`;
  for (const [i, engine] of engines.entries()) {
    if (i === 0) continue;
    const m = await swarmMembership(engine.docker);
    if (m.state === 'active') continue;
    const addr = advertiseAddrs[i] ?? engine.host;
    progress(`${engine.name}: docker swarm join ${managerAddr} --advertise-addr ${addr}`);
    await engine.docker.swarmJoin({ ListenAddr: '0.0.0.0:2377', AdvertiseAddr: addr, RemoteAddrs: [managerAddr], JoinToken: swarm.JoinTokens.Worker });
  }
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
