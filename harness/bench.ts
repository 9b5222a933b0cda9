// `npm run bench:harness`: prints one JSON object with (1) the time from start to a healthy 5-node
// cluster with the image already built (and the image build itself), and (2) the sustained rate at
// which the harness records ops (ok + fail + info completions per second) across 5 nodes at
// --rate 0 (as fast as possible), with the history flushed to disk as it goes. A benchmark, never a
// test: it prints figures and judges nothing but reports the targets beside them.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureClusterStart } from './bench-cluster.ts';
import { parseOptions, type Options } from './options.ts';
import { runTest } from './lifecycle.ts';
import { readHistory } from './results.ts';
import { isWorkloadOp } from '../checkers/util.ts';
import { systemNamed } from './systems/index.ts';

async function recordedOpsRate(concurrency: string, timeLimitS: number): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), 'fl-bench-'));
  try {
    const options = parseOptions(['--nodes', '5', '--rate', '0', '--concurrency', concurrency, '--time-limit', String(timeLimitS), '--nemesis', 'none', '--results-dir', dir, '--name', 'bench', '--seed', '1']) as Options;
    const report = await runTest(systemNamed(options.system), options, new AbortController().signal);
    // Only the workload phase counts: completions of client ops before the time limit, which counts from
    // the workload's first op.
    const history = await readHistory(report.folder.history);
    const first = history.find((op) => op.type === 'invoke' && isWorkloadOp(op))?.time ?? 0;
    const limitNs = first + timeLimitS * 1e9;
    const completions = history.filter((op) => isWorkloadOp(op) && op.type !== 'invoke' && op.time <= limitNs);
    const spanS = (Math.max(...completions.map((op) => op.time)) - first) / 1e9;
    return {
      concurrency: options.concurrency,
      recordedOps: completions.length,
      workloadSeconds: Number(spanS.toFixed(2)),
      recordedOpsPerS: Math.round(completions.length / spanS),
      ok: completions.filter((o) => o.type === 'ok').length,
      fail: completions.filter((o) => o.type === 'fail').length,
      info: completions.filter((o) => o.type === 'info').length,
      verdict: String(report.valid),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cluster = await measureClusterStart(5, { runs: 3 });
  const rates = [await recordedOpsRate('2n', 10), await recordedOpsRate('8n', 10)];
  const best = rates.reduce((a, b) => ((b.recordedOpsPerS as number) > (a.recordedOpsPerS as number) ? b : a));
  console.log(
    JSON.stringify(
      {
        node: process.version,
        cpus: cpus().length,
        loadAverage1m: Number(loadavg()[0].toFixed(2)),
        cluster,
        recordedOps: rates,
        targets: {
          healthyCluster5Ms: 5000,
          healthyCluster5Met: cluster.healthyMs <= 5000,
          recordedOpsPerS: 2000,
          recordedOpsPerSMet: (best.recordedOpsPerS as number) >= 2000,
        },
      },
      null,
      2,
    ),
  );
}

main().catch((error) => {
  console.error(`bench:harness: ${(error as Error).stack ?? error}`);
  process.exit(2);
});
