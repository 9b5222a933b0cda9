// Engine addresses and node placement for `--engines`, as pure functions (no Docker client), so the
// option table can validate them and unit tests need no engine: an address is unix:///path, tcp://host:port
// or ssh://[user@]host[:port], read as dockerode's modem reads DOCKER_HOST; placement is round-robin or
// an explicit engine number per node. harness/engines.ts does everything that talks to an engine.
import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';

/** One engine as the user names it, parsed. */
export interface EngineSpec {
  /** As given: unix:///var/run/docker.sock, tcp://10.0.0.2:2375, ssh://user@host. */
  readonly url: string;
  readonly kind: 'unix' | 'tcp' | 'ssh';
  /**
   * The address the harness dials for a port published on this engine: the URL's host for tcp:// and
   * ssh://, 127.0.0.1 for a local unix socket.
   */
  readonly host: string;
  /** What dockerode's constructor takes to reach it. */
  readonly dockerOptions: Docker.DockerOptions;
}

/**
 * Parses one engine address. Throws with what was expected: a bare host:port is not taken for tcp (say
 * which), and npipe is not supported (the harness runs on Linux).
 */
export function parseEngine(raw: string): EngineSpec {
  const url = raw.trim();
  const bad = (why: string): never => {
    throw new Error(`Expected an engine address unix:///path, tcp://host:port or ssh://[user@]host[:port], got "${raw}" (${why})`);
  };
  if (url.startsWith('unix://')) {
    const socketPath = url.slice('unix://'.length);
    if (!socketPath.startsWith('/')) bad('a unix socket needs an absolute path, e.g. unix:///var/run/docker.sock');
    return { url, kind: 'unix', host: '127.0.0.1', dockerOptions: { socketPath } };
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) bad(`no scheme; for an engine on TCP write tcp://${url}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return bad('not a URL');
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!host) bad('no host');
  if (parsed.pathname !== '' && parsed.pathname !== '/') bad('a path is only allowed for unix://');
  if (parsed.protocol === 'tcp:') {
    if (!parsed.port) bad('tcp:// needs a port, e.g. tcp://10.0.0.2:2375');
    const port = Number(parsed.port);
    // As the docker client: 2376 or DOCKER_TLS_VERIFY=1 means TLS, with DOCKER_CERT_PATH's certificates.
    const tls = port === 2376 || process.env.DOCKER_TLS_VERIFY === '1';
    const certs = tls ? tlsFiles() : {};
    return { url, kind: 'tcp', host, dockerOptions: { host, port, protocol: tls ? 'https' : 'http', ...certs } };
  }
  if (parsed.protocol === 'ssh:') {
    const port = parsed.port ? Number(parsed.port) : 22;
    const username = decodeURIComponent(parsed.username) || undefined;
    return {
      url,
      kind: 'ssh',
      host,
      dockerOptions: { protocol: 'ssh', host, port, ...(username ? { username } : {}), sshOptions: { agent: process.env.SSH_AUTH_SOCK } } as Docker.DockerOptions,
    };
  }
  return bad(`unsupported scheme ${parsed.protocol.replace(/:$/, '')}`);
}

function tlsFiles(): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const dir = process.env.DOCKER_CERT_PATH;
  if (!dir) return {};
  return { ca: readFileSync(`${dir}/ca.pem`), cert: readFileSync(`${dir}/cert.pem`), key: readFileSync(`${dir}/key.pem`) };
}

/**
 * Parses an engine list: a comma list of addresses, or `@file` with one address per line (blank lines
 * and # comments skipped). Throws on a bad address or one named twice.
 */
export function parseEngineList(raw: string, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): EngineSpec[] {
  const text = raw.trim();
  const items = text.startsWith('@')
    ? readFile(text.slice(1))
        .split('\n')
        .map((line) => line.replace(/#.*/, '').trim())
        .filter(Boolean)
    : text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`Expected at least one engine address, got "${raw}"`);
  const specs = items.map(parseEngine);
  const twice = specs.find((s, i) => specs.findIndex((t) => t.url === s.url) !== i);
  if (twice) throw new Error(`The engine ${twice.url} is named twice in "${raw}"`);
  return specs;
}

/**
 * Which engine (0-based index) each node runs on: round-robin (n1 on e1, n2 on e2, ...) unless an
 * explicit list gives each node's engine number (1-based, one per node, in node order).
 */
export function placeNodes(nodes: readonly string[], engineCount: number, explicit?: readonly number[]): number[] {
  if (!Number.isInteger(engineCount) || engineCount < 1) throw new Error(`Expected at least one engine, got ${engineCount}`);
  if (explicit === undefined) return nodes.map((_, i) => i % engineCount);
  if (explicit.length !== nodes.length) throw new Error(`Expected one engine number per node (${nodes.length}), got ${explicit.length}: ${explicit.join(',')}`);
  const bad = explicit.find((e) => !Number.isInteger(e) || e < 1 || e > engineCount);
  if (bad !== undefined) throw new Error(`Expected engine numbers from 1 to ${engineCount}, got ${bad}`);
  return explicit.map((e) => e - 1);
}

/** node → engine name, for test.json and the report. */
export function placementRecord(nodes: readonly string[], placement: readonly number[]): Record<string, string> {
  return Object.fromEntries(nodes.map((node, i) => [node, `e${placement[i] + 1}`]));
}

