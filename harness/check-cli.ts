// `npm run check -- <input>… [options]`: re-checks recorded histories without a cluster, many in one
// process. An input is a run folder (history.jsonl + test.json), a history.jsonl (with a test.json next
// to it, or --workload), a Jepsen history.edn, a Jepsen log (jepsen.util op lines, as in Porcupine's etcd
// data), or a folder, searched for run folders and histories; any file may be gzipped (.gz). EDN and log
// histories are checked for linearizability with a model (register, cas-register, kv; by default kv
// when the ops are get/put/append, else cas-register). history.jsonl is read as a stream, and a truncated
// final line (a harness killed while writing) is dropped with a warning, so the readable prefix is checked.
// Re-checking a run folder rewrites its results.json and report, as a run would.
//
// One input prints its full table; several print one line each and a summary. --json prints one JSON
// object per input, one per line (the summary goes to stderr). Exit: 1 if any input is invalid, else
// 254 if any could not be read, else 2 if any is unknown, else 0; 254 for bad arguments.
//
// Start-up matters (one process per history in CI loops): harness/check.mjs runs this file bundled, and
// what only some inputs need (the report writer, the results schema's ajv, the EDN parser) is imported
// when first needed.
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { WORKLOADS, type WorkloadName } from '../checkers/workload-names.ts';
import { modelCheckers } from '../checkers/model-checkers.ts';
import { MODEL_NAMES, MODELS, isModelName, type ModelName } from '../checkers/models/index.ts';
import { NIL_READS, type ModelOptions, type NilRead } from '../checkers/models/model.ts';
import { compose, mergeResults, type CheckContext, type CheckResult, type ComposedResult, type Validity } from '../checkers/types.ts';
import type { LinearizationStep } from '../checkers/linearizable.ts';
import type { History, Op } from './history.ts';
import type { Options } from './options.ts';
import type { RunResults } from './results.ts';

const EXIT = { valid: 0, invalid: 1, unknown: 2, badArguments: 254 } as const;

interface CheckCliOptions {
  readonly inputs: readonly string[];
  /** Linearizability model for EDN, log or register histories. */
  readonly model?: ModelName;
  readonly modelOptions: ModelOptions;
  readonly workload?: WorkloadName;
  readonly linearizableBudgetMs?: number;
  readonly allKeys: boolean;
  /** One JSON object per input, one per line, instead of the table. */
  readonly json: boolean;
}

/** Every option, declared once; --help is generated from this table. */
const OPTIONS = [
  { flag: 'model', arg: MODEL_NAMES.join('|'), description: 'linearizability model for a history.edn, a Jepsen log or a register history (default: kv when the ops are get/put/append, else cas-register)' },
  { flag: 'initial-value', arg: 'value', description: 'the value every key holds before the first op, as JSON (e.g. 0; Knossos\'s cas-register data starts at 0); default nil, "" for kv' },
  { flag: 'nil-read', arg: NIL_READS.join('|'), description: 'an ok read of nil: "empty" (the key held nil; default) or "unknown" (Knossos: value not recorded, not judged)' },
  { flag: 'workload', arg: WORKLOADS.join('|'), description: 'checkers to run; default: test.json\'s workload, or the model' },
  { flag: 'budget-ms', arg: 'ms', description: 'linearizability search budget per key (default 10000)' },
  { flag: 'all-keys', arg: '', description: 'decide every key, even after one was found non-linearizable (default: stop the others)' },
  { flag: 'json', arg: '', description: 'print one JSON object per input, one per line (the summary goes to stderr)' },
  { flag: 'help', arg: '', description: 'show this help' },
] as const;

class BadArguments extends Error {}

function help(): string {
  const lines = ['Usage: npm run check -- <run folder | history.jsonl | history.edn | jepsen .log | folder>… [options]', '', 'Options:'];
  const heads = OPTIONS.map((o) => `  --${o.flag}${o.arg ? ` <${o.arg}>` : ''}`);
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  OPTIONS.forEach((o, i) => lines.push(heads[i].padEnd(width) + o.description));
  lines.push('', 'Any file may be gzipped (.gz). A folder is searched for run folders and .jsonl, .edn, .log and .txt histories.');
  lines.push('Exit codes: 1 if any input is invalid, else 254 if any could not be read, else 2 if any is unknown, else 0; 254 for bad arguments.');
  return lines.join('\n');
}

function parseArgs(argv: readonly string[]): CheckCliOptions | 'help' {
  const inputs: string[] = [];
  let model: ModelName | undefined;
  let workload: WorkloadName | undefined;
  let budget: number | undefined;
  let initialValue: unknown;
  let nilRead: NilRead | undefined;
  let json = false;
  let allKeys = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') ? (arg.includes('=') ? [arg.slice(2, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg.slice(2), undefined]) : [undefined, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new BadArguments(`Expected a value after \`--${flag}\`.`);
      return v;
    };
    if (flag === undefined) inputs.push(arg);
    else if (flag === 'help') return 'help';
    else if (flag === 'json') json = true;
    else if (flag === 'all-keys') allKeys = true;
    else if (flag === 'model') {
      const v = value();
      if (!isModelName(v)) throw new BadArguments(`Expected \`--model\` to be ${MODEL_NAMES.join(', ').replace(/, (?=[^,]*$)/, ' or ')}, got "${v}".`);
      model = v;
    } else if (flag === 'initial-value') {
      const v = value();
      try {
        initialValue = JSON.parse(v);
      } catch {
        // A bare word is a string: --initial-value abc means "abc".
        initialValue = v;
      }
    } else if (flag === 'nil-read') {
      const v = value();
      if (!(NIL_READS as readonly string[]).includes(v)) throw new BadArguments(`Expected \`--nil-read\` to be ${NIL_READS.join(' or ')}, got "${v}".`);
      nilRead = v as NilRead;
    } else if (flag === 'workload') {
      const v = value();
      if (!(WORKLOADS as readonly string[]).includes(v)) throw new BadArguments(`Expected \`--workload\` to be one of ${WORKLOADS.join(', ')}, got "${v}".`);
      workload = v as WorkloadName;
    } else if (flag === 'budget-ms') {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new BadArguments(`Expected \`--budget-ms\` to be a positive integer of milliseconds, got "${v}".`);
      budget = n;
    } else throw new BadArguments(`Unknown option \`--${flag}\`. Run with --help for the list.`);
  }
  if (inputs.length === 0) throw new BadArguments('Expected a run folder, history.jsonl, history.edn, Jepsen log or folder to check. Run with --help for usage.');
  if (workload && model && workload !== model) {
    throw new BadArguments(`\`--model ${model}\` only applies to model histories, but \`--workload ${workload}\` was given; drop one of them.`);
  }
  const modelOptions: ModelOptions = { ...(initialValue !== undefined ? { initialValue } : {}), ...(nilRead ? { nilRead } : {}) };
  return { inputs, model, modelOptions, workload, linearizableBudgetMs: budget, allKeys, json };
}

type Kind = 'jsonl' | 'edn' | 'log';

interface Loaded {
  history: Op[];
  test: { workload?: string; nodes?: string[]; nemesis?: string[]; options?: Partial<Options> } | undefined;
  /** results.json's test.nemesis (the packages after `all` was expanded), when the run folder has one. */
  nemesis?: string[];
  kind: Kind;
  runFolder: boolean;
  warnings: string[];
}

/** Checks a line of history.jsonl; the last line may be a truncated write and is dropped with a warning. */
function jsonlCollector(file: string, warnings: string[]) {
  const ops: Op[] = [];
  let lineNo = 0;
  let bad: { line: number; text: string; error: string } | undefined;
  return {
    ops,
    line(text: string): void {
      lineNo++;
      if (bad) throw new BadArguments(`Malformed line ${bad.line} of ${file} (${bad.error}): ${JSON.stringify(bad.text.slice(0, 300))}`);
      if (text.trim() === '') return;
      let op: Op;
      try {
        op = JSON.parse(text) as Op;
      } catch (error) {
        // Judged once the next line is seen: only the very last line may be a truncated write.
        bad = { line: lineNo, text, error: (error as Error).message };
        return;
      }
      const problem = validateOp(op, ops.length);
      if (problem) throw new BadArguments(`Malformed line ${lineNo} of ${file} (${problem}): ${JSON.stringify(text.slice(0, 300))}`);
      ops.push(op);
    },
    end(): Op[] {
      if (bad) warnings.push(`line ${bad.line} of ${file} is truncated (${bad.error}); checking the ${ops.length} ops before it. A killed harness leaves such a line.`);
      return ops;
    },
  };
}

/** Reads history.jsonl line by line (a stream, so a large history is never held as one string). */
async function readJsonl(file: string, warnings: string[]): Promise<Op[]> {
  const c = jsonlCollector(file, warnings);
  if (file.endsWith('.gz')) {
    for (const text of (await readText(file)).split('\n')) c.line(text);
    return c.end();
  }
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const text of lines) c.line(text);
  return c.end();
}

function validateOp(op: Op, position: number): string | undefined {
  if (op === null || typeof op !== 'object') return 'not a JSON object';
  if (op.index !== position) return `index ${String(op.index)}, expected ${position}: indexes must be dense from 0`;
  if (!['invoke', 'ok', 'fail', 'info'].includes(op.type)) return `type ${JSON.stringify(op.type)} is not invoke, ok, fail or info`;
  if (typeof op.f !== 'string') return 'f is missing';
  if (op.process !== 'nemesis' && !Number.isInteger(op.process)) return `process ${JSON.stringify(op.process)} is neither an integer nor "nemesis"`;
  if (typeof op.time !== 'number') return 'time is missing';
  return undefined;
}

async function readText(file: string): Promise<string> {
  const bytes = readFileSync(file);
  if (!file.endsWith('.gz')) return bytes.toString('utf8');
  const { gunzipSync } = await import('node:zlib');
  try {
    return gunzipSync(bytes).toString('utf8');
  } catch (error) {
    throw new BadArguments(`${file} ends in .gz but does not decompress (${(error as Error).message}); gzip it again or drop the .gz suffix.`);
  }
}

/** The format of a history file, from its name (ignoring .gz), else from its first characters. */
function kindOf(file: string, text: string | undefined): Kind | undefined {
  const name = file.replace(/\.gz$/, '');
  if (name.endsWith('.jsonl')) return 'jsonl';
  if (name.endsWith('.edn')) return 'edn';
  if (name.endsWith('.log')) return 'log';
  if (text === undefined) return undefined;
  const start = text.trimStart();
  if (start.startsWith('{"')) return 'jsonl';
  if (/^[[{;]/.test(start)) return 'edn';
  // A Jepsen log: an op line of jepsen.util near the start (checkers/jepsen-log.ts says the same).
  if (/^.*\bjepsen\.util\s+-\s+\S+\s+:(invoke|ok|fail|info)\b/m.test(text.slice(0, 65536))) return 'log';
  return undefined;
}

async function load(input: string): Promise<Loaded> {
  if (!existsSync(input)) throw new BadArguments(`No such file or folder: ${input}. Pass a run folder (results/<test>/<time>), a history.jsonl, a history.edn or a Jepsen log.`);
  const warnings: string[] = [];
  let file = input;
  let testFile: string | undefined;
  const runFolder = statSync(input).isDirectory();
  if (runFolder) {
    file = path.join(input, 'history.jsonl');
    if (!existsSync(file)) throw new BadArguments(`Run folder ${input} has no history.jsonl.`);
    testFile = path.join(input, 'test.json');
    if (!existsSync(testFile)) throw new BadArguments(`Run folder ${input} has no test.json; pass history.jsonl itself with --workload instead.`);
  } else if (file.replace(/\.gz$/, '').endsWith('.jsonl')) {
    const sibling = path.join(path.dirname(file), 'test.json');
    if (existsSync(sibling)) testFile = sibling;
  }
  let test: Loaded['test'];
  if (testFile) {
    try {
      test = JSON.parse(readFileSync(testFile, 'utf8')) as Loaded['test'];
    } catch (error) {
      throw new BadArguments(`Could not read ${testFile}: ${(error as Error).message}`);
    }
  }
  let kind = kindOf(file, undefined);
  if (kind !== 'jsonl') {
    const text = await readText(file);
    kind ??= kindOf(file, text);
    if (kind === 'edn') {
      const { parseEdnHistory, EdnHistoryError } = await import('../checkers/edn.ts');
      try {
        return { history: parseEdnHistory(text), test, kind, runFolder, warnings };
      } catch (error) {
        if (error instanceof EdnHistoryError) throw new BadArguments(`${file}: ${error.message}`);
        throw error;
      }
    }
    if (kind === 'log') {
      const { parseJepsenLog, JepsenLogError } = await import('../checkers/jepsen-log.ts');
      try {
        return { history: parseJepsenLog(text), test, kind, runFolder, warnings };
      } catch (error) {
        if (error instanceof JepsenLogError) throw new BadArguments(`${file}: ${error.message}`);
        throw error;
      }
    }
    if (kind !== 'jsonl') {
      throw new BadArguments(`Cannot tell what kind of history ${file} is: name it .jsonl (faultline), .edn (Jepsen history) or .log (Jepsen log), or start it with an op.`);
    }
  }
  // The packages a run was meant to exercise: results.json has them with `all` expanded, test.json as given.
  let nemesis: string[] | undefined;
  const resultsFile = path.join(path.dirname(file), 'results.json');
  if (existsSync(resultsFile)) {
    try {
      const named = (JSON.parse(readFileSync(resultsFile, 'utf8')) as { test?: { nemesis?: unknown } }).test?.nemesis;
      if (Array.isArray(named)) nemesis = named.map(String);
    } catch {
      warnings.push(`could not read ${resultsFile}; taking the fault packages from test.json`);
    }
  }
  const history = await readJsonl(file, warnings);
  // Without results.json (a run that did not finish), test.json's `all` is expanded from the heal op,
  // which lists the packages the run had in force; with neither, `all` stays as named.
  if (nemesis === undefined && test?.nemesis?.length === 1 && test.nemesis[0] === 'all') {
    const heal = history.find((op) => op.process === 'nemesis' && op.f === 'heal');
    const packages = (heal?.value as { packages?: unknown } | undefined)?.packages;
    if (Array.isArray(packages)) {
      nemesis = packages.map(String);
      warnings.push(`no results.json beside ${file}: took the packages of \`all\` from its heal op (${nemesis.join(', ')})`);
    }
  }
  return { history, test, kind: 'jsonl', runFolder, warnings, nemesis: nemesis ?? test?.nemesis };
}

/** For a public-format history: the model whose ops it mostly has (kv for get/put/append, else cas-register). */
function guessModel(history: History): ModelName {
  const counts = new Map<ModelName, number>();
  for (const op of history) {
    if (op.type !== 'invoke' || op.process === 'nemesis') continue;
    for (const name of MODEL_NAMES) if ((MODELS[name]().fs as readonly string[]).includes(op.f)) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return (counts.get('kv') ?? 0) > (counts.get('cas-register') ?? 0) ? 'kv' : 'cas-register';
}

function resolveWorkload(opts: CheckCliOptions, loaded: Loaded): WorkloadName {
  if (opts.workload) return opts.workload;
  if (opts.model) return opts.model;
  if (loaded.kind !== 'jsonl') return guessModel(loaded.history);
  const w = loaded.test?.workload;
  if (w && (WORKLOADS as readonly string[]).includes(w)) return w as WorkloadName;
  if (w) throw new BadArguments(`test.json names workload "${w}", which has no checkers; pass --workload ${WORKLOADS.join('|')}.`);
  throw new BadArguments('Cannot tell which workload this history is: no test.json next to it. Pass --workload or --model.');
}

function cell(value: unknown): string {
  return value === true ? 'valid' : value === false ? 'INVALID' : 'unknown';
}

function table(result: ComposedResult): string {
  const rows = [['checker', 'verdict', 'anomalies', 'notes']];
  for (const [name, r] of Object.entries(result.results)) {
    const count = typeof r.anomalyCount === 'number' ? r.anomalyCount : (r.anomalies?.length ?? 0);
    const types = r.anomalyTypes ? Object.entries(r.anomalyTypes as Record<string, number>).map(([t, n]) => `${t}×${n}`).join(' ') : '';
    const notes = [r.advisory ? `advisory: ${String(r.expected ?? 'not counted')}` : '', r.error ?? '', types, notJudgedNote(r)].filter(Boolean).join('; ');
    rows.push([name, cell(r.valid) + (r.advisory ? ' (advisory)' : ''), String(count), notes]);
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => (c < 3 ? v.padEnd(widths[c]) : v)).join('  ').trimEnd()).join('\n');
}

/** "3 ops not judged (…)" for a linearizability result that judged some ops but not all. */
function notJudgedNote(r: CheckResult): string {
  if (r.error) return '';
  const counts = { ...((r.skipped as Record<string, number> | undefined) ?? {}), ...((r.notJudged as Record<string, number> | undefined) ?? {}) };
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return total ? `${total} ops not judged (${Object.entries(counts).map(([why, n]) => `${n} ${why}`).join(', ')})` : '';
}

/** The visual answer for a non-linearizable key: the tail of the longest partial linearization, then the op that cannot be placed. */
export function linearizationLines(a: Record<string, unknown>, tail = 8): string[] {
  const steps = (a.linearization as LinearizationStep[] | undefined) ?? [];
  const cannot = a.cannotPlace as { op: number; describe: string } | undefined;
  if (!cannot) return [];
  const total = typeof a.linearizationLength === 'number' ? a.linearizationLength : steps.length;
  const shown = steps.slice(-tail);
  const lines = [`    longest partial linearization of key ${JSON.stringify(a.key)} (${total} ops${total > shown.length ? `, last ${shown.length} shown` : ''}):`];
  const width = Math.max(0, ...shown.map((s) => s.describe.length));
  for (const s of shown) lines.push(`      op ${String(s.op).padStart(6)}  ${s.describe.padEnd(width)}  → ${s.state}`);
  const states = (a.possibleStates as unknown[] | undefined) ?? [];
  lines.push(`    ✗ op ${String(cannot.op).padStart(6)}  ${cannot.describe}  cannot be placed next (the key could only hold ${states.map((s) => (s === null ? 'nil' : JSON.stringify(s))).join(' or ') || 'nothing'})`);
  return lines;
}

interface Checked {
  readonly input: string;
  readonly kind?: Kind;
  readonly runFolder?: boolean;
  readonly verdict: Validity | 'error';
  readonly ops?: number;
  readonly workload?: WorkloadName;
  readonly nodes?: readonly string[];
  readonly result?: ComposedResult;
  readonly warnings: readonly string[];
  /** Results kept from the run (run, heal) when a run folder was re-checked. */
  readonly kept?: readonly string[];
  readonly faults?: string;
  readonly error?: string;
  readonly elapsedMs: number;
}

/** Checks one input; bad input becomes an `error` entry, never a crash of the whole batch. */
async function checkOne(input: string, opts: CheckCliOptions): Promise<Checked> {
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 10) / 10;
  let loaded: Loaded;
  let workload: WorkloadName;
  try {
    loaded = await load(input);
    workload = resolveWorkload(opts, loaded);
  } catch (error) {
    if (error instanceof BadArguments) return { input, verdict: 'error', error: error.message, warnings: [], elapsedMs: ms() };
    throw error;
  }
  const { checkContext } = loaded.kind === 'jsonl' ? await import('./check-context.ts') : { checkContext: undefined };
  // The calls of the store's workloads (the api checker requires each acknowledged once); a model workload's checkers do not read them.
  const calls = checkContext && !isModelName(workload) ? (await import('./systems/store-mesh/workloads.ts')).workloads[workload]?.calls : undefined;
  const ctx: CheckContext = {
    ...(checkContext ? checkContext(loaded.test?.nodes ?? [], workload, loaded.test?.options ?? {}, calls) : { nodes: [], workload }),
    nemesis: loaded.nemesis ?? [],
    ...(opts.linearizableBudgetMs !== undefined ? { linearizableBudgetMs: opts.linearizableBudgetMs } : {}),
    ...(opts.allKeys ? { linearizableAllKeys: true } : {}),
  };
  const history: History = loaded.history;
  // The store's workloads need every checker (index.ts); a model workload only its three.
  const checkers = isModelName(workload) ? modelCheckers(workload, opts.modelOptions) : (await import('../checkers/index.ts')).checkersFor(workload);
  const result = compose(checkers)(history, ctx);

  // Re-checking a run folder refreshes its verdict files, keeping what only the run knew (stats,
  // durations, and the run's own `run`/`heal` results, which no history can re-derive). The verdict
  // printed and exited with is then the merged one, exactly as the results.json written says.
  let verdict: Validity = result.valid;
  const kept: string[] = [];
  const runTest = (loaded.test ?? {}) as Record<string, any>;
  const { faultsLine, packagesRan } = loaded.kind === 'jsonl' ? await import('./report/faults.ts') : { faultsLine: undefined, packagesRan: undefined };
  if (loaded.runFolder && !existsSync(path.join(input, 'results.json')) && !(runTest.name && runTest.startTime && typeof runTest.seed === 'number')) {
    loaded.warnings.push('not writing results.json: the folder has none and its test.json lacks name, seed or startTime');
  } else if (loaded.runFolder && packagesRan) {
    const { countOps, existingRunFolder, readResults } = await import('./results.ts');
    const { writeRunOutputs } = await import('./report/index.ts');
    const folder = existingRunFolder(input);
    const before = existsSync(folder.results) ? await readResults(folder).catch((error: Error) => {
      loaded.warnings.push(`${error.message}; writing a fresh results.json`);
      return undefined;
    }) : undefined;
    const checkers = { ...result.results, ...Object.fromEntries(Object.entries(before?.checkers ?? {}).filter(([n]) => n === 'run' || n === 'heal')) };
    const test = runTest;
    const results: RunResults = {
      ...(before ?? { formatVersion: 1, durationMs: 0, test: { name: test.name, seed: test.seed, workload, nemesis: loaded.nemesis ?? test.nemesis ?? [], nodes: ctx.nodes, startTime: test.startTime } }),
      checkers,
      valid: mergeResults(Object.values(checkers)),
      opCounts: countOps(history),
      ...(before ? { test: { ...before.test, nemesisRan: packagesRan(result.results.faults, ctx.nemesis ?? []) } } : {}),
      rechecked: new Date().toISOString(),
    } as RunResults;
    await writeRunOutputs(folder, { test: test ?? {}, history, results });
    verdict = results.valid;
    for (const [name, r] of Object.entries(checkers)) if (!(name in result.results)) kept.push(`${name}: ${cell(r.valid)}, kept from the run: ${r.error ?? ''}`);
  }
  const faults = faultsLine?.(result.results.faults, ctx.nemesis ?? []);
  return { input, kind: loaded.kind, runFolder: loaded.runFolder, verdict, ops: history.length, workload, nodes: ctx.nodes, result, warnings: loaded.warnings, kept, faults, elapsedMs: ms() };
}

/** A folder that is not a run folder: its run folders and history files, recursively, in name order. */
function expand(input: string): string[] {
  if (!existsSync(input) || !statSync(input).isDirectory() || existsSync(path.join(input, 'history.jsonl'))) return [input];
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (existsSync(path.join(p, 'history.jsonl')) && existsSync(path.join(p, 'test.json'))) found.push(p);
        else if (!entry.name.startsWith('.') && entry.name !== 'node_modules') walk(p);
      } else if (/\.(jsonl|edn|log|txt)(\.gz)?$/.test(entry.name) && !(entry.name.startsWith('history.jsonl') && existsSync(path.join(dir, 'test.json')))) {
        found.push(p);
      }
    }
  };
  walk(input);
  return found.length ? found : [input];
}

function printFull(c: Checked): void {
  for (const w of c.warnings) console.error(`check: warning: ${w}`);
  if (c.error) {
    console.error(`check: ${c.error}`);
    return;
  }
  const result = c.result!;
  console.log(`${c.input}: ${c.ops} ops, workload ${c.workload}${c.nodes?.length ? `, nodes ${c.nodes.join(',')}` : ''}`);
  console.log(table(result));
  // The first anomalies of each checker, so the table says where to look without --json.
  for (const [name, r] of Object.entries(result.results)) {
    (r.anomalies ?? []).slice(0, 3).forEach((a, i) => {
      console.log(`  ${name}: ${a.type} [ops ${a.ops.join(', ')}] ${a.message}`);
      if (i === 0) for (const line of linearizationLines(a)) console.log(line);
    });
  }
  for (const line of c.kept ?? []) console.log(line);
  if (c.faults) console.log(c.faults);
  console.log(`verdict: ${cell(c.verdict)}`);
}

function printLine(c: Checked): void {
  for (const w of c.warnings) console.error(`check: warning: ${c.input}: ${w}`);
  if (c.error) {
    console.log(`${'ERROR'.padEnd(8)}${c.input}: ${c.error}`);
    return;
  }
  const lin = c.result!.results.linearizability;
  const notes: string[] = [`${c.ops} ops`, String(c.workload)];
  if (lin && typeof lin.keys === 'number') notes.push(`${lin.keys} ${lin.keys === 1 ? 'key' : 'keys'}`);
  if (lin) {
    const nj = notJudgedNote(lin);
    if (nj) notes.push(nj);
  }
  notes.push(`${c.elapsedMs} ms`);
  console.log(`${cell(c.verdict).padEnd(8)}${c.input}  (${notes.join(', ')})`);
  for (const [name, r] of Object.entries(c.result!.results)) {
    if (r.advisory) continue;
    const a = r.anomalies?.[0];
    if (a) console.log(`        ${name}: ${a.type} [ops ${a.ops.join(', ')}] ${a.message}`);
    else if (r.valid !== true && r.error) console.log(`        ${name}: ${r.error}`);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: CheckCliOptions | 'help';
  try {
    opts = parseArgs(argv);
  } catch (error) {
    if (error instanceof BadArguments) {
      console.error(`check: ${error.message}`);
      return EXIT.badArguments;
    }
    throw error;
  }
  if (opts === 'help') {
    console.log(help());
    return 0;
  }
  const inputs = opts.inputs.flatMap(expand);
  const single = inputs.length === 1 && opts.inputs.length === 1;
  const started = performance.now();
  const tally = { valid: 0, invalid: 0, unknown: 0, error: 0 };
  for (const input of inputs) {
    const c = await checkOne(input, opts);
    tally[c.verdict === 'error' ? 'error' : c.verdict === true ? 'valid' : c.verdict === false ? 'invalid' : 'unknown']++;
    if (opts.json) {
      // valid is the verdict exited with (for a run folder, merged with what the run kept); an unreadable input has `error` instead.
      const { result, verdict, input: _input, ...rest } = c;
      console.log(JSON.stringify({ input: c.input, ...(verdict === 'error' ? {} : { valid: verdict }), ...rest, ...(result ? { results: result.results } : {}) }));
    } else if (single) printFull(c);
    else printLine(c);
  }
  if (!single || opts.json) {
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const line = `checked ${inputs.length} ${inputs.length === 1 ? 'input' : 'inputs'} in ${seconds} s: ${tally.valid} valid, ${tally.invalid} invalid, ${tally.unknown} unknown, ${tally.error} unreadable`;
    if (opts.json) console.error(line);
    else console.log(line);
  }
  return tally.invalid ? EXIT.invalid : tally.error ? EXIT.badArguments : tally.unknown ? EXIT.unknown : EXIT.valid;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(`check: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exitCode = EXIT.unknown;
    },
  );
}
