// A token bucket that budgets mesh traffic. It reads a monotonic clock (performance.now by default),
// never the wall clock, because libfaketime makes the wall clock jump; and even if an injected clock
// goes backwards or returns garbage, it neither crashes nor mints tokens: time that runs backwards
// simply refills nothing.

export interface TokenBucketOptions {
  /** Tokens added per second of monotonic time. */
  readonly ratePerS: number;
  /** Most tokens the bucket holds (also its starting level). */
  readonly burst: number;
  /** Monotonic milliseconds; injectable so tests can drive it (including backwards). */
  readonly nowMs?: () => number;
}

export class TokenBucket {
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly nowMs: () => number;
  private tokens: number;
  private lastMs: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerS > 0) || !(options.burst > 0)) {
      throw new Error(`token bucket needs ratePerS > 0 and burst > 0, got ${options.ratePerS} and ${options.burst}`);
    }
    this.ratePerMs = options.ratePerS / 1000;
    this.burst = options.burst;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.tokens = options.burst;
    this.lastMs = this.nowMs();
  }

  /** Takes n tokens if available and returns true; otherwise takes nothing and returns false. */
  tryTake(n: number): boolean {
    this.refill();
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.nowMs();
    if (!Number.isFinite(now)) return;
    const elapsed = now - this.lastMs;
    // Always move the reference point, so a clock that went backwards and then forward again only
    // refills for the time it actually advanced past the new reference.
    if (!Number.isFinite(this.lastMs) || elapsed <= 0) {
      this.lastMs = now;
      return;
    }
    this.lastMs = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerMs);
  }
}
