// The values checker: every LWW value shown is one a client wrote, under the one timestamp it was
// written with.
import { describe, expect, it } from 'vitest';
import { values } from '../values.ts';
import { HistoryBuilder, entity, hlc } from './builder.ts';

const ctx = { nodes: ['n1', 'n2'], workload: 'lww' };
const key = { entity: 'e0', component: 'pos' };

/** A write of `value` acknowledged at `ts`, then a read on n2 of `shown` at `shownTs`, then final reads. */
function history(shown: { value: string | null; ts: string; deleted?: boolean }, extra?: (b: HistoryBuilder) => void) {
  const b = new HistoryBuilder();
  b.call(0, 'n1', 'write', { ...key, value: 'w0-1', requestId: 'r1' }, 'ok', { ...key, value: 'w0-1', requestId: 'r1', ts: hlc(10, 0, 'n1') });
  b.call(1, 'n2', 'delete', { ...key, requestId: 'r2' }, 'ok', { ...key, requestId: 'r2', ts: hlc(20, 0, 'n2') });
  extra?.(b);
  b.call(1, 'n2', 'read', key, 'ok', { ...key, value: shown.value, ts: shown.ts, ...(shown.deleted ? { deleted: true } : {}) });
  const final = { e0: { components: { pos: { value: '', ts: hlc(20, 0, 'n2'), kind: 'lww' as const, deleted: true } }, counters: {} } };
  b.finalRound(0, { n1: final, n2: final });
  return b.ops;
}

describe('values', () => {
  it('passes reads that show what the write or delete stamped with that timestamp', () => {
    const r = values(history({ value: 'w0-1', ts: hlc(10, 0, 'n1') }), ctx);
    expect(r.valid, JSON.stringify(r.anomalies)).toBe(true);
    expect(r.judged).toBe(4);
    expect(values(history({ value: null, ts: hlc(20, 0, 'n2'), deleted: true }), ctx).valid).toBe(true);
  });

  it('value-mismatch: a delete\'s timestamp shown with a live value (a log that replays a tombstone as a value)', () => {
    const r = values(history({ value: '', ts: hlc(20, 0, 'n2') }), ctx);
    expect(r.valid).toBe(false);
    expect(r.anomalyTypes).toMatchObject({ 'value-mismatch': 1, 'phantom-value': 1 });
  });

  it('phantom-value: a value no write sent', () => {
    const r = values(history({ value: 'w9-9', ts: hlc(15, 0, 'n1') }), ctx);
    expect(r.valid).toBe(false);
    expect(r.anomalyTypes).toEqual({ 'phantom-value': 1 });
  });

  it('applied-twice: one request acknowledged again under a new timestamp (a node that forgot its request ids)', () => {
    const twice = (ts: string, duplicate: boolean) =>
      history({ value: null, ts: hlc(20, 0, 'n2'), deleted: true }, (b) =>
        b.call(0, 'n1', 'write', { ...key, value: 'w0-1', requestId: 'r1', attempt: 1 }, 'ok', { ...key, value: 'w0-1', requestId: 'r1', attempt: 1, ts, duplicate }),
      );
    const r = values(twice(hlc(30, 0, 'n1'), false), ctx);
    expect(r.valid).toBe(false);
    expect(r.anomalyTypes).toEqual({ 'applied-twice': 1 });
    // Recognised as a duplicate: the original timestamp again, valid.
    expect(values(twice(hlc(10, 0, 'n1'), true), ctx).valid).toBe(true);
  });

  it('says unknown with nothing to judge, and leaves max-wins keys alone', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'write-max', { ...key, value: 5, requestId: 'r1' }, 'ok', { ...key, value: 5, requestId: 'r1', ts: hlc(10, 0, 'n1') });
    b.finalRound(0, { n1: { e0: entity({ pos: ['5', hlc(10, 0, 'n1')] }, {}, 'max') } });
    expect(values(b.ops, ctx).valid).toBe('unknown');
  });
});
