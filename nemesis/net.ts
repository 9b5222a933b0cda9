// The network layer under the partition and packet nemeses: it turns pure descriptions (a grudge, a loss
// probability, a bandwidth limit) into iptables rules and tc qdiscs inside the node containers, through
// ClusterControl.exec. Every iptables rule faultline adds lives in a chain of its own (one per nemesis,
// jumped to from INPUT), and every qdisc it adds carries its own handle, so healing removes exactly what
// faultline added and leaves any other rule or qdisc alone. Errors name the node, the command and what
// it printed.
import type { ClusterControl, ExecResult } from './types.ts';
import { normalizeGrudge, validateGrudge, type Grudge } from './grudge.ts';

/** Chain holding the partition nemesis's DROP rules. */
export const PARTITION_CHAIN = 'FAULTLINE-PARTITION';
/** Chain holding the packet nemesis's random-loss rules. */
export const LOSS_CHAIN = 'FAULTLINE-LOSS';
/** Chain holding the delay nemesis's NFQUEUE rules (on OUTPUT: a node delays what it sends). */
export const DELAY_CHAIN = 'FAULTLINE-DELAY';
/** Every faultline chain; a rule outside these chains is never touched. */
export const FAULTLINE_CHAINS = [PARTITION_CHAIN, LOSS_CHAIN, DELAY_CHAIN] as const;
/**
 * The built-in chain each faultline chain is jumped to from: partitions and loss drop what a node
 * receives (INPUT, by source); delay holds what a node sends (OUTPUT, by destination), as netem does.
 */
export function hookOf(chain: string): 'INPUT' | 'OUTPUT' {
  return chain === DELAY_CHAIN ? 'OUTPUT' : 'INPUT';
}
/** Root qdisc handle (hex) of the qdiscs faultline adds; a root qdisc with another handle is left alone. */
export const QDISC_HANDLE = 'fa17';

/** Default time limit of one command inside a container. */
const EXEC_TIMEOUT_MS = 10_000;

/** One iptables rule in a faultline chain, as iptables arguments after `-A CHAIN`. */
export type RuleSpec = readonly string[];

/** An error from a command run inside a node container; the message names node, command and output. */
export class NodeCommandError extends Error {
  readonly node: string;
  readonly command: readonly string[];
  readonly result?: ExecResult;
  constructor(node: string, command: readonly string[], result: ExecResult | undefined, cause?: unknown) {
    const output = result ? `exited ${result.exitCode}: ${(result.stderr || result.stdout).trim() || '(no output)'}` : `failed: ${errorText(cause)}`;
    super(`${node}: ${shellLine(command)} ${output}`, { cause });
    this.name = 'NodeCommandError';
    this.node = node;
    this.command = command;
    this.result = result;
  }
}

/** Runs a command in a node's container and throws NodeCommandError unless it exits 0. */
export async function run(
  cluster: ClusterControl,
  node: string,
  command: readonly string[],
  timeoutMs = EXEC_TIMEOUT_MS,
): Promise<ExecResult> {
  let result: ExecResult;
  try {
    result = await cluster.exec(node, command, { timeoutMs });
  } catch (cause) {
    throw new NodeCommandError(node, command, undefined, cause);
  }
  if (result.exitCode !== 0) throw new NodeCommandError(node, command, result);
  return result;
}

/** The IP of each node, with a clear error for an unknown node. */
export function ipOf(cluster: ClusterControl, node: string): string {
  const found = cluster.nodes.find((n) => n.name === node);
  if (!found) {
    throw new Error(`Unknown node "${node}"; the cluster has: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  }
  return found.ip;
}

// ---------------------------------------------------------------------------
// iptables chains
// ---------------------------------------------------------------------------

/**
 * Replaces the content of a faultline chain on one node with the given rules, atomically: one
 * iptables-restore transaction (--noflush keeps every other chain as it is; declaring our chain
 * creates it or empties it). Then the jump from INPUT (OUTPUT for the delay chain, hookOf) is added
 * unless it is already there. An empty
 * rule list leaves the chain empty, which is how a partition is healed between flaps.
 */
export async function setChainRules(
  cluster: ClusterControl,
  node: string,
  chain: string,
  rules: readonly RuleSpec[],
): Promise<void> {
  requireFaultlineChain(chain);
  const lines = ['*filter', `:${chain} - [0:0]`, ...rules.map((rule) => [`-A ${chain}`, ...rule].join(' ')), 'COMMIT'];
  const hook = hookOf(chain);
  // The restore file travels as positional arguments, so no value is ever parsed by a shell.
  const script =
    'set -e; printf "%s\\n" "$@" | iptables-restore -w --noflush; ' +
    `iptables -w -C ${hook} -j ${chain} 2>/dev/null || iptables -w -I ${hook} 1 -j ${chain}`;
  await run(cluster, node, ['sh', '-c', script, 'faultline-iptables', ...lines]);
}

/**
 * True when a command could not run because the node's container is stopped (killed). Docker gives a
 * container a fresh network namespace each time it starts, so a stopped node has no rules and no
 * qdiscs left to remove: removal steps count that as done (measured: a chain added before
 * `docker kill` is gone after `docker start`).
 */
export function containerStopped(error: unknown): boolean {
  return error instanceof NodeCommandError && error.result === undefined && /is not running/i.test(errorText(error.cause));
}

/**
 * Why a command could not run in a node's container, when that is because the container is stopped
 * (killed) or paused (`docker exec` into a frozen container fails); undefined for any other error.
 * Such a node is not an error for a nemesis: what it should have is re-applied when it comes back.
 */
export function containerUnavailable(error: unknown): 'stopped' | 'paused' | undefined {
  if (!(error instanceof NodeCommandError) || error.result !== undefined) return undefined;
  const text = errorText(error.cause);
  if (/is paused/i.test(text)) return 'paused';
  if (/is not running/i.test(text)) return 'stopped';
  return undefined;
}

/** What a step on every node did: nodes it was deferred on (stopped or paused), and real failures. */
export interface EveryNode {
  readonly deferred: Record<string, 'stopped' | 'paused'>;
  readonly errors: Error[];
}

/**
 * Runs a step on every node in parallel, like collectErrors, but a node whose container is stopped or
 * paused is deferred (the caller re-applies it when the node comes back), not failed.
 */
export async function onEveryNode(nodes: readonly string[], step: (node: string) => Promise<void>): Promise<EveryNode> {
  const deferred: Record<string, 'stopped' | 'paused'> = {};
  const errors = await collectErrors(nodes, async (node) => {
    try {
      await step(node);
    } catch (error) {
      const why = containerUnavailable(error) ?? containerUnavailable(error instanceof AggregateError ? error.errors[0] : undefined);
      if (why === undefined) throw error;
      deferred[node] = why;
    }
  });
  return { deferred, errors };
}

async function removal(step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!containerStopped(error)) throw error;
  }
}

/** Empties a faultline chain on one node; a chain that does not exist (or a stopped node) counts as empty. */
export async function flushChain(cluster: ClusterControl, node: string, chain: string): Promise<void> {
  requireFaultlineChain(chain);
  await removal(() => run(cluster, node, ['sh', '-c', `if iptables -w -n -L ${chain} >/dev/null 2>&1; then iptables -w -F ${chain}; fi`]));
}

/** Removes a faultline chain and every jump to it (from INPUT, or OUTPUT for the delay chain); nothing else is touched. */
export async function removeChain(cluster: ClusterControl, node: string, chain: string): Promise<void> {
  requireFaultlineChain(chain);
  const hook = hookOf(chain);
  const script =
    `while iptables -w -C ${hook} -j ${chain} 2>/dev/null; do iptables -w -D ${hook} -j ${chain}; done; ` +
    `if iptables -w -n -L ${chain} >/dev/null 2>&1; then iptables -w -F ${chain} && iptables -w -X ${chain}; fi`;
  await removal(() => run(cluster, node, ['sh', '-c', script]));
}

/** The rules now in a faultline chain on a node (`iptables -S` lines), [] when the chain does not exist. */
export async function listChain(cluster: ClusterControl, node: string, chain: string): Promise<string[]> {
  requireFaultlineChain(chain);
  const result = await run(cluster, node, ['sh', '-c', `iptables -w -S ${chain} 2>/dev/null || true`]);
  return result.stdout.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
}

/** The DROP rules that make each node drop the packets of the nodes in its grudge, per node. */
export function partitionRules(cluster: ClusterControl, grudge: Grudge): Record<string, RuleSpec[]> {
  validateGrudge(cluster.nodes.map((n) => n.name), grudge);
  const normal = normalizeGrudge(grudge);
  const rules: Record<string, RuleSpec[]> = {};
  for (const { name } of cluster.nodes) {
    rules[name] = (normal[name] ?? []).map((source) => ['-s', `${ipOf(cluster, source)}/32`, '-j', 'DROP']);
  }
  return rules;
}

/**
 * Puts a grudge in force on every node (in parallel), replacing the previous one: nodes with an empty
 * grudge get an empty chain. Throws an AggregateError of NodeCommandErrors if any node failed.
 */
export async function applyGrudge(cluster: ClusterControl, grudge: Grudge, chain = PARTITION_CHAIN): Promise<void> {
  const rules = partitionRules(cluster, grudge);
  await allNodes(cluster.nodes.map((n) => n.name), (node) => setChainRules(cluster, node, chain, rules[node]));
}

/** Random loss: each node in `links` drops each listed peer's packets with the given probability. */
export function lossRules(cluster: ClusterControl, links: Grudge, probability: number): Record<string, RuleSpec[]> {
  if (!(probability > 0 && probability <= 1)) {
    throw new Error(`Expected a packet loss probability in (0, 1], got ${probability}`);
  }
  validateGrudge(cluster.nodes.map((n) => n.name), links);
  const rules: Record<string, RuleSpec[]> = {};
  for (const [node, peers] of Object.entries(links)) {
    rules[node] = peers.map((peer) => [
      '-s', `${ipOf(cluster, peer)}/32`,
      '-m', 'statistic', '--mode', 'random', '--probability', String(probability),
      '-j', 'DROP',
    ]);
  }
  return rules;
}

// ---------------------------------------------------------------------------
// tc: bandwidth limits and netem
// ---------------------------------------------------------------------------

/** Interface names already looked up, per cluster, by node and IP (a restart may change the IP, never the name for a given IP). */
const interfaces = new WeakMap<ClusterControl, Map<string, string>>();

/** The interface a node uses to reach its peers (the one holding its cluster IP). */
export async function clusterInterface(cluster: ClusterControl, node: string): Promise<string> {
  const ip = ipOf(cluster, node);
  const known = interfaces.get(cluster)?.get(`${node}@${ip}`);
  if (known) return known;
  const dev = await lookUpInterface(cluster, node, ip);
  if (!interfaces.has(cluster)) interfaces.set(cluster, new Map());
  interfaces.get(cluster)!.set(`${node}@${ip}`, dev);
  return dev;
}

async function lookUpInterface(cluster: ClusterControl, node: string, ip: string): Promise<string> {
  const result = await run(cluster, node, ['ip', '-o', '-4', 'addr', 'show']);
  for (const line of result.stdout.split('\n')) {
    const match = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line);
    if (match && match[2] === ip) return match[1].replace(/@.*$/, '');
  }
  throw new NodeCommandError(node, ['ip', '-o', '-4', 'addr', 'show'], {
    ...result,
    stderr: `no interface holds the cluster IP ${ip}:\n${result.stdout}`,
    exitCode: result.exitCode,
  });
}

/**
 * Limits the bandwidth from `node` to the given peers: an htb root qdisc (handle fa17:) sends traffic
 * to those peers (u32 match on the destination IP) through a class with a tbf leaf at the given rate,
 * and everything else through an unlimited default class. Refuses to replace a root qdisc faultline
 * did not add.
 */
export async function limitBandwidth(
  cluster: ClusterControl,
  node: string,
  peers: readonly string[],
  rateKbit: number,
): Promise<void> {
  if (!(Number.isInteger(rateKbit) && rateKbit >= 8)) {
    throw new Error(`Expected a bandwidth limit rateKbit as an integer of at least 8 kbit/s, got ${rateKbit}`);
  }
  const dev = await clusterInterface(cluster, node);
  await requireOwnRootQdisc(cluster, node, dev);
  const h = QDISC_HANDLE;
  const commands = [
    `tc qdisc del dev ${dev} root 2>/dev/null || true`,
    `tc qdisc add dev ${dev} root handle ${h}: htb default 1`,
    `tc class add dev ${dev} parent ${h}: classid ${h}:1 htb rate 10gbit`,
    `tc class add dev ${dev} parent ${h}: classid ${h}:10 htb rate ${rateKbit}kbit ceil ${rateKbit}kbit`,
    `tc qdisc add dev ${dev} parent ${h}:10 handle ${(parseInt(h, 16) + 1).toString(16)}: tbf rate ${rateKbit}kbit burst 32kbit latency 400ms`,
    ...peers.map((peer) => `tc filter add dev ${dev} parent ${h}: protocol ip prio 1 u32 match ip dst ${ipOf(cluster, peer)}/32 flowid ${h}:10`),
  ];
  await run(cluster, node, ['sh', '-c', `set -e; ${commands.join('; ')}`]);
}

/** Netem behaviours; they need the sch_netem kernel module. */
export interface NetemSpec {
  readonly delayMs?: number;
  readonly jitterMs?: number;
  readonly duplicatePercent?: number;
  readonly reorderPercent?: number;
}

/** The netem arguments for a spec (reordering needs a delay to reorder against). */
export function netemArgs(spec: NetemSpec): string[] {
  const args: string[] = [];
  const delayMs = spec.delayMs ?? (spec.reorderPercent ? 10 : 0);
  if (delayMs > 0) args.push('delay', `${delayMs}ms`, ...(spec.jitterMs ? [`${spec.jitterMs}ms`] : []));
  if (spec.reorderPercent) args.push('reorder', `${spec.reorderPercent}%`, '50%');
  if (spec.duplicatePercent) args.push('duplicate', `${spec.duplicatePercent}%`);
  if (args.length === 0) throw new Error('A netem fault needs delayMs, duplicatePercent or reorderPercent');
  return args;
}

/** Installs a netem root qdisc (handle fa17:) on a node's cluster interface. */
export async function applyNetem(cluster: ClusterControl, node: string, spec: NetemSpec): Promise<void> {
  const dev = await clusterInterface(cluster, node);
  await requireOwnRootQdisc(cluster, node, dev);
  await run(cluster, node, ['sh', '-c', `set -e; tc qdisc del dev ${dev} root 2>/dev/null || true; tc qdisc add dev ${dev} root handle ${QDISC_HANDLE}: netem ${netemArgs(spec).join(' ')}`]);
}

/** Removes faultline's root qdisc from a node's cluster interface; any other root qdisc is left alone. */
export async function removeQdisc(cluster: ClusterControl, node: string): Promise<void> {
  await removal(async () => {
    const dev = await clusterInterface(cluster, node);
    const shown = await run(cluster, node, ['tc', 'qdisc', 'show', 'dev', dev, 'root']);
    if (new RegExp(`^qdisc \\S+ ${QDISC_HANDLE}: root`, 'm').test(shown.stdout)) {
      await run(cluster, node, ['tc', 'qdisc', 'del', 'dev', dev, 'root']);
    }
  });
}

/** The root qdisc line of a node's cluster interface, e.g. "qdisc noqueue 0: root refcnt 2". */
export async function rootQdisc(cluster: ClusterControl, node: string): Promise<string> {
  const dev = await clusterInterface(cluster, node);
  const shown = await run(cluster, node, ['tc', 'qdisc', 'show', 'dev', dev, 'root']);
  return shown.stdout.trim();
}

/**
 * Why tc netem cannot run in this cluster's containers, or undefined when it can. The probe adds netem
 * to a throwaway veth pair inside the first node's network namespace, so the live interface is never
 * touched.
 */
export async function netemUnsupported(cluster: ClusterControl): Promise<string | undefined> {
  const node = cluster.nodes[0]?.name;
  if (!node) return 'the cluster has no nodes to probe tc netem on';
  const script =
    'ip link add fl-netem0 type veth peer name fl-netem1 || exit 3; ' +
    'tc qdisc add dev fl-netem0 root netem delay 1ms; rc=$?; ip link del fl-netem0; exit $rc';
  const command = ['sh', '-c', script];
  let result: ExecResult;
  try {
    result = await cluster.exec(node, command, { timeoutMs: EXEC_TIMEOUT_MS });
  } catch (cause) {
    return new NodeCommandError(node, command, undefined, cause).message;
  }
  if (result.exitCode === 0) return undefined;
  const output = (result.stderr || result.stdout).trim();
  if (result.exitCode === 3) return `cannot probe tc netem: ${node}: ip link add (veth) failed: ${output}`;
  return (
    `tc netem is not available on this kernel (${node}: tc qdisc add ... netem delay 1ms exited ${result.exitCode}: ` +
    `${output}), so delay, duplicate and reorder faults cannot be injected; load the sch_netem module on the ` +
    'Docker host (modprobe sch_netem) or leave these faults out'
  );
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/**
 * Runs a step on every node in parallel and waits for all of them; if any failed, throws one
 * AggregateError whose message lists every failed node's message.
 */
export async function allNodes(nodes: readonly string[], step: (node: string) => Promise<void>): Promise<void> {
  const errors = await collectErrors(nodes, step);
  if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => errorText(e)).join('; '));
}

/** Runs a step on every node in parallel and returns the errors, one per failed node. */
export async function collectErrors(nodes: readonly string[], step: (node: string) => Promise<void>): Promise<Error[]> {
  const settled = await Promise.allSettled(nodes.map((node) => step(node)));
  const errors: Error[] = [];
  settled.forEach((outcome, i) => {
    if (outcome.status === 'rejected') {
      const reason = outcome.reason;
      errors.push(reason instanceof Error && reason.message.includes(nodes[i]) ? reason : new Error(`${nodes[i]}: ${errorText(reason)}`));
    }
  });
  return errors;
}

/** The message of an error (AggregateErrors spelled out), or the value as text. */
export function errorText(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map((e) => errorText(e)).join('; ') || error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

async function requireOwnRootQdisc(cluster: ClusterControl, node: string, dev: string): Promise<void> {
  const shown = await run(cluster, node, ['tc', 'qdisc', 'show', 'dev', dev, 'root']);
  const line = shown.stdout.trim();
  const defaultKinds = /^qdisc (noqueue|pfifo_fast|mq|fq_codel|pfifo|noop) 0: root/;
  if (line !== '' && !defaultKinds.test(line) && !line.startsWith(`qdisc htb ${QDISC_HANDLE}: root`) && !line.startsWith(`qdisc netem ${QDISC_HANDLE}: root`)) {
    throw new Error(`${node}: ${dev} already has a root qdisc faultline did not add (${line}); remove it or leave out the packet fault`);
  }
}

function requireFaultlineChain(chain: string): void {
  if (!(FAULTLINE_CHAINS as readonly string[]).includes(chain)) {
    throw new Error(`"${chain}" is not a faultline chain; faultline only edits ${FAULTLINE_CHAINS.join(', ')}`);
  }
}

function shellLine(command: readonly string[]): string {
  return command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
