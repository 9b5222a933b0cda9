// The delay fault package: real packets between nodes held for a fixed delay, with jitter (so they
// reorder) and duplication, per link. What is delayed is pure data, like a partition's grudge: a
// DelayLinks value maps a sender to the peers whose packets it holds and for how long, so "n1→n3 slow,
// the rest fine" and one-way slowness are plain values, computed from the seed and unit-tested.
//
// The mechanism works on kernels without tc netem (this machine's: CONFIG_NET_SCH_NETEM is not set).
// Each sending node gets iptables rules in faultline's delay chain, jumped to from OUTPUT, that send
// its packets for the delayed peers' addresses to an NFQUEUE (`--queue-bypass`: if no program listens,
// packets pass as if there were no rule), and faultline-delay (harness/docker/faultline-delay.c, built
// into the node image) holds each packet until its release time before its ACCEPT verdict. Verdicts come
// out of order, so jitter reorders; a duplicate is a copy sent through a raw socket with a mark the rule
// excludes. Only peer addresses match, so the harness's own client traffic is never delayed. Every
// start is proven: the rules and the program's links read back, and the TCP handshake time from each
// delayed sender to its peers measured from inside the container (`rttMs`), which must have risen by
// at least 80% of the delay in force on that pair; on a pair another fault cuts (no handshake completes,
// e.g. during a partition) by the program's own counters instead: it held packets sent on that link,
// for at least 80% of the link's delay (`heldOnCutLinks`). Every stop and heal removes the rules and ends the
// program (which lets its held packets go first), and reads back that both are gone; its final
// counters (packets, reorders, duplicates, its CPU time) are recorded in the stop op.
import type { Rng } from '../harness/rng.ts';
import type { NemesisValue } from '../harness/history.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent } from './types.ts';
import { containerStopped, DELAY_CHAIN, errorText, ipOf, NodeCommandError, onEveryNode, removeChain, run, collectErrors, type RuleSpec } from './net.ts';
import { iptablesUnsupported } from './partition.ts';
import { completion, failedOp, healReport, HEAL_LATER, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes } from './schedule.ts';

/** How one link is slowed: the sender holds each packet delayMs ± jitterMs (uniform) and sends a copy of duplicatePercent % of them. */
export interface LinkDelay {
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly duplicatePercent: number;
}

/** sender → peer → how the sender's packets to that peer are delayed. Absent pairs are not delayed. */
export type DelayLinks = Record<string, Record<string, LinkDelay>>;

/** Which links a delay fault slows, around its drawn targets. */
export const linkShapes = ['one-link', 'outbound', 'both-ways'] as const;
export type LinkShape = (typeof linkShapes)[number];

/** The values the delay fault draws from (--delay-ms, --delay-jitter-ms, --delay-duplicate-percent); jitters above the drawn delay are left out. */
export type DelayDraws = NonNullable<FaultPackageOptions['delay']>;

export const DEFAULT_DELAYS_MS = [50, 100, 200] as const;
export const DEFAULT_JITTERS_MS = [0, 25, 50] as const;
export const DEFAULT_DUPLICATE_PERCENTS = [0, 1] as const;
/** The largest delay a link may get: faultline-delay holds at most 65536 packets, and a longer delay is an outage, not a slow link. */
export const MAX_DELAY_MS = 10_000;

export type DelayOptions = FaultPackageOptions;

/** The NFQUEUE number faultline-delay listens on, and the mark its duplicates carry (the rule skips it). */
export const DELAY_QUEUE = 4017;
export const DUPLICATE_MARK = 0xfa17;
const PROGRAM = 'faultline-delay';
const DIR = '/run/faultline';
const CONFIG = `${DIR}/delay.conf`;
const STATS = `${DIR}/delay.stats`;
const LOG = `${DIR}/delay.log`;
/** A delayed pair's handshake time must reach this share of the delay in force on it (both directions, least jitter). */
export const RTT_PROOF_SHARE = 0.8;

const F = { start: 'start-delay', stop: 'stop-delay' } as const;

/** The links of a shape around the targets, every one with the same delay. */
export function delayLinks(shape: LinkShape, nodes: readonly string[], targets: readonly string[], spec: LinkDelay, rng: Rng): DelayLinks {
  const links: DelayLinks = {};
  const add = (from: string, to: string) => ((links[from] ??= {})[to] = { ...spec });
  const others = (node: string) => nodes.filter((n) => n !== node);
  if (nodes.length < 2) throw new Error(`A delay fault needs at least 2 nodes (links between them), got ${nodes.length}; use --nodes 2 or more`);
  switch (shape) {
    case 'one-link': {
      const from = rng.pick(targets);
      add(from, rng.pick(others(from)));
      break;
    }
    case 'outbound':
      for (const from of targets) for (const to of others(from)) add(from, to);
      break;
    case 'both-ways':
      for (const a of targets) {
        for (const b of others(a)) {
          add(a, b);
          add(b, a);
        }
      }
      break;
    default:
      throw new Error(`Unknown delay link shape "${String(shape)}"; expected one of: ${linkShapes.join(', ')}`);
  }
  return normalizeDelayLinks(links);
}

/** Sorted senders and peers, empty senders removed, so equal links serialise identically. */
export function normalizeDelayLinks(links: DelayLinks): DelayLinks {
  const out: DelayLinks = {};
  for (const from of Object.keys(links).sort()) {
    const peers = Object.keys(links[from]).sort();
    if (peers.length > 0) out[from] = Object.fromEntries(peers.map((to) => [to, links[from][to]]));
  }
  return out;
}

/** Throws a clear error for unknown nodes, a node delaying itself, or a delay, jitter or duplication out of range. */
export function validateDelayLinks(nodes: readonly string[], links: DelayLinks): void {
  const known = new Set(nodes);
  if (links === null || typeof links !== 'object') throw new Error(`start-delay: expected value.links to be { sender: { peer: { delayMs, jitterMs, duplicatePercent } } }, got ${JSON.stringify(links)}`);
  for (const [from, peers] of Object.entries(links)) {
    if (!known.has(from)) throw new Error(`Delay links name unknown node "${from}"; the cluster has: ${nodes.join(', ')}`);
    for (const [to, d] of Object.entries(peers ?? {})) {
      if (!known.has(to)) throw new Error(`Delay links of ${from} name unknown node "${to}"; the cluster has: ${nodes.join(', ')}`);
      if (to === from) throw new Error(`Delay links of ${from} delay its packets to itself; remove "${from}" from its peers`);
      const where = `the delay of ${from}→${to}`;
      if (!(Number.isFinite(d?.delayMs) && d.delayMs >= 0 && d.delayMs <= MAX_DELAY_MS)) throw new Error(`${where}: expected delayMs from 0 to ${MAX_DELAY_MS}, got ${JSON.stringify(d?.delayMs)}`);
      if (!(Number.isFinite(d.jitterMs) && d.jitterMs >= 0 && d.jitterMs <= d.delayMs)) throw new Error(`${where}: expected jitterMs from 0 to its delayMs (${d.delayMs}), got ${JSON.stringify(d.jitterMs)}`);
      if (!(Number.isFinite(d.duplicatePercent) && d.duplicatePercent >= 0 && d.duplicatePercent <= 100)) throw new Error(`${where}: expected duplicatePercent from 0 to 100, got ${JSON.stringify(d.duplicatePercent)}`);
    }
  }
}

/** The nodes whose links a value touches: senders and their peers. */
export function delayNodes(links: DelayLinks): string[] {
  const touched = new Set<string>();
  for (const [from, peers] of Object.entries(links)) {
    for (const to of Object.keys(peers)) {
      touched.add(from);
      touched.add(to);
    }
  }
  return sortNodes(touched);
}

/** "n1→n3 100±25ms" per link, for the report and logs. */
export function describeDelayLinks(links: DelayLinks): string {
  const parts: string[] = [];
  for (const [from, peers] of Object.entries(links)) {
    for (const [to, d] of Object.entries(peers)) {
      parts.push(`${from}→${to} ${d.delayMs}${d.jitterMs ? `±${d.jitterMs}` : ''}ms${d.duplicatePercent ? ` dup ${d.duplicatePercent}%` : ''}`);
    }
  }
  return parts.join(', ');
}

/** The seeded start op: a shape around drawn targets, one drawn delay, jitter and duplication. */
export function delayStartOp(options: DelayOptions, rng: Rng): NemesisOp {
  const draws = options.delay ?? {};
  const { nodes: targets } = drawTargets(options.nodes, rng, options.targets);
  const shape = rng.pick(linkShapes);
  const delayMs = rng.pick(draws.delaysMs ?? DEFAULT_DELAYS_MS);
  const jitters = (draws.jittersMs ?? DEFAULT_JITTERS_MS).filter((j) => j <= delayMs);
  const jitterMs = jitters.length > 0 ? rng.pick(jitters) : 0;
  const duplicatePercent = rng.pick(draws.duplicatePercents ?? DEFAULT_DUPLICATE_PERCENTS);
  const links = delayLinks(shape, options.nodes, targets, { delayMs, jitterMs, duplicatePercent }, rng);
  return { f: F.start, value: { nodes: delayNodes(links), shape, links } };
}

/** The iptables rules of one sender: its packets to each delayed peer go to faultline-delay's queue, duplicates excepted. */
export function delayRules(cluster: ClusterControl, peers: Readonly<Record<string, LinkDelay>>): RuleSpec[] {
  return Object.keys(peers)
    .sort()
    .map((peer) => [
      '-d', `${ipOf(cluster, peer)}/32`,
      '-m', 'mark', '!', '--mark', `0x${DUPLICATE_MARK.toString(16)}`,
      '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE), '--queue-bypass',
    ]);
}

/** faultline-delay's config of one sender: "<peer IP> <delay µs> <jitter µs> <duplicate ‰>" per delayed peer. */
export function delayConfig(cluster: ClusterControl, peers: Readonly<Record<string, LinkDelay>>): string[] {
  return Object.keys(peers)
    .sort()
    .map((peer) => {
      const d = peers[peer];
      return `${ipOf(cluster, peer)} ${Math.round(d.delayMs * 1000)} ${Math.round(d.jitterMs * 1000)} ${Math.round(d.duplicatePercent * 10)}`;
    });
}

/** What faultline-delay reports in its stats file. */
export interface DelayProgramStats {
  readonly pid: number;
  readonly final: boolean;
  readonly packets: number;
  readonly unmatched: number;
  readonly held: number;
  readonly maxHeld: number;
  readonly reordered: number;
  readonly duplicated: number;
  readonly duplicateErrors: number;
  readonly verdictErrors: number;
  readonly cpuUserUs: number;
  readonly cpuSysUs: number;
  readonly links: readonly { readonly ip: string; readonly delayUs: number; readonly jitterUs: number; readonly duplicatePermille: number; readonly packets: number; readonly reordered: number; readonly duplicated: number; readonly maxDelayUs: number }[];
}

/** What a node shows now: the delay chain's rules, the live program's pid and its stats. */
export interface DelayReadBack {
  readonly rules: readonly string[];
  readonly pids: readonly number[];
  readonly stats?: DelayProgramStats;
  /** The last lines of the program's log (why it did not start, a bad config line). */
  readonly log: string;
}

/** Where what a node shows differs from what it should have (pure, so unit-tested); [] when it matches. */
export function delayMismatches(cluster: ClusterControl, node: string, want: Readonly<Record<string, LinkDelay>> | undefined, found: DelayReadBack): string[] {
  const out: string[] = [];
  const peers = want ?? {};
  const wantDest = Object.keys(peers).map((p) => `${ipOf(cluster, p)}/32`).sort();
  const foundDest = found.rules.map((line) => /-d (\S+)/.exec(line)?.[1] ?? '?').sort();
  if (JSON.stringify(wantDest) !== JSON.stringify(foundDest)) out.push(`${node}: the delay chain queues packets to [${foundDest.join(', ')}], expected [${wantDest.join(', ')}]`);
  for (const line of found.rules) {
    if (!line.includes(`--queue-num ${DELAY_QUEUE}`) || !line.includes('--queue-bypass')) out.push(`${node}: delay rule "${line}" is not NFQUEUE ${DELAY_QUEUE} with --queue-bypass`);
  }
  const log = found.log.trim() ? ` (its log: ${found.log.trim().split('\n').slice(-3).join(' | ')})` : '';
  if (wantDest.length === 0) {
    if (found.pids.length > 0) out.push(`${node}: ${PROGRAM} is still running (pid ${found.pids.join(', ')})`);
    return out;
  }
  if (found.pids.length !== 1) {
    out.push(`${node}: expected one ${PROGRAM} running, found ${found.pids.length}${log}`);
    return out;
  }
  if (!found.stats || found.stats.pid !== found.pids[0]) {
    out.push(`${node}: ${PROGRAM} (pid ${found.pids[0]}) has written no stats of its own${log}`);
    return out;
  }
  const expect = delayConfig(cluster, peers).sort();
  const shown = found.stats.links.map((l) => `${l.ip} ${l.delayUs} ${l.jitterUs} ${l.duplicatePermille}`).sort();
  if (JSON.stringify(expect) !== JSON.stringify(shown)) out.push(`${node}: ${PROGRAM} holds [${shown.join('; ')}], expected [${expect.join('; ')}]${log}`);
  return out;
}

/** The live (not zombie) faultline-delay pids, as a shell function. */
const LIVE = `live() { for p in $(pgrep -x ${PROGRAM}); do grep -qs '^State:[[:space:]]*Z' /proc/$p/status || echo $p; done; }`;

/** Parses the output of the read-back script: rules, ---, pids, ---, stats JSON, ---, log tail. */
export function parseReadBack(stdout: string): DelayReadBack {
  const [rules = '', pids = '', stats = '', log = ''] = stdout.split('---\n');
  let parsed: DelayProgramStats | undefined;
  try {
    parsed = stats.trim() ? (JSON.parse(stats) as DelayProgramStats) : undefined;
  } catch {
    parsed = undefined;
  }
  return {
    rules: rules.split('\n').filter((l) => l.startsWith(`-A ${DELAY_CHAIN} `)),
    pids: pids.split(/\s+/).filter(Boolean).map(Number),
    ...(parsed ? { stats: parsed } : {}),
    log,
  };
}

const READ_BACK = `${LIVE}; iptables -w -S ${DELAY_CHAIN} 2>/dev/null || true; echo ---; live; echo ---; cat ${STATS} 2>/dev/null; echo ---; tail -n 5 ${LOG} 2>/dev/null; true`;

/** Reads a node's delay state back. */
export async function readDelay(cluster: ClusterControl, node: string): Promise<DelayReadBack> {
  return parseReadBack((await run(cluster, node, ['sh', '-c', READ_BACK])).stdout);
}

/** What applying or ending a node's delay did: the state read back right after, and the program's final stats when it was ended. */
export interface DelayApplied {
  readonly found: DelayReadBack;
  readonly ended?: DelayProgramStats;
}

/**
 * Puts one sender's links in force, in one exec (each costs a second or more on a loaded machine):
 * the config written, faultline-delay started (or told to re-read it with SIGHUP), then the rules in
 * one iptables-restore transaction and the jump from OUTPUT; with no links, the rules go first and then
 * the program (SIGTERM: it lets what it holds go and exits). Prints the state read back.
 */
export async function applyNodeDelay(cluster: ClusterControl, node: string, peers: Readonly<Record<string, LinkDelay>> | undefined): Promise<DelayApplied> {
  if (!peers || Object.keys(peers).length === 0) return await endNodeDelay(cluster, node);
  const config = delayConfig(cluster, peers);
  const restore = ['*filter', `:${DELAY_CHAIN} - [0:0]`, ...delayRules(cluster, peers).map((rule) => [`-A ${DELAY_CHAIN}`, ...rule].join(' ')), 'COMMIT'];
  // Positional arguments: the config lines, then "--", then the iptables-restore lines; no value is parsed by a shell.
  const script =
    `set -e; ${LIVE}; mkdir -p ${DIR}; : > ${CONFIG}.tmp; while [ "$1" != -- ]; do printf '%s\\n' "$1" >> ${CONFIG}.tmp; shift; done; shift; ` +
    `mv ${CONFIG}.tmp ${CONFIG}; pid=$(live); ` +
    `if [ -n "$pid" ]; then kill -HUP $pid; sleep 0.05; else rm -f ${STATS}; ` +
    `setsid ${PROGRAM} --queue ${DELAY_QUEUE} --config ${CONFIG} --stats ${STATS} >>${LOG} 2>&1 </dev/null & ` +
    // Started: wait (up to 2 s) for its first stats, written once it listens on the queue.
    `i=0; while [ ! -s ${STATS} ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; ` +
    `[ -s ${STATS} ] || { echo "${PROGRAM} did not start:" >&2; tail -n 5 ${LOG} >&2; exit 1; }; fi; ` +
    `printf '%s\\n' "$@" | iptables-restore -w --noflush; ` +
    `iptables -w -C OUTPUT -j ${DELAY_CHAIN} 2>/dev/null || iptables -w -I OUTPUT 1 -j ${DELAY_CHAIN}; set +e; ${READ_BACK}`;
  const result = await run(cluster, node, ['sh', '-c', script, 'faultline-delay', ...config, '--', ...restore]);
  return { found: parseReadBack(result.stdout) };
}

/** Empties the delay chain and ends faultline-delay on a node, in one exec; a stopped container has neither. */
export async function endNodeDelay(cluster: ClusterControl, node: string): Promise<DelayApplied> {
  const script =
    `${LIVE}; if iptables -w -n -L ${DELAY_CHAIN} >/dev/null 2>&1; then iptables -w -F ${DELAY_CHAIN} || exit 1; fi; pids=$(live); ` +
    `if [ -n "$pids" ]; then kill -TERM $pids; i=0; while [ -n "$(live)" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; ` +
    `if [ -n "$(live)" ]; then kill -KILL $(live); echo "${PROGRAM} did not end on SIGTERM within 2 s; killed" >&2; fi; cat ${STATS} 2>/dev/null; fi; echo ===; ${READ_BACK}`;
  try {
    const result = await run(cluster, node, ['sh', '-c', script]);
    const [final, rest = ''] = result.stdout.split('===\n');
    let ended: DelayProgramStats | undefined;
    try {
      ended = final.trim() ? (JSON.parse(final) as DelayProgramStats) : undefined;
    } catch {
      ended = undefined;
    }
    return { found: parseReadBack(rest), ...(ended ? { ended } : {}) };
  } catch (error) {
    // A stopped container has a fresh network namespace when it starts again, and no program.
    if (containerStopped(error)) return { found: { rules: [], pids: [], log: '' } };
    throw error;
  }
}

// Runs inside a sender's container as `node -e RTT port samples ip...`: times `samples` TCP handshakes
// to each address, all at once, and prints the median per address in ms. connect() completes on the
// SYN-ACK, so it measures one round trip of the link.
const RTT = `
const net = require('node:net');
const [port, samples, timeoutMs, ...ips] = process.argv.slice(1);
const once = (ip) => new Promise((resolve) => {
  const t = process.hrtime.bigint();
  const s = net.connect({ host: ip, port: Number(port) });
  const done = (ok) => { s.destroy(); resolve(ok ? Number(process.hrtime.bigint() - t) / 1e6 : null); };
  s.setTimeout(Number(timeoutMs), () => done(false));
  s.once('connect', () => done(true));
  s.once('error', () => done(false));
});
(async () => {
  const out = {};
  await Promise.all(ips.map(async (ip) => {
    // The samples run at once (separate handshakes), so a measurement takes one round trip, not several.
    const got = (await Promise.all(Array.from({ length: Number(samples) }, () => once(ip)))).filter((ms) => ms !== null);
    got.sort((a, b) => a - b);
    out[ip] = got.length ? Math.round(got[Math.floor(got.length / 2)] * 100) / 100 : null;
  }));
  console.log(JSON.stringify(out));
})();
`;

/**
 * Median TCP handshake times (ms) from `node` to each peer's service port, measured inside its
 * container; null when no handshake completed within `timeoutMs` (default 5 s; a start passes what its
 * delays allow, so a link another fault cuts costs about a second, not five).
 */
export async function measureRtt(cluster: ClusterControl, node: string, peers: readonly string[], options: { readonly port?: number; readonly samples?: number; readonly timeoutMs?: number } = {}): Promise<Record<string, number | null>> {
  const ips = peers.map((p) => ipOf(cluster, p));
  const result = await run(cluster, node, ['node', '-e', RTT, String(options.port ?? 7000), String(options.samples ?? 3), String(options.timeoutMs ?? 5000), ...ips], 30_000);
  const byIp = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number | null>;
  return Object.fromEntries(peers.map((p, i) => [p, byIp[ips[i]] ?? null]));
}

/** The least round-trip delay a pair should show: both directions' delays less their jitter. */
export function expectedRttRiseMs(links: DelayLinks, a: string, b: string): number {
  const one = (from: string, to: string) => {
    const d = links[from]?.[to];
    return d ? d.delayMs - d.jitterMs : 0;
  };
  return one(a, b) + one(b, a);
}

export class DelayNemesis implements Nemesis {
  readonly name = 'delay';
  #cluster: ClusterControl | undefined;
  /** The links in force, which a node that comes back gets again. */
  #links: DelayLinks = {};
  /** Nodes whose last change was deferred (stopped or paused). */
  readonly #pending = new Set<string>();
  #unlisten: (() => void) | undefined;

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    this.#unlisten?.();
    this.#unlisten = cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f === F.start) return await this.#start(cluster, op);
      if (op.f === F.stop) return await this.#stop(cluster, op);
      return unknownOp(this.name, op, [F.start, F.stop]);
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /** Puts `links` in force on every node (a node with none gets nothing); returns deferred nodes, errors and final stats of ended programs. */
  async #apply(cluster: ClusterControl, links: DelayLinks, nodes: readonly string[]) {
    this.#links = links;
    const stats: Record<string, DelayProgramStats> = {};
    const found: Record<string, DelayReadBack> = {};
    const result = await onEveryNode(nodes, async (node) => {
      const applied = await applyNodeDelay(cluster, node, links[node]);
      found[node] = applied.found;
      if (applied.ended) stats[node] = applied.ended;
    });
    for (const node of nodes) {
      if (node in result.deferred) this.#pending.add(node);
      else if (!result.errors.some((e) => e.message.includes(node))) this.#pending.delete(node);
    }
    return { ...result, stats, found };
  }

  async #start(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const names = cluster.nodes.map((n) => n.name);
    const links = normalizeDelayLinks((op.value.links ?? {}) as DelayLinks);
    validateDelayLinks(names, links);
    if (Object.keys(links).length === 0) throw new Error('start-delay needs value.links with at least one delayed link');
    const applied = await this.#apply(cluster, links, sortNodes(names));
    const done = { nodes: delayNodes(links), links, ...(Object.keys(applied.deferred).length > 0 ? { deferred: applied.deferred } : {}) };
    if (applied.errors.length > 0) {
      return completion(op, { ...done, verified: false, unverified: `not applied on every node: ${applied.errors.map((e) => errorText(e)).join('; ')}` }, new AggregateError(applied.errors));
    }
    return completion(op, { ...done, ...(await this.#check(cluster, applied.found, applied.deferred, true)) });
  }

  async #stop(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    const applied = await this.#apply(cluster, {}, sortNodes(cluster.nodes.map((n) => n.name)));
    const check = applied.errors.length === 0 ? await this.#check(cluster, applied.found, applied.deferred, false) : { verified: false, unverified: `not removed on every node: ${applied.errors.map((e) => errorText(e)).join('; ')}` };
    const value = { nodes: op.value.nodes ?? [], links: {}, ...(Object.keys(applied.stats).length > 0 ? { stats: summarizeStats(applied.stats) } : {}), ...(Object.keys(applied.deferred).length > 0 ? { deferred: applied.deferred } : {}), ...check };
    return completion(op, value, applied.errors.length > 0 ? new AggregateError(applied.errors) : undefined);
  }

  /**
   * Reads every running node back against the links in force and, after a start, measures the
   * handshake time from each delayed sender to its peers: a pair whose time did not rise by at least
   * RTT_PROOF_SHARE of its delay makes the op unverified.
   */
  async #check(cluster: ClusterControl, found: Readonly<Record<string, DelayReadBack>>, deferred: Readonly<Record<string, string>>, measure: boolean): Promise<NemesisValue> {
    const links = this.#links;
    const names = sortNodes(cluster.nodes.map((n) => n.name));
    // What each node printed right after the change is its read-back; a node that printed nothing was
    // deferred (stopped or paused) and is read back when it comes back.
    const running = names.filter((n) => n in found);
    const excluded = Object.fromEntries(names.filter((n) => n in deferred).map((n) => [n, deferred[n]]));
    const problems: string[] = [];
    for (const node of running) problems.push(...delayMismatches(cluster, node, links[node], found[node]));
    const rttMs: Record<string, Record<string, number | null>> = {};
    // Pairs whose handshake could not complete, proven by the program's own counters instead.
    const heldOnCut: Record<string, Record<string, { packets: number; maxDelayMs: number }>> = {};
    if (measure) {
      await Promise.all(
        Object.keys(links)
          .filter((from) => running.includes(from))
          .map(async (from) => {
            const peers = Object.keys(links[from]).filter((p) => running.includes(p));
            if (peers.length === 0) return;
            try {
              // A handshake crosses each delayed direction once: allow both delays and their jitter, plus a second.
              const timeoutMs = 1000 + Math.max(...peers.map((to) => (links[from][to]?.delayMs ?? 0) + (links[from][to]?.jitterMs ?? 0) + (links[to]?.[from]?.delayMs ?? 0) + (links[to]?.[from]?.jitterMs ?? 0)));
              rttMs[from] = await measureRtt(cluster, from, peers, { timeoutMs });
              const cut: string[] = [];
              for (const to of peers) {
                const want = RTT_PROOF_SHARE * expectedRttRiseMs(links, from, to);
                const got = rttMs[from][to];
                if (got === null) cut.push(to);
                else if (got < want) problems.push(`${from}→${to}: the handshake took ${got} ms, expected at least ${Number(want.toFixed(1))} ms (${RTT_PROOF_SHARE * 100}% of the delay in force both ways)`);
              }
              // No handshake completed: the link is cut (another fault, e.g. a partition dropping what the
              // peer receives). The delay is still proven in force if the program held the attempt's
              // packets for the link's delay: its per-link counters (rewritten every 200 ms) say so.
              if (cut.length > 0) {
                await new Promise((resolve) => setTimeout(resolve, 400));
                const after = await readDelay(cluster, from).catch(() => undefined);
                for (const to of cut) {
                  const ip = ipOf(cluster, to);
                  const before = found[from]?.stats?.links.find((l) => l.ip === ip)?.packets ?? 0;
                  const link = after?.stats?.links.find((l) => l.ip === ip);
                  const d = links[from][to];
                  const wantUs = RTT_PROOF_SHARE * (d.delayMs - d.jitterMs) * 1000;
                  if (link && link.packets > before && link.maxDelayUs >= wantUs) (heldOnCut[from] ??= {})[to] = { packets: link.packets - before, maxDelayMs: Math.round(link.maxDelayUs / 100) / 10 };
                  else problems.push(`${from}→${to}: no TCP handshake completed to measure the delay, and ${PROGRAM} shows no packet held on the link for it (${link ? `${link.packets - before} new packets, longest hold ${link.maxDelayUs / 1000} ms` : 'no stats for the link'})`);
                }
              }
            } catch (error) {
              problems.push(`${from}: could not measure its round trips: ${errorText(error)}`);
            }
          }),
      );
    }
    if (running.length === 0) problems.push('no node is running: the delay is applied and read back when they come back');
    return {
      ...(Object.keys(rttMs).length > 0 ? { rttMs: Object.fromEntries(sortNodes(Object.keys(rttMs)).map((n) => [n, rttMs[n]])) } : {}),
      ...(Object.keys(heldOnCut).length > 0 ? { heldOnCutLinks: heldOnCut } : {}),
      ...(Object.keys(excluded).length > 0 ? { excluded } : {}),
      verified: problems.length === 0,
      ...(problems.length > 0 ? { unverified: problems.sort().join('; ') } : {}),
    };
  }

  /** A node came back: a restarted one has a fresh network namespace and no program, so it gets its links again, read back. */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    if (event === 'healthy') return undefined;
    const peers = this.#links[node];
    if (!peers && !this.#pending.has(node)) return undefined;
    try {
      const applied = await applyNodeDelay(cluster, node, peers);
      this.#pending.delete(node);
      const problems = delayMismatches(cluster, node, peers, applied.found);
      return { node, links: peers ? { [node]: peers } : {}, verified: problems.length === 0, ...(problems.length > 0 ? { unverified: problems.join('; ') } : {}) };
    } catch (error) {
      const message = errorText(error);
      return { node, verified: false, unverified: `re-applying failed: ${message}`, error: message };
    }
  }

  /** Empties the delay chain and ends faultline-delay on every node, then reads back that both are gone. */
  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      this.#links = {};
      this.#pending.clear();
      const nodes = sortNodes(cluster.nodes.map((n) => n.name));
      const errors = await collectErrors(nodes, async (node) => {
        const { found } = await endNodeDelay(cluster, node);
        const left = delayMismatches(cluster, node, undefined, found);
        if (left.length > 0) throw new Error(`after healing, ${left.join('; ')}`);
      });
      return healReport(errors, { nodes, links: {} });
    } catch (error) {
      return healReport([error], { links: {} });
    }
  }

  async teardown(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    const cluster = this.#cluster;
    if (!cluster) return;
    const errors = await collectErrors(cluster.nodes.map((n) => n.name), async (node) => {
      await endNodeDelay(cluster, node);
      await removeChain(cluster, node, DELAY_CHAIN);
    });
    if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => errorText(e)).join('; '));
  }
}

/** The counters of each ended program worth keeping in the history (per node). */
export function summarizeStats(stats: Readonly<Record<string, DelayProgramStats>>): Record<string, NemesisValue> {
  return Object.fromEntries(
    sortNodes(Object.keys(stats)).map((node) => {
      const s = stats[node];
      return [node, { packets: s.packets, reordered: s.reordered, duplicated: s.duplicated, duplicateErrors: s.duplicateErrors, maxHeld: s.maxHeld, verdictErrors: s.verdictErrors, cpuUs: s.cpuUserUs + s.cpuSysUs }];
    }),
  );
}

/**
 * Why the delay package cannot run in this cluster: iptables must work, the kernel must take an
 * NFQUEUE rule (CONFIG_NETFILTER_XT_TARGET_NFQUEUE) and the image must have faultline-delay. The
 * probe adds the rule to a throwaway chain that nothing jumps to, so no packet is touched.
 */
export async function delayUnsupported(cluster: ClusterControl): Promise<string | undefined> {
  const iptables = await iptablesUnsupported(cluster);
  if (iptables) return iptables;
  const node = cluster.nodes[0].name;
  const chain = 'FAULTLINE-NFQ-PROBE';
  const script =
    `command -v ${PROGRAM} >/dev/null || { echo "${PROGRAM} is not in the node image (rebuild it: npm run setup)" >&2; exit 3; }; ` +
    `iptables -w -N ${chain} 2>/dev/null || iptables -w -F ${chain}; ` +
    `iptables -w -A ${chain} -j NFQUEUE --queue-num ${DELAY_QUEUE} --queue-bypass; rc=$?; iptables -w -F ${chain}; iptables -w -X ${chain}; exit $rc`;
  const command = ['sh', '-c', script];
  const result = await cluster.exec(node, command).catch((cause: unknown) => new NodeCommandError(node, command, undefined, cause));
  if (result instanceof NodeCommandError) return result.message;
  if (result.exitCode === 0) return undefined;
  const output = (result.stderr || result.stdout).trim();
  if (result.exitCode === 3) return output;
  return `the kernel takes no iptables NFQUEUE rule (${node}: iptables -A ... -j NFQUEUE exited ${result.exitCode}: ${output}), so packets cannot be queued to faultline-delay; it needs CONFIG_NETFILTER_XT_TARGET_NFQUEUE and CONFIG_NETFILTER_NETLINK_QUEUE`;
}

export function delayPackage(options: DelayOptions): FaultlinePackage {
  return {
    name: 'delay',
    healOrder: HEAL_LATER,
    nemesis: new DelayNemesis(),
    handles: (op) => op.f === F.start || op.f === F.stop,
    unsupported: (cluster) => delayUnsupported(cluster),
    ops: (rng) =>
      alternate(
        rng,
        (r) => delayStartOp(options, r),
        (started) => ({ f: F.stop, value: { nodes: started.value.nodes ?? [] } }),
      ),
  };
}
