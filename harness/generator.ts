// Generators: the schedule of a run as plain values combined with small combinators, after
// jepsen.generator. A generator is an immutable description; `next(ctx, rng)` returns the next op
// together with the generator that follows it, so the same seed and the same sequence of
// completions always yield the same ops. The runner (harness/runner.ts) is the one interpreter: it
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

/** No op whose invocation would start at or after `limitS` seconds into the run. */
export function timeLimit(limitS: number, gen: Gen): Gen {
  const deadlineNs = limitS * 1e9;
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

/** Each op comes from one of the generators, drawn with the given weights; exhausted ones drop out. */
export function mix(gens: readonly Gen[], weights: readonly number[] = gens.map(() => 1)): Gen {
  if (gens.length !== weights.length) throw new Error(`mix: ${gens.length} generators but ${weights.length} weights`);
  return {
    next(ctx, rng) {
      let live = gens.slice();
      let w = weights.slice();
      while (live.length > 0) {
        const i = rng.weighted(w);
        const step = live[i].next(ctx, rng);
        if (step) {
          const after = live.slice();
          after[i] = step.gen;
          return { ...step, gen: mix(after, w) };
        }
        live = live.filter((_, j) => j !== i);
        w = w.filter((_, j) => j !== i);
      }
      return null;
    },
  };
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
