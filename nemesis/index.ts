// The registry of fault packages: the names `--nemesis` accepts (the one owner of that list), their
// factories, and resolveNemeses (which validates names and expands `all` to what this machine and the
// system under test support). Mixing packages and healing them is the interpreter's (harness/interpreter.ts:
// rounds of a seeded permutation, heal in healOrder), in one place.
import type { ClusterControl, ContainerNeeds, FaultPackage, FaultPackageFactory, FaultPackageOptions } from './types.ts';
import { clockPackage } from './clock.ts';
import { partitionPackage } from './partition.ts';
import { killPackage } from './kill.ts';
import { pausePackage } from './pause.ts';
import { netemPackage, packetPackage } from './packet.ts';
import { diskContainerNeeds, diskHostUnsupported, diskPackage } from './disk.ts';
import type { FaultlinePackage } from './package.ts';
import { delayPackage } from './delay.ts';
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
  disk: diskPackage,
} satisfies Record<FaultPackageName, (options: FaultPackageOptions) => FaultlinePackage>;

export type { FaultPackageName };

/** Every package name, in the order of nemesis/names.ts (the owner of the list). */
export const faultPackageNames: readonly FaultPackageName[] = FAULT_PACKAGE_NAMES;

/**
 * What the packages' nemeses need in the node containers, by package name, with why the host cannot
 * grant it (undefined: it can). Only packages listed here change how containers are created.
 */
const containerNeedsOf: Partial<Record<FaultPackageName, { readonly needs: ContainerNeeds; readonly hostUnsupported: () => string | undefined }>> = {
  disk: { needs: diskContainerNeeds, hostUnsupported: diskHostUnsupported },
};

/** The packages `all` stands for: every registered one (resolveNemeses skips those the host or system cannot run, saying why). */
export const allPackageNames: readonly FaultPackageName[] = faultPackageNames;

/**
 * What the node containers of a run with these `--nemesis` names need (Cluster.start grants exactly
 * that): the union over the named packages; for `all`, over those the host can run (the others are then
 * skipped by resolveNemeses, which says why). A named package the host cannot run is left out here and
 * refused with its reason by resolveNemeses.
 */
export function containerNeeds(names: readonly string[] | 'all' | 'none', unsupported: Readonly<Record<string, string>> = {}): ContainerNeeds {
  const list = typeof names === 'string' ? [names] : [...names];
  // A package the system refuses (System.unsupportedFaults) never runs, so its needs are not granted.
  const wanted = (list.includes('all') ? allPackageNames : (list.filter((n) => n in faultPackages) as FaultPackageName[])).filter((n) => unsupported[n] === undefined);
  const devices = new Set<string>();
  const capAdd = new Set<string>();
  const env: Record<string, string> = {};
  for (const name of wanted) {
    const entry = containerNeedsOf[name];
    if (!entry || entry.hostUnsupported() !== undefined) continue;
    for (const d of entry.needs.devices) devices.add(d);
    for (const c of entry.needs.capAdd) capAdd.add(c);
    Object.assign(env, entry.needs.env);
  }
  return { devices: [...devices], capAdd: [...capAdd], env };
}

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
  const wanted = all ? allPackageNames : [...new Set(list as FaultPackageName[])];
  const packages: FaultlinePackage[] = [];
  for (const name of wanted) {
    const pkg = (faultPackages[name] as FaultPackageFactory)(options) as FaultlinePackage;
    const reason = cluster.unsupportedFaults?.[name] ?? (await pkg.unsupported(cluster));
    if (reason === undefined) packages.push(pkg);
    else if (all) onSkipped?.({ name, reason });
    else throw new Error(`The ${name} fault package cannot run here: ${reason}`);
  }
  return sortByHealOrder(packages);
}

function sortByHealOrder(packages: FaultlinePackage[]): FaultlinePackage[] {
  return packages.map((p, i) => ({ p, i })).sort((a, b) => a.p.healOrder - b.p.healOrder || a.i - b.i).map(({ p }) => p);
}

export type { FaultPackage, FaultlinePackage };
