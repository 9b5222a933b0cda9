// Reads the op lines of a Jepsen log (jepsen.log, as in Porcupine's etcd test data and the
// linearizability-checker corpus) into our Op shape:
//   INFO  jepsen.util - 3	:invoke	:cas	[3 0]
//   INFO  jepsen.util - 3	:fail	:cas	[3 0]
// Every line that names jepsen.util and an op type is an op: process (an integer or :nemesis), type, f
// and value (nil, a number, a keyword, a string, or a vector of those). Other lines (other loggers,
// stack traces) are not ops and are left out. An op line whose value cannot be read is an error naming
// the line. Semantics are Jepsen's: a :fail op did not happen (a failed cas is dropped, as Knossos does),
// and :info ops, like ops never answered, may or may not have happened.
import type { Op, OpType, Process } from '../harness/history.ts';

export class JepsenLogError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.name = 'JepsenLogError';
    this.line = line;
  }
}

const OP_LINE = /^\S+\s+jepsen\.util\s+-\s+(\S+)\s+:(invoke|ok|fail|info)\s+:?(\S+)(?:\s+(.*?))?\s*$/;

/** True when the text looks like a Jepsen log: an op line of jepsen.util within its first 64 KiB. */
export function looksLikeJepsenLog(text: string): boolean {
  return /^.*\bjepsen\.util\s+-\s+\S+\s+:(invoke|ok|fail|info)\b/m.test(text.slice(0, 65536));
}

/** Parses one EDN value of the small kind Jepsen logs print; undefined when it is something else. */
function scalar(text: string): { value: unknown } | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === ',' || text[i] === '\t')) i++;
  };
  const one = (): { value: unknown } | undefined => {
    ws();
    if (text[i] === '[') {
      i++;
      const items: unknown[] = [];
      for (;;) {
        ws();
        if (i >= text.length) return undefined;
        if (text[i] === ']') {
          i++;
          return { value: items };
        }
        const v = one();
        if (!v) return undefined;
        items.push(v.value);
      }
    }
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0 || text.slice(i + 1, end).includes('\\')) return undefined;
      const s = text.slice(i + 1, end);
      i = end + 1;
      return { value: s };
    }
    const m = /^[^\s,[\]"]+/.exec(text.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    const t = m[0];
    if (t === 'nil') return { value: null };
    if (t === 'true' || t === 'false') return { value: t === 'true' };
    if (t.startsWith(':')) return { value: t.slice(1) };
    if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return { value: Number(t) };
    return undefined;
  };
  const v = one();
  ws();
  return v && i === text.length ? v : undefined;
}

/** Converts the text of a Jepsen log into ops (index and time are the op's position). */
export function parseJepsenLog(text: string): Op[] {
  const ops: Op[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (!line.includes('jepsen.util')) continue;
    const m = OP_LINE.exec(line);
    if (!m) continue;
    const [, p, type, f, raw] = m;
    let process: Process;
    if (p === ':nemesis') process = 'nemesis';
    else if (/^\d+$/.test(p)) process = Number(p);
    else throw new JepsenLogError(`Line ${n + 1} of the Jepsen log has process ${JSON.stringify(p)}; expected an integer or :nemesis: ${JSON.stringify(line.slice(0, 200))}`, n + 1);
    const v = raw === undefined || raw === '' ? { value: null } : scalar(raw);
    if (!v) throw new JepsenLogError(`Line ${n + 1} of the Jepsen log has a value that is not nil, a number, a keyword, a string or a vector of those: ${JSON.stringify(line.slice(0, 200))}`, n + 1);
    ops.push({ index: ops.length, time: ops.length, process, type: type as OpType, f, value: v.value });
  }
  return ops;
}
