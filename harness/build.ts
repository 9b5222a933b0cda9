// Bundles the node service (node/main.ts and everything it imports, including @grpc/grpc-js) into one
// ESM file, dist/node.mjs, which is all the node image needs besides the Node binary. Bundling keeps the
// Docker build context tiny and the image free of node_modules, so an image rebuild takes seconds.
// `npm run build` runs this file; harness/image.ts calls buildNodeBundle() before every image build.
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The repository root (this file lives in <root>/harness). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface BuildOptions {
  /** The service entry point. @default '<repo>/node/main.ts' */
  readonly entry?: string;
  /** Where the bundle goes. @default '<repo>/dist/node.mjs' */
  readonly outFile?: string;
}

// Some CommonJS dependencies of grpc-js call require() for Node built-ins; an ESM bundle has no
// require, so the banner recreates one from import.meta.url.
const requireBanner = "import{createRequire}from'module';const require=createRequire(import.meta.url);";

/** Bundles the node service and returns the absolute path of the bundle. */
export async function buildNodeBundle(options: BuildOptions = {}): Promise<string> {
  const entry = path.resolve(options.entry ?? path.join(repoRoot, 'node', 'main.ts'));
  const outFile = path.resolve(options.outFile ?? path.join(repoRoot, 'dist', 'node.mjs'));
  if (!existsSync(entry)) {
    throw new Error(`Cannot bundle the node service: entry point ${entry} does not exist. ` +
      'Pass `entry` to buildNodeBundle() or create node/main.ts.');
  }
  await mkdir(path.dirname(outFile), { recursive: true });
  // Several harness runs may build at once: each writes its own file and renames it into place, so
  // nobody ever reads (or puts into an image) a half-written bundle.
  const tmpFile = `${outFile}.${process.pid}.tmp`;
  const result = await build({
    entryPoints: [entry],
    outfile: tmpFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    banner: { js: requireBanner },
    logLevel: 'silent',
  });
  if (result.errors.length > 0) {
    // esbuild throws on errors already; this only guards against a future change of that behaviour.
    throw new Error(`esbuild failed to bundle ${entry}: ${result.errors.map((e) => e.text).join('; ')}`);
  }
  await rename(tmpFile, outFile);
  return outFile;
}

// `node harness/build.ts [entry]`: bundle and print where the bundle went.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const out = await buildNodeBundle(process.argv[2] ? { entry: process.argv[2] } : {});
    console.log(`bundled ${path.relative(process.cwd(), out) || out}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
