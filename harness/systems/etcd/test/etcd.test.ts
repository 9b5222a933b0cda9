// The etcd System without Docker: its error table, its workload's shape, its command line, and that the
// engine is told which faults it cannot take.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { resolveNemeses } from '../../../../nemesis/index.ts';
import type { ClusterControl } from '../../../../nemesis/types.ts';
import { createRng } from '../../../rng.ts';
import { preview } from '../../../generator.ts';
import { classifyEtcdError } from '../client.ts';
import { etcd } from '../index.ts';

const grpcError = (code: number, details: string) => Object.assign(new Error(`${code} ${details}`), { code, details });

describe('the etcd system', () => {
  it('classifies errors: any read error is a fail; a write fails definitely only when it never reached a proposal', () => {
    expect(classifyEtcdError(grpcError(status.DEADLINE_EXCEEDED, 'deadline'), true).type).toBe('fail');
    expect(classifyEtcdError(grpcError(status.DEADLINE_EXCEEDED, 'deadline'), false).type).toBe('info');
    expect(classifyEtcdError(grpcError(status.UNAVAILABLE, 'etcdserver: no leader'), false).type).toBe('info');
    expect(classifyEtcdError(grpcError(status.UNKNOWN, 'etcdserver: request timed out'), false).type).toBe('info');
    expect(classifyEtcdError(grpcError(status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 172.18.0.2:2379'), false).type).toBe('fail');
    expect(classifyEtcdError(grpcError(status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'), false).type).toBe('fail');
    expect(classifyEtcdError(grpcError(status.INVALID_ARGUMENT, 'etcdserver: key is not provided'), false)).toEqual({ type: 'fail', error: 'INVALID_ARGUMENT: etcdserver: key is not provided' });
  });

  it('spreads each worker over generations of keys, with reads, writes and compare-and-sets of small integers', () => {
    const ops = preview(etcd.workloads['cas-register'].generator(0, { keys: 3, runTag: 't' }), createRng(1), { worker: 0, process: 0, node: 'n1' }, 200);
    const fs = new Set(ops.map((o) => o.f));
    expect([...fs].sort()).toEqual(['cas', 'read', 'write']);
    const keys = new Set(ops.map((o) => (o.value as { key: string }).key));
    // 200 ops at 40 per generation: 5 or 6 generations of at most 3 keys each.
    expect(keys.size).toBeGreaterThan(9);
    expect([...keys].every((k) => /^r\d+-[0-2]$/.test(k))).toBe(true);
    for (const o of ops) {
      const v = (o.value as { value?: unknown }).value;
      if (o.f === 'write') expect(v).toEqual(expect.any(Number));
      if (o.f === 'cas') expect(v).toEqual([expect.any(Number), expect.any(Number)]);
    }
  });

  it('starts every member from the same static peer list and a per-run cluster token', () => {
    const cmd = etcd.command('n2', ['n1', 'n2', 'n3'], { options: {} as never, secret: 'ab'.repeat(32) });
    const arg = (flag: string) => cmd[cmd.indexOf(flag) + 1];
    expect(arg('--name')).toBe('n2');
    expect(arg('--initial-cluster')).toBe('n1=http://n1:2380,n2=http://n2:2380,n3=http://n3:2380');
    expect(arg('--advertise-client-urls')).toBe('http://n2:2379');
    expect(arg('--initial-cluster-token')).toBe(`faultline-${'ab'.repeat(8)}`);
  });

  it('refuses the clock fault with why, and `all` skips it', async () => {
    const cluster = { nodes: [{ name: 'n1', ip: '10.0.0.1' }], unsupportedFaults: etcd.unsupportedFaults } as unknown as ClusterControl;
    await expect(resolveNemeses(['clock'], cluster, { nodes: ['n1'] })).rejects.toThrow(/clock.*etcd is a Go program.*libfaketime/);
    const skipped: string[] = [];
    await resolveNemeses('all', cluster, { nodes: ['n1'] }, (s) => skipped.push(s.name)).catch(() => undefined);
    expect(skipped).toContain('clock');
  });
});
