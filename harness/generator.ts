// Generators: the schedule of a run as plain values combined with small combinators, after
// jepsen.generator. A generator is an immutable description; `next(ctx, rng)` returns the next op
// together with the generator that follows it, so the same seed and the same sequence of
// completions always yield the same ops. The runner (harness/interpreter.ts) is the one interpreter: it
// owns time and the workers, gives every worker its own generator and its own forked Rng, and
// sleeps for the delays that generators ask for. Because each worker's stream depends only on the
// seed and on that worker's own completions, the schedule does not depend on how the operating
// system happens to interleave the workers.
import type { Op } from './history.ts';
import type { Rng } from './rng.ts';

/** What a client worker is asked to do next. */
export interface OpSpec {
  readonly f: string;
  readonly value: unknown;
}

export interface GenContext {
  /** Nanoseconds since the run started (monotonic). */
  readonly timeNs: number;
  /** The worker's index, 0-based, stable for the whole run. */
  readonly worker: number;
  /** The process number the worker currently uses. */
  readonly process: number;
  /** The node the worker is bound to. */
  readonly node: string;
  /** The worker's previous completion, if any (lets a session read, then write what follows). */
  readonly last?: Op;
}

export interface GenStep {
  readonly op: OpSpec;
  /** Wait this many nanoseconds before invoking the op. */
  readonly delayNs: number;
  readonly gen: Gen;
}

/** null means this generator is exhausted. */
export interface Gen {
  next(ctx: GenContext, rng: Rng): GenStep | null;
}

/** An endless generator whose every op is drawn by `draw`; `state` threads per-session memory. */
export function repeatedly<S>(initial: S, draw: (ctx: GenContext, rng: Rng, state: S) => { op: OpSpec; state: S }): Gen {
  const make = (state: S): Gen => ({
    next(ctx, rng) {
      const out = draw(ctx, rng, state);
      return { op: out.op, delayNs: 0, gen: make(out.state) };
    },
  });
  return make(initial);
}

/** Emits the given ops in order, then is exhausted. */
export function once(...ops: OpSpec[]): Gen {
  const from = (i: number): Gen => ({
    next: () => (i < ops.length ? { op: ops[i], delayNs: 0, gen: from(i + 1) } : null),
  });
  return from(0);
}

/** At most n ops. */
export function limit(n: number, gen: Gen): Gen {
  return {
    next(ctx, rng) {
      if (n <= 0) return null;
      const step = gen.next(ctx, rng);
      return step && { ...step, gen: limit(n - 1, step.gen) };
    },
  };
}

/** No op whose invocation would start at or after `limitS` seconds after `startNs` (the workload's start). */
export function timeLimit(limitS: number, gen: Gen, startNs = 0): Gen {
  const deadlineNs = startNs + limitS * 1e9;
  const bounded = (inner: Gen): Gen => ({
    next(ctx, rng) {
      if (ctx.timeNs >= deadlineNs) return null;
      const step = inner.next(ctx, rng);
      if (!step || ctx.timeNs + step.delayNs >= deadlineNs) return null;
      return { ...step, gen: bounded(step.gen) };
    },
  });
  return bounded(gen);
}

/**
 * Spaces ops by a random delay, uniform in [0, 2 × meanS], so the mean rate is 1 / meanS per
 * worker, as Jepsen's stagger does. meanS = 0 means as fast as possible.
 */
export function stagger(meanS: number, gen: Gen): Gen {
  if (meanS <= 0) return gen;
  return {
    next(ctx, rng) {
      const step = gen.next(ctx, rng);
      if (!step) return null;
      return { op: step.op, delayNs: step.delayNs + rng.next() * 2 * meanS * 1e9, gen: stagger(meanS, step.gen) };
    },
  };
}

/**
 * Each op comes from one of the generators, drawn with the given weights; exhausted ones drop out.
 * Every generator sees its own previous completion as `ctx.last`, not whichever generator ran last, so
 * a stateful one (a session that reads, then writes what follows from the read) keeps its thread.
 */
export function mix(gens: readonly Gen[], weights: readonly number[] = gens.map(() => 1)): Gen {
  if (gens.length !== weights.length) throw new Error(`mix: ${gens.length} generators but ${weights.length} weights`);
  const make = (children: readonly Gen[], w: readonly number[], lasts: readonly (Op | undefined)[], drawn: number): Gen => ({
    next(ctx, rng) {
      const own = drawn < 0 ? lasts : lasts.map((l, i) => (i === drawn ? ctx.last : l));
      let live = children.map((_, i) => i);
      while (live.length > 0) {
        const pick = live[rng.weighted(live.map((i) => w[i]))];
        const step = children[pick].next({ ...ctx, last: own[pick] }, rng);
        if (step) return { ...step, gen: make(children.map((g, i) => (i === pick ? step.gen : g)), w, own, pick) };
        live = live.filter((i) => i !== pick);
      }
      return null;
    },
  });
  return make(gens, weights, gens.map(() => undefined), -1);
}

/** How `retrying` treats an op: the retry to send after an indeterminate outcome, or undefined. */
export interface RetryPolicy {
  /** The op to send again for this completion (same request id, attempt + 1), or undefined for none. */
  readonly retryOf: (completion: Op) => OpSpec | undefined;
  /** Attempts in all, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** Wait before the first retry, doubling each time up to maxBackoffNs. @default 250 ms, 2 s */
  readonly backoffNs?: number;
  readonly maxBackoffNs?: number;
  /**
   * Every resendEvery-th acknowledged op that has a retry is sent once more, resendAfterNs later, with
   * the same request id: the service must recognise it (reply `duplicate`, the original timestamp) even
   * after its node was killed and restarted in between, which tests that request ids are durable.
   * @default 0 (never)
   */
  readonly resendEvery?: number;
  /** @default 6 s */
  readonly resendAfterNs?: number;
}

interface PendingRetry {
  readonly op: OpSpec;
  readonly attempt: number;
  readonly dueNs: number;
}

/**
 * Retries mutating ops whose outcome was not definite, as a careful client does: an op that ended
 * `info` (or a retry that did not end `ok`) is sent again with the same request id after a backoff
 * (250 ms, doubling to 2 s), up to maxAttempts, so a request whose node was down is retried after the
 * node comes back and the service must apply it at most once. Meanwhile the session goes on with the
 * inner generator's ops; the inner generator never sees the retries' completions, so its own threads
 * (read, then write) stay intact.
 */
export function retrying(policy: RetryPolicy, gen: Gen): Gen {
  const maxAttempts = policy.maxAttempts ?? 8;
  const base = policy.backoffNs ?? 250e6;
  const cap = policy.maxBackoffNs ?? 2e9;
  const backoff = (attempt: number) => Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  const resendEvery = policy.resendEvery ?? 0;
  const resendAfter = policy.resendAfterNs ?? 6e9;
  const make = (inner: Gen, innerLast: Op | undefined, pending: readonly PendingRetry[], inFlight: PendingRetry | undefined, acked = 0): Gen => ({
    next(ctx, rng) {
      let queue = pending;
      let last = innerLast;
      const done = ctx.last;
      if (!inFlight && done && done.type === 'ok' && resendEvery > 0 && maxAttempts > 1) {
        const op = policy.retryOf(done);
        if (op && ++acked % resendEvery === 0) queue = [...queue, { op, attempt: 1, dueNs: done.time + resendAfter }];
      }
      if (inFlight) {
        // The previous op was a retry: send it once more unless it got a definite answer.
        if (done && done.type !== 'ok' && inFlight.attempt + 1 < maxAttempts) {
          queue = [...queue, { op: inFlight.op, attempt: inFlight.attempt + 1, dueNs: done.time + backoff(inFlight.attempt + 1) }];
        }
      } else {
        last = done;
        if (done && done.type === 'info' && maxAttempts > 1) {
          const op = policy.retryOf(done);
          if (op) queue = [...queue, { op, attempt: 1, dueNs: done.time + backoff(1) }];
        }
      }
      const due = queue.findIndex((r) => r.dueNs <= ctx.timeNs);
      if (due >= 0) {
        const r = queue[due];
        const op = { f: r.op.f, value: { ...(r.op.value as object), attempt: r.attempt } };
        return { op, delayNs: 0, gen: make(inner, last, queue.filter((_, i) => i !== due), r, acked) };
      }
      const step = inner.next({ ...ctx, last }, rng);
      if (!step) return null;
      // A retry falling due while the session waits goes first: wait only until it is due.
      const soonest = Math.min(...queue.map((r) => r.dueNs));
      if (queue.length > 0 && soonest < ctx.timeNs + step.delayNs) {
        const i = queue.findIndex((r) => r.dueNs === soonest);
        const r = queue[i];
        const op = { f: r.op.f, value: { ...(r.op.value as object), attempt: r.attempt } };
        return { op, delayNs: soonest - ctx.timeNs, gen: make(inner, last, queue.filter((_, j) => j !== i), r, acked) };
      }
      return { ...step, gen: make(step.gen, last, queue, undefined, acked) };
    },
  });
  return make(gen, undefined, [], undefined);
}

/** Runs the generators one after another, each until it is exhausted. */
export function phases(...gens: Gen[]): Gen {
  return {
    next(ctx, rng) {
      for (let i = 0; i < gens.length; i++) {
        const step = gens[i].next(ctx, rng);
        if (step) return { ...step, gen: phases(step.gen, ...gens.slice(i + 1)) };
      }
      return null;
    },
  };
}

/**
 * Materialises the first ops of a worker's stream for a given seed, feeding back synthetic `ok`
 * completions. Used to show and test that the same seed yields the same schedule.
 */
export function preview(gen: Gen, rng: Rng, ctx: Omit<GenContext, 'timeNs' | 'last'>, count: number): Array<OpSpec & { delayNs: number }> {
  const out: Array<OpSpec & { delayNs: number }> = [];
  let timeNs = 0;
  let last: Op | undefined;
  let current: Gen | null = gen;
  for (let i = 0; i < count && current; i++) {
    const step: GenStep | null = current.next({ ...ctx, timeNs, last }, rng);
    if (!step) break;
    timeNs += step.delayNs;
    out.push({ ...step.op, delayNs: step.delayNs });
    last = { index: i, time: timeNs, process: ctx.process, node: ctx.node, type: 'ok', f: step.op.f, value: step.op.value };
    current = step.gen;
  }
  return out;
}
