// Multi-node tests with real node processes on loopback (no mocks): replication, durability across
// SIGKILL, idempotency across retries and restarts, convergence through anti-entropy after peers could
// not reach each other, bad input, and the planted bugs that each of these tests must catch.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { MeshPeer, StoreApi, TcpProxy, clusterSpecs, freePort, removeDataDirs, startNode, waitForMesh, waitUntil, type NodeProcess, type NodeSpec } from '../testing.ts';

const procs: NodeProcess[] = [];
const clients: StoreApi[] = [];
const proxies: TcpProxy[] = [];
const specsToRemove: NodeSpec[] = [];

async function start(spec: NodeSpec): Promise<{ proc: NodeProcess; api: StoreApi }> {
  const proc = await startNode(spec);
  procs.push(proc);
  const api = new StoreApi(spec.port);
  clients.push(api);
  return { proc, api };
}

async function cluster(size: number, options: { bug?: string; antiEntropyMs?: number } = {}) {
  const specs = await clusterSpecs({ size, ...options });
  specsToRemove.push(...specs);
  const started = await Promise.all(specs.map(start));
  // Relays to a peer whose connection is still being set up are dropped (anti-entropy repairs them),
  // so tests that count relays start once the mesh is connected.
  await waitForMesh(specs);
  return { specs, apis: started.map((s) => s.api), procs: started.map((s) => s.proc) };
}

async function cleanup(): Promise<void> {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  removeDataDirs(specsToRemove.splice(0));
}
afterEach(cleanup);
afterAll(cleanup);

const scanJson = async (api: StoreApi) => JSON.stringify(await api.scan());

describe('replication', () => {
  it('makes a write on one node readable on the others, with the same per-component timestamps', async () => {
    const { apis } = await cluster(3);
    const put = await apis[0].put('ship-1', 'pos', 'x=1', 'req-1');
    await apis[1].incr('ship-1', 'hits', 3, 'req-2');
    await apis[2].incr('ship-1', 'hits', -1, 'req-3');
    const expected = JSON.stringify({ pos: ['x=1', put.ts], hits: 2 });
    for (const api of apis) {
      const ok = await waitUntil(async () => {
        const { entity } = await api.get('ship-1');
        const pos = entity?.components.find((c) => c.name === 'pos');
        const hits = entity?.counters.find((c) => c.name === 'hits');
        return JSON.stringify({ pos: [pos?.value, pos?.ts], hits: hits?.value }) === expected;
      });
      expect(ok).toBe(true);
    }
    const stats = await apis[0].stats();
    expect(stats.writes).toBe(1);
    expect(stats.relaysSent).toBeGreaterThanOrEqual(2);
  });

  it('streams replicated changes to a watcher on another node', async () => {
    const { apis } = await cluster(2);
    const seen: string[] = [];
    const cancel = apis[1].watch('w-', (e) => seen.push(`${e.entity}/${e.component}=${e.value}@${e.origin}`));
    await waitUntil(async () => {
      await apis[0].put('w-probe', 'c', String(Math.random()), '');
      return seen.length > 0;
    });
    await apis[0].put('w-1', 'name', 'alpha', 'req-w');
    expect(await waitUntil(() => seen.includes('w-1/name=alpha@n1'))).toBe(true);
    cancel();
  });

  it('drops and counts events for a watcher that does not read, and tells it how many it lost', async () => {
    const { apis } = await cluster(1);
    const call = apis[0].client.watch({ entityPrefix: 'slow-', buffer: 16 });
    const events: { entity: string; droppedBefore: number }[] = [];
    call.on('data', (e: { entity: string; droppedBefore: number }) => events.push(e));
    call.on('error', () => {});
    call.pause();
    // Enough data to fill the HTTP/2 flow-control windows and the stream buffers, then the watcher's 16.
    const value = 'x'.repeat(4096);
    for (let round = 0; round < 10 && (await apis[0].stats()).watcherDrops === 0; round++) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => apis[0].put(`slow-${round}-${i}`, 'blob', value)));
    }
    expect((await apis[0].stats()).watcherDrops).toBeGreaterThan(0);
    call.resume();
    // Until the backlog has drained, a new event may be dropped too (and counted), so keep writing
    // until one arrives: then the events report exactly the drops the node counted.
    let n = 0;
    expect(
      await waitUntil(async () => {
        await apis[0].put('slow-last', 'blob', `end-${n++}`);
        return events.some((e) => e.entity === 'slow-last');
      }),
    ).toBe(true);
    expect(events.reduce((t, e) => t + e.droppedBefore, 0)).toBe((await apis[0].stats()).watcherDrops);
    call.cancel();
  });

  it('keeps merging max-wins as a maximum across nodes', async () => {
    const { apis } = await cluster(2);
    await apis[0].put('t', 'threat', '7', 'a', 'max');
    await apis[1].put('t', 'threat', '3', 'b', 'max');
    for (const api of apis) {
      expect(await waitUntil(async () => (await api.get('t')).entity?.components[0]?.value === '7')).toBe(true);
    }
  });

  it('catches the planted bug threat-lww: a newer lower value replaces the maximum', async () => {
    const { apis } = await cluster(2, { bug: 'threat-lww' });
    await apis[0].put('t', 'threat', '7', 'a', 'max');
    await waitUntil(async () => (await apis[1].get('t')).found);
    expect((await apis[1].put('t', 'threat', '3', 'b', 'max')).value).toBe('3');
    expect(await waitUntil(async () => (await apis[0].get('t')).entity?.components[0]?.value === '3')).toBe(true);
  });
});

/** Fires `count` concurrent writes with request ids and kills the node (SIGKILL) while more are in flight. */
async function writeThenKill(api: StoreApi, proc: NodeProcess, count: number) {
  const acked: { key: string; value: string; ts: string }[] = [];
  let incrAcked = 0;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    inflight.push(api.put(`k${i % 50}`, `c${i}`, `v${i}`, `put-${i}`).then((r) => acked.push({ key: `k${i % 50}/c${i}`, value: `v${i}`, ts: r.ts })).catch(() => {}));
    inflight.push(api.incr('counter', 'n', 1, `incr-${i}`).then(() => (incrAcked += 1)).catch(() => {}));
  }
  // Kill as soon as half the puts were acknowledged, so the rest are still in flight.
  await waitUntil(() => acked.length >= count / 2, 20_000, 1);
  await proc.kill('SIGKILL');
  await Promise.all(inflight);
  return { acked, incrAcked };
}

describe('durability across SIGKILL', () => {
  it('restarts with every acknowledged write and its request-id table', async () => {
    const { specs, apis, procs: [proc] } = await cluster(1);
    const { acked, incrAcked } = await writeThenKill(apis[0], proc, 400);
    expect(acked.length).toBeGreaterThan(0);
    const { api } = await start(specs[0]);
    const scan = await api.scan();
    const present = new Map<string, string>();
    for (const e of scan) for (const c of e.components) present.set(`${e.id}/${c.name}`, `${c.value}@${c.ts}`);
    const missing = acked.filter((w) => present.get(w.key) !== `${w.value}@${w.ts}`);
    expect(missing).toEqual([]);
    const counter = (await api.get('counter')).entity?.counters[0]?.value ?? 0;
    expect(counter).toBeGreaterThanOrEqual(incrAcked);
    // The request-id table survived: retrying every increment changes nothing for those already applied.
    const retries = await Promise.all(Array.from({ length: 400 }, (_, i) => api.incr('counter', 'n', 1, `incr-${i}`)));
    const applied = retries.filter((r) => !r.duplicate).length;
    expect(counter + applied).toBe(400);
    expect((await api.get('counter')).entity?.counters[0]?.value).toBe(400);
    const again = await api.put('k0', 'c0', 'v0', 'put-0');
    if (acked.some((w) => w.key === 'k0/c0')) expect(again.duplicate).toBe(true);
  });

  it('keeps everything through log compaction into snapshots', async () => {
    const specs = await clusterSpecs({ size: 1 });
    specsToRemove.push(...specs);
    const spec = { ...specs[0], extraArgs: ['--compact-log-bytes', '4096'] };
    const { api, proc } = await start(spec);
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => api.put(`s${i}`, 'r', `round-${round}`, `s-${round}-${i}`)));
      await new Promise((r) => setTimeout(r, 1100)); // the node checks the log size once a second
    }
    expect(proc.output).toMatch(/compacted the log into a snapshot/);
    await proc.kill('SIGKILL');
    const { api: after } = await start(spec);
    const scan = await after.scan();
    expect(scan.length).toBe(100);
    expect(scan.every((e) => e.components[0].value === 'round-3')).toBe(true);
    expect((await after.put('s1', 'r', 'round-0', 's-0-1')).duplicate).toBe(true);
  });

  it('catches the planted bug ack-before-fsync: acknowledged writes are lost', async () => {
    const { specs, apis, procs: [proc] } = await cluster(1, { bug: 'ack-before-fsync' });
    // The bug writes its buffer to the log every 2 s, and a write that starts while requests keep coming
    // goes on until the buffer is empty: if that timer fires between the first acknowledged write and
    // the kill, every acknowledged write reaches the file and none is lost. So start right after one of
    // those writes (seen as the log file growing); the writes and the kill then fit in the next 2 s.
    const dir = specs[0].dataDir;
    const logBytes = () => readdirSync(dir).filter((f) => f.startsWith('log-')).reduce((t, f) => t + statSync(join(dir, f)).size, 0);
    const flushed = logBytes();
    await apis[0].put('flush-probe', 'c', 'v');
    expect(await waitUntil(() => logBytes() > flushed, 5000, 2)).toBe(true);
    const { acked } = await writeThenKill(apis[0], proc, 400);
    const { api } = await start(specs[0]);
    const scan = await api.scan();
    const present = new Set(scan.flatMap((e) => e.components.map((c) => `${e.id}/${c.name}`)));
    expect(acked.filter((w) => !present.has(w.key)).length).toBeGreaterThan(0);
  });
});

describe('durability of replicated writes', () => {
  /**
   * n1 writes a burst; as soon as n2 shows the last write (so a client could have read them all), n2 is
   * SIGKILLed and restarted with anti-entropy off, so only its own log can bring the values back.
   */
  async function readThenKill(bug?: string): Promise<{ shown: number; kept: number }> {
    const { specs, apis, procs } = await cluster(2, { bug, antiEntropyMs: 600_000 });
    const keys = Array.from({ length: 50 }, (_, i) => `r${i}`);
    await Promise.all(keys.map((k) => apis[0].put(k, 'c', `v-${k}`)));
    expect(await waitUntil(async () => (await apis[1].scan()).length === keys.length, 5000, 5)).toBe(true);
    await procs[1].kill('SIGKILL');
    const spec = { ...specs[1], peers: {} };
    const { api } = await start(spec);
    return { shown: keys.length, kept: (await api.scan()).length };
  }

  it('makes a replicated write visible only once it is durable, so a SIGKILL cannot take back what was read', async () => {
    const r = await readThenKill();
    expect(r.kept).toBe(r.shown);
  });

  it('catches the planted bug remote-before-durable: values read before the kill are gone after it', async () => {
    const r = await readThenKill('remote-before-durable');
    expect(r.kept).toBeLessThan(r.shown);
  });
});

describe('idempotency', () => {
  async function retryTwice(bug?: string) {
    const { apis } = await cluster(2, { bug });
    const first = await apis[0].incr('acct', 'balance', 10, 'pay-1');
    const second = await apis[0].incr('acct', 'balance', 10, 'pay-1');
    const put1 = await apis[0].put('acct', 'owner', 'ann', 'own-1');
    const put2 = await apis[0].put('acct', 'owner', 'ann', 'own-1');
    // The other node must converge to the same value.
    await waitUntil(async () => (await apis[1].get('acct')).entity?.counters[0]?.value === second.value);
    return { first, second, put1, put2, remote: (await apis[1].get('acct')).entity?.counters[0]?.value };
  }

  it('applies a retried request id once', async () => {
    const r = await retryTwice();
    expect(r.first).toEqual({ value: 10, duplicate: false });
    expect(r.second).toEqual({ value: 10, duplicate: true });
    expect(r.put2).toEqual({ ...r.put1, duplicate: true });
    expect(r.remote).toBe(10);
  });

  it('catches the planted bug no-dedupe: the retry is applied again', async () => {
    const r = await retryTwice('no-dedupe');
    expect(r.second).toEqual({ value: 20, duplicate: false });
    expect(r.remote).toBe(20);
  });

  it('refuses to reuse a request id for a different operation', async () => {
    const { apis } = await cluster(1);
    await apis[0].put('e', 'a', 'v', 'same-id');
    await expect(apis[0].put('e', 'b', 'v', 'same-id')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});

describe('anti-entropy', () => {
  /** Two nodes whose mesh traffic goes through proxies we can block: a real loss of connectivity. */
  async function partitionedPair(bug?: string) {
    const [p1, p2, proxyPort1, proxyPort2] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const specs = await clusterSpecs({ size: 2, bug, antiEntropyMs: 100 });
    specsToRemove.push(...specs);
    const toN1 = new TcpProxy(p1);
    const toN2 = new TcpProxy(p2);
    proxies.push(toN1, toN2);
    await toN1.start(proxyPort1);
    await toN2.start(proxyPort2);
    toN1.block();
    toN2.block();
    const n1 = await start({ ...specs[0], port: p1, peers: { n2: proxyPort2 } });
    const n2 = await start({ ...specs[1], port: p2, peers: { n1: proxyPort1 } });
    return { n1: n1.api, n2: n2.api, heal: () => (toN1.unblock(), toN2.unblock()) };
  }

  async function divergeThenHeal(bug?: string) {
    const { n1, n2, heal } = await partitionedPair(bug);
    await Promise.all(Array.from({ length: 50 }, (_, i) => n1.put(`a${i}`, 'side', 'n1', `a-${i}`)));
    await Promise.all(Array.from({ length: 50 }, (_, i) => n2.put(`b${i}`, 'side', 'n2', `b-${i}`)));
    await n1.put('shared', 'x', 'from-n1', 's1');
    await n2.put('shared', 'x', 'from-n2', 's2');
    await n1.incr('shared', 'count', 5, 'c1');
    await n2.incr('shared', 'count', 7, 'c2');
    expect(await scanJson(n1)).not.toBe(await scanJson(n2));
    heal();
    return { n1, n2 };
  }

  it('converges after the nodes could not reach each other, although every relay was lost', async () => {
    const { n1, n2 } = await divergeThenHeal();
    expect(await waitUntil(async () => (await scanJson(n1)) === (await scanJson(n2)), 30_000)).toBe(true);
    const scan = await n1.scan();
    expect(scan.length).toBe(101);
    const shared = scan.find((e) => e.id === 'shared')!;
    expect(shared.counters[0].value).toBe(12);
    const s1 = await n1.stats();
    const s2 = await n2.stats();
    // Every relay during the partition was dropped; anti-entropy repaired all 103 keys on each side
    // (50 entities and 1 component + 1 counter share written on the other side).
    expect(s1.relaysDropped).toBeGreaterThanOrEqual(52);
    expect(s2.relaysDropped).toBeGreaterThanOrEqual(52);
    expect(s1.keysRepaired + s2.keysRepaired).toBeGreaterThanOrEqual(103);
    expect(s1.antiEntropyRounds + s2.antiEntropyRounds).toBeGreaterThan(0);
  });

  it('catches the planted bug no-anti-entropy: replicas stay diverged after the partition heals', async () => {
    const { n1, n2 } = await divergeThenHeal('no-anti-entropy');
    // New writes after healing do replicate (the relays work)...
    await waitUntil(async () => {
      await n1.put('after-heal', 'probe', 'x', '');
      return (await n2.get('after-heal')).found;
    });
    expect((await n2.get('after-heal')).found).toBe(true);
    // ...but what was written during the partition is never repaired.
    expect((await n2.get('a0')).found).toBe(false);
    expect((await n1.get('b0')).found).toBe(false);
    expect((await n1.stats()).antiEntropyRounds).toBe(0);
  });
});

describe('hybrid logical clock across nodes', () => {
  /** Relays, as peer n2, a write stamped 5 minutes ahead of n1's wall clock (within --max-offset-ms), then writes the same key on n1. */
  async function writeAfterFutureRelay(bug?: string) {
    const specs = await clusterSpecs({ size: 2, bug });
    specsToRemove.push(...specs);
    const { api } = await start(specs[0]); // n2 is never started: this test speaks for it
    const future = Date.now() + 300_000;
    const mesh = new MeshPeer(specs[0].port, 'n2', specs[0].meshSecret);
    await mesh.relay([[{ origin: 'n2', seq: 1, entity: 'clock', component: 'owner', value: 'from-the-future', kind: 'lww', ts: { wallMs: future, logical: 0, node: 'n2' } }]]);
    mesh.close();
    // The relayed write becomes visible once n1 has made it durable; the local write must come after.
    expect(await waitUntil(async () => (await api.get('clock')).found, 5000, 5)).toBe(true);
    const put = await api.put('clock', 'owner', 'written-after', 'after-1');
    return { put, stats: await api.stats(), future };
  }

  it('orders a write after a remote timestamp it has seen, and counts the skew', async () => {
    const { put, stats, future } = await writeAfterFutureRelay();
    expect(put.value).toBe('written-after');
    expect(put.ts > `${String(future).padStart(15, '0')}:00000:n2`).toBe(true);
    expect(stats.skewEvents).toBe(1);
  });

  it('catches the planted bug wall-clock-lww: a later write loses to a skewed earlier one', async () => {
    const { put, stats } = await writeAfterFutureRelay('wall-clock-lww');
    expect(put.value).toBe('from-the-future');
    expect(stats.skewEvents).toBe(1);
  });
});

describe('mesh efficiency', () => {
  async function messagesPerWrite(bug?: string): Promise<number> {
    // Anti-entropy effectively off (one round per 10 minutes) so only relays count.
    const { apis } = await cluster(3, { bug, antiEntropyMs: 600_000 });
    // Wait until every node's mesh channels are connected, so no relay is dropped.
    await waitUntil(async () => {
      const id = `probe-${Math.random()}`;
      await apis[0].put(id, 'p', 'x', '');
      await apis[1].put(id, 'q', 'x', '');
      await apis[2].put(id, 'r', 'x', '');
      const got = await Promise.all(apis.map((a) => a.get(id)));
      return got.every((g) => g.entity?.components.length === 3);
    });
    const before = await Promise.all(apis.map((a) => a.stats()));
    for (let i = 0; i < 30; i++) await apis[0].put(`m${i}`, 'v', `${i}`, `m-${i}`);
    await waitUntil(async () => (await Promise.all(apis.map((a) => a.get('m29')))).every((g) => g.found));
    // Let any forwarding settle (with the bug, copies bounce for up to 3 hops): wait until the total
    // number of mesh messages stops changing.
    let all = await Promise.all(apis.map((a) => a.stats()));
    const total = (xs: typeof all) => xs.reduce((t, s) => t + s.meshMessages + s.relaysReceived, 0);
    await waitUntil(async () => {
      const previous = total(all);
      all = await Promise.all(apis.map((a) => a.stats()));
      return total(all) === previous;
    }, 20_000, 200);
    const sent = all.reduce((t, s) => t + s.meshMessages, 0) - before.reduce((t, s) => t + s.meshMessages, 0);
    expect(all[0].writes - before[0].writes).toBe(30);
    return sent / 30;
  }

  it('relays each write once to each peer and suppresses echoes', async () => {
    const perWrite = await messagesPerWrite();
    // Exactly one message to each of the two peers per write, and nothing forwarded.
    expect(perWrite).toBe(2);
  });

  it('catches the planted bug echo-relay: messages per write blow up', async () => {
    const perWrite = await messagesPerWrite('echo-relay');
    // 2 to the peers, 4 re-forwards of those, 8 of theirs: 14 instead of 2 (plus a few forwards of the
    // probe writes still bouncing when the count started), and bounded by the hop limit.
    expect(perWrite).toBeGreaterThanOrEqual(14);
    expect(perWrite).toBeLessThan(16);
  });
});

describe('bad input', () => {
  it('answers every bad request with a clear error and keeps serving', async () => {
    const { specs, apis, procs: [proc] } = await cluster(2);
    const api = apis[0];
    const cases: [Promise<unknown>, number, RegExp][] = [
      [api.put('', 'c', 'v'), status.INVALID_ARGUMENT, /entity must be a non-empty/],
      [api.put('e', 'c', ''), status.INVALID_ARGUMENT, /value must be a non-empty/],
      [api.put('e'.repeat(257), 'c', 'v'), status.INVALID_ARGUMENT, /entity is 257 bytes; the limit is 256/],
      [api.put('e', 'c', 'v'.repeat(65 * 1024)), status.INVALID_ARGUMENT, /limit is 65536 bytes/],
      [api.put('e', 'c', 'v', '', 'median'), status.INVALID_ARGUMENT, /kind "median" is unknown/],
      [api.put('e', 'threat', 'high', '', 'max'), status.INVALID_ARGUMENT, /not a decimal number/],
      [api.incr('e', '', 1), status.INVALID_ARGUMENT, /counter must be a non-empty/],
      [api.get(''), status.INVALID_ARGUMENT, /entity/],
    ];
    for (const [call, code, message] of cases) {
      const error = (await call.then(() => undefined, (e: ServiceError) => e)) as ServiceError | undefined;
      expect(error?.code).toBe(code);
      expect(error?.details).toMatch(message);
    }
    await api.put('e', 'threat', '5', '', 'max');
    await expect(api.delete('e', 'threat')).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });

    const mesh = new MeshPeer(specs[0].port, 'n2', specs[0].meshSecret);
    const intruder = new MeshPeer(specs[0].port, 'intruder', specs[0].meshSecret);
    await expect(intruder.relay([[]])).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(mesh.relay([[{ origin: 'n2', seq: 1, entity: 'e', component: 'c', value: 'v', kind: 'lww' }]])).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/writes\[0\]\.ts is missing/),
    });
    await expect(mesh.digest({ buckets: 3 })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(new MeshPeer(specs[0].port, 'nobody', specs[0].meshSecret).repair({ buckets: [1] })).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    mesh.close();
    intruder.close();

    expect(proc.alive).toBe(true);
    expect((await api.health()).ok).toBe(true);
    expect((await api.put('e', 'c', 'fine')).duplicate).toBe(false);
  });

  it('refuses bad configuration with exit code 254 and a message naming the option', async () => {
    const { spawnSync } = await import('node:child_process');
    const main = new URL('../main.ts', import.meta.url).pathname;
    const run = (args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
    const bug = run(['--id', 'n1', '--data-dir', '/tmp/x', '--bug', 'typo']);
    expect(bug.status).toBe(254);
    expect(bug.stderr).toMatch(/Unknown `--bug` "typo"; valid names: no-anti-entropy, wall-clock-lww, ack-before-fsync, no-dedupe, threat-lww, echo-relay/);
    const ae = run(['--id', 'n1', '--data-dir', '/tmp/x', '--anti-entropy-ms', 'soon']);
    expect(ae.status).toBe(254);
    expect(ae.stderr).toMatch(/`--anti-entropy-ms` to be an integer from 10 to 600000, got "soon"/);
    expect(run(['--data-dir', '/tmp/x']).stderr).toMatch(/--id/);
  });
});
