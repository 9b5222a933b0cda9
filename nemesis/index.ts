// The registry of fault packages: the names `--nemesis` accepts, their factories, resolveNemeses (which
// validates names and expands `all` to what this machine supports) and combine (one package whose
// schedule is a seeded weighted mix of several, and whose heal heals them all in a safe order).
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, FaultPackage, FaultPackageFactory, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp } from './types.ts';
import { clockPackage } from './clock.ts';
import { partitionPackage } from './partition.ts';
import { killPackage } from './kill.ts';
import { pausePackage } from './pause.ts';
import { netemPackage, packetPackage } from './packet.ts';
import { delayPackage } from './delay.ts';
import { completion, healReport, HEAL_LATER, type FaultlinePackage } from './package.ts';
import { errorText } from './net.ts';
import { FAULT_PACKAGE_NAMES, type FaultPackageName } from './names.ts';

/** Every fault package by name, as `--nemesis` spells it (nemesis/names.ts owns the names). */
export const faultPackages = {
  partition: partitionPackage,
  clock: clockPackage,
  kill: killPackage,
  pause: pausePackage,
  packet: packetPackage,
  delay: delayPackage,
  netem: netemPackage,
} satisfies Record<FaultPackageName, (options: FaultPackageOptions) => FaultlinePackage>;

export type { FaultPackageName };

/** Every package name, in the order of nemesis/names.ts (the owner of the list). */
export const faultPackageNames: readonly FaultPackageName[] = FAULT_PACKAGE_NAMES;

/** A package this machine cannot run, and why. */
export interface SkippedPackage {
  readonly name: string;
  readonly reason: string;
}

/**
 * Turns `--nemesis` names into fault packages, ordered so that heal() can run in that order (kill and
 * pause first: a stopped or frozen container cannot have its iptables or clock file repaired).
 *
 * - `none` or [] gives []; `all` (or ['all']) gives every package this cluster supports, asking each
 *   one's unsupported(); the skipped ones are passed to onSkipped.
 * - Named packages must exist (the error names the unknown one and lists the valid ones) and must be
 *   supported (the error says why not).
 */
export async function resolveNemeses(
  names: readonly string[] | 'all' | 'none',
  cluster: ClusterControl,
  options: FaultPackageOptions,
  onSkipped?: (skipped: SkippedPackage) => void,
): Promise<FaultlinePackage[]> {
  const list = typeof names === 'string' ? [names] : [...names];
  if (list.length === 0 || (list.length === 1 && list[0] === 'none')) return [];
  if (list.length > 1 && (list.includes('all') || list.includes('none'))) {
    throw new Error(`Expected \`--nemesis\` to be \`all\`, \`none\` or a comma list of ${faultPackageNames.join(', ')}, got "${list.join(',')}"`);
  }
  const unknown = list.filter((name) => !(name in faultPackages) && name !== 'all');
  if (unknown.length > 0) {
    throw new Error(`Unknown fault package "${unknown[0]}"; valid: ${faultPackageNames.join(', ')}, or all, none`);
  }
  const all = list[0] === 'all';
  const wanted = all ? faultPackageNames : [...new Set(list as FaultPackageName[])];
  const packages: FaultlinePackage[] = [];
  for (const name of wanted) {
    const pkg = (faultPackages[name] as FaultPackageFactory)(options) as FaultlinePackage;
    const reason = await pkg.unsupported(cluster);
    if (reason === undefined) packages.push(pkg);
    else if (all) onSkipped?.({ name, reason });
    else throw new Error(`The ${name} fault package cannot run on this machine: ${reason}`);
  }
  return sortByHealOrder(packages);
}

function sortByHealOrder(packages: FaultlinePackage[]): FaultlinePackage[] {
  return packages.map((p, i) => ({ p, i })).sort((a, b) => a.p.healOrder - b.p.healOrder || a.i - b.i).map(({ p }) => p);
}

/**
 * One package that mixes several: its schedule draws, with the rng, a package by weight (default
 * equal) and yields that package's next op, so each package keeps its own start/stop alternation
 * and faults of different packages overlap. Its nemesis dispatches each op to the package that
 * handles it, and heals every package, process faults first.
 */
export function combine(packages: readonly FaultlinePackage[], weights?: readonly number[]): FaultlinePackage {
  if (packages.length === 0) throw new Error('combine needs at least one fault package');
  if (weights && (weights.length !== packages.length || weights.some((w) => !(w >= 0)) || !weights.some((w) => w > 0))) {
    throw new Error(`combine: expected ${packages.length} non-negative weights with a positive sum, got [${weights.join(', ')}]`);
  }
  const ordered = sortByHealOrder([...packages]);
  const name = packages.map((p) => p.name).join('+');
  const nemesis: Nemesis = {
    name,
    async setup(cluster) {
      for (const p of ordered) await p.nemesis.setup(cluster);
    },
    async invoke(op: NemesisOp): Promise<NemesisCompletion> {
      const owner = ordered.find((p) => p.handles(op));
      if (!owner) return completion(op, {}, new Error(`No fault package of ${name} performs "${op.f}"`));
      return owner.nemesis.invoke(op);
    },
    async heal() {
      const errors: string[] = [];
      const value: Record<string, unknown> = {};
      for (const p of ordered) {
        try {
          const report = await p.nemesis.heal();
          errors.push(...report.errors.map((e) => `${p.name}: ${e}`));
          value[p.name] = report.value;
        } catch (error) {
          errors.push(`${p.name}: heal threw: ${errorText(error)}`);
        }
      }
      return healReport(errors, value);
    },
    async teardown() {
      const errors: unknown[] = [];
      for (const p of ordered) await p.nemesis.teardown().catch((error: unknown) => errors.push(error));
      if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => errorText(e)).join('; '));
    },
  };
  return {
    name,
    nemesis,
    healOrder: Math.min(...packages.map((p) => p.healOrder), HEAL_LATER),
    handles: (op) => packages.some((p) => p.handles(op)),
    async unsupported(cluster) {
      const reasons: string[] = [];
      for (const p of packages) {
        const reason = await p.unsupported(cluster);
        if (reason) reasons.push(`${p.name}: ${reason}`);
      }
      return reasons.length > 0 ? reasons.join('; ') : undefined;
    },
    *ops(rng: Rng) {
      const iterators = packages.map((p) => p.ops(rng.fork()));
      const w = [...(weights ?? packages.map(() => 1))];
      // A package whose schedule ends drops out of the draw; the mix ends when every schedule has.
      while (w.some((x) => x > 0)) {
        const i = rng.weighted(w);
        const next = iterators[i].next();
        if (next.done) w[i] = 0;
        else yield next.value;
      }
    },
  };
}

export type { FaultPackage, FaultlinePackage };
