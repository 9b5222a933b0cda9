// Benchmark of the store-and-mesh service (`npm run bench:node`): prints ONE JSON object.
//  1. Single node, durability on (every ack after fdatasync, group commit): Put latency p50/p95/p99 and
//     throughput at concurrency 16, over gRPC on loopback, the server in its own process with the
//     service's V8 flags. The load comes from the raw gRPC client in bench-client.ts (`put`, three
//     rounds on fresh nodes, pooled), and once from grpc-js's own client (`putGrpcJsClient`), whose CPU
//     cost on the shared 2 cores caps what it can measure. Both report the CPU spent per Put by the
//     server and by the load generator.
//  2. Three-node loopback cluster: replication lag, from the Put's acknowledgement on n1 to the change
//     arriving on a Watch stream on n2 and n3 (0 when the change arrived before the ack did).
// Targets (2-core machine): Put p99 ≤ 5 ms, ≥ 10,000 Puts/s, lag p99 ≤ 100 ms. The machine's load
// average is reported alongside, because other work on the same cores skews every figure.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { RawGrpcClient } from './bench-client.ts';
import { SERVICE_NODE_FLAGS } from './config.ts';
import { StoreApi, clusterSpecs, removeDataDirs, startNode, type NodeProcess } from './testing.ts';

const PUT_CONCURRENCY = 16;
const PUT_WARMUP_MS = 1000;
const PUT_MEASURE_MS = Number(process.env.BENCH_PUT_MS ?? 5000);
const LAG_WRITES_PER_S = 1000;
const LAG_MEASURE_MS = Number(process.env.BENCH_LAG_MS ?? 4000);
/** Connections of the raw client for the Put load; the 16 concurrent calls are spread over them. */
const RAW_CONNECTIONS = 2;
/** Channels of the grpc-js client; grpc-js multiplexes calls over each. */
const GRPC_JS_CHANNELS = 4;
const PUT_ROUNDS = Number(process.env.BENCH_PUT_ROUNDS ?? 3);
/** Room for this many Puts per second in the preallocated latency buffer. */
const MAX_PUTS_PER_S = 200_000;

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const round = (x: number) => Math.round(x * 1000) / 1000;

interface PutClient {
  put(entity: string, component: string, value: string, requestId: string): Promise<unknown>;
  close(): void;
}

/** CPU time (user + system, ms) a process has used so far, from /proc; undefined where there is none. */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS_PER_S = 100;

interface PutRound {
  readonly latencies: Float64Array;
  readonly errors: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly serverCpuMs: number | undefined;
  readonly clientCpuMs: number;
}

/** One round: a fresh node, PUT_WARMUP_MS of warm-up, then PUT_MEASURE_MS measured. */
async function putRound(client: 'raw' | 'grpc-js'): Promise<PutRound> {
  const [spec] = await clusterSpecs({ size: 1 });
  let proc: NodeProcess | undefined;
  const connections = client === 'raw' ? RAW_CONNECTIONS : GRPC_JS_CHANNELS;
  const apis: PutClient[] = [];
  let statsApi: StoreApi | undefined;
  try {
    proc = await startNode(spec);
    for (let i = 0; i < connections; i++) apis.push(client === 'raw' ? new RawGrpcClient(spec.port) : new StoreApi(spec.port));
    statsApi = new StoreApi(spec.port);
    const before = await statsApi.stats();
    // Preallocated, so recording a latency allocates nothing: the load generator's own GC pauses would
    // otherwise show up in the tail it measures.
    const latencies = new Float64Array(Math.ceil((PUT_MEASURE_MS / 1000) * MAX_PUTS_PER_S));
    let count = 0;
    let errors = 0;
    let seq = 0;
    const warmEnd = performance.now() + PUT_WARMUP_MS;
    const end = warmEnd + PUT_MEASURE_MS;
    let cpuStart: { server: number | undefined; client: number } | undefined;
    const worker = async (w: number) => {
      const api = apis[w % connections];
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        if (!cpuStart && t0 >= warmEnd) cpuStart = { server: processCpuMs(proc!.child.pid!), client: cpuMs() };
        const n = seq++;
        try {
          await api.put(`bench-${n % 10_000}`, `c${w}`, `value-${n}`, `req-${n}`);
          const t1 = performance.now();
          if (t0 >= warmEnd && t1 <= end && count < latencies.length) latencies[count++] = t1 - t0;
        } catch {
          if (t0 >= warmEnd) errors += 1;
          // A dead connection fails calls at once; yield so the loop cannot starve the event loop.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    };
    await Promise.all(Array.from({ length: PUT_CONCURRENCY }, (_, w) => worker(w)));
    const serverCpuEnd = processCpuMs(proc.child.pid!);
    const clientCpuEnd = cpuMs();
    const after = await statsApi.stats();
    return {
      latencies: latencies.subarray(0, count),
      errors,
      writes: after.writes - before.writes,
      fsyncs: after.fsyncs - before.fsyncs,
      serverCpuMs: serverCpuEnd !== undefined && cpuStart?.server !== undefined ? serverCpuEnd - cpuStart.server : undefined,
      clientCpuMs: clientCpuEnd - (cpuStart?.client ?? clientCpuEnd),
    };
  } finally {
    for (const a of apis) a.close();
    statsApi?.close();
    await proc?.kill('SIGKILL');
    removeDataDirs([spec]);
  }
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function summarize(latencies: Float64Array, seconds: number) {
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: sorted.length,
    opsPerS: Math.round(sorted.length / seconds),
    p50Ms: round(quantile(sorted, 0.5)),
    p95Ms: round(quantile(sorted, 0.95)),
    p99Ms: round(quantile(sorted, 0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? NaN),
  };
}

/** `rounds` rounds, each on a fresh node; the figures pool every round's measured calls. */
async function benchPut(client: 'raw' | 'grpc-js', rounds: number) {
  const results: PutRound[] = [];
  for (let r = 0; r < rounds; r++) results.push(await putRound(client));
  const seconds = (PUT_MEASURE_MS / 1000) * rounds;
  const all = new Float64Array(results.reduce((n, r) => n + r.latencies.length, 0));
  results.reduce((off, r) => (all.set(r.latencies, off), off + r.latencies.length), 0);
  const pooled = summarize(all, seconds);
  const serverCpu = results.every((r) => r.serverCpuMs !== undefined) ? results.reduce((a, r) => a + r.serverCpuMs!, 0) : undefined;
  const clientCpu = results.reduce((a, r) => a + r.clientCpuMs, 0);
  const sum = (f: (r: PutRound) => number) => results.reduce((a, r) => a + f(r), 0);
  return {
    client,
    connections: client === 'raw' ? RAW_CONNECTIONS : GRPC_JS_CHANNELS,
    concurrency: PUT_CONCURRENCY,
    rounds,
    durationMs: PUT_MEASURE_MS * rounds,
    ...pooled,
    errors: sum((r) => r.errors),
    writesPerFsync: round(sum((r) => r.writes) / Math.max(1, sum((r) => r.fsyncs))),
    // CPU per measured Put: where the 2 cores go (server process, all threads; this load generator).
    serverCpuUsPerPut: serverCpu === undefined ? null : round((serverCpu * 1000) / Math.max(1, pooled.ops)),
    clientCpuUsPerPut: round((clientCpu * 1000) / Math.max(1, pooled.ops)),
    perRound: results.map((r) => {
      const s = summarize(r.latencies, PUT_MEASURE_MS / 1000);
      return { opsPerS: s.opsPerS, p50Ms: s.p50Ms, p99Ms: s.p99Ms, errors: r.errors };
    }),
  };
}

async function benchLag() {
  const specs = await clusterSpecs({ size: 3 });
  const procs: NodeProcess[] = [];
  const apis: StoreApi[] = [];
  const cancels: (() => void)[] = [];
  try {
    procs.push(...(await Promise.all(specs.map((s) => startNode(s)))));
    apis.push(...specs.map((s) => new StoreApi(s.port)));
    const ackAt = new Map<string, number>();
    const seenAt = new Map<string, number[]>();
    for (const api of apis.slice(1)) {
      cancels.push(
        api.watch('lag-', (e) => {
          const list = seenAt.get(e.entity) ?? [];
          list.push(performance.now());
          seenAt.set(e.entity, list);
        }),
      );
    }
    // Wait until both watchers and all mesh links are live: a probe must reach both watchers.
    for (let probe = 0; ; probe++) {
      const id = `lag-probe-${probe}`;
      await apis[0].put(id, 'x', 'probe');
      await new Promise((r) => setTimeout(r, 200));
      if ((seenAt.get(id)?.length ?? 0) >= 2) break;
      if (probe > 100) throw new Error('the 3-node cluster did not start replicating within 20 s');
    }
    const intervalMs = 1000 / LAG_WRITES_PER_S;
    const began = performance.now();
    const pending: Promise<void>[] = [];
    let n = 0;
    while (performance.now() - began < LAG_MEASURE_MS) {
      // Open-loop at a fixed rate: issue every write whose start time has come.
      while (n * intervalMs <= performance.now() - began) {
        const id = `lag-${n++}`;
        pending.push(apis[0].put(id, 'pos', 'v', '').then(() => void ackAt.set(id, performance.now())));
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
    await new Promise((r) => setTimeout(r, 1000));
    const lags: number[] = [];
    let missing = 0;
    for (const [id, ack] of ackAt) {
      const seen = seenAt.get(id) ?? [];
      missing += 2 - seen.length;
      for (const t of seen) lags.push(Math.max(0, t - ack));
    }
    lags.sort((a, b) => a - b);
    return {
      nodes: 3,
      writesPerS: LAG_WRITES_PER_S,
      writes: ackAt.size,
      observations: lags.length,
      notSeenWithin1s: missing,
      p50Ms: round(quantile(lags, 0.5)),
      p99Ms: round(quantile(lags, 0.99)),
      maxMs: round(lags[lags.length - 1] ?? NaN),
    };
  } finally {
    for (const c of cancels) c();
    for (const a of apis) a.close();
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    removeDataDirs(specs);
  }
}

const loadBefore = loadavg()[0];
const put = await benchPut('raw', PUT_ROUNDS);
const putGrpcJsClient = await benchPut('grpc-js', 1);
const replicationLag = await benchLag();
console.log(
  JSON.stringify({
    bench: 'node',
    put,
    putGrpcJsClient,
    replicationLag,
    targets: { putP99Ms: 5, putOpsPerS: 10_000, lagP99Ms: 100 },
    met: { putP99: put.errors === 0 && put.p99Ms <= 5, putThroughput: put.errors === 0 && put.opsPerS >= 10_000, lagP99: replicationLag.p99Ms <= 100 },
    nodeFlags: { server: SERVICE_NODE_FLAGS, loadGenerator: process.execArgv },
    machine: { cpus: (await import('node:os')).cpus().length, loadavg1mBefore: round(loadBefore), loadavg1mAfter: round(loadavg()[0]) },
  }),
);
