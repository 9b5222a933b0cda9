// Reads a Jepsen history.edn into our Op shape, so histories from existing Jepsen tests can be re-checked
// with the register models. The file holds op maps one after another (usually one per line) or one vector
// of them; `;` comments are allowed. Parsing is done by the edn-data package.
//
// Conversion: :process is an integer or :nemesis; :type :invoke/:ok/:fail/:info; :f a keyword (its name);
// :time nanoseconds (the op's position when absent); :index is reassigned to the op's position so it is
// dense. Keywords become their names, sets become arrays, nil becomes null. Register values stay as
// Jepsen writes them (:read nil or the value read, :write v, :cas [old new]); histories of independent
// keys, whose values are [key value] tuples, become {key, value} so the checker splits them by key; so do
// ops that carry their key in a :key field (Porcupine's key-value histories: {:f :get, :key "5", :value nil}).
import { EDNListParser } from 'edn-data/dist/parse.js';
import type { Op, OpType, Process } from '../harness/history.ts';

/** A malformed EDN history, naming the line and its content. */
export class EdnHistoryError extends Error {
  readonly line: number | undefined;
  constructor(message: string, line?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdnHistoryError';
    this.line = line;
  }
}

const TYPES = new Set<string>(['invoke', 'ok', 'fail', 'info']);
/** Ops whose values Jepsen's independent checker wraps as [key value]: the registers' and the key-value model's. */
const KEYED_FS = new Set(['read', 'write', 'cas', 'get', 'put', 'append']);

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Set) return [...v].map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    // edn-data represents tagged values and chars it cannot map to JS as small objects; keep their data.
    if ('tag' in o && 'val' in o) return plain(o.val);
    if ('char' in o && Object.keys(o).length === 1) return o.char;
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

function newParser(): EDNListParser {
  return new EDNListParser({ mapAs: 'object', setAs: 'array', listAs: 'array', keywordAs: 'string', symbolAs: 'string', charAs: 'string' });
}

/**
 * Parses the forms of `text`, feeding the parser line by line so that an error names its line, and an
 * unterminated form (a killed Jepsen run, or a missing bracket) names the line where that form began.
 */
function parseForms(text: string): unknown[] {
  const parser = newParser();
  const forms: unknown[] = [];
  const lines = text.split('\n');
  let formStart = 1;
  for (let i = 0; i < lines.length; i++) {
    try {
      for (const f of parser.next(lines[i] + '\n')) if (f !== undefined) forms.push(f);
    } catch (error) {
      throw new EdnHistoryError(`Malformed EDN on line ${i + 1}: ${JSON.stringify(lines[i].slice(0, 200))}`, i + 1, { cause: error });
    }
    if (parser.stack.length === 0 && parser.mode === 0 && parser.state.trim() === '') formStart = i + 2;
  }
  if (parser.stack.length > 0 || parser.mode !== 0 || parser.state.trim() !== '') {
    throw new EdnHistoryError(
      `Malformed EDN: the form starting on line ${formStart} is never closed: ${JSON.stringify((lines[formStart - 1] ?? '').slice(0, 200))}`,
      formStart,
    );
  }
  return forms;
}

/** Converts the text of a Jepsen history.edn into ops. */
export function parseEdnHistory(text: string): Op[] {
  let forms = parseForms(text);
  if (forms.length === 1 && Array.isArray(forms[0])) forms = forms[0] as unknown[];
  const raw = forms.map((f, i) => {
    if (f === null || typeof f !== 'object' || Array.isArray(f)) {
      throw new EdnHistoryError(`EDN form ${i + 1} is not an op map: ${JSON.stringify(plain(f)).slice(0, 200)}`);
    }
    return plain(f) as Record<string, unknown>;
  });
  // Independent keys: Jepsen's independent checker wraps every register value as [key value].
  // A write (or put, append) of a 2-vector says so; a cas value is a 2-vector of its own, so it cannot.
  const independent = raw.some((o) => (o.f === 'write' || o.f === 'put' || o.f === 'append') && Array.isArray(o.value) && (o.value as unknown[]).length === 2);
  return raw.map((o, i): Op => {
    const type = o.type;
    if (typeof type !== 'string' || !TYPES.has(type)) {
      throw new EdnHistoryError(`Op ${i + 1} has :type ${JSON.stringify(type)}; expected :invoke, :ok, :fail or :info.`);
    }
    let process: Process;
    if (o.process === 'nemesis') process = 'nemesis';
    else if (typeof o.process === 'number' && Number.isInteger(o.process)) process = o.process;
    else throw new EdnHistoryError(`Op ${i + 1} has :process ${JSON.stringify(o.process)}; expected an integer or :nemesis.`);
    if (typeof o.f !== 'string') throw new EdnHistoryError(`Op ${i + 1} has :f ${JSON.stringify(o.f)}; expected a keyword.`);
    let value = o.value ?? null;
    if (independent && process !== 'nemesis' && KEYED_FS.has(o.f) && Array.isArray(value) && value.length === 2) {
      value = { key: value[0], value: value[1] ?? null };
    } else if (o.key !== undefined && process !== 'nemesis') {
      value = { key: o.key, value };
    }
    const op: { -readonly [K in keyof Op]: Op[K] } = {
      index: i,
      time: typeof o.time === 'number' ? o.time : i,
      process,
      type: type as OpType,
      f: o.f,
      value,
    };
    if (o.error !== undefined && o.error !== null) op.error = typeof o.error === 'string' ? o.error : JSON.stringify(o.error);
    if (typeof o.node === 'string') op.node = o.node;
    return op;
  });
}
