// etcd end to end on real Docker, as `npm run jepsen -- --system etcd --nemesis partition` runs it: a
// 3-member cluster of Debian's etcd under partitions, with linearizable reads, judged valid by the
// linearizability checker with hundreds of ops judged, the partitions verified by the probe, and
// nothing left behind.
import Docker from 'dockerode';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptions, type Options } from '../../../options.ts';
import { runTest } from '../../../lifecycle.ts';
import { etcd } from '../index.ts';

describe('etcd under partitions', () => {
  it('is linearizable with linearizable reads, with every op judged, and leaves nothing behind', async () => {
    const results = mkdtempSync(path.join(tmpdir(), 'fl-etcd-'));
    const options = parseOptions(['--system', 'etcd', '--nodes', '3', '--nemesis', 'partition', '--time-limit', '12', '--seed', '5', '--results-dir', results]) as Options;
    const report = await runTest(etcd, options, new AbortController().signal);
    const lin = report.results.checkers.linearizability as { valid: unknown; judged: number; keys: number };
    expect(report.results.checkers.run).toBeUndefined();
    expect(lin.valid).toBe(true);
    expect(lin.judged).toBeGreaterThan(200);
    expect(report.results.test.nemesisRan).toEqual(['partition']);
    expect(report.valid).toBe(true);
    const docker = new Docker();
    const filters = { label: [`faultline=${report.test.runId}`] };
    expect(await docker.listContainers({ all: true, filters })).toHaveLength(0);
    expect(await docker.listNetworks({ filters })).toHaveLength(0);
  });
});
