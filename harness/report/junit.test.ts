// junit.xml: one test case per checker; invalid → failure with the anomaly summary, unknown → error,
// everything XML-escaped.
import { describe, expect, it } from 'vitest';
import type { RunResults } from '../results.ts';
import { escapeXml, renderJUnit } from './junit.ts';

const base: RunResults = {
  formatVersion: 1,
  valid: true,
  test: { name: 'lww-partition', seed: 42, workload: 'lww', nemesis: ['partition'], nodes: ['n1', 'n2'], startTime: '2026-11-22T15:30:12.345Z', command: 'npm run jepsen -- --seed 42 & more' },
  checkers: { convergence: { valid: true }, 'lost-writes': { valid: true } },
  durationMs: 61_500,
  opCounts: { ok: 1, fail: 0, info: 0 },
};

describe('renderJUnit', () => {
  it('writes a passing test case per checker for a valid run', () => {
    const xml = renderJUnit(base);
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="faultline" tests="2" failures="0" errors="0" time="61.500">/);
    expect(xml).toContain('<testsuite name="faultline.lww-partition" tests="2" failures="0" errors="0" skipped="0" time="61.500" timestamp="2026-11-22T15:30:12">');
    expect(xml).toContain('<testcase classname="faultline.lww-partition" name="convergence" time="0" />');
    expect(xml).toContain('<testcase classname="faultline.lww-partition" name="lost-writes" time="0" />');
    expect(xml).toContain('<property name="command" value="npm run jepsen -- --seed 42 &amp; more" />');
    expect(xml).not.toContain('<failure');
  });

  it('turns invalid checkers into failures with the anomaly summary and unknown ones into errors', () => {
    const xml = renderJUnit({
      ...base,
      valid: false,
      checkers: {
        convergence: { valid: true },
        'lost-writes': {
          valid: false,
          anomalies: [
            { type: 'lost', ops: [12, 40], message: 'write "p1-3" to <e1/pos> is in no final state & was acked' },
            { type: 'lost', ops: [13], message: 'second' },
            { type: 'lost-update', ops: [], message: 'third' },
          ],
        },
        linearizability: { valid: 'unknown', error: 'Budget exceeded for key e4/pos' },
      },
      error: 'heal failed on n3: iptables -F exited 1',
    });
    expect(xml).toContain('tests="4" failures="1" errors="2"');
    expect(xml).toContain('<failure message="3 anomalies: 2 lost, 1 lost-update" type="lost">');
    expect(xml).toContain('lost: write &quot;p1-3&quot; to &lt;e1/pos&gt; is in no final state &amp; was acked (ops 12, 40)\nlost: second (ops 13)\nlost-update: third</failure>');
    expect(xml).toContain('<error message="Budget exceeded for key e4/pos" type="unknown">error: Budget exceeded for key e4/pos</error>');
    expect(xml).toContain('<testcase classname="faultline.lww-partition" name="run" time="0">');
    expect(xml).toContain('<error message="heal failed on n3: iptables -F exited 1" type="run-error">');
    // Every tag opened is closed: a crude but real well-formedness check for this flat document.
    for (const tag of ['testsuites', 'testsuite', 'properties', 'failure', 'error']) {
      expect(xml.match(new RegExp(`<${tag}[ >]`, 'g'))?.length).toBe(xml.match(new RegExp(`</${tag}>`, 'g'))?.length);
    }
  });

  it('lists at most 100 anomalies and counts the rest', () => {
    const anomalies = Array.from({ length: 130 }, (_, i) => ({ type: 'duplicated', ops: [i], message: `m${i}` }));
    const xml = renderJUnit({ ...base, valid: false, checkers: { idempotency: { valid: false, anomalies } } });
    expect(xml).toContain('duplicated: m99 (ops 99)\n… and 30 more in results.json</failure>');
    expect(xml).not.toContain('m100 ');
  });

  it('escapes markup and replaces characters XML cannot hold', () => {
    expect(escapeXml(`a<b>&"c"'d'\u0000\u0007e\u{1F600}`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\uFFFD\uFFFDe\u{1F600}');
  });
});
