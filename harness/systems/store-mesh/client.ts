// The client of the store-and-mesh service: turns workload ops (f + value, see harness/history.ts)
// into real gRPC calls with deadlines, and every outcome into a completion. Errors go through the one
// table in error-table.ts, so `fail` always means "definitely not applied" and `info` means
// "may have been applied". One gRPC channel per node is shared by the workers bound to that node.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { StoreClient, type Entity, type HealthReply, type StatsReply, type WatchEvent } from '../../../proto/gen/faultline.ts';
import { classifyError } from './error-table.ts';
import type { OpSpec } from '../../generator.ts';
import type { Completion, SystemClient } from '../../system.ts';
import type { FinalEntity, FinalState } from '../../history.ts';

export type { Completion };

/** Every op f this client performs. */
export const CLIENT_FS = ['read', 'write', 'delete', 'read-max', 'write-max', 'incr', 'read-counter', 'add', 'remove', 'read-set', 'final-read'] as const;

/** Ops that cannot change state; any error on them is a definite `fail`. */
const READ_ONLY = new Set(['read', 'read-max', 'read-counter', 'read-set', 'final-read', 'stats']);

/** Components of a set entity are named by this prefix and the element: "x42". */
export const SET_PREFIX = 'x';

export interface StoreClientOptions {
  /** Deadline of every call. @default 1000 */
  readonly opTimeoutMs?: number;
}

type Unary<Req, Res> = (req: Req, meta: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown;

export class StoreMeshClient implements SystemClient {
  readonly address: string;
  readonly #stub: StoreClient;
  readonly #timeoutMs: number;

  constructor(address: string, options: StoreClientOptions = {}) {
    this.address = address;
    this.#timeoutMs = options.opTimeoutMs ?? 1000;
    // Short reconnect backoff (at most 250 ms): a killed or paused node comes back within seconds, and
    // the default backoff (up to two minutes) would make it look unavailable long after it recovered;
    // the availability checker allows one second after a node is back.
    this.#stub = new StoreClient(address, credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 250,
      'grpc.min_reconnect_backoff_ms': 50,
      'grpc.keepalive_time_ms': 10_000,
      // Channelz keeps per-call statistics nobody reads here; off, each call costs less CPU.
      'grpc.enable_channelz': 0,
    });
  }

  #call<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs = this.#timeoutMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      method.call(this.#stub, req, new Metadata(), { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async get(entity: string): Promise<Entity | undefined> {
    const reply = await this.#call(this.#stub.get, { entity });
    return reply.found ? reply.entity : undefined;
  }

  health(timeoutMs = this.#timeoutMs): Promise<HealthReply> {
    return this.#call(this.#stub.health, {}, timeoutMs);
  }

  stats(timeoutMs = this.#timeoutMs): Promise<StatsReply> {
    return this.#call(this.#stub.stats, {}, timeoutMs);
  }

  /** Streams every entity and folds them into a FinalState with sorted keys. */
  scan(timeoutMs = Math.max(this.#timeoutMs, 10_000)): Promise<FinalState> {
    return new Promise((resolve, reject) => {
      const entities: Entity[] = [];
      const stream = this.#stub.scan({}, { deadline: new Date(Date.now() + timeoutMs) });
      stream.on('data', (e: Entity) => entities.push(e));
      stream.on('error', reject);
      stream.on('end', () => resolve(toFinalState(entities)));
    });
  }

  /**
   * Opens a Watch stream of every change on this node. `onOpen` runs once the node has registered the
   * watcher (it sends headers right after), `onEvent` for every event, `onEnd` once with the reason the
   * stream ended (or undefined when it was closed by `cancel`).
   */
  watch(handlers: { onOpen: () => void; onEvent: (e: WatchEvent) => void; onEnd: (error: string | undefined) => void }): { cancel: () => void } {
    const call = this.#stub.watch({ entityPrefix: '', buffer: 0 });
    let ended = false;
    let cancelled = false;
    const end = (error: string | undefined) => {
      if (ended) return;
      ended = true;
      handlers.onEnd(cancelled ? undefined : error);
    };
    call.on('metadata', () => handlers.onOpen());
    call.on('data', (e: WatchEvent) => handlers.onEvent(e));
    call.on('error', (e: ServiceError) => end(`${e.code}: ${e.details}`));
    call.on('end', () => end('the node ended the stream'));
    return {
      cancel: () => {
        cancelled = true;
        call.cancel();
        end(undefined);
      },
    };
  }

  async invoke(op: OpSpec): Promise<Completion> {
    try {
      return { type: 'ok', value: await this.#apply(op) };
    } catch (error) {
      const c = classifyError(error, READ_ONLY.has(op.f));
      return { type: c.type, value: op.value, error: c.error };
    }
  }

  async #apply(op: OpSpec): Promise<unknown> {
    const v = op.value as Record<string, any>;
    switch (op.f) {
      case 'read':
      case 'read-max': {
        const entity = await this.get(v.entity);
        const c = entity?.components.find((x) => x.name === v.component);
        const present = c !== undefined && !c.deleted;
        const value = present ? (op.f === 'read-max' ? Number(c.value) : c.value) : null;
        // A tombstone is reported with its timestamp, so checkers can order it like any write.
        return c?.deleted ? { ...v, value, ts: c.ts, deleted: true } : { ...v, value, ts: present ? c.ts : null };
      }
      case 'write':
      case 'write-max': {
        const kind = op.f === 'write-max' ? 'max' : 'lww';
        const reply = await this.#call(this.#stub.put, { entity: v.entity, component: v.component, value: String(v.value), requestId: v.requestId, kind });
        const dup = reply.duplicate ? { duplicate: true } : {};
        return op.f === 'write-max' ? { ...v, ts: reply.ts, result: Number(reply.value), ...dup } : { ...v, ts: reply.ts, ...dup };
      }
      case 'delete': {
        const reply = await this.#call(this.#stub.delete, { entity: v.entity, component: v.component, requestId: v.requestId });
        return { ...v, ts: reply.ts, ...(reply.duplicate ? { duplicate: true } : {}) };
      }
      case 'incr': {
        const reply = await this.#call(this.#stub.incr, { entity: v.entity, counter: v.counter, delta: v.delta, requestId: v.requestId });
        return { ...v, result: reply.value, ...(reply.duplicate ? { duplicate: true } : {}) };
      }
      case 'read-counter': {
        const entity = await this.get(v.entity);
        const c = entity?.counters.find((x) => x.name === v.counter);
        const shares: Record<string, [number, number]> = {};
        for (const s of c?.shares ?? []) shares[s.origin] = [s.p, s.n];
        return { ...v, value: c?.value ?? 0, shares };
      }
      case 'add':
      case 'remove': {
        const component = `${SET_PREFIX}${v.element}`;
        const reply =
          op.f === 'add'
            ? await this.#call(this.#stub.put, { entity: v.entity, component, value: '1', requestId: v.requestId, kind: 'lww' })
            : await this.#call(this.#stub.delete, { entity: v.entity, component, requestId: v.requestId });
        return { ...v, ts: reply.ts, ...(reply.duplicate ? { duplicate: true } : {}) };
      }
      case 'read-set': {
        const entity = await this.get(v.entity);
        return { ...v, ...setElements(entity?.components ?? []) };
      }
      case 'final-read':
        return { ...v, state: await this.scan() };
      default:
        throw new Error(`Unknown op f "${op.f}": the store-mesh client knows ${CLIENT_FS.join(', ')}`);
    }
  }

  close(): void {
    this.#stub.close();
  }
}

/** The elements of a set entity (live components) and the removed ones (tombstones), in the node's order. */
function setElements(components: Entity['components']): { elements: number[]; removed: number[]; maxTs?: string } {
  const elements: number[] = [];
  const removed: number[] = [];
  // The newest timestamp among the set's elements (live or removed): the node's clock has seen it, so
  // the session checker holds the node's next writes to sort after it (writes-follow-reads).
  let maxTs = '';
  for (const c of components) {
    if (!c.name.startsWith(SET_PREFIX)) continue;
    (c.deleted ? removed : elements).push(Number(c.name.slice(SET_PREFIX.length)));
    if (c.ts > maxTs) maxTs = c.ts;
  }
  return { elements, removed, ...(maxTs ? { maxTs } : {}) };
}

/**
 * One Health or Stats call over a fresh channel that is closed afterwards. A long-lived channel sits in
 * gRPC's reconnect backoff (up to seconds) after its node was down, and would delay noticing that the
 * node is back; the cluster's health checks and the clock nemesis's readings both need the fresh answer.
 */
export async function callStoreOnce<R>(node: string, address: string, method: 'health' | 'stats', timeoutMs: number): Promise<R> {
  const client = new StoreClient(address, credentials.createInsecure());
  try {
    return await new Promise<R>((resolve, reject) => {
      const callback = (error: ServiceError | null, reply: R) => {
        if (error) reject(new Error(`${node}: Store.${method === 'health' ? 'Health' : 'Stats'} on ${address} failed: ${error.message}`, { cause: error }));
        else resolve(reply);
      };
      // The generated client is overloaded per method; both take (request, metadata, options, callback).
      const call = client[method] as unknown as (req: object, meta: Metadata, opts: { deadline: Date }, cb: typeof callback) => void;
      call.call(client, {}, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, callback);
    });
  } finally {
    client.close();
  }
}

/** Converts scanned entities into the canonical FinalState (sorted keys so equal states serialise equally). */
export function toFinalState(entities: readonly Entity[]): FinalState {
  const sorted = entities.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const state: FinalState = {};
  for (const e of sorted) {
    const fe: FinalEntity = { components: {}, counters: {} };
    for (const c of e.components.slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      fe.components[c.name] = c.deleted
        ? { value: '', ts: c.ts, kind: c.kind === 'max' ? 'max' : 'lww', deleted: true }
        : { value: c.value, ts: c.ts, kind: c.kind === 'max' ? 'max' : 'lww' };
    }
    for (const c of e.counters.slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) fe.counters[c.name] = c.value;
    state[e.id] = fe;
  }
  return state;
}
