// `npm run check -- <run folder | history.jsonl | history.edn> [options]`: re-checks a recorded history
// without a cluster. A run folder holds history.jsonl and test.json (workload, nodes); a bare
// history.jsonl uses a test.json next to it when there is one; a Jepsen history.edn is checked with a
// register model. history.jsonl is read as a stream, and a truncated final line (a harness killed while
// writing) is dropped with a warning, so the readable prefix is still checked.
// Prints one verdict line per checker, then exits 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input.
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { checkersFor, WORKLOADS, type WorkloadName } from '../checkers/index.ts';
import { parseEdnHistory, EdnHistoryError } from '../checkers/edn.ts';
import { compose, mergeResults, type CheckContext, type ComposedResult } from '../checkers/types.ts';
import { writeRunOutputs } from './report/index.ts';
import { faultsLine, packagesRan } from './report/faults.ts';
import { countOps, existingRunFolder, readResults, type RunResults } from './results.ts';
import type { History, Op } from './history.ts';
import { checkContext, type Options } from './options.ts';

const EXIT = { valid: 0, invalid: 1, unknown: 2, badArguments: 254 } as const;

interface CheckCliOptions {
  readonly input: string;
  /** Register model for EDN or register histories. */
  readonly model?: 'register' | 'cas-register';
  readonly workload?: WorkloadName;
  readonly linearizableBudgetMs?: number;
  /** Print the whole composed result as JSON after the table. */
  readonly json: boolean;
}

/** Every option, declared once; --help is generated from this table. */
const OPTIONS = [
  { flag: 'model', arg: 'register|cas-register', description: 'register model for a Jepsen history.edn or a register history (default for .edn: cas-register)' },
  { flag: 'workload', arg: WORKLOADS.join('|'), description: 'checkers to run; default: test.json\'s workload, or the model' },
  { flag: 'budget-ms', arg: 'ms', description: 'linearizability search budget per key (default 10000)' },
  { flag: 'json', arg: '', description: 'also print the full result as JSON' },
  { flag: 'help', arg: '', description: 'show this help' },
] as const;

class BadArguments extends Error {}

function help(): string {
  const lines = ['Usage: npm run check -- <run folder | history.jsonl | history.edn> [options]', '', 'Options:'];
  const heads = OPTIONS.map((o) => `  --${o.flag}${o.arg ? ` <${o.arg}>` : ''}`);
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  OPTIONS.forEach((o, i) => lines.push(heads[i].padEnd(width) + o.description));
  lines.push('', 'Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or unreadable input.');
  return lines.join('\n');
}

function parseArgs(argv: readonly string[]): CheckCliOptions | 'help' {
  let input: string | undefined;
  let model: CheckCliOptions['model'];
  let workload: WorkloadName | undefined;
  let budget: number | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') ? (arg.includes('=') ? [arg.slice(2, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg.slice(2), undefined]) : [undefined, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new BadArguments(`Expected a value after \`--${flag}\`.`);
      return v;
    };
    if (flag === undefined) {
      if (input !== undefined) throw new BadArguments(`Expected one history path, got a second one: "${arg}".`);
      input = arg;
    } else if (flag === 'help') return 'help';
    else if (flag === 'json') json = true;
    else if (flag === 'model') {
      const v = value();
      if (v !== 'register' && v !== 'cas-register') throw new BadArguments(`Expected \`--model\` to be register or cas-register, got "${v}".`);
      model = v;
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
  if (input === undefined) throw new BadArguments('Expected a run folder, history.jsonl or history.edn to check. Run with --help for usage.');
  return { input, model, workload, linearizableBudgetMs: budget, json };
}

interface Loaded {
  history: Op[];
  test: { workload?: string; nodes?: string[]; nemesis?: string[]; options?: Partial<Options> } | undefined;
  /** results.json's test.nemesis (the packages after `all` was expanded), when the run folder has one. */
  nemesis?: string[];
  kind: 'jsonl' | 'edn';
  warnings: string[];
}

/** Reads history.jsonl line by line; a final line that does not parse is a truncated write and is dropped. */
async function readJsonl(file: string, warnings: string[]): Promise<Op[]> {
  const ops: Op[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  let bad: { line: number; text: string; error: string } | undefined;
  for await (const text of lines) {
    lineNo++;
    if (bad) throw new BadArguments(`Malformed line ${bad.line} of ${file} (${bad.error}): ${JSON.stringify(bad.text.slice(0, 300))}`);
    if (text.trim() === '') continue;
    let op: Op;
    try {
      op = JSON.parse(text) as Op;
    } catch (error) {
      // Judged once the next line is seen: only the very last line may be a truncated write.
      bad = { line: lineNo, text, error: (error as Error).message };
      continue;
    }
    const problem = validateOp(op, ops.length);
    if (problem) throw new BadArguments(`Malformed line ${lineNo} of ${file} (${problem}): ${JSON.stringify(text.slice(0, 300))}`);
    ops.push(op);
  }
  if (bad) warnings.push(`line ${bad.line} of ${file} is truncated (${bad.error}); checking the ${ops.length} ops before it. A killed harness leaves such a line.`);
  return ops;
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

async function load(input: string): Promise<Loaded> {
  if (!existsSync(input)) throw new BadArguments(`No such file or folder: ${input}. Pass a run folder (results/<test>/<time>), a history.jsonl or a history.edn.`);
  const warnings: string[] = [];
  let file = input;
  let testFile: string | undefined;
  if (statSync(input).isDirectory()) {
    file = path.join(input, 'history.jsonl');
    if (!existsSync(file)) throw new BadArguments(`Run folder ${input} has no history.jsonl.`);
    testFile = path.join(input, 'test.json');
    if (!existsSync(testFile)) throw new BadArguments(`Run folder ${input} has no test.json; pass history.jsonl itself with --workload instead.`);
  } else if (file.endsWith('.jsonl')) {
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
  if (file.endsWith('.edn')) {
    try {
      return { history: parseEdnHistory(readFileSync(file, 'utf8')), test, kind: 'edn', warnings };
    } catch (error) {
      if (error instanceof EdnHistoryError) throw new BadArguments(`${file}: ${error.message}`);
      throw error;
    }
  }
  if (!file.endsWith('.jsonl')) throw new BadArguments(`Expected a .jsonl or .edn history, got ${file}.`);
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
  return { history: await readJsonl(file, warnings), test, kind: 'jsonl', warnings, nemesis: nemesis ?? test?.nemesis };
}

function resolveWorkload(opts: CheckCliOptions, loaded: Loaded): WorkloadName {
  if (opts.workload) {
    if (opts.model && opts.workload !== opts.model) {
      throw new BadArguments(`\`--model ${opts.model}\` only applies to register histories, but \`--workload ${opts.workload}\` was given; drop one of them.`);
    }
    return opts.workload;
  }
  if (opts.model) return opts.model;
  if (loaded.kind === 'edn') return 'cas-register';
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
    const notes = [r.advisory ? `advisory: ${String(r.expected ?? 'not counted')}` : '', r.error ?? '', types].filter(Boolean).join('; ');
    rows.push([name, cell(r.valid) + (r.advisory ? ' (advisory)' : ''), String(count), notes]);
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => (c < 3 ? v.padEnd(widths[c]) : v)).join('  ').trimEnd()).join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: CheckCliOptions | 'help';
  let loaded: Loaded;
  let workload: WorkloadName;
  try {
    opts = parseArgs(argv);
    if (opts === 'help') {
      console.log(help());
      return 0;
    }
    loaded = await load(opts.input);
    workload = resolveWorkload(opts, loaded);
  } catch (error) {
    if (error instanceof BadArguments) {
      console.error(`check: ${error.message}`);
      return EXIT.badArguments;
    }
    throw error;
  }
  for (const w of loaded.warnings) console.error(`check: warning: ${w}`);
  const ctx: CheckContext = {
    ...checkContext(loaded.test?.nodes ?? [], workload, loaded.test?.options ?? {}),
    nemesis: loaded.nemesis ?? [],
    ...(opts.linearizableBudgetMs !== undefined ? { linearizableBudgetMs: opts.linearizableBudgetMs } : {}),
  };
  const history: History = loaded.history;
  const result = compose(checkersFor(workload))(history, ctx);

  // Re-checking a run folder refreshes its verdict files, keeping what only the run knew (stats,
  // durations, and the run's own `run`/`heal` results, which no history can re-derive). The verdict
  // printed and exited with is then the merged one, exactly as the results.json written says.
  let verdict = result.valid;
  const kept: string[] = [];
  const runTest = (loaded.test ?? {}) as Record<string, any>;
  const isRunFolder = loaded.kind === 'jsonl' && statSync(opts.input).isDirectory();
  if (isRunFolder && !existsSync(path.join(opts.input, 'results.json')) && !(runTest.name && runTest.startTime && typeof runTest.seed === 'number')) {
    console.error('check: warning: not writing results.json: the folder has none and its test.json lacks name, seed or startTime');
  } else if (isRunFolder) {
    const folder = existingRunFolder(opts.input);
    const before = existsSync(folder.results) ? await readResults(folder).catch((error: Error) => {
      console.error(`check: warning: ${error.message}; writing a fresh results.json`);
      return undefined;
    }) : undefined;
    const checkers = { ...result.results, ...Object.fromEntries(Object.entries(before?.checkers ?? {}).filter(([n]) => n === 'run' || n === 'heal')) };
    const test = runTest;
    const results: RunResults = {
      ...(before ?? { formatVersion: 1, durationMs: 0, test: { name: test.name, seed: test.seed, workload, nemesis: test.nemesis ?? [], nodes: ctx.nodes, startTime: test.startTime } }),
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

  console.log(`${opts.input}: ${history.length} ops, workload ${workload}${ctx.nodes.length ? `, nodes ${ctx.nodes.join(',')}` : ''}`);
  console.log(table(result));
  // The first anomalies of each checker, so the table says where to look without --json.
  for (const [name, r] of Object.entries(result.results)) {
    for (const a of (r.anomalies ?? []).slice(0, 3)) console.log(`  ${name}: ${a.type} [ops ${a.ops.join(', ')}] ${a.message}`);
  }
  for (const line of kept) console.log(line);
  const faults = faultsLine(result.results.faults, ctx.nemesis ?? []);
  if (faults) console.log(faults);
  console.log(`verdict: ${cell(verdict)}`);
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  return verdict === true ? EXIT.valid : verdict === false ? EXIT.invalid : EXIT.unknown;
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
