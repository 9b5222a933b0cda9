// The node image: bundles the service, picks a base image and builds faultline-node:<content hash> with
// dockerode. The tag is a hash of everything that goes into the image (base image id, Dockerfile,
// bundle, entrypoint, the disk layer's and the delay program's C sources), so an unchanged tree reuses the existing image and a cluster starts in seconds.
//
// The base is the official node:24-bookworm-slim when it is present or can be pulled; otherwise the
// offline equivalent faultline-base:bookworm-node24 made by harness/docker/build-base.sh. The engine is
// the one dockerode finds by itself (DOCKER_HOST, else /var/run/docker.sock). Nothing here installs
// software: a missing engine or tool is an error that says to run `npm run setup`.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { execa } from 'execa';
import { buildNodeBundle, repoRoot, type BuildOptions } from './build.ts';

export const officialBaseImage = 'node:24-bookworm-slim';
export const offlineBaseImage = 'faultline-base:bookworm-node24';
export const nodeImageRepository = 'faultline-node';

/** Where the engine is, as the user would configure it; used in error messages. */
export function engineAddress(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/**
 * A dockerode client for the engine, checked with a ping. Throws an error that names the engine address
 * and says to run `npm run setup` when the engine cannot be reached.
 */
export async function connectDocker(options: { readonly timeoutMs?: number } = {}): Promise<Docker> {
  const docker = new Docker();
  const timeoutMs = options.timeoutMs ?? 5_000;
  try {
    await withTimeout(docker.ping(), timeoutMs, `no answer within ${timeoutMs} ms`);
  } catch (error) {
    throw new Error(
      `The Docker engine is not reachable at ${engineAddress()} (${errorText(error)}). ` +
        'Run `npm run setup` to install and start it, or set DOCKER_HOST to a running engine.',
      { cause: error },
    );
  }
  return docker;
}

export interface EnsureImageOptions {
  /**
   * Base image to build on. When absent: node:24-bookworm-slim if present locally, else the offline
   * base if present locally, else node:24-bookworm-slim if a pull succeeds, else the offline base is
   * built with harness/docker/build-base.sh.
   */
  readonly baseImage?: string;
  /** How long a pull of the official base may take before the offline base is used. @default 10000 */
  readonly pullTimeoutMs?: number;
  /** Rebuild the node image from its base, without Docker's layer cache, even when its tag exists. @default false */
  readonly force?: boolean;
  /** Called with one human-readable line per step (bundle, base, build output). */
  readonly onProgress?: (line: string) => void;
  /** Where the service comes from; by default node/main.ts bundled into dist/node.mjs. */
  readonly bundle?: BuildOptions;
  /** An existing client; by default one is made with connectDocker(). */
  readonly docker?: Docker;
}

// The files of the build context, relative to the repository root. .dockerignore lists the same set
// for builds by hand (docker compose).
const contextFiles = ['Dockerfile', 'dist/node.mjs', 'harness/docker/entrypoint.sh', 'harness/docker/diskfs.c', 'harness/docker/faultline-delay.c'] as const;

/**
 * Makes sure an up-to-date node image exists and returns its tag, faultline-node:<12 hex digits>. The
 * progress lines say whether it was reused or built, and on which base.
 */
export async function ensureImage(options: EnsureImageOptions = {}): Promise<string> {
  const progress = options.onProgress ?? (() => {});
  progress('bundling the node service into dist/node.mjs');
  await buildNodeBundle({ ...options.bundle, outFile: path.join(repoRoot, 'dist', 'node.mjs') });
  return ensureSystemImage({ ...options, repository: nodeImageRepository, dockerfile: 'Dockerfile', files: contextFiles });
}

export interface SystemImageOptions extends EnsureImageOptions {
  /** The image's repository name; the tag is a hash of everything that goes into it. */
  readonly repository: string;
  /** The Dockerfile, relative to the repository root. */
  readonly dockerfile: string;
  /** Every file of the build context (the Dockerfile among them), relative to the repository root. */
  readonly files: readonly string[];
}

/**
 * Makes sure an image of a system under test exists on the base every faultline image uses (the
 * official Node image or the offline base) and returns its tag, <repository>:<12 hex digits of the hash
 * of the base image id and every context file>, so a change to any of them builds a new one.
 */
export async function ensureSystemImage(options: SystemImageOptions): Promise<string> {
  const progress = options.onProgress ?? (() => {});
  const docker = options.docker ?? (await connectDocker());
  const baseImage = await chooseBase(docker, options, progress);
  const base = await docker.getImage(baseImage).inspect();
  const hash = createHash('sha256');
  hash.update(`base ${base.Id}\n`);
  for (const file of options.files) {
    hash.update(`${file}\n`);
    hash.update(await readFile(path.join(repoRoot, file)));
  }
  const tag = `${options.repository}:${hash.digest('hex').slice(0, 12)}`;

  if (!options.force && (await imageExists(docker, tag))) {
    progress(`reusing ${tag} (base ${baseImage})`);
    return tag;
  }
  progress(`building ${tag} on ${baseImage}`);
  await buildImage(docker, tag, baseImage, options.force ?? false, progress, options.files, options.dockerfile);
  progress(`built ${tag}`);
  return tag;
}

async function chooseBase(
  docker: Docker,
  options: EnsureImageOptions,
  progress: (line: string) => void,
): Promise<string> {
  if (options.baseImage !== undefined) {
    if (await imageExists(docker, options.baseImage)) return options.baseImage;
    progress(`pulling base image ${options.baseImage}`);
    await pullImage(docker, options.baseImage, options.pullTimeoutMs ?? 60_000);
    return options.baseImage;
  }
  if (await imageExists(docker, officialBaseImage)) return officialBaseImage;
  // A local offline base wins over a pull attempt, so that a machine without a registry does not
  // pay for a failing pull on every run.
  if (await imageExists(docker, offlineBaseImage)) return offlineBaseImage;
  const pullTimeoutMs = options.pullTimeoutMs ?? 10_000;
  progress(`pulling ${officialBaseImage} (up to ${pullTimeoutMs} ms)`);
  try {
    await pullImage(docker, officialBaseImage, pullTimeoutMs);
    return officialBaseImage;
  } catch (error) {
    progress(`cannot pull ${officialBaseImage} (${errorText(error)}); building ${offlineBaseImage} offline`);
  }
  await buildOfflineBase(progress);
  return offlineBaseImage;
}

/** Runs harness/docker/build-base.sh, forwarding its output line by line. */
export async function buildOfflineBase(progress: (line: string) => void = () => {}): Promise<void> {
  const script = path.join(repoRoot, 'harness', 'docker', 'build-base.sh');
  // FAULTLINE_NO_INSTALL keeps the script from apt-get installing debootstrap in the middle of a
  // test run; `npm run setup` is the place where software gets installed.
  const child = execa('bash', [script], { env: { FAULTLINE_NO_INSTALL: '1' }, all: true, reject: false });
  const tail: string[] = [];
  for await (const line of child.iterable({ from: 'all' })) {
    progress(line);
    tail.push(line);
    if (tail.length > 15) tail.shift();
  }
  const result = await child;
  if (result.exitCode !== 0) {
    throw new Error(
      `Building the offline base image ${offlineBaseImage} failed: bash ${script} exited ${result.exitCode}.\n` +
        `${tail.join('\n')}\nRun \`npm run setup\` to prepare the machine.`,
    );
  }
}

async function buildImage(
  docker: Docker,
  tag: string,
  baseImage: string,
  noCache: boolean,
  progress: (line: string) => void,
  files: readonly string[],
  dockerfile: string,
): Promise<void> {
  const stream = await docker.buildImage(
    { context: repoRoot, src: [...files] },
    {
      t: tag,
      dockerfile,
      buildargs: { BASE_IMAGE: baseImage },
      labels: { faultline: 'image' },
      nocache: noCache,
      rm: true,
      forcerm: true,
    },
  );
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        const failed = error?.message ?? events.find((e) => e.error)?.error;
        if (failed) {
          reject(new Error(`docker build of ${tag} (base ${baseImage}) failed: ${failed}\n${output.slice(-20).join('\n')}`));
        } else {
          resolve();
        }
      },
      (event: { stream?: string; status?: string }) => {
        const text = (event.stream ?? event.status ?? '').trimEnd();
        if (!text) return;
        for (const line of text.split('\n')) {
          output.push(line);
          progress(line);
        }
      },
    );
  });
  if (!(await imageExists(docker, tag))) {
    throw new Error(`docker build of ${tag} reported success but the image does not exist.\n${output.slice(-20).join('\n')}`);
  }
}

async function pullImage(docker: Docker, image: string, timeoutMs: number): Promise<void> {
  const abort = new AbortController();
  const pull = (async () => {
    const stream = await docker.pull(image, { abortSignal: abort.signal });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (error: Error | null, events: { error?: string }[]) => {
        const failed = error?.message ?? events.find((e) => e.error)?.error;
        if (failed) reject(new Error(failed));
        else resolve();
      });
    });
  })();
  try {
    await withTimeout(pull, timeoutMs, `pull of ${image} took longer than ${timeoutMs} ms`);
  } catch (error) {
    abort.abort();
    throw error;
  }
}

export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  promise.catch(() => {}); // the loser of the race must not become an unhandled rejection
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// `node harness/image.ts [--force]`: make sure the node image exists and print its tag (npm run setup).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--force');
  if (unknown.length > 0) {
    console.error(`harness/image.ts: unknown argument ${JSON.stringify(unknown[0])} (expected: --force)`);
    process.exit(254);
  }
  try {
    const tag = await ensureImage({ force: args.includes('--force'), onProgress: (line) => console.log(`[image] ${line}`) });
    console.log(tag);
  } catch (error) {
    console.error(errorText(error));
    process.exit(1);
  }
}
