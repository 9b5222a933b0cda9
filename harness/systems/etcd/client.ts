// The etcd client: turns the register workload's ops into etcd v3 gRPC calls (KV Range, Put, and a Txn
// for compare-and-set) with a deadline each, and every outcome into a completion through this system's
// own error table. It speaks etcd's protocol with @grpc/grpc-js on a wire-compatible subset of etcd's
// protos (proto/etcd.proto, TypeScript by ts-proto like the store's), rather than the `etcd3` npm
// package: that one retries failed calls itself (cockatiel policies) and hides which attempt took
// effect, and a harness must record exactly one outcome per op, with its own deadline.
import net from 'node:net';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Compare_CompareResult, Compare_CompareTarget, KVClient, MaintenanceClient, type StatusResponse } from '../../../proto/gen/etcd.ts';
import type { Completion, OpSpec, SystemClient } from '../../system.ts';

/** Every op f this client performs. */
export const ETCD_FS = ['read', 'write', 'cas'] as const;

export type EtcdReads = 'linearizable' | 'serializable';

/** Keys live under this prefix, so the harness never touches anything else in a cluster it is pointed at. */
export const KEY_PREFIX = 'faultline/';

type Unary<Req, Res> = (req: Req, meta: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown;

/**
 * etcd's error table (Maelstrom's `definite?`): which errors mean a write, or a cas, definitely did not
 * happen. A read never changes anything, so any error on it is a `fail`. For a write, only an error the
 * server gives before proposing (a refused argument, a rate limit, a request it cannot serve) or a call
 * that never left the client (no connection) is definite; a deadline, a lost connection, "no leader" or
 * "request timed out" after a proposal may all have taken effect, so they are `info`.
 */
export function classifyEtcdError(error: unknown, readOnly: boolean): { type: 'fail' | 'info'; error: string } {
  const e = error as Partial<ServiceError>;
  const code = typeof e.code === 'number' ? e.code : undefined;
  const text = code !== undefined ? `${status[code] ?? code}: ${e.details ?? e.message}` : String((error as Error)?.message ?? error);
  if (readOnly) return { type: 'fail', error: text };
  const definite = new Set([
    status.INVALID_ARGUMENT,
    status.NOT_FOUND,
    status.ALREADY_EXISTS,
    status.PERMISSION_DENIED,
    status.RESOURCE_EXHAUSTED,
    status.FAILED_PRECONDITION,
    status.OUT_OF_RANGE,
    status.UNIMPLEMENTED,
    status.UNAUTHENTICATED,
  ]);
  if (code !== undefined && definite.has(code)) return { type: 'fail', error: text };
  // grpc-js never sent the call when the channel has no connection at all.
  if (code === status.UNAVAILABLE && /No connection established|ECONNREFUSED/.test(e.details ?? '')) return { type: 'fail', error: text };
  return { type: 'info', error: text };
}

function key(v: Record<string, unknown>): Buffer {
  return Buffer.from(KEY_PREFIX + String(v.key));
}

/** Register values are small integers; anything else read back is a foreign value and shown as text. */
function decode(value: Buffer): number | string {
  const text = value.toString('utf8');
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

export class EtcdClient implements SystemClient {
  readonly address: string;
  readonly #kv: KVClient;
  readonly #timeoutMs: number;
  readonly #serializable: boolean;

  constructor(address: string, options: { readonly opTimeoutMs?: number; readonly reads?: EtcdReads } = {}) {
    this.address = address;
    this.#timeoutMs = options.opTimeoutMs ?? 1000;
    this.#serializable = options.reads === 'serializable';
    // Short reconnect backoff, as the store's client: a killed or paused member is back within seconds.
    this.#kv = new KVClient(address, credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 250,
      'grpc.min_reconnect_backoff_ms': 50,
      'grpc.enable_channelz': 0,
    });
  }

  #call<Req, Res>(method: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.#kv, req, new Metadata(), { deadline: new Date(Date.now() + this.#timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async invoke(op: OpSpec): Promise<Completion> {
    try {
      return await this.#apply(op);
    } catch (error) {
      const c = classifyEtcdError(error, op.f === 'read');
      return { type: c.type, value: op.value, error: c.error };
    }
  }

  async #apply(op: OpSpec): Promise<Completion> {
    const v = op.value as Record<string, unknown>;
    switch (op.f) {
      case 'read': {
        const reply = await this.#call(this.#kv.range, { key: key(v), rangeEnd: Buffer.alloc(0), limit: 0, revision: 0, serializable: this.#serializable });
        const kv = reply.kvs[0];
        return { type: 'ok', value: { ...v, value: kv ? decode(kv.value) : null } };
      }
      case 'write': {
        await this.#call(this.#kv.put, { key: key(v), value: Buffer.from(String(v.value)), lease: 0, prevKv: false });
        return { type: 'ok', value: v };
      }
      case 'cas': {
        const [from, to] = v.value as [unknown, unknown];
        const reply = await this.#call(this.#kv.txn, {
          compare: [{ result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.VALUE, key: key(v), value: Buffer.from(String(from)), rangeEnd: Buffer.alloc(0) }],
          success: [{ requestPut: { key: key(v), value: Buffer.from(String(to)), lease: 0, prevKv: false } }],
          failure: [],
        });
        // A compare that did not hold is a definite outcome: the put did not happen.
        return reply.succeeded ? { type: 'ok', value: v } : { type: 'fail', value: v, error: 'cas: the value was not the expected one' };
      }
      default:
        throw Object.assign(new Error(`Unknown op f "${op.f}": the etcd client knows ${ETCD_FS.join(', ')}`), { code: status.INVALID_ARGUMENT, details: `unknown op ${op.f}` });
    }
  }

  close(): void {
    this.#kv.close();
  }
}

/** One Maintenance.Status call over a fresh channel (a long-lived one may sit in reconnect backoff). */
export async function memberStatus(address: string, timeoutMs: number): Promise<StatusResponse> {
  const client = new MaintenanceClient(address, credentials.createInsecure());
  try {
    return await new Promise<StatusResponse>((resolve, reject) => {
      client.status({}, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (error, reply) => (error ? reject(new Error(`Status on ${address} failed: ${error.message}`)) : resolve(reply)));
    });
  } finally {
    client.close();
  }
}

/** Resolves once a TCP connection to host:port opens (etcd's listener is bound), rejects after timeoutMs. */
export function tcpOpen(address: string, timeoutMs: number): Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (error?: Error) => {
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no TCP connection to ${address} within ${timeoutMs} ms`)));
    socket.once('connect', () => done());
    socket.once('error', (error) => done(new Error(`TCP connect to ${address}: ${error.message}`)));
  });
}
