// Hostile input against a real node process on loopback, as a client and as a peer: every probe gets
// a clear error naming the problem, nothing it sends reaches the log unescaped or uncut, and the node
// keeps serving.
import { readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, credentials, status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { meshMetadata } from '../mesh-auth.ts';
import { StoreClient } from '../../proto/gen/faultline.ts';
import { MeshPeer, StoreApi, clusterSpecs, removeDataDirs, startNode, waitForMesh, waitUntil, type NodeProcess, type NodeSpec } from '../testing.ts';

let spec: NodeSpec;
let proc: NodeProcess;
let api: StoreApi;
let n2: MeshPeer;

beforeAll(async () => {
  [spec] = await clusterSpecs({ size: 2 });
  proc = await startNode(spec);
  api = new StoreApi(spec.port);
  n2 = new MeshPeer(spec.port, 'n2', spec.meshSecret);
});

afterAll(async () => {
  api?.close();
  n2?.close();
  await proc?.kill('SIGKILL');
  if (spec) removeDataDirs([spec]);
});

const failure = (call: Promise<unknown>) => call.then(() => undefined, (e: ServiceError) => e);

describe('ids', () => {
  it('rejects ids with control characters, so entity a / counter b\\0c and entity a\\0b / counter c cannot share a key', async () => {
    const [one, two] = await Promise.all([failure(api.incr('a', 'b\u0000c', 1)), failure(api.incr('a\u0000b', 'c', 1))]);
    expect(one?.code).toBe(status.INVALID_ARGUMENT);
    expect(one?.details).toBe('counter "b\\u0000c" contains the control character U+0000 at index 1; ids are text without control characters');
    expect(two?.code).toBe(status.INVALID_ARGUMENT);
    expect(two?.details).toMatch(/^entity "a\\u0000b" contains the control character U\+0000/);
    for (const bad of ['tab\there', 'line\nbreak', 'del\u007f', 'c1\u0085']) {
      expect((await failure(api.put(bad, 'c', 'v')))?.code).toBe(status.INVALID_ARGUMENT);
    }
    // A peer cannot bring one in either.
    await expect(n2.relay([[{ origin: 'n2', seq: 1, entity: 'x\u0000y', component: 'c', value: 'v', kind: 'lww', ts: { wallMs: Date.now(), logical: 0, node: 'n2' } }]])).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/writes\[0\]\.entity "x\\u0000y" contains the control character/),
    });
    expect((await api.get('a')).found).toBe(false);
  });
});

describe('errors and logs repeat input only escaped and cut short', () => {
  it('answers a 100 KB kind with a short INVALID_ARGUMENT, not a protocol error', async () => {
    const error = await failure(api.put('e', 'c', 'v', '', 'k'.repeat(100_000)));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toBe(`kind "${'k'.repeat(64)}…" (100000 characters) is unknown; use "lww" (the default, also when empty) or "max"`);
  });

  it('logs a 100 KB field from a peer as a short line', async () => {
    const kind = 'q'.repeat(100_000);
    // Wait out the throttle of the rejection log line, so this rejection is logged.
    await new Promise((r) => setTimeout(r, 5100));
    await expect(n2.relay([[{ origin: 'n2', seq: 1, entity: 'e', component: 'c', value: 'v', kind, ts: { wallMs: Date.now(), logical: 0, node: 'n2' } }]])).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^kind "q{64}…" \(100000 characters\) is unknown/),
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(proc.output).toContain('(100000 characters) is unknown');
    expect(Math.max(...proc.output.split('\n').map((line) => line.length))).toBeLessThan(2000);
  });

  it('keeps a sender with a newline from forging a log line, and 2,000 unknown senders from writing 2,000 lines', async () => {
    const forged = 'x\n2026-01-01T00:00:00.000Z n1 error FORGED by a client';
    const before = proc.output.split('\n').length;
    const outsider = new MeshPeer(spec.port, 'n2', undefined);
    await expect(outsider.relay([[]], forged)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    // A member naming another sender in its batch is refused, and its batch sender is quoted.
    await expect(n2.relay([[]], forged)).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: expect.stringContaining('"x\\n2026-01-01T00:00:00.000Z n1 error FORGED by a client"') });
    await Promise.all(Array.from({ length: 2000 }, (_, i) => outsider.relay([[]], `intruder-${i}`).catch(() => undefined)));
    outsider.close();
    await new Promise((r) => setTimeout(r, 200));
    const lines = proc.output.split('\n').slice(before - 1);
    expect(lines.some((line) => line.startsWith('2026-01-01T00:00:00.000Z n1 error FORGED'))).toBe(false);
    expect(lines.filter((line) => /refused|rejected/.test(line)).length).toBeLessThanOrEqual(3);
    expect(proc.alive).toBe(true);
  });
});

/** Sends raw bytes as the request of a unary method, as a client that encodes its own messages would. */
function rawUnary(path: string, bytes: Uint8Array, metadata?: Metadata): Promise<Buffer> {
  const client = new Client(`127.0.0.1:${spec.port}`, credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    const done = (e: ServiceError | null, r?: Buffer) => (client.close(), e ? reject(e) : resolve(r!));
    const id = (b: Buffer) => b;
    if (metadata) client.makeUnaryRequest(path, id, id, Buffer.from(bytes), metadata, done);
    else client.makeUnaryRequest(path, id, id, Buffer.from(bytes), done);
  });
}

function rawRelay(batches: Uint8Array[]): Promise<Buffer> {
  const client = new Client(`127.0.0.1:${spec.port}`, credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    const id = (b: Buffer) => b;
    const call = client.makeClientStreamRequest('/faultline.v1.Mesh/Relay', id, id, meshMetadata(spec.meshSecret!, 'n2'), (e: ServiceError | null, r?: Buffer) => (client.close(), e ? reject(e) : resolve(r!)));
    for (const b of batches) call.write(Buffer.from(b));
    call.end();
  });
}

describe('requests that do not decode', () => {
  it('answers an integer beyond ±(2^53 − 1) with INVALID_ARGUMENT naming the field, from clients and peers', async () => {
    const incr = new BinaryWriter().tag(1, 2).string('e').tag(2, 2).string('c').tag(3, 0).int64('9007199254740993').finish();
    await expect(rawUnary('/faultline.v1.Store/Incr', incr)).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'delta is 9007199254740993, beyond ±9007199254740991 (2^53 − 1), the largest integer this service handles exactly; send a smaller value',
    });
    const share = new BinaryWriter().tag(1, 2).string('n2').tag(2, 0).int64('18014398509481984').finish();
    const write = new BinaryWriter().tag(1, 2).string('n2').tag(2, 0).uint64(1).tag(3, 2).string('e').tag(9, 2).string('n').tag(10, 2).bytes(share).finish();
    await expect(rawRelay([new BinaryWriter().tag(1, 2).string('n2').tag(2, 2).bytes(write).finish()])).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^writes\[0\]\.share\.p is 18014398509481984, beyond/),
    });
    const seq = new BinaryWriter().tag(1, 2).string('n2').tag(2, 0).uint64('9007199254740993').finish();
    await expect(rawRelay([new BinaryWriter().tag(1, 2).string('n2').tag(2, 2).bytes(seq).finish()])).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^writes\[0\]\.seq is 9007199254740993, beyond/),
    });
  });

  it('rejects invalid UTF-8 in ids instead of replacing it (66 FF and 66 FE are not one entity)', async () => {
    const put = (bytes: number[]) => new BinaryWriter().tag(1, 2).bytes(new Uint8Array(bytes)).tag(2, 2).string('c').tag(3, 2).string('v').finish();
    for (const bytes of [[0x66, 0xff], [0x66, 0xfe]]) {
      await expect(rawUnary('/faultline.v1.Store/Put', put(bytes))).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: 'entity is not valid UTF-8; strings (ids, values) must be UTF-8 text',
      });
    }
    expect((await api.scan()).some((e) => e.id.startsWith('f'))).toBe(false);
    expect(proc.alive).toBe(true);
  });
});

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'))![1]) / 1024;

describe('message size', () => {
  it('refuses a message larger than any valid request before buffering it', async () => {
    const before = rssMb();
    const big = 'x'.repeat(100 * 1024 * 1024);
    await expect(api.put('e', 'c', big)).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/larger than max \(\d+ vs 131072\)/) });
    expect(rssMb() - before).toBeLessThan(60);
    // The largest valid request still fits: a 64 KiB value with 256-byte ids.
    const id = 'i'.repeat(256);
    expect((await api.put(id, id, 'v'.repeat(64 * 1024), id)).duplicate).toBe(false);
  });

  it('limits the decompressed size of a compressed request', async () => {
    const gzip = new StoreClient(`127.0.0.1:${spec.port}`, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    const before = rssMb();
    const error = await new Promise<ServiceError | null>((resolve) =>
      gzip.put({ entity: 'e', component: 'c', value: '\u0000'.repeat(64 * 1024 * 1024), requestId: '', kind: '' }, (e) => resolve(e)),
    );
    gzip.close();
    expect(error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/decompresses to a size larger than 131072/);
    expect(rssMb() - before).toBeLessThan(60);
  });

  it('ends a call whose request stalls half-sent, instead of holding it forever', async () => {
    const session = http2Connect(`http://127.0.0.1:${spec.port}`);
    session.on('error', () => {});
    const uploads = Array.from({ length: 4 }, () => {
      const stream = session.request({ ':method': 'POST', ':path': '/faultline.v1.Store/Put', 'content-type': 'application/grpc', te: 'trailers' });
      const header = Buffer.alloc(5);
      header.writeUInt32BE(120 * 1024, 1);
      stream.write(Buffer.concat([header, Buffer.alloc(40 * 1024, 0x41)]));
      return new Promise<string | undefined>((resolve) => {
        stream.on('trailers', (t) => resolve(String(t['grpc-status'])));
        stream.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
        stream.on('close', () => resolve(undefined));
        stream.on('error', () => resolve(undefined));
      });
    });
    const began = performance.now();
    const outcome = await Promise.race([Promise.all(uploads), new Promise<'held'>((r) => setTimeout(() => r('held'), 20_000))]);
    session.destroy();
    expect(outcome).toEqual(['4', '4', '4', '4']); // DEADLINE_EXCEEDED
    expect(performance.now() - began).toBeLessThan(13_000);
    expect(proc.output).toMatch(/ended a \/faultline\.v1\.Store\/Put call whose request did not arrive whole within 10000 ms/);
  });
});

describe('mesh traffic within the message limit', () => {
  it('relays and repairs writes of 60 KB values in messages the peers accept', async () => {
    const specs = await clusterSpecs({ size: 2, antiEntropyMs: 600_000 });
    const value = (i: number) => `${i}-${'v'.repeat(60 * 1024)}`;
    const started: NodeProcess[] = [];
    const clients: StoreApi[] = [];
    try {
      for (const s of specs) started.push(await startNode(s));
      await waitForMesh(specs);
      clients.push(...specs.map((s) => new StoreApi(s.port)));
      // Relays: 40 writes of 60 KB, two at a time, become batches of one or two writes each. Two at a
      // time and not all 40 at once: 2.4 MB handed to the relay stream in one burst can back it up on
      // a loaded machine, and a backed-up relay is dropped by design (anti-entropy, here 600 s, repairs).
      for (let i = 0; i < 40; i += 2) await Promise.all([i, i + 1].map((j) => clients[0].put(`r${j}`, 'c', value(j))));
      expect(await waitUntil(async () => (await clients[1].scan()).length === 40, 10_000, 50)).toBe(true);
      expect((await clients[0].stats()).relaysDropped).toBe(0);
      // Repairs: n2 misses 40 more (it is down), then anti-entropy brings it up to date in both directions.
      await started[1].kill('SIGKILL');
      await Promise.all(Array.from({ length: 40 }, (_, i) => clients[0].put(`a${i}`, 'c', value(i))));
      const n1 = started.shift()!;
      await n1.kill('SIGKILL');
      started.push(await startNode({ ...specs[1], peers: {} }));
      await Promise.all(Array.from({ length: 40 }, (_, i) => clients[1].put(`b${i}`, 'c', value(i))));
      await started.pop()!.kill('SIGKILL');
      for (const s of specs) started.push(await startNode({ ...s, antiEntropyMs: 100 }));
      const agree = await waitUntil(async () => {
        const [x, y] = await Promise.all(clients.map((c) => c.scan()));
        return x.length === 120 && JSON.stringify(x) === JSON.stringify(y);
      }, 30_000, 200);
      expect(agree).toBe(true);
      for (const p of started) expect(p.output).not.toMatch(/larger than max/);
    } finally {
      for (const c of clients) c.close();
      await Promise.all(started.map((p) => p.kill('SIGKILL')));
      removeDataDirs(specs);
    }
  });
});
