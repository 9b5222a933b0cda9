// The api coverage checker: every call the workload names must be acknowledged at least once.
import { describe, expect, it } from 'vitest';
import { api } from '../api.ts';
import { HistoryBuilder, ctx } from './builder.ts';

describe('api', () => {
  it('is valid when every named call was acknowledged, and unknown naming the ones that were not', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'read', { entity: 'e', component: 'c' }, 'ok');
    b.call(0, 'n1', 'delete', { entity: 'e', component: 'c', requestId: 'd' }, 'fail');
    expect(api(b.ops, { ...ctx(), calls: ['read'] })).toMatchObject({ valid: true, missing: [] });
    const r = api(b.ops, { ...ctx(), calls: ['read', 'delete', 'incr'] });
    expect(r).toMatchObject({ valid: 'unknown', missing: ['delete', 'incr'], calls: { read: { invoked: 1, ok: 1 }, delete: { invoked: 1, ok: 0 } } });
    expect(r.error).toMatch(/delete, incr/);
  });

  it('counts requests retried with the same id, and those retried after their node was killed', () => {
    const b = new HistoryBuilder();
    const incr = { entity: 'k', counter: 'c', delta: 1, requestId: 'i1' };
    b.call(0, 'n1', 'incr', { ...incr, attempt: 0 }, 'info');
    b.nemesis('start-kill', { nodes: ['n1'], invokedAt: b.ops[b.ops.length - 1].time + 1 });
    b.nemesis('stop-kill', { nodes: ['n1'] });
    b.call(6, 'n1', 'incr', { ...incr, attempt: 1 }, 'ok');
    b.call(6, 'n1', 'incr', { ...incr, requestId: 'i2', attempt: 0 }, 'info');
    b.call(12, 'n1', 'incr', { ...incr, requestId: 'i2', attempt: 1 }, 'ok');
    expect(api(b.ops, ctx())).toMatchObject({ retried: 2, retriedAcrossRestart: 1 });
  });
});
