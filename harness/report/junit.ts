// junit.xml for CI systems: one test case per checker. An invalid checker is a <failure> carrying its
// anomaly summary; an unknown one (it threw, ran out of budget, or the run broke) is an <error>, since
// the harness could not decide. A run that failed outright adds a "run" test case with that error.
import type { CheckResult } from '../../checkers/types.ts';
import type { RunResults } from '../results.ts';

/** Anomalies listed in a failure's body; the rest are counted. */
const maxListed = 100;

/** Escapes text for XML content and attributes, dropping characters XML 1.0 cannot hold at all. */
export function escapeXml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function summary(r: CheckResult): { message: string; type: string; body: string } {
  const anomalies = r.anomalies ?? [];
  const byType = new Map<string, number>();
  for (const a of anomalies) byType.set(a.type, (byType.get(a.type) ?? 0) + 1);
  const counts = [...byType].map(([t, n]) => `${n} ${t}`).join(', ');
  const lines = anomalies.slice(0, maxListed).map((a) => `${a.type}: ${a.message}${a.ops.length ? ` (ops ${a.ops.slice(0, 20).join(', ')}${a.ops.length > 20 ? ', …' : ''})` : ''}`);
  if (anomalies.length > maxListed) lines.push(`… and ${anomalies.length - maxListed} more in results.json`);
  if (r.error) lines.unshift(`error: ${r.error}`);
  const message = r.error ?? (anomalies.length ? `${anomalies.length} ${anomalies.length === 1 ? 'anomaly' : 'anomalies'}: ${counts}` : 'invalid without anomalies');
  return { message, type: [...byType.keys()][0] ?? (r.valid === 'unknown' ? 'unknown' : 'invalid'), body: lines.join('\n') };
}

/** Renders junit.xml for a run's results. */
export function renderJUnit(results: RunResults): string {
  const suite = `faultline.${results.test.name}`;
  const cases: string[] = [];
  let failures = 0;
  let errors = 0;
  const testcase = (name: string, inner: string) =>
    `    <testcase classname="${escapeXml(suite)}" name="${escapeXml(name)}" time="0"${inner ? `>\n${inner}\n    </testcase>` : ' />'}`;
  for (const [name, r] of Object.entries(results.checkers)) {
    if (r.valid === true) {
      cases.push(testcase(name, ''));
      continue;
    }
    const s = summary(r);
    const tag = r.valid === false ? 'failure' : 'error';
    if (r.valid === false) failures++;
    else errors++;
    cases.push(testcase(name, `      <${tag} message="${escapeXml(s.message)}" type="${escapeXml(s.type)}">${escapeXml(s.body)}</${tag}>`));
  }
  if (results.error) {
    errors++;
    cases.push(testcase('run', `      <error message="${escapeXml(results.error)}" type="run-error">${escapeXml(results.error)}</error>`));
  }
  const t = results.test;
  const props = [
    ['seed', String(t.seed)],
    ['workload', t.workload],
    ['nemesis', t.nemesis.join(',') || 'none'],
    ['nodes', t.nodes.join(',')],
    ['valid', String(results.valid)],
    ...(t.command ? [['command', t.command]] : []),
  ]
    .map(([k, v]) => `      <property name="${escapeXml(k)}" value="${escapeXml(v)}" />`)
    .join('\n');
  const seconds = (results.durationMs / 1000).toFixed(3);
  const counts = `tests="${cases.length}" failures="${failures}" errors="${errors}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="faultline" ${counts} time="${seconds}">
  <testsuite name="${escapeXml(suite)}" ${counts} skipped="0" time="${seconds}" timestamp="${escapeXml(t.startTime.replace(/\.\d+Z$/, ''))}">
    <properties>
${props}
    </properties>
${cases.join('\n')}
  </testsuite>
</testsuites>
`;
}
