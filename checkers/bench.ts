// Benchmark of the checkers (`npm run bench:checkers`, run with --expose-gc): prints JSON with the time
// and peak memory of every lww checker except linearizability on generated lww histories of 10k, 100k
// and 1M ops, and of linearizability on register histories of 1k, 10k and 100k ops over 10 keys.
// Each size runs in its own child process so its peak RSS (getrusage maxRSS) is its own; the history is
// generated first and only the checking is timed. A last row (`publicBatch`) checks Porcupine's 102 etcd
// histories (checkers/test/fixtures) as whole `npm run check` processes: all in one process, beside one
// process per file, the loop a CI script would otherwise run.
//
// Generated histories are realistic in shape: 10 concurrent processes on 5 nodes interleave invokes and
// completions, 2% of ops end info and 1% fail, 5% are deletes, faults start and stop every few seconds, every
// node has a watch stream that receives every change, and a final heal is followed by one
// round of final reads in which every node holds the winning write of every key. Values are decided at
// completion, so the histories are valid and linearizable apart from info ops (which take effect half
// the time), and the checkers do all their work instead of stopping early.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { FinalState, Op, OpType } from '../harness/history.ts';
import { createRng } from '../harness/rng.ts';
import { checkersFor } from './index.ts';
import { linearizable } from './linearizable.ts';
import { compose, type Checker } from './types.ts';

const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const PROCESSES = 10;

function hlc(ms: number, logical: number, node: string): string {
  return `${String(ms).padStart(15, '0')}:${String(logical).padStart(5, '0')}:${node}`;
}

interface Pending {
  f: string;
  value: Record<string, unknown>;
}

/** An lww-workload history of about `size` ops (register: plain read/write on `keys` keys). */
export function generate(size: number, kind: 'lww' | 'register', keys: number): Op[] {
  const rng = createRng(size * 7 + keys);
  const ops: Op[] = [];
  let time = 0;
  const push = (process: number | 'nemesis', type: OpType, f: string, value: unknown, node?: string): void => {
    time += 100_000 + rng.int(400_000);
    ops.push({ index: ops.length, time, process, type, f, value, ...(node ? { node } : {}) });
  };
  // One global hybrid clock: every applied write gets a timestamp above every earlier one, so the
  // history satisfies the per-node session checks (a read returns the newest state, as if replication
  // were instant).
  let wall = 0;
  let logical = 0;
  const nextTs = (node: string): string => {
    const ms = Math.floor(time / 1e6);
    if (ms > wall) [wall, logical] = [ms, 0];
    else logical++;
    return hlc(wall, logical, node);
  };
  const lww = new Map<string, { value: string; ts: string; deleted: boolean }>();
  const max = new Map<string, number>();
  const procs: (number)[] = Array.from({ length: PROCESSES }, (_, i) => i);
  const pending: (Pending | undefined)[] = new Array(PROCESSES).fill(undefined);
  let seq = 0;
  let faultOpen = false;
  // lww: one watch stream per node, as the runner records them; every applied change reaches each,
  // in batches every 100 ms of history time.
  const watching = kind === 'lww';
  const streamProcess = (i: number) => 2_000_000 + i;
  const batches: unknown[][][] = NODES.map(() => []);
  let lastFlush = 0;
  const flushEvents = () => {
    NODES.forEach((node, i) => {
      if (batches[i].length === 0) return;
      push(streamProcess(i), 'invoke', 'watch-events', { stream: `${node}#0` }, node);
      push(streamProcess(i), 'ok', 'watch-events', { stream: `${node}#0`, events: batches[i] }, node);
      batches[i] = [];
    });
    lastFlush = time;
  };
  const publish = (entity: string, component: string, value: string, ts: string, kindName: string, deleted: boolean) => {
    if (!watching) return;
    for (const b of batches) b.push([time + 200_000, entity, component, value, ts, kindName, deleted, 0]);
  };
  if (watching) {
    NODES.forEach((node, i) => {
      push(streamProcess(i), 'invoke', 'watch-open', { stream: `${node}#0` }, node);
      push(streamProcess(i), 'ok', 'watch-open', { stream: `${node}#0` }, node);
    });
  }
  const finalReadOps = 2 * NODES.length + 2;
  while (ops.length < size - finalReadOps - (watching ? 4 * NODES.length : 0)) {
    if (watching && time - lastFlush > 100e6) {
      flushEvents();
      continue;
    }
    if (rng.int(20_000) === 0) {
      push('nemesis', 'info', faultOpen ? 'stop-partition' : 'start-partition', { nodes: ['n1', 'n2'], grudge: { n1: ['n2'] }, invokedAt: time, verified: true });
      faultOpen = !faultOpen;
      continue;
    }
    const w = rng.int(PROCESSES);
    const node = NODES[w % NODES.length];
    const p = pending[w];
    if (!p) {
      const entity = `e${rng.int(keys)}`;
      const r = rng.int(100);
      let next: Pending;
      seq++;
      if (kind === 'register') next = r < 50 ? { f: 'read', value: { key: entity } } : { f: 'write', value: { key: entity, value: seq } };
      else if (r < 40) next = { f: 'read', value: { entity, component: 'pos' } };
      else if (r < 75) next = { f: 'write', value: { entity, component: 'pos', value: `w${seq}`, requestId: `r${seq}` } };
      else if (r < 80) next = { f: 'delete', value: { entity, component: 'pos', requestId: `r${seq}` } };
      else if (r < 90) next = { f: 'read-max', value: { entity, component: 'threat' } };
      else next = { f: 'write-max', value: { entity, component: 'threat', value: seq, requestId: `r${seq}` } };
      pending[w] = next;
      push(procs[w], 'invoke', next.f, next.value, node);
      continue;
    }
    pending[w] = undefined;
    const roll = rng.int(100);
    const mutating = p.f === 'write' || p.f === 'write-max' || p.f === 'delete';
    const type: OpType = roll < 2 ? 'info' : roll < 3 && mutating ? 'fail' : 'ok';
    const applied = type === 'ok' || (type === 'info' && rng.int(2) === 0);
    const v = p.value;
    const key = kind === 'register' ? String(v.key) : `${String(v.entity)}/${String(v.component)}`;
    let done: Record<string, unknown> = v;
    if ((p.f === 'write' || p.f === 'delete') && applied) {
      const ts = kind === 'register' ? '' : nextTs(node);
      const deleted = p.f === 'delete';
      lww.set(key, { value: deleted ? '' : String(v.value), ts, deleted });
      publish(String(v.entity), String(v.component), deleted ? '' : String(v.value), ts, 'lww', deleted);
      if (type === 'ok') done = kind === 'register' ? v : { ...v, ts };
    } else if (p.f === 'read' && type === 'ok') {
      const cur = lww.get(key);
      done = kind === 'register'
        ? { ...v, value: cur ? Number(cur.value) : null }
        : cur?.deleted
          ? { ...v, value: null, ts: cur.ts, deleted: true }
          : { ...v, value: cur?.value ?? null, ts: cur?.ts ?? null };
    } else if (p.f === 'write-max' && applied) {
      const ts = nextTs(node);
      const before = max.get(key) ?? -Infinity;
      max.set(key, Math.max(before, Number(v.value)));
      if (Number(v.value) > before) publish(String(v.entity), String(v.component), String(v.value), hlc(0, 0, 'n1'), 'max', false);
      if (type === 'ok') done = { ...v, ts, result: max.get(key) };
    } else if (p.f === 'read-max' && type === 'ok') {
      done = { ...v, value: max.get(key) ?? null };
    }
    push(procs[w], type, p.f, type === 'ok' ? done : v, node);
    if (type === 'info') procs[w] += PROCESSES;
  }
  // Finish in-flight ops as info, heal, then one agreeing round of final reads.
  for (let w = 0; w < PROCESSES; w++) if (pending[w]) push(procs[w], 'info', pending[w]!.f, pending[w]!.value, NODES[w % NODES.length]);
  if (watching) flushEvents();
  push('nemesis', 'info', 'heal', { invokedAt: time });
  if (kind === 'lww') {
    const state: FinalState = {};
    const ts0 = hlc(0, 0, 'n1');
    for (const [key, c] of lww) {
      const [entity, component] = key.split('/');
      (state[entity] ??= { components: {}, counters: {} }).components[component] = c.deleted ? { value: '', ts: c.ts, kind: 'lww', deleted: true } : { value: c.value, ts: c.ts, kind: 'lww' };
    }
    for (const [key, m] of max) {
      const [entity, component] = key.split('/');
      (state[entity] ??= { components: {}, counters: {} }).components[component] = { value: String(m), ts: ts0, kind: 'max' };
    }
    NODES.forEach((node, i) => {
      push(1_000_000 + i, 'invoke', 'final-read', { round: 0 }, node);
      push(1_000_000 + i, 'ok', 'final-read', { round: 0, state }, node);
    });
    NODES.forEach((node, i) => {
      push(streamProcess(i), 'invoke', 'watch-close', { stream: `${node}#0` }, node);
      push(streamProcess(i), 'ok', 'watch-close', { stream: `${node}#0`, reason: 'end of run' }, node);
    });
    // The runner records every node's stats after the final reads; the mesh checker judges them.
    const writes = Math.ceil(size / 4 / NODES.length);
    NODES.forEach((node, i) => {
      push(1_000_000 + i, 'invoke', 'stats', null, node);
      push(1_000_000 + i, 'ok', 'stats', { node, writes, relaysSent: writes * (NODES.length - 1), meshMessages: writes * (NODES.length - 1), messagesPerWrite: NODES.length - 1, watcherDrops: 0 }, node);
    });
  }
  return ops;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Child: generate one history, check it, print one JSON line. */
function child(kind: 'lww' | 'register', size: number): void {
  const keys = kind === 'lww' ? Math.max(100, Math.round(size / 1000)) : 10;
  const history = generate(size, kind, keys);
  gc();
  const rssBefore = process.memoryUsage().rss;
  const named: Record<string, Checker> = kind === 'lww'
    ? Object.fromEntries(Object.entries(checkersFor('lww')).filter(([name]) => name !== 'linearizability'))
    : { linearizability: linearizable({ model: 'register' }) };
  // Each checker's own CPU time, measured in the composed order (shared passes, such as pairing and the
  // session analysis, are charged to the first checker that needs them).
  const perCheckerCpuMs: Record<string, number> = {};
  const timed = Object.fromEntries(
    Object.entries(named).map(([name, c]): [string, Checker] => [
      name,
      (h, ctx) => {
        const before = process.cpuUsage();
        try {
          return c(h, ctx);
        } finally {
          const d = process.cpuUsage(before);
          perCheckerCpuMs[name] = Math.round((d.user + d.system) / 1000);
        }
      },
    ]),
  );
  const checker = compose(timed);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = checker(history, { nodes: NODES, workload: kind, linearizableBudgetMs: 60_000 });
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(JSON.stringify({
    ops: history.length,
    keys,
    checkMs: Math.round(ms),
    // CPU time of this process (user + system): the "one core" figure, unaffected by other load on a
    // shared machine; it includes the garbage collector's helper threads, so it can exceed checkMs.
    checkCpuMs: Math.round((used.user + used.system) / 1000),
    valid: result.valid,
    perCheckerCpuMs,
    verdicts: Object.fromEntries(Object.entries(result.results).map(([k, r]) => [k, r.valid])),
    rssAfterGenerateMB: Math.round(rssBefore / 2 ** 20),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    heapUsedAfterCheckMB: Math.round(heapAfter / 2 ** 20),
  }));
}

/** A child process's wall time and CPU time (user + sys, from /usr/bin/time), its stdout and exit code. */
export function timedRun(command: string, args: readonly string[], cwd?: string): { wallMs: number; cpuMs: number; stdout: string; code: number } {
  if (!existsSync('/usr/bin/time')) throw new Error('Benchmarks of whole processes need /usr/bin/time (Debian: apt-get install -y time).');
  const dir = mkdtempSync(path.join(tmpdir(), 'faultline-time-'));
  const out = path.join(dir, 'time');
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', out, command, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  const wallMs = performance.now() - started;
  const [user, sys] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  rmSync(dir, { recursive: true, force: true });
  return { wallMs: Math.round(wallMs), cpuMs: Math.round((user + sys) * 1000), stdout: r.stdout, code: r.status ?? -1 };
}

/** Porcupine's etcd histories, decompressed into a fresh temporary folder (plain files, as Porcupine reads them). */
export function etcdHistories(): string {
  const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'test', 'fixtures', 'porcupine', 'etcd');
  const dir = mkdtempSync(path.join(tmpdir(), 'faultline-etcd-'));
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(fixtures).filter((f) => f.endsWith('.log.gz'))) writeFileSync(path.join(dir, f.slice(0, -3)), gunzipSync(readFileSync(path.join(fixtures, f))));
  return dir;
}

/** The public-format row: 102 histories checked in one `npm run check` process, and one process each. */
function publicBatch(): Record<string, unknown> {
  const dir = etcdHistories();
  const check = fileURLToPath(new URL('../harness/check.mjs', import.meta.url));
  const files = readdirSync(dir).sort().map((f) => path.join(dir, f));
  timedRun(process.execPath, [check, files[0]]); // builds the bundle if it is out of date, outside the timing
  const batch = timedRun(process.execPath, [check, dir]);
  let loopWallMs = 0;
  let loopCpuMs = 0;
  const verdicts = { valid: 0, invalid: 0, other: 0 };
  for (const f of files) {
    const r = timedRun(process.execPath, [check, f]);
    loopWallMs += r.wallMs;
    loopCpuMs += r.cpuMs;
    verdicts[r.code === 0 ? 'valid' : r.code === 1 ? 'invalid' : 'other']++;
  }
  rmSync(dir, { recursive: true, force: true });
  return {
    histories: files.length,
    batch: { wallMs: batch.wallMs, cpuMs: batch.cpuMs, summary: batch.stdout.trim().split('\n').at(-1) },
    perFileLoop: { wallMs: loopWallMs, cpuMs: loopCpuMs, verdicts },
    loopOverBatchCpu: Math.round((loopCpuMs / Math.max(1, batch.cpuMs)) * 10) / 10,
  };
}

function main(): void {
  const self = fileURLToPath(import.meta.url);
  const run = (kind: string, size: number): Record<string, unknown> =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', self, '--child', kind, String(size)], { encoding: 'utf8' }).trim()) as Record<string, unknown>;
  const lww = [10_000, 100_000, 1_000_000].map((n) => run('lww', n));
  const lin = [1_000, 10_000, 100_000].map((n) => run('register', n));
  // Targets are judged on CPU time (one core's worth of work), because wall time on a shared machine
  // also counts the time other processes held the core; both are printed.
  const cpu = (r: Record<string, unknown>): number => r.checkCpuMs as number;
  const ratio = (a: Record<string, unknown>, b: Record<string, unknown>): number => Math.round((cpu(b) / Math.max(1, cpu(a))) * 100) / 100;
  const batch = publicBatch();
  console.log(JSON.stringify({
    node: process.version,
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
    checkersExceptLinearizability: lww,
    publicBatch: batch,
    linearizability: lin,
    growthOfCpuTime: { lww100kOver10k: ratio(lww[0], lww[1]), lww1MOver100k: ratio(lww[1], lww[2]), lin10kOver1k: ratio(lin[0], lin[1]), lin100kOver10k: ratio(lin[1], lin[2]) },
    targets: {
      lww1MUnder3sCpu: cpu(lww[2]) <= 3000,
      lww1MUnder1GB: (lww[2].peakRssMB as number) <= 1024,
      linearGrowth: ratio(lww[1], lww[2]) <= 12,
      lin10kUnder1sCpu: cpu(lin[1]) <= 1000,
    },
  }, null, 2));
}

const args = process.argv.slice(2);
if (args[0] === '--child') child(args[1] as 'lww' | 'register', Number(args[2]));
else if (import.meta.main) main();
