// Verdicts on other checkers' public test data (vendored in fixtures/, see its README): Porcupine's 102
// etcd histories and its key-value histories, and Knossos's cas-register histories, each checked by
// `npm run check` (main() of harness/check-cli.ts) with --json, many files per call.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../harness/check-cli.ts';

const fixtures = path.join(import.meta.dirname, 'fixtures');
let out: string[];

beforeEach(() => {
  out = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => vi.restoreAllMocks());

interface Line {
  input: string;
  valid?: true | false | 'unknown';
  error?: string;
  workload: string;
  results: Record<string, { valid: unknown; keys?: number; notJudged?: Record<string, number>; anomalies?: Record<string, any>[] }>;
}

async function check(args: string[]): Promise<{ code: number; lines: Map<string, Line> }> {
  const code = await main([...args, '--json']);
  const lines = new Map<string, Line>();
  for (const text of out) {
    const line = JSON.parse(text) as Line;
    lines.set(path.basename(line.input), line);
  }
  out = [];
  return { code, lines };
}

/** Knossos's good histories in which no op succeeded: nothing to judge, so unknown. */
const NOTHING_HAPPENED = ['mongodb-v0-ack-rollback-.edn.gz', 'mongodb-v0-ack-rollback-10.edn.gz', 'mongodb-v0-ack-rollback-11.edn.gz', 'mongodb-v0-ack-rollback-9.edn.gz'];

describe('public histories', () => {
  it("Porcupine's etcd histories: all 102 verdicts as Porcupine's tests expect (23 linearizable, 79 not), in one process", async () => {
    const expected = JSON.parse(readFileSync(path.join(fixtures, 'porcupine', 'etcd', 'expected.json'), 'utf8')) as Record<string, boolean>;
    const { code, lines } = await check([path.join(fixtures, 'porcupine', 'etcd')]);
    expect(code).toBe(1);
    expect(lines.size).toBe(102);
    for (const [file, linearizable] of Object.entries(expected)) {
      expect({ file, valid: lines.get(file)?.valid }).toEqual({ file, valid: linearizable });
      expect(lines.get(file)!.workload).toBe('cas-register');
    }
    expect(Object.values(expected).filter(Boolean)).toHaveLength(23);
  });

  it("Porcupine's key-value histories: ok ones valid, bad ones invalid, with the partial linearization of the failing key", async () => {
    const { code, lines } = await check([path.join(fixtures, 'porcupine', 'kv')]);
    expect(code).toBe(1);
    for (const c of ['c01', 'c10', 'c50']) {
      const ok = lines.get(`${c}-ok.txt.gz`)!;
      const bad = lines.get(`${c}-bad.txt.gz`)!;
      expect([c, ok.workload, ok.valid, ok.results.linearizability.keys]).toEqual([c, 'kv', true, 10]);
      expect([c, bad.valid]).toEqual([c, false]);
      const a = bad.results.linearizability.anomalies![0];
      expect(a.linearization.length).toBeGreaterThan(0);
      expect(a.cannotPlace.describe).toMatch(/^get\(\) → "/);
      // The steps are ops of the failing key, each with the state after it.
      for (const step of a.linearization) expect(step.describe).toMatch(/^(get|put|append)\(/);
    }
  });

  it('the same kv histories under a register model judge nothing: unknown (exit 2), never valid', async () => {
    const { code, lines } = await check([path.join(fixtures, 'porcupine', 'kv'), '--model', 'cas-register']);
    expect(code).toBe(2);
    for (const line of lines.values()) {
      expect(line.valid).toBe('unknown');
      expect(line.results.linearizability.keys).toBe(0);
    }
  });

  it("Knossos's cas-register histories with its conventions (initial value 0, nil read = not recorded): 109 good valid, 7 bad invalid", async () => {
    const dir = path.join(fixtures, 'knossos', 'cas-register');
    const { code, lines } = await check([dir, '--initial-value', '0', '--nil-read', 'unknown']);
    expect(code).toBe(1);
    const good = [...lines.values()].filter((l) => l.input.includes('/good/'));
    const bad = [...lines.values()].filter((l) => l.input.includes('/bad/'));
    expect([good.length, bad.length]).toEqual([113, 7]);
    for (const l of bad) expect({ input: l.input, valid: l.valid }).toEqual({ input: l.input, valid: false });
    for (const l of good) {
      const want = NOTHING_HAPPENED.includes(path.basename(l.input)) ? 'unknown' : true;
      expect({ input: l.input, valid: l.valid }).toEqual({ input: l.input, valid: want });
    }
    // Nil reads were counted as not judged, not silently passed.
    const notJudged = good.reduce((n, l) => n + Object.values(l.results.linearizability.notJudged ?? {}).reduce((a, b) => a + b, 0), 0);
    expect(notJudged).toBeGreaterThan(0);
  });

  it('the nil-read convention matters: read as "the register held nil", a start at 0 makes good Knossos histories invalid', async () => {
    const { lines } = await check([path.join(fixtures, 'knossos', 'cas-register', 'good'), '--initial-value', '0']);
    const invalid = [...lines.values()].filter((l) => l.valid === false);
    expect(invalid.length).toBe(89);
  });
});
