// A connectivity probe run from inside every node container, to prove that a partition really cuts what
// its grudge promises (and nothing more), and that heal restores everything. Each container runs a small
// Node script at the same time: it listens on a UDP port, sends datagrams to every peer for a while
// (one-way reachability: who heard whom, by source address), and opens a TCP connection to every
// peer's service port (two-way reachability, what gRPC needs).
import type { ClusterControl } from './types.ts';
import type { Connectivity } from './grudge.ts';
import { run } from './net.ts';

export interface ProbeOptions {
  /** UDP port the probe listens on in every container. @default 7999 */
  readonly udpPort?: number;
  /** TCP port to connect to on every peer. @default the cluster's service port, else 7000 */
  readonly tcpPort?: number;
  /**
   * How long each container listens from the common start; it sends every 50 ms during all but the
   * last 150 ms. A container whose probe started late (a loaded machine) still hears and is heard as
   * long as it is up within windowMs - 150 ms of the common start. @default PROBE_WINDOW_MS
   */
  readonly windowMs?: number;
  /** How long one TCP connect may take before the peer counts as unreachable. @default windowMs - 100 */
  readonly connectTimeoutMs?: number;
  /**
   * How long before the common start the probes are launched, for docker exec and Node start-up. A
   * container whose probe starts later than the lead plus windowMs - 150 ms misses the window.
   * @default PROBE_LEAD_MS
   */
  readonly leadMs?: number;
  /** Probe only among these nodes (e.g. the running ones: a stopped or paused container cannot run it). @default every node */
  readonly only?: readonly string[];
}

/**
 * The default probe window. Measured on the 2-core CI machine (see the README): a whole probe of three
 * nodes takes about the window plus 250-400 ms of docker exec and Node start-up.
 */
export const PROBE_WINDOW_MS = 700;

export interface ProbeResult {
  /** from → to → a UDP datagram sent by `from` arrived at `to`. */
  readonly oneWay: Connectivity;
  /** from → to → `from` completed a TCP handshake with `to`'s service port. */
  readonly tcp: Connectivity;
}

// Runs inside the container as `node -e PROBE selfName nodesJson udpPort tcpPort windowMs connectTimeoutMs startAtMs`.
// It binds at once, then sends from startAtMs (the same wall-clock instant in every container: they
// share the host's kernel clock, and libfaketime is loaded only into the service, not into exec'd
// commands) until windowMs - 150 ms later, and listens until startAtMs + windowMs, so containers whose
// docker exec started at different times still overlap. It prints one JSON line: the names it heard
// over UDP and its TCP result per peer.
const PROBE = `
const dgram = require('node:dgram'), net = require('node:net');
const [self, nodesJson, udpPort, tcpPort, windowMs, connectTimeoutMs, startAtMs] = process.argv.slice(1);
const nodes = JSON.parse(nodesJson);
const peers = nodes.filter((n) => n.name !== self);
const byIp = new Map(nodes.map((n) => [n.ip, n.name]));
const heard = new Set([self]);
const tcp = { [self]: true };
const startAt = Number(startAtMs), window = Number(windowMs);
const sock = dgram.createSocket('udp4');
sock.on('message', (_msg, rinfo) => { if (byIp.has(rinfo.address)) heard.add(byIp.get(rinfo.address)); });
let connects = [];
sock.bind(Number(udpPort), () => {
  setTimeout(() => {
    const send = () => { for (const p of peers) sock.send(self, Number(udpPort), p.ip); };
    send();
    const timer = setInterval(send, 50);
    setTimeout(() => clearInterval(timer), Math.max(50, startAt + window - 150 - Date.now()));
    connects = peers.map((p) => new Promise((resolve) => {
      const s = net.connect({ host: p.ip, port: Number(tcpPort) });
      const done = (ok) => { s.destroy(); tcp[p.name] = ok; resolve(); };
      s.setTimeout(Number(connectTimeoutMs), () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    }));
    setTimeout(async () => {
      await Promise.all(connects);
      sock.close();
      console.log(JSON.stringify({ heard: [...heard], tcp }));
      process.exit(0);
    }, Math.max(100, startAt + window - Date.now()));
  }, Math.max(0, startAt - Date.now()));
});
`;

/** How long before the common start the probes are launched: docker exec and Node start-up take about this long. */
export const PROBE_LEAD_MS = 400;

/** Probes every pair of nodes at once and returns the measured one-way (UDP) and TCP matrices. */
export async function probeConnectivity(cluster: ClusterControl, options: ProbeOptions = {}): Promise<ProbeResult> {
  const only = options.only ? new Set(options.only) : undefined;
  const nodes = cluster.nodes.filter((n) => !only || only.has(n.name)).map((n) => ({ name: n.name, ip: n.ip }));
  const windowMs = options.windowMs ?? PROBE_WINDOW_MS;
  const leadMs = options.leadMs ?? PROBE_LEAD_MS;
  const args = [
    JSON.stringify(nodes),
    String(options.udpPort ?? 7999),
    String(options.tcpPort ?? cluster.port ?? 7000),
    String(windowMs),
    String(options.connectTimeoutMs ?? Math.max(100, windowMs - 100)),
    String(Date.now() + leadMs),
  ];
  const outputs = await Promise.all(
    nodes.map(async ({ name }) => {
      const result = await run(cluster, name, ['node', '-e', PROBE, name, ...args], leadMs + windowMs + 10_000);
      const line = result.stdout.trim().split('\n').pop() ?? '';
      try {
        return { name, ...(JSON.parse(line) as { heard: string[]; tcp: Record<string, boolean> }) };
      } catch {
        throw new Error(`${name}: the connectivity probe printed no result: ${result.stdout}${result.stderr}`);
      }
    }),
  );
  const oneWay: Connectivity = {};
  const tcp: Connectivity = {};
  for (const from of nodes) {
    oneWay[from.name] = {};
    tcp[from.name] = {};
  }
  for (const out of outputs) {
    for (const from of nodes) oneWay[from.name][out.name] = out.heard.includes(from.name);
    for (const to of nodes) tcp[out.name][to.name] = out.tcp[to.name] === true;
  }
  return { oneWay, tcp };
}

/** A compact picture of a matrix for assertion messages: one row per sender, 1 = reaches. */
export function matrixText(matrix: Connectivity): string {
  const names = Object.keys(matrix);
  return names.map((from) => `${from}: ${names.map((to) => (matrix[from][to] ? '1' : '0')).join('')}`).join('\n');
}

/**
 * Where a measured one-way matrix differs from what a grudge promises, among the probed nodes:
 * grudge {a: [b]} means a drops b's packets, so b→a must be cut and every other pair must get through.
 * Returns one line per differing pair, e.g. "n2→n1 got through, the grudge cuts it"; [] when it matches.
 */
export function grudgeMismatches(oneWay: Connectivity, grudge: Readonly<Record<string, readonly string[]>>): string[] {
  const names = Object.keys(oneWay);
  const out: string[] = [];
  for (const from of names) {
    for (const to of names) {
      if (from === to) continue;
      const cut = (grudge[to] ?? []).includes(from);
      const through = oneWay[from]?.[to] === true;
      if (cut && through) out.push(`${from}→${to} got through, the grudge cuts it`);
      if (!cut && !through) out.push(`${from}→${to} is cut, the grudge lets it through`);
    }
  }
  return out;
}
