// Faults that take effect and survive their nodes coming back, on a real 3-node Docker cluster: a
// partition's start and stop ops carry a probe that matches the grudge (verified), a node killed and
// restarted while a partition is in force gets its rules again (a restarted container has a fresh
// network namespace), and a node paused when a partition starts gets the rules when it is resumed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../harness/cluster.ts';
import { ensureImage } from '../../harness/image.ts';
import { connectivity } from '../grudge.ts';
import { killPackage } from '../kill.ts';
import { listChain, PARTITION_CHAIN } from '../net.ts';
import { checkPartition, partitionPackage } from '../partition.ts';
import { pausePackage } from '../pause.ts';
import { clockPackage } from '../clock.ts';
import { packetPackage } from '../packet.ts';
import { matrixText, PROBE_WINDOW_MS } from '../probe.ts';
import { storeMesh } from '../../harness/systems/store-mesh/index.ts';

let cluster: Cluster;
const nodes = ['n1', 'n2', 'n3'];
const options = { nodes };
const partition = partitionPackage(options);
const kill = killPackage(options);
const pause = pausePackage(options);
const clock = clockPackage(options);
const packet = packetPackage(options);
const probeMs: number[] = [];
const retried: number[] = [];

beforeAll(async () => {
  const image = await ensureImage();
  cluster = await Cluster.start({ system: storeMesh, runId: `nemesis-reapply-${process.pid}`, nodes: 3, image });
  for (const p of [kill, pause, partition, clock, packet]) await p.nemesis.setup(cluster);
});

afterAll(async () => {
  // The measured probe durations, for the README's figure.
  if (probeMs.length) console.log(`probe (window ${PROBE_WINDOW_MS} ms) took ${probeMs.join(', ')} ms; checks that needed more than one probe: ${retried.length ? retried.join(', ') + ' probes' : 'none'}`);
  for (const p of [kill, pause, partition, clock, packet]) await p.nemesis.teardown().catch(() => undefined);
  await cluster?.teardown();
});

describe('verified faults on Docker', () => {
  it('a partition start records a probe that matches the grudge, and its stop one with full connectivity', async () => {
    const grudge = { n1: ['n2', 'n3'], n2: ['n1'], n3: ['n1'] };
    const started = await partition.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge } });
    expect(started.error).toBeUndefined();
    expect(started.value).toMatchObject({ verified: true, probe: connectivity(nodes, grudge) });
    expect(started.value.unverified).toBeUndefined();
    probeMs.push(started.value.probeMs as number);
    const stopped = await partition.nemesis.invoke({ f: 'stop-partition', value: { nodes } });
    expect(stopped.error).toBeUndefined();
    expect(stopped.value).toMatchObject({ verified: true, probe: connectivity(nodes, {}) });
    probeMs.push(stopped.value.probeMs as number);
  });

  it('the partition check is reliable at its window: ten checks in a row match the grudge', async () => {
    const grudge = { n2: ['n3'] };
    await partition.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge } });
    for (let i = 0; i < 10; i++) {
      // A single probe can miss a pair on a loaded machine (a container whose probe started too late);
      // the check probes a silent pair again, so it is what the ops rely on.
      const check = await checkPartition(cluster, grudge);
      probeMs.push(check.probeMs ?? -1);
      if (check.probeAttempts) retried.push(check.probeAttempts);
      expect(check.unverified, `check ${i}`).toBeUndefined();
      expect(matrixText(check.probe!), `check ${i}`).toBe(matrixText(connectivity(nodes, grudge)));
    }
    expect((await partition.nemesis.heal()).ok).toBe(true);
  });

  it('a node killed and restarted while a partition is in force gets its rules again, and the probe after restart shows the cut', async () => {
    const grudge = { n3: ['n1'], n1: ['n3'] };
    expect((await partition.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge } })).value.verified).toBe(true);
    const killed = await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n3'] } });
    expect(killed.value).toMatchObject({ verified: true });
    expect(await cluster.state('n3')).toBe('stopped');
    const restarted = await kill.nemesis.invoke({ f: 'stop-kill', value: { nodes: ['n3'] } });
    expect(restarted.error).toBeUndefined();
    expect(restarted.value.verified).toBe(true);
    const reapplied = (restarted.value.reapplied as Record<string, Record<string, Record<string, unknown>>>).n3.partition;
    // Its own rules, read back (the other nodes' rules still name it: addresses are fixed); the probe below
    // shows the cut.
    expect(reapplied).toMatchObject({ node: 'n3', grudge, verified: true, rules: 1 });
    expect(await listChain(cluster, 'n3', PARTITION_CHAIN)).toHaveLength(1);
    const probed = await checkPartition(cluster, grudge);
    expect(matrixText(probed.probe!)).toBe(matrixText(connectivity(nodes, grudge)));
    expect((await partition.nemesis.invoke({ f: 'stop-partition', value: { nodes } })).value.verified).toBe(true);
  });

  it('a partition started while a node is paused is deferred there, and the node gets the rules when resumed', async () => {
    const grudge = { n2: ['n1', 'n3'], n1: ['n2'], n3: ['n2'] };
    expect((await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n2'] } })).value).toMatchObject({ verified: true });
    expect(await cluster.state('n2')).toBe('paused');
    const started = await partition.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge } });
    expect(started.error).toBeUndefined();
    // n2 could neither get its rules nor run the probe; the others are probed and match.
    expect(started.value).toMatchObject({ deferred: { n2: 'paused' }, excluded: { n2: 'paused' }, verified: true });
    expect(Object.keys(started.value.probe as object)).toEqual(['n1', 'n3']);
    const resumed = await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n2'] } });
    expect(resumed.error).toBeUndefined();
    const reapplied = (resumed.value.reapplied as Record<string, Record<string, Record<string, unknown>>>).n2.partition;
    expect(reapplied).toMatchObject({ node: 'n2', verified: true, rules: 2 });
    expect(matrixText((await checkPartition(cluster, grudge)).probe!)).toBe(matrixText(connectivity(nodes, grudge)));
    expect(await listChain(cluster, 'n2', PARTITION_CHAIN)).toHaveLength(2);
    expect((await partition.nemesis.invoke({ f: 'stop-partition', value: { nodes } })).value.verified).toBe(true);
  });

  it('a clock skew is read back from the node, and one set while it was paused is written and read back when it resumes', async () => {
    const skewed = await clock.nemesis.invoke({ f: 'start-clock', value: { nodes: ['n1'], offsets: { n1: 2000 } } });
    expect(skewed.value.verified).toBe(true);
    expect(Math.abs((skewed.value.measuredSkewMs as Record<string, number>).n1 - 2000)).toBeLessThan(150);
    await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n1'] } });
    const stopped = await clock.nemesis.invoke({ f: 'stop-clock', value: { nodes: ['n1'] } });
    expect(stopped.value).toMatchObject({ deferred: { n1: 'paused' }, excluded: { n1: 'paused' }, verified: false });
    const resumed = await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n1'] } });
    expect((resumed.value.reapplied as Record<string, Record<string, Record<string, unknown>>>).n1.clock).toMatchObject({ offset: 0, written: true, verified: true });
  });

  it('a pause on a killed node is deferred until it restarts; packet loss is read back, and re-applied after a restart', async () => {
    await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n1'] } });
    const paused = await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n1'] } });
    expect(paused.value).toMatchObject({ deferred: { n1: 'stopped' }, verified: false });
    const lossy = await packet.nemesis.invoke({ f: 'start-packet', value: { nodes: ['n1', 'n2'], behaviour: 'loss', probability: 0.3 } });
    expect(lossy.value).toMatchObject({ deferred: { n1: 'stopped' }, verified: true });
    const restarted = await kill.nemesis.invoke({ f: 'stop-kill', value: { nodes: ['n1'] } });
    const back = (restarted.value.reapplied as Record<string, Record<string, Record<string, unknown>>>).n1;
    expect(back.pause).toMatchObject({ paused: true, verified: true });
    expect(back.packet).toMatchObject({ verified: true, readBack: { n1: { lossRules: 2 } } });
    expect(await cluster.state('n1')).toBe('paused');
    expect((await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n1'] } })).value.verified).toBe(true);
    expect((await packet.nemesis.invoke({ f: 'stop-packet', value: { nodes: ['n1', 'n2'], behaviour: 'loss' } })).value).toMatchObject({ verified: true });
    expect(await listChain(cluster, 'n1', 'FAULTLINE-LOSS')).toEqual([]);
  });
});
