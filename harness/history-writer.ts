// Appends ops to history.jsonl as the run goes and keeps them in memory for the checkers. Lines are
// buffered for at most FLUSH_MS and written with synchronous appends, so a harness that is killed
// leaves a readable prefix of the history (at worst one torn last line, which readers tolerate), and
// `close()` or a crash handler flushes the rest.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Op, OpType, Process } from './history.ts';

const FLUSH_MS = 50;
const FLUSH_LINES = 512;

export interface OpInput {
  readonly process: Process;
  readonly node?: string;
  readonly type: OpType;
  readonly f: string;
  readonly value: unknown;
  readonly error?: string;
}

export class HistoryWriter {
  readonly ops: Op[] = [];
  readonly path: string;
  readonly #fd: number;
  readonly #startNs: bigint;
  #buffer: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(path: string, startNs: bigint = process.hrtime.bigint()) {
    this.path = path;
    this.#fd = openSync(path, 'a');
    this.#startNs = startNs;
  }

  /** Nanoseconds since the run started (monotonic). */
  now(): number {
    return Number(process.hrtime.bigint() - this.#startNs);
  }

  append(input: OpInput): Op {
    const op: Op = { index: this.ops.length, time: this.now(), ...input };
    if (op.error === undefined) delete (op as { error?: string }).error;
    if (op.node === undefined) delete (op as { node?: string }).node;
    this.ops.push(op);
    if (this.#closed) return op;
    this.#buffer.push(JSON.stringify(op));
    if (this.#buffer.length >= FLUSH_LINES) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return op;
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0 || this.#closed) return;
    const text = this.#buffer.join('\n') + '\n';
    this.#buffer = [];
    writeSync(this.#fd, text);
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    closeSync(this.#fd);
  }
}
