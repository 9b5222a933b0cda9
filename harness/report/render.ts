// Renders report.html: one self-contained page (no network: uPlot, the styles, the browser code and
// the data are all inlined) that a person reads to judge a run. The verdict, anomalies, mesh stats and
// per-node values are plain HTML rendered here; the timeline, charts and the history table are drawn
// in the browser by client.js from the model (model.ts) embedded as JSON.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Anomaly, CheckResult, Validity } from '../../checkers/types.ts';
import type { History, Op } from '../history.ts';
import type { NodeStats, RunResults } from '../results.ts';
import { buildModel } from './model.ts';
import type { DelayView, FaultRow, ModelOptions, NodeValues, ProbeView, ReportModel } from './model.ts';

/** What the runner hands the report. */
export interface ReportInput {
  /** The whole test as data (what test.json holds); shown folded at the bottom of the report. */
  readonly test: object;
  readonly history: History;
  readonly results: RunResults;
  /** Node → its StatsReply at the end of the run; defaults to results.stats. */
  readonly nodeStats?: Readonly<Record<string, NodeStats>>;
  /** Tuning for the embedded model (value truncation, bucket count). */
  readonly model?: ModelOptions;
}

/** Anomalies shown per checker before the rest are folded away, and the most ever put in the page. */
const shownAnomalies = 20;
const maxAnomalies = 500;
const maxOpLinks = 24;

/** Shading colour per fault family; the browser code gets the same table with the data. */
export const faultColors: Readonly<Record<string, string>> = {
  partition: '#7b5cd6',
  clock: '#2b7bd6',
  kill: '#d6452b',
  pause: '#b07d00',
  packet: '#16a3a3',
  delay: '#c2418f',
  other: '#7a7a7a',
};
const faultColor = (kind: string) => faultColors[kind] ?? faultColors.other;

interface Assets {
  readonly uplotJs: string;
  readonly uplotCss: string;
  readonly css: string;
  readonly client: string;
}
let assets: Assets | undefined;

function loadAssets(): Assets {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const read = (p: string | URL) => readFileSync(p, 'utf8');
    assets = {
      uplotJs: read(require.resolve('uplot/dist/uPlot.iife.min.js')),
      uplotCss: read(require.resolve('uplot/dist/uPlot.min.css')),
      css: read(new URL('./report.css', import.meta.url)),
      client: read(new URL('./client.js', import.meta.url)),
    };
  }
  return assets;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Makes inline script text safe: "</script" or "<!--" inside a string can never end the element. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export function verdictWord(v: Validity): string {
  return v === true ? 'VALID' : v === false ? 'INVALID' : 'UNKNOWN';
}
function verdictClass(v: Validity): string {
  return v === true ? 'valid' : v === false ? 'invalid' : 'unknown';
}
const badge = (v: Validity) => `<span class="badge ${verdictClass(v)}">${verdictWord(v)}</span>`;

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

function opTitle(op: Op | undefined): string {
  if (!op) return 'not in this history';
  const who = op.process === 'nemesis' ? 'nemesis' : `p${op.process}${op.node ? ` ${op.node}` : ''}`;
  const value = op.value === undefined ? '' : JSON.stringify(op.value);
  return `${who} ${op.type} ${op.f} ${value.length > 160 ? `${value.slice(0, 160)}…` : value}${op.error ? ` — ${op.error}` : ''}`;
}

function detailValue(v: unknown): string | undefined {
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') {
    const s = String(v);
    return s.length > 160 ? `${s.slice(0, 160)}…` : s;
  }
  if (Array.isArray(v)) return v.length === 0 ? '[]' : JSON.stringify(v).length <= 120 ? JSON.stringify(v) : `${v.length} items`;
  if (typeof v === 'object') {
    const s = JSON.stringify(v);
    return s.length <= 120 ? s : `{${Object.keys(v as object).length} keys}`;
  }
  return undefined;
}

/** Steps of a partial linearization shown in the report (the last ones, before the op that cannot be placed). */
const shownLinearizationSteps = 12;

/**
 * The visual answer of a non-linearizable key (checkers/linearizable.ts): the end of the longest partial
 * linearization, each op with the state after it, then the op that cannot be placed. Empty otherwise.
 */
function linearization(a: Anomaly): string {
  const cannot = a.cannotPlace as { op: number; describe: string } | undefined;
  const steps = a.linearization as { op: number; describe: string; state: string }[] | undefined;
  if (!cannot || !steps) return '';
  const total = typeof a.linearizationLength === 'number' ? a.linearizationLength : steps.length;
  const shown = steps.slice(-shownLinearizationSteps);
  const row = (op: number, what: string, after: string, cls = '') => `<tr${cls ? ` class="${cls}"` : ''}><td><a class="op" href="#op-${op}">${op}</a></td><td>${escapeHtml(what)}</td><td>${escapeHtml(after)}</td></tr>`;
  const states = ((a.possibleStates as unknown[] | undefined) ?? []).map((v) => (v === null ? 'nil' : JSON.stringify(v))).join(' or ');
  return `<details class="linearization"><summary>Longest partial linearization: ${total} ops, then op ${cannot.op} cannot be placed</summary><table>`
    + `<tr><th>op</th><th>linearized</th><th>state after</th></tr>${total > shown.length ? `<tr><td colspan="3" class="hint">… ${total - shown.length} earlier ops</td></tr>` : ''}`
    + shown.map((s) => row(s.op, s.describe, s.state)).join('')
    + row(cannot.op, `✗ ${cannot.describe}`, `cannot be placed: the key could only hold ${states}`, 'cannot')
    + '</table></details>';
}

function renderChecker(name: string, r: CheckResult, opAt: (i: number) => Op | undefined): string {
  const anomalies = r.anomalies ?? [];
  const details = Object.entries(r)
    .filter(([k]) => k !== 'valid' && k !== 'anomalies' && k !== 'error')
    .map(([k, v]) => [k, detailValue(v)] as const)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<span>${escapeHtml(k)}: <b>${escapeHtml(v!)}</b></span>`)
    .join('');
  const item = (a: Anomaly) => {
    const links = a.ops
      .slice(0, maxOpLinks)
      .map((i) => `<a class="op" href="#op-${i}" title="${escapeHtml(opTitle(opAt(i)))}">${i}</a>`)
      .join('');
    const more = a.ops.length > maxOpLinks ? ` <span class="count">+${a.ops.length - maxOpLinks} more</span>` : '';
    return `<li><span class="atype">${escapeHtml(a.type)}</span> ${escapeHtml(a.message)}${a.ops.length ? `<span class="ops">ops:${links}${more}</span>` : ''}${linearization(a)}</li>`;
  };
  const first = anomalies.slice(0, shownAnomalies).map(item).join('');
  const rest = anomalies.slice(shownAnomalies, maxAnomalies).map(item).join('');
  const beyond = anomalies.length > maxAnomalies ? `<p class="hint">… and ${anomalies.length - maxAnomalies} more anomalies in results.json.</p>` : '';
  const count = anomalies.length ? `<span class="count">${anomalies.length} ${anomalies.length === 1 ? 'anomaly' : 'anomalies'}</span>` : '';
  // An advisory result (e.g. linearizability of an AP store) is shown, but plainly marked as not
  // counting toward the verdict, so a reader does not mistake an expected failure for the cause.
  const advisory = r.advisory === true;
  const note = advisory ? `<span class="badge advisory" title="reported, not part of the verdict">ADVISORY</span><span class="sub">not part of the verdict${typeof r.expected === 'string' ? `: ${escapeHtml(r.expected)}` : ''}</span>` : '';
  return `<div class="checker ${advisory ? 'advisory' : verdictClass(r.valid)}" id="checker-${escapeHtml(name)}">
<h3>${badge(r.valid)} ${escapeHtml(name)} ${count}${note ? ` ${note}` : ''}</h3>
${details ? `<div class="details">${details}</div>` : ''}
${r.error ? `<div class="error">${escapeHtml(r.error)}</div>` : ''}
${first ? `<ul class="anomalies">${first}</ul>` : ''}
${rest ? `<details class="more"><summary>Show ${Math.min(anomalies.length, maxAnomalies) - shownAnomalies} more</summary><ul class="anomalies">${rest}</ul></details>` : ''}${beyond}
</div>`;
}

const statsOrder = [
  'writes', 'meshMessages', 'messagesPerWrite', 'relaysSent', 'relaysReceived', 'echoesSuppressed', 'antiEntropyRounds',
  'keysRepaired', 'skewEvents', 'watcherDrops', 'meshThrottled', 'duplicateRequests', 'fsyncs',
];
const barred = new Set(['messagesPerWrite', 'keysRepaired']);

function words(camel: string): string {
  return camel.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function renderStats(stats: Readonly<Record<string, NodeStats>>): string {
  const nodes = Object.keys(stats).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const keys = new Set<string>();
  for (const n of nodes) for (const [k, v] of Object.entries(stats[n])) if (typeof v === 'number') keys.add(k);
  const cols = [...statsOrder.filter((k) => keys.has(k)), ...[...keys].filter((k) => !statsOrder.includes(k)).sort()];
  const max = new Map(cols.map((k) => [k, Math.max(0, ...nodes.map((n) => Number(stats[n][k] ?? 0)))]));
  const cell = (n: string, k: string) => {
    const v = stats[n][k];
    if (typeof v !== 'number') return '<td></td>';
    const text = Number.isInteger(v) ? String(v) : v.toFixed(2);
    const bar = barred.has(k) && max.get(k)! > 0 ? `<span class="bar" style="width:${Math.round((60 * v) / max.get(k)!)}px"></span>` : '';
    return `<td>${bar}${text}</td>`;
  };
  return `<table class="grid"><thead><tr><th>node</th>${cols.map((k) => `<th>${escapeHtml(words(k))}</th>`).join('')}</tr></thead><tbody>
${nodes.map((n) => `<tr><td>${escapeHtml(n)}</td>${cols.map((k) => cell(n, k)).join('')}</tr>`).join('\n')}
</tbody></table>`;
}

function renderNodeValues(rows: readonly NodeValues[], nodes: readonly string[]): string {
  const shown = rows.slice(0, 200);
  const cols = nodes.filter((n) => shown.some((r) => n in r.values));
  const body = shown
    .map((r) => {
      // The value most nodes hold is the reference; the cells that differ from it are highlighted.
      const tally = new Map<string, number>();
      for (const n of cols) if (n in r.values) tally.set(r.values[n], (tally.get(r.values[n]) ?? 0) + 1);
      const common = [...tally].sort((a, b) => b[1] - a[1])[0]?.[0];
      const cells = cols
        .map((n) => (n in r.values ? `<td class="val${r.values[n] !== common ? ' differs' : ''}">${escapeHtml(r.values[n])}</td>` : '<td class="val empty">(absent)</td>'))
        .join('');
      const links = r.ops.slice(0, 8).map((i) => `<a class="op" href="#op-${i}">${i}</a>`).join('');
      return `<tr><td class="key"><b>${escapeHtml(r.key)}</b><br><span class="count">${escapeHtml(r.checker)}</span></td>${cells}<td class="key">${links}</td></tr>`;
    })
    .join('\n');
  const more = rows.length > shown.length ? `<p class="hint">… and ${rows.length - shown.length} more in results.json.</p>` : '';
  return `<table class="grid values"><thead><tr><th>key</th>${cols.map((n) => `<th>${escapeHtml(n)}</th>`).join('')}<th>ops</th></tr></thead><tbody>${body}</tbody></table>${more}`;
}

function renderDelays(delays: readonly DelayView[]): string {
  const body = delays
    .slice(0, 200)
    .flatMap((d) =>
      d.links.map(
        (l, i) =>
          `<tr>${i === 0 ? `<td rowspan="${d.links.length}"><a class="op" href="#op-${d.index}">${d.index}</a> at ${(d.timeMs / 1000).toFixed(2)} s ${d.verified ? '<span class="badge valid">VERIFIED</span>' : `<span class="badge unknown" title="${escapeHtml(d.unverified ?? '')}">UNVERIFIED</span>`}</td>` : ''}` +
          `<td>${escapeHtml(l.from)} → ${escapeHtml(l.to)}</td><td>${l.delayMs}${l.jitterMs ? ` ± ${l.jitterMs}` : ''} ms</td><td>${l.duplicatePercent ? `${l.duplicatePercent}%` : '—'}</td><td>${l.rttMs === undefined ? '—' : l.rttMs === null ? 'no handshake' : `${l.rttMs} ms`}</td></tr>`,
      ),
    )
    .join('\n');
  return `<h3>Delays <span class="sub">each start of the delay fault: the links it slowed (sender → peer) and the TCP handshake time the sender measured to that peer</span></h3><table class="grid faults"><thead><tr><th>op</th><th>link</th><th>delay</th><th>duplicated</th><th>measured round trip</th></tr></thead><tbody>${body}</tbody></table>`;
}

function renderFaults(rows: readonly FaultRow[], probes: readonly ProbeView[], named: readonly string[], delays: readonly DelayView[] = []): string {
  const counts = (c: FaultRow['starts']) => `${c.total}${c.errors ? ` <span class="count">(${c.errors} with error)</span>` : ''} · ${c.verified} verified`;
  const at = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`);
  const body = rows
    .map(
      (r) =>
        `<tr class="${r.ran ? 'ran' : 'not-ran'}"><td><b>${escapeHtml(r.name)}</b>${r.named ? '' : ' <span class="count">(not named)</span>'}</td>` +
        `<td>${r.ran ? badge(true).replace('VALID', 'RAN') : '<span class="badge unknown">NOT RUN</span>'}</td>` +
        `<td>${counts(r.starts)}</td><td>${counts(r.stops)}</td><td>${at(r.firstStartMs)}</td><td>${at(r.firstStopMs)}</td><td>${escapeHtml(r.why ?? '')}</td></tr>`,
    )
    .join('\n');
  const table = rows.length
    ? `<table class="grid faults"><thead><tr><th>package</th><th>ran</th><th>starts</th><th>stops</th><th>first start</th><th>first stop</th><th>why not</th></tr></thead><tbody>${body}</tbody></table>`
    : `<p class="empty">${named.length ? 'The faults checker did not run.' : 'No fault package was named.'}</p>`;
  const matrices = probes.slice(0, 200).map(renderProbe).join('\n');
  return `${table}${delays.length ? renderDelays(delays) : ''}${probes.length ? `<h3>Partition probes <span class="sub">one-way UDP from every running node to every other, after each start and stop and when a node came back; ✓ got through, ✗ cut; highlighted cells differ from the grudge</span></h3><div class="probes">${matrices}</div>` : ''}`;
}

function renderProbe(p: ProbeView): string {
  const nodes = Object.keys(p.probe).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const cell = (from: string, to: string) => {
    if (from === to) return '<td class="self">·</td>';
    const through = p.probe[from]?.[to] === true;
    const cut = (p.grudge[to] ?? []).includes(from);
    return `<td class="${through === !cut ? 'match' : 'differs'}" title="${escapeHtml(`${from}→${to}: ${through ? 'got through' : 'cut'}; the grudge ${cut ? 'cuts' : 'lets through'} it`)}">${through ? '✓' : '✗'}</td>`;
  };
  const rows = nodes.map((from) => `<tr><th>${escapeHtml(from)}</th>${nodes.map((to) => cell(from, to)).join('')}</tr>`).join('');
  const excluded = p.excluded ? ` · not probed: ${Object.entries(p.excluded).map(([n, s]) => `${n} (${s})`).join(', ')}` : '';
  return `<figure class="probe" id="probe-${p.index}${p.node ? `-${escapeHtml(p.node)}` : ''}"><figcaption><a class="op" href="#op-${p.index}">${p.index}</a> ${escapeHtml(p.f)} at ${(p.timeMs / 1000).toFixed(2)} s ${p.verified ? '<span class="badge valid">VERIFIED</span>' : '<span class="badge unknown">UNVERIFIED</span>'}${escapeHtml(excluded)}${p.unverified ? `<br><span class="count">${escapeHtml(p.unverified)}</span>` : ''}</figcaption>
<table class="grid matrix"><thead><tr><th>from → to</th>${nodes.map((n) => `<th>${escapeHtml(n)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table></figure>`;
}

/** The engines of a multi-engine run (results.json `engines`, harness/engines.ts): where each node ran, and each engine's host clock against the harness's at the start and the end. */
interface EngineRow {
  readonly name: string;
  readonly url: string;
  readonly version?: string;
  readonly nodes: readonly string[];
  readonly clockStart?: { readonly offsetMs: number; readonly rttMs: number };
  readonly clockEnd?: { readonly offsetMs: number; readonly rttMs: number };
  readonly clockError?: string;
}

function renderEngines(engines: readonly EngineRow[]): string {
  const clock = (c: EngineRow['clockStart']) => (c ? `${c.offsetMs >= 0 ? '+' : ''}${c.offsetMs} ms ± ${c.rttMs / 2} ms` : '—');
  const rows = engines
    .map((e) => `<tr><td>${escapeHtml(e.name)}</td><td class="mono">${escapeHtml(e.url)}</td><td>${escapeHtml(e.version ?? '')}</td><td>${escapeHtml(e.nodes.join(' '))}</td><td>${escapeHtml(clock(e.clockStart))}</td><td>${escapeHtml(clock(e.clockEnd))}${e.clockError ? ` <span class="count">${escapeHtml(e.clockError)}</span>` : ''}</td></tr>`)
    .join('');
  return `<table class="grid"><thead><tr><th>engine</th><th>address</th><th>version</th><th>nodes</th><th>host clock at start</th><th>at end</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function renderHeader(results: RunResults, model: ReportModel): string {
  const t = results.test;
  const c = results.opCounts;
  const meta: [string, string][] = [
    ['seed', String(t.seed)],
    ['workload', t.workload],
    ['nemesis', t.nemesis.join(', ') || 'none'],
    ...(t.nemesis.length && t.nemesisRan ? ([['faults ran', `${t.nemesisRan.length} of ${t.nemesis.length}${t.nemesisRan.length < t.nemesis.length ? ` (not run: ${t.nemesis.filter((p) => !t.nemesisRan!.includes(p)).join(', ')})` : ''}`]] as [string, string][]) : []),
    ['nodes', t.nodes.join(' ')],
    ['started', t.startTime.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')],
    ['duration', fmtMs(results.durationMs)],
    ['ops', `${c.ok} ok · ${c.fail} fail · ${c.info} info`],
  ];
  if (results.recoveryMs !== undefined) meta.push(['recovery', fmtMs(results.recoveryMs)]);
  for (const [k, v] of Object.entries(results.versions ?? {})) meta.push([k, v]);
  const files = ['test.json', 'history.jsonl', 'results.json', 'junit.xml', ...model.nodes.filter((n) => results.test.nodes.includes(n)).map((n) => `nodes/${n}.log`)];
  return `<header class="top">
<h1><span class="name">${escapeHtml(t.name)}</span> ${badge(results.valid)}</h1>
<div class="meta">${meta.map(([k, v]) => `<span>${escapeHtml(k)} <b>${escapeHtml(v)}</b></span>`).join('')}</div>
${t.command ? `<div class="repro">reproduce: <code>${escapeHtml(t.command)}</code></div>` : ''}
<div class="files">files: ${files.map((f) => `<a href="${escapeHtml(f)}">${escapeHtml(f)}</a>`).join('')}</div>
${results.error ? `<div class="run-error"><b>The run failed:</b> ${escapeHtml(results.error)}</div>` : ''}
</header>`;
}

/** Renders the whole report.html as one string. */
export function renderReport(input: ReportInput): string {
  const { results, history } = input;
  const a = loadAssets();
  const model = buildModel(history, results, input.nodeStats as Record<string, NodeStats> | undefined, input.model);
  const byIndex = history.every((op, i) => op.index === i) ? (i: number) => history[i] : indexer(history);
  const checkers = Object.entries(results.checkers);
  const faultKinds = [...new Set(model.windows.map((w) => w.kind))];
  const sections: [string, string][] = [
    ['verdict', 'Verdict'],
    ['timeline', 'Timeline'],
    ['latency', 'Latency'],
    ['throughput', 'Throughput'],
  ];
  const hasFaults = model.faults.length > 0 || model.probes.length > 0 || results.test.nemesis.length > 0;
  if (hasFaults) sections.push(['faults', 'Faults']);
  if (model.clock) sections.push(['clocks', 'Clocks']);
  const engines = Array.isArray(results.engines) ? (results.engines as EngineRow[]) : [];
  if (engines.length) sections.push(['engines', 'Engines']);
  if (model.stats) sections.push(['mesh', 'Mesh']);
  if (model.nodeValues.length) sections.push(['values', 'Values per node']);
  sections.push(['history', 'History'], ['test', 'Test']);
  const legend = `<div class="legend"><span><i style="background:#2e9e5b"></i>ok</span><span><i style="background:#d64545"></i>fail</span><span><i style="background:#e39b1b"></i>info</span><span><i style="background:#9aa3ad"></i>no completion</span><span><i style="background:#fff;border:1.5px solid #b00020"></i>named by an anomaly</span>${faultKinds
    .map((k) => `<span><i style="background:${faultColor(k)};opacity:.4"></i>${escapeHtml(k)} window</span>`)
    .join('')}</div>`;
  const data = JSON.stringify({ model, faultColors }).replace(/</g, '\\u003c');
  const title = `${results.test.name} · ${verdictWord(results.valid)} · faultline`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${a.uplotCss}</style>
<style>${a.css}</style>
</head>
<body>
${renderHeader(results, model)}
<nav class="toc">${sections.map(([id, label]) => `<a href="#${id}">${label}</a>`).join('')}</nav>
<main>
<section id="verdict">
<h2>Verdict ${badge(results.valid)} <span class="sub">${checkers.length} checkers; false beats unknown beats true</span></h2>
<div class="checkers">${checkers.length ? checkers.map(([name, r]) => renderChecker(name, r, byIndex)).join('\n') : '<p class="empty">No checker ran.</p>'}</div>
</section>
<section id="timeline">
<h2>Timeline <span class="sub">${model.lanes.length} client lanes (a process that ended in info continues in its successor's lane) · ${model.ops.startMs.length} ops · ${model.windows.length} fault windows</span></h2>
<div class="controls"><button id="tl-left" title="pan left">◀</button><button id="tl-right" title="pan right">▶</button><button id="tl-in" title="zoom in">+</button><button id="tl-out" title="zoom out">-</button><button id="tl-reset">whole run</button><span class="range" id="tl-range"></span><span class="hint">drag: zoom to a range · shift+drag: pan · double-click: whole run · click an op: show it in the history</span></div>
${legend}
<div class="tl-wrap" style="margin-top:6px"><canvas id="tl-canvas" height="120"></canvas><div class="tooltip" id="tl-tip"></div></div>
</section>
<section id="latency">
<h2>Latency <span class="sub">each completed op at its invoke time; lines are quantiles of ok ops per ${fmtMs(model.buckets.widthMs)}; shaded: fault windows</span></h2>
<div class="chart" id="lat-chart"></div>
</section>
<section id="throughput">
<h2>Throughput and availability <span class="sub">completions per second by outcome and ok / all completions, per ${fmtMs(model.buckets.widthMs)}</span></h2>
<div class="chart" id="thr-chart"></div>
</section>
${hasFaults ? `<section id="faults"><h2>Faults <span class="sub">which fault packages ran (a verified start, then a stop) and what the partition probes measured</span></h2>${renderFaults(model.faults, model.probes, results.test.nemesis, model.delays)}</section>` : ''}
${model.clock ? `<section id="clocks"><h2>Clock offsets <span class="sub">wall-clock offset per node as the clock nemesis set it</span></h2><div class="chart" id="clock-chart"></div></section>` : ''}
${engines.length ? `<section id="engines"><h2>Engines <span class="sub">where each node ran; each engine's host clock minus the harness's (docker info, best of 5; ± half the round trip), beside the libfaketime offsets above</span></h2>${renderEngines(engines)}</section>` : ''}
${model.stats ? `<section id="mesh"><h2>Mesh stats <span class="sub">per node, at the end of the run</span></h2>${renderStats(model.stats)}</section>` : ''}
${model.nodeValues.length ? `<section id="values"><h2>Values per node <span class="sub">keys on which nodes disagree; highlighted cells differ from the value most nodes hold</span></h2>${renderNodeValues(model.nodeValues, model.nodes)}</section>` : ''}
<section id="history">
<h2>History <span class="count" id="hist-count"></span></h2>
<div class="filters">
<label>process <select id="flt-process"><option value="">all</option></select></label>
<label>node <select id="flt-node"><option value="">all</option></select></label>
<label>f <select id="flt-f"><option value="">all</option></select></label>
<label>type <select id="flt-type"><option value="">all</option></select></label>
<label>text <input id="flt-text" type="search" placeholder="value or error contains…" size="24"></label>
<label><input id="flt-anom" type="checkbox"> named by an anomaly</label>
<button id="flt-clear">clear</button>
</div>
<div class="hist">
<div class="head"><span>index</span><span>time (s)</span><span>process</span><span>node</span><span>type</span><span>f</span><span>value</span><span>error</span></div>
<div class="body" id="hist-body"><div id="hist-spacer"></div></div>
</div>
<div id="op-detail"></div>
</section>
<section id="test">
<details><summary><b>The test as data</b> <span class="hint">(test.json)</span></summary><pre class="mono">${escapeHtml(JSON.stringify(input.test, null, 2))}</pre></details>
</section>
</main>
<script type="application/json" id="faultline-data">${data}</script>
<script>${scriptSafe(a.uplotJs)}</script>
<script>${scriptSafe(a.client)}</script>
</body>
</html>
`;
}

function indexer(history: History): (i: number) => Op | undefined {
  const map = new Map(history.map((op) => [op.index, op]));
  return (i) => map.get(i);
}

/** The model embedded in a rendered report (for tests and tools that inspect a report). */
export function reportDataFromHtml(html: string): { model: ReportModel; faultColors: Record<string, string> } {
  const m = /<script type="application\/json" id="faultline-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('No faultline-data script in this HTML: is it a faultline report.html?');
  return JSON.parse(m[1]);
}
