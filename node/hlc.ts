// Hybrid logical clocks for the store: every component write carries one, and replicas order writes by
// them. A timestamp is (wall ms, logical counter, node id); its canonical string pads the numbers to a
// fixed width so that plain string comparison is exactly the store's order (wall, then logical, then
// node id), which lets the merge compare timestamps as strings and lets clients sort them too.
//
// Skew rule: a remote timestamp whose wall part is more than maxSkewMs ahead of our own wall clock is
// counted (skewEvents) and logged with both clocks, and is still accepted: the clock advances to it.
// Rejecting it would leave that write unmerged on this replica and break convergence; adopting it
// preserves causality (everything we write afterwards sorts after what we have seen). The cost is that
// our timestamps run ahead of our wall clock until it catches up, with the logical counter absorbing
// the writes meanwhile; if more than MAX_LOGICAL writes land in one wall millisecond the clock refuses
// with HlcOverflowError rather than invent time.

export const MAX_LOGICAL = 65_535;
const WALL_DIGITS = 15;
const LOGICAL_DIGITS = 5;

export interface Hlc {
  readonly wallMs: number;
  readonly logical: number;
  readonly node: string;
}

/** Thrown when more than MAX_LOGICAL timestamps are needed within one millisecond of HLC wall time. */
export class HlcOverflowError extends Error {
  constructor(wallMs: number, node: string) {
    super(
      `HLC logical counter overflow on node ${node} at wall ${wallMs}: more than ${MAX_LOGICAL} events in one ` +
        `millisecond of HLC time (the clock is ahead of the wall clock, e.g. after adopting a skewed peer's time); retry later`,
    );
    this.name = 'HlcOverflowError';
  }
}

export function formatHlc(ts: Hlc): string {
  return `${String(ts.wallMs).padStart(WALL_DIGITS, '0')}:${String(ts.logical).padStart(LOGICAL_DIGITS, '0')}:${ts.node}`;
}

const CANONICAL = /^(\d{15}):(\d{5}):(.+)$/;

/** Parses a canonical HLC string; returns undefined when it is not one. */
export function parseHlc(text: string): Hlc | undefined {
  const m = CANONICAL.exec(text);
  if (!m) return undefined;
  const logical = Number(m[2]);
  if (logical > MAX_LOGICAL) return undefined;
  return { wallMs: Number(m[1]), logical, node: m[3] };
}

export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** Largest wall value whose canonical form still fits the fixed width. */
export const MAX_WALL_MS = 10 ** WALL_DIGITS - 1;

export interface SkewEvent {
  readonly remote: Hlc;
  readonly localWallMs: number;
  readonly aheadMs: number;
}

export interface HybridClockOptions {
  readonly node: string;
  /** The physical clock; Date.now in production (libfaketime may make it jump), injectable in tests. */
  readonly wallMs?: () => number;
  /** A remote timestamp this far ahead of our wall clock counts as a skew event. */
  readonly maxSkewMs: number;
  /** Called for every skew event (after it is counted), e.g. to log it. */
  readonly onSkew?: (event: SkewEvent) => void;
}

export class HybridClock {
  readonly node: string;
  private readonly wall: () => number;
  private readonly maxSkewMs: number;
  private readonly onSkew: ((event: SkewEvent) => void) | undefined;
  private lastWall = 0;
  private lastLogical = 0;
  skewEvents = 0;

  constructor(options: HybridClockOptions) {
    this.node = options.node;
    this.wall = options.wallMs ?? Date.now;
    this.maxSkewMs = options.maxSkewMs;
    this.onSkew = options.onSkew;
  }

  /** Counts and reports a remote timestamp too far ahead of our wall clock, without moving the clock. */
  detectSkew(remote: Hlc): void {
    const physical = this.physical();
    const aheadMs = remote.wallMs - physical;
    if (aheadMs > this.maxSkewMs) {
      this.skewEvents += 1;
      this.onSkew?.({ remote, localWallMs: physical, aheadMs });
    }
  }

  /** A new timestamp for a local event: strictly greater than every timestamp issued or observed before. */
  now(): Hlc {
    const physical = this.physical();
    if (physical > this.lastWall) {
      this.lastWall = physical;
      this.lastLogical = 0;
    } else {
      // The wall clock stood still or went backwards: keep our wall and count logically.
      if (this.lastLogical >= MAX_LOGICAL) throw new HlcOverflowError(this.lastWall, this.node);
      this.lastLogical += 1;
    }
    return { wallMs: this.lastWall, logical: this.lastLogical, node: this.node };
  }

  /** Merges a remote timestamp into the clock so later local events sort after it (see the skew rule above). */
  observe(remote: Hlc): void {
    this.detectSkew(remote);
    this.advance(remote);
  }

  /** Moves the clock up to a timestamp without skew detection (replaying our own log on restart). */
  advance(remote: Hlc): void {
    if (remote.wallMs > this.lastWall || (remote.wallMs === this.lastWall && remote.logical > this.lastLogical)) {
      this.lastWall = remote.wallMs;
      this.lastLogical = remote.logical;
    }
  }

  /** The clock's current position without issuing a timestamp. */
  peek(): Hlc {
    const physical = this.physical();
    if (physical > this.lastWall) return { wallMs: physical, logical: 0, node: this.node };
    return { wallMs: this.lastWall, logical: this.lastLogical, node: this.node };
  }

  private physical(): number {
    const w = Math.floor(this.wall());
    // A wall clock outside the canonical width (or NaN) must not corrupt timestamps: clamp it.
    if (!Number.isFinite(w) || w < 0) return 0;
    return Math.min(w, MAX_WALL_MS);
  }
}
