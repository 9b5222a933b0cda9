// Hostile input against a real node process on loopback, as a client and as a peer: every probe gets
// a clear error naming the problem, nothing it sends reaches the log unescaped or uncut, and the node
// keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, credentials, status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { meshMetadata } from '../mesh-auth.ts';
import { MeshPeer, StoreApi, clusterSpecs, removeDataDirs, startNode, type NodeProcess, type NodeSpec } from '../testing.ts';

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
