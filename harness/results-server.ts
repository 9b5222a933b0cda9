// The results browser (npm run results): serves results/ on 127.0.0.1 with a page listing every run
// (name, time, verdict, nemesis, ops) newest first, each linking to its report.html, and serves the
// run folders' files as they are. `npm run results -- --open latest` only prints the newest report's
// path and exits, for scripts and terminals that open files themselves. It is read-only (GET and HEAD),
// serves regular files only, never redirects off the host, and no request can crash it.
import { constants } from 'node:fs';
import { open, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { listRuns } from './results.ts';
import type { RunSummary } from './results.ts';
import { escapeHtml, verdictWord } from './report/render.ts';

export interface ResultsServerOptions {
  /** The results folder to serve. @default "results" */
  readonly root: string;
  /** TCP port; 0 picks a free one. @default 8080 */
  readonly port: number;
  /** Address to listen on; loopback only, since results can hold anything the nodes logged. @default "127.0.0.1" */
  readonly host?: string;
}

export interface RunningResultsServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

/** The index page: every run, newest first. */
export function renderRunList(runs: readonly RunSummary[], root: string): string {
  const rootAbs = path.resolve(root);
  const rows = runs
    .map((r) => {
      const rel = path.relative(rootAbs, r.path).split(path.sep).map(encodeURIComponent).join('/');
      const verdict = r.verdict === 'incomplete' ? 'incomplete' : verdictWord(r.verdict);
      const cls = r.verdict === true ? 'valid' : r.verdict === false ? 'invalid' : r.verdict === 'unknown' ? 'unknown' : 'incomplete';
      const title = r.error ? ` title="${escapeHtml(r.error)}"` : '';
      return `<tr><td><a href="/${rel}/report.html">${escapeHtml(r.name)}</a></td><td>${escapeHtml(r.time.replace('T', ' ').replace('Z', ' UTC'))}</td><td><span class="badge ${cls}"${title}>${verdict}</span></td><td>${escapeHtml(r.nemesis)}</td><td class="num">${r.ops}</td><td><a href="/${rel}/">files</a></td></tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faultline results</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;color:#1d2430;background:#f6f8fa;margin:0;padding:24px 32px}
h1{font-size:20px;margin:0 0 4px}p{color:#5f6b7a;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;border:1px solid #e3e7ed;min-width:760px}
th,td{padding:6px 14px;border-bottom:1px solid #e3e7ed;text-align:left}th{background:#f6f8fa}td.num{text-align:right}
a{color:#2b6cd6;text-decoration:none}a:hover{text-decoration:underline}
.badge{border-radius:999px;padding:1px 10px;font-size:12px;font-weight:700;color:#fff}
.valid{background:#2e9e5b}.invalid{background:#d64545}.unknown{background:#e39b1b}.incomplete{background:#9aa3ad}
</style></head><body>
<h1>faultline results</h1><p>${runs.length} runs in ${escapeHtml(rootAbs)}, newest first</p>
${runs.length ? `<table><thead><tr><th>test</th><th>started</th><th>verdict</th><th>nemesis</th><th>ops</th><th></th></tr></thead><tbody>\n${rows}\n</tbody></table>` : '<p>No runs yet: start one with <code>npm run jepsen</code>.</p>'}
</body></html>
`;
}

function renderDir(rel: string, entries: string[]): string {
  const href = (e: string) => (e.endsWith('/') ? `${encodeURIComponent(e.slice(0, -1))}/` : encodeURIComponent(e));
  const links = entries.map((e) => `<li><a href="${href(e)}">${escapeHtml(e)}</a></li>`).join('');
  return `<!doctype html><meta charset="utf-8"><title>${escapeHtml(rel)}</title><body style="font:14px system-ui,sans-serif;padding:24px"><p><a href="/">all runs</a></p><h1 style="font-size:18px">${escapeHtml(rel)}</h1><ul>${links}</ul></body>`;
}

/** Starts the server; resolves once it listens. */
export async function startResultsServer(options: ResultsServerOptions): Promise<RunningResultsServer> {
  const root = path.resolve(options.root);
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    // Nothing a request does may take the server down: every failure becomes a reply (or, once the
    // reply has begun, a closed connection).
    respond(root, req, res).catch((error: Error) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': contentTypes['.txt'] });
        res.end(`faultline results server: ${error.message}\n`);
      } else res.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${options.port} on ${host} is in use: pass --port with a free port (or 0 for any)`, { cause: error }) : error),
    );
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://${host}:${port}/`,
    server,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body?: string;
  readonly file?: string;
  readonly location?: string;
  readonly allow?: string;
}

async function respond(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const head = req.method === 'HEAD';
  const reply: Reply =
    req.method !== 'GET' && !head
      ? { status: 405, type: contentTypes['.txt'], body: `Method ${req.method} is not allowed: the results are read-only (GET, HEAD)\n`, allow: 'GET, HEAD' }
      : await route(root, req.url ?? '/');
  const headers: Record<string, string | number> = { 'content-type': reply.type, 'cache-control': 'no-store' };
  if (reply.location) headers.location = reply.location;
  if (reply.allow) headers.allow = reply.allow;
  if (!reply.file) {
    res.writeHead(reply.status, { ...headers, 'content-length': Buffer.byteLength(reply.body ?? '') });
    res.end(head ? undefined : reply.body);
    return;
  }
  // Open without blocking (a FIFO would block a thread-pool thread until a writer came) and check the
  // opened file itself, so a file replaced between the path checks and here is still caught.
  let handle: FileHandle;
  try {
    handle = await open(reply.file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    res.writeHead(code === 'EACCES' || code === 'EPERM' ? 403 : 404, { 'content-type': contentTypes['.txt'] });
    res.end(`Cannot open ${path.basename(reply.file)}: ${code ?? (error as Error).message}\n`);
    return;
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) {
      await handle.close();
      res.writeHead(404, { 'content-type': contentTypes['.txt'] });
      res.end(`Not a regular file: ${path.basename(reply.file)}\n`);
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': s.size });
    if (head) {
      await handle.close();
      res.end();
      return;
    }
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
  const stream = handle.createReadStream();
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

async function route(root: string, url: string): Promise<Reply> {
  if (!url.startsWith('/')) return { status: 400, type: contentTypes['.txt'], body: 'Bad request target\n' };
  // Parsed against a fixed origin as a path: a request for //host must not change the host.
  const pathname = new URL(`http://localhost${url}`).pathname;
  if (pathname === '/' || pathname === '/index.html') {
    return { status: 200, type: contentTypes['.html'], body: renderRunList(await listRuns(root), root) };
  }
  if (pathname === '/runs.json') return { status: 200, type: contentTypes['.json'], body: JSON.stringify(await listRuns(root), null, 2) };
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return { status: 400, type: contentTypes['.txt'], body: 'Bad URL encoding\n' };
  }
  const target = path.resolve(root, `.${rel}`);
  const notFound: Reply = { status: 404, type: contentTypes['.txt'], body: `Not found: ${rel}\n` };
  // Only files inside the results folder, also after following the latest links.
  const real = await realpath(target).catch(() => undefined);
  const realRoot = await realpath(root).catch(() => root);
  if (!real || (real !== realRoot && !real.startsWith(realRoot + path.sep))) return notFound;
  const s = await stat(real).catch(() => undefined);
  if (!s) return notFound;
  if (s.isDirectory()) {
    // Built from the path's segments, so it always starts with exactly one "/": never "//host/".
    if (!pathname.endsWith('/')) return { status: 301, type: contentTypes['.txt'], body: '', location: `/${pathname.split('/').filter(Boolean).join('/')}/` };
    const entries = (await readdir(real, { withFileTypes: true })).map((e) => (e.isDirectory() || e.isSymbolicLink() ? `${e.name}/` : e.name)).sort();
    return { status: 200, type: contentTypes['.html'], body: renderDir(rel, entries) };
  }
  if (!s.isFile()) return { status: 404, type: contentTypes['.txt'], body: `Not a regular file: ${rel}\n` };
  return { status: 200, type: contentTypes[path.extname(real)] ?? 'application/octet-stream', file: real };
}

/** The report.html that --open names: "latest", a test name (its latest run) or "<test>/<time>". */
export async function reportFor(root: string, which: string): Promise<string> {
  const dir = path.resolve(root, which === 'latest' ? 'latest' : which);
  const report = path.join(dir, which.includes('/') || which === 'latest' ? '' : 'latest', 'report.html');
  try {
    return await realpath(report);
  } catch {
    const runs = await listRuns(root);
    throw new Error(
      runs.length === 0
        ? `No runs in ${path.resolve(root)}: start one with npm run jepsen`
        : `No report at ${report}: pass --open latest, a test name (${[...new Set(runs.map((r) => r.name))].join(', ')}) or <test>/<start-time>`,
    );
  }
}

const usage = `Usage: npm run results -- [--port 8080] [--root results] [--open latest|<test>|<test>/<start-time>]
  --port   TCP port on 127.0.0.1 (0 = any free port). Default 8080.
  --root   The results folder. Default results.
  --open   Print the path of that run's report.html and exit instead of serving.`;

export async function main(argv: readonly string[]): Promise<number> {
  let values: { port?: string; root?: string; open?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { port: { type: 'string' }, root: { type: 'string' }, open: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    return 254;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || values.port?.trim() === '') {
    console.error(`Expected \`--port\` to be an integer from 0 to 65535, got ${JSON.stringify(values.port)}\n${usage}`);
    return 254;
  }
  const root = values.root ?? 'results';
  if (values.open !== undefined) {
    try {
      console.log(await reportFor(root, values.open));
      return 0;
    } catch (error) {
      console.error((error as Error).message);
      return 2;
    }
  }
  const running = await startResultsServer({ root, port });
  console.log(`faultline results: ${running.url} (serving ${path.resolve(root)}; Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      console.error(error.message);
      process.exitCode = 2;
    },
  );
}
