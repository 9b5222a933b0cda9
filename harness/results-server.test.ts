// The results browser over real HTTP on loopback: the run list newest first with links that work,
// files served from run folders (through the latest links), nothing outside results/, and the
// `--open latest` command line.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRunOutputs } from './report/index.ts';
import { syntheticRun } from './report/fixtures.ts';
import { startResultsServer } from './results-server.ts';
import type { RunningResultsServer } from './results-server.ts';
import { createRunFolder, writeTest } from './results.ts';

const serverFile = fileURLToPath(new URL('./results-server.ts', import.meta.url));
let root: string;
let server: RunningResultsServer;
let newestReport: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'faultline-results-server-'));
  const bad = syntheticRun({ ops: 60, workers: 3 });
  const older = await createRunFolder(root, 'lww-partition', new Date('2026-11-22T10:00:00.000Z'));
  await writeTest(older, bad.test);
  await writeFile(older.history, bad.history.map((op) => JSON.stringify(op)).join('\n'));
  await writeRunOutputs(older, bad);
  const good = syntheticRun({ ops: 40, workers: 2, faults: false });
  const newer = await createRunFolder(root, 'lww-calm', new Date('2026-11-22T11:00:00.000Z'));
  await writeRunOutputs(newer, { ...good, results: { ...good.results, test: { ...good.results.test, name: 'lww-calm' } } });
  newestReport = newer.report;
  // A link pointing out of the results folder must not be followed.
  await writeFile(path.join(path.dirname(root), `${path.basename(root)}-secret.txt`), 'secret');
  await symlink(path.join('..', `${path.basename(root)}-secret.txt`), path.join(root, 'escape.txt'));
  server = await startResultsServer({ root, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
  await rm(path.join(path.dirname(root), `${path.basename(root)}-secret.txt`), { force: true });
});

describe('results server', () => {
  it('listens on loopback only', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('lists runs newest first with verdict, nemesis and ops, linking to each report', async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    const html = await res.text();
    const rows = [...html.matchAll(/<tr><td><a href="([^"]+)">([^<]+)<\/a><\/td><td>([^<]+)<\/td><td><span class="badge (\w+)"[^>]*>(\w+)<\/span><\/td><td>([^<]*)<\/td><td class="num">(\d+)<\/td>/g)].map((m) => m.slice(1));
    expect(rows).toEqual([
      ['/lww-calm/20261122T110000.000Z/report.html', 'lww-calm', '2026-11-22 11:00:00.000 UTC', 'valid', 'VALID', 'none', '45'],
      ['/lww-partition/20261122T100000.000Z/report.html', 'lww-partition', '2026-11-22 10:00:00.000 UTC', 'invalid', 'INVALID', 'partition,clock', '65'],
    ]);
    const report = await fetch(new URL(rows[0][0], server.url));
    expect(report.status).toBe(200);
    expect(report.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await report.text()).toContain('<title>lww-calm · VALID · faultline</title>');
  });

  it('serves run files through the latest links and the run list as JSON', async () => {
    const latest = await fetch(new URL('/latest/junit.xml', server.url));
    expect(latest.headers.get('content-type')).toBe('application/xml; charset=utf-8');
    expect(await latest.text()).toContain('<testsuite name="faultline.lww-calm"');
    const runs = (await (await fetch(new URL('/runs.json', server.url))).json()) as { name: string }[];
    expect(runs.map((r) => r.name)).toEqual(['lww-calm', 'lww-partition']);
    const dir = await fetch(new URL('/lww-partition/20261122T100000.000Z/', server.url));
    expect(await dir.text()).toContain('<a href="history.jsonl">');
  });

  it('serves nothing outside the results folder', async () => {
    expect((await fetch(new URL('/escape.txt', server.url))).status).toBe(404);
    expect((await fetch(new URL('/%2e%2e/%2e%2e/etc/passwd', server.url))).status).toBe(404);
    expect((await fetch(new URL('/nope/report.html', server.url))).status).toBe(404);
  });
});

describe('npm run results -- --open', () => {
  it('prints the newest report.html and exits', async () => {
    const r = await execa('node', [serverFile, '--root', root, '--open', 'latest']);
    expect(r.stdout).toBe(newestReport);
    const byName = await execa('node', [serverFile, '--root', root, '--open', 'lww-partition']);
    expect(byName.stdout).toMatch(/lww-partition\/20261122T100000\.000Z\/report\.html$/);
  });

  it('explains an unknown run and rejects a bad port with exit 254', async () => {
    const missing = await execa('node', [serverFile, '--root', root, '--open', 'set-kill'], { reject: false });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/No report at .*set-kill\/latest\/report\.html: pass --open latest, a test name \(lww-calm, lww-partition\)/);
    const port = await execa('node', [serverFile, '--port', 'abc'], { reject: false });
    expect(port.exitCode).toBe(254);
    expect(port.stderr).toContain('Expected `--port` to be an integer from 0 to 65535, got "abc"');
  });
});
