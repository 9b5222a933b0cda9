// The results browser over real HTTP on loopback: the run list newest first with links that work,
// files served from run folders (through the latest links), nothing outside results/, and the
// `--open latest` command line.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
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

/** A raw HTTP request (fetch would normalize the path); status, headers and body. */
function raw(method: string, target: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: target, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('results server against hostile requests', () => {
  it('answers files it cannot serve (a socket, a FIFO) with 404 and keeps serving, even five FIFOs at once', async () => {
    const socketPath = path.join(root, 'node.sock');
    const unix = createNetServer();
    await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
    try {
      expect((await raw('GET', '/node.sock')).status).toBe(404);
    } finally {
      await new Promise<void>((resolve) => unix.close(() => resolve()));
    }
    await execa('mkfifo', [path.join(root, 'pipe.log')]);
    const fifo = await Promise.all(Array.from({ length: 5 }, () => raw('GET', '/pipe.log')));
    expect(fifo.map((r) => r.status)).toEqual([404, 404, 404, 404, 404]);
    expect((await raw('GET', '/')).status).toBe(200);
  });

  it('serves GET and HEAD only', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await raw(method, '/latest/junit.xml');
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    const head = await raw('HEAD', '/latest/junit.xml');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.body).toBe('');
  });

  it('never redirects to another host', async () => {
    await mkdir(path.join(root, 'evil.example.com'), { recursive: true });
    for (const target of ['/.//evil.example.com', '//evil.example.com', '/%2e//evil.example.com', '///evil.example.com']) {
      const r = await raw('GET', target);
      if (r.status === 301) expect(r.headers.location).toBe('/evil.example.com/');
      expect(String(r.headers.location ?? '')).not.toMatch(/^\/\/|^[a-z]+:/i);
    }
    expect((await raw('GET', '/.//evil.example.com')).status).toBe(301);
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
