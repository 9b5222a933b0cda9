// The packet fault packages. `packet` degrades links without cutting them: random loss (iptables
// `statistic` rules in faultline's loss chain) or a bandwidth limit (an htb qdisc with a tbf leaf for
// the chosen peers). `netem` adds delay, duplication or reordering with tc netem; where the kernel has
// no sch_netem (as on the machine this was built on) it reports itself unsupported with the probe's
// output, and its ops fail with that message instead of pretending.
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp } from './types.ts';
import {
  allNodes,
  applyNetem,
  collectErrors,
  flushChain,
  limitBandwidth,
  LOSS_CHAIN,
  lossRules,
  netemUnsupported,
  removeChain,
  removeQdisc,
  setChainRules,
  type NetemSpec,
} from './net.ts';
import { iptablesUnsupported } from './partition.ts';
import { completion, healReport, HEAL_LATER, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
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

export class PacketNemesis implements Nemesis {
  readonly name: string;
  readonly #behaviours: readonly PacketBehaviour[];
  #cluster: ClusterControl | undefined;
  /** Why netem cannot run here (probed at setup), when this nemesis does netem. */
  #netemProblem: string | undefined;

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
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f === F.stop) {
        const report = await this.heal();
        return completion(op, { nodes: op.value.nodes ?? [] }, report.ok ? undefined : new Error(report.errors.join('; ')));
      }
      if (op.f !== F.start) return unknownOp(this.name, op, [F.start, F.stop]);
      const behaviour = behaviourOf(op);
      if (!this.#behaviours.includes(behaviour)) {
        throw new Error(`The ${this.name} nemesis does not do ${behaviour}; it does ${this.#behaviours.join(', ')}`);
      }
      const nodes = sortNodes(opNodes(cluster, op));
      await this.#start(cluster, op, behaviour, nodes);
      return completion(op, { nodes });
    } catch (error) {
      return completion(op, {}, error);
    }
  }

  async #start(cluster: ClusterControl, op: NemesisOp, behaviour: PacketBehaviour, nodes: string[]): Promise<void> {
    const links = (op.value.links ?? targetLinks(cluster.nodes.map((n) => n.name), nodes)) as Grudge;
    validateGrudge(cluster.nodes.map((n) => n.name), links);
    switch (behaviour) {
      case 'loss': {
        const rules = lossRules(cluster, links, op.value.probability as number);
        await allNodes(Object.keys(rules), (node) => setChainRules(cluster, node, LOSS_CHAIN, rules[node]));
        return;
      }
      case 'bandwidth':
        await allNodes(Object.keys(links), (node) => limitBandwidth(cluster, node, links[node], op.value.rateKbit as number));
        return;
      default: {
        if (this.#netemProblem) throw new Error(`${behaviour} is unsupported: ${this.#netemProblem}`);
        const percent = op.value.percent as number | undefined;
        const spec: NetemSpec =
          behaviour === 'delay' ? { delayMs: op.value.delayMs as number }
          : behaviour === 'duplicate' ? { duplicatePercent: percent }
          : { reorderPercent: percent };
        await allNodes(nodes, (node) => applyNetem(cluster, node, spec));
      }
    }
  }

  /** Empties the loss chain and removes faultline's qdisc on every node; other rules stay. */
  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
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
    const cluster = this.#cluster;
    if (!cluster || !this.#behaviours.includes('loss')) return;
    await allNodes(cluster.nodes.map((n) => n.name), (node) => removeChain(cluster, node, LOSS_CHAIN));
  }
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
