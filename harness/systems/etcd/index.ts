// etcd as a System: Debian's etcd-server (3.4) in its own image (Dockerfile here), a cluster of static
// members that bootstrap from each other by name, the client in client.ts, and one workload, `cas-register`:
// read / write / compare-and-set on many keys, judged by linearizability under the cas-register model as
// the verdict (etcd promises linearizable reads and writes by default; `--etcd-reads serializable` asks
// for etcd's member-local reads, which may be stale and which the checker then should catch).
//
// Capabilities: readiness is etcd's client port accepting connections (a member restarted on the
// minority side of a partition does not serve until it reaches a quorum, and a heal must not wait for
// that); the cluster is formed once every member reports the same leader. It declares no final reads
// (a register history needs none), no node stats, no watch streams, no planted bugs, and no wall-clock
// reading: etcd is a Go program, and Go reads the clock through the vDSO, which libfaketime cannot
// intercept, so the clock fault cannot move etcd's clock and is refused (see unsupportedFaults).
import { api } from '../../../checkers/api.ts';
import { modelCheckers } from '../../../checkers/model-checkers.ts';
import { repeatedly } from '../../generator.ts';
import { ensureSystemImage } from '../../image.ts';
import type { System, Workload } from '../../system.ts';
import { EtcdClient, ETCD_FS, memberStatus, tcpOpen, type EtcdReads } from './client.ts';

const CLIENT_PORT = 2379;
const PEER_PORT = 2380;

/**
 * Each worker moves to a fresh generation of keys after this many of its ops, so every key sees a
 * bounded number of ops (about workers × this / --keys) and its linearizability search stays small, as
 * Jepsen's independent keys do. Workers run at the same rate, so they reach a generation together.
 */
const OPS_PER_GENERATION = 40;

// Named after its model, so `npm run check` on a run folder of it picks the same checkers.
const register: Workload = {
  name: 'cas-register',
  description: 'read / write / compare-and-set of small integers on many keys (a linearizable register each)',
  calls: [...ETCD_FS],
  generator(_worker, { keys }) {
    return repeatedly<{ n: number }>({ n: 0 }, (_ctx, rng, s) => {
      const n = s.n + 1;
      const key = `r${Math.floor(n / OPS_PER_GENERATION)}-${rng.int(keys)}`;
      const r = rng.next();
      if (r < 0.4) return { op: { f: 'read', value: { key } }, state: { n } };
      if (r < 0.7) return { op: { f: 'write', value: { key, value: rng.int(5) } }, state: { n } };
      return { op: { f: 'cas', value: { key, value: [rng.int(5), rng.int(5)] } }, state: { n } };
    });
  },
};

export const etcd: System = {
  name: 'etcd',
  description: "etcd 3.4 from Debian (CP: Raft), per-key registers judged by linearizability",
  port: CLIENT_PORT,
  dataDir: '/data',
  image: (options) =>
    ensureSystemImage({ ...options, repository: 'faultline-etcd', dockerfile: 'harness/systems/etcd/Dockerfile', files: ['harness/systems/etcd/Dockerfile'] }),
  command(node, nodes, { secret }) {
    return [
      '--name', node,
      '--data-dir', '/data/etcd',
      '--listen-client-urls', `http://0.0.0.0:${CLIENT_PORT}`,
      '--advertise-client-urls', `http://${node}:${CLIENT_PORT}`,
      '--listen-peer-urls', `http://0.0.0.0:${PEER_PORT}`,
      '--initial-advertise-peer-urls', `http://${node}:${PEER_PORT}`,
      '--initial-cluster', nodes.map((n) => `${n}=http://${n}:${PEER_PORT}`).join(','),
      '--initial-cluster-state', 'new',
      // A token per run, so members of two runs can never join each other's cluster.
      '--initial-cluster-token', `faultline-${secret.slice(0, 16)}`,
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ];
  },
  client: (address, { opTimeoutMs, options }) => new EtcdClient(address, { opTimeoutMs, reads: (options?.systemOptions['etcd-reads'] ?? 'linearizable') as EtcdReads }),
  ready: (node, timeoutMs) => tcpOpen(node.address, timeoutMs),
  async unformed(nodes, timeoutMs) {
    const replies = await Promise.all(nodes.map((n) => memberStatus(n.address, timeoutMs).catch((error: unknown) => (error as Error).message)));
    const leaders = new Set(replies.flatMap((r) => (typeof r === 'string' ? [] : [r.leader])));
    const problems = replies.flatMap((r, i) => (typeof r === 'string' ? [`${nodes[i].name}: ${r}`] : r.leader === '0' || r.leader === '' ? [`${nodes[i].name} has no leader`] : []));
    if (problems.length === 0 && leaders.size > 1) problems.push(`the members disagree on the leader (${leaders.size} different ones)`);
    return problems;
  },
  workloads: { 'cas-register': register },
  defaultWorkload: 'cas-register',
  checkers: () => ({ ...modelCheckers('cas-register'), api }),
  unsupportedFaults: {
    delay: "the delay program (faultline-delay) is built into the store-mesh node image, not into etcd's, so no packet could be held",
    disk: "the disk layer (faultline-diskfs) is built into the store-mesh node image, not into etcd's, so no disk fault could take effect",
    clock:
      'etcd is a Go program: Go reads the wall clock through the vDSO, which libfaketime cannot intercept ' +
      '(measured: under a +3600 s offset, `date` in the container moved an hour and etcd\'s own log timestamps did not), so no skew could take effect',
  },
  options: [
    {
      flag: 'etcd-reads',
      default: 'linearizable',
      values: ['linearizable', 'serializable'],
      description: "etcd's read mode: linearizable (through the leader, etcd's default) or serializable (member-local, may be stale)",
    },
  ],
};
