// The node's configuration: every option declared once in a table (flag, env variable, description,
// default), parsed from argv and the environment (a flag wins over its variable) and validated up front.
// Invalid configuration throws ConfigError with a message naming the option, the value and what is
// allowed; main.ts prints it and exits 254.
import { BUG_NAMES, type BugName } from './bugs.ts';
import { MIN_MESH_SECRET_CHARS } from './mesh-auth.ts';

/**
 * V8 flags that every launcher of the service passes to node: harness/docker/entrypoint.sh, the "node"
 * script in package.json and node/testing.ts (node/test/config.test.ts checks that they agree).
 * A gRPC call allocates ~18 KB in this process (mostly grpc-js and node:http2) and ~15% of it is
 * still reachable at the next scavenge, so scavenge pauses grow with the young generation. At V8's
 * default size on this machine (semi-spaces up to 64 MB) they take 8-14 ms each and stall every call in
 * flight, which set the Put p99; with 16 MB they take ~3 ms at about the same total GC time. Smaller
 * sizes (4, 8 MB) measured no better within the machine's run-to-run noise; --minor-ms and
 * --single-threaded-gc measured worse.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

export interface Peer {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export interface NodeConfig {
  readonly id: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly peers: readonly Peer[];
  readonly dataDir: string;
  readonly antiEntropyMs: number;
  readonly maxSkewMs: number;
  /** A remote HLC more than this ahead of the wall clock is not merged (hlc.ts, the offset rule). */
  readonly maxOffsetMs: number;
  /** Replay a log damaged before its tail by dropping only the damaged bytes (node/wal.ts). */
  readonly salvageLog: boolean;
  /** The cluster's shared mesh secret (FAULTLINE_MESH_SECRET only, never a flag); never logged. */
  readonly meshSecret: string;
  readonly bug: BugName | undefined;
  readonly meshBudgetPerS: number;
  readonly compactLogBytes: number;
  /** Bytes all watch streams of the node may hold together (node/watch.ts). */
  readonly watchBufferBytes: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly description: string;
  readonly default?: string;
  /** Only from the environment: a secret on the command line is visible to every process on the host. */
  readonly envOnly?: boolean;
}

export const OPTIONS: readonly OptionSpec[] = [
  { flag: 'id', env: 'FAULTLINE_ID', description: 'this node\'s id: letters, digits, "_", ".", "-" (1-64 chars), e.g. n1' },
  { flag: 'listen', env: 'FAULTLINE_LISTEN', description: 'host:port for the gRPC server (Store and Mesh)', default: '0.0.0.0:7000' },
  { flag: 'peers', env: 'FAULTLINE_PEERS', description: 'comma-separated id=host:port of the other nodes (empty: no peers)', default: '' },
  { flag: 'data-dir', env: 'FAULTLINE_DATA_DIR', description: 'directory for the log and snapshots (created if missing)' },
  { flag: 'anti-entropy-ms', env: 'FAULTLINE_ANTI_ENTROPY_MS', description: 'interval between anti-entropy rounds, ms (10-600000)', default: '500' },
  { flag: 'max-skew-ms', env: 'FAULTLINE_MAX_SKEW_MS', description: 'a remote HLC this far ahead of the wall clock is a skew event, ms (1-86400000)', default: '1000' },
  {
    flag: 'max-offset-ms',
    env: 'FAULTLINE_MAX_OFFSET_MS',
    description: 'a remote HLC more than this ahead of the wall clock is rejected, not merged (at least --max-skew-ms; unset: 600000 or --max-skew-ms if larger), ms (1000-31536000000)',
    default: '600000',
  },
  {
    flag: 'mesh-secret',
    env: 'FAULTLINE_MESH_SECRET',
    envOnly: true,
    description: `the cluster's shared secret, the same on every node (at least ${MIN_MESH_SECRET_CHARS} characters); peers prove membership with it; required with --peers`,
  },
  {
    flag: 'salvage-log',
    env: 'FAULTLINE_SALVAGE_LOG',
    description: 'start on a log damaged before its tail: keep a copy, replay every intact record, drop only the damaged bytes; 1 or 0',
    default: '0',
  },
  { flag: 'bug', env: 'FAULTLINE_BUG', description: `planted bug to enable: ${BUG_NAMES.join(', ')} (empty or "none": off)`, default: '' },
  { flag: 'mesh-budget-per-s', env: 'FAULTLINE_MESH_BUDGET_PER_S', description: 'token-bucket budget of relayed writes per second (burst: one second)', default: '200000' },
  { flag: 'compact-log-bytes', env: 'FAULTLINE_COMPACT_LOG_BYTES', description: 'compact the log into a snapshot once it exceeds this many bytes', default: String(64 * 1024 * 1024) },
  {
    flag: 'watch-buffer-bytes',
    env: 'FAULTLINE_WATCH_BUFFER_BYTES',
    description: 'bytes all watch streams together may hold for clients that read slowly; beyond it events are dropped and counted (65536-17179869184)',
    default: String(64 * 1024 * 1024),
  },
];

export function usage(): string {
  const lines = OPTIONS.map((o) =>
    o.envOnly
      ? `  env ${o.env.padEnd(14)} ${o.description}`
      : `  --${o.flag.padEnd(18)} ${o.description}${o.default !== undefined ? ` [default: ${o.default || '""'}] ` : ' (required) '}(env ${o.env})`,
  );
  return `usage: node node/main.ts --id n1 --data-dir DIR [options]\n${lines.join('\n')}`;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function parseHostPort(option: string, text: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || m[1].includes(',') || m[1].includes('=')) {
    throw new ConfigError(`Expected \`--${option}\` to be host:port with a port from 0 to 65535, got "${text}"`);
  }
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

function parseInteger(option: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new ConfigError(`Expected \`--${option}\` to be an integer from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** Parses argv (without the node and script paths) and env into a validated config. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): NodeConfig {
  const raw = new Map<string, string>();
  for (const o of OPTIONS) {
    const v = env[o.env];
    if (v !== undefined) raw.set(o.flag, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument "${arg}": options look like --flag value\n${usage()}`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = OPTIONS.find((o) => o.flag === flag);
    if (!spec) {
      throw new ConfigError(`Unknown option \`--${flag}\`; valid options: ${OPTIONS.filter((o) => !o.envOnly).map((o) => `--${o.flag}`).join(', ')}`);
    }
    if (spec.envOnly) throw new ConfigError(`\`--${flag}\` is not a flag: pass it in ${spec.env}, since a command line is visible to every process on the machine`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i += 1;
    }
    if (value === undefined) throw new ConfigError(`Option \`--${flag}\` needs a value`);
    raw.set(flag, value);
  }
  const get = (flag: string): string => raw.get(flag) ?? OPTIONS.find((o) => o.flag === flag)!.default ?? '';

  const id = get('id');
  if (!ID_RE.test(id)) throw new ConfigError(`Expected \`--id\` (or FAULTLINE_ID) to be 1-64 letters, digits, "_", ".", "-" starting with a letter or digit, got "${id}"`);
  const listen = parseHostPort('listen', get('listen'));
  const peers: Peer[] = [];
  for (const part of get('peers').split(',').map((p) => p.trim()).filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    const peerId = eq > 0 ? part.slice(0, eq) : '';
    if (!ID_RE.test(peerId)) throw new ConfigError(`Expected each \`--peers\` entry to be id=host:port, got "${part}"`);
    if (peerId === id) throw new ConfigError(`\`--peers\` must not list this node itself ("${peerId}")`);
    if (peers.some((p) => p.id === peerId)) throw new ConfigError(`\`--peers\` lists "${peerId}" twice`);
    const { host, port } = parseHostPort('peers', part.slice(eq + 1));
    if (port === 0) throw new ConfigError(`Expected \`--peers\` entry "${part}" to have a port from 1 to 65535`);
    peers.push({ id: peerId, host, port });
  }
  const dataDir = get('data-dir');
  if (dataDir === '') throw new ConfigError('Missing `--data-dir` (or FAULTLINE_DATA_DIR): the directory for the log and snapshots');
  const bugText = get('bug');
  let bug: BugName | undefined;
  if (bugText !== '' && bugText !== 'none') {
    if (!(BUG_NAMES as readonly string[]).includes(bugText)) {
      throw new ConfigError(`Unknown \`--bug\` "${bugText}"; valid names: ${BUG_NAMES.join(', ')} (or "none")`);
    }
    bug = bugText as BugName;
  }
  const meshSecret = get('mesh-secret');
  if (peers.length > 0 && meshSecret === '') {
    throw new ConfigError(
      `FAULTLINE_MESH_SECRET is not set: a node with \`--peers\` needs the cluster's mesh secret, the same on every node (at least ${MIN_MESH_SECRET_CHARS} characters, e.g. from \`openssl rand -hex 32\`), so that its peers can prove they belong to the cluster`,
    );
  }
  if (meshSecret !== '' && meshSecret.length < MIN_MESH_SECRET_CHARS) {
    throw new ConfigError(`Expected FAULTLINE_MESH_SECRET to have at least ${MIN_MESH_SECRET_CHARS} characters, got ${meshSecret.length}; make one with \`openssl rand -hex 32\``);
  }
  const maxSkewMs = parseInteger('max-skew-ms', get('max-skew-ms'), 1, 86_400_000);
  const salvage = get('salvage-log');
  if (salvage !== '0' && salvage !== '1') throw new ConfigError(`Expected \`--salvage-log\` to be 1 or 0, got ${JSON.stringify(salvage)}`);
  // Unset, the offset bound grows with a larger skew threshold; set explicitly, it must not be below it.
  const maxOffsetMs = raw.has('max-offset-ms') ? parseInteger('max-offset-ms', get('max-offset-ms'), 1000, 31_536_000_000) : Math.max(600_000, maxSkewMs);
  if (maxOffsetMs < maxSkewMs) {
    throw new ConfigError(`Expected \`--max-offset-ms\` (${maxOffsetMs}) to be at least \`--max-skew-ms\` (${maxSkewMs}): a skewed timestamp is counted and accepted, one beyond --max-offset-ms is rejected`);
  }
  return {
    id,
    listenHost: listen.host,
    listenPort: listen.port,
    peers,
    dataDir,
    antiEntropyMs: parseInteger('anti-entropy-ms', get('anti-entropy-ms'), 10, 600_000),
    maxSkewMs,
    maxOffsetMs,
    salvageLog: salvage === '1',
    meshSecret,
    bug,
    meshBudgetPerS: parseInteger('mesh-budget-per-s', get('mesh-budget-per-s'), 1, 100_000_000),
    compactLogBytes: parseInteger('compact-log-bytes', get('compact-log-bytes'), 4096, 2 ** 40),
    watchBufferBytes: parseInteger('watch-buffer-bytes', get('watch-buffer-bytes'), 65_536, 2 ** 34),
  };
}
