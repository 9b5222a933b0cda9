// The per-op counter checker (checkers/counters.ts) on hand-built histories.
import { describe, expect, it } from 'vitest';
import { counters } from '../counters.ts';
import { HistoryBuilder, ctx } from './builder.ts';

const incr = (b: HistoryBuilder, p: number, node: string, id: string, delta: number, type: 'ok' | 'info' | 'fail', result?: number, extra: object = {}) =>
  b.call(p, node, 'incr', { entity: 'k', counter: 'c', delta, requestId: id, attempt: 0 }, type, {
    entity: 'k', counter: 'c', delta, requestId: id, attempt: 0, ...(result === undefined ? {} : { result }), ...extra,
  });
const readC = (b: HistoryBuilder, p: number, node: string, shares: Record<string, [number, number]>, value?: number) =>
  b.call(p, node, 'read-counter', { entity: 'k', counter: 'c' }, 'ok', {
    entity: 'k', counter: 'c', shares, value: value ?? Object.values(shares).reduce((t, [x, y]) => t + x - y, 0),
  });

describe('counters', () => {
  it('passes reads and replies that every request explains', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    incr(b, 1, 'n2', 'b', -2, 'ok', -2);
    readC(b, 0, 'n1', { n1: [5, 0] }); // n2's increment has not reached n1 yet
    readC(b, 1, 'n2', { n1: [5, 0], n2: [0, 2] });
    incr(b, 0, 'n1', 'c', 1, 'info'); // maybe applied
    readC(b, 1, 'n2', { n1: [6, 0], n2: [0, 2] });
    incr(b, 0, 'n1', 'd', 2, 'ok', 6); // own share 5 + 2 (+1 maybe), n2's -2 maybe seen: [5, 8]
    expect(counters(b.ops, ctx())).toMatchObject({ valid: true, reads: 3, replies: 3 });
  });

  it('catches a share above every request made on its origin (double application)', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    const [, r] = readC(b, 1, 'n2', { n1: [10, 0] });
    expect(counters(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'share-above-requests', ops: [r], origin: 'n1', bound: [5, 0] });
  });

  it('leaves out requests whose every attempt failed', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'fail');
    readC(b, 1, 'n1', { n1: [5, 0] });
    expect(counters(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'share-above-requests' });
  });

  it('catches an origin that does not show its own acknowledged increment, and a share that goes back', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    const [, own] = readC(b, 0, 'n1', { n1: [0, 0] });
    readC(b, 1, 'n2', { n1: [5, 0] });
    const [, back] = readC(b, 1, 'n2', { n1: [3, 0] });
    const types = counters(b.ops, ctx()).anomalies?.map((a) => [a.type, a.ops[0]]);
    expect(types).toEqual([
      ['share-below-acknowledged', own],
      ['share-went-back', back],
    ]);
  });

  it('calls a share lost across a kill of its node lost-after-kill', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    const [, shown] = readC(b, 1, 'n2', { n1: [5, 0] });
    b.nemesis('start-kill', { nodes: ['n2'] });
    const [, back] = readC(b, 1, 'n2', { n1: [0, 0] });
    expect(counters(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'lost-after-kill', ops: [back, shown] });
  });

  it('catches an Incr reply that leaves out the increment itself (the value before it)', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    const [, r] = incr(b, 0, 'n1', 'b', 3, 'ok', 5);
    expect(counters(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'reply-out-of-range', ops: [r], bound: [8, 8] });
    // A recognised retry returns the first reply and is not judged.
    const d = new HistoryBuilder();
    incr(d, 0, 'n1', 'a', 5, 'ok', 5);
    incr(d, 0, 'n1', 'b', 3, 'ok', 8);
    incr(d, 0, 'n1', 'a', 5, 'ok', 5, { duplicate: true });
    expect(counters(d.ops, ctx()).valid).toBe(true);
  });

  it('catches a read whose value is not the sum of its shares', () => {
    const b = new HistoryBuilder();
    incr(b, 0, 'n1', 'a', 5, 'ok', 5);
    const [, r] = readC(b, 1, 'n1', { n1: [5, 0] }, 7);
    expect(counters(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'value-not-sum', ops: [r] });
  });

  it('says unknown with no counter reads or replies', () => {
    expect(counters(new HistoryBuilder().ops, ctx()).valid).toBe('unknown');
  });
});
