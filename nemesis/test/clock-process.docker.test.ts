// Clock skew, kill and pause on a real 3-node Docker cluster: a skew shows in the node's own wall clock
// (Health) and in its peers' skew counters, a killed or paused node really stops answering and answers
// again, with its acknowledged writes, after restart or resume, and heal always works.
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../harness/cluster.ts';
import { ensureImage } from '../../harness/image.ts';
import { StoreClient, type GetReply, type PutReply } from '../../proto/gen/faultline.ts';
import { clockPackage, getClockOffset, readWallClock } from '../clock.ts';
import { callStoreOnce } from '../../harness/systems/store-mesh/client.ts';
import type { HealthReply, StatsReply } from '../../proto/gen/faultline.ts';
import type { ClusterControl } from '../types.ts';

/** A node's Stats (skewEvents counts remote timestamps too far ahead), over a fresh gRPC channel. */
function readStats(cluster: ClusterControl, node: string, timeoutMs = 5000): Promise<StatsReply> {
  return callStoreOnce<StatsReply>(node, `${cluster.nodes.find((n) => n.name === node)!.ip}:7000`, 'stats', timeoutMs);
}

/** Whether Health on a node answers within the timeout. */
async function answersHealth(cluster: ClusterControl, node: string, timeoutMs = 2000): Promise<boolean> {
  try {
    return (await callStoreOnce<HealthReply>(node, `${cluster.nodes.find((n) => n.name === node)!.ip}:7000`, 'health', timeoutMs)).ok;
  } catch {
    return false;
  }
}
import { killPackage } from '../kill.ts';
import { pausePackage } from '../pause.ts';
import { ipOf, listChain, PARTITION_CHAIN, run } from '../net.ts';
import { partitionPackage } from '../partition.ts';
import { matrixText, probeConnectivity } from '../probe.ts';
import { connectivity } from '../grudge.ts';
import { storeMesh } from '../../harness/systems/store-mesh/index.ts';

let cluster: Cluster;
const nodes = ['n1', 'n2', 'n3'];
const options = { nodes, intervalS: 1 };

function store(node: string): StoreClient {
  return new StoreClient(`${ipOf(cluster, node)}:7000`, credentials.createInsecure());
}

async function put(node: string, entity: string, value: string): Promise<PutReply> {
  const client = store(node);
  try {
    return await new Promise((resolve, reject) =>
      client.put({ entity, component: 'c', value, requestId: `${entity}-${value}`, kind: '' }, (e: ServiceError | null, r: PutReply) => (e ? reject(e) : resolve(r))),
    );
  } finally {
    client.close();
  }
}

async function get(node: string, entity: string): Promise<GetReply> {
  const client = store(node);
  try {
    return await new Promise((resolve, reject) => client.get({ entity }, (e: ServiceError | null, r: GetReply) => (e ? reject(e) : resolve(r))));
  } finally {
    client.close();
  }
}

/** The skew of a node's wall clock against ours must be within the call's round trip plus slack. */
async function expectSkew(node: string, offsetMs: number): Promise<void> {
  const reading = await readWallClock(cluster, node);
  expect(Math.abs(reading.skewMs - offsetMs), `${node} skew ${reading.skewMs} ms, wanted ${offsetMs} ms`).toBeLessThan(reading.rttMs / 2 + 250);
}

beforeAll(async () => {
  const image = await ensureImage();
  cluster = await Cluster.start({ system: storeMesh, runId: `nemesis-clock-${process.pid}`, nodes: 3, image });
});

afterAll(async () => {
  await cluster?.teardown();
});

describe('clock on Docker', () => {
  const pkg = clockPackage(options);
  beforeAll(() => pkg.nemesis.setup(cluster));

  it('finds the clock file the cluster creates, with no skew at first', async () => {
    expect(await pkg.unsupported(cluster)).toBeUndefined();
    for (const node of nodes) await expectSkew(node, 0);
  });

  it('skewing n2 by +30 s moves its wall clock 30 s ahead, not the others, and the peers count skew events', async () => {
    const before = await Promise.all(nodes.map((n) => readStats(cluster, n)));
    const done = await pkg.nemesis.invoke({ f: 'start-clock', value: { nodes: ['n2'], offsets: { n2: 30_000 } } });
    expect(done.error).toBeUndefined();
    expect(done.value.offsets).toEqual({ n2: 30_000 });
    expect(await getClockOffset(cluster, 'n2')).toBe(30_000);
    await expectSkew('n2', 30_000);
    await expectSkew('n1', 0);
    await expectSkew('n3', 0);
    // A write on n2 carries a timestamp 30 s ahead; the peers that receive it count a skew event.
    const ack = await put('n2', 'skewed', 'v1');
    expect(Number(ack.ts.slice(0, 15))).toBeGreaterThan(Date.now() + 25_000);
    let after = before;
    for (let i = 0; i < 100 && !(after[0].skewEvents > before[0].skewEvents && after[2].skewEvents > before[2].skewEvents); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await Promise.all(nodes.map((n) => readStats(cluster, n)));
    }
    expect(after[0].skewEvents).toBeGreaterThan(before[0].skewEvents);
    expect(after[2].skewEvents).toBeGreaterThan(before[2].skewEvents);
  });

  it('bump adds a fractional jump to the current offset, and strobe returns to it', async () => {
    const bumped = await pkg.nemesis.invoke({ f: 'bump-clock', value: { nodes: ['n1', 'n2'], deltaMs: -1500 } });
    expect(bumped.error).toBeUndefined();
    expect(bumped.value.offsets).toEqual({ n1: -1500, n2: 28_500 });
    await expectSkew('n1', -1500);
    await expectSkew('n2', 28_500);
    const strobed = await pkg.nemesis.invoke({ f: 'strobe-clock', value: { nodes: ['n3'], deltaMs: 5000, periodMs: 100, durationMs: 500 } });
    expect(strobed.error).toBeUndefined();
    expect(strobed.value.flips).toBeGreaterThanOrEqual(2);
    // Every step is recorded, alternating between the base and base + delta, within the strobe.
    const steps = strobed.value.steps as { atMs: number; offsets: Record<string, number> }[];
    expect(steps).toHaveLength(strobed.value.flips as number);
    expect(steps.map((st) => st.offsets.n3)).toEqual(steps.map((_, i) => (i % 2 === 0 ? 5000 : 0)));
    expect(steps.every((st, i) => st.atMs <= (strobed.value.elapsedMs as number) && (i === 0 || st.atMs >= steps[i - 1].atMs))).toBe(true);
    expect(strobed.value.offsets).toEqual({ n3: 0 });
    await expectSkew('n3', 0);
  });

  it('stop resets the named nodes; heal resets every node and is idempotent', async () => {
    const stopped = await pkg.nemesis.invoke({ f: 'stop-clock', value: { nodes: ['n1'] } });
    expect(stopped.value.offsets).toEqual({ n1: 0 });
    await expectSkew('n1', 0);
    await expectSkew('n2', 28_500);
    const healed = await pkg.nemesis.heal();
    expect(healed).toMatchObject({ ok: true, errors: [], value: { offsets: { n1: 0, n2: 0, n3: 0 } } });
    for (const node of nodes) await expectSkew(node, 0);
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });

  it('a bad op names the problem', async () => {
    const bad = await pkg.nemesis.invoke({ f: 'start-clock', value: { nodes: ['n1'], offsets: {} } });
    expect(bad.error).toMatch(/no offset \(ms\) for n1/);
    const unknown = await pkg.nemesis.invoke({ f: 'start-clock', value: { nodes: ['n9'], offsets: { n9: 1 } } });
    expect(unknown.error).toMatch(/unknown node "n9"; the cluster has: n1, n2, n3/);
  });
});

describe('kill and pause on Docker', () => {
  const kill = killPackage(options);
  const pause = pausePackage(options);
  beforeAll(async () => {
    await kill.nemesis.setup(cluster);
    await pause.nemesis.setup(cluster);
  });

  it('kill: the node stops answering, and after restart answers with its acknowledged write', async () => {
    await put('n3', 'durable', 'before-kill');
    const pidBefore = (await run(cluster, 'n3', ['cat', '/proc/1/stat'])).stdout;
    const killed = await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n3'] } });
    expect(killed.error).toBeUndefined();
    expect(await answersHealth(cluster, 'n3', 1000)).toBe(false);
    expect(await answersHealth(cluster, 'n1', 2000)).toBe(true);
    const restarted = await kill.nemesis.invoke({ f: 'stop-kill', value: { nodes: ['n3'] } });
    expect(restarted.error).toBeUndefined();
    expect(await answersHealth(cluster, 'n3', 2000)).toBe(true);
    expect((await run(cluster, 'n3', ['cat', '/proc/1/stat'])).stdout).not.toBe(pidBefore);
    const read = await get('n3', 'durable');
    expect(read.found).toBe(true);
    expect(read.entity?.components.find((c) => c.name === 'c')?.value).toBe('before-kill');
  });

  it('kill: heal restarts every node killed, also after a failed op', async () => {
    const bad = await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n2', 'n8'] } });
    expect(bad.error).toMatch(/unknown node "n8"/);
    await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n1', 'n2'] } });
    expect(await answersHealth(cluster, 'n2', 1000)).toBe(false);
    const healed = await kill.nemesis.heal();
    expect(healed).toMatchObject({ ok: true, errors: [], value: { nodes: ['n1', 'n2'], affected: [] } });
    for (const node of nodes) expect(await answersHealth(cluster, node, 2000)).toBe(true);
    expect((await kill.nemesis.heal()).ok).toBe(true);
  });

  it('pause: the node stops answering, and answers again after resume; heal resumes the rest', async () => {
    const paused = await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n1', 'n2'] } });
    expect(paused.error).toBeUndefined();
    expect(await answersHealth(cluster, 'n2', 1000)).toBe(false);
    expect(await answersHealth(cluster, 'n3', 2000)).toBe(true);
    const resumed = await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n2'] } });
    expect(resumed.error).toBeUndefined();
    expect(resumed.value.affected).toEqual(['n1']);
    expect(await answersHealth(cluster, 'n2', 2000)).toBe(true);
    expect(await answersHealth(cluster, 'n1', 1000)).toBe(false);
    const healed = await pause.nemesis.heal();
    expect(healed).toMatchObject({ ok: true, value: { nodes: ['n1'], affected: [] } });
    expect(await answersHealth(cluster, 'n1', 2000)).toBe(true);
  });

  it('pause then kill on one node: the kill heal restarts it, and the pause heal finds nothing left to resume', async () => {
    expect((await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n2'] } })).error).toBeUndefined();
    expect((await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n2'] } })).error).toBeUndefined();
    // The runner heals process faults first, kill before pause.
    expect(await kill.nemesis.heal()).toMatchObject({ ok: true, errors: [] });
    expect(await pause.nemesis.heal()).toMatchObject({ ok: true, errors: [] });
    expect(await answersHealth(cluster, 'n2', 2000)).toBe(true);
  });

  it('a network heal counts a killed node as healed, and the node restarts without faultline rules', async () => {
    const partition = partitionPackage(options);
    await partition.nemesis.setup(cluster);
    await partition.nemesis.invoke({ f: 'start-partition', value: { nodes: ['n1', 'n2'], grudge: { n1: ['n2'], n2: ['n1'] } } });
    await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n1'] } });
    const networkHeal = await partition.nemesis.heal();
    expect(networkHeal).toMatchObject({ ok: true, errors: [] });
    expect((await kill.nemesis.heal()).ok).toBe(true);
    expect((await run(cluster, 'n1', ['iptables-save'])).stdout).not.toContain('FAULTLINE');
    expect(await listChain(cluster, 'n2', PARTITION_CHAIN)).toEqual([]);
    const probed = await probeConnectivity(cluster);
    expect(matrixText(probed.tcp)).toBe(matrixText(connectivity(nodes, {})));
    await partition.nemesis.teardown();
  });
});
