// The results store: every run gets its own folder, results/<test-name>/<start-time>/, holding the
// whole test as data (test.json), the history (history.jsonl), the verdict (results.json, checked
// against harness/results.schema.json when written and when read back), the report (report.html,
// junit.xml) and each node's log (nodes/<node>.log). `results/latest` and `results/<test-name>/latest`
// are relative symlinks to the newest run, so a copied results tree keeps working.
import { mkdir, readFile, readdir, readlink, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { CheckResult, Validity } from '../checkers/types.ts';
import { mergeResults, mergeValid } from '../checkers/types.ts';
import type { History, Op } from './history.ts';

/** The summary of the test kept in results.json; the whole test is in test.json. */
export interface ResultsTest {
  /** Filesystem-safe test name, also the folder name under results/. */
  readonly name: string;
  readonly seed: number;
  readonly workload: string;
  /** The fault packages the run was meant to exercise (`all` expanded to what the machine supports); empty without faults. */
  readonly nemesis: readonly string[];
  /** Those of `nemesis` that really ran (a verified start, then a stop), per the faults checker; absent in older results. */
  readonly nemesisRan?: readonly string[];
  readonly nodes: readonly string[];
  /** When the run started, ISO 8601 UTC (Date.toISOString()). */
  readonly startTime: string;
  /** The command line that reproduces the run, e.g. "npm run jepsen -- --nemesis partition --seed 42". */
  readonly command?: string;
  readonly [option: string]: unknown;
}

/** A node's StatsReply (proto/faultline.proto, camelCase numbers), as collected at the end of the run. */
export interface NodeStats {
  readonly node?: string;
  readonly writes?: number;
  readonly messagesPerWrite?: number;
  readonly keysRepaired?: number;
  readonly antiEntropyRounds?: number;
  readonly [counter: string]: number | string | undefined;
}

export interface OpCounts {
  readonly invoke?: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
}

/** The shape of results.json (see harness/results.schema.json). */
export interface RunResults {
  readonly formatVersion: 1;
  /** The merged verdict: false beats unknown beats true; unknown also when the run itself failed. */
  readonly valid: Validity;
  readonly test: ResultsTest;
  /** Checker name → result. */
  readonly checkers: Readonly<Record<string, CheckResult>>;
  /** Node → its stats at the end of the run. */
  readonly stats?: Readonly<Record<string, NodeStats>>;
  readonly durationMs: number;
  /** Milliseconds from the final heal until every node's final read agreed. */
  readonly recoveryMs?: number;
  readonly opCounts: OpCounts;
  /** Why the run itself failed, when it did. */
  readonly error?: string;
  /** e.g. { harness: "0.1.0", node: "v24.21.0" }. */
  readonly versions?: Readonly<Record<string, string>>;
  readonly [extra: string]: unknown;
}

/** The files of one run folder. */
export interface RunFolder {
  /** Absolute path of results/<test-name>/<start-time>/. */
  readonly dir: string;
  readonly testName: string;
  /** The folder name: the start time, filesystem-safe (20261122T153012.345Z). */
  readonly startTime: string;
  readonly testJson: string;
  readonly history: string;
  readonly results: string;
  readonly report: string;
  readonly junit: string;
  readonly nodesDir: string;
  /** Path of nodes/<node>.log. */
  nodeLog(node: string): string;
}

/** One row of listRuns. */
export interface RunSummary {
  readonly name: string;
  /** The start time as ISO 8601 UTC. */
  readonly time: string;
  /** The verdict, or "incomplete" when the run has no results.json (still running or crashed). */
  readonly verdict: Validity | 'incomplete';
  /** Fault package names joined by ",", or "none". */
  readonly nemesis: string;
  /** Completed client ops (ok + fail + info). */
  readonly ops: number;
  /** Absolute path of the run folder. */
  readonly path: string;
  /** Why results.json could not be read, when it could not. */
  readonly error?: string;
}

const testNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const folderTimePattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/;

/** Turns a start time into the folder name: 2026-11-22T15:30:12.345Z → 20261122T153012.345Z. */
export function folderTime(startTime: Date): string {
  if (Number.isNaN(startTime.getTime())) throw new Error('Expected a valid start time, got an invalid Date');
  return startTime.toISOString().replace(/[-:]/g, '');
}

/** Turns a folder name back into ISO 8601, or undefined when it is not one. */
export function parseFolderTime(name: string): string | undefined {
  const m = folderTimePattern.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : undefined;
}

function runFolder(root: string, testName: string, time: string): RunFolder {
  const dir = path.resolve(root, testName, time);
  const nodesDir = path.join(dir, 'nodes');
  return {
    dir,
    testName,
    startTime: time,
    testJson: path.join(dir, 'test.json'),
    history: path.join(dir, 'history.jsonl'),
    results: path.join(dir, 'results.json'),
    report: path.join(dir, 'report.html'),
    junit: path.join(dir, 'junit.xml'),
    nodesDir,
    nodeLog(node: string) {
      if (!testNamePattern.test(node)) throw new Error(`Expected a node name of letters, digits, ".", "_" or "-", got ${JSON.stringify(node)}`);
      return path.join(nodesDir, `${node}.log`);
    },
  };
}

/**
 * Creates results/<testName>/<start-time>/ (and nodes/) and points results/latest and
 * results/<testName>/latest at it, unless a newer run already exists.
 */
/** The RunFolder of an existing run directory (results/<test-name>/<start-time>/), e.g. to re-check it. */
export function existingRunFolder(dir: string): RunFolder {
  const abs = path.resolve(dir);
  return runFolder(path.dirname(path.dirname(abs)), path.basename(path.dirname(abs)), path.basename(abs));
}

export async function createRunFolder(root: string, testName: string, startTime: Date): Promise<RunFolder> {
  if (!testNamePattern.test(testName) || testName === 'latest') {
    throw new Error(
      `Expected a test name of letters, digits, ".", "_" or "-" (not "latest"), got ${JSON.stringify(testName)}; it becomes a folder name under ${root}`,
    );
  }
  const folder = runFolder(root, testName, folderTime(startTime));
  try {
    await mkdir(folder.dir, { recursive: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`Run folder ${folder.dir} already exists: two runs of ${testName} started in the same millisecond`, { cause: error });
    }
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(folder.dir, { recursive: true });
  }
  await mkdir(folder.nodesDir);
  await pointLatest(path.resolve(root, testName, 'latest'), folder.startTime, folder.startTime);
  await pointLatest(path.resolve(root, 'latest'), path.join(testName, folder.startTime), folder.startTime);
  return folder;
}

/** Atomically (re)points a relative symlink, but never from a newer run to an older one. */
async function pointLatest(link: string, target: string, time: string): Promise<void> {
  try {
    const current = await readlink(link);
    const currentTime = path.basename(current);
    if (currentTime > time) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  // A fresh link renamed over the old one means readers never see a missing "latest".
  const temp = `${link}.${process.pid}.${Date.now()}.tmp`;
  await symlink(target, temp);
  await rename(temp, link);
}

/** Writes test.json: the whole test as plain data (options, seed, nodes, versions). */
export async function writeTest(folder: RunFolder, test: object): Promise<void> {
  await writeFile(folder.testJson, `${JSON.stringify(test, null, 2)}\n`);
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

let validator: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(new URL('./results.schema.json', import.meta.url), 'utf8'));
    validator = new Ajv({ allErrors: true, strict: true }).compile(schema);
  }
  return validator;
}

function describeError(e: ErrorObject): string {
  const at = e.instancePath || '/';
  switch (e.keyword) {
    case 'enum':
      return `${at} must be ${(e.params.allowedValues as unknown[]).map(String).join('|')}`;
    case 'required':
      return `${at === '/' ? '' : at}/${e.params.missingProperty} is required`;
    case 'additionalProperties':
      return `${at === '/' ? '' : at}/${e.params.additionalProperty} is not allowed`;
    case 'const':
      return `${at} must be ${JSON.stringify(e.params.allowedValue)}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}

/**
 * Checks a results object against the schema and the one rule a schema cannot say: the overall
 * verdict may not be better than the checkers' merged verdict. Throws one error naming every bad field.
 */
export function validateResults(results: unknown, file = 'results.json'): asserts results is RunResults {
  const validate = schemaValidator();
  if (!validate(results)) {
    const problems = [...new Set((validate.errors ?? []).map(describeError))];
    throw new Error(`${file}: ${problems.join('; ')} (schema: harness/results.schema.json)`);
  }
  const r = results as RunResults;
  // Advisory results (e.g. linearizability of an AP store) are reported but never merged.
  const merged = mergeResults(Object.values(r.checkers));
  if (mergeValid([r.valid, merged]) !== r.valid) {
    const worst = Object.entries(r.checkers).find(([, c]) => c.valid === merged && c.advisory !== true)?.[0];
    throw new Error(`${file}: /valid is ${String(r.valid)} but checker "${worst}" is ${String(merged)}; set valid to mergeResults of every checker`);
  }
}

/** Validates and writes results.json. */
export async function writeResults(folder: RunFolder, results: RunResults): Promise<void> {
  validateResults(results, folder.results);
  await writeFile(folder.results, `${JSON.stringify(results, null, 2)}\n`);
}

/** Reads results.json from a run folder (or a path to the file itself) and validates it. */
export async function readResults(folderOrFile: RunFolder | string): Promise<RunResults> {
  const file = typeof folderOrFile === 'string' ? await resultsFile(folderOrFile) : folderOrFile.results;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${file}: no such file; the run may still be going or have crashed`, { cause: error });
    throw new Error(`${file}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  validateResults(parsed, file);
  return parsed;
}

async function resultsFile(p: string): Promise<string> {
  const s = await stat(p).catch(() => undefined);
  return s?.isDirectory() ? path.join(p, 'results.json') : p;
}

/** Reads history.jsonl; a bad line is an error naming the file and line number. */
export async function readHistory(file: string): Promise<Op[]> {
  const text = await readFile(file, 'utf8');
  const ops: Op[] = [];
  let line = 0;
  for (const raw of text.split('\n')) {
    line++;
    if (raw.trim() === '') continue;
    try {
      ops.push(JSON.parse(raw) as Op);
    } catch (error) {
      throw new Error(`${file}:${line}: not valid JSON (${(error as Error).message}); each line must be one op`, { cause: error });
    }
  }
  return ops;
}

/** Counts completions of client ops by type (what results.json's opCounts holds). */
export function countOps(history: History): OpCounts {
  const counts = { invoke: 0, ok: 0, fail: 0, info: 0 };
  for (const op of history) if (op.process !== 'nemesis') counts[op.type]++;
  return counts;
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

/** Every run under root, newest first. A run without a readable results.json is listed as incomplete. */
export async function listRuns(root: string): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  const names = await readdir(root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of names) {
    if (!entry.isDirectory() || !testNamePattern.test(entry.name)) continue;
    for (const run of await readdir(path.join(root, entry.name), { withFileTypes: true })) {
      const time = parseFolderTime(run.name);
      if (!run.isDirectory() || !time) continue;
      const dir = path.resolve(root, entry.name, run.name);
      try {
        const r = await readResults(dir);
        const { ok, fail, info } = r.opCounts;
        runs.push({ name: entry.name, time, verdict: r.valid, nemesis: r.test.nemesis.join(',') || 'none', ops: ok + fail + info, path: dir });
      } catch (error) {
        runs.push({ name: entry.name, time, verdict: 'incomplete', nemesis: '?', ops: 0, path: dir, error: (error as Error).message });
      }
    }
  }
  return runs.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.name.localeCompare(b.name)));
}

