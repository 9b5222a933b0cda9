// The System role of shared/DESIGN.md (Jepsen's DB): the adapter for the system under test. It says
// which image every node container runs, the command line of one node's service, and which client
// the workers use; the harness core (cluster, runner, lifecycle) goes through it and never imports
// node/ internals. The store-and-mesh service is the first System.
import { StoreMeshClient, type StoreClientOptions } from './client.ts';
import { ensureImage, type EnsureImageOptions } from './image.ts';

/** Per-run settings a System passes on to every node. */
export interface NodeOptions {
  readonly bug?: string;
  readonly antiEntropyMs?: number;
  readonly maxSkewMs?: number;
  /**
   * The cluster's mesh secret (Cluster.start makes a fresh one per run). It goes into the node's
   * environment (env()), never onto its command line, and must never be logged or written to results.
   */
  readonly meshSecret?: string;
}

export interface System {
  readonly name: string;
  /** The port every node serves its client API (and, for this service, the mesh) on. */
  readonly port: number;
  /** Where the node keeps its durable state inside the container (it survives kill and restart). */
  readonly dataDir: string;
  /** Builds or reuses the image every node runs; returns its tag. */
  image(options: EnsureImageOptions): Promise<string>;
  /** The arguments of one node's service, given every node's name (peers are reached by name). */
  command(node: string, nodes: readonly string[], options: NodeOptions): string[];
  /** Environment variables of one node's service: where secrets go (a command line is visible to every process). */
  env?(node: string, nodes: readonly string[], options: NodeOptions): Record<string, string>;
  /** A client bound to one node's address (host:port): workload ops, final reads, stats. */
  client(address: string, options: StoreClientOptions): StoreMeshClient;
}

export const storeMesh: System = {
  name: 'store-and-mesh',
  port: 7000,
  dataDir: '/data',
  image: (options) => ensureImage(options),
  command(node, nodes, options) {
    const peers = nodes.filter((n) => n !== node).map((n) => `${n}=${n}:${this.port}`).join(',');
    const cmd = ['--id', node, '--listen', `0.0.0.0:${this.port}`, '--peers', peers, '--data-dir', this.dataDir];
    if (options.antiEntropyMs !== undefined) cmd.push('--anti-entropy-ms', String(options.antiEntropyMs));
    if (options.maxSkewMs !== undefined) cmd.push('--max-skew-ms', String(options.maxSkewMs));
    if (options.bug !== undefined) cmd.push('--bug', options.bug);
    return cmd;
  },
  // The service refuses to start with peers but no secret; every node of a run gets the same one.
  env: (_node, _nodes, options): Record<string, string> => (options.meshSecret ? { FAULTLINE_MESH_SECRET: options.meshSecret } : {}),
  client: (address, options) => new StoreMeshClient(address, options),
};
