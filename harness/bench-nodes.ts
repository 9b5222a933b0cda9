// How many nodes one engine runs healthily: for each node count, a 20 s lww run without faults on the
// default engine (DOCKER_HOST), and what it came to: the verdict and which checkers failed, how long the
// cluster took to form, ok ops/s against the rate, write latency, replication lag, each node's memory
// (docker stats, 12 s in) and mesh messages per write. The README's "Several engines" figures come from
// `node harness/bench-nodes.ts 5 9 15 21`. It goes past --nodes' bound of 9 on purpose, through runTest.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDocker } from './image.ts';
import { runTest } from './lifecycle.ts';
import { parseOptions, type Options } from './options.ts';
import { systemNamed } from './systems/index.ts';

export interface NodesMeasurement {
  readonly nodes: number;
  readonly valid: unknown;
  readonly failed: readonly string[];
  readonly formedMs: number | undefined;
  readonly okPerS: number;
  readonly writeP50Ms: number | undefined;
  readonly lagP95Ms: number | undefined;
  readonly memoryMiBPerNode: number | undefined;
  readonly messagesPerWrite: number | undefined;
}

export async function measureNodes(nodes: number, options: { readonly rate?: number; readonly timeLimitS?: number } = {}): Promise<NodesMeasurement> {
  const timeLimitS = options.timeLimitS ?? 20;
  const base = parseOptions(['--time-limit', String(timeLimitS), '--rate', String(options.rate ?? 100), '--concurrency', '10', '--seed', '5', '--results-dir', path.join('results', 'bench-nodes'), '--name', `nodes-${nodes}`]) as Options;
  const docker = await connectDocker();
  let memory: number[] = [];
  let formedMs: number | undefined;
  const report = await runTest(systemNamed(base.system), { ...base, nodes }, new AbortController().signal, {
    log: (line) => {
      const m = /ready and formed in (\d+) ms/.exec(line);
      if (m) formedMs = Number(m[1]);
    },
    onCluster: (cluster) => {
      setTimeout(() => {
        void Promise.all(cluster.nodes.map((n) => docker.getContainer(cluster.containerName(n.name)).stats({ stream: false })))
          .then((stats) => (memory = stats.map((s) => (s.memory_stats.usage - ((s.memory_stats.stats as { cache?: number } | undefined)?.cache ?? 0)) / 2 ** 20)))
          .catch(() => undefined);
      }, 12_000);
    },
  });
  const r = report.results;
  const perf = r.checkers.perf as { latencyMs?: Record<string, { ok?: { p50?: number } }> } | undefined;
  const lag = r.checkers.lag as { lagMs?: { p95?: number } } | undefined;
  const stats = Object.values(r.stats ?? {}) as { messagesPerWrite?: number }[];
  return {
    nodes,
    valid: r.valid,
    failed: Object.entries(r.checkers).filter(([, c]) => c.valid !== true && c.advisory !== true).map(([name]) => name),
    formedMs,
    okPerS: Math.round(r.opCounts.ok / timeLimitS),
    writeP50Ms: perf?.latencyMs?.write?.ok?.p50,
    lagP95Ms: lag?.lagMs?.p95,
    memoryMiBPerNode: memory.length ? Math.round(Math.max(...memory)) : undefined,
    messagesPerWrite: stats.length ? Math.round((stats.reduce((a, s) => a + (s.messagesPerWrite ?? 0), 0) / stats.length) * 10) / 10 : undefined,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const counts = process.argv.slice(2).map(Number);
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 26)) {
    console.error('usage: node harness/bench-nodes.ts N [N ...]   (node counts from 1 to 26)');
    process.exit(254);
  }
  for (const n of counts) console.log(JSON.stringify(await measureNodes(n)));
}
