// Benchmark of the report (npm run bench:report): renders the report of a synthetic 100k-op history
// (200k history lines, with a partition and a clock nemesis), then opens it in headless Chromium and
// waits for the load event and for the timeline, charts and history table to be drawn. Prints JSON.
// Targets: generation ≤ 5 s, opening ≤ 3 s. Not a test: speed depends on the machine.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { syntheticRun } from './fixtures.ts';
import { renderReport } from './render.ts';
import { chromiumPath, chromiumArgs } from './browser.ts';

const ops = Number(process.env.BENCH_OPS ?? 100_000);
const run = syntheticRun({ ops, workers: 20 });
const t0 = performance.now();
const html = renderReport(run);
const generateMs = performance.now() - t0;

const dir = await mkdtemp(path.join(tmpdir(), 'faultline-bench-report-'));
const file = path.join(dir, 'report.html');
await writeFile(file, html);
const browser = await chromium.launch({ executablePath: chromiumPath(), args: [...chromiumArgs] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const w0 = performance.now();
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 60_000 });
  await page.waitForSelector('body[data-rendered="true"]', { timeout: 60_000 });
  const wallOpenMs = performance.now() - w0;
  const inPage = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    const at = (name: string) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
    return {
      loadEventMs: nav.loadEventEnd,
      renderedMs: at('faultline-rendered'),
      // Where the time goes: HTML parsed up to the data, data parsed, charts drawn.
      phasesMs: { domInteractive: nav.domInteractive, dataParsed: at('faultline-parsed'), chartsDrawn: at('faultline-charts'), rendered: at('faultline-rendered') },
    };
  });
  console.log(
    JSON.stringify(
      {
        benchmark: 'report',
        ops,
        historyLines: run.history.length,
        generateMs: Math.round(generateMs),
        fileBytes: Buffer.byteLength(html),
        fileMB: Math.round(Buffer.byteLength(html) / 1e5) / 10,
        openMs: Math.round(Math.max(inPage.loadEventMs, inPage.renderedMs)),
        loadEventMs: Math.round(inPage.loadEventMs),
        timelineRenderedMs: Math.round(inPage.renderedMs),
        wallOpenMs: Math.round(wallOpenMs),
        phasesMs: Object.fromEntries(Object.entries(inPage.phasesMs).map(([k, v]) => [k, Math.round(v)])),
        targets: { generateMs: 5000, openMs: 3000 },
        pageErrors: errors,
      },
      null,
      2,
    ),
  );
} finally {
  await browser.close();
  await rm(dir, { recursive: true, force: true });
}
