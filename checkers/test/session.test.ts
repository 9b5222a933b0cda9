// The per-op checkers of checkers/session.ts: session guarantees per node, durability of what a node
// showed across kills, and deletes, on hand-built histories.
import { describe, expect, it } from 'vitest';
import { deletesChecker, durableReads, sessionChecker } from '../session.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';
import type { FinalState } from '../../harness/history.ts';

const read = (b: HistoryBuilder, p: number, node: string, value: string | null, ts: string | null, extra: object = {}) =>
  b.call(p, node, 'read', { entity: 'e', component: 'c' }, 'ok', { entity: 'e', component: 'c', value, ts, ...extra });
const write = (b: HistoryBuilder, p: number, node: string, value: string, ts: string, extra: object = {}) =>
  b.call(p, node, 'write', { entity: 'e', component: 'c', value, requestId: `r-${value}` }, 'ok', { entity: 'e', component: 'c', value, requestId: `r-${value}`, ts, ...extra });
const del = (b: HistoryBuilder, p: number, node: string, id: string, ts: string) =>
  b.call(p, node, 'delete', { entity: 'e', component: 'c', requestId: id }, 'ok', { entity: 'e', component: 'c', requestId: id, ts });
const tombstone = (ts: string): FinalState => ({ e: { components: { c: { value: '', ts, kind: 'lww', deleted: true } }, counters: {} } });

describe('session', () => {
  it('passes a node that shows and orders everything it had seen', () => {
    const b = new HistoryBuilder();
    write(b, 0, 'n1', 'a', hlc(10));
    read(b, 1, 'n1', 'a', hlc(10));
    read(b, 2, 'n2', null, null); // another node may not have it yet
    write(b, 1, 'n1', 'b', hlc(11));
    read(b, 0, 'n1', 'b', hlc(11));
    const final = { e: entity({ c: ['b', hlc(11)] }) };
    b.finalRound(0, { n1: final, n2: final });
    const r = sessionChecker(b.ops, ctx());
    expect(r).toMatchObject({ valid: true, judged: 6 });
  });

  it('catches a read older than a write the same node acknowledged (read-your-writes)', () => {
    const b = new HistoryBuilder();
    const [, w] = write(b, 0, 'n1', 'a', hlc(10));
    const [, r] = read(b, 0, 'n1', 'old', hlc(5));
    const res = sessionChecker(b.ops, ctx());
    expect(res.valid).toBe(false);
    expect(res.anomalies?.[0]).toMatchObject({ type: 'stale-read', guarantee: 'read-your-writes', ops: [r, w], node: 'n1' });
  });

  it('catches a read older than one an earlier read on that node returned (monotonic reads), never comparing overlapping ops', () => {
    const b = new HistoryBuilder();
    read(b, 0, 'n1', 'new', hlc(20));
    const [, stale] = read(b, 1, 'n1', 'old', hlc(5));
    expect(sessionChecker(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'stale-read', guarantee: 'monotonic-reads', ops: [stale, 1] });
    // Overlapping reads may complete in either order.
    const o = new HistoryBuilder();
    o.add(0, 'invoke', 'read', { entity: 'e', component: 'c' }, 'n1');
    o.add(1, 'invoke', 'read', { entity: 'e', component: 'c' }, 'n1');
    o.add(0, 'ok', 'read', { entity: 'e', component: 'c', value: 'new', ts: hlc(20) }, 'n1');
    o.add(1, 'ok', 'read', { entity: 'e', component: 'c', value: 'old', ts: hlc(5) }, 'n1');
    expect(sessionChecker(o.ops, ctx()).valid).toBe(true);
  });

  it('holds a node\'s writes to the newest element timestamp a set read on it showed (writes-follow-reads)', () => {
    const add = (b: HistoryBuilder, node: string, element: number, ts: string) =>
      b.call(0, node, 'add', { entity: 's', element, requestId: `a${element}` }, 'ok', { entity: 's', element, requestId: `a${element}`, ts });
    const readSet = (b: HistoryBuilder, maxTs: string) => b.call(1, 'n2', 'read-set', { entity: 's' }, 'ok', { entity: 's', elements: [7], removed: [], maxTs });
    const bad = new HistoryBuilder();
    const [, r] = readSet(bad, hlc(50, 3, 'n3'));
    const [, w] = add(bad, 'n2', 8, hlc(50, 1, 'n2'));
    expect(sessionChecker(bad.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'write-not-after', guarantee: 'writes-follow-reads', ops: [w, r] });
    const good = new HistoryBuilder();
    readSet(good, hlc(50, 3, 'n3'));
    add(good, 'n2', 8, hlc(50, 4, 'n2'));
    expect(sessionChecker(good.ops, ctx()).valid).toBe(true);
  });

  it('catches an acknowledged write not after what its node had shown (writes-follow-reads), and exempts a recognised retry', () => {
    const b = new HistoryBuilder();
    read(b, 0, 'n2', 'far', hlc(50, 0, 'n3'));
    const [, w] = write(b, 0, 'n2', 'mine', hlc(40, 0, 'n2'));
    expect(sessionChecker(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'write-not-after', guarantee: 'writes-follow-reads', ops: [w, 1] });
    const ok = new HistoryBuilder();
    read(ok, 0, 'n2', 'far', hlc(50, 0, 'n3'));
    write(ok, 0, 'n2', 'mine', hlc(40, 0, 'n2'), { duplicate: true });
    expect(sessionChecker(ok.ops, ctx()).valid).toBe(true);
  });

  it('catches two requests acknowledged with one timestamp, one stamped with another node id, and a node clock that goes back across keys', () => {
    const b = new HistoryBuilder();
    // Two writes in flight on n1 at once (neither completed before the other began) get the same ts.
    b.add(0, 'invoke', 'write', { entity: 'e', component: 'c', value: 'a', requestId: 'ra' }, 'n1');
    b.add(1, 'invoke', 'write', { entity: 'f', component: 'c', value: 'b', requestId: 'rb' }, 'n1');
    b.add(0, 'ok', 'write', { entity: 'e', component: 'c', value: 'a', requestId: 'ra', ts: hlc(10) }, 'n1');
    b.add(1, 'ok', 'write', { entity: 'f', component: 'c', value: 'b', requestId: 'rb', ts: hlc(10) }, 'n1');
    b.call(2, 'n2', 'write', { entity: 'h', component: 'c', value: 'y', requestId: 'ry' }, 'ok', { entity: 'h', component: 'c', value: 'y', requestId: 'ry', ts: hlc(11, 0, 'n1') });
    b.call(0, 'n1', 'write', { entity: 'g', component: 'c', value: 'z', requestId: 'rz' }, 'ok', { entity: 'g', component: 'c', value: 'z', requestId: 'rz', ts: hlc(9) });
    const types = sessionChecker(b.ops, ctx()).anomalies?.map((a) => a.type);
    expect(types).toEqual(['duplicate-timestamp', 'foreign-timestamp', 'write-not-after']);
  });

  it('holds set reads to what the node showed: an element it showed never disappears', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'add', { entity: 's', element: 7, requestId: 'a7' }, 'ok', { entity: 's', element: 7, requestId: 'a7', ts: hlc(3) });
    const [, gone] = b.call(1, 'n1', 'read-set', { entity: 's' }, 'ok', { entity: 's', elements: [], removed: [] });
    expect(sessionChecker(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'stale-read', ops: [gone, 1] });
  });

  it('says unknown when there is nothing with a timestamp to judge', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'incr', { entity: 'e', counter: 'c', delta: 1, requestId: 'i', attempt: 0 }, 'ok');
    expect(sessionChecker(b.ops, ctx())).toMatchObject({ valid: 'unknown', judged: 0 });
  });
});

describe('durable-reads', () => {
  it('calls a value a node showed before a kill and lost after it lost-after-kill, not a session anomaly', () => {
    const b = new HistoryBuilder();
    const [, shown] = read(b, 0, 'n1', 'a', hlc(10));
    const kill = b.nemesis('start-kill', { nodes: ['n1'], invokedAt: b.ops[shown].time + 1 });
    b.nemesis('stop-kill', { nodes: ['n1'] });
    const [, after] = read(b, 0, 'n1', null, null);
    const d = durableReads(b.ops, ctx());
    expect(d.valid).toBe(false);
    expect(d.anomalies?.[0]).toMatchObject({ type: 'lost-after-kill', ops: [after, shown], killedAt: kill });
    expect(sessionChecker(b.ops, ctx()).valid).toBe(true);
  });

  it('passes a node that keeps across a kill everything it showed, and says a run without kills proved nothing about crashes', () => {
    const b = new HistoryBuilder();
    read(b, 0, 'n1', 'a', hlc(10));
    b.nemesis('start-kill', { nodes: ['n1'] });
    b.nemesis('stop-kill', { nodes: ['n1'] });
    read(b, 0, 'n1', 'a', hlc(10));
    expect(durableReads(b.ops, ctx())).toMatchObject({ valid: true, kills: 1 });
    const quiet = new HistoryBuilder();
    read(quiet, 0, 'n1', 'a', hlc(10));
    expect(durableReads(quiet.ops, ctx())).toMatchObject({ valid: true, kills: 0, note: expect.stringMatching(/no node was killed/) });
  });
});

describe('deletes', () => {
  it('passes a delete that stays deleted or is overwritten by a later write', () => {
    const b = new HistoryBuilder();
    write(b, 0, 'n1', 'a', hlc(10));
    del(b, 0, 'n1', 'd1', hlc(11));
    read(b, 1, 'n1', null, hlc(11), { deleted: true });
    write(b, 1, 'n1', 'b', hlc(12));
    b.finalRound(0, { n1: { e: entity({ c: ['b', hlc(12)] }) }, n2: { e: entity({ c: ['b', hlc(12)] }) } });
    expect(deletesChecker(b.ops, ctx())).toMatchObject({ valid: true, deletesAcknowledged: 1 });
  });

  it('catches a deleted value that comes back on the node that deleted it, and in the final state', () => {
    const b = new HistoryBuilder();
    write(b, 0, 'n1', 'a', hlc(10));
    const [, d] = del(b, 0, 'n1', 'd1', hlc(11));
    const [, back] = read(b, 1, 'n1', 'a', hlc(10));
    const final = b.finalRound(0, { n1: { e: entity({ c: ['a', hlc(10)] }) }, n2: tombstone(hlc(11)) });
    const r = deletesChecker(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies?.map((a) => [a.type, a.ops])).toEqual([
      ['resurrected', [back, d]],
      ['resurrected', [final.n1, d]],
      ['resurrected', [final.n1, d]],
    ]);
  });

  it('catches a removed set element shown live again', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'add', { entity: 's', element: 7, requestId: 'a7' }, 'ok', { entity: 's', element: 7, requestId: 'a7', ts: hlc(3) });
    const [, rm] = b.call(0, 'n1', 'remove', { entity: 's', element: 7, requestId: 'r7' }, 'ok', { entity: 's', element: 7, requestId: 'r7', ts: hlc(4) });
    const [, back] = b.call(1, 'n1', 'read-set', { entity: 's' }, 'ok', { entity: 's', elements: [7], removed: [] });
    expect(deletesChecker(b.ops, ctx()).anomalies?.[0]).toMatchObject({ type: 'resurrected', ops: [back, rm] });
  });

  it('says unknown with no acknowledged delete', () => {
    const b = new HistoryBuilder();
    write(b, 0, 'n1', 'a', hlc(10));
    expect(deletesChecker(b.ops, ctx()).valid).toBe('unknown');
  });
});
