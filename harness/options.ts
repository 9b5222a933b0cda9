// The command line as one table (after vitest's cli-config): every option is declared once with its
// description, unit and default; parsing, validation and `--help` are all generated from the table.
// parseOptions never exits: it throws UsageError, which the CLI turns into exit code 254.
import { parseArgs } from 'node:util';
import { FAULT_PACKAGE_NAMES } from '../nemesis/names.ts';
import { shapeNames, type ShapeName } from '../nemesis/grudge.ts';
import { targetKinds, type TargetKind } from '../nemesis/schedule.ts';
import type { System } from './system.ts';
import { DEFAULT_SYSTEM, SYSTEMS, systemNamed } from './systems/index.ts';
// The disk faults are owned by their package (nemesis/disk.ts).
import { DISK_FAULTS, DEFAULT_DISK_DELAY_MS, type DiskFault } from '../nemesis/disk.ts';
import { parseEngineList } from './engine-spec.ts';
import { DEFAULT_DELAYS_MS, DEFAULT_DUPLICATE_PERCENTS, DEFAULT_JITTERS_MS, MAX_DELAY_MS } from '../nemesis/delay.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

// Every name list is read from its owner: fault packages from nemesis/index.ts, partition shapes from
// nemesis/grudge.ts, target kinds from nemesis/schedule.ts, systems from harness/systems/index.ts, and
// each system's workloads, planted bugs and own options from that system.

/** Which nodes a fault draws its targets from, as Jepsen's node specs (owner: nemesis/schedule.ts). */
export const TARGET_KINDS = targetKinds;
export type { TargetKind };

/** Partition shapes (owner: nemesis/grudge.ts, which computes each as a pure grudge). */
export const PARTITION_SHAPES = shapeNames;
export type PartitionShape = ShapeName;

/** Fault packages (owner: nemesis/names.ts); `all` and `none` are also accepted (nemesis/index.ts resolves them). */
export const NEMESIS_NAMES: readonly string[] = FAULT_PACKAGE_NAMES;

export interface Options {
  /** The system under test (harness/systems/). */
  readonly system: string;
  readonly nodes: number;
  /** Docker engines the nodes are spread over (--engines, else $FAULTLINE_ENGINES), as given; undefined: the one engine of DOCKER_HOST. */
  readonly engines?: readonly string[];
  /** With engines: each node's engine number (1-based), in node order; undefined: round-robin. */
  readonly placement?: readonly number[];
  readonly workload: string;
  readonly nemesis: readonly string[];
  /** Seconds between fault ops; undefined means auto: timeLimit / (2k + 3) for the k packages that run, after as long a calm lead-in (nemesis/schedule.ts autoSchedule). */
  readonly nemesisIntervalS: number | undefined;
  readonly nemesisTargets: readonly TargetKind[];
  readonly partitionShapes: readonly PartitionShape[];
  readonly diskFaults: readonly DiskFault[];
  readonly diskDelayMs: number;
  /** Delays (ms) the delay fault draws from, one per fault. */
  readonly delayMs: readonly number[];
  /** Jitters (ms) the delay fault draws from; those above the drawn delay are left out. */
  readonly delayJitterMs: readonly number[];
  /** Shares of delayed packets (percent) that are also duplicated, drawn per fault. */
  readonly delayDuplicatePercent: readonly number[];
  readonly timeLimitS: number;
  readonly rate: number;
  readonly concurrency: number;
  readonly recoveryMs: number;
  readonly seed: number;
  readonly testCount: number;
  readonly bug: string | undefined;
  readonly leaveRunning: boolean;
  readonly opTimeoutMs: number;
  readonly keys: number;
  readonly antiEntropyMs: number;
  readonly maxSkewMs: number;
  /** Replication lag bound in calm windows; undefined: 3 × antiEntropyMs, at least 1000 ms. */
  readonly lagBoundMs: number | undefined;
  /** Share of client ops a node that is up must answer. */
  readonly minAvailability: number;
  readonly resultsDir: string;
  readonly name: string | undefined;
  /** The options the system under test owns (its SystemOptionSpec flags, e.g. "etcd-reads"), by flag. */
  readonly systemOptions: Readonly<Record<string, string>>;
}

interface Spec {
  readonly flag: string;
  readonly key: keyof Options | 'help';
  readonly kind: 'int' | 'number' | 'string' | 'boolean';
  readonly unit?: string;
  readonly default?: string;
  readonly description: string;
  /** Turns the raw text into the option's value or throws UsageError; `system` is the run's system under test. */
  readonly parse?: (raw: string, nodes: number, system: System) => unknown;
  /** For a system's own option: the system that owns it. */
  readonly owner?: string;
}

/** `--workload`: one of the system's workloads. */
function workloadOf(raw: string, _nodes: number, system: System): string {
  const names = Object.keys(system.workloads);
  if (!names.includes(raw)) expected('workload', `a workload of the ${system.name} system: one of ${names.join(', ')}`, raw);
  return raw;
}

/** `--bug`: one of the system's planted bugs. */
function bugOf(raw: string, _nodes: number, system: System): string {
  const names = Object.keys(system.bugs ?? {});
  if (names.length === 0) throw new UsageError(`The ${system.name} system has no planted bugs, so \`--bug ${raw}\` cannot apply; drop --bug, or use --system with one that has them (${SYSTEMS.filter((x) => x.bugs).map((x) => x.name).join(', ')})`);
  if (!names.includes(raw)) expected('bug', `a planted bug of the ${system.name} system: one of ${names.join(', ')}`, raw);
  return raw;
}

/** Every option a system owns, as a row of the table. */
function systemOptionSpecs(): Spec[] {
  return SYSTEMS.flatMap((system) =>
    (system.options ?? []).map(
      (o): Spec => ({ flag: o.flag, key: 'systemOptions', kind: 'string', default: o.default, description: `${o.description} (--system ${system.name})`, parse: oneOf(o.flag, o.values), owner: system.name }),
    ),
  );
}

function expected(flag: string, what: string, raw: string): never {
  throw new UsageError(`Expected \`--${flag}\` to be ${what}, got "${raw}"`);
}

function intIn(flag: string, lo: number, hi: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < lo || n > hi) {
      expected(flag, `an integer from ${lo} to ${hi === Number.MAX_SAFE_INTEGER ? 'any size' : hi}`, raw);
    }
    return n;
  };
}

/** A plain decimal number ("12", "-1", "0.5", "2e3"): Number() alone would also take "0x10", "0b1", " " or "Infinity". */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numberIn(flag: string, lo: number, hi: number, exclusiveLo = false) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!DECIMAL.test(raw.trim()) || !Number.isFinite(n) || n > hi || (exclusiveLo ? n <= lo : n < lo)) {
      expected(flag, `a number ${exclusiveLo ? 'above' : 'from'} ${lo}${hi === Infinity ? '' : ` to ${hi}`}`, raw);
    }
    return n;
  };
}

function oneOf(flag: string, allowed: readonly string[]) {
  return (raw: string): string => {
    if (!allowed.includes(raw)) expected(flag, `one of ${allowed.join(', ')}`, raw);
    return raw;
  };
}

/** A non-empty comma list, every item one of `allowed`. */
function listOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (raw: string): T[] => {
    const items = raw.split(',').map((s) => s.trim());
    if (items.some((k) => !(allowed as readonly string[]).includes(k))) expected(flag, `a comma list of ${allowed.join(', ')}`, raw);
    return items as T[];
  };
}

/** A non-empty comma list of numbers from lo to hi ("50,100,200"); `what` names the unit in the message. */
function numberList(flag: string, lo: number, hi: number, what: string) {
  return (raw: string): number[] => {
    const items = raw.split(',').map((s) => s.trim());
    const numbers = items.map(Number);
    if (items.some((s) => !DECIMAL.test(s)) || numbers.some((n) => !Number.isFinite(n) || n < lo || n > hi)) {
      expected(flag, `a comma list of ${what} from ${lo} to ${hi}`, raw);
    }
    return numbers;
  };
}

/**
 * How many nodes one engine may hold (--nodes with --engines): measured on a 2-core, 24 GiB engine
 * (README, Several engines), where the cluster's full-mesh relays and anti-entropy rounds, not memory,
 * set the limit. MAX_NODES: node names and the Cluster's own bound.
 */
export const NODES_PER_ENGINE = 9;
export const MAX_NODES = 26;

/** `--engines`: the addresses, each checked (harness/engine-spec.ts). */
function engineList(raw: string): string[] {
  try {
    return parseEngineList(raw).map((e) => e.url);
  } catch (error) {
    throw new UsageError(`Expected \`--engines\` to be a comma list of unix:///path, tcp://host:port, ssh://[user@]host[:port] or @file: ${(error as Error).message}`);
  }
}

/** `--placement`: round-robin (undefined) or one engine number per node; checked against --nodes and --engines in parseOptions. */
function placementList(raw: string): number[] | undefined {
  if (raw.trim() === 'round-robin') return undefined;
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s) || Number(s) < 1)) expected('placement', 'round-robin or a comma list of engine numbers from 1, one per node (e.g. 1,1,2,3,3)', raw);
  return items.map(Number);
}

/** "--concurrency 10" or "--concurrency 3n" (three per node), as in Jepsen. */
function concurrency(raw: string, nodes: number): number {
  const m = /^(\d+)(n?)$/.exec(raw.trim());
  const n = m ? Number(m[1]) * (m[2] ? nodes : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 1000) expected('concurrency', 'a number of client processes from 1 to 1000, or Kn for K per node (e.g. 2n)', raw);
  return n;
}

function nemesisList(raw: string): string[] {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const allowed = [...NEMESIS_NAMES, 'all', 'none'];
  const bad = names.filter((n) => !allowed.includes(n));
  if (names.length === 0 || bad.length > 0) expected('nemesis', `a comma list of ${allowed.join(', ')}`, raw);
  if ((names.includes('none') || names.includes('all')) && names.length > 1) expected('nemesis', '`none` or `all` alone, or a comma list of fault packages', raw);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) expected('nemesis', `a comma list of distinct fault packages (${twice} is named twice)`, raw);
  return names[0] === 'none' ? [] : names;
}

/** "auto" (undefined: resolved once the packages are known) or seconds in (0, 3600]. */
function nemesisInterval(raw: string): number | undefined {
  if (raw.trim() === 'auto') return undefined;
  const n = Number(raw);
  if (!DECIMAL.test(raw.trim()) || !Number.isFinite(n) || n <= 0 || n > 3600) expected('nemesis-interval', 'auto or a number of seconds above 0 and at most 3600', raw);
  return n;
}

export const OPTION_TABLE: readonly Spec[] = [
  { flag: 'system', key: 'system', kind: 'string', default: DEFAULT_SYSTEM, description: `the system under test: ${SYSTEMS.map((x) => `${x.name} (${x.description})`).join('; ')}`, parse: oneOf('system', SYSTEMS.map((x) => x.name)) },
  { flag: 'nodes', key: 'nodes', kind: 'int', unit: 'count', default: '5', description: `node containers in the cluster (n1..nN): 1 to 9 on one engine; with --engines up to ${NODES_PER_ENGINE} per engine, at most ${MAX_NODES}`, parse: intIn('nodes', 1, 9) },
  {
    flag: 'engines',
    key: 'engines',
    kind: 'string',
    unit: 'engines',
    default: '<$FAULTLINE_ENGINES, else the one engine of DOCKER_HOST>',
    description: 'Docker engines to spread the nodes over, all in one swarm (its overlay network joins them): a comma list of unix:///path, tcp://host:port, ssh://[user@]host[:port], or @file with one per line',
    parse: engineList,
  },
  {
    flag: 'placement',
    key: 'placement',
    kind: 'string',
    unit: 'engines',
    default: 'round-robin',
    description: "with --engines: each node's engine number (1 = the first engine), in node order, e.g. 1,1,2,3,3",
    parse: placementList,
  },
  {
    flag: 'workload',
    key: 'workload',
    kind: 'string',
    default: `<the system's: ${SYSTEMS.map((x) => `${x.defaultWorkload} for ${x.name}`).join(', ')}>`,
    description: `what the clients do: ${SYSTEMS.map((x) => `${Object.keys(x.workloads).join(', ')} (${x.name})`).join('; ')}`,
    parse: workloadOf,
  },
  { flag: 'nemesis', key: 'nemesis', kind: 'string', default: 'none', description: `faults to inject: comma list of ${NEMESIS_NAMES.join(', ')}; or all, none`, parse: nemesisList },
  {
    flag: 'nemesis-interval',
    key: 'nemesisIntervalS',
    kind: 'number',
    unit: 's',
    default: 'auto',
    description: 'time between fault ops, which go in rounds: every package starts and then stops once per round, in a seeded order; auto = time limit / (2 × packages + 3), starting one interval late (a calm start), so one round is due two intervals before the time limit',
    parse: nemesisInterval,
  },
  {
    flag: 'nemesis-targets',
    key: 'nemesisTargets',
    kind: 'string',
    unit: 'kinds',
    default: TARGET_KINDS.join(','),
    description: 'comma list of target kinds each fault draws its nodes from',
    parse: listOf('nemesis-targets', TARGET_KINDS),
  },
  {
    flag: 'partition-shapes',
    key: 'partitionShapes',
    kind: 'string',
    unit: 'shapes',
    default: PARTITION_SHAPES.join(','),
    description: 'comma list of partition shapes the partition fault draws from',
    parse: listOf('partition-shapes', PARTITION_SHAPES),
  },
  {
    flag: 'disk-faults',
    key: 'diskFaults',
    kind: 'string',
    unit: 'faults',
    default: DISK_FAULTS.join(','),
    description: 'comma list of faults the disk package takes in turn, each once per round in a seeded order (lose-unsynced: power loss of unsynced writes; full: ENOSPC; eio-write, eio-fsync: EIO; slow: fsync delayed by --disk-delay-ms); with lose-unsynced listed beside others, their stops end in a power loss too',
    parse: listOf('disk-faults', DISK_FAULTS),
  },
  { flag: 'disk-delay-ms', key: 'diskDelayMs', kind: 'int', unit: 'ms', default: String(DEFAULT_DISK_DELAY_MS), description: "the disk package's slow fault: how long every fsync waits", parse: intIn('disk-delay-ms', 1, 60_000) },
  {
    flag: 'delay-ms',
    key: 'delayMs',
    kind: 'string',
    unit: 'ms',
    default: DEFAULT_DELAYS_MS.join(','),
    description: 'comma list of delays the delay fault draws from, one per fault, held on every link it slows',
    parse: numberList('delay-ms', 1, MAX_DELAY_MS, 'delays in ms'),
  },
  {
    flag: 'delay-jitter-ms',
    key: 'delayJitterMs',
    kind: 'string',
    unit: 'ms',
    default: DEFAULT_JITTERS_MS.join(','),
    description: 'comma list of jitters the delay fault draws from (each packet gets delay ± jitter, uniform, so packets reorder); jitters above the drawn delay are left out',
    parse: numberList('delay-jitter-ms', 0, MAX_DELAY_MS, 'jitters in ms'),
  },
  {
    flag: 'delay-duplicate-percent',
    key: 'delayDuplicatePercent',
    kind: 'string',
    unit: 'percent',
    default: DEFAULT_DUPLICATE_PERCENTS.join(','),
    description: 'comma list of the shares of delayed packets the delay fault also sends twice, drawn per fault',
    parse: numberList('delay-duplicate-percent', 0, 100, 'percentages'),
  },
  { flag: 'time-limit', key: 'timeLimitS', kind: 'number', unit: 's', default: '30', description: 'how long clients run before faults are healed', parse: numberIn('time-limit', 0, 86_400, true) },
  { flag: 'rate', key: 'rate', kind: 'number', unit: 'ops/s', default: '200', description: 'target client ops per second over all processes; 0 = as fast as possible', parse: numberIn('rate', 0, 1_000_000) },
  { flag: 'concurrency', key: 'concurrency', kind: 'string', unit: 'processes', default: '2n', description: 'client processes, each bound to one node; Kn means K per node', parse: concurrency },
  { flag: 'recovery-ms', key: 'recoveryMs', kind: 'int', unit: 'ms', default: '10000', description: 'after healing, how long final reads may wait for the nodes to converge', parse: intIn('recovery-ms', 0, 3_600_000) },
  { flag: 'seed', key: 'seed', kind: 'int', default: 'random', description: 'seed of every random choice; the same seed and options give the same schedule', parse: intIn('seed', 0, Number.MAX_SAFE_INTEGER) },
  { flag: 'test-count', key: 'testCount', kind: 'int', unit: 'runs', default: '1', description: 'run the test this many times (seed, seed+1, ...)', parse: intIn('test-count', 1, 10_000) },
  { flag: 'bug', key: 'bug', kind: 'string', description: `start the nodes with a planted bug of the system: ${SYSTEMS.filter((x) => x.bugs).map((x) => `${Object.keys(x.bugs ?? {}).join(', ')} (${x.name})`).join('; ')}`, parse: bugOf },
  { flag: 'leave-running', key: 'leaveRunning', kind: 'boolean', default: 'false', description: 'keep the cluster after the run for debugging (prints how to remove it)' },
  { flag: 'op-timeout-ms', key: 'opTimeoutMs', kind: 'int', unit: 'ms', default: '1000', description: 'deadline of every client call; a write past it is recorded as info', parse: intIn('op-timeout-ms', 10, 600_000) },
  { flag: 'keys', key: 'keys', kind: 'int', unit: 'count', default: '5', description: 'entities the workload spreads over (fewer keys, more conflicts)', parse: intIn('keys', 1, 100_000) },
  { flag: 'anti-entropy-ms', key: 'antiEntropyMs', kind: 'int', unit: 'ms', default: '500', description: "the nodes' anti-entropy period", parse: intIn('anti-entropy-ms', 10, 600_000) },
  { flag: 'max-skew-ms', key: 'maxSkewMs', kind: 'int', unit: 'ms', default: '1000', description: "the nodes' clock-skew detection threshold", parse: intIn('max-skew-ms', 1, 86_400_000) },
  {
    flag: 'lag-bound-ms',
    key: 'lagBoundMs',
    kind: 'int',
    unit: 'ms',
    default: '<3 × anti-entropy-ms, at least 1000>',
    description: 'in calm windows, every acknowledged write must reach every node within this (lag checker)',
    parse: intIn('lag-bound-ms', 1, 3_600_000),
  },
  {
    flag: 'min-availability',
    key: 'minAvailability',
    kind: 'number',
    unit: 'fraction',
    default: '0.95',
    description: 'share of client ops each node must answer while it is up and not paused (availability checker)',
    parse: numberIn('min-availability', 0, 1),
  },
  { flag: 'results-dir', key: 'resultsDir', kind: 'string', default: 'results', description: 'where run folders are written' },
  { flag: 'name', key: 'name', kind: 'string', default: '<workload>-<nemesis>', description: 'test name (the run folder is results/<name>/<start time>/)', parse: (raw) => (/^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$/.test(raw) ? raw : expected('name', 'letters, digits, . _ - (at most 81, not starting with . _ -)', raw)) },
  ...systemOptionSpecs(),
  { flag: 'help', key: 'help', kind: 'boolean', description: 'show this help' },
];

export function helpText(command = 'npm run jepsen --'): string {
  const rows = OPTION_TABLE.map((s) => {
    const left = `  --${s.flag}${s.kind === 'boolean' ? '' : ` <${s.unit ?? s.kind}>`}`;
    const right = `${s.description}${s.default ? ` (default: ${s.default})` : ''}`;
    return `${left.padEnd(34)} ${right}`;
  });
  return [
    `Usage: ${command} [options]`,
    '',
    'Starts a real cluster of node containers, runs a workload against it while injecting faults,',
    'heals everything, reads the final state from every node, and checks the history.',
    '',
    'Options:',
    ...rows,
    '',
    'Exit codes: 0 valid, 1 invalid, 2 unknown or run error, 254 bad arguments.',
    `Example: ${command} --nemesis partition --time-limit 20 --seed 42`,
  ].join('\n');
}

export function parseOptions(argv: readonly string[]): Options | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv as string[],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(OPTION_TABLE.map((s) => [s.flag, { type: s.kind === 'boolean' ? 'boolean' : 'string' }])),
    });
  } catch (error) {
    // Node's messages name the flag; add what to do about it.
    throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/s, '')}. Run with --help to see every option.`);
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  if (raw.help) return 'help';
  // The engines come before --nodes: how many nodes a run may have depends on how many engines hold them.
  const enginesRaw = raw.engines === undefined ? process.env.FAULTLINE_ENGINES?.trim() || undefined : String(raw.engines);
  const engines = enginesRaw === undefined ? undefined : engineList(enginesRaw);
  const maxNodes = engines ? Math.min(MAX_NODES, NODES_PER_ENGINE * engines.length) : 9;
  let nodes = 5;
  if (raw.nodes !== undefined) {
    const n = Number(raw.nodes);
    if (!/^\d+$/.test(String(raw.nodes).trim()) || n < 1 || n > maxNodes) {
      const more = engines ? ` (${NODES_PER_ENGINE} per engine over ${engines.length} engine${engines.length === 1 ? '' : 's'}, at most ${MAX_NODES})` : '';
      expected('nodes', `an integer from 1 to ${maxNodes}${more}`, String(raw.nodes));
    }
    nodes = n;
  }
  // The system comes first: which workloads, bugs and system options are valid depends on it.
  const system = systemNamed(raw.system === undefined ? DEFAULT_SYSTEM : (oneOf('system', SYSTEMS.map((x) => x.name))(String(raw.system)) as string));
  const out: Record<string, unknown> = {};
  const systemOptions: Record<string, string> = {};
  for (const spec of OPTION_TABLE) {
    if (spec.key === 'help') continue;
    if (spec.key === 'nodes') {
      out.nodes = nodes;
      continue;
    }
    const value = raw[spec.flag];
    if (spec.owner !== undefined) {
      if (spec.owner !== system.name) {
        if (value !== undefined) throw new UsageError(`\`--${spec.flag}\` is an option of --system ${spec.owner}, and this run tests ${system.name}; drop it or add --system ${spec.owner}`);
        continue;
      }
      systemOptions[spec.flag] = spec.parse!(value === undefined ? spec.default! : String(value), nodes, system) as string;
      continue;
    }
    if (spec.kind === 'boolean') {
      out[spec.key] = value === true;
      continue;
    }
    // Only a default can be a placeholder ("<3 × anti-entropy-ms ...>", "random"): a value given on the
    // command line is always parsed, so "--workload '<x>'" or "--seed '<x>'" is refused, not defaulted.
    if (value === undefined) {
      if (spec.default === undefined || spec.default.startsWith('<') || (spec.flag === 'seed' && spec.default === 'random')) {
        out[spec.key] = undefined;
        continue;
      }
    } else if (spec.flag === 'seed' && value === 'random') {
      out[spec.key] = undefined;
      continue;
    }
    const text = value === undefined ? spec.default! : String(value);
    out[spec.key] = spec.parse ? spec.parse(text, nodes, system) : text;
  }
  out.engines = engines;
  const placement = out.placement as number[] | undefined;
  if (placement !== undefined) {
    if (!engines) throw new UsageError('`--placement` places nodes on the engines of `--engines` (or $FAULTLINE_ENGINES); give those, or drop --placement');
    if (placement.length !== nodes) expected('placement', `one engine number per node (${nodes}), in node order`, raw.placement as string);
    const bad = placement.find((e) => e > engines.length);
    if (bad !== undefined) expected('placement', `engine numbers from 1 to ${engines.length} (there are ${engines.length} engines)`, raw.placement as string);
    const crowded = [...new Set(placement)].find((e) => placement.filter((x) => x === e).length > NODES_PER_ENGINE);
    if (crowded !== undefined) expected('placement', `at most ${NODES_PER_ENGINE} nodes per engine`, raw.placement as string);
  }
  out.workload ??= system.defaultWorkload;
  out.systemOptions = systemOptions;
  out.seed ??= Math.floor(Math.random() * 2 ** 31);
  // A drawn delay takes only the jitters up to it (a packet cannot leave before it was sent), so each
  // delay needs at least one: otherwise that draw would silently have none of the jitters asked for.
  const delays = out.delayMs as number[];
  const jitters = out.delayJitterMs as number[];
  const bare = delays.filter((d) => !jitters.some((j) => j <= d));
  if (bare.length > 0) {
    throw new UsageError(
      `Expected every \`--delay-ms\` to be at least one of the \`--delay-jitter-ms\` (a packet gets delay ± jitter), got delay ${bare.join(',')} ms with jitters ${jitters.join(',')} ms; add a smaller jitter (0 for none) or a larger delay`,
    );
  }
  return out as unknown as Options;
}

/** The test's name when --name is not given: <workload>-<nemesis>[-bug-<bug>], prefixed with the system unless it is the default one. */
export function defaultTestName(options: Options): string {
  const nemesis = options.nemesis.length ? options.nemesis.join('_') : 'none';
  const system = options.system === DEFAULT_SYSTEM ? '' : `${options.system}-`;
  return `${system}${options.workload}-${nemesis}${options.bug ? `-bug-${options.bug}` : ''}`;
}

/** The command line that reproduces a run: every option that differs from its default, plus the seed. */
export function reproduceCommand(options: Options): string {
  const args: string[] = [];
  const system = systemNamed(options.system);
  for (const spec of OPTION_TABLE) {
    if (spec.key === 'help' || spec.key === 'seed' || spec.key === 'testCount') continue;
    if (spec.owner !== undefined) {
      const own = options.systemOptions?.[spec.flag];
      if (spec.owner === system.name && own !== undefined && own !== spec.default) args.push(`--${spec.flag}`, own);
      continue;
    }
    const v = options[spec.key];
    // A default is read against this run's node count, so "2n" on 3 nodes is the default 6.
    const d =
      spec.flag === 'workload'
        ? system.defaultWorkload
        : spec.kind === 'boolean'
          ? false
          : spec.default === undefined || spec.default.startsWith('<')
            ? undefined
            : spec.parse
              ? spec.parse(spec.default, options.nodes, system)
              : spec.default;
    if (JSON.stringify(v) === JSON.stringify(d)) continue;
    if (spec.kind === 'boolean') {
      if (v) args.push(`--${spec.flag}`);
    } else if (v !== undefined) {
      args.push(`--${spec.flag}`, Array.isArray(v) ? (v.length ? v.join(',') : 'none') : String(v));
    }
  }
  args.push('--seed', String(options.seed));
  return `npm run jepsen -- ${args.join(' ')}`;
}
