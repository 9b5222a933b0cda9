// The preflight of `--engines` (`npm run setup -- --engines ...`, or `node harness/preflight.ts --engines ...`):
// checks every engine the way a run will use it and says what is missing and what to do about it, one
// line per check. Per engine: reachable and its version; in the swarm the overlay needs; the node image
// there (copied with docker save | load when it is not); NET_ADMIN, iptables and tc working in a node
// container; the overlay reaching every other engine's container (TCP, with the connect time); and the
// engine's host clock against the harness's. `--join-swarm` first joins the engines into one swarm (the
// first engine inits it). The check containers and network carry the owner labels, so a preflight that
// dies is swept like any run. Exit code 0 when every check passed, 1 when one failed, 254 bad arguments.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type Docker from 'dockerode';
import { ownerLabels } from './cluster.ts';
import { connectEngines, distributeImage, joinSwarm, measureClockOffset, parseEngineList, swarmManager, swarmMembership, type Engine } from './engines.ts';
import { connectDocker, ensureImage, errorText } from './image.ts';

/** One check of one engine: passed or not, what was seen, and (when it failed) what to do. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly fix?: string;
}

export interface EngineChecks {
  readonly engine: string;
  readonly url: string;
  readonly checks: readonly Check[];
}

/** The report: one line per check, a ✗ line followed by what to do, and a closing verdict. */
export function formatPreflight(results: readonly EngineChecks[]): { readonly text: string; readonly ok: boolean } {
  const lines: string[] = [];
  let failed = 0;
  for (const r of results) {
    lines.push(`${r.engine} ${r.url}`);
    for (const c of r.checks) {
      lines.push(`  ${c.ok ? 'ok     ' : 'MISSING'} ${c.name}: ${c.detail}`);
      if (!c.ok) {
        failed++;
        if (c.fix) lines.push(`          fix: ${c.fix}`);
      }
    }
  }
  const ok = failed === 0;
  lines.push(ok ? `ready: all ${results.length} engines passed every check` : `not ready: ${failed} check${failed === 1 ? '' : 's'} failed (see MISSING above)`);
  return { text: lines.join('\n'), ok };
}

const checkNetwork = (id: string) => `faultline-${id}-preflight`;

/** Runs every check on every engine; never throws for a failed check (only for bad input). */
export async function preflight(urls: string, options: { readonly joinSwarm?: boolean; readonly advertise?: readonly string[]; readonly onProgress?: (line: string) => void } = {}): Promise<EngineChecks[]> {
  const progress = options.onProgress ?? (() => {});
  const specs = parseEngineList(urls);
  const results = specs.map((s, i) => ({ engine: `e${i + 1}`, url: s.url, checks: [] as Check[] }));
  const add = (i: number, check: Check) => results[i].checks.push(check);

  // 1. Reachable, and the version.
  const engines: Engine[] = [];
  for (const [i, spec] of specs.entries()) {
    try {
      const [engine] = await connectEngines([spec]);
      const version = (await engine.docker.version()) as { Version?: string; ApiVersion?: string; Os?: string; Arch?: string };
      engines.push({ ...engine, name: `e${i + 1}` });
      add(i, { name: 'reachable', ok: true, detail: `Docker ${version.Version} (API ${version.ApiVersion}, ${version.Os}/${version.Arch})` });
    } catch (error) {
      // connectEngines names the engine and adds a hint of its own: keep only why it did not answer.
      const why = /^e\d+ \S+: (.*)$/m.exec(errorText(error))?.[1] ?? errorText(error);
      add(i, { name: 'reachable', ok: false, detail: why, fix: reachFix(spec.kind) });
    }
  }
  if (engines.length < specs.length) return results;
  const index = (e: Engine) => engines.indexOf(e);

  // 2. One swarm (for the overlay network).
  if (options.joinSwarm) {
    try {
      await joinSwarm(engines, options.advertise ?? [], progress);
    } catch (error) {
      add(0, { name: 'join swarm', ok: false, detail: errorText(error), fix: 'make sure ports 2377/tcp, 7946/tcp+udp and 4789/udp are open between the engines' });
    }
  }
  let manager: Engine | undefined;
  try {
    manager = await swarmManager(engines);
  } catch (error) {
    for (const e of engines) {
      const m = await swarmMembership(e.docker).catch(() => undefined);
      add(index(e), { name: 'swarm', ok: false, detail: m ? `swarm ${m.state}${m.manager ? ' (manager)' : ''}` : 'unknown', fix: errorText(error) });
    }
  }
  if (manager) for (const e of engines) add(index(e), { name: 'swarm', ok: true, detail: e === manager ? 'manager (the overlay network is created here)' : `member of ${manager.name}'s swarm` });

  // 3. The node image on every engine, from the default engine.
  let image: string | undefined;
  try {
    image = await ensureImage({ onProgress: (line) => progress(`[image] ${line}`) });
    const copied = await distributeImage(await connectDocker(), image, engines, progress);
    for (const e of engines) add(index(e), { name: 'node image', ok: true, detail: `${image}${copied.includes(e.name) ? ' (copied now with docker save | load)' : ' (present)'}` });
  } catch (error) {
    for (const e of engines) add(index(e), { name: 'node image', ok: false, detail: errorText(error), fix: 'run npm run setup on this machine first (it builds the image), and make sure the engine has disk space for it' });
  }

  // 4. NET_ADMIN, iptables and tc in a node container; 5. the overlay between every pair of engines.
  const id = `pf${process.pid}`;
  const labels = ownerLabels(id);
  if (image) {
    await Promise.all(engines.map(async (e) => void add(index(e), await netAdminCheck(e, image!, labels))));
    if (manager) {
      for (const [i, check] of (await overlayChecks(engines, manager, image, id, labels)).entries()) add(i, check);
    }
  }

  // 6. The host clock.
  for (const e of engines) {
    try {
      const c = await measureClockOffset(e.docker);
      const far = Math.abs(c.offsetMs) - c.rttMs / 2 > 1_000;
      add(index(e), { name: 'clock', ok: !far, detail: `host clock ${c.offsetMs >= 0 ? '+' : ''}${c.offsetMs} ms ± ${c.rttMs / 2} ms from this machine's`, ...(far ? { fix: 'more than a second apart: run NTP (chrony) on the engine hosts; a run records this offset, but the clock faults assume clocks that agree' } : {}) });
    } catch (error) {
      add(index(e), { name: 'clock', ok: false, detail: errorText(error) });
    }
  }
  return results;
}

function reachFix(kind: string): string {
  if (kind === 'ssh') return 'check that `ssh <user@host> docker info` works without a password prompt (an ssh agent with the key, SSH_AUTH_SOCK set) and that the user may use Docker there';
  if (kind === 'tcp') return 'start dockerd there with -H tcp://0.0.0.0:2375 (only on a private network) or 2376 with TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH), and open the port';
  return 'start the engine (npm run setup, or systemctl start docker) and check the socket path';
}

async function runToEnd(docker: Docker, spec: Docker.ContainerCreateOptions, timeoutMs = 30_000): Promise<{ code: number; output: string }> {
  const container = await docker.createContainer(spec);
  try {
    await container.start();
    const waited = (await Promise.race([container.wait(), new Promise((_, reject) => setTimeout(() => reject(new Error(`did not finish within ${timeoutMs} ms`)), timeoutMs))])) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    return { code: waited.StatusCode, output: demux(logs).trim() };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

function demux(raw: Buffer | string): string {
  if (typeof raw === 'string') return raw;
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** A node container with NET_ADMIN must run iptables and tc (the partition and packet faults). */
async function netAdminCheck(engine: Engine, image: string, labels: Record<string, string>): Promise<Check> {
  const script = 'set -e; iptables -w -N FAULTLINE-PREFLIGHT; iptables -w -A FAULTLINE-PREFLIGHT -s 192.0.2.1 -j DROP; iptables -w -X FAULTLINE-PREFLIGHT 2>/dev/null || { iptables -w -F FAULTLINE-PREFLIGHT; iptables -w -X FAULTLINE-PREFLIGHT; }; tc qdisc add dev lo root handle fa17: htb default 1; tc qdisc del dev lo root; echo iptables $(iptables --version | cut -d" " -f2-), tc ok';
  try {
    const r = await runToEnd(engine.docker, { Image: image, Entrypoint: ['sh', '-c', script], Labels: labels, HostConfig: { CapAdd: ['NET_ADMIN'], NetworkMode: 'none' } });
    return r.code === 0
      ? { name: 'NET_ADMIN, iptables, tc', ok: true, detail: r.output }
      : { name: 'NET_ADMIN, iptables, tc', ok: false, detail: `exit ${r.code}: ${r.output.slice(-300)}`, fix: 'the engine must grant NET_ADMIN (not rootless Docker, no userns-remap without it) and its kernel needs iptables (nf_tables or legacy) and the htb qdisc' };
  } catch (error) {
    return { name: 'NET_ADMIN, iptables, tc', ok: false, detail: errorText(error) };
  }
}

/**
 * An attachable overlay on the manager, one listening container per engine on it, and from each a TCP
 * connect to every other: the overlay works between every pair of engines (VXLAN, 4789/udp).
 */
async function overlayChecks(engines: readonly Engine[], manager: Engine, image: string, id: string, labels: Record<string, string>): Promise<Check[]> {
  const name = checkNetwork(id);
  const checks: Check[] = engines.map(() => ({ name: 'overlay', ok: false, detail: 'not checked' }));
  const containers: { engine: Engine; container: Docker.Container }[] = [];
  try {
    await manager.docker.createNetwork({ Name: name, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: labels });
    const server = "require('net').createServer((s) => s.end('ok')).listen(7999)";
    for (const [i, e] of engines.entries()) {
      const container = await e.docker.createContainer({
        name: `${name}-${e.name}`,
        Image: image,
        Entrypoint: ['node', '-e', server],
        Labels: labels,
        HostConfig: { NetworkMode: name, Init: true },
        NetworkingConfig: { EndpointsConfig: { [name]: { Aliases: [`p${i + 1}`] } } },
      });
      containers.push({ engine: e, container });
      await container.start();
    }
    // Each container connects to every other one by name, three tries each (the overlay's peer table settles after the attach).
    const client = `const net = require('net'); const peers = process.argv.slice(1);
      const one = (p, tries) => new Promise((res) => { const t = Date.now(); const s = net.connect({ host: p, port: 7999, timeout: 3000 });
        s.on('data', () => { res(p + '=' + (Date.now() - t) + 'ms'); s.destroy(); });
        const retry = (why) => { s.destroy(); tries > 1 ? setTimeout(() => one(p, tries - 1).then(res), 500) : res(p + '=FAILED(' + why + ')'); };
        s.on('error', (e) => retry(e.code)); s.on('timeout', () => retry('timeout')); });
      Promise.all(peers.map((p) => one(p, 3))).then((r) => { console.log(r.join(' ')); process.exit(r.some((x) => x.includes('FAILED')) ? 1 : 0); });`;
    await Promise.all(
      containers.map(async ({ engine, container }, i) => {
        const peers = engines.map((_, j) => `p${j + 1}`).filter((_, j) => j !== i);
        if (peers.length === 0) {
          checks[i] = { name: 'overlay', ok: true, detail: 'one engine: nothing to reach' };
          return;
        }
        const exec = await container.exec({ Cmd: ['node', '-e', client, ...peers], AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({ hijack: true, stdin: false });
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        await new Promise((resolve) => stream.on('end', resolve));
        const out = demux(Buffer.concat(chunks)).trim();
        const code = (await exec.inspect()).ExitCode;
        checks[i] =
          code === 0
            ? { name: 'overlay', ok: true, detail: `reaches ${out.replace(/\bp(\d+)=/g, 'e$1 ')}` }
            : { name: 'overlay', ok: false, detail: `from ${engine.name}: ${out || `exit ${code}`}`, fix: 'open 7946/tcp+udp and 4789/udp (VXLAN) between the engine hosts, and make sure each engine advertises an address the others reach (docker swarm join --advertise-addr)' };
      }),
    );
  } catch (error) {
    for (let i = 0; i < checks.length; i++) if (checks[i].detail === 'not checked') checks[i] = { name: 'overlay', ok: false, detail: errorText(error) };
  } finally {
    await Promise.all(containers.map(({ container }) => container.remove({ force: true, v: true }).catch(() => undefined)));
    await manager.docker.getNetwork(name).remove().catch(() => undefined);
  }
  return checks;
}

// `node harness/preflight.ts --engines LIST [--join-swarm] [--advertise a,b,c]` (npm run setup -- --engines LIST).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let values: { engines?: string; 'join-swarm'?: boolean; advertise?: string };
  try {
    ({ values } = parseArgs({ args: process.argv.slice(2), strict: true, options: { engines: { type: 'string' }, 'join-swarm': { type: 'boolean' }, advertise: { type: 'string' } } }));
    if (!values.engines && !process.env.FAULTLINE_ENGINES) throw new Error('--engines LIST (or $FAULTLINE_ENGINES) is required');
  } catch (error) {
    console.error(`preflight: ${errorText(error)}\nusage: npm run setup -- --engines tcp://h1:2375,ssh://me@h2 [--join-swarm] [--advertise ADDR1,ADDR2,...]`);
    process.exit(254);
  }
  try {
    const results = await preflight(values.engines ?? process.env.FAULTLINE_ENGINES!, {
      joinSwarm: values['join-swarm'],
      advertise: values.advertise?.split(',').map((s) => s.trim()),
      onProgress: (line) => console.log(`[preflight] ${line}`),
    });
    const report = formatPreflight(results);
    console.log(report.text);
    process.exit(report.ok ? 0 : 1);
  } catch (error) {
    console.error(`preflight: ${errorText(error)}`);
    process.exit(1);
  }
}
