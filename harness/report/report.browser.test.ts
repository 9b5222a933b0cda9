// report.html in a real browser: Debian's headless Chromium (apt-get install -y chromium) opens the file,
// and the test finds the verdict, a drawn timeline and charts, a working history table and anomaly
// links, with no console errors, no page errors and no request beyond the file itself.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs, chromiumPath } from './browser.ts';
import { syntheticRun } from './fixtures.ts';
import { renderReport } from './render.ts';

const run = syntheticRun({ ops: 3000, workers: 10 });
let dir: string;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'faultline-report-browser-'));
  const file = path.join(dir, 'report.html');
  await writeFile(file, renderReport(run));
  browser = await chromium.launch({ executablePath: chromiumPath(), args: [...chromiumArgs] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // Errors only: the pixel checks below read canvases back, which makes Chromium warn on its own.
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-rendered="true"]');
});

afterAll(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Counts canvas pixels close to an RGB colour, or (with tolerance "greenish") clearly green ones. */
function countPixels(p: Page, selector: string, rgb: [number, number, number] | 'greenish'): Promise<number> {
  return p.evaluate(
    ([sel, want]) => {
      const c = document.querySelector(sel as string) as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
        const hit = want === 'greenish' ? g > r + 30 && g > b + 20 : Math.abs(r - want[0]) < 12 && Math.abs(g - want[1]) < 12 && Math.abs(b - want[2]) < 12;
        if (hit) n++;
      }
      return n;
    },
    [selector, rgb] as const,
  );
}

describe('report.html in Chromium', () => {
  it('shows the verdict and every checker', async () => {
    expect(await page.locator('header h1 .badge').textContent()).toBe('INVALID');
    expect(await page.locator('.checker h3').allTextContents()).toEqual([
      'INVALID convergence 1 anomaly',
      'INVALID lost-writes 1 anomaly',
      'UNKNOWN linearizability ',
      'VALID perf ',
      'VALID faults ',
    ]);
  });

  it('shows which fault packages ran and the partition probes as matrices', async () => {
    expect(await page.locator('table.faults tbody tr td:first-child b').allTextContents()).toEqual(['partition', 'clock']);
    expect(await page.locator('table.faults tbody tr.ran').count()).toBe(2);
    expect(await page.locator('figure.probe').count()).toBe(2);
    expect(await page.locator('figure.probe table.matrix td.differs').count()).toBe(0);
  });

  it('draws the timeline: ok bars in green and the partition window shaded', async () => {
    const size = await page.evaluate(() => {
      const c = document.getElementById('tl-canvas') as HTMLCanvasElement;
      return { w: c.width, h: c.height };
    });
    expect(size.w).toBeGreaterThan(500);
    expect(size.h).toBeGreaterThan(100);
    expect(await countPixels(page, '#tl-canvas', [46, 158, 91])).toBeGreaterThan(2000);
    // The partition label bar in the nemesis lane is drawn in the partition colour (#7b5cd6 at 85%).
    expect(await countPixels(page, '#tl-canvas', [142, 117, 220])).toBeGreaterThan(100);
    expect(await page.locator('#tl-range').textContent()).toMatch(/^0\.000 s – [\d.]+ s of [\d.]+ s$/);
  });

  it('zooms the timeline and the charts together', async () => {
    const before = await page.locator('#tl-range').textContent();
    await page.click('#tl-in');
    await page.waitForFunction((b) => document.getElementById('tl-range')!.textContent !== b, before);
    const range = (await page.locator('#tl-range').textContent())!;
    const [, from, to, of] = /^([\d.]+) s – ([\d.]+) s of ([\d.]+) s$/.exec(range)!.map(Number);
    expect(to - from).toBeCloseTo(of / 2, 1);
    await page.click('#tl-reset');
    expect(await page.locator('#tl-range').textContent()).toBe(before);
  });

  it('draws the latency, throughput and clock charts', async () => {
    expect(await page.locator('#lat-chart canvas').count()).toBe(1);
    expect(await page.locator('#thr-chart canvas').count()).toBe(1);
    expect(await page.locator('#clock-chart canvas').count()).toBe(1);
    expect(await countPixels(page, '#lat-chart canvas', 'greenish')).toBeGreaterThan(500);
  });

  it('follows an anomaly link to the op in the history table', async () => {
    const op = run.results.checkers['lost-writes'].anomalies![0].ops[0];
    await page.click(`#checker-lost-writes a[href="#op-${op}"]`);
    await page.waitForSelector('.hist .row.sel');
    expect(await page.locator('.hist .row.sel span').first().textContent()).toBe(String(op));
    expect(await page.locator('#op-detail b').textContent()).toBe(`Selected op ${op} (named by an anomaly)`);
    expect(await page.locator('#op-detail pre').textContent()).toContain('latency: ');
  });

  it('filters the history by type and by node', async () => {
    const fails = run.history.filter((o) => o.type === 'fail').length;
    await page.selectOption('#flt-type', { label: 'fail' });
    expect(await page.locator('#hist-count').textContent()).toBe(`${fails} of ${run.history.length} ops`);
    const types = await page.locator('.hist .row:visible span:nth-child(5)').allTextContents();
    expect(types.length).toBeGreaterThan(0);
    expect(new Set(types)).toEqual(new Set(['fail']));
    const node = run.history.find((o) => o.type === 'fail')!.node!;
    await page.selectOption('#flt-node', { label: node });
    const nodeFails = run.history.filter((o) => o.type === 'fail' && o.node === node).length;
    expect(await page.locator('#hist-count').textContent()).toBe(`${nodeFails} of ${run.history.length} ops`);
    const nodes = await page.locator('.hist .row:visible span:nth-child(4)').allTextContents();
    expect(new Set(nodes)).toEqual(new Set([node]));
    await page.click('#flt-clear');
    expect(await page.locator('#hist-count').textContent()).toBe(`${run.history.length} ops`);
  });

  it('had no console errors, no page errors and fetched nothing but the file', () => {
    expect(problems).toEqual([]);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
  });
});
