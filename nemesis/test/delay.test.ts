// The delay fault's pure parts: link shapes from the seed, validation with messages that name the
// problem, the iptables rules and faultline-delay's config per sender, the read-back comparison, and
// how the report describes the links. The packets themselves are in delay.docker.test.ts.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../harness/rng.ts';
import { summarizeNemesis } from '../../harness/report/model.ts';
import type { ClusterControl } from '../types.ts';
import {
  delayConfig,
  delayLinks,
  delayMismatches,
  delayNodes,
  delayPackage,
  delayRules,
  delayStartOp,
  describeDelayLinks,
  expectedRttRiseMs,
  linkShapes,
  parseReadBack,
  validateDelayLinks,
  DELAY_QUEUE,
  type DelayLinks,
  type DelayReadBack,
} from '../delay.ts';
import { faultPackageNames } from '../index.ts';

const nodes = ['n1', 'n2', 'n3'];
const d100 = { delayMs: 100, jitterMs: 0, duplicatePercent: 0 };
const cluster = { nodes: nodes.map((name, i) => ({ name, ip: `10.9.0.${i + 2}` })) } as unknown as ClusterControl;

describe('delay links (pure data)', () => {
  it('one-link slows one sender towards one peer, the rest fine', () => {
    const links = delayLinks('one-link', nodes, ['n2'], d100, createRng(1));
    expect(Object.keys(links)).toEqual(['n2']);
    expect(Object.keys(links.n2)).toHaveLength(1);
    expect(Object.keys(links.n2)[0]).not.toBe('n2');
  });

  it('outbound slows what the targets send (one-way slowness), both-ways a slow node', () => {
    expect(delayLinks('outbound', nodes, ['n1'], d100, createRng(1))).toEqual({ n1: { n2: d100, n3: d100 } });
    expect(delayLinks('both-ways', nodes, ['n1'], d100, createRng(1))).toEqual({ n1: { n2: d100, n3: d100 }, n2: { n1: d100 }, n3: { n1: d100 } });
  });

  it('draws the same start op from the same seed, and every shape from some seed', () => {
    const options = { nodes, delay: { delaysMs: [100, 200], jittersMs: [0, 150], duplicatePercents: [0, 5] } };
    expect(delayStartOp(options, createRng(7))).toEqual(delayStartOp(options, createRng(7)));
    const shapes = new Set<unknown>();
    for (let seed = 0; seed < 50; seed++) {
      const op = delayStartOp(options, createRng(seed));
      shapes.add(op.value.shape);
      const links = op.value.links as DelayLinks;
      validateDelayLinks(nodes, links);
      expect(op.value.nodes).toEqual(delayNodes(links));
      // A jitter above the drawn delay is never drawn.
      for (const peers of Object.values(links)) for (const d of Object.values(peers)) expect(d.jitterMs).toBeLessThanOrEqual(d.delayMs);
    }
    expect([...shapes].sort()).toEqual([...linkShapes].sort());
  });

  it('refuses bad links with a message naming the link and the fix', () => {
    expect(() => validateDelayLinks(nodes, { n9: { n1: d100 } })).toThrow('Delay links name unknown node "n9"; the cluster has: n1, n2, n3');
    expect(() => validateDelayLinks(nodes, { n1: { n1: d100 } })).toThrow('delay its packets to itself');
    expect(() => validateDelayLinks(nodes, { n1: { n2: { ...d100, delayMs: -1 } } })).toThrow('the delay of n1→n2: expected delayMs from 0 to 10000, got -1');
    expect(() => validateDelayLinks(nodes, { n1: { n2: { ...d100, jitterMs: 150 } } })).toThrow('expected jitterMs from 0 to its delayMs (100), got 150');
    expect(() => validateDelayLinks(nodes, { n1: { n2: { ...d100, duplicatePercent: 200 } } })).toThrow('expected duplicatePercent from 0 to 100');
  });

  it('is registered once, under the name users expect', () => {
    expect(faultPackageNames).toContain('delay');
    expect(delayPackage({ nodes }).name).toBe('delay');
  });
});

describe('what a sender is given', () => {
  const peers = { n3: { delayMs: 100, jitterMs: 25, duplicatePercent: 1.5 }, n2: d100 };

  it('queues only packets to the delayed peers, never duplicates, and passes them if the program is gone', () => {
    expect(delayRules(cluster, peers)).toEqual([
      ['-d', '10.9.0.3/32', '-m', 'mark', '!', '--mark', '0xfa17', '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE), '--queue-bypass'],
      ['-d', '10.9.0.4/32', '-m', 'mark', '!', '--mark', '0xfa17', '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE), '--queue-bypass'],
    ]);
  });

  it("gives faultline-delay µs and ‰ per destination address", () => {
    expect(delayConfig(cluster, peers)).toEqual(['10.9.0.3 100000 0 0', '10.9.0.4 100000 25000 15']);
  });

  it('expects a round trip to rise by both directions, less their jitter', () => {
    const links: DelayLinks = { n1: { n2: { delayMs: 100, jitterMs: 20, duplicatePercent: 0 } }, n2: { n1: d100 } };
    expect(expectedRttRiseMs(links, 'n1', 'n2')).toBe(180);
    expect(expectedRttRiseMs(links, 'n1', 'n3')).toBe(0);
  });
});

describe('read-back', () => {
  const stats = (links: { ip: string; delayUs: number; jitterUs: number; duplicatePermille: number }[], pid = 42) =>
    JSON.stringify({ pid, final: false, packets: 0, unmatched: 0, held: 0, maxHeld: 0, reordered: 0, duplicated: 0, duplicateErrors: 0, verdictErrors: 0, cpuUserUs: 0, cpuSysUs: 0, links: links.map((l) => ({ ...l, packets: 0, reordered: 0, duplicated: 0, maxDelayUs: 0 })) });
  const rule = (ip: string) => `-A FAULTLINE-DELAY -d ${ip}/32 -m mark ! --mark 0xfa17 -j NFQUEUE --queue-num ${DELAY_QUEUE} --queue-bypass`;
  const shown = (rules: string[], pids: string, statsText: string, log = ''): DelayReadBack => parseReadBack(`-N FAULTLINE-DELAY\n${rules.join('\n')}\n---\n${pids}\n---\n${statsText}\n---\n${log}`);

  it('matches when the rules and the live program hold exactly the links', () => {
    const found = shown([rule('10.9.0.3')], '42', stats([{ ip: '10.9.0.3', delayUs: 100000, jitterUs: 0, duplicatePermille: 0 }]));
    expect(found.pids).toEqual([42]);
    expect(delayMismatches(cluster, 'n1', { n2: d100 }, found)).toEqual([]);
  });

  it('names what differs: a missing rule, a program holding other links, a dead program with its log', () => {
    expect(delayMismatches(cluster, 'n1', { n2: d100, n3: d100 }, shown([rule('10.9.0.3')], '42', stats([{ ip: '10.9.0.3', delayUs: 100000, jitterUs: 0, duplicatePermille: 0 }]))).join()).toContain(
      'n1: the delay chain queues packets to [10.9.0.3/32], expected [10.9.0.3/32, 10.9.0.4/32]',
    );
    expect(delayMismatches(cluster, 'n1', { n2: d100 }, shown([rule('10.9.0.3')], '42', stats([{ ip: '10.9.0.3', delayUs: 50000, jitterUs: 0, duplicatePermille: 0 }]))).join()).toContain(
      'faultline-delay holds [10.9.0.3 50000 0 0], expected [10.9.0.3 100000 0 0]',
    );
    expect(delayMismatches(cluster, 'n1', { n2: d100 }, shown([rule('10.9.0.3')], '', '', 'faultline-delay: cannot bind queue 4017')).join()).toContain('expected one faultline-delay running, found 0 (its log: faultline-delay: cannot bind queue 4017)');
  });

  it('after a stop or heal, wants no rule and no program', () => {
    expect(delayMismatches(cluster, 'n1', undefined, shown([], '', ''))).toEqual([]);
    expect(delayMismatches(cluster, 'n1', undefined, shown([rule('10.9.0.3')], '42', '')).sort()).toEqual([
      'n1: faultline-delay is still running (pid 42)',
      'n1: the delay chain queues packets to [10.9.0.3/32], expected []',
    ]);
  });
});

describe('in the report', () => {
  it("labels a delay window with every link's delay, jitter and duplication", () => {
    const links: DelayLinks = { n1: { n3: { delayMs: 100, jitterMs: 25, duplicatePercent: 1 } }, n2: { n1: d100 } };
    expect(describeDelayLinks(links)).toBe('n1→n3 100±25ms dup 1%, n2→n1 100ms');
    expect(summarizeNemesis({ nodes: ['n1', 'n2', 'n3'], links })).toBe('n1→n3 100±25ms dup 1%, n2→n1 100ms');
    // packet's links are a grudge (node → peers): still summarised by its nodes.
    expect(summarizeNemesis({ nodes: ['n1'], links: { n1: ['n2'] } })).toBe('n1');
  });
});

describe('in the report\'s fault section', () => {
  it('lists each delay start link by link, with the round trip its sender measured', async () => {
    const { delayViews } = await import('../../harness/report/faults.ts');
    const links: DelayLinks = { n1: { n2: d100 } };
    const history = [
      { index: 0, time: 1e9, process: 'nemesis', type: 'info', f: 'start-delay', value: { nodes: ['n1', 'n2'], links, rttMs: { n1: { n2: 101.5 } }, verified: true } },
      { index: 1, time: 2e9, process: 'nemesis', type: 'info', f: 'stop-delay', value: { nodes: ['n1', 'n2'], links: {} } },
    ] as unknown as Parameters<typeof delayViews>[0];
    expect(delayViews(history)).toEqual([{ index: 0, timeMs: 1000, links: [{ from: 'n1', to: 'n2', delayMs: 100, jitterMs: 0, duplicatePercent: 0, rttMs: 101.5 }], verified: true }]);
  });
});
