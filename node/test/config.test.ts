// Tests of the node's configuration parsing (node/config.ts): flags, env variables, precedence, errors.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, SERVICE_NODE_FLAGS, parseConfig } from '../config.ts';

describe('parseConfig', () => {
  it('reads flags, falls back to FAULTLINE_* variables, and lets the flag win', () => {
    const c = parseConfig(['--id', 'n1', '--peers', 'n2=n2:7000, n3=10.0.0.3:7001', '--anti-entropy-ms=250'], {
      FAULTLINE_DATA_DIR: '/data',
      FAULTLINE_ANTI_ENTROPY_MS: '900',
      FAULTLINE_BUG: 'no-dedupe',
      FAULTLINE_MESH_SECRET: 'a-cluster-secret-0123456789',
    });
    expect(c).toMatchObject({
      id: 'n1',
      listenHost: '0.0.0.0',
      listenPort: 7000,
      dataDir: '/data',
      antiEntropyMs: 250,
      maxSkewMs: 1000,
      bug: 'no-dedupe',
      meshSecret: 'a-cluster-secret-0123456789',
      peers: [
        { id: 'n2', host: 'n2', port: 7000 },
        { id: 'n3', host: '10.0.0.3', port: 7001 },
      ],
    });
  });

  it.each([
    [['--data-dir', '/d'], /`--id`/],
    [['--id', 'n1'], /Missing `--data-dir`/],
    [['--id', 'n1', '--data-dir', '/d', '--peers', 'n2'], /id=host:port, got "n2"/],
    [['--id', 'n1', '--data-dir', '/d', '--peers', 'n1=h:1'], /must not list this node itself/],
    [['--id', 'n1', '--data-dir', '/d', '--peers', 'n2=h:1,n2=h:2'], /lists "n2" twice/],
    [['--id', 'n1', '--data-dir', '/d', '--listen', 'nope'], /`--listen` to be host:port/],
    [['--id', 'n1', '--data-dir', '/d', '--max-skew-ms', '0'], /`--max-skew-ms` to be an integer from 1/],
    [['--id', 'n1', '--data-dir', '/d', '--bug', 'nope'], /valid names: no-anti-entropy/],
    [['--id', 'n1', '--data-dir', '/d', '--colour', 'red'], /Unknown option `--colour`/],
    [['--id', 'n:1', '--data-dir', '/d'], /`--id`/],
    [['--id', 'n1', '--data-dir', '/d', '--peers', 'n2=h:1'], /FAULTLINE_MESH_SECRET is not set/],
    [['--id', 'n1', '--data-dir', '/d', '--max-skew-ms', '5000', '--max-offset-ms', '4000'], /`--max-offset-ms` \(4000\) to be at least `--max-skew-ms` \(5000\)/],
    [['--id', 'n1', '--data-dir', '/d', '--mesh-secret', 'x'.repeat(20)], /is not a flag: pass it in FAULTLINE_MESH_SECRET/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});

describe('--max-offset-ms', () => {
  it('defaults to 600 s, well above the 240 s two nodes differ by under the clock nemesis, and to a larger --max-skew-ms', () => {
    expect(parseConfig(['--id', 'n1', '--data-dir', '/d'], {}).maxOffsetMs).toBe(600_000);
    expect(parseConfig(['--id', 'n1', '--data-dir', '/d', '--max-skew-ms', '3600000'], {}).maxOffsetMs).toBe(3_600_000);
    expect(parseConfig(['--id', 'n1', '--data-dir', '/d', '--max-offset-ms', '300000'], {}).maxOffsetMs).toBe(300_000);
  });
});

describe('SERVICE_NODE_FLAGS', () => {
  // The flags are repeated where the service is launched outside TypeScript; all launchers must agree.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const flags = SERVICE_NODE_FLAGS.join(' ');

  it('are what the container entrypoint passes to node', () => {
    const script = readFileSync(join(root, 'harness/docker/entrypoint.sh'), 'utf8');
    expect(script).toMatch(new RegExp(`^exec node ${flags} /opt/faultline/node\\.mjs "\\$@"$`, 'm'));
  });

  it('are what `npm run node` passes to node', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.node).toBe(`node ${flags} node/main.ts`);
  });

  it('are accepted by this node binary', () => {
    const run = spawnSync(process.execPath, [...SERVICE_NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
