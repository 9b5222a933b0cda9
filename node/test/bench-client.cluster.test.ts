// Tests of the benchmark's raw HTTP/2 gRPC client (node/bench-client.ts) against a real node process on
// loopback (no mocks): replies and idempotency, thousands of calls through HTTP/2 flow control, request
// bodies split into several DATA frames, gRPC errors from the server, and a server that dies mid-call.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Server } from 'node:net';
import { GrpcCallError, RawGrpcClient } from '../bench-client.ts';
import { StoreApi, clusterSpecs, removeDataDirs, startNode, type NodeProcess, type NodeSpec } from '../testing.ts';
import { MAX_VALUE_BYTES } from '../validate.ts';

const procs: NodeProcess[] = [];
const clients: { close(): void }[] = [];
const specsToRemove: NodeSpec[] = [];

async function startOne(): Promise<{ proc: NodeProcess; client: RawGrpcClient; api: StoreApi; port: number }> {
  const specs = await clusterSpecs({ size: 1 });
  specsToRemove.push(...specs);
  const proc = await startNode(specs[0]);
  procs.push(proc);
  const client = new RawGrpcClient(specs[0].port);
  const api = new StoreApi(specs[0].port);
  clients.push(client, api);
  return { proc, client, api, port: specs[0].port };
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
  removeDataDirs(specsToRemove.splice(0));
});

const HLC = /^\d{15}:\d{5}:n1$/;

/** The promise's outcome, or a failure naming what hung if it has not settled within ms. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The GrpcCallError a promise rejects with (fails the test if it resolves or rejects otherwise). */
async function callError(promise: Promise<unknown>): Promise<GrpcCallError> {
  const error = await within(promise, 10_000, 'the call').then(
    (reply) => new Error(`expected the call to fail, it returned ${JSON.stringify(reply)}`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrpcCallError);
  return error as GrpcCallError;
}

/** Calls onFrame for each HTTP/2 frame in a byte stream that arrives in arbitrary chunks. */
function frameReader(skip: number, onFrame: (type: number, streamId: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let input = Buffer.alloc(0);
  return (chunk) => {
    input = Buffer.concat([input, chunk]);
    if (skip > 0) {
      const n = Math.min(skip, input.length);
      input = input.subarray(n);
      skip -= n;
    }
    while (input.length >= 9 && input.length >= 9 + input.readUIntBE(0, 3)) {
      const length = input.readUIntBE(0, 3);
      onFrame(input[3], input.readUInt32BE(5) & 0x7fffffff, input.subarray(9, 9 + length));
      input = input.subarray(9 + length);
    }
  };
}

/**
 * A pass-through TCP proxy that reads the frames going both ways and tracks the client's connection
 * send window: 65,535 octets, less each DATA payload the client sends, plus each connection
 * WINDOW_UPDATE the server sends. The proxy counts an update before the client can see it, so a
 * client that honours flow control never takes the window below zero here.
 */
async function windowWatcher(targetPort: number) {
  const seen = { window: 65_535, lowest: 65_535, dataBytes: 0, updates: 0 };
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    const fromClient = frameReader(24, (type, _, payload) => {
      if (type !== 0) return;
      seen.dataBytes += payload.length;
      seen.window -= payload.length;
      seen.lowest = Math.min(seen.lowest, seen.window);
    });
    const fromServer = frameReader(0, (type, streamId, payload) => {
      if (type !== 8 || streamId !== 0) return;
      seen.updates += 1;
      seen.window += payload.readUInt32BE(0) & 0x7fffffff;
    });
    inbound.on('data', (chunk: Buffer) => (fromClient(chunk), outbound.write(chunk)));
    outbound.on('data', (chunk: Buffer) => (fromServer(chunk), inbound.write(chunk)));
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]]) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  clients.push({ close: () => server.close() });
  return { port: (server.address() as { port: number }).port, seen };
}

async function componentValue(api: StoreApi, entity: string, component: string): Promise<string | undefined> {
  const { entity: e } = await api.get(entity);
  return e?.components.find((c) => c.name === component)?.value;
}

describe('RawGrpcClient against a real node', () => {
  it('returns the HLC timestamp of a Put and answers a retried request id as a duplicate', async () => {
    const { client, api } = await startOne();
    const first = await client.put('ship-1', 'pos', 'x=1', 'req-1');
    expect(first.ts).toMatch(HLC);
    expect(first.duplicate).toBe(false);
    const again = await client.put('ship-1', 'pos', 'x=1', 'req-1');
    expect(again.duplicate).toBe(true);
    expect(again.ts).toBe(first.ts);
    expect(await componentValue(api, 'ship-1', 'pos')).toBe('x=1');
  });

  it('completes 2,000 Puts, 64 at a time, through the flow-control windows', async () => {
    const { client, api } = await startOne();
    const count = 2000;
    const value = 'v'.repeat(200);
    // Far more request bytes than the 65,535-octet connection window the server starts with, so the
    // client must wait for and use the server's WINDOW_UPDATEs.
    expect(count * value.length).toBeGreaterThan(4 * 65_535);
    const stamps: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const reply = await client.put(`flow-${i % 100}`, `c${i}`, value, `req-${i}`);
        expect(reply.duplicate).toBe(false);
        stamps.push(reply.ts);
      }
    };
    await within(Promise.all(Array.from({ length: 64 }, worker)), 60_000, 'the 2,000 Puts');
    expect(stamps).toHaveLength(count);
    expect(stamps.every((ts) => HLC.test(ts))).toBe(true);
    expect(new Set(stamps).size).toBe(count);
    expect(await componentValue(api, 'flow-99', 'c1999')).toBe(value);
    expect((await api.stats()).writes).toBe(count);
  });

  it('queues calls that do not fit the connection window until the server opens it', async () => {
    const { port } = await startOne();
    const watcher = await windowWatcher(port);
    const client = new RawGrpcClient(watcher.port);
    clients.push(client);
    // 1,000 calls of ~1 KB at once: about 15 times the connection window, all queued in one turn.
    const value = 'w'.repeat(1000);
    const replies = await within(
      Promise.all(Array.from({ length: 1000 }, (_, i) => client.put(`burst-${i % 10}`, `c${i}`, value, `burst-${i}`))),
      60_000,
      'the burst of 1,000 Puts',
    );
    expect(new Set(replies.map((r) => r.ts)).size).toBe(1000);
    expect(watcher.seen.dataBytes).toBeGreaterThan(1000 * value.length);
    expect(watcher.seen.updates).toBeGreaterThan(0);
    // nghttp2 does not enforce the window (it replenishes as it reads), so only this watcher can tell.
    expect(watcher.seen.lowest).toBeGreaterThanOrEqual(0);
  });

  it('sends a value larger than one DATA frame (16,384 octets) in several frames', async () => {
    const { client, api } = await startOne();
    // Random-looking text, so a frame boundary in the wrong place would corrupt it visibly.
    const value = Array.from({ length: 60_000 }, (_, i) => String.fromCharCode(0x61 + ((i * 7919) % 26))).join('');
    expect(value.length).toBeLessThan(MAX_VALUE_BYTES);
    const reply = await client.put('big', 'blob', value, 'req-big');
    expect(reply.ts).toMatch(HLC);
    expect(await componentValue(api, 'big', 'blob')).toBe(value);
  });

  it('rejects a bad request with INVALID_ARGUMENT and the server message, then keeps working', async () => {
    const { client } = await startOne();
    const error = await callError(client.put('', 'c', 'v', 'req-bad'));
    expect(error.code).toBe(3);
    expect(error.message).toMatch(/entity/);
    expect((await client.put('e', 'c', 'v', 'req-good')).ts).toMatch(HLC);
  });

  it('rejects an unknown method with UNIMPLEMENTED', async () => {
    const { client } = await startOne();
    expect((await callError(client.unary('/faultline.v1.Store/Nope', new Uint8Array(0)))).code).toBe(12);
    expect((await client.put('e', 'c', 'v', '')).ts).toMatch(HLC);
  });

  it('fails pending and later calls with UNAVAILABLE when the node is killed', async () => {
    const { proc, client } = await startOne();
    await client.put('warm', 'c', 'v', '');
    // The calls are written on the next tick, after SIGKILL has been sent, so most are in flight when
    // the connection drops; none may hang.
    const pending = Array.from({ length: 200 }, (_, i) => client.put('doomed', `c${i}`, 'v', `req-${i}`));
    const exited = proc.kill('SIGKILL');
    const outcomes = await within(Promise.allSettled(pending), 10_000, 'calls to the killed node');
    const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason as unknown);
    expect(failures.length).toBeGreaterThan(0);
    for (const e of failures) {
      expect(e).toBeInstanceOf(GrpcCallError);
      expect((e as GrpcCallError).code).toBe(14);
    }
    expect((await callError(client.put('after', 'c', 'v', ''))).code).toBe(14);
    await exited;
  });

  it('fails open and later calls after close()', async () => {
    const { client } = await startOne();
    await client.put('e', 'c', 'v', '');
    const open = client.put('e', 'c', 'w', '');
    client.close();
    expect((await callError(open)).code).toBe(14);
    const later = await callError(client.put('e', 'c', 'x', ''));
    expect(later.code).toBe(14);
    expect(later.message).toMatch(/closed/);
  });
});
