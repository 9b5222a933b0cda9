// Two projects: `unit` is quick and needs nothing but Node; `docker` starts real containers and
// real node processes, and is kept apart so the quick suite stays quick (`npm run test:unit`).
// `npm test` runs both, and that is what CI runs.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{node,harness,nemesis,checkers,proto}/**/*.test.ts'],
          exclude: ['**/*.docker.test.ts', '**/*.cluster.test.ts', 'node_modules/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'docker',
          // *.cluster.test.ts: real node processes on loopback; *.docker.test.ts: real containers.
          include: ['{node,harness,nemesis,checkers}/**/*.{docker,cluster}.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Docker-backed files share one engine and a 2-core machine; run them one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
