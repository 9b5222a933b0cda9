// Convergence: after every fault is healed, all nodes must hold the same state, entity by entity and
// component by component, timestamps and tombstones included, counters included.
//
// The verdict comes from the last round of final reads in which every node answered:
//   - identical states → valid; otherwise → invalid, one "non-converged" anomaly per differing
//     (entity, component) or (entity, counter) naming each node's value and the final-read ops.
//   - no round where every node answered: if the nodes that did answer already disagree, the run is
//     invalid (more answers cannot make them agree); otherwise unknown, with the missing nodes named,
//     because a node we never heard from may hold anything.
// Convergence time is measured from the completion of the last "heal" nemesis op (the start of recovery)
// to the completion of the first round in which every node answered with the same state.
import type { FinalComponent, FinalEntity, FinalState, History } from '../harness/history.ts';
import type { CheckContext, CheckResult, Checker } from './types.ts';
import { opIndex } from './history-index.ts';
import { AnomalyList, finalReads, nsToMs, type FinalRead } from './util.ts';

export interface ConvergenceResult extends CheckResult {
  /** The round judged (last complete round), or null when no round was complete. */
  readonly round: number | null;
  /** Nodes with no final read in the judged view. */
  readonly missingNodes: readonly string[];
  /** True when some round had every node answer with identical states. */
  readonly converged: boolean;
  /** First round in which all nodes agreed, or null. */
  readonly convergedRound: number | null;
  /** Milliseconds from the final heal's completion to the end of that round; null when it never converged or there was no heal. */
  readonly convergenceMs: number | null;
  /** History index of the final heal op, or null. */
  readonly healOp: number | null;
  readonly rounds: number;
  readonly entities: number;
  readonly differingKeys: number;
}

/** Canonical JSON of one component or counter value, so key order never causes a false difference. */
function describeComponent(c: FinalComponent | undefined): string {
  if (!c) return 'absent';
  return JSON.stringify([c.value, c.ts, c.kind, c.deleted === true]);
}

function entityEqual(a: FinalEntity | undefined, b: FinalEntity | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const ac = a.components ?? {};
  const bc = b.components ?? {};
  const ak = Object.keys(ac);
  if (ak.length !== Object.keys(bc).length) return false;
  for (const k of ak) if (describeComponent(ac[k]) !== describeComponent(bc[k])) return false;
  const an = a.counters ?? {};
  const bn = b.counters ?? {};
  const ck = Object.keys(an);
  if (ck.length !== Object.keys(bn).length) return false;
  for (const k of ck) if (an[k] !== bn[k]) return false;
  return true;
}

function statesEqual(reads: readonly FinalRead[]): boolean {
  const first = reads[0].state;
  const keys = Object.keys(first);
  for (let i = 1; i < reads.length; i++) {
    const s = reads[i].state;
    if (Object.keys(s).length !== keys.length) return false;
    for (const k of keys) if (!entityEqual(first[k], s[k])) return false;
  }
  return true;
}

interface Difference {
  entity: string;
  component?: string;
  counter?: string;
  values: Record<string, unknown>;
}

function differences(reads: readonly FinalRead[]): Difference[] {
  const entities = new Set<string>();
  for (const r of reads) for (const e of Object.keys(r.state)) entities.add(e);
  const out: Difference[] = [];
  for (const entity of [...entities].sort()) {
    const per = reads.map((r) => (r.state as FinalState)[entity]);
    const components = new Set<string>();
    const counters = new Set<string>();
    for (const e of per) {
      if (!e) continue;
      for (const c of Object.keys(e.components ?? {})) components.add(c);
      for (const c of Object.keys(e.counters ?? {})) counters.add(c);
    }
    for (const component of [...components].sort()) {
      const descs = per.map((e) => describeComponent(e?.components?.[component]));
      if (descs.every((d) => d === descs[0])) continue;
      const values: Record<string, unknown> = {};
      reads.forEach((r, i) => (values[r.node] = per[i]?.components?.[component] ?? null));
      out.push({ entity, component, values });
    }
    for (const counter of [...counters].sort()) {
      const vals = per.map((e) => e?.counters?.[counter]);
      if (vals.every((v) => v === vals[0])) continue;
      const values: Record<string, unknown> = {};
      reads.forEach((r, i) => (values[r.node] = vals[i] ?? null));
      out.push({ entity, counter, values });
    }
  }
  return out;
}

/** Checks that every node's final state is identical and measures how long that took after the heal. */
export const convergence = (history: History, ctx: CheckContext): ConvergenceResult => {
  const fr = finalReads(history, ctx);

  let healPos = -1;
  const nemesis = opIndex(history).nemesis;
  for (let k = nemesis.length - 1; k >= 0; k--) {
    const i = nemesis[k];
    const op = history[i];
    if (op.process === 'nemesis' && op.f === 'heal') {
      // Prefer the completion of the heal; a lone invoke is accepted when no completion was recorded.
      if (op.type !== 'invoke' || healPos === -1) healPos = i;
      if (op.type !== 'invoke') break;
    }
  }

  let convergedRound: number | null = null;
  let convergenceMs: number | null = null;
  for (const [round, byNode] of fr.rounds) {
    if (fr.nodes.length === 0 || !fr.nodes.every((n) => byNode.has(n))) continue;
    const reads = fr.nodes.map((n) => byNode.get(n)!);
    if (!statesEqual(reads)) continue;
    convergedRound = round;
    if (healPos >= 0) {
      let end = 0;
      for (const r of reads) end = Math.max(end, history[r.pos].time);
      convergenceMs = nsToMs(Math.max(0, end - history[healPos].time));
    }
    break;
  }

  const reads = fr.nodes.filter((n) => fr.view.has(n)).map((n) => fr.view.get(n)!);
  const anomalies = new AnomalyList();
  const diffs = reads.length > 1 ? differences(reads) : [];
  for (const d of diffs) {
    const what = d.component !== undefined ? `component ${d.component}` : `counter ${d.counter}`;
    anomalies.add({
      type: 'non-converged',
      ops: reads.map((r) => history[r.pos].index),
      message: `Entity ${d.entity} ${what} differs between nodes after recovery: ${JSON.stringify(d.values)}.`,
      ...d,
    });
  }

  let valid: true | false | 'unknown';
  let error: string | undefined;
  if (diffs.length > 0) valid = false;
  else if (reads.length === 0) {
    valid = 'unknown';
    error = 'No node answered a final read, so convergence cannot be judged. Check that the run reached its final-read phase.';
  } else if (fr.partial) {
    valid = 'unknown';
    error = `No round of final reads had an answer from every node; missing: ${fr.missing.join(', ')}.`;
  } else valid = true;

  const entities = new Set<string>();
  for (const r of reads) for (const e of Object.keys(r.state)) entities.add(e);
  return {
    valid,
    ...(error ? { error } : {}),
    round: fr.lastCompleteRound ?? null,
    missingNodes: fr.missing,
    converged: convergedRound !== null,
    convergedRound,
    convergenceMs,
    healOp: healPos >= 0 ? history[healPos].index : null,
    rounds: fr.rounds.size,
    entities: entities.size,
    judged: reads.length,
    differingKeys: diffs.length,
    ...anomalies.summary(),
  };
};

// Compile-time proof that the typed function is a Checker.
convergence satisfies Checker;
