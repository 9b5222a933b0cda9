// The store node: the replica, its durable log, the HLC, the request-id table, watchers and stats,
// and the operations the Store API exposes. Every change — a client write, a relayed or repaired write,
// a replayed log record — goes through the replica's merge, so all paths agree.
//
// A local write is applied in memory at once (so concurrent requests see it), appended to the log and
// acknowledged only when the log's group commit has fdatasync'ed it; only then is it relayed to peers.
// Its log record carries the request id and the reply, so the request-id table survives SIGKILL. A
// retry that arrives while the first attempt is still being synced waits for that attempt's reply.
import { status } from '@grpc/grpc-js';
import { HybridClock, HlcOverflowError, formatHlc, parseHlc } from './hlc.ts';
import { counterValue, type ComponentState, type Kind, type Share } from './merge.ts';
import { Replica, type KeyWrite } from './replica.ts';
import { LogRecordError, LogUnavailableError, Wal, type Durable } from './wal.ts';
import { WatchHub } from './watch.ts';
import { RpcError, quote } from './validate.ts';
import type { NodeConfig } from './config.ts';
import type { BugName } from './bugs.ts';
import type { Logger } from './log.ts';
import type { Entity, GetReply, HealthReply, IncrReply, DeleteReply, PutReply, StatsReply } from '../proto/gen/faultline.ts';

/** Request ids remembered; the oldest are forgotten beyond this (far more than any test run issues). */
export const MAX_REQUEST_IDS = 1_000_000;
/** Per-origin sequence numbers are incarnation × 2^32 + n, so they never repeat across restarts. */
const SEQ_PER_INCARNATION = 2 ** 32;
/** The planted bug tombstone-gc's grace: relays cross a LAN in a few ms, a slow link takes longer. */
export const TOMBSTONE_GC_MS = 150;

type StoredReply = { ts?: string; value?: string | number };

interface RequestEntry {
  /** What the request did (operation, entity, key), so reusing an id for something else is refused. */
  readonly fp: string;
  readonly reply: StoredReply;
  /** False while the first attempt is still being made durable; retries meanwhile wait in `waiting`. */
  durable: boolean;
  waiting?: Durable[];
}

/** Log records: a component state or a counter share (both idempotent), a request entry, an incarnation. */
type WriteRecord =
  | { t: 'c'; e: string; k: string; v: string; ts: string; d: boolean; kd: Kind; rid?: string; fp?: string; rep?: StoredReply }
  | { t: 's'; e: string; k: string; o: string; p: number; n: number; rid?: string; fp?: string; rep?: StoredReply };
type LogRecord = WriteRecord | { t: 'r'; rid: string; fp: string; rep: StoredReply } | { t: 'inc'; n: number };

/** A durable local write, handed to the mesh for relaying. */
export interface LocalWrite {
  readonly seq: number;
  readonly write: KeyWrite;
}

export interface Stats {
  writes: number;
  relaysSent: number;
  relaysReceived: number;
  relaysDropped: number;
  echoesSuppressed: number;
  antiEntropyRounds: number;
  keysRepaired: number;
  meshMessages: number;
  duplicateRequests: number;
  meshThrottled: number;
  /** Mesh calls and relay batches refused (authentication, sender, or writes that are not the sender's). */
  meshRejected: number;
}

/**
 * A replayed record in the shape node.ts writes, or LogRecordError saying what is wrong with it (the
 * log then counts as damaged, wal.ts): a record of the wrong shape must stop the node with a clear
 * error, and one with a timestamp that is not a canonical HLC must not pin its key forever.
 */
export function checkLogRecord(r: unknown): LogRecord {
  const bad = (why: string): never => {
    throw new LogRecordError(`${why} (record ${quote(JSON.stringify(r) ?? String(r), 200)})`);
  };
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return bad('it is not a JSON object');
  const o = r as Record<string, unknown>;
  const text = (field: string) => (typeof o[field] === 'string' && o[field] !== '' ? (o[field] as string) : bad(`field ${field} is not a non-empty string`));
  const count = (field: string) => (Number.isSafeInteger(o[field]) && (o[field] as number) >= 0 ? (o[field] as number) : bad(`field ${field} is not a non-negative integer`));
  const request = () => {
    if (o.rid === undefined && o.fp === undefined && o.rep === undefined) return;
    text('rid');
    text('fp');
    if (typeof o.rep !== 'object' || o.rep === null) bad('field rep is not an object');
  };
  switch (o.t) {
    case 'c':
      text('e');
      text('k');
      if (typeof o.v !== 'string') bad('field v is not a string');
      if (typeof o.ts !== 'string' || !parseHlc(o.ts)) bad(`field ts ${quote(o.ts)} is not a canonical HLC (<15-digit wall ms>:<5-digit logical>:<node id>)`);
      if (typeof o.d !== 'boolean') bad('field d is not a boolean');
      if (o.kd !== 'lww' && o.kd !== 'max') bad(`field kd ${quote(o.kd)} is not "lww" or "max"`);
      request();
      break;
    case 's':
      text('e');
      text('k');
      text('o');
      count('p');
      count('n');
      request();
      break;
    case 'r':
      text('rid');
      text('fp');
      if (typeof o.rep !== 'object' || o.rep === null) bad('field rep is not an object');
      break;
    case 'inc':
      if (!Number.isSafeInteger(o.n) || (o.n as number) < 1) bad('field n is not a positive integer');
      break;
    default:
      bad(`its type t ${quote(o.t)} is none of "c", "s", "r", "inc"`);
  }
  return r as LogRecord;
}

function keyWriteToRecord(w: KeyWrite): WriteRecord {
  return 'state' in w
    ? { t: 'c', e: w.entity, k: w.component, v: w.state.value, ts: w.state.ts, d: w.state.deleted, kd: w.state.kind }
    : { t: 's', e: w.entity, k: w.counter, o: w.origin, p: w.share.p, n: w.share.n };
}

export class StoreNode {
  readonly config: NodeConfig;
  readonly log: Logger;
  readonly clock: HybridClock;
  readonly replica: Replica;
  readonly watch: WatchHub;
  readonly stats: Stats = {
    writes: 0,
    relaysSent: 0,
    relaysReceived: 0,
    relaysDropped: 0,
    echoesSuppressed: 0,
    antiEntropyRounds: 0,
    keysRepaired: 0,
    meshMessages: 0,
    duplicateRequests: 0,
    meshThrottled: 0,
    meshRejected: 0,
  };
  /** Called with every durable local write (the mesh relays it). */
  onLocalWrite: (w: LocalWrite) => void = () => {};
  /** The peers the mesh is connected to now (the mesh sets this; Health reports it). */
  connectedPeers: () => string[] = () => [];
  /**
   * The most increments (and, apart, decrements) one origin may add to a counter: 2^53 − 1 shared out
   * among the cluster's nodes, so that the sum of all origins' shares, the counter's value, stays an
   * exact integer in every node and client however the increments were spread (an AP store cannot
   * check the sum itself before acknowledging).
   */
  private get shareBound(): number {
    return Math.floor(Number.MAX_SAFE_INTEGER / (this.config.peers.length + 1));
  }
  private readonly requests = new Map<string, RequestEntry>();
  /** This node's own counter shares whose increments are still being made durable (see incr): entity → counter → share. */
  private readonly pendingShares = new Map<string, Map<string, Share>>();
  private readonly startedMs = performance.now();
  /** Tombstones whose gc grace has passed (the planted bug tombstone-gc only). */
  private readonly collectedTombstones = new WeakSet<ComponentState>();
  private wal!: Wal;
  private incarnation = 0;
  private localSeq = 0;
  private compactTimer: NodeJS.Timeout | undefined;
  /** Planted bug remote-before-durable: remote writes already visible, waiting for the next timed log flush. */
  private remoteLater: WriteRecord[] = [];
  /** What a timestamp being admitted belongs to, for the log line of a rejection (set per write, no allocation). */
  private readonly rejecting = { what: '', entity: '', key: '', from: '' };
  /** Log records the offset rule kept out of the state on replay (logged once, after the replay). */
  private quarantined: { count: number; first?: string } = { count: 0 };

  private constructor(config: NodeConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.watch = new WatchHub({ maxBytes: config.watchBufferBytes });
    this.replica = new Replica({ maxAsLww: config.bug === 'threat-lww', tombstoneLoses: config.bug === 'tombstone-loses' });
    this.clock = new HybridClock({
      node: config.id,
      maxSkewMs: config.maxSkewMs,
      maxOffsetMs: config.maxOffsetMs,
      onSkew: (e) =>
        log.throttled('skew', 1000, 'warn', `skew: remote HLC ${formatHlc(e.remote)} is ${e.aheadMs} ms ahead of local wall ${e.localWallMs} (max ${config.maxSkewMs} ms); accepted, HLC advanced`),
      onReject: (e) =>
        log.throttled(
          'hlc-rejected',
          1000,
          'warn',
          `rejected ${this.describeRejecting()}: its HLC ${quote(formatHlc(e.remote), 100)} is ${e.aheadMs} ms ahead of local wall ${e.localWallMs}, beyond --max-offset-ms ${config.maxOffsetMs}; ` +
            'not merged, the clock did not move (a peer offers it again through anti-entropy; it is admitted once this clock is within the offset)',
        ),
    });
  }

  bug(name: BugName): boolean {
    return this.config.bug === name;
  }

  /** Opens the data dir, replays the log and snapshot, and records a new incarnation durably. */
  static async open(config: NodeConfig, log: Logger, onFatal: (error: Error) => void): Promise<StoreNode> {
    const node = new StoreNode(config, log);
    const began = performance.now();
    const { wal, replay } = await Wal.open(
      {
        dir: config.dataDir,
        mode: config.bug === 'ack-before-fsync' ? 'deferred' : 'sync',
        onFatal,
        salvage: config.salvageLog,
        skipLogDirSync: config.bug === 'log-dirent-unsynced',
        // A full or failing disk: refuse writes with a clear error and start a fresh generation once the
        // disk takes writes again (wal.ts recover()), instead of exiting and leaving the node down.
        recovery: {
          snapshot: () => node.snapshotRecords(),
          onFailed: (error) => log.error(`${error.message}; writes are refused (FAILED_PRECONDITION; writes in flight: ABORTED, outcome unknown) until the log recovers into a fresh generation`),
          onRecovered: ({ gen, failedMs, attempts }) => log.warn(`the log recovered into generation ${gen} after ${failedMs} ms (${attempts} attempts); writes are taken again`),
        },
      },
      (r) => node.replayRecord(checkLogRecord(r)),
    );
    for (const s of replay.salvaged) {
      log.warn(
        `salvaged ${s.file}: replayed its ${s.records} intact records and dropped ${s.dropped.length} damaged ranges or unusable records ` +
          `(${s.dropped.map(([offset, bytes]) => `${bytes} bytes at ${offset}`).join(', ')}); the original is kept as ${s.copy}`,
      );
    }
    node.wal = wal;
    node.incarnation += 1;
    await wal.append({ t: 'inc', n: node.incarnation } satisfies LogRecord);
    await wal.flush();
    if (node.quarantined.count > 0) {
      log.warn(
        `replay: ${node.quarantined.count} logged writes carry a timestamp more than --max-offset-ms ${config.maxOffsetMs} ahead of the wall clock (first: ${node.quarantined.first}); ` +
          'they were not merged and did not move the clock (counted in timestamps_rejected); they stay in the log file until the next compaction',
      );
    }
    log.info(
      `replayed ${replay.records} records (snapshot gen ${replay.snapshotGen}, ${replay.logs} logs, ${replay.discardedBytes} torn bytes dropped) ` +
        `in ${Math.round(performance.now() - began)} ms: ${node.replica.entities.size} entities, ${node.requests.size} request ids; incarnation ${node.incarnation}`,
    );
    node.compactTimer = setInterval(() => node.maybeCompact(), 1000);
    node.compactTimer.unref();
    if (node.bug('remote-before-durable')) {
      const flush = setInterval(() => {
        for (const r of node.remoteLater.splice(0)) node.wal.appendLater(r);
      }, 2000);
      flush.unref();
    }
    return node;
  }

  private replayRecord(r: LogRecord): void {
    switch (r.t) {
      case 'c': {
        // The offset rule holds on replay too: a logged timestamp far in the future (a poisoned record)
        // must neither pin the clock nor its key after a restart.
        const parsed = parseHlc(r.ts);
        this.setRejecting('a logged write on replay', r.e, r.k, '');
        if (parsed && !this.clock.admissible(parsed)) {
          if (this.quarantined.count++ === 0) this.quarantined.first = `${quote(r.e)}/${quote(r.k)} at ${quote(r.ts, 100)}`;
          return;
        }
        this.replica.applyComponent(r.e, r.k, { value: r.v, ts: r.ts, deleted: r.d, kind: r.kd });
        // Restarting must not issue timestamps below what we logged, even if the wall clock went back.
        if (parsed && !this.bug('wall-clock-lww')) this.clock.advance(parsed);
        break;
      }
      case 's':
        this.replica.applyShare(r.e, r.k, r.o, { p: r.p, n: r.n });
        break;
      case 'inc':
        this.incarnation = Math.max(this.incarnation, r.n);
        return;
      case 'r':
        break;
      default:
        return;
    }
    if (r.rid !== undefined && r.fp !== undefined && r.rep !== undefined) this.remember(r.rid, { fp: r.fp, reply: r.rep, durable: true });
  }

  private setRejecting(what: string, entity: string, key: string, from: string): void {
    const r = this.rejecting;
    r.what = what;
    r.entity = entity;
    r.key = key;
    r.from = from;
  }

  private describeRejecting(): string {
    const r = this.rejecting;
    return `${r.what} of ${quote(r.entity)}/${quote(r.key)}${r.from ? ` from ${quote(r.from)}` : ''}`;
  }

  /** Applies the offset rule to a remote timestamp and, when admitted, observes it; false: do not merge. */
  private admitTs(ts: string): boolean {
    const parsed = parseHlc(ts);
    if (!parsed) return false;
    if (!this.clock.admissible(parsed)) return false;
    // The planted bug wall-clock-lww still detects skew but never lets remote time advance our clock.
    if (this.bug('wall-clock-lww')) this.clock.detectSkew(parsed);
    else this.clock.observe(parsed);
    return true;
  }

  private remember(rid: string, entry: RequestEntry): void {
    this.requests.delete(rid);
    this.requests.set(rid, entry);
    if (this.requests.size > MAX_REQUEST_IDS) this.requests.delete(this.requests.keys().next().value!);
  }

  private maybeCompact(): void {
    if (this.wal.sizeBytes < this.config.compactLogBytes) return;
    const began = performance.now();
    this.wal
      .compact(() => this.snapshotRecords())
      .then(() => this.log.info(`compacted the log into a snapshot in ${Math.round(performance.now() - began)} ms`))
      .catch((e: Error) => this.log.error(`compaction failed (will retry): ${e.message}`));
  }

  private *snapshotRecords(): Generator<LogRecord> {
    yield { t: 'inc', n: this.incarnation };
    for (const w of this.replica.allWrites()) yield keyWriteToRecord(w);
    for (const [rid, entry] of this.requests) {
      // Entries still being synced are in the new log generation with their write, so skipping them is safe.
      if (entry.durable) yield { t: 'r', rid, fp: entry.fp, rep: entry.reply };
    }
  }

  private timestamp(): string {
    if (this.bug('wall-clock-lww')) return formatHlc({ wallMs: Math.max(0, Math.floor(Date.now())), logical: 0, node: this.config.id });
    try {
      return formatHlc(this.clock.now());
    } catch (e) {
      if (e instanceof HlcOverflowError) throw new RpcError(status.RESOURCE_EXHAUSTED, e.message);
      throw e;
    }
  }

  /**
   * Deduplication: returns the earlier reply for a known request id (marking it duplicate), or undefined.
   * With the planted bug `no-dedupe` request ids are ignored. It is synchronous on purpose: the lookup
   * and the registration in commit() happen in one turn of the event loop, so two copies of a request
   * that arrive in the same socket read cannot both miss the table.
   */
  private earlier(rid: string, fp: string): Promise<StoredReply> | undefined {
    if (rid === '' || this.bug('no-dedupe')) return undefined;
    const entry = this.requests.get(rid);
    if (!entry) return undefined;
    if (entry.fp !== fp) throw new RpcError(status.INVALID_ARGUMENT, `request_id ${quote(rid)} was already used for a different operation (${quote(entry.fp, 200)}); use a fresh id per operation`);
    this.stats.duplicateRequests += 1;
    if (entry.durable) return Promise.resolve(entry.reply);
    return new Promise((resolve, reject) => (entry.waiting ??= []).push((error) => (error ? reject(error) : resolve(entry.reply))));
  }

  private applyLocalComponent(entity: string, component: string, incoming: ComponentState): void {
    const { state, changed } = this.replica.applyComponent(entity, component, incoming);
    if (changed) this.publish(entity, component, state, this.config.id);
    if (changed) this.collectTombstone(entity, component, state);
  }

  /**
   * The planted bug tombstone-gc: TOMBSTONE_GC_MS after a tombstone was applied it is collected, as if
   * every write older than it had arrived by then (a gc grace sized for a LAN): reads still show it,
   * but merges no longer count it, so an older write of the component that arrives later replaces it
   * and the deleted value comes back (until anti-entropy brings the tombstone again).
   */
  private collectTombstone(entity: string, component: string, state: ComponentState): void {
    if (!state.deleted || !this.bug('tombstone-gc')) return;
    setTimeout(() => this.collectedTombstones.add(state), TOMBSTONE_GC_MS).unref();
  }

  /** Under tombstone-gc: whether a live incoming state replaces the collected tombstone in force. */
  private replacesCollected(entity: string, component: string, incoming: ComponentState): boolean {
    if (incoming.deleted || !this.bug('tombstone-gc')) return false;
    const current = this.replica.component(entity, component);
    return current !== undefined && this.collectedTombstones.has(current);
  }

  /**
   * Logs a local write with its request entry, waits until durable, then makes it visible (`apply`),
   * relays it and resolves with `result`. Applying only after the log is synced means no read, watcher
   * or peer ever sees a write that a SIGKILL could still take back (no dirty reads). A retry of the
   * same request id waits for the same point, so its acknowledgement also implies visibility. `settled`
   * runs once either way. One promise per write: this is the hot path of every Put.
   */
  private commit<T>(write: KeyWrite, rid: string, fp: string, reply: StoredReply, apply: () => void, result: T, settled?: () => void): Promise<T> {
    const record = keyWriteToRecord(write);
    let entry: RequestEntry | undefined;
    if (rid !== '' && !this.bug('no-dedupe')) {
      record.rid = rid;
      record.fp = fp;
      record.rep = reply;
      entry = { fp, reply, durable: false };
      // Registered before the append, in this same turn (see earlier()).
      this.remember(rid, entry);
    }
    this.stats.writes += 1;
    return new Promise<T>((resolve, reject) => {
      this.wal.appendThen(record, (error) => {
        try {
          if (error) {
            if (entry && this.requests.get(rid) === entry) this.requests.delete(rid);
            if (error instanceof LogUnavailableError) error = new RpcError(error.definite ? status.FAILED_PRECONDITION : status.ABORTED, error.message);
          } else {
            // The record is on disk: a retry must get this reply even if applying below fails.
            if (entry) entry.durable = true;
            apply();
            this.localSeq += 1;
            this.onLocalWrite({ seq: this.incarnation * SEQ_PER_INCARNATION + this.localSeq, write });
          }
        } catch (thrown) {
          error = thrown as Error;
        }
        settled?.();
        for (const wake of entry?.waiting?.splice(0) ?? []) wake(error);
        if (error) reject(error);
        else resolve(result);
      });
    });
  }

  /** The planted bug quorum-writes: a write needs a connected majority, which an AP store never asks for. */
  private refuseWithoutQuorum(): void {
    if (!this.bug('quorum-writes')) return;
    const size = this.config.peers.length + 1;
    const reachable = this.connectedPeers().length + 1;
    if (reachable <= size / 2) throw new RpcError(status.UNAVAILABLE, `only ${reachable} of ${size} nodes reachable; writes need a majority`);
  }

  private refuseMax(entity: string, component: string, what: string): void {
    const current = this.replica.component(entity, component);
    if (current && current.kind === 'max' && !current.deleted && !this.bug('threat-lww')) {
      throw new RpcError(
        status.FAILED_PRECONDITION,
        `component ${quote(component)} of entity ${quote(entity)} is max-wins (kind "max"); ${what} would lower it, which a max-wins component never allows — put a number with kind "max" instead`,
      );
    }
  }

  // put, delete and incr throw an RpcError synchronously for a request they refuse, and otherwise
  // return a promise of the reply (service.ts turns either into a gRPC status).

  put(entity: string, component: string, value: string, kind: Kind, rid: string): Promise<PutReply> {
    this.refuseWithoutQuorum();
    const fp = `put ${entity}/${component}`;
    const known = this.earlier(rid, fp);
    if (known) return known.then((prior) => ({ ts: String(prior.ts ?? ''), value: String(prior.value ?? ''), duplicate: true }));
    if (kind === 'lww') this.refuseMax(entity, component, 'an LWW put');
    const ts = this.timestamp();
    const incoming: ComponentState = { value, ts, deleted: false, kind };
    const preview = this.replica.previewComponent(entity, component, incoming);
    const reply = { ts, value: preview.deleted ? '' : preview.value };
    const apply = () => this.applyLocalComponent(entity, component, incoming);
    return this.commit({ entity, component, state: incoming }, rid, fp, reply, apply, { ts, value: reply.value, duplicate: false });
  }

  delete(entity: string, component: string, rid: string): Promise<DeleteReply> {
    this.refuseWithoutQuorum();
    const fp = `delete ${entity}/${component}`;
    const known = this.earlier(rid, fp);
    if (known) return known.then((prior) => ({ ts: String(prior.ts ?? ''), duplicate: true }));
    this.refuseMax(entity, component, 'a delete');
    const ts = this.timestamp();
    const incoming: ComponentState = { value: '', ts, deleted: true, kind: 'lww' };
    const apply = () => this.applyLocalComponent(entity, component, incoming);
    return this.commit({ entity, component, state: incoming }, rid, fp, { ts }, apply, { ts, duplicate: false });
  }

  incr(entity: string, counter: string, delta: number, rid: string): Promise<IncrReply> {
    this.refuseWithoutQuorum();
    const fp = `incr ${entity}/${counter} ${delta}`;
    const known = this.earlier(rid, fp);
    if (known) return known.then((prior) => ({ value: Number(prior.value ?? 0), duplicate: true }));
    // Increments still being made durable are not visible yet, but the next increment must build on
    // them, or two concurrent increments would write the same share and one would be lost.
    // Keyed by entity, then counter: no way of joining the two ids into one string can collide.
    let pending = this.pendingShares.get(entity);
    const own = pending?.get(counter) ?? this.replica.share(entity, counter, this.config.id) ?? { p: 0, n: 0 };
    const share = { p: own.p + Math.max(delta, 0), n: own.n + Math.max(-delta, 0) };
    if (share.p > this.shareBound || share.n > this.shareBound) {
      const nodes = this.config.peers.length + 1;
      throw new RpcError(
        status.OUT_OF_RANGE,
        `counter ${quote(counter)} of entity ${quote(entity)} would reach ${share.p > this.shareBound ? `${share.p} in increments` : `${share.n} in decrements`} on node ${this.config.id}, ` +
          `beyond ${this.shareBound}: each of the cluster's ${nodes} nodes may add up to ${Number.MAX_SAFE_INTEGER} (2^53 − 1) / ${nodes} either way, so that the counter's value stays exact on every node`,
      );
    }
    // The planted bug incr-reply-before answers with the value as it was before this increment.
    const before = this.bug('incr-reply-before') ? this.replica.previewShare(entity, counter, this.config.id, own) : undefined;
    if (!pending) this.pendingShares.set(entity, (pending = new Map()));
    pending.set(counter, share);
    const value = before ?? this.replica.previewShare(entity, counter, this.config.id, share);
    const apply = () => {
      const r = this.replica.applyShare(entity, counter, this.config.id, share);
      if (r.changed) this.publishCounter(entity, counter, r.value, this.config.id);
    };
    const settled = () => {
      if (pending.get(counter) !== share) return;
      pending.delete(counter);
      if (pending.size === 0 && this.pendingShares.get(entity) === pending) this.pendingShares.delete(entity);
    };
    return this.commit({ entity, counter, origin: this.config.id, share }, rid, fp, { value }, apply, { value, duplicate: false }, settled);
  }

  /**
   * Applies writes from a peer (relay or repair): each one that would change this replica is logged and
   * merged in (and published to watchers) only once the log has synced it, exactly as a local write is,
   * so no client ever reads a value that a SIGKILL of this node could take back. The remote timestamp
   * is observed at once (later local writes must sort after it whether or not it is durable yet).
   * Returns how many keys the writes change.
   */
  applyRemote(writes: readonly KeyWrite[], origin: (i: number) => string, fromRepair = false): number {
    // The planted bug watch-skip-repair: what anti-entropy repairs is never shown to watchers.
    const silent = fromRepair && this.bug('watch-skip-repair');
    let changed = 0;
    writes.forEach((w, i) => {
      if ('state' in w) {
        this.setRejecting(fromRepair ? 'a repaired write' : 'a relayed write', w.entity, w.component, origin(i));
        if (!this.admitTs(w.state.ts)) return;
        const current = this.replica.component(w.entity, w.component);
        if (current !== undefined && this.replica.previewComponent(w.entity, w.component, w.state) === current && !this.replacesCollected(w.entity, w.component, w.state)) return;
      } else {
        const current = this.replica.share(w.entity, w.counter, w.origin);
        if (current !== undefined && current.p >= w.share.p && current.n >= w.share.n) return;
      }
      changed += 1;
      const from = origin(i);
      const apply = () => {
        if ('state' in w) {
          if (this.replacesCollected(w.entity, w.component, w.state)) {
            this.replica.replaceComponent(w.entity, w.component, w.state);
            if (!silent) this.publish(w.entity, w.component, w.state, from);
            return;
          }
          const r = this.replica.applyComponent(w.entity, w.component, w.state);
          if (r.changed && !silent) this.publish(w.entity, w.component, r.state, from);
          if (r.changed) this.collectTombstone(w.entity, w.component, r.state);
        } else {
          const r = this.replica.applyShare(w.entity, w.counter, w.origin, w.share);
          if (r.changed && !silent) this.publishCounter(w.entity, w.counter, r.value, from);
        }
      };
      const record = keyWriteToRecord(w);
      if (this.bug('remote-before-durable')) {
        // The planted bug: visible at once, logged only by the next timed flush (see remoteLater).
        apply();
        this.remoteLater.push(record);
        return;
      }
      // A failed log write stops the node (Wal's onFatal); the write is then simply not applied here.
      this.wal.appendThen(record, (error) => {
        if (!error) apply();
      });
    });
    return changed;
  }

  private publish(entity: string, component: string, s: ComponentState, origin: string): void {
    if (this.watch.size === 0) return;
    this.watch.publish({ entity, component, value: s.value, ts: s.ts, deleted: s.deleted, kind: s.kind, origin });
  }

  private publishCounter(entity: string, counter: string, value: number, origin: string): void {
    if (this.watch.size === 0) return;
    this.watch.publish({ entity, component: counter, value: String(value), ts: '', deleted: false, kind: 'counter', origin });
  }

  entityMessage(id: string): Entity | undefined {
    const e = this.replica.entities.get(id);
    if (!e) return undefined;
    const byName = <V>(m: ReadonlyMap<string, V>) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return {
      id,
      components: byName(e.components).map(([name, c]) => ({ name, value: c.value, ts: c.ts, deleted: c.deleted, kind: c.kind })),
      counters: byName(e.counters).map(([name, shares]) => ({
        name,
        value: counterValue(shares),
        shares: byName(shares).map(([origin, s]) => ({ origin, p: s.p, n: s.n })),
      })),
    };
  }

  get(id: string): GetReply {
    const entity = this.bug('stale-reads') ? this.cachedEntity(id) : this.entityMessage(id);
    return entity ? { found: true, entity } : { found: false, entity: undefined };
  }

  /** The planted bug stale-reads: a read cache whose entries live 500 ms and are never invalidated. */
  private readonly readCache = new Map<string, { atMs: number; entity: Entity | undefined }>();
  private cachedEntity(id: string): Entity | undefined {
    const now = performance.now();
    const hit = this.readCache.get(id);
    if (hit && now - hit.atMs < 500) return hit.entity;
    const entity = this.entityMessage(id);
    this.readCache.set(id, { atMs: now, entity });
    return entity;
  }

  /** Entity ids in sorted order, for Scan. */
  entityIds(): string[] {
    return [...this.replica.entities.keys()].sort();
  }

  health(): HealthReply {
    return {
      node: this.config.id,
      ok: true,
      wallMs: Date.now(),
      hlc: formatHlc(this.clock.peek()),
      uptimeMs: Math.round(performance.now() - this.startedMs),
      bug: this.config.bug ?? '',
      peers: this.config.peers.map((p) => `${p.id}=${p.host}:${p.port}`),
      pid: process.pid,
      peersConnected: this.connectedPeers(),
    };
  }

  statsReply(): StatsReply {
    const s = this.stats;
    return {
      node: this.config.id,
      writes: s.writes,
      relaysSent: s.relaysSent,
      relaysReceived: s.relaysReceived,
      echoesSuppressed: s.echoesSuppressed,
      antiEntropyRounds: s.antiEntropyRounds,
      keysRepaired: s.keysRepaired,
      skewEvents: this.clock.skewEvents,
      timestampsRejected: this.clock.rejected,
      watcherDrops: this.watch.drops,
      watchBufferedBytes: this.watch.bytes,
      meshMessages: s.meshMessages,
      messagesPerWrite: s.writes === 0 ? 0 : s.meshMessages / s.writes,
      duplicateRequests: s.duplicateRequests,
      meshThrottled: s.meshThrottled,
      fsyncs: this.wal.fsyncs,
      relaysDropped: s.relaysDropped,
      meshRejected: s.meshRejected,
    };
  }

  /** Flushes the log (including a deferred buffer) and closes it. */
  async close(): Promise<void> {
    if (this.compactTimer) clearInterval(this.compactTimer);
    await this.wal.close();
  }
}
