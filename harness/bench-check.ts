// `npm run bench:check-vs-porcupine [-- --rounds N --porcupine DIR]`: `npm run check` beside Porcupine's
// own test binary on the same 102 etcd histories, on this machine, in interleaved rounds; prints JSON with
// the medians and their ratio. Each round runs, in turn:
//   - faultline, batch: `node harness/check.mjs <folder of the 102 logs>` (one process);
//   - faultline, batch through npm: `npm run check -- <folder>` (npm adds its own start-up);
//   - Porcupine: `porcupine.test -test.run TestEtcdJepsen` (built once with `go test -c`; run in its source
//     folder, whose test_data holds the same 102 logs);
//   - one small history as a whole process (etcd_101.log, 154 ops), and `node -e 0` for Node's own start-up.
// Times are wall and CPU (user + sys of the child, from /usr/bin/time). Porcupine's source comes from
// --porcupine (a checkout, or a bare git folder), else $PORCUPINE_DIR, else a shallow clone into
// .cache/porcupine. Without Go the script says so and reports faultline's figures alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { etcdHistories, timedRun } from '../checkers/bench.ts';
import { repoRoot } from './build.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, porcupine: { type: 'string' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`Expected \`--rounds\` to be a positive integer, got "${values.rounds}".`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
}

function loadAverage(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/** A folder with Porcupine's source (go.mod, porcupine_test.go, test_data/), or the reason there is none. */
function porcupineSource(): string {
  const given = values.porcupine ?? process.env.PORCUPINE_DIR;
  const dir = given ? path.resolve(given) : path.join(repoRoot, '.cache', 'porcupine');
  if (!given && !existsSync(dir)) {
    execFileSync('git', ['clone', '--quiet', '--depth', '1', 'https://github.com/anishathalye/porcupine', dir], { stdio: 'inherit' });
  }
  if (existsSync(path.join(dir, 'go.mod'))) return dir;
  // A bare repository (e.g. a mirror): export its tree into a temporary folder.
  if (existsSync(path.join(dir, 'HEAD')) && existsSync(path.join(dir, 'objects'))) {
    const out = mkdtempSync(path.join(tmpdir(), 'porcupine-src-'));
    execFileSync('bash', ['-c', `git --git-dir="${dir}" archive HEAD | tar -x -C "${out}"`]);
    return out;
  }
  throw new Error(`${dir} holds no Porcupine checkout (no go.mod); pass --porcupine <checkout or bare git folder>.`);
}

function goVersion(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const check = path.join(repoRoot, 'harness', 'check.mjs');
const etcd = etcdHistories();
const small = path.join(etcd, 'etcd_101.log');
const loadBefore = loadAverage();

const go = goVersion();
let porcupine: { binary: string; cwd: string } | undefined;
let porcupineProblem: string | undefined;
if (!go) porcupineProblem = 'Go is not installed (no `go` on PATH), so Porcupine could not be built; install it (Debian: apt-get install -y golang-go) and run again.';
else {
  try {
    const src = porcupineSource();
    const binary = path.join(mkdtempSync(path.join(tmpdir(), 'porcupine-bin-')), 'porcupine.test');
    execFileSync('go', ['test', '-c', '-o', binary, '.'], { cwd: src, stdio: 'inherit', env: { ...process.env, GOFLAGS: '-mod=mod' } });
    // The same histories on both sides: Porcupine's test_data against our fixtures.
    const theirs = readdirSync(path.join(src, 'test_data', 'jepsen')).filter((f) => f !== 'etcd_095.log');
    for (const f of theirs) {
      if (!readFileSync(path.join(src, 'test_data', 'jepsen', f)).equals(readFileSync(path.join(etcd, f)))) throw new Error(`Porcupine's ${f} differs from checkers/test/fixtures/porcupine/etcd/${f}.gz`);
    }
    porcupine = { binary, cwd: src };
  } catch (error) {
    porcupineProblem = `Porcupine could not be built: ${(error as Error).message}`;
  }
}

timedRun(process.execPath, [check, small]); // build the bundle, if stale, before timing anything
const runs: Record<string, { wallMs: number[]; cpuMs: number[] }> = {};
const record = (name: string, r: { wallMs: number; cpuMs: number }) => {
  runs[name] ??= { wallMs: [], cpuMs: [] };
  runs[name].wallMs.push(r.wallMs);
  runs[name].cpuMs.push(r.cpuMs);
};
let summary = '';
let porcupineResult = '';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
for (let round = 0; round < rounds; round++) {
  // Alternate who goes first, so neither always runs on a warmer (or busier) machine.
  const order = round % 2 === 0 ? ['faultline', 'porcupine'] : ['porcupine', 'faultline'];
  for (const who of order) {
    if (who === 'faultline') {
      const r = timedRun(process.execPath, [check, etcd]);
      summary = r.stdout.trim().split('\n').at(-1) ?? '';
      record('faultlineBatch', r);
      record('faultlineBatchViaNpm', timedRun(npm, ['run', '--silent', 'check', '--', etcd], repoRoot));
    } else if (porcupine) {
      const r = timedRun(porcupine.binary, ['-test.run', 'TestEtcdJepsen', '-test.count', '1'], porcupine.cwd);
      porcupineResult = r.stdout.trim().split('\n').at(-1) ?? '';
      record('porcupineTestBinary', r);
    }
  }
  record('faultlineSmallHistory', timedRun(process.execPath, [check, small]));
  record('nodeStartup', timedRun(process.execPath, ['-e', '0']));
}
rmSync(etcd, { recursive: true, force: true });

const medians = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { wallMs: median(v.wallMs), cpuMs: median(v.cpuMs) }]));
const ratio = (a: string, b: string, key: 'wallMs' | 'cpuMs') => (medians[a] && medians[b] ? Math.round((medians[a][key] / Math.max(1, medians[b][key])) * 100) / 100 : null);
console.log(JSON.stringify({
  node: process.version,
  go: go ?? null,
  rounds,
  loadAverageBefore: loadBefore,
  loadAverageAfter: loadAverage(),
  histories: 102,
  faultlineSummary: summary,
  porcupineResult: porcupine ? porcupineResult : null,
  ...(porcupineProblem ? { porcupineProblem } : {}),
  medians,
  faultlineOverPorcupine: { wall: ratio('faultlineBatch', 'porcupineTestBinary', 'wallMs'), cpu: ratio('faultlineBatch', 'porcupineTestBinary', 'cpuMs') },
  targets: {
    batchNoSlowerThanPorcupine: medians.porcupineTestBinary ? medians.faultlineBatch.wallMs <= medians.porcupineTestBinary.wallMs : null,
    smallHistoryAtMost150msCpu: medians.faultlineSmallHistory.cpuMs <= 150,
  },
  rawRounds: runs,
}, null, 2));
if (porcupineProblem) console.error(`bench: ${porcupineProblem}`);
