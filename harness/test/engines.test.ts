// `--engines` without an engine: addresses, placement, the option table's checks, the engine clock's
// parsing and the preflight's report. The docker test (engines.docker.test.ts) runs it for real.
import { afterEach, describe, expect, it } from 'vitest';
import { parseEngine, parseEngineList, placeNodes, placementRecord } from '../engine-spec.ts';
import { parseSystemTime } from '../engines.ts';
import { parseOptions, reproduceCommand, UsageError, type Options } from '../options.ts';
import { formatPreflight } from '../preflight.ts';

describe('engine addresses', () => {
  it('reads unix, tcp and ssh addresses as dockerode takes them, and where published ports are dialled', () => {
    expect(parseEngine('unix:///var/run/docker.sock')).toMatchObject({ kind: 'unix', host: '127.0.0.1', dockerOptions: { socketPath: '/var/run/docker.sock' } });
    expect(parseEngine('tcp://10.0.0.2:2375')).toMatchObject({ kind: 'tcp', host: '10.0.0.2', dockerOptions: { host: '10.0.0.2', port: 2375, protocol: 'http' } });
    expect(parseEngine(' ssh://me@box.example:2222 ')).toMatchObject({ url: 'ssh://me@box.example:2222', kind: 'ssh', host: 'box.example', dockerOptions: { protocol: 'ssh', host: 'box.example', port: 2222, username: 'me' } });
    expect(parseEngine('ssh://box')).toMatchObject({ dockerOptions: { port: 22 } });
    expect(parseEngine('tcp://[fd00::2]:2375').host).toBe('fd00::2');
  });

  it.each([
    ['10.0.0.2:2375', 'no scheme; for an engine on TCP write tcp://10.0.0.2:2375'],
    ['http://h:2375', 'unsupported scheme http'],
    ['tcp://h', 'tcp:// needs a port'],
    ['unix://var/run/docker.sock', 'absolute path'],
    ['tcp://h:2375/x', 'a path is only allowed for unix://'],
  ])('refuses %s, saying why', (raw, why) => {
    expect(() => parseEngine(raw)).toThrow(why);
  });

  it('takes a comma list or @file (one per line, # comments), and refuses an engine named twice', () => {
    expect(parseEngineList('tcp://a:2375, tcp://b:2375').map((e) => e.url)).toEqual(['tcp://a:2375', 'tcp://b:2375']);
    const file = '# lab\ntcp://a:2375\n\nssh://me@b  # the second\n';
    expect(parseEngineList('@engines.txt', (p) => (p === 'engines.txt' ? file : '')).map((e) => e.url)).toEqual(['tcp://a:2375', 'ssh://me@b']);
    expect(() => parseEngineList('tcp://a:2375,tcp://a:2375')).toThrow('named twice');
    expect(() => parseEngineList(' , ')).toThrow('at least one engine');
  });
});

describe('placement', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
  it('is round-robin by default, or one engine number per node', () => {
    expect(placeNodes(nodes, 3)).toEqual([0, 1, 2, 0, 1]);
    expect(placeNodes(nodes, 1)).toEqual([0, 0, 0, 0, 0]);
    expect(placeNodes(nodes, 3, [1, 1, 2, 3, 3])).toEqual([0, 0, 1, 2, 2]);
    expect(placementRecord(nodes, placeNodes(nodes, 3))).toEqual({ n1: 'e1', n2: 'e2', n3: 'e3', n4: 'e1', n5: 'e2' });
  });
  it('refuses a list of the wrong length or an engine that does not exist', () => {
    expect(() => placeNodes(nodes, 3, [1, 2])).toThrow('one engine number per node (5)');
    expect(() => placeNodes(nodes, 3, [1, 2, 3, 4, 1])).toThrow('from 1 to 3, got 4');
  });
});

describe('--engines and --placement', () => {
  const saved = process.env.FAULTLINE_ENGINES;
  afterEach(() => {
    if (saved === undefined) delete process.env.FAULTLINE_ENGINES;
    else process.env.FAULTLINE_ENGINES = saved;
  });
  const parse = (args: string[]) => parseOptions(args) as Options;

  it('without engines, options are what they always were: no engines key, at most 9 nodes', () => {
    delete process.env.FAULTLINE_ENGINES;
    const o = parse(['--seed', '1']);
    expect(o.engines).toBeUndefined();
    expect(o.placement).toBeUndefined();
    expect(JSON.parse(JSON.stringify(o))).not.toHaveProperty('engines');
    expect(() => parse(['--nodes', '10'])).toThrow('Expected `--nodes` to be an integer from 1 to 9, got "10"');
  });

  it('with engines, up to 9 nodes per engine (at most 26), and the reproduce command names them', () => {
    const two = ['--engines', 'tcp://a:2375,tcp://b:2375'];
    expect(parse([...two, '--nodes', '18']).nodes).toBe(18);
    expect(() => parse([...two, '--nodes', '19'])).toThrow('Expected `--nodes` to be an integer from 1 to 18 (9 per engine over 2 engines, at most 26), got "19"');
    const four = ['--engines', 'tcp://a:2375,tcp://b:2375,tcp://c:2375,tcp://d:2375'];
    expect(() => parse([...four, '--nodes', '27'])).toThrow('from 1 to 26');
    const o = parse([...two, '--seed', '3']);
    expect(o.engines).toEqual(['tcp://a:2375', 'tcp://b:2375']);
    expect(reproduceCommand(o)).toBe('npm run jepsen -- --engines tcp://a:2375,tcp://b:2375 --seed 3');
    expect(parseOptions(reproduceCommand(o).split(' ').slice(4))).toEqual(o);
  });

  it('reads $FAULTLINE_ENGINES when --engines is not given, and --engines wins over it', () => {
    process.env.FAULTLINE_ENGINES = 'tcp://env:2375';
    expect(parse([]).engines).toEqual(['tcp://env:2375']);
    expect(parse(['--engines', 'unix:///run/d.sock']).engines).toEqual(['unix:///run/d.sock']);
  });

  it.each([
    [['--engines', 'http://x:1'], 'Expected `--engines` to be a comma list'],
    [['--placement', '1,2,1,2,1'], '`--placement` places nodes on the engines of `--engines`'],
    [['--engines', 'tcp://a:1,tcp://b:1', '--placement', '1,2'], 'one engine number per node (5)'],
    [['--engines', 'tcp://a:1,tcp://b:1', '--placement', '1,2,3,1,2'], 'engine numbers from 1 to 2'],
    [['--engines', 'tcp://a:1,tcp://b:1', '--placement', '1,x,1,2,1'], 'round-robin or a comma list of engine numbers'],
    [['--engines', 'tcp://a:1,tcp://b:1', '--nodes', '11', '--placement', '1,1,1,1,1,1,1,1,1,1,2'], 'at most 9 nodes per engine'],
  ])('refuses %j: %s', (args, message) => {
    delete process.env.FAULTLINE_ENGINES;
    expect(() => parseOptions(args)).toThrow(UsageError);
    expect(() => parseOptions(args)).toThrow(message);
  });

  it('takes an explicit placement and keeps it in the reproduce command', () => {
    const o = parse(['--engines', 'tcp://a:1,tcp://b:1', '--placement', '1,1,2,2,1', '--seed', '4']);
    expect(o.placement).toEqual([1, 1, 2, 2, 1]);
    expect(reproduceCommand(o)).toContain('--placement 1,1,2,2,1');
    expect(parse(['--engines', 'tcp://a:1', '--placement', 'round-robin']).placement).toBeUndefined();
  });
});

describe('engine clocks', () => {
  it('reads docker info SystemTime with its nanoseconds and zone', () => {
    expect(parseSystemTime('2026-12-02T13:52:01.318125025Z')).toBeCloseTo(Date.parse('2026-12-02T13:52:01.318Z') + 0.125025, 6);
    expect(parseSystemTime('2026-12-02T14:52:01+01:00')).toBe(Date.parse('2026-12-02T13:52:01Z'));
    expect(() => parseSystemTime(undefined)).toThrow('RFC 3339');
  });
});

describe('the preflight report', () => {
  it('prints one line per check, the fix under a failed one, and the verdict', () => {
    const report = formatPreflight([
      { engine: 'e1', url: 'tcp://a:2375', checks: [{ name: 'reachable', ok: true, detail: 'Docker 20.10.24' }, { name: 'swarm', ok: true, detail: 'manager' }] },
      { engine: 'e2', url: 'ssh://me@b', checks: [{ name: 'reachable', ok: false, detail: 'connect ECONNREFUSED', fix: 'check ssh' }] },
    ]);
    expect(report.ok).toBe(false);
    expect(report.text).toBe(
      ['e1 tcp://a:2375', '  ok      reachable: Docker 20.10.24', '  ok      swarm: manager', 'e2 ssh://me@b', '  MISSING reachable: connect ECONNREFUSED', '          fix: check ssh', 'not ready: 1 check failed (see MISSING above)'].join('\n'),
    );
    expect(formatPreflight([{ engine: 'e1', url: 'unix:///x', checks: [{ name: 'reachable', ok: true, detail: 'up' }] }])).toMatchObject({ ok: true, text: expect.stringContaining('ready: all 1 engines passed every check') });
  });
});
