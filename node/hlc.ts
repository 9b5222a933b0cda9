// Hybrid logical clocks for the store: every component write carries one, and replicas order writes by
// them. A timestamp is (wall ms, logical counter, node id); its canonical string pads the numbers to a
// fixed width so that plain string comparison is exactly the store's order (wall, then logical, then
// node id), which lets the merge compare timestamps as strings and lets clients sort them too.
//
// Skew rule: a remote timestamp whose wall part is more than maxSkewMs ahead of our own wall clock is
// counted (skewEvents) and logged with both clocks, and is still accepted: the clock advances to it.
// Adopting it preserves causality (everything we write afterwards sorts after what we have seen).
//
// Offset rule (after CockroachDB's max-offset): a remote timestamp more than maxOffsetMs ahead of our
// wall clock is not admitted at all: the write that carries it is not merged, the clock does not move,
// and it is counted (rejected) and reported. No single message can then push the clock (and with it
// every later timestamp of the cluster) arbitrarily far into the future. Nothing is lost for a real
// peer: anti-entropy offers the write again every round and it is admitted once our wall clock is
// within maxOffsetMs of it. The default (600 s, config.ts) is 2.5 times the largest difference the
// harness's clock nemesis makes between two nodes (each within ±120 s, so 240 s apart).
//
// The logical counter never blocks writes: when more than MAX_LOGICAL timestamps are needed within one
// millisecond of HLC wall time (the clock runs ahead of the wall clock, e.g. after adopting a skewed
// peer's time, and the writes keep coming), the clock borrows the next millisecond (wall + 1, logical
// 0). Timestamps stay strictly increasing; the HLC runs ahead of the wall clock by one millisecond per
// 65,536 such writes, which at any real write rate is far less than the skew that caused it. Only at
// the very end of the canonical width (year 33658) does now() throw HlcOverflowError.

export const MAX_LOGICAL = 65_535;
const WALL_DIGITS = 15;
const LOGICAL_DIGITS = 5;

export interface Hlc {
  readonly wallMs: number;
  readonly logical: number;
  readonly node: string;
}

/** Thrown only when the clock has reached the largest canonical timestamp and cannot borrow further. */
export class HlcOverflowError extends Error {
  constructor(wallMs: number, node: string) {
    super(`HLC overflow on node ${node}: the clock is at the largest canonical timestamp (wall ${wallMs}, logical ${MAX_LOGICAL}); the node's wall clock or a stored timestamp is wrong`);
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
  /** A remote timestamp more than this ahead of our wall clock is not admitted (the offset rule). @default Infinity */
  readonly maxOffsetMs?: number;
  /** Called for every skew event (after it is counted), e.g. to log it. */
  readonly onSkew?: (event: SkewEvent) => void;
  /** Called for every timestamp the offset rule rejects (after it is counted), e.g. to log it. */
  readonly onReject?: (event: SkewEvent) => void;
}

export class HybridClock {
  readonly node: string;
  private readonly wall: () => number;
  private readonly maxSkewMs: number;
  readonly maxOffsetMs: number;
  private readonly onSkew: ((event: SkewEvent) => void) | undefined;
  private readonly onReject: ((event: SkewEvent) => void) | undefined;
  private lastWall = 0;
  private lastLogical = 0;
  skewEvents = 0;
  /** Remote timestamps the offset rule refused. */
  rejected = 0;

  constructor(options: HybridClockOptions) {
    this.node = options.node;
    this.wall = options.wallMs ?? Date.now;
    this.maxSkewMs = options.maxSkewMs;
    this.maxOffsetMs = options.maxOffsetMs ?? Infinity;
    this.onSkew = options.onSkew;
    this.onReject = options.onReject;
  }

  /**
   * The offset rule: true when `remote` is at most maxOffsetMs ahead of our wall clock and may be
   * merged; otherwise counts and reports it and returns false (the caller must not merge it).
   */
  admissible(remote: Hlc): boolean {
    const physical = this.physical();
    const aheadMs = remote.wallMs - physical;
    if (aheadMs <= this.maxOffsetMs) return true;
    this.rejected += 1;
    this.onReject?.({ remote, localWallMs: physical, aheadMs });
    return false;
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
    } else if (this.lastLogical < MAX_LOGICAL) {
      // The wall clock stood still or went backwards: keep our wall and count logically.
      this.lastLogical += 1;
    } else {
      // The logical counter is full: borrow the next millisecond rather than refuse (see above).
      if (this.lastWall >= MAX_WALL_MS) throw new HlcOverflowError(this.lastWall, this.node);
      this.lastWall += 1;
      this.lastLogical = 0;
    }
    return { wallMs: this.lastWall, logical: this.lastLogical, node: this.node };
  }

  /** Merges an admissible remote timestamp into the clock so later local events sort after it (see the skew rule above). */
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
