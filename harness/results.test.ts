// The results store: folder layout, relative latest links (also in a copied tree), schema checks that
// name the bad field, reading back, and the newest-first run list.
import { cp, mkdtemp, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syntheticRun } from './report/fixtures.ts';
import {
  countOps,
  createRunFolder,
  folderTime,
  listRuns,
  parseFolderTime,
  readHistory,
  readResults,
  validateResults,
  writeResults,
} from './results.ts';
import type { RunResults } from './results.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'faultline-results-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const t1 = new Date('2026-11-22T15:30:12.345Z');
const t2 = new Date('2026-11-22T16:00:00.001Z');
const t0 = new Date('2026-11-21T09:00:00.000Z');

function results(overrides: Partial<RunResults> = {}, name = 'lww-partition', time = t1): RunResults {
  return {
    formatVersion: 1,
    valid: false,
    test: { name, seed: 7, workload: 'lww', nemesis: ['partition'], nodes: ['n1', 'n2', 'n3'], startTime: time.toISOString() },
    checkers: {
      convergence: { valid: false, anomalies: [{ type: 'non-converged', ops: [3, 4], message: 'n1 and n2 disagree on e1/pos', values: { n1: 'a', n2: 'b' } }] },
      'lost-writes': { valid: true },
    },
    durationMs: 1234,
    opCounts: { ok: 10, fail: 2, info: 1 },
    ...overrides,
  };
}

describe('folder names', () => {
  it('turns a start time into a filesystem-safe name and back', () => {
    expect(folderTime(t1)).toBe('20261122T153012.345Z');
    expect(parseFolderTime('20261122T153012.345Z')).toBe('2026-11-22T15:30:12.345Z');
    expect(parseFolderTime('latest')).toBeUndefined();
  });
});

describe('createRunFolder', () => {
  it('lays out the run folder and points both latest links at it', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    expect(f.dir).toBe(path.resolve(root, 'lww-partition', '20261122T153012.345Z'));
    expect(path.basename(f.testJson)).toBe('test.json');
    expect(path.basename(f.history)).toBe('history.jsonl');
    expect(path.basename(f.results)).toBe('results.json');
    expect(path.basename(f.report)).toBe('report.html');
    expect(path.basename(f.junit)).toBe('junit.xml');
    expect(f.nodeLog('n2')).toBe(path.join(f.dir, 'nodes', 'n2.log'));
    expect((await stat(f.nodesDir)).isDirectory()).toBe(true);
    // Relative targets, so a copied results tree still resolves.
    expect(await readlink(path.join(root, 'latest'))).toBe(path.join('lww-partition', '20261122T153012.345Z'));
    expect(await readlink(path.join(root, 'lww-partition', 'latest'))).toBe('20261122T153012.345Z');
    expect(await realpath(path.join(root, 'latest'))).toBe(await realpath(f.dir));
  });

  it('moves latest to a newer run but never back to an older one', async () => {
    await createRunFolder(root, 'lww-partition', t1);
    const newer = await createRunFolder(root, 'set-kill', t2);
    expect(await realpath(path.join(root, 'latest'))).toBe(await realpath(newer.dir));
    await createRunFolder(root, 'lww-partition', t0);
    expect(await realpath(path.join(root, 'latest'))).toBe(await realpath(newer.dir));
    expect(await readlink(path.join(root, 'lww-partition', 'latest'))).toBe('20261122T153012.345Z');
  });

  it('keeps working when the tree is copied elsewhere', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    await writeResults(f, results());
    const copy = `${root}-copy`;
    try {
      await cp(root, copy, { recursive: true, verbatimSymlinks: true });
      const r = await readResults(path.join(copy, 'latest'));
      expect(r.test.name).toBe('lww-partition');
      expect(await realpath(path.join(copy, 'latest'))).toBe(await realpath(path.join(copy, 'lww-partition', '20261122T153012.345Z')));
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('rejects a test name that is not a safe folder name, and a second run in the same millisecond', async () => {
    await expect(createRunFolder(root, '../escape', t1)).rejects.toThrow(/Expected a test name of letters, digits.*"\.\.\/escape"/);
    await expect(createRunFolder(root, 'latest', t1)).rejects.toThrow(/not "latest"/);
    await createRunFolder(root, 'lww', t1);
    await expect(createRunFolder(root, 'lww', t1)).rejects.toThrow(/already exists/);
  });
});

describe('results.json', () => {
  it('round-trips a valid file', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    const r = results({ stats: { n1: { node: 'n1', writes: 5, messagesPerWrite: 2.5 } }, recoveryMs: 300 });
    await writeResults(f, r);
    expect(await readResults(f)).toEqual(r);
    expect(await readResults(f.dir)).toEqual(r);
  });

  it('names the field when a checker verdict is not true|false|unknown', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    const bad = results({ checkers: { convergence: { valid: 'yes' as never } } });
    await expect(writeResults(f, bad)).rejects.toThrow('results.json: /checkers/convergence/valid must be true|false|unknown');
    await expect(stat(f.results)).rejects.toThrow(/ENOENT/);
  });

  it('names a missing field and a malformed anomaly when reading a bad file back', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    const bad = { ...results(), opCounts: undefined, checkers: { set: { valid: false, anomalies: [{ type: 'lost', ops: ['x'], message: 'm' }] } } };
    await writeFile(f.results, JSON.stringify(bad));
    const error = await readResults(f).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(f.results);
    expect((error as Error).message).toContain('/opCounts is required');
    expect((error as Error).message).toContain('/checkers/set/anomalies/0/ops/0 must be integer');
  });

  it('rejects an overall verdict better than its checkers', () => {
    expect(() => validateResults(results({ valid: true }))).toThrow('results.json: /valid is true but checker "convergence" is false');
    expect(() => validateResults(results({ valid: 'unknown', checkers: { a: { valid: true } } }))).not.toThrow();
  });

  it('says what is wrong with a missing or unparsable file', async () => {
    const f = await createRunFolder(root, 'lww-partition', t1);
    await expect(readResults(f)).rejects.toThrow(/no such file; the run may still be going or have crashed/);
    await writeFile(f.results, '{"valid": tru');
    await expect(readResults(f)).rejects.toThrow(/results\.json: not valid JSON/);
  });
});

describe('history files', () => {
  it('reads history.jsonl and counts completions of client ops only', async () => {
    const run = syntheticRun({ ops: 50, workers: 5 });
    const file = path.join(root, 'history.jsonl');
    await writeFile(file, run.history.map((op) => JSON.stringify(op)).join('\n') + '\n');
    const back = await readHistory(file);
    expect(back).toEqual(run.history);
    const counts = countOps(back);
    expect(counts.ok + counts.fail + counts.info).toBe(50 + 5); // 50 client ops + 5 final reads
    expect(counts.invoke).toBe(55);
  });

  it('names the line of a corrupt history', async () => {
    const file = path.join(root, 'history.jsonl');
    await writeFile(file, '{"index":0}\n{"index":1,\n');
    await expect(readHistory(file)).rejects.toThrow(`${file}:2: not valid JSON`);
  });
});

describe('listRuns', () => {
  it('lists runs newest first with verdict, nemesis and op count; a run without results is incomplete', async () => {
    const a = await createRunFolder(root, 'lww-partition', t1);
    await writeResults(a, results());
    const b = await createRunFolder(root, 'set-kill', t2);
    await writeResults(b, results({ valid: true, checkers: { set: { valid: true } }, test: { ...results().test, name: 'set-kill', nemesis: [] }, opCounts: { ok: 100, fail: 0, info: 0 } }));
    const c = await createRunFolder(root, 'lww-partition', t0);
    const runs = await listRuns(root);
    expect(runs.map((r) => [r.name, r.time, r.verdict, r.nemesis, r.ops])).toEqual([
      ['set-kill', t2.toISOString(), true, 'none', 100],
      ['lww-partition', t1.toISOString(), false, 'partition', 13],
      ['lww-partition', t0.toISOString(), 'incomplete', '?', 0],
    ]);
    expect(runs[2].path).toBe(c.dir);
    expect(runs[2].error).toMatch(/no such file/);
    expect(await readFile(path.join(runs[0].path, 'results.json'), 'utf8')).toContain('"set-kill"');
  });

  it('returns nothing for a missing results folder', async () => {
    expect(await listRuns(path.join(root, 'nope'))).toEqual([]);
  });
});
