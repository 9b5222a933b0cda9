// What every faultline fault package shares: the FaultPackage contract plus two facts the registry
// needs (which ops a package handles, so a combined package can dispatch them, and when it heals
// relative to the others), and small helpers that build completions and heal reports with errors that
// name the node, the command and its output.
import type { ClusterControl, FaultPackage, HealReport, NemesisCompletion, NemesisOp, NodeBackReport, NodeState } from './types.ts';
import type { NemesisValue } from '../harness/history.ts';
import { errorText } from './net.ts';

/**
 * Heal order: process faults first (a killed or paused container cannot run iptables or have its
 * clock reset), then network and clock faults.
 */
export const HEAL_FIRST = 0;
export const HEAL_LATER = 1;

export interface FaultlinePackage extends FaultPackage {
  /** True for the ops this package's nemesis performs (used by combine() to dispatch). */
  handles(op: NemesisOp): boolean;
  /** Lower heals earlier (HEAL_FIRST for kill and pause). */
  readonly healOrder: number;
}

/** The cluster a nemesis was set up with, or a clear error when setup() was skipped. */
export function requireCluster(name: string, cluster: ClusterControl | undefined): ClusterControl {
  if (!cluster) throw new Error(`The ${name} nemesis was used before setup(cluster); call nemesis.setup first`);
  return cluster;
}

/** A completion that repeats the op, with what was done merged into its value, and an optional error. */
export function completion(op: NemesisOp, value: NemesisValue, error?: unknown): NemesisCompletion {
  const merged = { ...op.value, ...value };
  return error === undefined ? { f: op.f, value: merged } : { f: op.f, value: merged, error: errorText(error) };
}

/** The completion of an op that threw: not verified, with the error as the reason and as the op's error. */
export function failedOp(op: NemesisOp, error: unknown): NemesisCompletion {
  return completion(op, { verified: false, unverified: `the op failed: ${errorText(error)}` }, error);
}

/** A completion for an op this nemesis does not know. */
export function unknownOp(name: string, op: NemesisOp, known: readonly string[]): NemesisCompletion {
  return completion(op, {}, new Error(`The ${name} nemesis cannot perform "${op.f}"; it performs ${known.join(', ')}`));
}

/** A heal report from the errors of every step. */
/**
 * What nodes brought back by a heal reported (ClusterControl.restart, unpause): the faults other
 * packages re-applied to them, and what failed there. A heal records both in its value rather than
 * dropping them; a failure there does not fail the heal (the packages still in force heal after it and
 * clear what they re-applied), but the report shows it.
 */
export class NodeBackLog {
  readonly #reapplied: Record<string, NemesisValue> = {};
  readonly #errors: string[] = [];

  add(node: string, report: NodeBackReport | void): void {
    if (!report) return;
    if (Object.keys(report.reapplied).length > 0) this.#reapplied[node] = report.reapplied;
    for (const e of report.errors) this.#errors.push(`${node}: ${e}`);
  }

  value(): NemesisValue {
    return {
      ...(Object.keys(this.#reapplied).length > 0 ? { reapplied: { ...this.#reapplied } } : {}),
      ...(this.#errors.length > 0 ? { afterRestart: this.#errors.join('; ') } : {}),
    };
  }
}

export function healReport(errors: readonly unknown[], value: NemesisValue): HealReport {
  return { ok: errors.length === 0, errors: errors.map((e) => errorText(e)), value };
}

/** The nodes of an op's value, checked against the cluster (unknown names are an error, not a no-op). */
export function opNodes(cluster: ClusterControl, op: NemesisOp): string[] {
  const nodes = op.value.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new Error(`${op.f} needs value.nodes, a non-empty list of node names`);
  }
  const known = new Set(cluster.nodes.map((n) => n.name));
  for (const node of nodes) {
    if (!known.has(node)) {
      throw new Error(`${op.f} names unknown node "${node}"; the cluster has: ${[...known].join(', ')}`);
    }
  }
  return nodes;
}

/** Every node's container state (a node whose state cannot be read counts as stopped, with why). */
export async function nodeStates(cluster: ClusterControl, nodes: readonly string[]): Promise<Record<string, NodeState>> {
  const states = await Promise.all(nodes.map((node) => cluster.state(node).catch((): NodeState => 'stopped')));
  return Object.fromEntries(nodes.map((node, i) => [node, states[i]]));
}

/** "n2 (stopped), n3 (paused)" for the nodes of a state map that are not running; "" when all are. */
export function notRunningText(states: Readonly<Record<string, string>>): string {
  return Object.entries(states)
    .filter(([, state]) => state !== 'running')
    .map(([node, state]) => `${node} (${state})`)
    .join(', ');
}
