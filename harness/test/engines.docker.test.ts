// Several Docker engines (`--engines`) for real: three Docker-in-Docker engines on the local engine
// (harness/dind.ts: Debian's dockerd, each with its own storage), joined into one swarm. The preflight
// passes on them and names an engine that is not there; a partition across engines cuts the peers but
// never the harness's clients, and a killed node comes back at the same address; and a 5-node
// `--nemesis partition,kill,clock` run spread over the engines is valid, records where each node ran
// and each engine's clock, and leaves nothing behind on any engine. Needs `npm run setup` (the base
// image); the engine image is built here when missing, offline from the Debian mirror.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARTITION_CHAIN, setChainRules } from '../../nemesis/net.ts';
import { Cluster, forceRemoveOwn, ownerLabels, removeLeftovers } from '../cluster.ts';
import { startDindEngines, type DindEngines } from '../dind.ts';
import { distributeImage, type Engine } from '../engines.ts';
import { connectDocker, ensureImage } from '../image.ts';
import { formatPreflight, preflight } from '../preflight.ts';
import { systemNamed } from '../systems/index.ts';

const root = path.join(import.meta.dirname, '..', '..');
const system = systemNamed('store-mesh');

/** Every faultline object still on an engine: containers of any state and networks. */
async function leftOn(engine: Engine): Promise<string[]> {
  const containers = await engine.docker.listContainers({ all: true, filters: { label: ['faultline'] } });
  const networks = (await engine.docker.listNetworks()).filter((n) => n.Name.startsWith('faultline-'));
  return [...containers.map((c) => `${engine.name}: container ${c.Names[0]}`), ...networks.map((n) => `${engine.name}: network ${n.Name}`)];
}

/** Waits until no engine holds a faultline object (a worker drops its copy of the overlay a moment after the manager removed it). */
async function expectNothingLeft(engines: readonly Engine[]): Promise<void> {
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = (await Promise.all(engines.map(leftOn))).flat();
    if (left.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  expect(left).toEqual([]);
}

/** TCP connect from inside a node's container to host:port; resolves 'ok' or why not. */
async function connectFrom(cluster: Cluster, node: string, host: string, port: number): Promise<string> {
  const script = `const s = require('net').connect({ host: '${host}', port: ${port}, timeout: 1500 }); s.on('connect', () => { console.log('ok'); process.exit(0); }); s.on('timeout', () => { console.log('timeout'); process.exit(1); }); s.on('error', (e) => { console.log(e.code); process.exit(1); });`;
  return (await cluster.exec(node, ['node', '-e', script], { timeoutMs: 10_000 })).stdout.trim();
}

describe('several engines (Docker-in-Docker)', () => {
  let dind: DindEngines | undefined;
  let image = '';
  const progress: string[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const started = performance.now();
    dind = await startDindEngines({ count: 3, id: `t${process.pid}`, onProgress: (line) => progress.push(line) });
    timings.enginesMs = Math.round(performance.now() - started);
    image = await ensureImage();
  }, 600_000);

  afterAll(async () => {
    const docker = await connectDocker();
    await dind?.stop();
    // The engines, their volumes and network are gone from the local engine too.
    const left = await docker.listContainers({ all: true, filters: { label: [`faultline=t${process.pid}`] } });
    expect(left.map((c) => c.Names[0])).toEqual([]);
    console.log(`engines test timings: ${JSON.stringify(timings)}`);
  }, 120_000);

  it('the preflight passes every check on the three engines (copying the node image there) and names an engine it cannot reach', async () => {
    const started = performance.now();
    const results = await preflight(dind!.urls.join(','));
    timings.preflightMs = Math.round(performance.now() - started);
    const report = formatPreflight(results);
    expect(report.ok, report.text).toBe(true);
    for (const name of ['reachable', 'swarm', 'node image', 'NET_ADMIN, iptables, tc', 'overlay', 'clock']) {
      expect(results.every((r) => r.checks.some((c) => c.name === name && c.ok)), `${name}\n${report.text}`).toBe(true);
    }
    expect(report.text).toMatch(/overlay: reaches e2 \d+ms e3 \d+ms/);
    await expectNothingLeft(dind!.engines);

    // 192.0.2.0/24 is TEST-NET-1: nothing answers there.
    const missing = formatPreflight(await preflight('tcp://192.0.2.1:2375'));
    expect(missing.ok).toBe(false);
    expect(missing.text).toMatch(/MISSING reachable: .*192\.0\.2\.1:2375/);
    expect(missing.text).toContain('fix: start dockerd there with -H tcp://');
  }, 300_000);

  it('a partition across engines cuts the peers and never the clients, and a killed node comes back at the same address', async () => {
    const engines = dind!.engines;
    await distributeImage(await connectDocker(), image, engines);
    const started = performance.now();
    const cluster = await Cluster.start({ runId: `t${process.pid}-cut`, nodes: 3, image, system, engines });
    timings.cluster3Ms = Math.round(performance.now() - started);
    try {
      expect(cluster.nodes.map((n) => n.engine)).toEqual(['e1', 'e2', 'e3']);
      // Clients dial the engine's host at the published port; peers use their overlay addresses.
      for (const [i, n] of cluster.nodes.entries()) expect(n.address.startsWith(`${engines[i].host}:`), n.address).toBe(true);
      const [n1, n2, n3] = cluster.nodes;
      expect(await connectFrom(cluster, 'n1', n2.ip, system.port)).toBe('ok');

      // Cut n1 off from both peers, both ways, as the partition nemesis does (DROP by peer address on INPUT).
      await setChainRules(cluster, 'n1', PARTITION_CHAIN, [['-s', n2.ip, '-j', 'DROP'], ['-s', n3.ip, '-j', 'DROP']]);
      await setChainRules(cluster, 'n2', PARTITION_CHAIN, [['-s', n1.ip, '-j', 'DROP']]);
      await setChainRules(cluster, 'n3', PARTITION_CHAIN, [['-s', n1.ip, '-j', 'DROP']]);
      expect(await connectFrom(cluster, 'n1', n2.ip, system.port)).toBe('timeout');
      expect(await connectFrom(cluster, 'n3', n1.ip, system.port)).toBe('timeout');
      // The harness still reaches every node, the cut-off one included.
      for (const n of cluster.nodes) await system.ready(n, 3_000);
      const drops = await cluster.exec('n1', ['iptables', '-w', '-n', '-v', '-x', '-L', PARTITION_CHAIN]);
      expect(drops.stdout).toMatch(new RegExp(`DROP .*${n2.ip.replace(/\./g, '\\.')}`));

      for (const node of ['n1', 'n2', 'n3']) await setChainRules(cluster, node, PARTITION_CHAIN, []);
      expect(await connectFrom(cluster, 'n1', n2.ip, system.port)).toBe('ok');

      // A kill and restart on a worker engine keeps the node's overlay address and its published port.
      const before = cluster.nodes[1];
      await cluster.kill('n2');
      expect(await cluster.state('n2')).toBe('stopped');
      await cluster.restart('n2');
      expect(cluster.nodes[1]).toEqual(before);
      await system.ready(cluster.nodes[1], 3_000);
    } finally {
      await cluster.teardown();
    }
    await expectNothingLeft(engines);
  }, 300_000);

  it('the leftover sweep runs on every engine: objects of a dead harness go, those of a live one stay', async () => {
    const engines = dind!.engines;
    await distributeImage(await connectDocker(), image, engines);
    const live = ownerLabels(`t${process.pid}-live`);
    // A pid above the kernel's default pid_max (4194304) is surely no running process.
    const dead = { ...ownerLabels(`t${process.pid}-dead`), 'faultline.pid': '4194305', 'faultline.pidstart': '1' };
    for (const e of engines) {
      for (const [kind, labels] of [['live', live], ['dead', dead]] as const) {
        const c = await e.docker.createContainer({ name: `faultline-t${process.pid}-${kind}-${e.name}`, Image: image, Entrypoint: ['sleep', '600'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
        await c.start();
      }
    }
    for (const e of engines) expect(await removeLeftovers({ docker: e.docker })).toEqual([`faultline-t${process.pid}-dead-${e.name}`]);
    for (const e of engines) expect((await leftOn(e)).map((x) => x.replace(/^e\d+: container \//, ''))).toEqual([`faultline-t${process.pid}-live-${e.name}`]);
    // (Not forceRemoveOwn() with no engine: on the local engine it would also take this process's engine containers.)
    for (const e of engines) expect(await forceRemoveOwn({ docker: e.docker })).toEqual([`faultline-t${process.pid}-live-${e.name}`]);
    await expectNothingLeft(engines);
  }, 120_000);

  it('--engines: a 5-node partition,kill,clock run over three engines is valid, records placement and clocks, and leaves nothing on any engine', async () => {
    const results = await mkdtemp(path.join(tmpdir(), 'faultline-engines-'));
    try {
      const started = performance.now();
      const run = await execa(
        'node',
        ['harness/cli.ts', '--engines', dind!.urls.join(','), '--nodes', '5', '--nemesis', 'partition,kill,clock', '--time-limit', '45', '--rate', '100', '--seed', '17', '--results-dir', results],
        { cwd: root, reject: false, all: true },
      );
      timings.runMs = Math.round(performance.now() - started);
      // Soft: an invalid verdict fails the test, and the checks below still say what else held.
      expect.soft(run.exitCode, run.all).toBe(0);
      expect.soft(run.stdout).toMatch(/^VALID: lww-partition_kill_clock/m);
      expect(run.stdout).toMatch(/faults ran: (partition|kill|clock),(partition|kill|clock),(partition|kill|clock)\n/);
      const formed = /cluster \S+: 5 nodes ready and formed in (\d+) ms/.exec(run.all ?? '');
      if (formed) timings.cluster5Ms = Number(formed[1]);

      const test = JSON.parse(readFileSync(path.join(results, 'latest', 'test.json'), 'utf8'));
      expect(test.engines).toEqual(dind!.urls.map((url, i) => ({ name: `e${i + 1}`, url })));
      expect(test.placement).toEqual({ n1: 'e1', n2: 'e2', n3: 'e3', n4: 'e1', n5: 'e2' });
      const verdict = JSON.parse(readFileSync(path.join(results, 'latest', 'results.json'), 'utf8'));
      expect.soft(verdict.valid).toBe(true);
      expect([...verdict.test.nemesisRan].sort()).toEqual(['clock', 'kill', 'partition']);
      expect(verdict.engines.map((e: { nodes: string[] }) => e.nodes)).toEqual([['n1', 'n4'], ['n2', 'n5'], ['n3']]);
      for (const e of verdict.engines) {
        // The engines share this machine's kernel clock: each measured offset is zero within half its round trip (plus slack for the load).
        for (const c of [e.clockStart, e.clockEnd]) expect(Math.abs(c.offsetMs), JSON.stringify(c)).toBeLessThanOrEqual(c.rttMs / 2 + 5);
      }
      expect(readFileSync(path.join(results, 'latest', 'report.html'), 'utf8')).toContain('<section id="engines">');
      timings.opsPerS = Math.round((verdict.opCounts.ok / 45) * 10) / 10;
      await expectNothingLeft(dind!.engines);
    } finally {
      await rm(results, { recursive: true, force: true });
    }
  }, 600_000);
});
