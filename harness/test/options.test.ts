import { describe, expect, it } from 'vitest';
import { helpText, OPTION_TABLE, parseOptions, reproduceCommand, UsageError, type Options } from '../options.ts';

const parse = (...args: string[]) => parseOptions(args) as Options;

describe('options', () => {
  it('has working defaults: --nemesis partition alone is enough', () => {
    const o = parse('--nemesis', 'partition');
    expect(o).toMatchObject({ nodes: 5, workload: 'lww', nemesis: ['partition'], nemesisIntervalS: undefined, timeLimitS: 30, concurrency: 10, leaveRunning: false, testCount: 1 });
    expect(Number.isSafeInteger(o.seed)).toBe(true);
    expect(parse().nemesis).toEqual([]);
  });

  it('takes --nemesis-interval auto (the default) or seconds, and reproduces only an explicit one', () => {
    expect(parse('--nemesis-interval', 'auto').nemesisIntervalS).toBeUndefined();
    expect(parse('--nemesis-interval', '2.5').nemesisIntervalS).toBe(2.5);
    expect(reproduceCommand(parse('--nemesis', 'all', '--seed', '3'))).toBe('npm run jepsen -- --nemesis all --seed 3');
    expect(reproduceCommand(parse('--nemesis', 'all', '--nemesis-interval', '4', '--seed', '3'))).toBe('npm run jepsen -- --nemesis all --nemesis-interval 4 --seed 3');
    expect(() => parseOptions(['--nemesis-interval', '0'])).toThrow('Expected `--nemesis-interval` to be auto or a number of seconds above 0 and at most 3600, got "0"');
    expect(() => parseOptions(['--nemesis-interval', 'soon'])).toThrow(UsageError);
  });

  it('parses fault target kinds and partition shapes as lists', () => {
    const o = parse('--nemesis-targets', 'all', '--partition-shapes', 'halves,complete');
    expect(o.nemesisTargets).toEqual(['all']);
    expect(o.partitionShapes).toEqual(['halves', 'complete']);
    expect(parse().partitionShapes).toHaveLength(7);
  });

  it('takes placeholders only as defaults, and numbers only in decimal', () => {
    const o = parse();
    expect(o.lagBoundMs).toBeUndefined();
    expect(o.name).toBeUndefined();
    expect(Number.isSafeInteger(parse('--seed', 'random').seed)).toBe(true);
    expect(parse('--rate', '1e3').rate).toBe(1000);
    expect(parse('--rate', '0.5').rate).toBe(0.5);
    expect(parse('--nemesis', 'partition,clock').nemesis).toEqual(['partition', 'clock']);
  });

  it("takes the system under test, its default workload and its own options, and reproduces them", () => {
    expect(parse()).toMatchObject({ system: 'store-mesh', workload: 'lww', systemOptions: {} });
    const e = parse('--system', 'etcd', '--nemesis', 'partition', '--seed', '4');
    expect(e).toMatchObject({ system: 'etcd', workload: 'cas-register', systemOptions: { 'etcd-reads': 'linearizable' } });
    expect(reproduceCommand(e)).toBe('npm run jepsen -- --system etcd --nemesis partition --seed 4');
    const s = parse('--system', 'etcd', '--etcd-reads', 'serializable', '--seed', '4');
    expect(s.systemOptions).toEqual({ 'etcd-reads': 'serializable' });
    expect(reproduceCommand(s)).toBe('npm run jepsen -- --system etcd --etcd-reads serializable --seed 4');
  });

  it('expands Kn concurrency per node', () => {
    expect(parse('--nodes', '3', '--concurrency', '3n').concurrency).toBe(9);
    expect(parse('--concurrency', '7').concurrency).toBe(7);
  });

  it.each([
    [['--nodes', 'x'], 'Expected `--nodes` to be an integer from 1 to 9, got "x"'],
    [['--nodes', '12'], 'Expected `--nodes` to be an integer from 1 to 9, got "12"'],
    [['--nemesis', 'partition,flood'], 'Expected `--nemesis` to be a comma list of partition, clock, kill, pause, packet, delay, netem, disk, all, none, got "partition,flood"'],
    [['--nemesis', 'all,clock'], 'Expected `--nemesis` to be `none` or `all` alone'],
    [['--rate=-1'], 'Expected `--rate` to be a number from 0'],
    [['--time-limit', '0'], 'Expected `--time-limit` to be a number above 0'],
    [['--workload', 'bank'], 'Expected `--workload` to be a workload of the store-mesh system: one of lww, counter, set, all, got "bank"'],
    [['--bug', 'typo'], 'Expected `--bug` to be a planted bug of the store-mesh system: one of no-anti-entropy'],
    [['--system', 'etcd', '--workload', 'lww'], 'Expected `--workload` to be a workload of the etcd system: one of cas-register, got "lww"'],
    [['--system', 'etcd', '--bug', 'no-dedupe'], 'The etcd system has no planted bugs, so `--bug no-dedupe` cannot apply'],
    [['--system', 'mysql'], 'Expected `--system` to be one of store-mesh, etcd, got "mysql"'],
    [['--etcd-reads', 'serializable'], '`--etcd-reads` is an option of --system etcd, and this run tests store-mesh'],
    [['--system', 'etcd', '--etcd-reads', 'stale'], 'Expected `--etcd-reads` to be one of linearizable, serializable, got "stale"'],
    [['--concurrency', '0'], 'Expected `--concurrency` to be a number of client processes'],
    [['--nemesis-targets', 'one,most'], 'Expected `--nemesis-targets` to be a comma list of one, minority, majority, all, random, got "one,most"'],
    [['--partition-shapes', 'halves,'], 'Expected `--partition-shapes` to be a comma list of halves, isolate, majority-minority, bridge, majorities-ring, asymmetric, complete, got "halves,"'],
    [['--workload', '<x>'], 'Expected `--workload` to be a workload of the store-mesh system: one of lww, counter, set, all, got "<x>"'],
    [['--seed', '<x>'], 'Expected `--seed` to be an integer from 0 to any size, got "<x>"'],
    [['--lag-bound-ms', '<3 × anti-entropy-ms, at least 1000>'], 'Expected `--lag-bound-ms` to be an integer from 1 to 3600000'],
    [['--name', '<workload>-<nemesis>'], 'Expected `--name` to be letters, digits'],
    [['--rate', '0x10'], 'Expected `--rate` to be a number from 0 to 1000000, got "0x10"'],
    [['--time-limit', '0b11'], 'Expected `--time-limit` to be a number above 0'],
    [['--min-availability', ' '], 'Expected `--min-availability` to be a number from 0 to 1'],
    [['--nemesis-interval', '0x2'], 'Expected `--nemesis-interval` to be auto or a number of seconds'],
    [['--nemesis', 'partition,partition'], 'Expected `--nemesis` to be a comma list of distinct fault packages (partition is named twice), got "partition,partition"'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['--nodes'], "Option '--nodes <value>' argument missing"],
  ])('rejects %j with a message naming the flag and what is allowed', (args, message) => {
    expect(() => parseOptions(args)).toThrow(UsageError);
    expect(() => parseOptions(args)).toThrow(message);
  });

  it('generates --help from the table, with units and defaults', () => {
    const help = helpText();
    for (const spec of OPTION_TABLE) expect(help).toContain(`--${spec.flag}`);
    expect(help).toContain('--time-limit <s>');
    expect(help).toContain('(default: 30)');
    expect(parseOptions(['--help'])).toBe('help');
  });

  it('builds a reproduce command that parses back to the same options', () => {
    const o = parse('--nemesis', 'partition,clock', '--nodes', '3', '--seed', '77', '--bug', 'no-dedupe', '--leave-running');
    const cmd = reproduceCommand(o);
    expect(cmd).toBe('npm run jepsen -- --nodes 3 --nemesis partition,clock --bug no-dedupe --leave-running --seed 77');
    expect(parse(...cmd.split(' ').slice(4))).toEqual(o);
  });
});
