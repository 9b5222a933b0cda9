// Partitions and packet faults on a real 3-node Docker cluster: a probe from inside every container
// shows exactly the matrix each grudge promises, heal restores full connectivity, and heal and
// teardown leave every rule faultline did not add untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../harness/cluster.ts';
import { ensureImage } from '../../harness/image.ts';
import { createRng } from '../../harness/rng.ts';
import { connectivity, makeGrudge, shapeNames, twoWayConnectivity, type Connectivity, type Grudge } from '../grudge.ts';
import { clusterInterface, listChain, LOSS_CHAIN, netemUnsupported, PARTITION_CHAIN, rootQdisc, run } from '../net.ts';
import { netemPackage, packetPackage } from '../packet.ts';
import { partitionPackage } from '../partition.ts';
import { resolveNemeses } from '../index.ts';
import { matrixText, probeConnectivity } from '../probe.ts';
import { storeMesh } from '../../harness/systems/store-mesh/index.ts';

let cluster: Cluster;
const nodes = ['n1', 'n2', 'n3'];
const options = { nodes, intervalS: 1 };

function full(): Connectivity {
  return connectivity(nodes, {});
}

async function expectMatrix(grudge: Grudge): Promise<void> {
  const probed = await probeConnectivity(cluster);
  const want = connectivity(nodes, grudge);
  expect(matrixText(probed.oneWay), `one-way (UDP) for ${JSON.stringify(grudge)}`).toBe(matrixText(want));
  expect(matrixText(probed.tcp), `TCP for ${JSON.stringify(grudge)}`).toBe(matrixText(twoWayConnectivity(nodes, grudge)));
}

/** iptables-save without packet counters and comments, so two snapshots compare by rules only. */
async function rules(node: string): Promise<string> {
  const saved = await run(cluster, node, ['iptables-save']);
  return saved.stdout
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/\[\d+:\d+\]/, '[0:0]'))
    .join('\n');
}

beforeAll(async () => {
  const image = await ensureImage();
  cluster = await Cluster.start({ system: storeMesh, runId: `nemesis-part-${process.pid}`, nodes: 3, image });
});

afterAll(async () => {
  await cluster?.teardown();
});

describe('partition on Docker', () => {
  const pkg = partitionPackage(options);
  beforeAll(() => pkg.nemesis.setup(cluster));

  it('starts with full connectivity, in both the UDP and the TCP probe', async () => {
    expect(await pkg.unsupported(cluster)).toBeUndefined();
    const probed = await probeConnectivity(cluster);
    expect(matrixText(probed.oneWay)).toBe(matrixText(full()));
    expect(matrixText(probed.tcp)).toBe(matrixText(full()));
  });

  for (const shape of shapeNames) {
    it(`${shape}: the probe shows exactly the promised matrix, and full connectivity after stop`, async () => {
      const grudge = makeGrudge(shape, nodes, createRng(shapeNames.indexOf(shape) + 1));
      const started = await pkg.nemesis.invoke({ f: 'start-partition', value: { nodes, shape, grudge } });
      expect(started.error).toBeUndefined();
      expect(started.value.grudge).toEqual(grudge);
      await expectMatrix(grudge);
      const stopped = await pkg.nemesis.invoke({ f: 'stop-partition', value: { nodes } });
      expect(stopped.error).toBeUndefined();
      await expectMatrix({});
    });
  }

  it('asymmetric: n1 drops n2, so n2 cannot reach n1 while n1 still reaches n2', async () => {
    const grudge = { n1: ['n2'] };
    await pkg.nemesis.invoke({ f: 'start-partition', value: { nodes: ['n1', 'n2'], grudge } });
    const probed = await probeConnectivity(cluster);
    expect(probed.oneWay.n2.n1).toBe(false);
    expect(probed.oneWay.n1.n2).toBe(true);
    expect(probed.oneWay.n3.n1).toBe(true);
    const report = await pkg.nemesis.heal();
    expect(report).toMatchObject({ ok: true, errors: [] });
    await expectMatrix({});
  });

  it('heal and teardown remove exactly the rules faultline added', async () => {
    // Someone else's rules: one in INPUT, one in a chain of their own.
    for (const node of nodes) {
      await run(cluster, node, ['iptables', '-w', '-A', 'INPUT', '-s', '203.0.113.7/32', '-j', 'DROP']);
      await run(cluster, node, ['sh', '-c', 'iptables -w -N OTHER && iptables -w -A OTHER -s 198.51.100.0/24 -j REJECT && iptables -w -A OUTPUT -j OTHER']);
    }
    const before = await Promise.all(nodes.map(rules));
    expect(before[0]).toContain(`-A INPUT -j ${PARTITION_CHAIN}`);
    await pkg.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge: makeGrudge('complete', nodes, createRng(1)) } });
    expect(await listChain(cluster, 'n1', PARTITION_CHAIN)).toHaveLength(2);
    const report = await pkg.nemesis.heal();
    expect(report.ok).toBe(true);
    expect(await Promise.all(nodes.map(rules))).toEqual(before);
    // Healing twice is harmless.
    expect((await pkg.nemesis.heal()).ok).toBe(true);
    await pkg.nemesis.teardown();
    for (const node of nodes) {
      const after = await rules(node);
      expect(after).not.toContain('FAULTLINE');
      expect(after).toContain('-A INPUT -s 203.0.113.7/32 -j DROP');
      expect(after).toContain('-A OTHER -s 198.51.100.0/24 -j REJECT');
      expect(after).toContain('-A OUTPUT -j OTHER');
    }
    await pkg.nemesis.setup(cluster);
  });

  it('flapping switches the grudge on and off until stopped, then leaves it off', async () => {
    const grudge = { n1: ['n2', 'n3'], n2: ['n1'], n3: ['n1'] };
    await pkg.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge, flapPeriodMs: 250 } });
    // Watch the rule count change twice (on, off, on or off, on, off: the first look may land in either
    // phase), so at least two flips are observed before the stop, however slowly the machine runs.
    const states: number[] = [];
    for (let i = 0; i < 400 && states.length < 3; i++) {
      const n = (await listChain(cluster, 'n1', PARTITION_CHAIN)).length;
      if (states[states.length - 1] !== n) states.push(n);
    }
    expect(states.length).toBe(3);
    expect([[2, 0, 2], [0, 2, 0]]).toContainEqual(states);
    const stopped = await pkg.nemesis.invoke({ f: 'stop-partition', value: { nodes } });
    expect(stopped.error).toBeUndefined();
    expect(stopped.value.flips).toBeGreaterThanOrEqual(2);
    for (const node of nodes) expect(await listChain(cluster, node, PARTITION_CHAIN)).toEqual([]);
    await expectMatrix({});
  });

  it('a bad op fails with a message naming the problem, and heal still works', async () => {
    const bad = await pkg.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge: { n1: ['n7'] } } });
    expect(bad.error).toMatch(/unknown node "n7"/);
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });
});

describe('packet faults on Docker', () => {
  const pkg = packetPackage(options);
  beforeAll(() => pkg.nemesis.setup(cluster));

  it('loss with probability 1 drops every packet on the chosen link, and stop removes the rule', async () => {
    const started = await pkg.nemesis.invoke({ f: 'start-packet', value: { nodes: ['n1'], behaviour: 'loss', probability: 1, links: { n1: ['n2'] } } });
    expect(started.error).toBeUndefined();
    const rule = await listChain(cluster, 'n1', LOSS_CHAIN);
    expect(rule).toHaveLength(1);
    expect(rule[0]).toMatch(/-m statistic --mode random --probability 1/);
    const probed = await probeConnectivity(cluster);
    expect(probed.oneWay.n2.n1).toBe(false);
    expect(probed.oneWay.n1.n2).toBe(true);
    expect(probed.oneWay.n3.n1).toBe(true);
    const stopped = await pkg.nemesis.invoke({ f: 'stop-packet', value: { nodes: ['n1'] } });
    expect(stopped.error).toBeUndefined();
    expect(await listChain(cluster, 'n1', LOSS_CHAIN)).toEqual([]);
    await expectMatrix({});
  });

  it('partial loss installs a statistic rule per peer', async () => {
    await pkg.nemesis.invoke({ f: 'start-packet', value: { nodes: ['n3'], behaviour: 'loss', probability: 0.3 } });
    const installed = await listChain(cluster, 'n3', LOSS_CHAIN);
    expect(installed).toHaveLength(2);
    for (const line of installed) expect(line).toMatch(/--probability 0\.29/);
    expect((await pkg.nemesis.heal()).ok).toBe(true);
    expect(await listChain(cluster, 'n3', LOSS_CHAIN)).toEqual([]);
  });

  it('bandwidth installs faultline\'s htb/tbf qdisc and heal restores the default qdisc', async () => {
    const defaultQdisc = await rootQdisc(cluster, 'n2');
    const started = await pkg.nemesis.invoke({ f: 'start-packet', value: { nodes: ['n2'], behaviour: 'bandwidth', rateKbit: 256, links: { n2: ['n1'] } } });
    expect(started.error).toBeUndefined();
    expect(await rootQdisc(cluster, 'n2')).toMatch(/^qdisc htb fa17: root/);
    const dev = await clusterInterface(cluster, 'n2');
    const shown = await run(cluster, 'n2', ['sh', '-c', `tc qdisc show dev ${dev}; tc filter show dev ${dev}`]);
    expect(shown.stdout).toMatch(/qdisc tbf fa18: (dev \S+ )?parent fa17:10 rate 256Kbit/);
    expect(shown.stdout).toContain('flowid fa17:10');
    expect((await pkg.nemesis.heal()).ok).toBe(true);
    expect(await rootQdisc(cluster, 'n2')).toBe(defaultQdisc);
    await expectMatrix({});
  });

  it('netem is reported unsupported on a kernel without it, and never applied', async () => {
    const reason = await netemUnsupported(cluster);
    // This machine's kernel has no sch_netem; where it has one, the probe must say so instead.
    const probe = await run(cluster, 'n1', ['sh', '-c', 'ip link add fl-t0 type veth peer name fl-t1 && (tc qdisc add dev fl-t0 root netem delay 1ms; echo rc=$?); ip link del fl-t0']);
    if (probe.stdout.includes('rc=0')) {
      expect(reason).toBeUndefined();
      return;
    }
    expect(reason).toMatch(/tc netem is not available on this kernel .*Specified qdisc kind is unknown/);
    await expect(resolveNemeses(['netem'], cluster, options)).rejects.toThrow(/The netem fault package cannot run here: tc netem is not available/);
    const skipped: Record<string, string> = {};
    const all = await resolveNemeses('all', cluster, options, (s) => (skipped[s.name] = s.reason));
    // In heal order. This cluster was started without the disk layer (a run of `all` gets it through
    // containerNeeds; this test's Cluster.start is not given them), so disk is skipped with the reason
    // that its layer does not answer; netem needs a kernel with sch_netem.
    expect(all.map((p) => p.name)).toEqual(['kill', 'pause', 'partition', 'clock', 'packet', 'delay']);
    expect(Object.keys(skipped).sort()).toEqual(['disk', 'netem']);
    expect(skipped.disk).toMatch(/the disk layer does not answer in n1/);
    const netem = netemPackage(options);
    await netem.nemesis.setup(cluster);
    const done = await netem.nemesis.invoke({ f: 'start-packet', value: { nodes: ['n1'], behaviour: 'delay', delayMs: 100 } });
    expect(done.error).toMatch(/delay is unsupported: tc netem is not available/);
    expect(await rootQdisc(cluster, 'n1')).not.toContain('netem');
  });
});
