// The bundled `npm run check` (harness/check.mjs): it must never run a bundle older than its sources.
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ensureBundle } from '../check.mjs';

const run = async (file: string): Promise<unknown> => ((await import(pathToFileURL(file).href)) as { main: () => Promise<unknown> }).main();

describe('the check bundle', () => {
  it('rebuilds on every change of a source, even one that keeps size and mtime, and only then', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'faultline-bundle-'));
    mkdirSync(path.join(base, 'src'));
    const a = path.join(base, 'src', 'a.ts');
    const b = path.join(base, 'src', 'b.ts');
    writeFileSync(a, "import { v } from './b.ts';\nexport async function main(): Promise<number> { return v; }\n");
    writeFileSync(b, 'export const v: number = 1;\n');
    const opts = { base, entry: 'src/a.ts', outDir: 'out' };

    const first = await ensureBundle(opts);
    expect(first.built).toBe(true);
    expect(await run(first.file)).toBe(1);
    expect(await ensureBundle(opts)).toEqual({ file: first.file, built: false });

    // Same length, and the old mtime put back: only the content (and ctime) differ.
    const { atime, mtime } = statSync(b);
    writeFileSync(b, 'export const v: number = 2;\n');
    utimesSync(b, atime, mtime);
    const second = await ensureBundle(opts);
    expect(second.built).toBe(true);
    expect(await run(second.file)).toBe(2);

    // Touched, not changed: no rebuild.
    utimesSync(a, new Date(), new Date());
    expect(await ensureBundle(opts)).toEqual({ file: second.file, built: false });

    // A new import is seen through its importer.
    writeFileSync(path.join(base, 'src', 'c.ts'), 'export const w: number = 40;\n');
    writeFileSync(a, "import { v } from './b.ts';\nimport { w } from './c.ts';\nexport async function main(): Promise<number> { return v + w; }\n");
    const third = await ensureBundle(opts);
    expect(third.built).toBe(true);
    expect(await run(third.file)).toBe(42);
    writeFileSync(path.join(base, 'src', 'c.ts'), 'export const w: number = 50;\n');
    const fourth = await ensureBundle(opts);
    expect(fourth.built).toBe(true);
    expect(await run(fourth.file)).toBe(52);

    // A bundle file edited by hand is not trusted either.
    appendFileSync(fourth.file, '\n// edited\n');
    expect((await ensureBundle(opts)).built).toBe(true);
  });

  it('bundles the real check CLI, listing every checker source it compiled, and the bundle checks a history', async () => {
    const outDir = mkdtempSync(path.join(tmpdir(), 'faultline-check-bundle-'));
    const { file } = await ensureBundle({ outDir });
    const manifest = JSON.parse(readFileSync(path.join(outDir, 'manifest.json'), 'utf8')) as { inputs: string[] };
    for (const source of ['harness/check-cli.ts', 'checkers/linearizable.ts', 'checkers/models/kv.ts', 'checkers/edn.ts', 'checkers/jepsen-log.ts']) {
      expect(manifest.inputs).toContain(source);
    }
    const history = path.join(outDir, 'stale-read.edn');
    writeFileSync(history, '{:type :invoke, :f :write, :value 1, :process 0}\n{:type :ok, :f :write, :value 1, :process 0}\n{:type :invoke, :f :read, :value nil, :process 1}\n{:type :ok, :f :read, :value 2, :process 1}\n');
    const { main } = (await import(pathToFileURL(file).href)) as { main: (argv: string[]) => Promise<number> };
    const log = console.log;
    console.log = () => {};
    try {
      expect(await main([history, '--json'])).toBe(1);
    } finally {
      console.log = log;
    }
  });

  it('builds from any working directory (esbuild reports outputs relative to its own)', () => {
    // The bundle once resolved esbuild's output paths against its base instead of esbuild's working
    // directory, so a build from a working directory at another depth (CI's clone in /tmp/ci/main,
    // or a user's shell in /) looked for its outputs in the wrong place.
    const base = mkdtempSync(path.join(tmpdir(), 'faultline-cwd-'));
    mkdirSync(path.join(base, 'src'));
    writeFileSync(path.join(base, 'src', 'a.ts'), 'export async function main(): Promise<number> { return 7; }\n');
    const entry = pathToFileURL(fileURLToPath(new URL('../check.mjs', import.meta.url))).href;
    const script = `import { ensureBundle } from ${JSON.stringify(entry)};
      import { pathToFileURL } from 'node:url';
      const r = await ensureBundle({ base: ${JSON.stringify(base)}, entry: 'src/a.ts', outDir: 'out' });
      console.log(await (await import(pathToFileURL(r.file).href)).main());`;
    for (const cwd of ['/', path.join(base, 'src')]) {
      rmSync(path.join(base, 'out'), { recursive: true, force: true });
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8' });
      expect(run.stdout.trim(), `cwd ${cwd}: ${run.stderr}`).toBe('7');
    }
  });
});
