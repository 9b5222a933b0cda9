// Fault coverage: did every fault package the run named really run, and did each fault take effect?
// A package ran when, before the final heal, it had at least one verified start (the nemesis proved
// the fault in force: a probe matched the grudge, the clocks read back, the container state, the rules
// read back) followed by a stop that succeeded. A named package that never ran makes the verdict
// `unknown` (the guarantees it would have tested were not tested), and so does any start that says
// `verified: false` (that fault was not in force), unless the fault was proven later, when the nodes it
// was deferred on came back (`reapplied.<node>.<package>.verified` in the op that brought them back).
// A start that does not say whether it was verified (a history from before ops were verified) never
// counts as verified.
// With no package named and no fault op, there is nothing to judge here: `true` with `packages: {}`.
import type { History, NemesisValue, Op } from '../harness/history.ts';
import type { Anomaly, CheckContext, CheckResult } from './types.ts';
import { opIndex } from './history-index.ts';

/** Coverage of one fault package. */
export interface PackageCoverage {
  /** Whether the run named it (ctx.nemesis); a package seen in the history but not named is reported too. */
  readonly named: boolean;
  /** Start ops (start-X, and bump-clock / strobe-clock for clock): how many, how many with an error, how many verified. */
  readonly starts: { readonly total: number; readonly errors: number; readonly verified: number };
  readonly stops: { readonly total: number; readonly errors: number; readonly verified: number };
  /** ms on the history's clock of the first start and the first stop (completion time), null when none. */
  readonly firstStartMs: number | null;
  readonly firstStopMs: number | null;
  /** At least one verified start and, after it, a stop without error, before the final heal. */
  readonly ran: boolean;
  /** Why it did not run: never drawn, its ops failed, not verified, never stopped. */
  readonly why?: string;
}

export interface FaultsResult extends CheckResult {
  readonly packages: Readonly<Record<string, PackageCoverage>>;
  /** Named packages that did not run, in the order named. */
  readonly notRan: readonly string[];
  /** History indexes of start ops whose fault was never proven in force. */
  readonly unverifiedStarts: readonly number[];
}

// netem's ops share f names with packet (start-packet/stop-packet); these behaviours are netem's
// (nemesis/packet.ts owns the list; checkers import only the history contract, so it is repeated here).
const NETEM_BEHAVIOURS = new Set(['delay', 'duplicate', 'reorder']);

/** The fault package a nemesis op belongs to, and whether it starts or stops it; undefined for heal and other ops. */
export function faultOp(op: Op): { readonly pkg: string; readonly start: boolean } | undefined {
  if (op.process !== 'nemesis') return undefined;
  const m = /^(start|stop|bump|strobe)-(.+)$/.exec(op.f);
  if (!m) return undefined;
  const value = (op.value ?? {}) as NemesisValue;
  const pkg = m[2] === 'packet' && NETEM_BEHAVIOURS.has(String(value.behaviour)) ? 'netem' : m[2];
  return { pkg, start: m[1] !== 'stop' };
}

interface Tally {
  starts: { total: number; errors: number; verified: number };
  stops: { total: number; errors: number; verified: number };
  firstStartMs: number | null;
  firstStopMs: number | null;
  verifiedStart: boolean;
  ran: boolean;
  firstError?: string;
  firstUnverified?: string;
  firstStopError?: string;
  /** A start not yet proven in force (verified false or absent), waiting for a re-apply proof. */
  pending?: Op;
}

function newTally(): Tally {
  return { starts: { total: 0, errors: 0, verified: 0 }, stops: { total: 0, errors: 0, verified: 0 }, firstStartMs: null, firstStopMs: null, verifiedStart: false, ran: false };
}

/** Packages whose faults a re-apply in this op proved in force: reapplied.<node>.<package>.verified. */
function provenByReapply(value: NemesisValue): Set<string> {
  const proven = new Set<string>();
  const reapplied = value.reapplied;
  if (!reapplied || typeof reapplied !== 'object') return proven;
  for (const perNode of Object.values(reapplied as Record<string, unknown>)) {
    if (!perNode || typeof perNode !== 'object') continue;
    for (const [pkg, v] of Object.entries(perNode as Record<string, unknown>)) {
      if (v && typeof v === 'object' && (v as { verified?: unknown }).verified === true) proven.add(pkg);
    }
  }
  return proven;
}

export function faults(history: History, ctx: CheckContext): FaultsResult {
  const named = [...new Set((ctx.nemesis as readonly string[] | undefined) ?? [])];
  let healAt = -1;
  const nemesisOps = [...opIndex(history).nemesis].map((i) => history[i]);
  for (const op of nemesisOps) if (op.process === 'nemesis' && op.f === 'heal' && op.type !== 'invoke') healAt = op.index;
  const tallies = new Map<string, Tally>(named.map((n) => [n, newTally()]));
  const anomalies: Anomaly[] = [];
  const unverifiedStarts: number[] = [];
  const unproven = (pkg: string, start: Op) => {
    const v = (start.value ?? {}) as NemesisValue;
    const why = typeof v.unverified === 'string' ? v.unverified : 'not verified';
    unverifiedStarts.push(start.index);
    anomalies.push({ type: 'unverified-start', ops: [start.index], package: pkg, message: `${start.f} (op ${start.index}) was not proven in force: ${why}.` });
  };

  for (const op of nemesisOps) {
    if (op.process !== 'nemesis' || op.type === 'invoke') continue;
    if (healAt >= 0 && op.index >= healAt) break;
    const value = (op.value ?? {}) as NemesisValue;
    // A re-apply (recorded in the op that brought nodes back) may prove a deferred start.
    for (const pkg of provenByReapply(value)) {
      const t = tallies.get(pkg);
      if (t?.pending) {
        t.pending = undefined;
        t.starts.verified++;
        t.verifiedStart = true;
      }
    }
    const which = faultOp(op);
    if (!which) continue;
    let t = tallies.get(which.pkg);
    if (!t) tallies.set(which.pkg, (t = newTally()));
    const ms = op.time / 1e6;
    if (which.start) {
      t.starts.total++;
      t.firstStartMs ??= ms;
      if (op.error) {
        t.starts.errors++;
        t.firstError ??= op.error;
      }
      // A start that replaces an unproven one (bump after a skew) leaves the earlier one unproven.
      if (t.pending) unproven(which.pkg, t.pending);
      t.pending = undefined;
      if (value.verified === true) {
        t.starts.verified++;
        t.verifiedStart = true;
      } else {
        // Only an explicit `verified: false` makes the verdict unknown by itself; a start that does not
        // say (a history recorded before ops were verified) just never counts as verified, so a named
        // package with only such starts did not run.
        if (value.verified === false) t.pending = op;
        t.firstUnverified ??= typeof value.unverified === 'string' ? value.unverified : 'the op does not say whether it was verified';
      }
    } else {
      t.stops.total++;
      t.firstStopMs ??= ms;
      if (value.verified === true) t.stops.verified++;
      if (op.error) {
        t.stops.errors++;
        t.firstStopError ??= op.error;
      } else if (t.verifiedStart) t.ran = true;
      if (t.pending) unproven(which.pkg, t.pending);
      t.pending = undefined;
    }
  }
  for (const [pkg, t] of tallies) if (t.pending) unproven(pkg, t.pending);

  const packages: Record<string, PackageCoverage> = {};
  const notRan: string[] = [];
  const order = [...named, ...[...tallies.keys()].filter((p) => !named.includes(p)).sort()];
  for (const pkg of order) {
    const t = tallies.get(pkg)!;
    const why = t.ran ? undefined : whyNotRan(t, healAt >= 0);
    packages[pkg] = {
      named: named.includes(pkg),
      starts: t.starts,
      stops: t.stops,
      firstStartMs: t.firstStartMs,
      firstStopMs: t.firstStopMs,
      ran: t.ran,
      ...(why ? { why } : {}),
    };
    if (named.includes(pkg) && !t.ran) {
      notRan.push(pkg);
      anomalies.push({ type: 'not-ran', ops: [], package: pkg, message: `The ${pkg} fault package was named but did not run: ${why}.` });
    }
  }
  const valid = notRan.length > 0 || unverifiedStarts.length > 0 ? 'unknown' : true;
  return { valid, packages, notRan, unverifiedStarts: unverifiedStarts.sort((a, b) => a - b), anomalies };
}

function whyNotRan(t: Tally, healed: boolean): string {
  const before = healed ? 'before the final heal' : 'in the history (it has no final heal)';
  if (t.starts.total === 0) return `never drawn: no start op ${before}`;
  if (t.starts.errors === t.starts.total) return `its ops failed: every start (${t.starts.total}) had an error, the first: ${t.firstError}`;
  if (!t.verifiedStart) return `not verified: none of its ${t.starts.total} start(s) was proven in force, the first because ${t.firstUnverified}`;
  if (t.stops.total === 0) return `never stopped ${before}: a verified start, but no stop op`;
  return `its ops failed: no stop without error after a verified start, the first error: ${t.firstStopError}`;
}
