// End to end on real Docker: the CLI as a user runs it, against a real 3-node cluster.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const docker = new Docker();

function latestRun(resultsDir: string): string {
  return join(resultsDir, 'latest');
}

function readHistory(dir: string): any[] {
  return readFileSync(join(dir, 'history.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function labelled(runId: string): Promise<{ containers: number; networks: number }> {
  const filters = { label: [`faultline=${runId}`] };
  const [containers, networks] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listNetworks({ filters })]);
  return { containers: containers.length, networks: networks.length };
}

describe('npm run jepsen end to end', () => {
  it('a short lww run with no faults on 3 nodes is valid, reads every node, and leaves nothing behind', async () => {
    const results = mkdtempSync(join(tmpdir(), 'fl-e2e-'));
    const run = await execa('node', ['harness/cli.ts', '--nodes', '3', '--time-limit', '6', '--rate', '300', '--seed', '7', '--results-dir', results], { cwd: root, reject: false, all: true });
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain('VALID');
    expect(run.stdout).toMatch(/report: .*report\.html/);
    const dir = latestRun(results);
    const test = JSON.parse(readFileSync(join(dir, 'test.json'), 'utf8'));
    const verdict = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(verdict.valid).toBe(true);
    expect(test.seed).toBe(7);
    const history = readHistory(dir);
    const ok = history.filter((o) => o.type === 'ok' && o.f !== 'final-read' && o.f !== 'stats');
    expect(ok.length).toBeGreaterThan(500);
    const finalReaders = new Set(history.filter((o) => o.f === 'final-read' && o.type === 'ok').map((o) => o.node));
    expect([...finalReaders].sort()).toEqual(['n1', 'n2', 'n3']);
    for (const f of ['report.html', 'junit.xml', 'nodes/n1.log', 'nodes/n2.log', 'nodes/n3.log']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(await labelled(test.runId)).toEqual({ containers: 0, networks: 0 });
  });

  it('--nemesis partition: the correct service is valid, and with --bug no-anti-entropy convergence fails', async () => {
    const verdictOf = async (extra: string[]) => {
      const results = mkdtempSync(join(tmpdir(), 'fl-e2e-part-'));
      const args = ['harness/cli.ts', '--nodes', '3', '--nemesis', 'partition', '--nemesis-interval', '3', '--time-limit', '10', '--seed', '5', '--results-dir', results, ...extra];
      const run = await execa('node', args, { cwd: root, reject: false, all: true });
      const dir = latestRun(results);
      const verdict = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
      const history = readHistory(dir);
      return { run, verdict, history, runId: JSON.parse(readFileSync(join(dir, 'test.json'), 'utf8')).runId };
    };
    const correct = await verdictOf([]);
    expect(correct.run.exitCode, correct.run.all).toBe(0);
    expect(correct.history.some((o) => o.f === 'start-partition' && !o.error)).toBe(true);
    expect(correct.verdict.checkers.convergence.valid).toBe(true);

    const buggy = await verdictOf(['--bug', 'no-anti-entropy']);
    expect(buggy.run.exitCode, buggy.run.all).toBe(1);
    expect(buggy.verdict.checkers.convergence.valid).toBe(false);
    expect(buggy.verdict.checkers.convergence.anomalies[0].type).toBe('non-converged');
    expect(buggy.run.stdout).toContain('reproduce with: npm run jepsen -- --nodes 3 --nemesis partition --nemesis-interval 3 --time-limit 10');
    expect(buggy.run.stdout).toContain('--bug no-anti-entropy');
    for (const r of [correct, buggy]) expect(await labelled(r.runId)).toEqual({ containers: 0, networks: 0 });
  });

  it('--nemesis all --time-limit 28: every supported package runs (a verified start, then a stop) and results.json says so', async () => {
    const results = mkdtempSync(join(tmpdir(), 'fl-e2e-all-'));
    const run = await execa('node', ['harness/cli.ts', '--nodes', '3', '--nemesis', 'all', '--time-limit', '28', '--seed', '11', '--results-dir', results], { cwd: root, reject: false, all: true });
    const dir = latestRun(results);
    const verdict = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    // netem is skipped where the kernel has no sch_netem; every other package must have run.
    expect(verdict.test.nemesis.filter((p: string) => p !== 'netem')).toEqual(['kill', 'pause', 'disk', 'partition', 'clock', 'packet', 'delay']);
    expect(verdict.test.nemesisRan, run.all).toEqual(verdict.test.nemesis);
    for (const name of verdict.test.nemesis) expect(verdict.checkers.faults.packages[name], name).toMatchObject({ ran: true });
    expect(verdict.checkers.faults.valid, JSON.stringify(verdict.checkers.faults)).toBe(true);
    // The auto schedule for the k = 7 packages that run: interval T / (2k + 3) = 28 / 17 s, the first op
    // after two of them (a calm start, the only window the lag checker can judge in an `all` run: with no
    // lead, faults overlap from the first interval on), and one whole round with two intervals to spare
    // before the time limit (nemesis/schedule.ts).
    expect(run.all).toMatch(/nemesis: one op every 1\.647 s \(auto\), the first after 3\.294 s of calm, 15 before the time limit; first round: /);
    expect(run.stdout).toContain(`faults ran: ${verdict.test.nemesis.join(',')}`);
    // Every nemesis op says when it was invoked and whether it was verified.
    const nemesis = readHistory(dir).filter((o) => o.process === 'nemesis');
    for (const op of nemesis) expect(op.value.invokedAt, op.f).toBeLessThanOrEqual(op.time);
    for (const op of nemesis.filter((o) => o.f !== 'heal')) expect(typeof op.value.verified, op.f).toBe('boolean');
    expect(run.exitCode, run.all).toBe(0);
    expect(await labelled(JSON.parse(readFileSync(join(dir, 'test.json'), 'utf8')).runId)).toEqual({ containers: 0, networks: 0 });
  });

  it('SIGINT mid-run stops early, still writes a readable history and results, and removes the cluster', async () => {
    const results = mkdtempSync(join(tmpdir(), 'fl-e2e-int-'));
    const child = execa('node', ['harness/cli.ts', '--nodes', '3', '--time-limit', '120', '--rate', '200', '--results-dir', results], { cwd: root, reject: false, all: true });
    // Wait until the workload is really running: the history has completed client ops.
    const dir = latestRun(results);
    for (let i = 0; i < 600; i++) {
      if (existsSync(join(dir, 'history.jsonl')) && readHistory(dir).some((o) => o.type === 'ok')) break;
      await sleep(100);
    }
    const runId = JSON.parse(readFileSync(join(dir, 'test.json'), 'utf8')).runId;
    expect((await labelled(runId)).containers).toBe(3);
    child.kill('SIGINT');
    const done = await child;
    expect(done.exitCode, done.all).toBe(2);
    expect(done.all).toContain('SIGINT');
    const history = readHistory(dir);
    expect(history.filter((o) => o.type === 'ok').length).toBeGreaterThan(0);
    const verdict = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(verdict.valid).toBe('unknown');
    expect(verdict.error).toMatch(/interrupted/);
    expect(await labelled(runId)).toEqual({ containers: 0, networks: 0 });
  });
});
