import { describe, expect, it } from 'vitest';
import { convergence } from '../convergence.ts';
import { HistoryBuilder, ctx, entity, hlc } from './builder.ts';

describe('convergence', () => {
  it('is valid when every node ends with the same state and reports the time from heal to agreement', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-partition');
    const heal = b.nemesis('heal');
    // Round 0 disagrees, round 1 agrees.
    b.finalRound(0, { n1: { e1: entity({ pos: ['a', hlc(1)] }) }, n2: { e1: entity({ pos: ['b', hlc(2)] }) } });
    b.finalRound(1, { n1: { e1: entity({ pos: ['b', hlc(2)] }) }, n2: { e1: entity({ pos: ['b', hlc(2)] }) } });
    const r = convergence(b.ops, ctx());
    expect(r.valid).toBe(true);
    expect(r.anomalies).toEqual([]);
    expect(r.converged).toBe(true);
    expect(r.convergedRound).toBe(1);
    expect(r.healOp).toBe(heal);
    // Heal at 2 ms; round 1's last completion is op 9 at 10 ms.
    expect(r.convergenceMs).toBe(8);
  });

  it('reports a non-converged component with every node value and the final-read ops', () => {
    const b = new HistoryBuilder();
    b.nemesis('heal');
    const reads = b.finalRound(0, {
      n1: { e1: entity({ pos: ['a', hlc(1)], hp: ['9', hlc(1)] }) },
      n2: { e1: entity({ pos: ['a', hlc(1)], hp: ['7', hlc(3, 0, 'n2')] }) },
    });
    const r = convergence(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.converged).toBe(false);
    expect(r.convergenceMs).toBeNull();
    expect(r.anomalies).toHaveLength(1);
    const a = r.anomalies![0];
    expect(a.type).toBe('non-converged');
    expect(a.ops).toEqual([reads.n1, reads.n2]);
    expect(a.entity).toBe('e1');
    expect(a.component).toBe('hp');
    expect(a.values).toEqual({ n1: { value: '9', ts: hlc(1), kind: 'lww' }, n2: { value: '7', ts: hlc(3, 0, 'n2'), kind: 'lww' } });
  });

  it('treats a differing tombstone flag and a differing counter as non-converged', () => {
    const b = new HistoryBuilder();
    const tomb = entity({ pos: ['', hlc(5)] }, { hits: 3 });
    const live = entity({ pos: ['', hlc(5)] }, { hits: 4 });
    (tomb.components.pos as { deleted?: boolean }).deleted = true;
    b.finalRound(0, { n1: { e1: tomb }, n2: { e1: live } });
    const r = convergence(b.ops, ctx());
    expect(r.valid).toBe(false);
    expect(r.anomalies!.map((a) => [a.type, a.component ?? a.counter])).toEqual([['non-converged', 'pos'], ['non-converged', 'hits']]);
  });

  it('is unknown when a node never answered, invalid when the answering nodes already differ', () => {
    const b = new HistoryBuilder();
    b.finalRound(0, { n1: { e1: entity({ pos: ['a', hlc(1)] }) }, n2: { e1: entity({ pos: ['a', hlc(1)] }) } });
    const r = convergence(b.ops, ctx(['n1', 'n2', 'n3']));
    expect(r.valid).toBe('unknown');
    expect(r.missingNodes).toEqual(['n3']);
    expect(r.error).toMatch(/missing: n3/);

    const d = new HistoryBuilder();
    d.finalRound(0, { n1: { e1: entity({ pos: ['a', hlc(1)] }) }, n2: { e1: entity({ pos: ['b', hlc(2)] }) } });
    expect(convergence(d.ops, ctx(['n1', 'n2', 'n3'])).valid).toBe(false);
  });

  it('is unknown without any final read', () => {
    const r = convergence([], ctx());
    expect(r.valid).toBe('unknown');
    expect(r.error).toMatch(/No node answered/);
  });
});
