// The store-and-mesh service (node/) as a System: the first system under test. Its image bundles the
// service (harness/image.ts), its client speaks the Store API (client.ts here), readiness and cluster
// formation come from Health, its workloads are lww, counter, set and all (workloads.ts), the
// checkers are the store's own set (checkers/index.ts), and it declares every optional capability:
// final reads (a Scan of every node), node Stats, a Watch stream per node, the planted bugs of
// node/bugs.ts, and its wall clock through Health (the clock fault's proof).
import { checkersFor } from '../../../checkers/index.ts';
import { BUGS } from '../../../node/bugs.ts';
import type { HealthReply } from '../../../proto/gen/faultline.ts';
import { callStoreOnce, StoreMeshClient } from './client.ts';
import { ensureImage } from '../../image.ts';
import type { HistoryWriter } from '../../history-writer.ts';
import type { NodeAddress, System } from '../../system.ts';
import { WatchRecorder } from './watch-recorder.ts';
import { workloads } from './workloads.ts';

const PORT = 7000;

function health(node: NodeAddress, timeoutMs: number): Promise<HealthReply> {
  return callStoreOnce<HealthReply>(node.name, node.address, 'health', timeoutMs);
}

export const storeMesh: System = {
  name: 'store-mesh',
  description: 'the store-and-mesh service of node/ (AP: LWW components, PN-counters, relays and anti-entropy)',
  port: PORT,
  dataDir: '/data',
  image: (options) => ensureImage(options),
  command(node, nodes, { options }) {
    const peers = nodes.filter((n) => n !== node).map((n) => `${n}=${n}:${PORT}`).join(',');
    const cmd = ['--id', node, '--listen', `0.0.0.0:${PORT}`, '--peers', peers, '--data-dir', '/data'];
    if (options.antiEntropyMs !== undefined) cmd.push('--anti-entropy-ms', String(options.antiEntropyMs));
    if (options.maxSkewMs !== undefined) cmd.push('--max-skew-ms', String(options.maxSkewMs));
    if (options.bug !== undefined) cmd.push('--bug', options.bug);
    return cmd;
  },
  // The service refuses to start with peers but no secret; every node of a run gets the same one.
  env: (_node, _nodes, { secret }): Record<string, string> => (secret ? { FAULTLINE_MESH_SECRET: secret } : {}),
  client: (address, { opTimeoutMs }) => new StoreMeshClient(address, { opTimeoutMs }),
  async ready(node, timeoutMs) {
    const reply = await health(node, timeoutMs);
    if (!reply.ok) throw new Error(`Health answered ok=false (node "${reply.node}")`);
    if (reply.node !== node.name) throw Object.assign(new Error(`Health answered as node "${reply.node}", expected "${node.name}"`), { permanent: true });
  },
  // Healthy is not yet connected: a write made before a node's mesh reached its peers is not relayed
  // (anti-entropy repairs it later), so every run starts from a fully connected mesh.
  async unformed(nodes, timeoutMs) {
    const replies = await Promise.all(nodes.map((n) => health(n, timeoutMs).catch((error: unknown) => (error as Error).message)));
    return replies.flatMap((r, i) =>
      typeof r === 'string' ? [`${nodes[i].name}: ${r}`] : r.peersConnected.length < r.peers.length ? [`${nodes[i].name} connected to [${r.peersConnected.join(', ')}] of ${r.peers.length} peers`] : [],
    );
  },
  workloads,
  defaultWorkload: 'lww',
  checkers: (workload) => checkersFor(workload),
  finalReads: true,
  companion: (node, client, history, processBase) => new WatchRecorder(node, client as unknown as () => StoreMeshClient, history as HistoryWriter, processBase),
  bugs: BUGS,
  wallClock: async (node, timeoutMs) => (await health(node, timeoutMs)).wallMs,
};

