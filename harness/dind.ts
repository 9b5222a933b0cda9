// Docker engines in containers (Docker-in-Docker) on the local engine, to run faultline's multi-engine
// mode on one machine: each engine is a real dockerd from Debian's docker.io package
// (harness/docker/dind.Dockerfile) with its own storage, reachable from the harness at
// tcp://<container IP>:2375 on a private bridge network, and the engines are joined into one swarm so
// a cluster can share an overlay network over them. The engine containers carry the harness's owner
// labels, so removeLeftovers() sweeps them (and all they hold) once the process that started them is gone.
//
// The engine containers are not --privileged: on these machines runc refuses that ("unable to apply
// caps: operation not permitted", measured), so they get every capability but SYS_RESOURCE, no seccomp
// or AppArmor profile, unmasked /proc and /sys, every device, and the host's cgroup hierarchy (cgroup
// v1), where each inner engine keeps its containers under a cgroup parent of its own.
import { readdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { ownerLabels } from './cluster.ts';
import { connectEngines, joinSwarm, parseEngine, type Engine } from './engines.ts';
import { connectDocker, ensureSystemImage, errorText } from './image.ts';

export const dindRepository = 'faultline-dind';
const dindDockerfile = 'harness/docker/dind.Dockerfile';
const dindPort = 2375;

/** Builds (or reuses) faultline-dind:<content hash> on the base every faultline image uses; offline with the offline base. */
export async function ensureDindImage(options: { readonly docker?: Docker; readonly onProgress?: (line: string) => void } = {}): Promise<string> {
  return ensureSystemImage({ repository: dindRepository, dockerfile: dindDockerfile, files: [dindDockerfile], docker: options.docker, onProgress: options.onProgress });
}

export interface DindEngines {
  /** The engines, e1..eN, with clients. */
  readonly engines: readonly Engine[];
  /** Their addresses, tcp://<ip>:2375, as `--engines` takes them. */
  readonly urls: readonly string[];
  /** The engine containers on the local engine. */
  readonly containers: readonly string[];
  /** Removes the engine containers (with everything in them), their volumes and network. Safe to call twice. */
  stop(): Promise<void>;
}

export interface DindOptions {
  readonly count: number;
  /** Names the objects: faultline-<id>-e1.., network faultline-<id>-engines. */
  readonly id: string;
  readonly docker?: Docker;
  readonly onProgress?: (line: string) => void;
  /** Join the engines into one swarm (e1 the manager). @default true */
  readonly swarm?: boolean;
}

/** Starts `count` engines, waits until each answers, and joins them into one swarm. */
export async function startDindEngines(options: DindOptions): Promise<DindEngines> {
  const progress = options.onProgress ?? (() => {});
  const docker = options.docker ?? (await connectDocker());
  const image = await ensureDindImage({ docker, onProgress: progress });
  const labels = { ...ownerLabels(options.id), 'faultline.role': 'engine' };
  const networkName = `faultline-${options.id}-engines`;
  const names = Array.from({ length: options.count }, (_, i) => `faultline-${options.id}-e${i + 1}`);
  const cgroupParents = names.map((name) => `/${name}`);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const errors: string[] = [];
    await Promise.all(
      names.map(async (name) => {
        try {
          await docker.getContainer(name).remove({ force: true, v: true });
        } catch (error) {
          if ((error as { statusCode?: number }).statusCode !== 404) errors.push(`${name}: ${errorText(error)}`);
        }
      }),
    );
    try {
      await docker.getNetwork(networkName).remove();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) errors.push(`${networkName}: ${errorText(error)}`);
    }
    for (const parent of cgroupParents) removeCgroups(parent);
    if (errors.length) throw new Error(`removing the engines left: ${errors.join('; ')}`);
  };
  try {
    await docker.createNetwork({ Name: networkName, Driver: 'bridge', Internal: true, CheckDuplicate: true, Labels: labels });
    const started = performance.now();
    await Promise.all(
      names.map(async (name, i) => {
        const container = await docker.createContainer({
          name,
          Image: image,
          Hostname: `e${i + 1}`,
          Labels: { ...labels, 'faultline.node': `e${i + 1}` },
          Cmd: ['--storage-driver', 'overlay2', '--cgroup-parent', cgroupParents[i], '-H', 'unix:///var/run/docker.sock', '-H', `tcp://0.0.0.0:${dindPort}`, '--tls=false'],
          HostConfig: {
            NetworkMode: networkName,
            CapAdd: ['ALL'],
            CapDrop: ['SYS_RESOURCE'],
            SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
            // What the docker client's --security-opt systempaths=unconfined sends: nothing masked or read-only in /proc and /sys.
            MaskedPaths: [],
            ReadonlyPaths: [],
            DeviceCgroupRules: ['a *:* rwm'],
            // The disk fault's layer (FUSE) in the inner engine's node containers needs the device inside the engine too.
            Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
            Binds: ['/sys/fs/cgroup:/sys/fs/cgroup:rw'],
            RestartPolicy: { Name: 'no' },
          },
        });
        await container.start();
      }),
    );
    const ips = await Promise.all(names.map(async (name) => (await docker.getContainer(name).inspect()).NetworkSettings.Networks[networkName]?.IPAddress ?? ''));
    const urls = ips.map((ip) => `tcp://${ip}:${dindPort}`);
    const engines = await waitForEngines(urls, 30_000);
    progress(`${names.length} engines up in ${Math.round(performance.now() - started)} ms: ${urls.join(', ')}`);
    if (options.swarm ?? true) await joinSwarm(engines, ips, progress);
    return { engines, urls, containers: names, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

async function waitForEngines(urls: readonly string[], timeoutMs: number): Promise<Engine[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await connectEngines(urls.map((u) => parseEngine(u)), { timeoutMs: 2_000 });
    } catch (error) {
      if (performance.now() > deadline) throw new Error(`the engines did not answer within ${timeoutMs} ms: ${errorText(error)}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

// An inner engine's containers live in the host's cgroup tree under its cgroup parent; once the engine
// is gone they are empty, and removing them (deepest first) leaves the tree as it was.
function removeCgroups(parent: string): void {
  let controllers: string[];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    return;
  }
  for (const controller of controllers) {
    const dir = path.join('/sys/fs/cgroup', controller, parent);
    rmTree(dir);
  }
}

function rmTree(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) rmTree(path.join(dir, entry.name));
    rmdirSync(dir);
  } catch {
    // Not there, or still busy: nothing to do.
  }
}

