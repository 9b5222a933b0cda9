// Clock faults through libfaketime: the clock fault package (skew, bump, strobe, reset) and the helpers under it. Each node container runs its service with libfaketime preloaded and
// FAKETIME_NO_CACHE set, reading a wall-clock offset from one file (CLOCK_FILE) on every clock call, so
// writing "+30" there moves that node's Date.now() 30 s ahead at once, without a restart. This module
// writes and reads those files, and reads a node's effective wall clock through the cluster's
// wallClock capability (which the system under test declares) to prove a skew took effect.
import type { Rng } from '../harness/rng.ts';
import type { NemesisValue } from '../harness/history.ts';
import type { ClusterControl, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent } from './types.ts';
import { allNodes, collectErrors, errorText, onEveryNode, run } from './net.ts';
import { completion, failedOp, healReport, HEAL_LATER, nodeStates, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes } from './schedule.ts';

/**
 * The offset file inside every node container (see harness/docker/entrypoint.sh): one line, seconds
 * relative to the real clock, "+30", "-1.25". Fractional seconds work (measured: "+0.5" moves
 * Date.now() by 500 ms).
 */
export const CLOCK_FILE = '/var/lib/faultline/faketime';

/** Offsets beyond this are refused: libfaketime handles them, but they are surely a unit mistake. */
export const MAX_OFFSET_MS = 10 * 365 * 24 * 3600 * 1000;

/** The libfaketime file content for an offset in ms: "+30", "-1.25", "+0". */
export function formatOffset(offsetMs: number): string {
  requireOffset(offsetMs);
  const ms = Math.round(offsetMs);
  const sign = ms < 0 ? '-' : '+';
  const abs = Math.abs(ms);
  const seconds = Math.floor(abs / 1000);
  const fraction = String(abs % 1000).padStart(3, '0').replace(/0+$/, '');
  return `${sign}${seconds}${fraction ? `.${fraction}` : ''}`;
}

/** Parses a libfaketime relative offset ("+30", "-1.25", "+2s", "0") into ms. */
export function parseOffset(text: string): number {
  const match = /^\s*([+-]?)(\d+(?:\.\d+)?)s?\s*$/.exec(text);
  if (!match) {
    throw new Error(`Expected a libfaketime offset in seconds such as "+30" or "-1.25" in ${CLOCK_FILE}, got "${text.trim()}"`);
  }
  const ms = Math.round(Number(match[2]) * 1000);
  return match[1] === '-' ? -ms : ms;
}

/**
 * Sets a node's wall-clock offset. The file is written to a temporary name and renamed over the old
 * one, so libfaketime, which rereads it on every clock call, never sees a half-written offset.
 */
export async function setClockOffset(cluster: ClusterControl, node: string, offsetMs: number): Promise<void> {
  const script = 'set -e; mkdir -p "$(dirname "$2")"; printf "%s\\n" "$1" > "$2.tmp"; mv -f "$2.tmp" "$2"';
  await run(cluster, node, ['sh', '-c', script, 'faultline-clock', formatOffset(offsetMs), CLOCK_FILE]);
}

/** Reads the offset now in a node's clock file, in ms (0 when the file does not exist yet). */
export async function getClockOffset(cluster: ClusterControl, node: string): Promise<number> {
  const result = await run(cluster, node, ['sh', '-c', 'cat "$1" 2>/dev/null || echo +0', 'faultline-clock', CLOCK_FILE]);
  return parseOffset(result.stdout);
}

/** What a node's Health says about its wall clock, against the harness's own clock. */
export interface WallClockReading {
  readonly node: string;
  /** The node's Date.now() as it answered. */
  readonly wallMs: number;
  /** The node's wall clock minus the harness's (taken at the midpoint of the call), in ms. */
  readonly skewMs: number;
  /** Round-trip time of the Health call: the uncertainty of skewMs is at most half of it. */
  readonly rttMs: number;
}

/** Reads a node's effective wall clock as its service sees it (the cluster's wallClock capability). */
export async function readWallClock(cluster: ClusterControl, node: string, timeoutMs = 5000): Promise<WallClockReading> {
  if (!cluster.wallClock) throw new Error(`the system under test declares no wall-clock reading, so a skew of ${node} cannot be verified`);
  const before = Date.now();
  const wallMs = await cluster.wallClock(node, timeoutMs);
  const after = Date.now();
  return { node, wallMs, skewMs: wallMs - (before + after) / 2, rttMs: after - before };
}

function requireOffset(offsetMs: number): void {
  if (!Number.isFinite(offsetMs) || Math.abs(offsetMs) > MAX_OFFSET_MS) {
    throw new Error(`Expected a clock offset in ms within ±${MAX_OFFSET_MS} (10 years), got ${offsetMs}`);
  }
}

// ---------------------------------------------------------------------------
// The clock fault package.
// ---------------------------------------------------------------------------

export interface ClockOptions extends FaultPackageOptions {
  /** Magnitudes of the skews to draw from, in ms (each gets a random sign). @default [250, 2000, 10000, 30000, 120000] */
  readonly offsetsMs?: readonly number[];
  /** Strobe: half-period of the oscillation, in ms. @default 100 */
  readonly strobePeriodMs?: number;
  /** Strobe: how long it oscillates, in ms. @default 2000 */
  readonly strobeDurationMs?: number;
}

const CLOCK_F = { start: 'start-clock', bump: 'bump-clock', strobe: 'strobe-clock', stop: 'stop-clock' } as const;
const DEFAULT_OFFSETS_MS = [250, 2000, 10_000, 30_000, 120_000];

/** The seeded first op of a clock fault: a skew (most often), a bump or a strobe on drawn targets. */
export function clockStartOp(options: ClockOptions, rng: Rng): NemesisOp {
  const { nodes } = drawTargets(options.nodes, rng, options.targets);
  const magnitudes = options.offsetsMs ?? DEFAULT_OFFSETS_MS;
  const signed = () => rng.pick(magnitudes) * (rng.next() < 0.5 ? -1 : 1);
  switch (rng.weighted([3, 1, 1])) {
    case 0: {
      const offsets: Record<string, number> = {};
      for (const node of nodes) offsets[node] = signed();
      return { f: CLOCK_F.start, value: { nodes, offsets } };
    }
    case 1:
      return { f: CLOCK_F.bump, value: { nodes, deltaMs: signed() } };
    default:
      return {
        f: CLOCK_F.strobe,
        value: { nodes, deltaMs: signed(), periodMs: options.strobePeriodMs ?? 100, durationMs: options.strobeDurationMs ?? 2000 },
      };
  }
}

export function clockPackage(options: ClockOptions): FaultlinePackage {
  const nemesis = new ClockNemesis();
  return {
    name: 'clock',
    healOrder: HEAL_LATER,
    nemesis,
    handles: (op) => (Object.values(CLOCK_F) as string[]).includes(op.f),
    unsupported: (cluster) => clockUnsupported(cluster),
    ops: (rng) => alternate(rng, (r) => clockStartOp(options, r), (started) => ({ f: CLOCK_F.stop, value: { nodes: started.value.nodes ?? [] } })),
  };
}

/** Why the clock file cannot be used in this cluster's containers, or undefined when it can. */
export async function clockUnsupported(cluster: ClusterControl): Promise<string | undefined> {
  const node = cluster.nodes[0]?.name;
  if (!node) return 'the cluster has no nodes';
  if (!cluster.wallClock) return 'the system under test declares no way to read its wall clock, so no skew could be verified';
  try {
    await run(cluster, node, ['sh', '-c', 'test -f "$1" && test -w "$1"', 'faultline-clock', CLOCK_FILE]);
    return undefined;
  } catch (error) {
    return `the node containers have no writable libfaketime clock file ${CLOCK_FILE} (${errorText(error)}); use the faultline node image`;
  }
}

/** A measured skew is taken as the offset set when it is within RTT/2 + this of it. */
export const SKEW_TOLERANCE_MS = 100;

/**
 * Reads back the wall clock of every running node of `wanted` (node → offset set, ms) and compares:
 * verified when each measured skew is within RTT/2 + SKEW_TOLERANCE_MS of its offset. Stopped and
 * paused nodes cannot answer; they are excluded and named (their offset is checked when they are back).
 */
export async function checkClocks(cluster: ClusterControl, wanted: Readonly<Record<string, number>>): Promise<NemesisValue> {
  const nodes = sortNodes(Object.keys(wanted));
  const states = await nodeStates(cluster, nodes);
  const measuredSkewMs: Record<string, number> = {};
  const problems: string[] = [];
  const excluded: Record<string, string> = {};
  await Promise.all(
    nodes.map(async (node) => {
      if (states[node] !== 'running') {
        excluded[node] = states[node];
        return;
      }
      try {
        const reading = await readWallClock(cluster, node, 3000);
        measuredSkewMs[node] = Math.round(reading.skewMs);
        const off = Math.abs(reading.skewMs - wanted[node]);
        if (off > reading.rttMs / 2 + SKEW_TOLERANCE_MS) problems.push(`${node}'s clock is ${Math.round(reading.skewMs)} ms off, ${wanted[node]} ms was set (RTT ${reading.rttMs} ms)`);
      } catch (error) {
        problems.push(`${node}: could not read its wall clock: ${errorText(error)}`);
      }
    }),
  );
  const checked = Object.keys(measuredSkewMs).length;
  if (checked === 0 && problems.length === 0) problems.push(`no target is running (${Object.entries(excluded).map(([n, st]) => `${n} ${st}`).join(', ')}): their clocks are checked when they come back`);
  const ex = Object.keys(excluded).length > 0 ? { excluded: Object.fromEntries(sortNodes(Object.keys(excluded)).map((n) => [n, excluded[n]])) } : {};
  return {
    measuredSkewMs: Object.fromEntries(sortNodes(Object.keys(measuredSkewMs)).map((n) => [n, measuredSkewMs[n]])),
    ...ex,
    verified: problems.length === 0,
    ...(problems.length > 0 ? { unverified: problems.sort().join('; ') } : {}),
  };
}

export class ClockNemesis implements Nemesis {
  readonly name = 'clock';
  #cluster: ClusterControl | undefined;
  /** The offset this nemesis wants on each node, in ms (in force, or pending until the node is back). */
  readonly #offsets = new Map<string, number>();
  /** Nodes whose last offset could not be written (stopped or paused): written when they come back. */
  readonly #pending = new Set<string>();
  #unlisten: (() => void) | undefined;

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    // A skew survives a restart by design (see the entrypoint), so learn what is in force now.
    await allNodes(cluster.nodes.map((n) => n.name), async (node) => {
      this.#offsets.set(node, await getClockOffset(cluster, node));
    });
    this.#unlisten?.();
    this.#unlisten = cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event));
  }

  /**
   * A node came back. The clock file survives a restart, so only an offset that could not be written
   * (the node was stopped or paused) is written now; a node with an offset other than 0 gets its clock
   * read back once it answers (after a restart, when healthy; after a resume, at once).
   */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    const offset = this.#offsets.get(node) ?? 0;
    const pending = this.#pending.has(node);
    if (!pending && offset === 0) return undefined;
    if (event === 'restarted' || event === 'unpaused') {
      if (pending) {
        try {
          await setClockOffset(cluster, node, offset);
          this.#pending.delete(node);
        } catch (error) {
          return { node, offset, verified: false, unverified: errorText(error), error: errorText(error) };
        }
      }
      if (event === 'restarted') return { node, offset, ...(pending ? { written: true } : {}) };
    }
    return { node, offset, ...(pending ? { written: true } : {}), ...(await checkClocks(cluster, { [node]: offset })) };
  }

  /** The offsets this nemesis believes are in force, node → ms. */
  offsets(): Record<string, number> {
    return Object.fromEntries(sortNodes(this.#offsets.keys()).map((node) => [node, this.#offsets.get(node) ?? 0]));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      const nodes = opNodes(cluster, op);
      switch (op.f) {
        case CLOCK_F.start: {
          const offsets = op.value.offsets ?? {};
          const missing = nodes.filter((node) => typeof offsets[node] !== 'number');
          if (missing.length > 0) throw new Error(`start-clock: value.offsets has no offset (ms) for ${missing.join(', ')}`);
          return await this.#set(cluster, op, Object.fromEntries(nodes.map((node) => [node, offsets[node]])));
        }
        case CLOCK_F.bump: {
          const deltaMs = numberField(op, 'deltaMs');
          return await this.#set(cluster, op, Object.fromEntries(nodes.map((node) => [node, (this.#offsets.get(node) ?? 0) + deltaMs])));
        }
        case CLOCK_F.strobe:
          return await this.#strobe(cluster, op, nodes);
        case CLOCK_F.stop:
          return await this.#set(cluster, op, Object.fromEntries(nodes.map((node) => [node, 0])));
        default:
          return unknownOp(this.name, op, Object.values(CLOCK_F));
      }
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /**
   * Sets the given offsets and reads every running target's clock back (`measuredSkewMs`, `verified`).
   * The completion records the offsets that took effect or are pending on a stopped or paused node
   * (`deferred`: written when it comes back), and names the failures.
   */
  async #set(cluster: ClusterControl, op: NemesisOp, wanted: Record<string, number>, check = true): Promise<NemesisCompletion> {
    const nodes = sortNodes(Object.keys(wanted));
    const { deferred, errors } = await onEveryNode(nodes, async (node) => {
      await setClockOffset(cluster, node, wanted[node]);
      this.#offsets.set(node, wanted[node]);
      this.#pending.delete(node);
    });
    for (const node of Object.keys(deferred)) {
      this.#offsets.set(node, wanted[node]);
      this.#pending.add(node);
    }
    const offsets = Object.fromEntries(nodes.filter((n) => this.#offsets.get(n) === wanted[n]).map((n) => [n, wanted[n]]));
    const verification = check ? await checkClocks(cluster, offsets) : {};
    const failed = errors.length > 0 ? { verified: false, unverified: `not set on every node: ${errors.map((e) => errorText(e)).join('; ')}` } : {};
    const value = { nodes, offsets, ...(Object.keys(deferred).length > 0 ? { deferred } : {}), ...verification, ...failed };
    return completion(op, value, errors.length > 0 ? new AggregateError(errors) : undefined);
  }

  /**
   * Oscillates each node between its current offset and current + deltaMs every periodMs for
   * durationMs, then leaves it at its current offset. The op completes when the strobe is over, and
   * its value lists every step (`steps`: ms after the strobe began, offsets then in force) and the
   * strobe's whole length (`elapsedMs`), so the report can draw the oscillation, not only its end.
   */
  async #strobe(cluster: ClusterControl, op: NemesisOp, nodes: string[]): Promise<NemesisCompletion> {
    const deltaMs = numberField(op, 'deltaMs');
    const periodMs = numberField(op, 'periodMs');
    const durationMs = numberField(op, 'durationMs');
    if (!(periodMs > 0 && durationMs >= 0)) {
      throw new Error(`strobe-clock: expected periodMs > 0 and durationMs >= 0, got ${periodMs} and ${durationMs}`);
    }
    const base = Object.fromEntries(nodes.map((node) => [node, this.#offsets.get(node) ?? 0]));
    const started = performance.now();
    let flips = 0;
    const errors: Error[] = [];
    const steps: Array<{ atMs: number; offsets: Record<string, number> }> = [];
    for (let high = true; performance.now() - started < durationMs; high = !high) {
      const stepStart = performance.now();
      const offsets = Object.fromEntries(nodes.map((node) => [node, base[node] + (high ? deltaMs : 0)]));
      // A stopped or paused target simply does not strobe; the final settle below is deferred for it.
      errors.push(...(await onEveryNode(nodes, (node) => setClockOffset(cluster, node, offsets[node]))).errors);
      steps.push({ atMs: Math.round(performance.now() - started), offsets });
      flips++;
      if (errors.length > 0) break;
      const waitMs = periodMs - (performance.now() - stepStart);
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    const settled = await this.#set(cluster, op, base);
    const error = errors.length > 0 ? new AggregateError(errors) : settled.error;
    return completion(op, { ...settled.value, flips, steps, elapsedMs: Math.round(performance.now() - started) }, error);
  }

  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      // Every node, not only those this nemesis touched: an offset survives restarts and failed ops.
      const nodes = sortNodes(cluster.nodes.map((n) => n.name));
      this.#pending.clear();
      const errors = await collectErrors(nodes, async (node) => {
        await setClockOffset(cluster, node, 0);
        this.#offsets.set(node, 0);
      });
      return healReport(errors, { nodes, offsets: this.offsets() });
    } catch (error) {
      return healReport([error], { offsets: this.offsets() });
    }
  }

  async teardown(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
  }
}

function numberField(op: NemesisOp, key: string): number {
  const value = op.value[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`${op.f}: expected value.${key} to be a number (ms), got ${JSON.stringify(value)}`);
  }
  return value;
}
