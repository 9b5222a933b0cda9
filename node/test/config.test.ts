// Tests of the node's configuration parsing (node/config.ts): flags, env variables, precedence, errors.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.ts';

describe('parseConfig', () => {
  it('reads flags, falls back to FAULTLINE_* variables, and lets the flag win', () => {
    const c = parseConfig(['--id', 'n1', '--peers', 'n2=n2:7000, n3=10.0.0.3:7001', '--anti-entropy-ms=250'], {
      FAULTLINE_DATA_DIR: '/data',
      FAULTLINE_ANTI_ENTROPY_MS: '900',
      FAULTLINE_BUG: 'no-dedupe',
    });
    expect(c).toMatchObject({
      id: 'n1',
      listenHost: '0.0.0.0',
      listenPort: 7000,
      dataDir: '/data',
      antiEntropyMs: 250,
      maxSkewMs: 1000,
      bug: 'no-dedupe',
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
  ])('rejects %j', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});
