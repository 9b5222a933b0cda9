// The delay fault on a real 3-node Docker cluster, on this kernel (no tc netem): the round trip of a
// delayed pair rises by the delay and the others' does not (measured side by side, from inside the
// containers), jitter reorders real packets and duplication sends real copies (counted by a receiver
// and by faultline-delay itself), a restarted node gets its delay back, and heal leaves no rule and no
// program behind. The only thresholds are the physics: a delayed pair must show at least 80% of its
// delay, an undelayed one less than half of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../harness/cluster.ts';
import { ensureImage } from '../../harness/image.ts';
import { delayPackage, measureRtt, readDelay, type DelayLinks } from '../delay.ts';
import { partitionPackage } from '../partition.ts';
import { ipOf, run } from '../net.ts';
import { storeMesh } from '../../harness/systems/store-mesh/index.ts';

let cluster: Cluster;
const nodes = ['n1', 'n2', 'n3'];
const pkg = delayPackage({ nodes });
const pairs = [['n1', 'n2'], ['n1', 'n3'], ['n2', 'n3']] as const;

/** Median handshake time of every pair, from its first node, with more samples than the nemesis takes. */
async function rttMatrix(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [a, b] of pairs) {
    const got = await measureRtt(cluster, a, [b], { samples: 7 });
    out[`${a}↔${b}`] = got[b] ?? NaN;
  }
  return out;
}

// Sends `count` numbered UDP datagrams from a node to a peer every 2 ms; the peer counts what arrived,
// how many came after a higher number (reordered) and how many twice (duplicated).
const RECEIVER = `
const s = require('node:dgram').createSocket('udp4');
let got = 0, reordered = 0, max = -1; const seen = new Map();
s.on('message', (m) => { const i = m.readUInt32BE(0); got++; seen.set(i, (seen.get(i) ?? 0) + 1); if (i < max) reordered++; else max = i; });
s.bind(7997, () => console.log('ready'));
setTimeout(() => { let dup = 0; for (const v of seen.values()) dup += v - 1; console.log(JSON.stringify({ got, unique: seen.size, reordered, duplicated: dup })); process.exit(0); }, Number(process.argv[1]));
`;
const SENDER = `
const s = require('node:dgram').createSocket('udp4'); let i = 0; const [host, count] = process.argv.slice(1);
const t = setInterval(() => { const b = Buffer.alloc(8); b.writeUInt32BE(i++); s.send(b, 7997, host); if (i >= Number(count)) { clearInterval(t); setTimeout(() => s.close(), 50); } }, 2);
`;

beforeAll(async () => {
  const image = await ensureImage();
  cluster = await Cluster.start({ system: storeMesh, runId: `nemesis-delay-${process.pid}`, nodes: 3, image });
  await pkg.nemesis.setup(cluster);
});

afterAll(async () => {
  await pkg.nemesis.teardown().catch(() => {});
  await cluster?.teardown();
});

describe('delay on Docker (NFQUEUE + faultline-delay)', () => {
  let baseline: Record<string, number>;

  it('runs on this kernel, and the links start undelayed', async () => {
    expect(await pkg.unsupported(cluster)).toBeUndefined();
    baseline = await rttMatrix();
    for (const ms of Object.values(baseline)) expect(ms).toBeLessThan(50);
  });

  it('100 ms on n1→n2 only: the n1↔n2 round trip rises by about 100 ms, the others do not', async () => {
    const links: DelayLinks = { n1: { n2: { delayMs: 100, jitterMs: 0, duplicatePercent: 0 } } };
    const started = await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n2'], links } });
    expect(started.error).toBeUndefined();
    expect(started.value.verified, String(started.value.unverified)).toBe(true);
    const during = await rttMatrix();
    // Side by side, for the README and for whoever reads the test log.
    console.log(`delay 100 ms on n1→n2: handshake RTT (ms) before / during: ${pairs.map(([a, b]) => `${a}↔${b} ${baseline[`${a}↔${b}`]} / ${during[`${a}↔${b}`]}`).join(', ')}; the nemesis measured ${JSON.stringify(started.value.rttMs)}`);
    expect(during['n1↔n2'] - baseline['n1↔n2']).toBeGreaterThanOrEqual(80);
    expect(during['n1↔n3'] - baseline['n1↔n3']).toBeLessThan(50);
    expect(during['n2↔n3'] - baseline['n2↔n3']).toBeLessThan(50);
    // From n2's side too: its SYN goes undelayed, n1's SYN-ACK is held.
    const fromN2 = await measureRtt(cluster, 'n2', ['n1', 'n3'], { samples: 5 });
    expect(fromN2.n1!).toBeGreaterThanOrEqual(80);
    expect(fromN2.n3!).toBeLessThan(50);
    const stopped = await pkg.nemesis.invoke({ f: 'stop-delay', value: { nodes: ['n1', 'n2'] } });
    expect(stopped.error).toBeUndefined();
    expect(stopped.value.verified, String(stopped.value.unverified)).toBe(true);
    const after = await rttMatrix();
    expect(after['n1↔n2']).toBeLessThan(50);
  });

  it('both ways on n1↔n3: the round trip rises by about twice the delay', async () => {
    const d = { delayMs: 100, jitterMs: 0, duplicatePercent: 0 };
    const started = await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n3'], links: { n1: { n3: d }, n3: { n1: d } } } });
    expect(started.value.verified, String(started.value.unverified)).toBe(true);
    const during = await rttMatrix();
    console.log(`delay 100 ms on n1→n3 and n3→n1: handshake RTT (ms) during: ${JSON.stringify(during)}`);
    expect(during['n1↔n3'] - baseline['n1↔n3']).toBeGreaterThanOrEqual(160);
    expect(during['n1↔n2'] - baseline['n1↔n2']).toBeLessThan(50);
    await pkg.nemesis.invoke({ f: 'stop-delay', value: { nodes: ['n1', 'n3'] } });
  });

  it('jitter reorders real packets and duplication sends real copies, counted by the receiver and by faultline-delay', async () => {
    const links: DelayLinks = { n1: { n2: { delayMs: 50, jitterMs: 40, duplicatePercent: 10 } } };
    const started = await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n2'], links } });
    expect(started.value.verified, String(started.value.unverified)).toBe(true);
    const receiver = run(cluster, 'n2', ['node', '-e', RECEIVER, '4000'], 20_000);
    await new Promise((r) => setTimeout(r, 700));
    await run(cluster, 'n1', ['node', '-e', SENDER, ipOf(cluster, 'n2'), '1000'], 20_000);
    const counted = JSON.parse((await receiver).stdout.trim().split('\n').pop()!) as { got: number; unique: number; reordered: number; duplicated: number };
    const stopped = await pkg.nemesis.invoke({ f: 'stop-delay', value: { nodes: ['n1', 'n2'] } });
    const own = (stopped.value.stats as Record<string, { packets: number; reordered: number; duplicated: number; cpuUs: number }>).n1;
    console.log(`jitter 50±40 ms, duplicate 10% on n1→n2, 1000 UDP datagrams: the receiver counted ${JSON.stringify(counted)}; faultline-delay on n1 counted ${JSON.stringify(own)}`);
    expect(counted.unique).toBe(1000);
    expect(counted.reordered).toBeGreaterThan(0);
    expect(counted.duplicated).toBeGreaterThan(0);
    expect(own.reordered).toBeGreaterThan(0);
    expect(own.duplicated).toBeGreaterThan(0);
    // Every copy the program sent arrived (UDP on one bridge: nothing else drops them).
    expect(counted.duplicated).toBeLessThanOrEqual(own.duplicated);
  });

  it('a link another fault cuts is proven delayed by the packets faultline-delay held for it, not by a handshake', async () => {
    // n3 isolated (its peers' packets dropped on arrival), then 200 ms on n3→n1: no handshake can
    // complete, as in an --nemesis all run where the delay starts during a partition.
    const partition = partitionPackage({ nodes });
    await partition.nemesis.setup(cluster);
    const grudge = { n3: ['n1', 'n2'], n1: ['n3'], n2: ['n3'] };
    const cut = await partition.nemesis.invoke({ f: 'start-partition', value: { nodes, grudge } });
    expect(cut.value.verified, String(cut.value.unverified)).toBe(true);
    try {
      const links: DelayLinks = { n3: { n1: { delayMs: 200, jitterMs: 25, duplicatePercent: 0 } } };
      const started = await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n3'], links } });
      console.log(`delay 200±25 ms on n3→n1 during a partition of n3: ${JSON.stringify({ rttMs: started.value.rttMs, heldOnCutLinks: started.value.heldOnCutLinks })}`);
      expect(started.value.verified, String(started.value.unverified)).toBe(true);
      expect((started.value.rttMs as Record<string, Record<string, number | null>>).n3.n1).toBeNull();
      const held = (started.value.heldOnCutLinks as Record<string, Record<string, { packets: number; maxDelayMs: number }>>).n3.n1;
      expect(held.packets).toBeGreaterThan(0);
      expect(held.maxDelayMs).toBeGreaterThanOrEqual(175 * 0.5);
      await pkg.nemesis.invoke({ f: 'stop-delay', value: { nodes: ['n1', 'n3'] } });
    } finally {
      await partition.nemesis.invoke({ f: 'stop-partition', value: { nodes } });
      await partition.nemesis.teardown();
    }
  });

  it('a killed and restarted node gets its delay back (fresh network namespace, no program)', async () => {
    const links: DelayLinks = { n1: { n2: { delayMs: 100, jitterMs: 0, duplicatePercent: 0 } } };
    await pkg.nemesis.invoke({ f: 'start-delay', value: { nodes: ['n1', 'n2'], links } });
    await cluster.kill('n1');
    const back = await cluster.restart('n1');
    expect(back.errors).toEqual([]);
    expect((back.reapplied.delay as { verified?: boolean } | undefined)?.verified).toBe(true);
    const rtt = await measureRtt(cluster, 'n1', ['n2', 'n3'], { samples: 5 });
    expect(rtt.n2!).toBeGreaterThanOrEqual(80);
    expect(rtt.n3!).toBeLessThan(50);
  });

  it('heal removes every rule and ends every program, read back on every node', async () => {
    const report = await pkg.nemesis.heal();
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    for (const node of nodes) {
      const found = await readDelay(cluster, node);
      expect(found.rules, node).toEqual([]);
      expect(found.pids, node).toEqual([]);
    }
    const rtt = await rttMatrix();
    for (const ms of Object.values(rtt)) expect(ms).toBeLessThan(50);
  });
});
