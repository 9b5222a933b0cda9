// The disk fault package: faults of the disk under each node's data directory, through the disk layer
// (harness/docker/diskfs.c, a FUSE file system that keeps every unsynced write in its own memory). A
// run that names this package gets its node containers with the layer mounted over the data dir, which
// needs /dev/fuse and CAP_SYS_ADMIN in the container (containerNeeds below; no other run gets them).
// Each start draws one fault (from --disk-faults) and its targets; the stop ends it:
//
//   lose-unsynced  SIGKILL the container: the layer dies with the service, so everything written but not
//                  yet fsynced (file bytes and directory entries alike) is gone, as after a power loss;
//                  the stop restarts the node on what was durable
//   full           ENOSPC from every write that grows a file, every create and mkdir
//   eio-write      EIO from every write
//   eio-fsync      EIO from every fsync, and the ranges it should have written are dropped (Linux marks
//                  pages clean after a failed writeback: a retried fsync succeeds, the data is lost)
//   slow           every fsync waits --disk-delay-ms first
//
// When the power loss is listed with other faults (the default), every other fault's stop ends it
// with a power loss and a restart on some of its targets (`crashAtStop`: every second target in node
// order, or a seeded coin for a single one), so a disk turn tests both what a crash after that fault
// leaves (an fsync that failed and was then acknowledged anyway, unsynced data behind a slow disk) and
// what a node that recovers in place keeps (its log's fresh generation, its request table). The
// faults rotate in a seeded order, so a short run's one disk turn is any of them.
//
// Every op reads the layer's state back from each target (`layer`: the faults in force, unsynced bytes,
// failed fsyncs) and is verified by it; a node killed by lose-unsynced is verified stopped, and its
// unsynced bytes just before the kill are recorded (`unsyncedBytes`). A fault in force on a node that
// is restarted (by the kill package) is re-applied once the node is healthy: the new layer starts clear.
import { existsSync } from 'node:fs';
import type { NemesisValue } from '../harness/history.ts';
import type { Rng } from '../harness/rng.ts';
import type { ClusterControl, ContainerNeeds, FaultPackageOptions, Nemesis, NemesisCompletion, NemesisOp, NodeBackEvent } from './types.ts';
import { collectErrors, errorText } from './net.ts';
import { completion, failedOp, healReport, HEAL_FIRST, NodeBackLog, nodeStates, opNodes, requireCluster, unknownOp, type FaultlinePackage } from './package.ts';
import { alternate, drawTargets, sortNodes, targetKinds } from './schedule.ts';

/** The disk faults, as --disk-faults spells them. */
export const DISK_FAULTS = ['lose-unsynced', 'full', 'eio-write', 'eio-fsync', 'slow'] as const;
export type DiskFault = (typeof DISK_FAULTS)[number];

/** The default fsync delay of the slow fault: well under the clients' 1 s deadline, far above a real fsync. */
export const DEFAULT_DISK_DELAY_MS = 100;

/** The layer's control socket and its client inside every node container (harness/docker/entrypoint.sh). */
const SOCKET = '/run/faultline-diskfs.sock';
const CTL = 'faultline-diskfs';

/**
 * What a node container needs for the layer: the FUSE device, CAP_SYS_ADMIN to mount it, and the
 * entrypoint's switch. Given only to runs that name the package (nemesis/index.ts containerNeeds).
 */
export const diskContainerNeeds: ContainerNeeds = {
  devices: ['/dev/fuse'],
  capAdd: ['SYS_ADMIN'],
  env: { FAULTLINE_DISK_LAYER: '1' },
};

/** Why this host cannot run the layer, or undefined. */
export function diskHostUnsupported(): string | undefined {
  return existsSync('/dev/fuse') ? undefined : 'the host has no /dev/fuse (the kernel needs CONFIG_FUSE_FS), which the disk layer (a FUSE file system) mounts';
}

export type DiskOptions = FaultPackageOptions;

/** The layer's `set` command for a fault, or undefined for lose-unsynced (a kill, not a setting). */
function settingOf(fault: DiskFault, delayMs: number): string | undefined {
  switch (fault) {
    case 'full':
      return 'set enospc=1';
    case 'eio-write':
      return 'set eio_write=1';
    case 'eio-fsync':
      return 'set eio_fsync=1';
    case 'slow':
      return `set delay_fsync_ms=${delayMs}`;
    case 'lose-unsynced':
      return undefined;
  }
}

/** The layer's state as its status line gives it: "enospc=0 eio_write=0 ..." → numbers. */
export function parseLayerStatus(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/([a-z_]+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/** The settings a fault leaves in force, to check a status against. */
function expected(fault: DiskFault | undefined, delayMs: number): Record<string, number> {
  return {
    enospc: fault === 'full' ? 1 : 0,
    eio_write: fault === 'eio-write' ? 1 : 0,
    eio_fsync: fault === 'eio-fsync' ? 1 : 0,
    delay_fsync_ms: fault === 'slow' ? delayMs : 0,
  };
}

async function ctl(cluster: ClusterControl, node: string, command: string): Promise<Record<string, number>> {
  const cmd = [CTL, 'ctl', SOCKET, command];
  const r = await cluster.exec(node, cmd, { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`${node}: ${cmd.join(' ')} exited ${r.exitCode}: ${(r.stdout + r.stderr).trim()}`);
  return parseLayerStatus(r.stdout);
}

function mismatch(node: string, status: Record<string, number>, want: Record<string, number>): string | undefined {
  const wrong = Object.entries(want).filter(([k, v]) => status[k] !== v);
  return wrong.length === 0 ? undefined : `${node}: the disk layer reports ${wrong.map(([k]) => `${k}=${status[k]}`).join(' ')}, expected ${wrong.map(([k, v]) => `${k}=${v}`).join(' ')}`;
}

export class DiskNemesis implements Nemesis {
  readonly name = 'disk';
  readonly #delayMs: number;
  #cluster: ClusterControl | undefined;
  /** node → the fault in force on it (lose-unsynced: killed, not yet restarted). */
  readonly #inForce = new Map<string, DiskFault>();
  /** Nodes paused at a stop: their layer (frozen with them) still holds the fault until they are resumed. */
  readonly #stale = new Set<string>();
  #unlisten: (() => void) | undefined;

  constructor(delayMs: number) {
    this.#delayMs = delayMs;
  }

  async setup(cluster: ClusterControl): Promise<void> {
    this.#cluster = cluster;
    this.#unlisten?.();
    this.#unlisten = cluster.onNodeBack(this.name, (node, event) => this.#nodeBack(cluster, node, event));
  }

  /** The faults in force, by node. */
  inForce(): Record<string, DiskFault> {
    return Object.fromEntries(sortNodes(this.#inForce.keys()).map((n) => [n, this.#inForce.get(n)!]));
  }

  async invoke(op: NemesisOp): Promise<NemesisCompletion> {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      if (op.f !== 'start-disk' && op.f !== 'stop-disk') return unknownOp(this.name, op, ['start-disk', 'stop-disk']);
      const fault = op.value.fault as DiskFault;
      if (!DISK_FAULTS.includes(fault)) throw new Error(`${op.f} needs value.fault, one of ${DISK_FAULTS.join(', ')}; got ${JSON.stringify(op.value.fault)}`);
      const nodes = sortNodes(opNodes(cluster, op));
      const starting = op.f === 'start-disk';
      const states = await nodeStates(cluster, nodes);
      const unverified: string[] = [];
      const excluded: Record<string, string> = {};
      const layer: Record<string, Record<string, number>> = {};
      const unsyncedBytes: Record<string, number> = {};
      const reapplied: Record<string, NemesisValue> = {};
      const crashed: string[] = [];
      /** A power loss of a running node: what it is about to lose, the SIGKILL, and the check that it stopped. */
      const powerLoss = async (node: string) => {
        // What the crash is about to throw away (racy by nature: writes go on until the kill lands).
        const before = await ctl(cluster, node, 'status').catch(() => undefined);
        if (before) unsyncedBytes[node] = before.dirty_bytes ?? 0;
        await cluster.kill(node, 'SIGKILL');
        const state = await cluster.state(node);
        if (state !== 'stopped') unverified.push(`${node} is ${state} after the power loss, expected stopped`);
        crashed.push(node);
      };
      /** Restarts a node after a power loss, records what the other packages re-applied, checks its fresh layer. */
      const restart = async (node: string) => {
        const back = await cluster.restart(node);
        // The other packages' faults re-applied to the node that came back prove themselves here (faults checker).
        if (Object.keys(back.reapplied).length > 0) reapplied[node] = back.reapplied;
        if (back.errors.length > 0) unverified.push(`${node}: after the restart: ${back.errors.join('; ')}`);
        layer[node] = await ctl(cluster, node, 'status');
        const wrong = mismatch(node, layer[node], expected(undefined, this.#delayMs));
        if (wrong) unverified.push(wrong);
      };
      const crashList = !starting && fault !== 'lose-unsynced' && Array.isArray(op.value.crashAtStop) ? (op.value.crashAtStop as unknown[]) : [];
      const errors = await collectErrors(nodes, async (node) => {
        if (fault === 'lose-unsynced') {
          if (starting) {
            this.#inForce.set(node, fault);
            if (states[node] !== 'running') {
              excluded[node] = states[node];
              return;
            }
            await powerLoss(node);
            return;
          }
          this.#inForce.delete(node);
          await restart(node);
          return;
        }
        if (starting) this.#inForce.set(node, fault);
        else this.#inForce.delete(node);
        if (states[node] !== 'running') {
          // A stopped node gets the fault when it is back, and a stopped one a fresh layer (#nodeBack); a
          // paused one cannot be exec'd into: it gets the fault, or is cleared, when it is resumed.
          excluded[node] = states[node];
          if (!starting && states[node] === 'paused') this.#stale.add(node);
          return;
        }
        this.#stale.delete(node);
        if (crashList.includes(node)) {
          await powerLoss(node);
          await restart(node);
          return;
        }
        layer[node] = await ctl(cluster, node, starting ? settingOf(fault, this.#delayMs)! : 'clear');
        const wrong = mismatch(node, layer[node], expected(starting ? fault : undefined, this.#delayMs));
        if (wrong) unverified.push(wrong);
      });
      for (const e of errors) unverified.push(errorText(e));
      const value: NemesisValue = {
        nodes,
        fault,
        ...(fault === 'slow' ? { delayMs: this.#delayMs } : {}),
        ...(Array.isArray(op.value.crashAtStop) && fault !== 'lose-unsynced' ? { crashAtStop: op.value.crashAtStop } : {}),
        ...(crashList.length > 0 ? { crashed: sortNodes(crashed) } : {}),
        inForce: this.inForce(),
        layer,
        ...(Object.keys(unsyncedBytes).length > 0 ? { unsyncedBytes } : {}),
        ...(Object.keys(reapplied).length > 0 ? { reapplied } : {}),
        ...(Object.keys(excluded).length > 0 ? { excluded } : {}),
        verified: unverified.length === 0 && Object.keys(excluded).length < nodes.length,
        ...(unverified.length > 0 ? { unverified: unverified.join('; ') } : Object.keys(excluded).length === nodes.length ? { unverified: `every target is ${Object.values(excluded).join('/')}` } : {}),
      };
      return completion(op, value, errors.length > 0 ? new AggregateError(errors) : undefined);
    } catch (error) {
      return failedOp(op, error);
    }
  }

  /**
   * A restarted node has a fresh layer with nothing in force: re-apply this package's fault once it is
   * healthy. A resumed node's layer is as the pause froze it: apply the fault it missed, or clear the
   * one a stop could not reach.
   */
  async #nodeBack(cluster: ClusterControl, node: string, event: NodeBackEvent): Promise<NemesisValue | undefined> {
    const fault = this.#inForce.get(node);
    if (event === 'restarted') this.#stale.delete(node);
    if (event === 'unpaused' && fault === undefined && this.#stale.delete(node)) {
      try {
        const status = await ctl(cluster, node, 'clear');
        const wrong = mismatch(node, status, expected(undefined, this.#delayMs));
        return { node, cleared: true, verified: wrong === undefined, ...(wrong ? { unverified: wrong } : {}) };
      } catch (error) {
        return { node, cleared: false, verified: false, unverified: errorText(error), error: errorText(error) };
      }
    }
    if ((event !== 'healthy' && event !== 'unpaused') || fault === undefined || fault === 'lose-unsynced') return undefined;
    try {
      const status = await ctl(cluster, node, settingOf(fault, this.#delayMs)!);
      const wrong = mismatch(node, status, expected(fault, this.#delayMs));
      return { node, fault, verified: wrong === undefined, ...(wrong ? { unverified: wrong } : {}) };
    } catch (error) {
      return { node, fault, verified: false, unverified: errorText(error), error: errorText(error) };
    }
  }

  /** Restarts every node a power loss left stopped, then clears every layer (checked by its status). */
  async heal() {
    try {
      const cluster = requireCluster(this.name, this.#cluster);
      const nodes = cluster.nodes.map((n) => n.name);
      const layer: Record<string, Record<string, number>> = {};
      const back = new NodeBackLog();
      const errors = await collectErrors(nodes, async (node) => {
        const state = await cluster.state(node);
        if (this.#inForce.get(node) === 'lose-unsynced' && state === 'stopped') back.add(node, await cluster.restart(node));
        else if (state !== 'running') return; // another package's fault; its own heal brings the node back
        this.#inForce.delete(node);
        layer[node] = await ctl(cluster, node, 'clear');
        const wrong = mismatch(node, layer[node], expected(undefined, this.#delayMs));
        if (wrong) throw new Error(wrong);
      });
      return healReport(errors, { nodes: sortNodes(Object.keys(layer)), layer, inForce: this.inForce(), ...back.value() });
    } catch (error) {
      return healReport([error], { inForce: this.inForce() });
    }
  }

  async teardown(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
  }
}

/**
 * The order in which the package's starts take the listed faults: every fault once per round, in a seeded
 * order, so a run with n faults has had each of them after n starts (a uniform draw leaves a fault out of
 * a short run's one or two starts most of the time). No fault opens the first round by rule: with the
 * power loss listed beside others, most turns end in one on some of their targets (crashAtStop), so a
 * short run tests the promise a write acknowledged is a write synced whichever fault it draws. (It used to open with the power loss,
 * and then a 30 s run, with its one disk turn, never failed a write or an fsync.)
 */
/** Which targets a stop ends with a power loss: every second one in node order, or a seeded coin's worth of a single one. */
export function crashTargets(nodes: readonly string[], rng: Rng): string[] {
  const sorted = sortNodes(nodes);
  if (sorted.length === 1) return rng.next() < 0.5 ? sorted : [];
  return sorted.filter((_, i) => i % 2 === 1);
}

export function* diskFaultOrder(faults: readonly DiskFault[], rng: Rng): Generator<DiskFault, never> {
  if (faults.length === 0) throw new Error(`Expected at least one disk fault of: ${DISK_FAULTS.join(', ')}`);
  for (;;) yield* rng.shuffle(faults);
}

export function diskPackage(options: DiskOptions): FaultlinePackage {
  const delayMs = options.diskDelayMs ?? DEFAULT_DISK_DELAY_MS;
  const faults = options.diskFaults ?? DISK_FAULTS;
  if (faults.length === 0) throw new Error(`Expected at least one disk fault of: ${DISK_FAULTS.join(', ')}`);
  const nemesis = new DiskNemesis(delayMs);
  return {
    name: 'disk',
    // It restarts nodes a power loss stopped, as kill does, before the network and clock heals.
    healOrder: HEAL_FIRST,
    nemesis,
    handles: (op) => op.f === 'start-disk' || op.f === 'stop-disk',
    async unsupported(cluster) {
      const host = diskHostUnsupported();
      if (host) return host;
      // The containers were started with the layer (containerNeeds); prove it is mounted and answers.
      const node = cluster.nodes[0]?.name;
      if (!node) return 'the cluster has no nodes';
      try {
        await ctl(cluster, node, 'status');
        return undefined;
      } catch (error) {
        return `the disk layer does not answer in ${node}: ${errorText(error)}`;
      }
    },
    ops: (rng: Rng) => {
      const order = diskFaultOrder(faults, rng);
      // With the power loss listed beside other faults, theirs end in one (see the module comment).
      const crashes = faults.includes('lose-unsynced') && faults.length > 1;
      return alternate(
        rng,
        (r) => {
          const fault = order.next().value;
          const nodes = drawTargets(options.nodes, r, options.targets ?? targetKinds).nodes;
          return { f: 'start-disk', value: { fault, nodes, ...(crashes && fault !== 'lose-unsynced' ? { crashAtStop: crashTargets(nodes, r) } : {}) } };
        },
        (started) => ({ f: 'stop-disk', value: { fault: started.value.fault, nodes: started.value.nodes ?? [], ...(started.value.crashAtStop !== undefined ? { crashAtStop: started.value.crashAtStop } : {}) } }),
      );
    },
    // A power loss (lose-unsynced) stops its nodes until the stop restarts them; the other disk faults leave them running.
    unavailable: (op) => (op.f === 'start-disk' && op.value.fault === 'lose-unsynced' && Array.isArray(op.value.nodes) ? (op.value.nodes as string[]) : []),
  };
}
