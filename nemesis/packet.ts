// The packet fault packages. `packet` degrades links without cutting them: random loss (iptables
// `statistic` rules in faultline's loss chain) or a bandwidth limit (an htb qdisc with a tbf leaf for
// the chosen peers). `netem` adds delay, duplication or reordering with tc netem; where the kernel has
// no sch_netem (as on the machine this was built on) it reports itself unsupported with the probe's
// output, and its ops fail with that message instead of pretending.
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent } from './types.ts';
import type { NemesisValue } from '../harness/history.ts';
import {
  allNodes,
  applyNetem,
  clusterInterface,
  collectErrors,
  errorText,
  flushChain,
  ipOf,
  limitBandwidth,
  LOSS_CHAIN,
  lossRules,
  netemUnsupported,
  onEveryNode,
  QDISC_HANDLE,
  removeChain,
  removeQdisc,
  run,
  setChainRules,
  type EveryNode,
  type NetemSpec,
  type RuleSpec,
} from './net.ts';
import { iptablesUnsupported } from './partition.ts';
import { completion, failedOp, healReport, HEAL_LATER, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes } from './schedule.ts';
import { validateGrudge, type Grudge } from './grudge.ts';

export const packetBehaviours = ['loss', 'bandwidth'] as const;
export const netemBehaviours = ['delay', 'duplicate', 'reorder'] as const;
export type PacketBehaviour = (typeof packetBehaviours)[number] | (typeof netemBehaviours)[number];

export interface PacketOptions extends FaultPackageOptions {
  /** Loss probabilities to draw from. @default [0.1, 0.3, 0.5] */
  readonly lossProbabilities?: readonly number[];
  /** Bandwidth limits to draw from, in kbit/s. @default [64, 256, 1024] */
  readonly ratesKbit?: readonly number[];
  /** netem delays to draw from, in ms. @default [20, 100, 500] */
  readonly delaysMs?: readonly number[];
}

const F = { start: 'start-packet', stop: 'stop-packet' } as const;

/**
 * The links a packet fault degrades: every target node degrades its traffic with every other node
 * (for loss, the packets it receives from them; for bandwidth, the packets it sends to them).
 */
export function targetLinks(nodes: readonly string[], targets: readonly string[]): Grudge {
  const links: Grudge = {};
  for (const node of targets) links[node] = nodes.filter((other) => other !== node);
  return links;
}

/** The seeded start op of a packet fault of one of the given behaviours. */
export function packetStartOp(options: PacketOptions, behaviours: readonly PacketBehaviour[], rng: Rng): NemesisOp {
  const behaviour = rng.pick(behaviours);
  const { nodes } = drawTargets(options.nodes, rng, options.targets);
  const links = targetLinks(options.nodes, nodes);
  switch (behaviour) {
    case 'loss':
      return { f: F.start, value: { nodes, behaviour, links, probability: rng.pick(options.lossProbabilities ?? [0.1, 0.3, 0.5]) } };
    case 'bandwidth':
      return { f: F.start, value: { nodes, behaviour, links, rateKbit: rng.pick(options.ratesKbit ?? [64, 256, 1024]) } };
    case 'delay':
      return { f: F.start, value: { nodes, behaviour, delayMs: rng.pick(options.delaysMs ?? [20, 100, 500]) } };
    case 'duplicate':
      return { f: F.start, value: { nodes, behaviour, percent: rng.pick([1, 5, 20]) } };
    case 'reorder':
      return { f: F.start, value: { nodes, behaviour, percent: rng.pick([5, 25, 50]) } };
  }
}

function behaviourOf(op: NemesisOp): PacketBehaviour {
  const b = op.value.behaviour;
  if (![...packetBehaviours, ...netemBehaviours].includes(b as PacketBehaviour)) {
    throw new Error(`${op.f}: expected value.behaviour to be one of ${[...packetBehaviours, ...netemBehaviours].join(', ')}, got ${JSON.stringify(b)}`);
  }
  return b as PacketBehaviour;
}

/** What one node should have from this nemesis: loss rules in the loss chain, a bandwidth limit, a netem qdisc. */
export interface NodePacketState {
  readonly loss?: { readonly rules: readonly RuleSpec[]; readonly probability: number; readonly sources: readonly string[] };
  readonly bandwidth?: { readonly peers: readonly string[]; readonly rateKbit: number };
  readonly netem?: NetemSpec;
}

export class PacketNemesis implements Nemesis {
  readonly name: string;
  readonly #behaviours: readonly PacketBehaviour[];
  #cluster: ClusterControl | undefined;
  /** Why netem cannot run here (probed at setup), when this nemesis does netem. */
  #netemProblem: string | undefined;
  /** What each node should have now; a node that comes back from a kill or pause gets it again. */
  readonly #desired = new Map<string, NodePacketState>();
  /** Nodes whose last change was deferred (stopped or paused). */
  readonly #pending = new Set<string>();
  #unlisten: (() => void) | undefined;

  constructor(name: string, behaviours: readonly PacketBehaviour[]) {
    this.name = name;
    this.#behaviours = behaviours;
  }

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    if (this.#behaviours.includes('loss')) {
      await allNodes(cluster.nodes.map((n) => n.name), (node) => setChainRules(cluster, node, LOSS_CHAIN, []));
    }
    if (this.#behaviours.some((b) => (netemBehaviours as readonly string[]).includes(b))) {
      this.#netemProblem = await netemUnsupported(cluster);
    }
    this.#unlisten?.();
    this.#unlisten = cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f === F.stop) return await this.#stop(cluster, op);
      if (op.f !== F.start) return unknownOp(this.name, op, [F.start, F.stop]);
      const behaviour = behaviourOf(op);
      if (!this.#behaviours.includes(behaviour)) {
        throw new Error(`The ${this.name} nemesis does not do ${behaviour}; it does ${this.#behaviours.join(', ')}`);
      }
      const nodes = sortNodes(opNodes(cluster, op));
      return await this.#start(cluster, op, behaviour, nodes);
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /** The per-node states a start op asks for. */
  #plan(cluster: ClusterControl, op: NemesisOp, behaviour: PacketBehaviour, nodes: string[]): Map<string, NodePacketState> {
    const links = (op.value.links ?? targetLinks(cluster.nodes.map((n) => n.name), nodes)) as Grudge;
    validateGrudge(cluster.nodes.map((n) => n.name), links);
    const plan = new Map<string, NodePacketState>();
    switch (behaviour) {
      case 'loss': {
        const probability = op.value.probability as number;
        const rules = lossRules(cluster, links, probability);
        for (const node of Object.keys(rules)) plan.set(node, { loss: { rules: rules[node], probability, sources: links[node] } });
        return plan;
      }
      case 'bandwidth': {
        const rateKbit = op.value.rateKbit as number;
        for (const node of Object.keys(links)) plan.set(node, { bandwidth: { peers: links[node], rateKbit } });
        return plan;
      }
      default: {
        if (this.#netemProblem) throw new Error(`${behaviour} is unsupported: ${this.#netemProblem}`);
        const percent = op.value.percent as number | undefined;
        const spec: NetemSpec =
          behaviour === 'delay' ? { delayMs: op.value.delayMs as number }
          : behaviour === 'duplicate' ? { duplicatePercent: percent }
          : { reorderPercent: percent };
        for (const node of nodes) plan.set(node, { netem: spec });
        return plan;
      }
    }
  }

  async #start(cluster: ClusterControl, op: NemesisOp, behaviour: PacketBehaviour, nodes: string[]): Promise<NemesisCompletion> {
    const plan = this.#plan(cluster, op, behaviour, nodes);
    for (const [node, state] of plan) this.#desired.set(node, { ...this.#desired.get(node), ...state });
    const touched = sortNodes(plan.keys());
    const { deferred, errors } = await this.#applyDesired(cluster, touched);
    const check = await this.#check(cluster, touched.filter((n) => !(n in deferred)), deferred);
    const failed = errors.length > 0 ? { verified: false, unverified: `not applied on every node: ${errors.map((e) => errorText(e)).join('; ')}` } : {};
    return completion(op, { nodes, ...(Object.keys(deferred).length > 0 ? { deferred } : {}), ...check, ...failed }, errors.length > 0 ? new AggregateError(errors) : undefined);
  }

  /** Removes every packet fault this nemesis applied (on every node) and reads back that nothing is left. */
  async #stop(cluster: ClusterControl, op: NemesisOp): Promise<NemesisCompletion> {
    this.#desired.clear();
    const nodes = sortNodes(cluster.nodes.map((n) => n.name));
    const { deferred, errors } = await this.#applyDesired(cluster, nodes);
    const check = await this.#check(cluster, nodes.filter((n) => !(n in deferred)), deferred);
    const failed = errors.length > 0 ? { verified: false, unverified: `not removed on every node: ${errors.map((e) => errorText(e)).join('; ')}` } : {};
    return completion(op, { nodes: op.value.nodes ?? [], ...(Object.keys(deferred).length > 0 ? { deferred } : {}), ...check, ...failed }, errors.length > 0 ? new Error(errors.map((e) => errorText(e)).join('; ')) : undefined);
  }

  /** Puts each node's desired state in force (nothing desired: the loss chain empty, faultline's qdisc gone). */
  async #applyDesired(cluster: ClusterControl, nodes: readonly string[]): Promise<EveryNode> {
    const result = await onEveryNode(nodes, (node) => this.#applyNode(cluster, node));
    for (const node of nodes) {
      if (node in result.deferred) this.#pending.add(node);
      else if (!result.errors.some((e) => e.message.includes(node))) this.#pending.delete(node);
    }
    return result;
  }

  async #applyNode(cluster: ClusterControl, node: string): Promise<void> {
    const want = this.#desired.get(node) ?? {};
    if (this.#behaviours.includes('loss')) await setChainRules(cluster, node, LOSS_CHAIN, want.loss?.rules ?? []);
    if (want.bandwidth) await limitBandwidth(cluster, node, want.bandwidth.peers, want.bandwidth.rateKbit);
    else if (want.netem) await applyNetem(cluster, node, want.netem);
    else await removeQdisc(cluster, node);
  }

  /** Reads back the rules and qdiscs of the given (running) nodes and compares them with what they should have. */
  async #check(cluster: ClusterControl, nodes: readonly string[], deferred: Readonly<Record<string, string>>): Promise<NemesisValue> {
    const problems: string[] = [];
    const readBack: Record<string, { lossRules: number; rootQdisc: string }> = {};
    await Promise.all(
      nodes.map(async (node) => {
        try {
          const found = await this.#readNode(cluster, node);
          readBack[node] = { lossRules: found.lossRules.length, rootQdisc: found.root };
          problems.push(...packetMismatches(cluster, node, this.#desired.get(node) ?? {}, found));
        } catch (error) {
          problems.push(`${node}: could not read its rules back: ${errorText(error)}`);
        }
      }),
    );
    if (nodes.length === 0 && Object.keys(deferred).length > 0) problems.push(`no target is running (${Object.entries(deferred).map(([n, st]) => `${n} ${st}`).join(', ')}): applied and read back when they come back`);
    return {
      readBack: Object.fromEntries(sortNodes(Object.keys(readBack)).map((n) => [n, readBack[n]])),
      verified: problems.length === 0,
      ...(problems.length > 0 ? { unverified: problems.sort().join('; ') } : {}),
    };
  }

  async #readNode(cluster: ClusterControl, node: string): Promise<PacketReadBack> {
    const dev = await clusterInterface(cluster, node);
    // One exec for everything (execs are what a check costs on a loaded machine).
    const chain = this.#behaviours.includes('loss') ? `iptables -w -S ${LOSS_CHAIN} 2>/dev/null || true` : 'true';
    const shown = await run(cluster, node, ['sh', '-c', `${chain}; echo ---; tc qdisc show dev ${dev}; echo ---; tc filter show dev ${dev}`]);
    const [rules, qdiscs = '', filters = ''] = shown.stdout.split('---\n');
    const lossRules = rules.split('\n').filter((line) => line.startsWith(`-A ${LOSS_CHAIN} `));
    const root = qdiscs.split('\n').find((line) => / root /.test(line))?.trim() ?? '';
    return { lossRules, root, qdiscs, filters };
  }

  /** A node came back: it gets what it should have again (a restarted one has a fresh network namespace), read back. */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    if (event === 'healthy' || (!this.#desired.has(node) && !this.#pending.has(node))) return undefined;
    const { deferred, errors } = await this.#applyDesired(cluster, [node]);
    if (errors.length > 0) {
      const error = errors.map((e) => errorText(e)).join('; ');
      return { node, verified: false, unverified: `re-applying failed: ${error}`, error };
    }
    if (node in deferred) return { node, deferred, verified: false, unverified: `${node} is ${deferred[node]} again` };
    return { node, ...(await this.#check(cluster, [node], {})) };
  }

  /** Empties the loss chain and removes faultline's qdisc on every node; other rules stay. */
  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      this.#desired.clear();
      this.#pending.clear();
      const nodes = sortNodes(cluster.nodes.map((n) => n.name));
      const doesLoss = this.#behaviours.includes('loss');
      const errors = await collectErrors(nodes, async (node) => {
        if (doesLoss) await flushChain(cluster, node, LOSS_CHAIN);
        await removeQdisc(cluster, node);
      });
      return healReport(errors, { nodes });
    } catch (error) {
      return healReport([error], {});
    }
  }

  async teardown(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    const cluster = this.#cluster;
    if (!cluster || !this.#behaviours.includes('loss')) return;
    await allNodes(cluster.nodes.map((n) => n.name), (node) => removeChain(cluster, node, LOSS_CHAIN));
  }
}

/** What a node's loss chain and tc show now. */
export interface PacketReadBack {
  /** `iptables -S` lines of the loss chain. */
  readonly lossRules: readonly string[];
  /** The root qdisc line of the cluster interface. */
  readonly root: string;
  /** `tc qdisc show` and `tc filter show` output. */
  readonly qdiscs: string;
  readonly filters: string;
}

/** Where what a node has differs from what it should have (pure, so unit-tested); [] when it matches. */
export function packetMismatches(cluster: ClusterControl, node: string, want: NodePacketState, found: PacketReadBack): string[] {
  const out: string[] = [];
  const wantSources = (want.loss?.sources ?? []).map((peer) => `${ipOf(cluster, peer)}/32`).sort();
  const foundSources = found.lossRules.map((line) => /-s (\S+)/.exec(line)?.[1] ?? '?').sort();
  if (JSON.stringify(wantSources) !== JSON.stringify(foundSources)) {
    out.push(`${node}: the loss chain drops from [${foundSources.join(', ')}], expected [${wantSources.join(', ')}]`);
  }
  if (want.loss) {
    for (const line of found.lossRules) {
      const p = Number(/--probability (\S+)/.exec(line)?.[1]);
      if (!(Math.abs(p - want.loss.probability) < 0.001)) out.push(`${node}: loss rule "${line}" has probability ${p}, expected ${want.loss.probability}`);
    }
  }
  const ours = new RegExp(`^qdisc (\\S+) ${QDISC_HANDLE}: root`).exec(found.root)?.[1];
  if (want.bandwidth) {
    if (ours !== 'htb') out.push(`${node}: root qdisc is "${found.root}", expected faultline's htb ${QDISC_HANDLE}:`);
    else {
      if (!/qdisc tbf \S+ (dev \S+ )?parent fa17:10 /.test(found.qdiscs)) out.push(`${node}: no tbf leaf under ${QDISC_HANDLE}:10`);
      const filters = (found.filters.match(/flowid fa17:10/g) ?? []).length;
      if (filters !== want.bandwidth.peers.length) out.push(`${node}: ${filters} tc filters send traffic to the limited class, expected ${want.bandwidth.peers.length} (one per peer)`);
    }
  } else if (want.netem) {
    if (ours !== 'netem') out.push(`${node}: root qdisc is "${found.root}", expected faultline's netem ${QDISC_HANDLE}:`);
  } else if (ours !== undefined) {
    out.push(`${node}: faultline's ${ours} qdisc is still the root qdisc`);
  }
  return out;
}

function packetPackageOf(name: string, behaviours: readonly PacketBehaviour[], options: PacketOptions): FaultlinePackage {
  const nemesis = new PacketNemesis(name, behaviours);
  const handled = new Set<string>(behaviours);
  return {
    name,
    healOrder: HEAL_LATER,
    nemesis,
    // Both packages use start-packet/stop-packet; the behaviour tells whose op it is (a stop without
    // one is taken by whichever package is asked first: it heals every packet fault either way).
    handles: (op) =>
      (op.f === F.start && handled.has(String(op.value.behaviour))) ||
      (op.f === F.stop && (op.value.behaviour === undefined || handled.has(String(op.value.behaviour)))),
    unsupported: (cluster) => (name === 'netem' ? netemUnsupported(cluster) : iptablesUnsupported(cluster)),
    ops: (rng) =>
      alternate(
        rng,
        (r) => packetStartOp(options, behaviours, r),
        (started) => ({ f: F.stop, value: { nodes: started.value.nodes ?? [], behaviour: started.value.behaviour } }),
      ),
  };
}

/** packet: random loss and bandwidth limits on the links of drawn targets. */
export function packetPackage(options: PacketOptions): FaultlinePackage {
  return packetPackageOf('packet', packetBehaviours, options);
}

/** netem: delay, duplicate and reorder with tc netem (unsupported where the kernel lacks sch_netem). */
export function netemPackage(options: PacketOptions): FaultlinePackage {
  return packetPackageOf('netem', netemBehaviours, options);
}
