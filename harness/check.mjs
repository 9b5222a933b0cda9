// The entry point of `npm run check`: runs harness/check-cli.ts bundled into one ESM file (plus chunks
// for what only some inputs need), so a check of a small history starts in a fraction of the time that
// loading ~20 .ts files through type stripping takes. This file is plain JavaScript for the same reason:
// a .ts entry would load the type stripper before anything else.
//
// The bundle can never be stale. It lives in dist/check/<hash>/, where <hash> is a SHA-256 over the
// path and content of every file esbuild read to make it (recorded by an esbuild plugin as it loads them,
// so the hash covers exactly what was compiled; packages are not bundled but loaded from node_modules),
// and dist/check/manifest.json lists those files with their stat (inode, size, mtime and ctime). Every
// start stats them (~30 files, about a millisecond); if any stat
// differs, it re-hashes the contents and rebuilds when the hash differs: an edit, or a new import (its
// importer changed), or a change of this file or of esbuild's version (both are inputs too). ctime cannot be set back by a user (utimes
// itself moves it), so an edit that restores mtime and size is still seen; a stat change with the same
// content (git checkout, touch) only refreshes the manifest. The output files are checked the same way.
// Builds go to a temporary folder renamed into place, so concurrent starts never see half a bundle. `import.meta.url` in each source file is replaced by that file's own
// URL, so files read next to the source (the results schema, report.css) are found as unbundled.
/* global process, console */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// node:crypto costs ~15 ms to load, so it is loaded only when something has to be hashed.
let createHash;
async function sha256(parts) {
  createHash ??= (await import('node:crypto')).createHash;
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** The hash of the sources a bundle was made from: path and content of each, in path order. */
async function sourceHash(files, base) {
  const parts = [];
  for (const rel of [...files].sort()) {
    const abs = path.resolve(base, rel);
    if (!existsSync(abs)) return undefined;
    parts.push(rel, '\0', readFileSync(abs), '\0');
  }
  return sha256(parts);
}

/** What stat says of a file: if all of it is unchanged, so is the content. */
function stamp(file) {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return undefined;
  }
}

function readManifest(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * 'fresh' when the manifest's bundle exists and no input or output changed by stat; 'same' when stats
 * changed but every content hash is as recorded (the caller refreshes the stats); else 'stale'.
 */
async function freshness(manifest, outDir, base) {
  if (!manifest || !Array.isArray(manifest.inputs) || typeof manifest.hash !== 'string' || !manifest.outputs) return 'stale';
  const dir = path.join(outDir, manifest.hash);
  // The fast path: absolute paths and stats as recorded, no path arithmetic.
  if (Array.isArray(manifest.stamps) && manifest.stamps.length === manifest.inputs.length + Object.keys(manifest.outputs).length && manifest.stamps.every(([f, st]) => stamp(f) === st)) return 'fresh';
  for (const [rel, hash] of Object.entries(manifest.outputs)) {
    const abs = path.join(dir, rel);
    if (!existsSync(abs) || (await sha256([readFileSync(abs)])) !== hash) return 'stale';
  }
  return (await sourceHash(manifest.inputs, base)) === manifest.hash ? 'same' : 'stale';
}

function stampsOf(manifest, outDir, base) {
  const dir = path.join(outDir, manifest.hash);
  const files = [...manifest.inputs.map((rel) => path.resolve(base, rel)), ...Object.keys(manifest.outputs).map((rel) => path.join(dir, rel))];
  return files.map((f) => [f, stamp(f)]);
}

function writeManifest(file, manifest) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(manifest, null, 1));
  renameSync(tmp, file);
}

const loaders = { '.ts': 'ts', '.mts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

/**
 * Makes sure an up-to-date bundle of `entry` exists in `outDir` and returns the path of its entry file
 * and whether it was (re)built now.
 * @param {{ entry?: string, outDir?: string, base?: string }} [options]
 */
export async function ensureBundle(options = {}) {
  const base = options.base ?? root;
  const entry = path.resolve(base, options.entry ?? 'harness/check-cli.ts');
  const outDir = path.resolve(base, options.outDir ?? 'dist/check');
  const manifestFile = path.join(outDir, 'manifest.json');
  let manifest = readManifest(manifestFile);
  const state = await freshness(manifest, outDir, base);
  if (state === 'same') writeManifest(manifestFile, { ...manifest, stamps: stampsOf(manifest, outDir, base) });
  if (state !== 'stale') return { file: path.join(outDir, manifest.hash, manifest.entry), built: false };

  const { build } = await import('esbuild');
  const contents = new Map();
  const tmp = path.join(outDir, `.tmp-${process.pid}-${Date.now()}`);
  const result = await build({
    entryPoints: [entry],
    // Paths in the metafile are relative to this folder: it must be `base`, whatever the cwd.
    absWorkingDir: base,
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    logLevel: 'silent',
    metafile: true,
    // Packages stay in node_modules, loaded by Node as installed (so never stale) and only when used:
    // ajv for a run folder's results, edn-data for EDN. The bundle holds only this repository's sources.
    packages: 'external',
    plugins: [{
      name: 'hash-sources',
      setup(b) {
        b.onLoad({ filter: /\.(m?ts|[mc]?js|json)$/ }, (args) => {
          const bytes = readFileSync(args.path);
          contents.set(path.relative(base, args.path), bytes);
          const url = JSON.stringify(pathToFileURL(args.path).href);
          const text = bytes.toString('utf8').replaceAll('import.meta.url', url);
          return { contents: text, loader: loaders[path.extname(args.path)] ?? 'js' };
        });
      },
    }],
  });
  // The build itself is an input too: this file (its options) and the esbuild that ran it.
  for (const extra of [fileURLToPath(import.meta.url), path.join(root, 'node_modules', 'esbuild', 'package.json')]) {
    if (existsSync(extra)) contents.set(path.relative(base, extra), readFileSync(extra));
  }
  const hash = await sha256([...contents.keys()].sort().flatMap((rel) => [rel, '\0', contents.get(rel), '\0']));
  const outputs = {};
  for (const out of Object.keys(result.metafile.outputs)) {
    const rel = path.relative(tmp, path.resolve(base, out));
    outputs[rel] = await sha256([readFileSync(path.join(tmp, rel))]);
  }
  // With splitting, every dynamic import() target is an entry point of its own: pick the CLI's output.
  const entryRel = path.relative(base, entry).split(path.sep).join('/');
  const entryOut = path.relative(tmp, path.resolve(base, Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === entryRel)[0]));
  const dir = path.join(outDir, hash);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  manifest = { hash, entry: entryOut, inputs: [...contents.keys()].sort(), outputs, builtAt: new Date().toISOString() };
  manifest.stamps = stampsOf(manifest, outDir, base);
  writeManifest(manifestFile, manifest);
  // Older bundles are removed; a process still running one has it loaded already.
  for (const name of readdirSync(outDir)) {
    if (name !== hash && /^[0-9a-f]{64}$/.test(name)) rmSync(path.join(outDir, name), { recursive: true, force: true });
  }
  return { file: path.join(dir, entryOut), built: true };
}

if (import.meta.main) {
  const outDir = path.join(root, 'dist', 'check');
  mkdirSync(outDir, { recursive: true });
  // V8's code cache for the bundle: a repeated start skips most parsing and compiling.
  module.enableCompileCache?.(path.join(outDir, '.compile-cache'));
  let bundle;
  try {
    bundle = await ensureBundle();
  } catch (error) {
    console.error(`check: could not bundle harness/check-cli.ts (${error instanceof Error ? error.message : String(error)}); run \`node harness/check-cli.ts\` directly to see the error in the source.`);
    process.exit(2);
  }
  const { main } = await import(pathToFileURL(bundle.file).href);
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error) => {
      console.error(`check: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exitCode = 2;
    },
  );
}
