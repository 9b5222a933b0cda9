// Which fault packages ran, and what the partition probes measured, as the CLI line, results.json and
// the report show them. Pure: everything comes from the faults checker's result and the history.
import type { CheckResult } from '../../checkers/types.ts';
import type { History, NemesisValue } from '../history.ts';

/** One package's row in the report's fault section (from checkers.faults.packages). */
export interface FaultRow {
  readonly name: string;
  readonly named: boolean;
  readonly ran: boolean;
  readonly why?: string;
  readonly starts: { readonly total: number; readonly errors: number; readonly verified: number };
  readonly stops: { readonly total: number; readonly errors: number; readonly verified: number };
  readonly firstStartMs: number | null;
  readonly firstStopMs: number | null;
}

/** A partition op's probe: the measured one-way matrix beside what the grudge promised. */
export interface ProbeView {
  /** History index of the op (or of the op whose re-apply probed, for a node that came back). */
  readonly index: number;
  readonly f: string;
  readonly timeMs: number;
  /** from → to → got through, among the probed nodes. */
  readonly probe: Record<string, Record<string, boolean>>;
  /** The grudge in force when it probed. */
  readonly grudge: Record<string, string[]>;
  readonly verified: boolean;
  readonly unverified?: string;
  /** Nodes that could not run the probe (stopped, paused). */
  readonly excluded?: Record<string, string>;
  /** Set for a probe after a node came back (restart or resume). */
  readonly node?: string;
}

/** A delay fault's start: every link with its delay, jitter and duplication, beside the handshake time measured from its sender. */
export interface DelayView {
  readonly index: number;
  readonly timeMs: number;
  readonly links: readonly { readonly from: string; readonly to: string; readonly delayMs: number; readonly jitterMs: number; readonly duplicatePercent: number; readonly rttMs?: number | null }[];
  readonly verified: boolean;
  readonly unverified?: string;
}

type Packages = Record<string, FaultRow & { name?: string }>;

function packagesOf(result: CheckResult | undefined): Packages {
  const p = result?.packages;
  return p && typeof p === 'object' ? (p as Packages) : {};
}

/** The named packages the faults checker says ran (none when it could not judge). */
export function packagesRan(result: CheckResult | undefined, named: readonly string[]): string[] {
  const packages = packagesOf(result);
  return named.filter((p) => packages[p]?.ran === true);
}

/**
 * One line for the CLI: "faults: all 5 ran (kill, pause, partition, clock, packet)" or
 * "faults NOT RUN: kill (never drawn: …); ran: partition". Undefined when no package was named.
 */
export function faultsLine(result: CheckResult | undefined, named: readonly string[]): string | undefined {
  if (named.length === 0) return undefined;
  const packages = packagesOf(result);
  const ran = named.filter((p) => packages[p]?.ran === true);
  const notRan = named.filter((p) => packages[p]?.ran !== true);
  if (notRan.length === 0) return `faults: all ${named.length} ran (${named.join(', ')})`;
  const why = (p: string) => packages[p]?.why ?? (result ? 'not in the faults result' : 'the faults checker did not run');
  return `faults NOT RUN: ${notRan.map((p) => `${p} (${why(p)})`).join('; ')}${ran.length ? `; ran: ${ran.join(', ')}` : ''}`;
}

/** The report's rows, one per package the faults checker reported. */
export function faultRows(result: CheckResult | undefined): FaultRow[] {
  return Object.entries(packagesOf(result)).map(([name, p]) => ({
    name,
    named: p.named !== false,
    ran: p.ran === true,
    ...(p.why ? { why: p.why } : {}),
    starts: p.starts ?? { total: 0, errors: 0, verified: 0 },
    stops: p.stops ?? { total: 0, errors: 0, verified: 0 },
    firstStartMs: p.firstStartMs ?? null,
    firstStopMs: p.firstStopMs ?? null,
  }));
}

/** Every probe the partition nemesis recorded: in its start and stop ops, and in re-applies when nodes came back. */
export function probeViews(history: History): ProbeView[] {
  const out: ProbeView[] = [];
  const view = (index: number, f: string, timeMs: number, v: NemesisValue, node?: string) => {
    if (!v.probe || typeof v.probe !== 'object') return;
    out.push({
      index,
      f,
      timeMs,
      probe: v.probe as ProbeView['probe'],
      grudge: (v.grudge ?? {}) as ProbeView['grudge'],
      verified: v.verified === true,
      ...(typeof v.unverified === 'string' ? { unverified: v.unverified } : {}),
      ...(v.excluded && typeof v.excluded === 'object' ? { excluded: v.excluded as Record<string, string> } : {}),
      ...(node ? { node } : {}),
    });
  };
  for (const op of history) {
    if (op.process !== 'nemesis' || op.type === 'invoke') continue;
    const v = (op.value ?? {}) as NemesisValue;
    const timeMs = op.time / 1e6;
    if (op.f === 'start-partition' || op.f === 'stop-partition') view(op.index, op.f, timeMs, v);
    const reapplied = v.reapplied;
    if (reapplied && typeof reapplied === 'object') {
      for (const [node, perNode] of Object.entries(reapplied as Record<string, Record<string, NemesisValue>>)) {
        if (perNode?.partition) view(op.index, `${op.f}: ${node} came back`, timeMs, perNode.partition, node);
      }
    }
  }
  return out;
}

/** Every start of the delay fault, link by link, with the round trip its sender measured (nemesis/delay.ts records both). */
export function delayViews(history: History): DelayView[] {
  const out: DelayView[] = [];
  for (const op of history) {
    if (op.process !== 'nemesis' || op.type === 'invoke' || op.f !== 'start-delay') continue;
    const v = (op.value ?? {}) as NemesisValue;
    const links = (v.links ?? {}) as Record<string, Record<string, { delayMs?: unknown; jitterMs?: unknown; duplicatePercent?: unknown }>>;
    const rtt = (v.rttMs ?? {}) as Record<string, Record<string, number | null>>;
    const rows: DelayView['links'][number][] = [];
    for (const [from, peers] of Object.entries(links)) {
      if (!peers || typeof peers !== 'object') continue;
      for (const [to, d] of Object.entries(peers)) {
        const measured = rtt[from]?.[to];
        rows.push({ from, to, delayMs: Number(d?.delayMs), jitterMs: Number(d?.jitterMs ?? 0), duplicatePercent: Number(d?.duplicatePercent ?? 0), ...(measured !== undefined ? { rttMs: measured } : {}) });
      }
    }
    out.push({ index: op.index, timeMs: op.time / 1e6, links: rows, verified: v.verified === true, ...(typeof v.unverified === 'string' ? { unverified: v.unverified } : {}) });
  }
  return out;
}
