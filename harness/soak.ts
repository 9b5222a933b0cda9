// `npm run soak -- --hours H`: repeats randomized runs (seeded; every fault package; every workload)
// until the time is up. Every invalid or unknown run's folder is kept; valid ones are removed to
// save disk unless --keep-all. While each run is going, every node's service process is sampled
// (resident memory and open file descriptors, read from /proc inside the container) so that a leak
// shows up as a trend across the samples. Prints a summary table and exits 1 if any run was invalid.
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRng } from './rng.ts';
import { NEMESIS_NAMES, parseOptions, type Options } from './options.ts';
import { runTest } from './lifecycle.ts';
import type { ClusterControl } from '../nemesis/types.ts';
import { systemNamed } from './systems/index.ts';

interface Sample {
  readonly node: string;
  readonly atMs: number;
  readonly rssKiB: number;
  readonly fds: number;
}

/**
 * Reads VmRSS and the fd count of the service process. PID 1 in the container is Docker's init, and
 * Node names its main thread "MainThread", so the service is found by its command line.
 */
async function sampleNode(cluster: ClusterControl, node: string, atMs: number): Promise<Sample | undefined> {
  const script = 'p=$(pgrep -of node.mjs) || exit 1; grep VmRSS /proc/$p/status; ls /proc/$p/fd | wc -l';
  const r = await cluster.exec(node, ['sh', '-c', script], { timeoutMs: 3000 }).catch(() => undefined);
  const m = r && /VmRSS:\s+(\d+)\s*kB\s+(\d+)/s.exec(r.stdout);
  return m ? { node, atMs, rssKiB: Number(m[1]), fds: Number(m[2]) } : undefined;
}

/** Least-squares slope of y over x, for the memory trend (KiB per minute). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const num = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { hours: { type: 'string' }, seed: { type: 'string' }, 'time-limit': { type: 'string' }, 'keep-all': { type: 'boolean' } } });
  const hours = Number(values.hours ?? NaN);
  if (!(hours > 0)) throw new Error(`Expected \`--hours\` to be a number above 0 (e.g. --hours 0.5), got "${values.hours ?? ''}"`);
  const rng = createRng(Number(values.seed ?? Date.now() % 2 ** 31));
  const endAt = Date.now() + hours * 3600_000;
  const controller = new AbortController();
  process.on('SIGINT', () => controller.abort());
  const rows: Array<{ run: number; seed: number; workload: string; nemesis: string; verdict: string; maxRssMiB: number; rssSlopeKiBPerMin: number; fdsEnd: number; folder: string }> = [];

  for (let run = 1; Date.now() < endAt && !controller.signal.aborted; run++) {
    const workload = rng.pick(['lww', 'counter', 'set']);
    // netem needs a kernel qdisc that many machines lack (this one included); the other packages run anywhere.
    const packages = NEMESIS_NAMES.filter((n) => n !== 'netem');
    const nemesis = rng.shuffle(packages).slice(0, 1 + rng.int(packages.length)).join(',');
    const seed = rng.int(2 ** 31);
    const options = parseOptions(['--workload', workload, '--nemesis', nemesis, '--seed', String(seed), '--time-limit', values['time-limit'] ?? '60', '--nemesis-interval', '5', '--name', 'soak']) as Options;
    const samples: Sample[] = [];
    const started = Date.now();
    const report = await runTest(systemNamed(options.system), options, controller.signal, {
      log: (line) => console.error(`  [soak ${run}] ${line}`),
      onCluster: (cluster, signal) => {
        void (async () => {
          while (!signal.aborted) {
            for (const n of cluster.nodes) {
              const s = await sampleNode(cluster, n.name, Date.now() - started);
              if (s) samples.push(s);
            }
            await sleep(5000, undefined, { signal }).catch(() => undefined);
          }
        })();
      },
    });
    const perNode = new Map<string, Sample[]>();
    for (const s of samples) perNode.set(s.node, [...(perNode.get(s.node) ?? []), s]);
    const slopes = [...perNode.values()].map((ss) => slope(ss.map((s) => [s.atMs / 60_000, s.rssKiB] as const)));
    rows.push({
      run,
      seed,
      workload,
      nemesis,
      verdict: String(report.valid),
      maxRssMiB: Math.round(Math.max(0, ...samples.map((s) => s.rssKiB)) / 1024),
      rssSlopeKiBPerMin: Math.round(Math.max(0, ...slopes)),
      fdsEnd: Math.max(0, ...[...perNode.values()].map((ss) => ss[ss.length - 1].fds)),
      folder: report.valid === true && !values['keep-all'] ? '(removed: valid)' : report.folder.dir,
    });
    if (report.valid === true && !values['keep-all']) await rm(report.folder.dir, { recursive: true, force: true });
    console.error(`soak run ${run}: ${report.valid} (${workload}, ${nemesis}, seed ${seed})`);
  }

  console.log(['run', 'seed', 'workload', 'nemesis', 'verdict', 'max RSS MiB', 'RSS slope KiB/min', 'fds at end', 'folder'].join('\t'));
  for (const r of rows) console.log([r.run, r.seed, r.workload, r.nemesis, r.verdict, r.maxRssMiB, r.rssSlopeKiBPerMin, r.fdsEnd, r.folder].join('\t'));
  const bad = rows.filter((r) => r.verdict !== 'true').length;
  console.log(`\nsoak: ${rows.length} runs, ${rows.length - bad} valid, ${bad} invalid or unknown`);
  return bad === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`soak: ${(error as Error).message}`);
    process.exit(254);
  },
);
