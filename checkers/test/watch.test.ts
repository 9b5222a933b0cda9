// The watch, lag and availability checkers on hand-built histories.
import { describe, expect, it } from 'vitest';
import { availability } from '../availability.ts';
import { lagChecker, watchChecker } from '../watch.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

const put = (b: HistoryBuilder, p: number, node: string, value: string, ts: string) =>
  b.call(p, node, 'write', { entity: 'e', component: 'c', value, requestId: `r-${value}` }, 'ok', { entity: 'e', component: 'c', value, requestId: `r-${value}`, ts });

describe('watch', () => {
  it('passes streams that deliver every change in order, once', () => {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    put(b, 0, 'n2', 'a', hlc(10, 0, 'n2'));
    put(b, 0, 'n2', 'b', hlc(11, 0, 'n2'));
    b.watchEvents(s, 'n1', [['e', 'c', 'a', hlc(10, 0, 'n2')], ['e', 'c', 'b', hlc(11, 0, 'n2')]]);
    b.nemesis('heal');
    const final = { e: entity({ c: ['b', hlc(11, 0, 'n2')] }) };
    b.finalRound(0, { n1: final, n2: final });
    b.closeWatch(s, 'n1');
    expect(watchChecker(b.ops, ctx())).toMatchObject({ valid: true, streams: 1, events: 2, complete: 1 });
  });

  it('catches events out of order or twice, and a final change never delivered', () => {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    put(b, 0, 'n2', 'a', hlc(10, 0, 'n2'));
    put(b, 0, 'n2', 'b', hlc(11, 0, 'n2'));
    b.watchEvents(s, 'n1', [['e', 'c', 'b', hlc(11, 0, 'n2')], ['e', 'c', 'b', hlc(11, 0, 'n2')], ['e', 'c', 'a', hlc(10, 0, 'n2')]]);
    b.call(1, 'n2', 'write', { entity: 'f', component: 'c', value: 'z', requestId: 'rz' }, 'ok', { entity: 'f', component: 'c', value: 'z', requestId: 'rz', ts: hlc(12, 0, 'n2') });
    b.nemesis('heal');
    const final = { e: entity({ c: ['b', hlc(11, 0, 'n2')] }), f: entity({ c: ['z', hlc(12, 0, 'n2')] }) };
    b.finalRound(0, { n1: final, n2: final });
    b.closeWatch(s, 'n1');
    expect(watchChecker(b.ops, ctx()).anomalies?.map((a) => a.type)).toEqual(['watch-duplicate', 'watch-out-of-order', 'watch-missed', 'watch-missed']);
  });

  it('does not hold a stream with drops to completeness, and catches drops the node never counted', () => {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    put(b, 0, 'n2', 'a', hlc(10, 0, 'n2'));
    b.watchEvents(s, 'n1', [['f', 'c', 'x', hlc(9, 0, 'n2'), 'lww', false, 3]]);
    b.nemesis('heal');
    b.finalRound(0, { n1: { e: entity({ c: ['a', hlc(10, 0, 'n2')] }) } });
    b.closeWatch(s, 'n1');
    b.stats({ n1: { writes: 0, relaysSent: 0, watcherDrops: 1 } });
    const r = watchChecker(b.ops, ctx(['n1']));
    expect(r).toMatchObject({ complete: 0, dropped: 3 });
    expect(r.anomalies?.map((a) => a.type)).toEqual(['watch-drops-uncounted']);
  });

  it('catches a stream its node ended while it was up, not one ended by a kill', () => {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.closeWatch(s, 'n1', '14: Connection dropped');
    expect(watchChecker(b.ops, ctx()).anomalies?.[0]?.type).toBe('watch-ended');
    const k = new HistoryBuilder();
    const t = k.openWatch('n1');
    k.nemesis('start-kill', { nodes: ['n1'], invokedAt: k.ops[k.ops.length - 1].time });
    k.closeWatch(t, 'n1', '14: Connection dropped');
    expect(watchChecker(k.ops, ctx()).valid).toBe(true);
  });
});

describe('lag', () => {
  function run(eventDelayMs: number | null, fault = false) {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.wait(2000);
    if (fault) b.nemesis('start-partition', { nodes: ['n1', 'n2'] });
    put(b, 0, 'n2', 'a', hlc(10, 0, 'n2'));
    if (eventDelayMs !== null) {
      b.wait(eventDelayMs);
      b.watchEvents(s, 'n1', [['e', 'c', 'a', hlc(10, 0, 'n2')]]);
    }
    b.wait(3000);
    b.nemesis('heal');
    b.closeWatch(s, 'n1');
    return lagChecker(b.ops, { ...ctx(), antiEntropyMs: 500 });
  }

  it('measures how long a calm-window write takes to reach the other nodes', () => {
    const r = run(5);
    expect(r).toMatchObject({ valid: true, boundMs: 1500, writes: 1, samples: 1 });
    expect(r.lagMs?.p50).toBeGreaterThan(4);
    expect(r.lagMs?.p50).toBeLessThan(8);
  });

  /** 25 calm writes on n2 whose clients waited `clientMs` each, and whose events reach n1 `lagMs` after the ack. */
  function loaded(clientMs: number, lagMs: number) {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.wait(2000);
    for (let i = 0; i < 25; i++) {
      const v = { entity: 'e', component: 'c', value: `v${i}`, requestId: `r${i}` };
      b.add(0, 'invoke', 'write', v, 'n2');
      b.wait(clientMs - 1);
      b.add(0, 'ok', 'write', { ...v, ts: hlc(10 + i, 0, 'n2') }, 'n2');
      b.wait(lagMs - 1);
      b.watchEvents(s, 'n1', [['e', 'c', `v${i}`, hlc(10 + i, 0, 'n2')]]);
      b.wait(20);
    }
    b.wait(3000);
    b.nemesis('heal');
    b.closeWatch(s, 'n1');
    return lagChecker(b.ops, { ...ctx(), antiEntropyMs: 500 });
  }

  it('catches calm-window writes that arrive by anti-entropy, unless the clients themselves were as slow', () => {
    // Fast clients (1 ms), writes 130 ms late: a fifth of the anti-entropy period (100 ms) is the bound.
    const quiet = loaded(1, 130);
    expect(quiet).toMatchObject({ valid: false, relayBoundMs: 100, clientP95Ms: 1, samples: 25 });
    expect(quiet.anomalies?.[0]).toMatchObject({ type: 'slow-replication' });
    expect(quiet.anomalies?.[0]?.message).toContain('a fifth of the anti-entropy period');
    // A starved machine: clients took 60 ms, so a relay (two hops) taking 110 ms is no sign of lost relays.
    expect(loaded(60, 110)).toMatchObject({ valid: true, relayBoundMs: 120, clientP95Ms: 60 });
    // But writes that take most of an anti-entropy period are caught there too.
    const lost = loaded(60, 400);
    expect(lost).toMatchObject({ valid: false, relayBoundMs: 120 });
    expect(lost.anomalies?.[0]?.message).toContain("2 times the clients' own p95 latency of 60 ms");
  });

  /**
   * 401 calm writes and 20 deletes on n2, all reaching n1 3 ms after their ack, except that with
   * `deletesLost` no delete reaches n1 as its own event: n1 learns of it only when the next write,
   * 150 ms later, arrives. The deletes are 5% of the samples, so the overall 95th percentile stays fast.
   */
  function deletes(deletesLost: boolean) {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.wait(2000);
    let ms = 10;
    for (let i = 0; i < 421; i++) {
      const ts = hlc(ms++, 0, 'n2');
      const del = i % 21 === 20;
      const v = { entity: 'e', component: 'c', requestId: `r${i}`, ...(del ? {} : { value: `v${i}` }) };
      b.add(0, 'invoke', del ? 'delete' : 'write', v, 'n2');
      b.wait(1);
      b.add(0, 'ok', del ? 'delete' : 'write', { ...v, ts }, 'n2');
      b.wait(2);
      if (!del || !deletesLost) b.watchEvents(s, 'n1', [['e', 'c', del ? '' : `v${i}`, ts, 'lww', del]]);
      b.wait(del ? 150 : 5);
    }
    b.wait(3000);
    b.nemesis('heal');
    b.closeWatch(s, 'n1');
    return lagChecker(b.ops, { ...ctx(), antiEntropyMs: 500 });
  }

  it('judges each kind of write on its own: deletes that relays lose, hidden in the overall p95', () => {
    const lost = deletes(true);
    expect(lost.lagMs?.p95).toBeLessThan(10);
    expect(lost.lagByKind.delete).toMatchObject({ samples: 20 });
    expect(lost.lagByKind.delete.p95).toBeGreaterThan(150);
    expect(lost.anomalies?.map((a) => [a.type, a.kind])).toEqual([['slow-replication', 'delete']]);
    const ok = deletes(false);
    expect(ok).toMatchObject({ valid: true, samples: 421 });
    expect(ok.lagByKind.delete.p95).toBeLessThan(10);
  });

  it('catches a write that arrives after the bound, or never', () => {
    expect(run(2000).anomalies?.[0]).toMatchObject({ type: 'lag-exceeded', node: 'n1' });
    expect(run(null).anomalies?.[0]).toMatchObject({ type: 'lag-exceeded', lagMs: null });
  });

  /** n2 increments a counter to `result`; n1's stream shows `shown` after `eventDelayMs` (null: nothing). */
  function counterRun(delta: number, result: number, shown: number, eventDelayMs: number | null) {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.wait(2000);
    b.call(0, 'n2', 'incr', { entity: 'counters', counter: 'c0', delta, requestId: 'i1' }, 'ok', { entity: 'counters', counter: 'c0', delta, requestId: 'i1', result });
    if (eventDelayMs !== null) {
      b.wait(eventDelayMs);
      b.watchEvents(s, 'n1', [['counters', 'c0', String(shown), '', 'counter', false, 0]]);
    }
    b.wait(3000);
    b.nemesis('heal');
    b.closeWatch(s, 'n1');
    return lagChecker(b.ops, { ...ctx(), antiEntropyMs: 500 });
  }

  it('judges an increment of a counter that only grows by when the other nodes show its result', () => {
    expect(counterRun(3, 7, 7, 5)).toMatchObject({ valid: true, writes: 1, samples: 1 });
    // A node that shows more (it counted increments the incrementing node had not yet) has it too.
    expect(counterRun(3, 7, 9, 5)).toMatchObject({ valid: true, samples: 1 });
    expect(counterRun(3, 7, 7, 2000).anomalies?.[0]).toMatchObject({ type: 'lag-exceeded', node: 'n1' });
    // Showing less than the result is not having it.
    expect(counterRun(3, 7, 4, 5).anomalies?.[0]).toMatchObject({ type: 'lag-exceeded', lagMs: null });
    expect(counterRun(3, 7, 7, null).anomalies?.[0]?.message).toMatch(/incr of counter counters\/c0 \(value 7 on n2\).*never reached n1/);
  });

  it('does not judge an increment made during a fault, also when lww writes come after it', () => {
    const b = new HistoryBuilder();
    const s = b.openWatch('n1');
    b.wait(2000);
    b.nemesis('start-partition', { nodes: ['n1', 'n2'] });
    b.call(0, 'n2', 'incr', { entity: 'counters', counter: 'c0', delta: 1, requestId: 'i1' }, 'ok', { entity: 'counters', counter: 'c0', delta: 1, requestId: 'i1', result: 1 });
    b.wait(1000);
    b.nemesis('stop-partition', { nodes: ['n1', 'n2'] });
    b.wait(3000);
    // A calm write long after the fault, which the lww walk judges first.
    put(b, 0, 'n2', 'a', hlc(10, 0, 'n2'));
    b.wait(5);
    b.watchEvents(s, 'n1', [['e', 'c', 'a', hlc(10, 0, 'n2')]]);
    b.wait(3000);
    b.nemesis('heal');
    b.closeWatch(s, 'n1');
    expect(lagChecker(b.ops, { ...ctx(), antiEntropyMs: 500 })).toMatchObject({ valid: true, writes: 1, samples: 1 });
  });

  it('does not judge a counter that was ever decremented (its value may go down elsewhere)', () => {
    expect(counterRun(-3, 7, 4, 5)).toMatchObject({ valid: 'unknown', writes: 0 });
  });

  it('judges no write in a fault window, and says unknown when nothing was calm', () => {
    expect(run(null, true)).toMatchObject({ valid: 'unknown', writes: 0 });
  });
});

describe('availability', () => {
  it('judges only ops whose node was up, and fails a node that stopped answering', () => {
    const b = new HistoryBuilder();
    for (let i = 0; i < 10; i++) b.call(0, 'n1', 'read', { entity: 'e', component: 'c' }, 'ok');
    const killAt = b.ops[b.ops.length - 1].time;
    b.nemesis('start-kill', { nodes: ['n2'], invokedAt: killAt });
    for (let i = 0; i < 5; i++) b.call(1, 'n2', 'read', { entity: 'e', component: 'c' }, 'fail'); // down: not judged
    b.nemesis('stop-kill', { nodes: ['n2'] });
    b.wait(1500);
    for (let i = 0; i < 10; i++) b.call(1, 'n2', 'read', { entity: 'e', component: 'c' }, 'ok');
    expect(availability(b.ops, ctx())).toMatchObject({ valid: true, judged: 20, ok: 20 });
    for (let i = 0; i < 3; i++) b.call(0, 'n1', 'write', { entity: 'e', component: 'c', value: 'v', requestId: `w${i}` }, 'fail');
    const r = availability(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies?.[0]).toMatchObject({ type: 'unavailable', node: 'n1' });
    expect(r.nodes.n1).toMatchObject({ judged: 13, ok: 10 });
  });

  /**
   * Request r1 on n1 is attempted `hangs` times, each running into the 1 s deadline, while n1 answers
   * other clients (a fail, as under a failing disk) in the middle of each attempt; `fault` wraps them.
   */
  function retries(hangs: number, fault?: { start: string; value: Record<string, unknown>; stop: string }, answerOthers = true) {
    const b = new HistoryBuilder();
    for (let i = 0; i < 40; i++) b.call(1, 'n1', 'read', { entity: 'e', component: 'c' }, 'ok');
    if (fault) b.nemesis(fault.start, { ...fault.value, invokedAt: b.ops[b.ops.length - 1].time });
    for (let a = 0; a < hangs; a++) {
      const w = { entity: 'e', component: 'c', value: 'v', requestId: 'r1', attempt: a };
      b.add(0, 'invoke', 'write', w, 'n1');
      b.wait(400);
      if (answerOthers) b.call(1, 'n1', 'write', { entity: 'e', component: 'c', value: `x${a}`, requestId: `x${a}` }, 'fail');
      b.wait(600);
      b.add(0, 'info', 'write', w, 'n1');
      b.wait(250);
    }
    if (fault) b.nemesis(fault.stop, fault.value);
    b.wait(1500);
    for (let i = 0; i < 40; i++) b.call(1, 'n1', 'read', { entity: 'e', component: 'c' }, 'ok');
    return availability(b.ops, { ...ctx(), opTimeoutMs: 1000 });
  }

  it('catches a request its node leaves unanswered twice in a row while it answers others, also under a failing disk', () => {
    const r = retries(2);
    expect(r).toMatchObject({ valid: false, unanswered: 1 });
    expect(r.anomalies?.[0]).toMatchObject({ type: 'request-unanswered', node: 'n1', requestId: 'r1' });
    const disk = retries(3, { start: 'start-disk', value: { fault: 'eio-fsync', nodes: ['n1'] }, stop: 'stop-disk' });
    expect(disk).toMatchObject({ valid: false, unanswered: 1 });
  });

  it('does not call one hung attempt, a node that answered nobody, or a stopped or frozen node unanswered', () => {
    expect(retries(1)).toMatchObject({ valid: true, unanswered: 0 });
    expect(retries(2, undefined, false)).toMatchObject({ unanswered: 0 });
    expect(retries(2, { start: 'start-pause', value: { nodes: ['n1'] }, stop: 'stop-pause' })).toMatchObject({ valid: true, unanswered: 0 });
    expect(retries(2, { start: 'start-disk', value: { fault: 'lose-unsynced', nodes: ['n1'] }, stop: 'stop-disk' })).toMatchObject({ valid: true, unanswered: 0 });
  });
});
