// The partition check against a fake cluster whose probe processes start late (docker exec on a loaded
// machine): a repeat doubles the window and the lead, so a late starter is heard on a later attempt,
// while a pair that is really cut stays cut however long the window.
import { describe, expect, it } from 'vitest';
import type { ClusterControl, NodeBackReport, NodeState } from '../types.ts';
import { checkPartition, PROBE_ATTEMPTS } from '../partition.ts';
import { PROBE_LEAD_MS, PROBE_WINDOW_MS } from '../probe.ts';

/**
 * Answers the probe as the real script would: a node whose process starts `lateMs[node]` after the
 * common start (lead included) hears only peers up in time and is heard only if it is up in time;
 * `cut` lists pairs "from>to" whose packets never arrive, as a DROP rule would.
 */
class LateProbeCluster implements ClusterControl {
  readonly nodes = ['n1', 'n2', 'n3'].map((name, i) => ({ name, ip: `10.0.0.${i + 2}` }));
  readonly windows: number[] = [];
  readonly leads: number[] = [];
  private readonly lateMs: Record<string, number>;
  private readonly cut: ReadonlySet<string>;
  constructor(lateMs: Record<string, number>, cut: ReadonlySet<string> = new Set()) {
    this.lateMs = lateMs;
    this.cut = cut;
  }

  async exec(node: string, cmd: readonly string[]) {
    // node -e PROBE self nodesJson udpPort tcpPort windowMs connectTimeoutMs startAtMs
    const window = Number(cmd[7]);
    const startAtMs = cmd[9];
    if (node === 'n1') {
      this.windows.push(window);
      this.leads.push(Number(startAtMs) - Date.now());
    }
    // Up in time: started before the senders stop (window - 150 ms after the common start).
    const upInTime = (n: string): boolean => (this.lateMs[n] ?? 0) < window - 150;
    const heard = [node, ...this.nodes.map((n) => n.name).filter((from) => from !== node && upInTime(from) && upInTime(node) && !this.cut.has(`${from}>${node}`))];
    const tcp = Object.fromEntries(this.nodes.map((n) => [n.name, true]));
    return { stdout: `${JSON.stringify({ heard, tcp })}\n`, stderr: '', exitCode: 0 };
  }
  async kill() {}
  async restart(): Promise<NodeBackReport> {
    return { reapplied: {}, errors: [] };
  }
  async pause() {}
  async unpause(): Promise<NodeBackReport> {
    return { reapplied: {}, errors: [] };
  }
  async state(): Promise<NodeState> {
    return 'running';
  }
  onNodeBack() {
    return () => {};
  }
}

describe('checkPartition on a loaded machine', () => {
  it('hears a probe that started 1 s late on the second attempt, with twice the window and lead', async () => {
    const cluster = new LateProbeCluster({ n3: 1000 }, new Set(['n1>n2', 'n2>n1']));
    const check = await checkPartition(cluster, { n1: ['n2'], n2: ['n1'] });
    expect(check.unverified).toBeUndefined();
    expect(check.verified).toBe(true);
    expect(check.probeAttempts).toBe(2);
    expect(cluster.windows).toEqual([PROBE_WINDOW_MS, 2 * PROBE_WINDOW_MS]);
    expect(cluster.leads[1]).toBeGreaterThan(2 * PROBE_LEAD_MS - 100);
  });

  it('a pair a rule cuts, against the grudge, stays cut through every attempt and is reported', async () => {
    const cluster = new LateProbeCluster({}, new Set(['n1>n3']));
    const check = await checkPartition(cluster, {});
    expect(check.verified).toBe(false);
    expect(check.unverified).toContain('n1→n3 is cut, the grudge lets it through');
    expect(check.probeAttempts).toBe(PROBE_ATTEMPTS);
    expect(cluster.windows).toEqual([1, 2, 4].map((k) => k * PROBE_WINDOW_MS));
  });

  it('a pair that gets through against the grudge is conclusive at once', async () => {
    const cluster = new LateProbeCluster({});
    const check = await checkPartition(cluster, { n3: ['n1'] });
    expect(check.verified).toBe(false);
    expect(check.unverified).toContain('n1→n3 got through, the grudge cuts it');
    expect(cluster.windows).toEqual([PROBE_WINDOW_MS]);
  });
});
