// Benchmark of the Docker side: how long a forced rebuild of the node image takes (bundle + docker build
// on an existing base, no layer cache), and how long a cluster takes from nothing to every node
// answering Health with the image already built, and to tear down again. harness/bench.ts calls
// measureClusterStart(); `node harness/bench-cluster.ts [nodes] [runs]` prints the same as JSON.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from './cluster.ts';
import { connectDocker, ensureImage } from './image.ts';
import { storeMesh } from './systems/store-mesh/index.ts';

export interface ClusterStartMeasurement {
  readonly nodes: number;
  /** ensureImage({ force: true }): bundle and build the node image without layer cache (base present). */
  readonly imageBuildMs: number;
  /** ensureImage() when the image exists: what every run pays. */
  readonly imageReuseMs: number;
  /** Median over the runs of Cluster.start(): network, containers, every node healthy. */
  readonly healthyMs: number;
  readonly healthyRunsMs: readonly number[];
  /** Median of Cluster.teardown(). */
  readonly teardownMs: number;
}

export async function measureClusterStart(nodes = 5, options: { readonly runs?: number } = {}): Promise<ClusterStartMeasurement> {
  const runs = options.runs ?? 3;
  const docker = await connectDocker();
  let started = performance.now();
  await ensureImage({ docker, force: true });
  const imageBuildMs = performance.now() - started;
  started = performance.now();
  const image = await ensureImage({ docker });
  const imageReuseMs = performance.now() - started;

  const healthyRunsMs: number[] = [];
  const teardownRunsMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    started = performance.now();
    const cluster = await Cluster.start({ system: storeMesh, runId: `bench-${process.pid}-${run}`, nodes, image, docker });
    healthyRunsMs.push(performance.now() - started);
    started = performance.now();
    await cluster.teardown();
    teardownRunsMs.push(performance.now() - started);
  }
  return {
    nodes,
    imageBuildMs: Math.round(imageBuildMs),
    imageReuseMs: Math.round(imageReuseMs),
    healthyMs: Math.round(median(healthyRunsMs)),
    healthyRunsMs: healthyRunsMs.map(Math.round),
    teardownMs: Math.round(median(teardownRunsMs)),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [nodes, runs] = process.argv.slice(2).map(Number);
  if ((nodes !== undefined && !(Number.isInteger(nodes) && nodes >= 1 && nodes <= 26)) || (runs !== undefined && !(Number.isInteger(runs) && runs >= 1))) {
    console.error('usage: node harness/bench-cluster.ts [nodes 1-26] [runs >= 1]');
    process.exit(254);
  }
  console.log(JSON.stringify(await measureClusterStart(nodes ?? 5, { runs: runs ?? 3 })));
}
