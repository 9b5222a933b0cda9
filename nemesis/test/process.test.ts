// Kill and pause against a fake ClusterControl (container states in a map): each op checks the state it
// left the node in, a pause on a stopped node is deferred until the node is healthy again, and what the
// other nemeses re-applied when a node came back is recorded in the op that brought it back.
import { describe, expect, it } from 'vitest';
import type { ClusterControl, NodeBackEvent, NodeBackListener, NodeBackReport, NodeState } from '../types.ts';
import { killPackage } from '../kill.ts';
import { pausePackage } from '../pause.ts';

/** A cluster of container states; restart and unpause run the listeners as harness/cluster.ts does. */
class FakeCluster implements ClusterControl {
  readonly nodes = ['n1', 'n2', 'n3'].map((name, i) => ({ name, ip: `10.0.0.${i + 2}` }));
  readonly states = new Map<string, NodeState>(this.nodes.map((n) => [n.name, 'running']));
  readonly listeners = new Map<string, NodeBackListener>();
  /** Set to make pause() leave the node running, as a broken engine might. */
  pauseIsNoop = false;

  async exec() {
    return { stdout: '', stderr: '', exitCode: 0 };
  }
  async kill(node: string) {
    this.states.set(node, 'stopped');
  }
  async restart(node: string): Promise<NodeBackReport> {
    if (this.states.get(node) !== 'stopped') return { reapplied: {}, errors: [] };
    this.states.set(node, 'running');
    const a = await this.#back(node, 'restarted');
    const b = await this.#back(node, 'healthy');
    return { reapplied: { ...a.reapplied, ...b.reapplied }, errors: [...a.errors, ...b.errors] };
  }
  async pause(node: string) {
    if (this.states.get(node) === 'stopped') throw new Error(`${node}: docker pause failed: container is not running`);
    if (!this.pauseIsNoop) this.states.set(node, 'paused');
  }
  async unpause(node: string): Promise<NodeBackReport> {
    if (this.states.get(node) !== 'paused') return { reapplied: {}, errors: [] };
    this.states.set(node, 'running');
    return this.#back(node, 'unpaused');
  }
  async state(node: string) {
    return this.states.get(node)!;
  }
  onNodeBack(name: string, listener: NodeBackListener) {
    this.listeners.set(name, listener);
    return () => this.listeners.delete(name);
  }
  async #back(node: string, event: NodeBackEvent): Promise<NodeBackReport> {
    const reapplied: Record<string, Record<string, unknown>> = {};
    for (const [name, l] of this.listeners) {
      const v = await l(node, event);
      if (v) reapplied[name] = v;
    }
    return { reapplied, errors: [] };
  }
}

const options = { nodes: ['n1', 'n2', 'n3'] };

describe('kill and pause verify what they did', () => {
  it('kill: the start is verified by a stopped container, the stop by a running one, with what was re-applied', async () => {
    const cluster = new FakeCluster();
    const kill = killPackage(options);
    await kill.nemesis.setup(cluster);
    cluster.onNodeBack('partition', async (node, event) => (event === 'restarted' ? { node, verified: true } : undefined));
    expect((await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n2', 'n3'] } })).value).toMatchObject({ verified: true, affected: ['n2', 'n3'] });
    const stopped = await kill.nemesis.invoke({ f: 'stop-kill', value: { nodes: ['n2'] } });
    expect(stopped.error).toBeUndefined();
    expect(stopped.value).toMatchObject({ verified: true, affected: ['n3'], reapplied: { n2: { partition: { node: 'n2', verified: true } } } });
  });

  it('kill: the heal records what the restarted nodes re-applied, and what failed there, without failing', async () => {
    const cluster = new FakeCluster();
    const kill = killPackage(options);
    await kill.nemesis.setup(cluster);
    cluster.onNodeBack('clock', async (node, event) => (event === 'healthy' ? { node, offsetS: 30, verified: node === 'n1' } : undefined));
    await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n1', 'n3'] } });
    // An error in n3's report stands for a re-application that failed on the restarted node.
    const real = cluster.restart.bind(cluster);
    cluster.restart = async (node) => {
      const r = await real(node);
      return node === 'n3' ? { ...r, errors: ['partition: iptables exited 4'] } : r;
    };
    const healed = await kill.nemesis.heal();
    expect(healed.ok).toBe(true);
    expect(healed.value).toMatchObject({
      nodes: ['n1', 'n3'],
      affected: [],
      reapplied: { n1: { clock: { node: 'n1', offsetS: 30, verified: true } }, n3: { clock: { node: 'n3', verified: false } } },
      afterRestart: 'n3: partition: iptables exited 4',
    });
    expect([...cluster.states.values()]).toEqual(['running', 'running', 'running']);
  });

  it('pause: unverified, naming the node, when the container is not paused afterwards', async () => {
    const cluster = new FakeCluster();
    const pause = pausePackage(options);
    await pause.nemesis.setup(cluster);
    cluster.pauseIsNoop = true;
    const started = await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n1'] } });
    expect(started.value).toMatchObject({ verified: false, unverified: 'n1 is running after pause, expected paused' });
  });

  it('pause on a killed node is deferred, and applied (and verified) when the restarted node is healthy', async () => {
    const cluster = new FakeCluster();
    const kill = killPackage(options);
    const pause = pausePackage(options);
    await kill.nemesis.setup(cluster);
    await pause.nemesis.setup(cluster);
    await kill.nemesis.invoke({ f: 'start-kill', value: { nodes: ['n1'] } });
    const paused = await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n1', 'n2'] } });
    expect(paused.error).toBeUndefined();
    // n2 was paused and is verified; n1 waits for its restart.
    expect(paused.value).toMatchObject({ verified: true, deferred: { n1: 'stopped' }, affected: ['n1', 'n2'] });
    const restarted = await kill.nemesis.invoke({ f: 'stop-kill', value: { nodes: ['n1'] } });
    expect(restarted.value.reapplied).toEqual({ n1: { pause: { node: 'n1', paused: true, verified: true } } });
    expect(cluster.states.get('n1')).toBe('paused');
    const resumed = await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n1', 'n2'] } });
    expect(resumed.value).toMatchObject({ verified: true, affected: [] });
    expect([...cluster.states.values()]).toEqual(['running', 'running', 'running']);
  });

  it('a pause deferred on every target is not verified until they come back', async () => {
    const cluster = new FakeCluster();
    const pause = pausePackage(options);
    await pause.nemesis.setup(cluster);
    cluster.states.set('n3', 'stopped');
    expect((await pause.nemesis.invoke({ f: 'start-pause', value: { nodes: ['n3'] } })).value).toMatchObject({ verified: false, unverified: 'n3 is stopped: paused when restarted', deferred: { n3: 'stopped' } });
    // Resuming a node that was never paused (still stopped) is what the stop asks for.
    expect((await pause.nemesis.invoke({ f: 'stop-pause', value: { nodes: ['n3'] } })).value).toMatchObject({ verified: true });
    expect(cluster.listeners.has('pause')).toBe(true);
    await pause.nemesis.teardown();
    expect(cluster.listeners.has('pause')).toBe(false);
  });
});
