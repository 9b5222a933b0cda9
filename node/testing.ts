// Support for the cluster tests and the benchmark: starts real node processes (`node node/main.ts`) on
// loopback with free ports and temp data dirs, waits until they answer Health, and offers a promise
// client for the Store API. Nothing here is a mock; these are the same processes the containers run.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { SERVICE_NODE_FLAGS } from './config.ts';
import { meshMetadata } from './mesh-auth.ts';
import { MeshClient, MeshWrite, StoreClient, type DigestReply, type DigestRequest, type RelayAck, type RepairReply, type RepairRequest, type StatsReply, type HealthReply, type GetReply, type PutReply, type IncrReply, type DeleteReply, type Entity, type WatchEvent } from '../proto/gen/faultline.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface NodeSpec {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  /** id → port of the other nodes. */
  readonly peers: Readonly<Record<string, number>>;
  readonly bug?: string;
  readonly antiEntropyMs?: number;
  readonly extraArgs?: readonly string[];
  /** The cluster's mesh secret, passed in FAULTLINE_MESH_SECRET (required by a node with peers). */
  readonly meshSecret?: string;
  /** Extra environment variables for the node process. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A fresh mesh secret, as the harness makes one per run. */
export function newMeshSecret(): string {
  return randomBytes(32).toString('hex');
}

export class NodeProcess {
  readonly spec: NodeSpec;
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(spec: NodeSpec) {
    this.spec = spec;
    const peers = Object.entries(spec.peers).map(([id, port]) => `${id}=127.0.0.1:${port}`).join(',');
    const args = [...SERVICE_NODE_FLAGS, MAIN, '--id', spec.id, '--listen', `127.0.0.1:${spec.port}`, '--peers', peers, '--data-dir', spec.dataDir];
    if (spec.antiEntropyMs !== undefined) args.push('--anti-entropy-ms', String(spec.antiEntropyMs));
    if (spec.bug) args.push('--bug', spec.bug);
    args.push(...(spec.extraArgs ?? []));
    const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env };
    delete env.FAULTLINE_MESH_SECRET;
    if (spec.meshSecret !== undefined) env.FAULTLINE_MESH_SECRET = spec.meshSecret;
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }
}

/** Starts a node process and waits until it answers Health (or fails with its output). */
export async function startNode(spec: NodeSpec, timeoutMs = 20_000): Promise<NodeProcess> {
  const proc = new NodeProcess(spec);
  const client = new StoreApi(spec.port);
  const began = performance.now();
  try {
    for (;;) {
      if (!proc.alive) throw new Error(`node ${spec.id} exited with ${proc.child.exitCode} before it was healthy:\n${proc.output}`);
      try {
        await client.health(500);
        return proc;
      } catch {
        if (performance.now() - began > timeoutMs) throw new Error(`node ${spec.id} not healthy after ${timeoutMs} ms:\n${proc.output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (error) {
    await proc.kill();
    throw error;
  } finally {
    client.close();
  }
}

/**
 * Waits until every node's mesh has a ready connection to each of its peers (Health.peers_connected),
 * so a test's first write is relayed to every peer instead of racing the connections being set up.
 */
export async function waitForMesh(specs: readonly NodeSpec[], timeoutMs = 20_000): Promise<void> {
  const apis = specs.map((s) => new StoreApi(s.port));
  try {
    let last = '';
    const ready = await waitUntil(async () => {
      const replies = await Promise.all(apis.map((api) => api.health(1000).catch(() => undefined)));
      last = replies.map((r, i) => `${specs[i].id}: ${r ? `[${r.peersConnected.join(',')}]` : 'no answer'}`).join('; ');
      return replies.every((r, i) => r !== undefined && r.peersConnected.length === Object.keys(specs[i].peers).length);
    }, timeoutMs, 25);
    if (!ready) throw new Error(`the mesh did not connect within ${timeoutMs} ms; peers connected: ${last}`);
  } finally {
    for (const api of apis) api.close();
  }
}

export interface ClusterOptions {
  readonly size: number;
  readonly bug?: string;
  readonly antiEntropyMs?: number;
}

/** A set of node specs with free ports and fresh temp data dirs (n1..nN, full mesh). */
export async function clusterSpecs(options: ClusterOptions): Promise<NodeSpec[]> {
  const ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
  const ports = await Promise.all(ids.map(() => freePort()));
  const meshSecret = newMeshSecret();
  return ids.map((id, i) => ({
    id,
    port: ports[i],
    dataDir: mkdtempSync(join(tmpdir(), `faultline-${id}-`)),
    peers: Object.fromEntries(ids.map((other, j) => [other, ports[j]]).filter(([other]) => other !== id)),
    bug: options.bug,
    antiEntropyMs: options.antiEntropyMs,
    meshSecret,
  }));
}

export function removeDataDirs(specs: readonly NodeSpec[]): void {
  for (const s of specs) rmSync(s.dataDir, { recursive: true, force: true });
}

/** A promise-based Store client on 127.0.0.1:port. */
/** What a test started (nodes, clients, data dirs), released together after each test: kill -9, close, remove. */
export class TestResources {
  readonly procs: NodeProcess[] = [];
  readonly closers: { close(): void }[] = [];
  readonly specs: NodeSpec[] = [];

  async release(): Promise<void> {
    for (const c of this.closers.splice(0)) c.close();
    await Promise.all(this.procs.splice(0).map((p) => p.kill('SIGKILL')));
    removeDataDirs(this.specs.splice(0));
  }
}

export class StoreApi {
  readonly client: StoreClient;
  /** Deadline of every unary call, ms; 0: none (the benchmark saves the per-call timer). */
  private readonly timeoutMs: number;

  constructor(port: number, timeoutMs = 10_000) {
    this.timeoutMs = timeoutMs;
    this.client = new StoreClient(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.max_receive_message_length': 256 * 1024 * 1024, 'grpc.enable_channelz': 0 });
  }

  private unary<T>(method: string, request: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (error: ServiceError | null, reply: T) => (error ? reject(error) : resolve(reply));
      if (timeoutMs > 0) (this.client as any)[method](request, { deadline: Date.now() + timeoutMs }, done);
      else (this.client as any)[method](request, done);
    });
  }

  put(entity: string, component: string, value: string, requestId = '', kind = ''): Promise<PutReply> {
    return this.unary('put', { entity, component, value, requestId, kind });
  }
  incr(entity: string, counter: string, delta: number, requestId = ''): Promise<IncrReply> {
    return this.unary('incr', { entity, counter, delta, requestId });
  }
  delete(entity: string, component: string, requestId = ''): Promise<DeleteReply> {
    return this.unary('delete', { entity, component, requestId });
  }
  get(entity: string): Promise<GetReply> {
    return this.unary('get', { entity });
  }
  health(timeoutMs = 5000): Promise<HealthReply> {
    return this.unary('health', {}, timeoutMs);
  }
  stats(): Promise<StatsReply> {
    return this.unary('stats', {});
  }
  scan(): Promise<Entity[]> {
    return new Promise((resolve, reject) => {
      const out: Entity[] = [];
      const call = this.client.scan({});
      call.on('data', (e: Entity) => out.push(e));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
  }
  /** Opens a Watch stream; returns a function that cancels it. */
  watch(prefix: string, onEvent: (e: WatchEvent) => void, buffer = 0): () => void {
    const call = this.client.watch({ entityPrefix: prefix, buffer });
    call.on('data', onEvent);
    call.on('error', () => {});
    return () => call.cancel();
  }
  close(): void {
    this.client.close();
  }
}

/**
 * Speaks the Mesh service to a node as peer `sender`, as a real peer would: with the metadata that
 * proves membership when given the cluster's secret, or none (secret undefined) to act as an outsider.
 */
export class MeshPeer {
  readonly client: MeshClient;
  readonly sender: string;
  /** The relay stream this peer's writes name (a real node draws one at every start). */
  incarnation = 'test-peer';
  private readonly secret: string | undefined;

  constructor(port: number, sender: string, secret: string | undefined) {
    this.sender = sender;
    this.secret = secret;
    this.client = new MeshClient(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.max_send_message_length': 256 * 1024 * 1024 });
  }

  private metadata(): Metadata {
    return this.secret === undefined ? new Metadata() : meshMetadata(this.secret, this.sender);
  }

  /** Streams batches (each a list of partial writes) on one Relay call; `sender` names each batch unless given. */
  relay(batches: readonly (readonly Partial<MeshWrite>[])[], sender = this.sender): Promise<RelayAck> {
    return new Promise<RelayAck>((resolve, reject) => {
      const call = this.client.relay(this.metadata(), (e, r) => (e ? reject(e) : resolve(r)));
      // A real peer's relayed writes name its relay stream (MeshWrite.incarnation).
      for (const writes of batches) call.write({ sender, writes: writes.map((w) => MeshWrite.fromPartial({ incarnation: this.incarnation, ...w })) });
      call.end();
    });
  }

  digest(request: Partial<DigestRequest> = {}): Promise<DigestReply> {
    return new Promise((resolve, reject) =>
      this.client.digest({ sender: this.sender, buckets: 64, ...request }, this.metadata(), (e, r) => (e ? reject(e) : resolve(r))),
    );
  }

  repair(request: Partial<Omit<RepairRequest, 'writes'>> & { writes?: readonly Partial<MeshWrite>[] } = {}): Promise<RepairReply> {
    const full = { sender: this.sender, buckets: [], bucketCount: 64, ...request, writes: (request.writes ?? []).map((w) => MeshWrite.fromPartial(w)) };
    return new Promise((resolve, reject) => this.client.repair(full, this.metadata(), (e, r) => (e ? reject(e) : resolve(r))));
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A real TCP proxy in front of a node's port, used to make peers unreachable without iptables: while
 * blocked it destroys every connection, so the peers see exactly what a partition that resets
 * connections looks like.
 */
export class TcpProxy {
  readonly targetPort: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  port = 0;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
  }

  async start(port: number): Promise<void> {
    this.port = port;
    this.server = createServer((inbound) => {
      if (this.blocked) {
        inbound.destroy();
        return;
      }
      const outbound = connect(this.targetPort, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
  }

  block(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  unblock(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.block();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Polls check() every intervalMs until it returns true or timeoutMs passes; returns the last result. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 20_000, intervalMs = 100): Promise<boolean> {
  const began = performance.now();
  for (;;) {
    if (await check()) return true;
    if (performance.now() - began > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
