// The gRPC face of a node: one server on --listen serving the Store (client) and Mesh (peer) services.
// Handlers validate input (node/validate.ts), call the node, and turn every failure into a gRPC status
// with a clear message; nothing a client or peer sends can throw out of a handler and crash the node.
import { Metadata, Server, ServerCredentials, status, type ServerErrorResponse, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import {
  DeleteRequest,
  DigestRequest,
  GetRequest,
  HealthRequest,
  IncrRequest,
  MeshService,
  PutRequest,
  RelayBatch,
  RepairRequest,
  ScanRequest,
  StatsRequest,
  StoreService,
  WatchRequest,
  type MeshServer,
  type StoreServer,
  type MeshWrite,
} from '../proto/gen/faultline.ts';
import type { BinaryReader } from '@bufbuild/protobuf/wire';
import { InvalidRequest, strictDeserializer } from './wire.ts';
import { RpcError, checkDelta, checkId, checkKind, checkRequestId, checkValue, invalid, meshWriteToKey, quote } from './validate.ts';
import { MESH_MESSAGE_BYTES, keyToMeshWrite, type Mesh } from './mesh.ts';
import { isPowerOfTwoBuckets } from './replica.ts';
import { MAX_REQUEST_BYTES, stalledRequestGuard } from './limits.ts';
import type { StoreNode } from './node.ts';

/** Longest error text sent back; messages quote input cut short already (validate.ts quote()), this is the last guard. */
const MAX_DETAILS_CHARS = 1000;

function toStatus(error: unknown): Partial<ServerErrorResponse> {
  const details = error instanceof RpcError ? error.message : `internal error: ${(error as Error)?.message ?? String(error)}`;
  return { code: error instanceof RpcError ? error.code : status.INTERNAL, details: details.length > MAX_DETAILS_CHARS ? `${details.slice(0, MAX_DETAILS_CHARS)}… (cut)` : details };
}

/** The request, or an RpcError (INVALID_ARGUMENT naming the field) when it could not be decoded (wire.ts). */
function decoded<Req>(request: Req): Req {
  if ((request as unknown) instanceof InvalidRequest) throw invalid((request as unknown as InvalidRequest).reason);
  return request;
}

/** Wraps a unary handler so any throw or rejection becomes a gRPC error reply. */
function unary<Req, Res>(node: StoreNode, name: string, fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let result: Res | Promise<Res>;
    try {
      result = fn(decoded(call.request), call);
    } catch (error) {
      if (!(error instanceof RpcError)) node.log.error(`${name} failed: ${(error as Error)?.stack ?? String(error)}`);
      callback(toStatus(error));
      return;
    }
    if (!(result instanceof Promise)) return callback(null, result);
    result.then(
      (reply) => callback(null, reply),
      (error) => {
        if (!(error instanceof RpcError)) node.log.error(`${name} failed: ${(error as Error)?.stack ?? String(error)}`);
        callback(toStatus(error));
      },
    );
  };
}

/**
 * Authenticates a mesh call (node/mesh-auth.ts) and checks that the message names the same sender;
 * returns the sender. A refusal is counted and logged (one throttled line for all senders, with the
 * sender quoted, so neither a flood of callers nor a sender with a newline can flood or forge the log).
 */
function authenticate(node: StoreNode, mesh: Mesh, metadata: Metadata, named: unknown, method: string): string {
  try {
    const sender = mesh.auth.check(metadata);
    if (named !== sender) throw new RpcError(status.PERMISSION_DENIED, `the message names sender ${quote(named)} but the call was authenticated as ${quote(sender)}`);
    return sender;
  } catch (error) {
    node.stats.meshRejected += 1;
    node.log.throttled('mesh-rejected', 5000, 'warn', `refused a mesh ${method} call: ${(error as Error).message}`);
    throw error;
  }
}

function checkBucketCount(count: number): number {
  const n = count === 0 ? 64 : count;
  if (!isPowerOfTwoBuckets(n)) throw invalid(`buckets must be a power of two from 1 to 4096, got ${count}`);
  return n;
}

export function storeHandlers(node: StoreNode): StoreServer {
  return {
    put: unary(node, 'Put', (req) => {
      const kind = checkKind(req.kind);
      return node.put(checkId('entity', req.entity), checkId('component', req.component), checkValue(req.value, kind), kind, checkRequestId(req.requestId));
    }),
    incr: unary(node, 'Incr', (req) =>
      node.incr(checkId('entity', req.entity), checkId('counter', req.counter), checkDelta(req.delta), checkRequestId(req.requestId)),
    ),
    delete: unary(node, 'Delete', (req) => node.delete(checkId('entity', req.entity), checkId('component', req.component), checkRequestId(req.requestId))),
    get: unary(node, 'Get', (req) => node.get(checkId('entity', req.entity))),
    scan: (call) => {
      if ((call.request as unknown) instanceof InvalidRequest) {
        call.emit('error', toStatus(invalid((call.request as unknown as InvalidRequest).reason)));
        return;
      }
      // Streams one entity at a time and waits for the client when it falls behind, so a Scan of a
      // large store never builds the whole answer in memory.
      const ids = node.entityIds();
      let i = 0;
      const pump = () => {
        while (i < ids.length) {
          const entity = node.entityMessage(ids[i++]);
          if (entity && !call.write(entity)) {
            call.once('drain', pump);
            return;
          }
        }
        call.end();
      };
      call.on('error', () => {
        i = ids.length;
      });
      pump();
    },
    watch: (call) => {
      let prefix: string;
      try {
        prefix = decoded(call.request).entityPrefix;
        if (Buffer.byteLength(prefix, 'utf8') > 256) throw invalid('entity_prefix is longer than the 256-byte id limit');
      } catch (error) {
        call.emit('error', toStatus(error));
        return;
      }
      const remove = node.watch.add(prefix, call.request.buffer, call);
      if (!remove) {
        call.emit('error', toStatus(new RpcError(status.RESOURCE_EXHAUSTED, `this node already serves ${node.watch.maxWatchers} watch streams, its limit; close one and retry`)));
        return;
      }
      // Headers go out now, so the client knows from when on it is sent every change.
      call.sendMetadata(new Metadata());
      const done = () => remove();
      call.on('cancelled', done);
      call.on('close', done);
      call.on('error', done);
    },
    health: unary(node, 'Health', () => node.health()),
    stats: unary(node, 'Stats', () => node.statsReply()),
  };
}

export function meshHandlers(node: StoreNode, mesh: Mesh): MeshServer {
  return {
    relay: (call, callback) => {
      let received = 0;
      let failed = false;
      let sender: string | undefined;
      try {
        sender = mesh.auth.check(call.metadata);
      } catch (error) {
        failed = true;
        node.stats.meshRejected += 1;
        node.log.throttled('mesh-rejected', 5000, 'warn', `refused a mesh Relay call: ${(error as Error).message}`);
        callback(toStatus(error));
      }
      call.on('data', (batch: { sender: string; writes: MeshWrite[] }) => {
        if (failed) return;
        try {
          decoded(batch);
          if (batch.sender !== sender) {
            node.stats.meshRejected += 1;
            throw new RpcError(status.PERMISSION_DENIED, `the batch names sender ${quote(batch.sender)} but the stream was authenticated as ${quote(sender)}`);
          }
          const keys = batch.writes.map(meshWriteToKey);
          mesh.receiveRelay(sender, batch.writes, keys);
          received += batch.writes.length;
        } catch (error) {
          failed = true;
          node.log.throttled('relay-in-rejected', 5000, 'warn', `rejected a relay batch from ${quote(sender)}: ${(error as Error).message}`);
          callback(toStatus(error));
        }
      });
      call.on('end', () => {
        if (!failed) callback(null, { received });
      });
      call.on('error', () => {
        failed = true;
      });
    },
    digest: unary(node, 'Digest', (req, call) => {
      authenticate(node, mesh, call.metadata, req.sender, 'Digest');
      return { sender: node.config.id, hashes: node.replica.digest(checkBucketCount(req.buckets)) };
    }),
    repair: unary(node, 'Repair', (req, call) => {
      const sender = authenticate(node, mesh, call.metadata, req.sender, 'Repair');
      const count = checkBucketCount(req.bucketCount);
      for (const b of req.buckets) if (b >= count) throw invalid(`bucket ${b} is out of range for ${count} buckets`);
      const keys = req.writes.map(meshWriteToKey);
      mesh.checkRepairOrigins(sender, req.writes);
      // Collect our side before merging theirs, so the reply is our state as it was asked for.
      const writes = [...node.replica.bucketWrites(req.buckets, count)].map((w) => keyToMeshWrite(w, node.config.id, 0));
      node.stats.meshMessages += writes.length;
      mesh.mergeRepair(keys, sender);
      return { sender: node.config.id, writes };
    }),
  };
}

/** A service definition whose request decoders are strict and never throw (wire.ts). */
function strict<D extends Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>>(
  service: D,
  messages: { [K in keyof D]: [string, { decode(reader: BinaryReader): unknown }] },
): D {
  const out: Record<string, unknown> = {};
  for (const [method, definition] of Object.entries(service)) {
    const [type, message] = messages[method as keyof D];
    out[method] = { ...definition, requestDeserialize: strictDeserializer(type, (reader) => message.decode(reader)) };
  }
  return out as D;
}

const STRICT_STORE = strict(StoreService, {
  put: ['PutRequest', PutRequest],
  incr: ['IncrRequest', IncrRequest],
  delete: ['DeleteRequest', DeleteRequest],
  get: ['GetRequest', GetRequest],
  scan: ['ScanRequest', ScanRequest],
  watch: ['WatchRequest', WatchRequest],
  health: ['HealthRequest', HealthRequest],
  stats: ['StatsRequest', StatsRequest],
});

const STRICT_MESH = strict(MeshService, {
  relay: ['RelayBatch', RelayBatch],
  digest: ['DigestRequest', DigestRequest],
  repair: ['RepairRequest', RepairRequest],
});

export interface ListeningServer {
  readonly server: Server;
  readonly port: number;
}

/** Starts one gRPC server serving both services on host:port; resolves with the bound port. */
export function listen(node: StoreNode, mesh: Mesh, host: string, port: number): Promise<ListeningServer> {
  const guard = stalledRequestGuard((path, limitMs) =>
    node.log.throttled('stalled-request', 5000, 'warn', `ended a ${path} call whose request did not arrive whole within ${limitMs} ms`),
  );
  const server = new Server({
    // What a caller can make us buffer (and decompress) per call; replies (Scan, repairs) may be larger.
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    'grpc.max_send_message_length': MESH_MESSAGE_BYTES,
    interceptors: [guard.interceptor],
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5000,
    // Channelz keeps per-call statistics (timestamps, counters) that nothing here reads; off, each
    // call costs less CPU.
    'grpc.enable_channelz': 0,
  });
  server.addService(STRICT_STORE, storeHandlers(node));
  server.addService(STRICT_MESH, meshHandlers(node, mesh));
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, bound) => {
      if (error) reject(new Error(`cannot listen on ${address}: ${error.message}`, { cause: error }));
      else resolve({ server, port: bound });
    }),
  );
}
