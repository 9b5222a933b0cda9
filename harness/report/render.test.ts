// report.html as text: the verdict per checker, anomaly links to the ops that prove them, the
// embedded timeline data (partition window, clock offsets), escaping, and no reference to the network.
import { describe, expect, it } from 'vitest';
import { syntheticRun } from './fixtures.ts';
import { escapeHtml, renderReport, reportDataFromHtml } from './render.ts';

describe('renderReport', () => {
  const run = syntheticRun({ ops: 400, workers: 8 });
  const html = renderReport(run);
  const { model } = reportDataFromHtml(html);

  it('puts the overall verdict at the top and one block per checker', () => {
    expect(html).toMatch(/<title>lww-synthetic · INVALID · faultline<\/title>/);
    const header = html.slice(html.indexOf('<header'), html.indexOf('</header>'));
    expect(header).toContain('<span class="badge invalid">INVALID</span>');
    expect(header).toContain('npm run jepsen -- --workload lww --nodes 5 --concurrency 8 --nemesis partition,clock --seed 42');
    for (const [name, verdict] of [['convergence', 'invalid'], ['lost-writes', 'invalid'], ['linearizability', 'unknown'], ['perf', 'valid']]) {
      expect(html).toMatch(new RegExp(`<div class="checker ${verdict}" id="checker-${name}">`));
    }
    expect(html).toContain('Budget exceeded: key e4/pos needed more than 2000 ms of search');
    expect(html).toContain('latency-p99-ms: <b>9.4</b>');
  });

  it('marks an advisory result as not part of the verdict', () => {
    const advisoryRun = { ...run, results: { ...run.results, checkers: { ...run.results.checkers, linearizability: { valid: false as const, advisory: true, expected: 'AP store: not linearizable under partitions', anomalies: [] } } } };
    const page = renderReport(advisoryRun);
    const block = page.slice(page.indexOf('id="checker-linearizability"'), page.indexOf('id="checker-perf"'));
    expect(page).toMatch(/<div class="checker advisory" id="checker-linearizability">/);
    expect(block).toContain('<span class="badge advisory" title="reported, not part of the verdict">ADVISORY</span>');
    expect(block).toContain('not part of the verdict: AP store: not linearizable under partitions');
    expect(html).not.toContain('class="badge advisory"');
  });

  it('links every anomaly to the ops that prove it', () => {
    const lost = run.results.checkers['lost-writes'].anomalies![0];
    const block = html.slice(html.indexOf('id="checker-lost-writes"'), html.indexOf('id="checker-linearizability"'));
    for (const i of lost.ops) expect(block).toContain(`href="#op-${i}"`);
    const written = run.history[lost.ops[0]];
    // The link's title says what the op was, so a reader can hover before jumping.
    expect(block).toContain(`title="p${written.process} ${written.node} ok write `);
    const nonConverged = run.results.checkers.convergence.anomalies![0];
    expect(nonConverged.ops).toHaveLength(5);
    for (const i of nonConverged.ops) expect(html).toContain(`href="#op-${i}"`);
  });

  it('embeds the timeline: lanes, ops, the partition window across lanes and the clock offsets', () => {
    expect(model.lanes.length).toBeGreaterThanOrEqual(8);
    expect(model.ops.startMs).toHaveLength(400 + 5);
    const partition = model.windows.find((w) => w.kind === 'partition')!;
    const start = run.history.find((op) => op.f === 'start-partition' && op.type === 'info')!;
    const stop = run.history.find((op) => op.f === 'stop-partition' && op.type === 'info')!;
    expect(partition).toMatchObject({ startMs: start.time / 1e6, endMs: stop.time / 1e6, startOp: start.index, stopOp: stop.index });
    expect(partition.label).toMatch(/^partition: n1 ⊘ n3,n4,n5; n2 ⊘ n3,n4,n5; n3 ⊘ n1,n2/);
    expect(model.windows.map((w) => w.kind)).toEqual(['partition', 'clock']);
    expect(model.clock!.nodes).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    const n3 = model.clock!.offsets[2];
    expect(n3).toContain(5000);
    expect(n3).toContain(12000);
    expect(n3[n3.length - 1]).toBe(0);
    expect(html).toContain('<canvas id="tl-canvas"');
    expect(html).toContain('id="clock-chart"');
    // Ops that failed inside the partition window are in the timeline as fails.
    const fails = model.ops.type.map((t, i) => (t === 1 ? model.ops.startMs[i] : -1)).filter((s) => s >= 0);
    expect(fails.length).toBeGreaterThan(0);
    for (const s of fails) expect(s).toBeGreaterThanOrEqual(partition.startMs - 10);
  });

  it('has a fault section: which packages ran, and each partition probe as a matrix marking cells that differ from the grudge', () => {
    const faults = html.slice(html.indexOf('<section id="faults">'), html.indexOf('<section id="clocks">'));
    expect(html).toContain('<a href="#faults">Faults</a>');
    expect(faults).toMatch(/<tr class="ran"><td><b>partition<\/b><\/td><td><span class="badge valid">RAN<\/span>/);
    expect(faults.match(/<figure class="probe"/g)).toHaveLength(2);
    expect(faults).not.toContain('class="differs"');
    expect(html).toContain('faults ran <b>2 of 2</b>');
    const wrong = { ...run, history: run.history.map((op) => (op.f === 'start-partition' ? { ...op, value: { ...(op.value as object), probe: { n1: { n1: true, n3: true }, n3: { n1: true, n3: true } }, verified: false, unverified: 'n3→n1 got through' } } : op)) };
    const page = renderReport({ ...wrong, results: { ...run.results, test: { ...run.results.test, nemesisRan: ['clock'] }, checkers: { ...run.results.checkers, faults: { valid: 'unknown', packages: { partition: { named: true, starts: { total: 1, errors: 0, verified: 0 }, stops: { total: 1, errors: 0, verified: 1 }, firstStartMs: 1, firstStopMs: 2, ran: false, why: 'not verified' } } } } } });
    const section = page.slice(page.indexOf('<section id="faults">'), page.indexOf('<section id="clocks">'));
    expect(section).toContain('<tr class="not-ran"><td><b>partition</b></td><td><span class="badge unknown">NOT RUN</span>');
    expect(section).toContain('<td>not verified</td>');
    expect(section).toContain('<span class="badge unknown">UNVERIFIED</span>');
    expect(section.match(/class="differs"/g)).toHaveLength(2);
    expect(page).toContain('faults ran <b>1 of 2 (not run: partition)</b>');
  });

  it('shows mesh stats per node and non-converged values side by side', () => {
    const mesh = html.slice(html.indexOf('<section id="mesh">'), html.indexOf('<section id="values">'));
    expect(mesh).toContain('<th>messages per write</th>');
    expect(mesh).toContain('<th>keys repaired</th>');
    expect(mesh).toMatch(/<td>n1<\/td>/);
    const values = html.slice(html.indexOf('<section id="values">'), html.indexOf('<section id="history">'));
    expect(values).toContain('<b>e1/pos</b>');
    expect(values).toMatch(/<td class="val differs">value: p3-41\nts: \d{15}:00003:n1\nkind: lww<\/td>/);
    expect(values.match(/<td class="val">value: p7-2\n/g)).toHaveLength(4);
  });

  it('is self-contained: uPlot, styles and code inline, nothing fetched', () => {
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toContain('var uPlot');
    expect(html).toContain('.uplot');
    expect(html).toContain('<a href="nodes/n1.log">');
  });

  it('escapes text from the run and keeps embedded data from ending its script element', () => {
    const nasty = syntheticRun({ ops: 20, workers: 2 });
    const evil = '</script><script>alert(1)</script><!-- & "quoted"';
    const results = {
      ...nasty.results,
      checkers: { ...nasty.results.checkers, set: { valid: false as const, anomalies: [{ type: 'lost', ops: [1], message: evil }] } },
    };
    const history = nasty.history.map((op, i) => (i === 1 ? { ...op, value: { entity: evil } } : op));
    const out = renderReport({ ...nasty, results, history });
    expect(out).toContain(escapeHtml(evil));
    expect(out).not.toContain('<script>alert(1)');
    const data = reportDataFromHtml(out);
    expect(data.model.history.value[1]).toBe(JSON.stringify({ entity: evil }));
    expect(out.match(/<\/script>/g)).toHaveLength(3);
  });

  it('renders a valid run without faults, clocks or stats sections', () => {
    const calm = syntheticRun({ ops: 50, workers: 2, faults: false });
    const out = renderReport({ test: calm.test, history: calm.history, results: { ...calm.results, stats: undefined } });
    expect(out).toContain('<span class="badge valid">VALID</span>');
    expect(out).not.toContain('id="clock-chart"');
    expect(out).not.toContain('<section id="mesh">');
    expect(out).not.toContain('<section id="values">');
    expect(out).not.toContain('<section id="faults">');
    expect(reportDataFromHtml(out).model.windows).toEqual([]);
  });

  it('shows a non-linearizable key as its longest partial linearization and the op that cannot be placed', () => {
    const anomaly = {
      type: 'non-linearizable', ops: [9, 8], message: 'Key "x": no linearization of the history up to op 9 exists', key: 'x',
      possibleStates: [2], linearizationLength: 2, cannotPlace: { op: 8, describe: 'read() → 1' },
      linearization: [{ op: 0, describe: 'write(1)', state: '1' }, { op: 4, describe: 'write(2)', state: '2' }],
    };
    const withLin = { ...run, results: { ...run.results, checkers: { ...run.results.checkers, linearizability: { valid: false as const, anomalies: [anomaly] } } } };
    const page = renderReport(withLin);
    const block = page.slice(page.indexOf('id="checker-linearizability"'), page.indexOf('id="checker-perf"'));
    expect(block).toContain('<summary>Longest partial linearization: 2 ops, then op 8 cannot be placed</summary>');
    expect(block).toMatch(/<td><a class="op" href="#op-0">0<\/a><\/td><td>write\(1\)<\/td><td>1<\/td>.*href="#op-4">4<\/a><\/td><td>write\(2\)<\/td><td>2<\/td>.*<tr class="cannot"><td><a class="op" href="#op-8">8<\/a><\/td><td>✗ read\(\) → 1<\/td><td>cannot be placed: the key could only hold 2<\/td>/s);
    // Anomalies of other checkers carry no such table.
    expect(html).not.toContain('class="linearization"');
  });
});
