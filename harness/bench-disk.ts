// `npm run bench:disk-layer`: what the disk layer (harness/docker/diskfs.c) adds to a Put with no fault
// active. Runs `npm run bench:node`'s Put benchmark (node/bench.ts) inside one node container, with the
// node's data dir on the container's own disk (A) and on a faultline-diskfs mount (B), in interleaved
// rounds (A B A B ...), so both sides see the same machine load; prints one JSON object with every
// round and the medians. The container gets /dev/fuse and SYS_ADMIN (the layer's needs) and the
// repository read-only at its own path. Options: --rounds N (default 4).
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repoRoot } from './build.ts';
import { ensureImage } from './image.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
  console.error(`bench:disk-layer: Expected \`--rounds\` to be an integer from 1 to 50, got "${values.rounds}"`);
  process.exit(254);
}

const image = await ensureImage();
const modules = realpathSync(path.join(repoRoot, 'node_modules'));
const name = `faultline-bench-disk-${process.pid}`;
const mounts = [`${repoRoot}:${repoRoot}:ro`, ...(modules.startsWith(repoRoot) ? [] : [`${modules}:${modules}:ro`])].flatMap((m) => ['-v', m]);
await execa('docker', ['run', '-d', '--rm', '--name', name, '--device', '/dev/fuse', '--cap-add', 'SYS_ADMIN', '--label', 'faultline=bench-disk', ...mounts, '--entrypoint', 'sleep', image, 'infinity']);

interface Side {
  readonly opsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Replication lag on 3 nodes (ack on n1 to a Watch on n2, n3), each node's data dir on the same side. */
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
}

async function sh(script: string): Promise<string> {
  const r = await execa('docker', ['exec', name, 'sh', '-c', script], { reject: false });
  if (r.exitCode !== 0) throw new Error(`docker exec ${name} sh -c ${JSON.stringify(script)} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

try {
  // The layer, mounted once as the entrypoint does it; its backing dir on the container's disk, as A's data.
  await sh(
    'mkdir -p /mnt/layer /var/lib/layer && (faultline-diskfs mount /var/lib/layer /mnt/layer /run/layer.sock >/dev/null 2>&1 &) && ' +
      'for i in $(seq 200); do [ -S /run/layer.sock ] && grep -q " /mnt/layer fuse.faultline " /proc/mounts && exit 0; sleep 0.05; done; echo "the layer did not mount"; exit 1',
  );
  const results: { plain: Side[]; layer: Side[] } = { plain: [], layer: [] };
  for (let r = 0; r < rounds; r++) {
    for (const side of ['plain', 'layer'] as const) {
      const tmp = side === 'plain' ? '/tmp' : '/mnt/layer';
      // One measured Put round and 2 s of replication lag per run (the grpc-js client part is not compared).
      const out = await sh(`cd ${repoRoot} && TMPDIR=${tmp} BENCH_PUT_ROUNDS=1 BENCH_LAG_MS=2000 node node/bench.ts`);
      const parsed = JSON.parse(out.trim().split('\n').at(-1)!) as { put: Omit<Side, 'lagP50Ms' | 'lagP99Ms'>; replicationLag: { p50Ms: number; p99Ms: number } };
      const put = parsed.put;
      results[side].push({ opsPerS: put.opsPerS, p50Ms: put.p50Ms, p99Ms: put.p99Ms, errors: put.errors, lagP50Ms: parsed.replicationLag.p50Ms, lagP99Ms: parsed.replicationLag.p99Ms });
      console.error(`round ${r + 1} ${side}: ${Math.round(put.opsPerS)} Puts/s, p50 ${put.p50Ms} ms, p99 ${put.p99Ms} ms; lag p50 ${parsed.replicationLag.p50Ms} ms, p99 ${parsed.replicationLag.p99Ms} ms`);
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const summary = (side: Side[]) => ({
    opsPerS: Math.round(median(side.map((s) => s.opsPerS))),
    p50Ms: median(side.map((s) => s.p50Ms)),
    p99Ms: median(side.map((s) => s.p99Ms)),
    lagP50Ms: median(side.map((s) => s.lagP50Ms)),
    lagP99Ms: median(side.map((s) => s.lagP99Ms)),
  });
  const plain = summary(results.plain);
  const layer = summary(results.layer);
  console.log(
    JSON.stringify({
      bench: 'disk-layer',
      rounds,
      median: { plain, layer, p99AddedMs: Math.round((layer.p99Ms - plain.p99Ms) * 1000) / 1000 },
      machine: { loadavg1m: (await import('node:os')).loadavg()[0] },
      results,
    }),
  );
} finally {
  await execa('docker', ['rm', '-f', name], { reject: false });
}
