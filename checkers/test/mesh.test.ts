import { describe, expect, it } from 'vitest';
import { mesh } from '../mesh.ts';
import { HistoryBuilder } from './builder.ts';

const ctx = { nodes: ['n1', 'n2', 'n3'], workload: 'lww' };

function withStats(perNode: Record<string, { writes: number; relaysSent: number; meshMessages?: number }>): { h: HistoryBuilder; idx: Record<string, number> } {
  const h = new HistoryBuilder();
  h.call(0, 'n1', 'write', { entity: 'e0', component: 'pos', value: 'a', requestId: 'r1' }, 'ok', { entity: 'e0', component: 'pos', value: 'a', requestId: 'r1', ts: 't' });
  const idx: Record<string, number> = {};
  let p = 5000;
  for (const [node, s] of Object.entries(perNode)) {
    const meshMessages = s.meshMessages ?? s.relaysSent;
    [, idx[node]] = h.call(p++, node, 'stats', null, 'ok', { node, ...s, meshMessages, messagesPerWrite: s.writes ? meshMessages / s.writes : 0 });
  }
  return { h, idx };
}

describe('mesh checker', () => {
  it('accepts a full mesh that relays each write once per peer, however many repairs anti-entropy pushed', () => {
    const { h } = withStats({ n1: { writes: 100, relaysSent: 200, meshMessages: 900 }, n2: { writes: 90, relaysSent: 170 }, n3: { writes: 0, relaysSent: 0, meshMessages: 400 } });
    const r = mesh(h.ops, ctx);
    expect(r.valid).toBe(true);
    expect(r.bound).toBe(2.5);
    expect(r.relaysPerWrite).toEqual({ n1: 2, n2: 170 / 90, n3: 0 });
    expect(r.messagesPerWrite).toEqual({ n1: 9, n2: 170 / 90, n3: 0 });
  });

  it('reports amplification (echo relays) naming the node and its stats op', () => {
    const { h, idx } = withStats({ n1: { writes: 100, relaysSent: 200 }, n2: { writes: 100, relaysSent: 2900 }, n3: { writes: 50, relaysSent: 100 } });
    const r = mesh(h.ops, ctx);
    expect(r.valid).toBe(false);
    expect(r.anomalies).toHaveLength(1);
    expect(r.anomalies![0]).toMatchObject({ type: 'mesh-amplification', node: 'n2', ops: [idx.n2], relaysPerWrite: 29 });
  });

  it('judges nodes restarted without local writes: no relays is fine, relays are amplification', () => {
    const quiet = withStats({ n1: { writes: 0, relaysSent: 0 }, n2: { writes: 0, relaysSent: 0 } });
    expect(mesh(quiet.h.ops, ctx)).toMatchObject({ valid: true, relaysPerWrite: { n1: 0, n2: 0 } });
    const { h, idx } = withStats({ n1: { writes: 0, relaysSent: 12 }, n2: { writes: 10, relaysSent: 20 } });
    const r = mesh(h.ops, ctx);
    expect(r.valid).toBe(false);
    expect(r.anomalies).toMatchObject([{ type: 'mesh-amplification', node: 'n1', ops: [idx.n1], message: 'n1 sent 12 relays without a local write since it started; a full mesh never forwards others\' writes' }]);
  });

  it('is unknown when no node reported stats', () => {
    const h = new HistoryBuilder();
    h.call(0, 'n1', 'stats', null, 'fail', null);
    expect(mesh(h.ops, ctx)).toMatchObject({ valid: 'unknown' });
  });
});
