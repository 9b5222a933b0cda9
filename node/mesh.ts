// The mesh: how writes travel between nodes. Peers form a full mesh, so each node relays its own
// durable writes straight to every peer and never forwards others' writes.
//
// Relay: per peer, a bounded queue, flushed every FLUSH_MS or when a batch is full, onto a
// client-streaming Relay call that is rotated every ROTATE_MS. When the peer is not connected, its
// queue is full, its stream is backed up, or the token bucket is empty, the batch is DROPPED and
// counted rather than retried: anti-entropy repairs whatever relays lost, which is what keeps memory
// bounded during a partition.
//
// Receiving: writes whose origin is this node, or whose (origin, seq) was already seen, are dropped as
// echoes (counted). The planted bug `echo-relay` turns that off and re-forwards every received write to
// every peer, the origin included, so that a write crosses up to MAX_ECHO_HOPS network hops (the origin's
// send plus two re-forwards): 2 + 4 + 8 = 14 messages per write on 3 nodes, 4 + 16 + 64 = 84 on 5.
//
// Anti-entropy: every --anti-entropy-ms, for each peer: Digest (hashes of the peer's state in
// DIGEST_BUCKETS buckets), compare with ours, then Repair the differing buckets in chunks — the request
// pushes our entries of those buckets and the reply carries the peer's, both merged with the same pure
// merge, so one round repairs both sides. The planted bug `no-anti-entropy` never starts the loop.
import { randomBytes } from 'node:crypto';
import { credentials, status, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { MeshAuth } from './mesh-auth.ts';
import { MeshClient, type MeshWrite, type RelayBatch, type RepairReply, type DigestReply } from '../proto/gen/faultline.ts';
import { TokenBucket } from './token-bucket.ts';
import { parseHlc } from './hlc.ts';
import { RpcError, meshWriteToKey, quote } from './validate.ts';
import { MESH_BATCH_BYTES } from './limits.ts';
import type { KeyWrite } from './replica.ts';
import type { Peer } from './config.ts';
import type { LocalWrite, StoreNode } from './node.ts';

export const FLUSH_MS = 2;
export const BATCH_MAX = 256;
export const QUEUE_MAX = 20_000;
export const ROTATE_MS = 1000;
/**
 * Buckets per digest. Many small buckets keep each repair small: under continuous writes some buckets
 * always differ for a moment because of relays in flight, and a repair resends whole buckets.
 */
export const DIGEST_BUCKETS = 1024;
/** A Repair call carries at most this many buckets or (about) this many writes each way. */
export const REPAIR_CHUNK_BUCKETS = 128;
export const REPAIR_CHUNK_WRITES = 4000;
/** Network hops a write may cross under the planted bug `echo-relay` (hops counts re-forwards so far). */
export const MAX_ECHO_HOPS = 3;
const DIGEST_TIMEOUT_MS = 2000;
const REPAIR_TIMEOUT_MS = 10_000;

/**
 * Largest message a node sends, and accepts in a repair reply from the peer it asked: a reply carries
 * whole buckets of the peer's state. What a node accepts as a request is far smaller (limits.ts), so
 * relay batches and repair pushes are cut to MESH_BATCH_BYTES (estimated by meshWriteBytes).
 */
export const MESH_MESSAGE_BYTES = 256 * 1024 * 1024;

/** Estimated encoded size of a mesh write: its strings' UTF-8 bytes plus a bound on tags and numbers. */
export function meshWriteBytes(w: MeshWrite): number {
  const utf8 = (text: string) => (text.length < 256 ? text.length * 3 : Buffer.byteLength(text, 'utf8'));
  return 96 + utf8(w.origin) + utf8(w.entity) + utf8(w.component) + utf8(w.value) + utf8(w.kind) + utf8(w.counter) + (w.ts ? utf8(w.ts.node) : 0) + (w.share ? utf8(w.share.origin) : 0);
}

export const MESH_CHANNEL_OPTIONS = {
  // Pings every second, dead after one more: a partition (iptables DROP) tears the connection down within
  // about 2 s, and whatever relays sat in its buffers are lost with it, as in a real partition. Without
  // this, TCP would hold them and deliver them after a short partition heals.
  'grpc.keepalive_time_ms': 1000,
  'grpc.keepalive_timeout_ms': 1000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.max_receive_message_length': MESH_MESSAGE_BYTES,
  'grpc.max_send_message_length': MESH_MESSAGE_BYTES,
  // Peers resolve by DNS name (n2) in containers and may come up in any order; resolve again soon.
  'grpc.dns_min_time_between_resolutions_ms': 500,
  'grpc.enable_channelz': 0,
};

// grpc-js connectivity states (the enum is not re-exported with types we can import as values here).
const READY = 2;

/**
 * Runs a unary call with a timeout on the monotonic clock (Node timers), cancelling the call when it
 * fires. gRPC deadlines are wall-clock instants, which a libfaketime jump would make meaningless.
 */
function withTimeout<T>(timeoutMs: number, what: string, start: (done: (error: ServiceError | null, reply: T) => void) => ClientUnaryCall): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      call.cancel();
      reject(new Error(`${what} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const call = start((error, reply) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(reply);
    });
  });
}

export function keyToMeshWrite(w: KeyWrite, origin: string, seq: number, incarnation = '', hops = 0): MeshWrite {
  if ('state' in w) {
    const ts = parseHlc(w.state.ts)!;
    return { origin, seq, entity: w.entity, component: w.component, value: w.state.value, kind: w.state.kind, ts, deleted: w.state.deleted, counter: '', share: undefined, hops, incarnation };
  }
  return { origin, seq, entity: w.entity, component: '', value: '', kind: '', ts: undefined, deleted: false, counter: w.counter, share: { origin: w.origin, p: w.share.p, n: w.share.n }, hops, incarnation };
}

/**
 * Which relayed writes were seen, by (origin, incarnation, seq). The incarnation is a random id each
 * node process draws when it starts (Mesh.incarnation), so a node that lost its log and counts its
 * sequences from 1 again is a new stream, not a repeat of the old one. Per stream: everything at or
 * below `floor` plus a set above it; sequences of one stream arrive mostly in order, so the set stays
 * small; it is pruned to the newest WINDOW. Only the origin itself can relay its writes (the mesh
 * checks origin = sender), so no sender can push another's window; and each origin keeps at most
 * STREAMS_PER_ORIGIN streams (least recently used first out), so inventing incarnations costs nothing.
 */
export class SeenWindow {
  static readonly WINDOW = 100_000;
  static readonly STREAMS_PER_ORIGIN = 4;
  private readonly origins = new Map<string, Map<string, { floor: number; max: number; seen: Set<number> }>>();

  /** Records (origin, incarnation, seq); returns false if it was already seen. */
  add(origin: string, incarnation: string, seq: number): boolean {
    let streams = this.origins.get(origin);
    if (!streams) {
      streams = new Map();
      this.origins.set(origin, streams);
    }
    let o = streams.get(incarnation);
    if (!o) {
      o = { floor: -1, max: -1, seen: new Set() };
      if (streams.size >= SeenWindow.STREAMS_PER_ORIGIN) streams.delete(streams.keys().next().value!);
    } else {
      streams.delete(incarnation);
    }
    // Re-inserted, so the map's order is least recently used first.
    streams.set(incarnation, o);
    if (seq <= o.floor || o.seen.has(seq)) return false;
    o.seen.add(seq);
    if (seq > o.max) o.max = seq;
    if (o.seen.size > 2 * SeenWindow.WINDOW) {
      o.floor = o.max - SeenWindow.WINDOW;
      for (const s of o.seen) if (s <= o.floor) o.seen.delete(s);
    }
    return true;
  }
}

class PeerLink {
  readonly peer: Peer;
  private readonly mesh: Mesh;
  readonly client: MeshClient;
  private queue: MeshWrite[] = [];
  /** meshWriteBytes of each queued write, in step with queue. */
  private sizes: number[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private call: ReturnType<MeshClient['relay']> | undefined;
  private callOpenedMs = 0;
  private backedUp = false;
  aeBusy = false;

  constructor(mesh: Mesh, peer: Peer) {
    this.mesh = mesh;
    this.peer = peer;
    const host = peer.host.includes(':') ? `[${peer.host}]` : peer.host;
    this.client = new MeshClient(`${host}:${peer.port}`, credentials.createInsecure(), MESH_CHANNEL_OPTIONS);
    // Connect eagerly so the first relays are not dropped merely because nobody asked for a connection yet.
    this.client.getChannel().getConnectivityState(true);
  }

  enqueue(w: MeshWrite, bytes = meshWriteBytes(w)): void {
    const stats = this.mesh.node.stats;
    if (this.queue.length >= QUEUE_MAX) {
      stats.relaysDropped += 1;
      return;
    }
    this.queue.push(w);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    if (this.queue.length >= BATCH_MAX || this.queuedBytes >= MESH_BATCH_BYTES) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Sends everything queued, in batches of at most BATCH_MAX writes and MESH_BATCH_BYTES (a bigger write goes alone). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    let start = 0;
    while (start < this.queue.length) {
      let end = start;
      let bytes = 0;
      while (end < this.queue.length && end - start < BATCH_MAX && (end === start || bytes + this.sizes[end] <= MESH_BATCH_BYTES)) bytes += this.sizes[end++];
      this.send(this.queue.slice(start, end));
      start = end;
    }
    this.queue = [];
    this.sizes = [];
    this.queuedBytes = 0;
  }

  private send(writes: MeshWrite[]): void {
    const node = this.mesh.node;
    const stats = node.stats;
    // An unconnected channel would buffer the call in memory until it fails; drop instead (and let
    // getConnectivityState(true) start connecting, so relays resume as soon as the peer is back).
    if (this.client.getChannel().getConnectivityState(true) !== READY) {
      stats.relaysDropped += writes.length;
      node.log.throttled(`relay-drop-${this.peer.id}`, 5000, 'warn', `relay to ${this.peer.id} dropped ${writes.length} writes: peer not connected (anti-entropy will repair)`);
      return;
    }
    // stream() may rotate to a fresh call, which also clears a backed-up state left by the old one.
    const call = this.stream();
    if (this.backedUp) {
      stats.relaysDropped += writes.length;
      node.log.throttled(`relay-backlog-${this.peer.id}`, 5000, 'warn', `relay to ${this.peer.id} dropped ${writes.length} writes: its stream is backed up (anti-entropy will repair)`);
      return;
    }
    if (!this.mesh.bucket.tryTake(writes.length)) {
      stats.meshThrottled += writes.length;
      node.log.throttled('mesh-throttled', 5000, 'warn', `mesh budget of ${node.config.meshBudgetPerS} writes/s exhausted: relay dropped (anti-entropy will repair)`);
      return;
    }
    const batch: RelayBatch = { sender: node.config.id, writes };
    const ok = call.write(batch);
    stats.relaysSent += writes.length;
    stats.meshMessages += writes.length;
    if (!ok) {
      this.backedUp = true;
      call.once('drain', () => {
        if (this.call === call) this.backedUp = false;
      });
    }
  }

  private stream(): NonNullable<PeerLink['call']> {
    const now = performance.now();
    if (this.call && now - this.callOpenedMs < ROTATE_MS) return this.call;
    this.call?.end();
    this.backedUp = false;
    this.callOpenedMs = now;
    // No gRPC deadline: those are wall-clock based and libfaketime jumps the wall clock. The stream is
    // rotated every ROTATE_MS, and keepalive pings fail it when the connection dies.
    const call = this.client.relay(this.mesh.auth.outgoing(), (error: ServiceError | null) => {
      if (this.call === call) this.call = undefined;
      if (error && error.code !== status.CANCELLED) {
        this.mesh.node.log.throttled(`relay-error-${this.peer.id}`, 5000, 'warn', `relay stream to ${this.peer.id} failed: ${error.code} ${error.details}`);
      }
    });
    this.call = call;
    // End the stream after ROTATE_MS even when no further write comes to rotate it, so no relay stream
    // sits idle on a peer (which ends streams idle for limits.ts STREAM_IDLE_MS).
    setTimeout(() => {
      if (this.call !== call) return;
      this.call = undefined;
      call.end();
    }, ROTATE_MS).unref();
    return call;
  }

  close(): void {
    this.flush();
    this.call?.end();
    this.client.close();
  }
}

export class Mesh {
  readonly node: StoreNode;
  readonly auth: MeshAuth;
  /** This process's relay identity (see SeenWindow): new at every start, so it survives losing the log. */
  readonly incarnation = randomBytes(8).toString('hex');
  readonly bucket: TokenBucket;
  readonly seen = new SeenWindow();
  private readonly links: PeerLink[];
  private aeTimer: NodeJS.Timeout | undefined;

  constructor(node: StoreNode) {
    this.node = node;
    this.auth = new MeshAuth(node.config.id, node.config.peers.map((p) => p.id), node.config.meshSecret);
    this.bucket = new TokenBucket({ ratePerS: node.config.meshBudgetPerS, burst: node.config.meshBudgetPerS });
    this.links = node.config.peers.map((p) => new PeerLink(this, p));
    node.onLocalWrite = (w) => this.relayLocal(w);
    node.connectedPeers = () => this.connectedPeers();
  }

  /** Ids of the peers with a ready connection now (getConnectivityState(true) also starts connecting to the others). */
  connectedPeers(): string[] {
    return this.links.filter((l) => l.client.getChannel().getConnectivityState(true) === READY).map((l) => l.peer.id);
  }

  /** This node or one of its peers: the only nodes whose writes and counter shares exist in this cluster. */
  isMember(id: string): boolean {
    return id === this.node.config.id || this.links.some((l) => l.peer.id === id);
  }

  start(): void {
    if (this.node.bug('no-anti-entropy')) {
      this.node.log.warn('planted bug no-anti-entropy: anti-entropy is disabled');
      return;
    }
    this.aeTimer = setInterval(() => this.antiEntropyRound(), this.node.config.antiEntropyMs);
  }

  private relayLocal(w: LocalWrite): void {
    // The planted bug no-relay leaves replication to anti-entropy alone.
    if (this.links.length === 0 || this.node.bug('no-relay')) return;
    const msg = keyToMeshWrite(w.write, this.node.config.id, w.seq, this.incarnation);
    const bytes = meshWriteBytes(msg);
    for (const link of this.links) link.enqueue(msg, bytes);
  }

  /**
   * Handles relayed writes (already validated) from the authenticated `sender`; returns how many were
   * applied. The mesh is a full mesh and nobody forwards, so a relayed write is always the sender's own:
   * its origin, its timestamp's node and its counter share's origin must all be the sender, or the
   * batch is refused (PERMISSION_DENIED) and nothing of it is applied. Only the planted bug
   * `echo-relay` forwards others' writes, so it skips this check.
   */
  receiveRelay(sender: string, writes: readonly MeshWrite[], keys: readonly KeyWrite[]): number {
    const node = this.node;
    const echoBug = node.bug('echo-relay');
    writes.forEach((w, i) => {
      if (w.seq < 1 || w.incarnation === '' || w.incarnation.length > 64) {
        throw new RpcError(status.INVALID_ARGUMENT, `writes[${i}] needs a seq of at least 1 and an incarnation of 1-64 characters (the sender's relay stream), got seq ${w.seq} and incarnation ${quote(w.incarnation)}`);
      }
    });
    if (!echoBug) {
      writes.forEach((w, i) => {
        const owner = w.share ? w.share.origin : w.ts?.node;
        if (w.origin !== sender || owner !== sender) {
          node.stats.meshRejected += 1;
          throw new RpcError(
            status.PERMISSION_DENIED,
            `writes[${i}] has origin ${quote(w.origin)} and ${w.share ? 'share origin' : 'timestamp node'} ${quote(owner)}, but the sender is ${quote(sender)}: a node relays only its own writes`,
          );
        }
      });
    }
    node.stats.relaysReceived += writes.length;
    const fresh: KeyWrite[] = [];
    const origins: string[] = [];
    writes.forEach((w, i) => {
      if (!echoBug && (w.origin === node.config.id || !this.seen.add(w.origin, w.incarnation, w.seq))) {
        node.stats.echoesSuppressed += 1;
        return;
      }
      fresh.push(keys[i]);
      origins.push(w.origin);
      if (echoBug && w.hops + 1 < MAX_ECHO_HOPS) {
        // The planted bug: forward to everyone, including the origin and the sender.
        for (const link of this.links) link.enqueue({ ...w, hops: w.hops + 1 });
      }
    });
    return node.applyRemote(fresh, (i) => origins[i]);
  }

  private antiEntropyRound(): void {
    for (const link of this.links) {
      if (link.aeBusy) continue;
      link.aeBusy = true;
      this.exchange(link)
        .catch((e: Error) => this.node.log.throttled(`ae-${link.peer.id}`, 5000, 'warn', `anti-entropy with ${link.peer.id} failed: ${e.message}`))
        .finally(() => (link.aeBusy = false));
    }
  }

  private async exchange(link: PeerLink): Promise<void> {
    const node = this.node;
    const id = node.config.id;
    const theirs = await withTimeout<DigestReply>(DIGEST_TIMEOUT_MS, `Digest from ${link.peer.id}`, (done) =>
      link.client.digest({ sender: id, buckets: DIGEST_BUCKETS }, this.auth.outgoing(), done),
    );
    const ours = node.replica.digest(DIGEST_BUCKETS);
    if (theirs.hashes.length !== DIGEST_BUCKETS) throw new Error(`${link.peer.id} answered ${theirs.hashes.length} digests, expected ${DIGEST_BUCKETS}`);
    const differing = ours.map((h, b) => (h === theirs.hashes[b] ? -1 : b)).filter((b) => b >= 0);
    let buckets: number[] = [];
    let push: MeshWrite[] = [];
    let pushBytes = 0;
    const repair = async () => {
      node.stats.meshMessages += push.length;
      const request = { sender: id, buckets, bucketCount: DIGEST_BUCKETS, writes: push };
      buckets = [];
      push = [];
      pushBytes = 0;
      const reply = await withTimeout<RepairReply>(REPAIR_TIMEOUT_MS, `Repair from ${link.peer.id}`, (done) => link.client.repair(request, this.auth.outgoing(), done));
      const keys = reply.writes.map(meshWriteToKey);
      this.checkRepairOrigins(link.peer.id, reply.writes);
      this.mergeRepair(keys, link.peer.id);
    };
    for (const b of differing) {
      buckets.push(b);
      // Taken at once: the replica may change while a repair of this bucket's first part is in flight.
      for (const w of [...node.replica.bucketWrites([b], DIGEST_BUCKETS)]) {
        const msg = keyToMeshWrite(w, id, 0);
        const bytes = meshWriteBytes(msg);
        // A bucket bigger than one message goes in parts: the first asks for the bucket, the rest only push.
        if (push.length > 0 && pushBytes + bytes > MESH_BATCH_BYTES) await repair();
        push.push(msg);
        pushBytes += bytes;
      }
      if (buckets.length >= REPAIR_CHUNK_BUCKETS || push.length >= REPAIR_CHUNK_WRITES) await repair();
    }
    if (buckets.length > 0 || push.length > 0) await repair();
    node.stats.antiEntropyRounds += 1;
  }

  /**
   * Anti-entropy carries whole states, so a repair holds other nodes' writes and shares too; but each
   * write must be sent by `sender` and belong to a member of this cluster (a timestamp's node, a
   * share's origin), so a peer cannot invent writes of nodes that do not exist. Throws PERMISSION_DENIED.
   */
  checkRepairOrigins(sender: string, writes: readonly MeshWrite[]): void {
    writes.forEach((w, i) => {
      const owner = w.share ? w.share.origin : (w.ts?.node ?? '');
      if (w.origin !== sender || !this.isMember(owner)) {
        this.node.stats.meshRejected += 1;
        throw new RpcError(
          status.PERMISSION_DENIED,
          `repair writes[${i}] has origin ${quote(w.origin)} (the sender is ${quote(sender)}) and belongs to ${quote(owner)}, which is not a member of this cluster (this node and its --peers)`,
        );
      }
    });
  }

  /** Merges writes received through anti-entropy (validated and checked); returns how many keys changed. */
  mergeRepair(keys: readonly KeyWrite[], from: string): number {
    const changed = this.node.applyRemote(keys, () => from, true);
    this.node.stats.keysRepaired += changed;
    return changed;
  }

  close(): void {
    if (this.aeTimer) clearInterval(this.aeTimer);
    for (const link of this.links) link.close();
  }
}
