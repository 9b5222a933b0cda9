// The re-check CLI (harness/check-cli.ts), driven through main() on files in a temporary folder.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../harness/check-cli.ts';
import { HistoryBuilder, entity, hlc } from './builder.ts';

let dir: string;
let out: string[];
let err: string[];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'faultline-check-'));
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

function lwwRun(lose: boolean): string {
  const b = new HistoryBuilder();
  const streams = { n1: b.openWatch('n1'), n2: b.openWatch('n2') };
  const w = { entity: 'e1', component: 'pos', value: 'a', requestId: 'r1' };
  b.call(0, 'n1', 'write', w, 'ok', { ...w, ts: hlc(10) });
  const d = { entity: 'e2', component: 'pos', requestId: 'r2' };
  b.call(1, 'n2', 'read', { entity: 'e2', component: 'pos' }, 'ok', { entity: 'e2', component: 'pos', value: null, ts: null });
  b.call(1, 'n2', 'delete', d, 'ok', { ...d, ts: hlc(11, 0, 'n2') });
  // The workload's other calls (the api checker wants each acknowledged once).
  const t = { entity: 'e3', component: 'threat' };
  b.call(2, 'n1', 'read-max', t, 'ok', { ...t, value: null, ts: null });
  b.call(2, 'n1', 'write-max', { ...t, value: 1, requestId: 'r3' }, 'ok', { ...t, value: 1, requestId: 'r3', ts: hlc(12), result: 1 });
  for (const [node, p] of Object.entries(streams)) b.watchEvents(p, node, [['e1', 'pos', 'a', hlc(10)], ['e2', 'pos', '', hlc(11, 0, 'n2'), 'lww', true], ['e3', 'threat', '1', hlc(12), 'max']]);
  // The writes replicated at once; the run goes on past the lag bound (so they are judged), then heals.
  b.wait(2000);
  b.nemesis('heal');
  const tombstone = { components: { pos: { value: '', ts: hlc(11, 0, 'n2'), kind: 'lww' as const, deleted: true } }, counters: {} };
  const final = { e1: entity({ pos: lose ? ['', hlc(1)] : ['a', hlc(10)] }), e2: tombstone, e3: entity({ threat: ['1', hlc(12)] }, {}, 'max') };
  b.finalRound(0, { n1: final, n2: final });
  for (const [node, p] of Object.entries(streams)) b.closeWatch(p, node);
  b.stats({ n1: { writes: 1, relaysSent: 1 }, n2: { writes: 0, relaysSent: 0 } });
  return b.ops.map((o) => JSON.stringify(o)).join('\n') + '\n';
}

describe('npm run check', () => {
  it('checks a run folder and exits 0 when valid, 1 when invalid', async () => {
    writeFileSync(path.join(dir, 'test.json'), JSON.stringify({ workload: 'lww', nodes: ['n1', 'n2'] }));
    writeFileSync(path.join(dir, 'history.jsonl'), lwwRun(false));
    expect(await main([dir])).toBe(0);
    expect(out.join('\n')).toMatch(/lost-writes\s+valid/);
    expect(out.join('\n')).toMatch(/verdict: valid/);

    writeFileSync(path.join(dir, 'history.jsonl'), lwwRun(true));
    out = [];
    expect(await main([dir])).toBe(1);
    expect(out.join('\n')).toMatch(/lost-writes\s+INVALID\s+3\s+lost×1 unexpected-value×2/);
  });

  it('takes the packages of `all` from the heal op when the run left no results.json, and writes them expanded', async () => {
    writeFileSync(path.join(dir, 'test.json'), JSON.stringify({ name: 'lww-all', seed: 1, startTime: '2026-12-02T00:00:00.000Z', workload: 'lww', nodes: ['n1', 'n2'], nemesis: ['all'] }));
    // A run of `--nemesis all` on a cluster that supported no package: the heal lists none in force.
    const lines = lwwRun(false).trimEnd().split('\n').map((l) => JSON.parse(l));
    for (const op of lines) if (op.f === 'heal') op.value = { packages: [], healed: [] };
    writeFileSync(path.join(dir, 'history.jsonl'), lines.map((o) => JSON.stringify(o)).join('\n') + '\n');
    expect(await main([dir])).toBe(0);
    expect(err.join('\n') + out.join('\n')).toMatch(/took the packages of `all` from its heal op/);
    expect(JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')).test.nemesis).toEqual([]);
    // Checked again, now from the results.json it wrote: the same verdict.
    expect(await main([dir])).toBe(0);
  });

  it('drops a truncated final line with a warning and checks the prefix', async () => {
    writeFileSync(path.join(dir, 'test.json'), JSON.stringify({ workload: 'lww', nodes: ['n1', 'n2'] }));
    const lines = lwwRun(false).trimEnd().split('\n').length;
    writeFileSync(path.join(dir, 'history.jsonl'), lwwRun(false) + `{"index":${lines},"time":12,"pro`);
    expect(await main([path.join(dir, 'history.jsonl')])).toBe(0);
    expect(err.join('\n')).toMatch(new RegExp(`line ${lines + 1} of .* is truncated`));
  });

  it('rejects a malformed line that is not the last with 254, naming the line and its content', async () => {
    writeFileSync(path.join(dir, 'h.jsonl'), 'not json\n{"index":0}\n');
    expect(await main([path.join(dir, 'h.jsonl'), '--workload', 'lww'])).toBe(254);
    expect(err.join('\n')).toMatch(/Malformed line 1 of .*: "not json"/);
  });

  it('rejects bad arguments with 254 and a clear message', async () => {
    expect(await main([path.join(dir, 'missing.jsonl')])).toBe(254);
    expect(err.pop()).toMatch(/No such file or folder/);
    expect(await main([dir, '--model', 'queue'])).toBe(254);
    expect(err.pop()).toMatch(/Expected `--model` to be register, cas-register or kv, got "queue"/);
    expect(await main([dir, '--nil-read', 'maybe'])).toBe(254);
    expect(err.pop()).toMatch(/Expected `--nil-read` to be empty or unknown, got "maybe"/);
    expect(await main([dir, '--model', 'kv', '--workload', 'lww'])).toBe(254);
    expect(err.pop()).toMatch(/`--model kv` only applies to model histories.*drop one of them/);
    writeFileSync(path.join(dir, 'h.jsonl'), lwwRun(false));
    expect(await main([path.join(dir, 'h.jsonl')])).toBe(254);
    expect(err.pop()).toMatch(/Pass --workload or --model/);
  });

  it('checks a Jepsen history.edn with a register model', async () => {
    writeFileSync(path.join(dir, 'history.edn'), [
      '{:type :invoke, :f :write, :value 1, :process 0, :time 1}',
      '{:type :ok, :f :write, :value 1, :process 0, :time 2}',
      '{:type :invoke, :f :read, :value nil, :process 1, :time 3}',
      '{:type :ok, :f :read, :value 0, :process 1, :time 4}',
    ].join('\n'));
    expect(await main([path.join(dir, 'history.edn'), '--model', 'register'])).toBe(1);
    expect(out.join('\n')).toMatch(/linearizability: non-linearizable \[ops 3, 2\]/);
  });

  it('says unknown (exit 2) for a history it could judge nothing of: empty, or ops the model does not know', async () => {
    writeFileSync(path.join(dir, 'empty.edn'), '');
    expect(await main([path.join(dir, 'empty.edn')])).toBe(2);
    expect(out.join('\n')).toMatch(/linearizability\s+unknown.*no read, write or cas op to judge/);
    out = [];
    // A queue's ops, which no model has: nothing judged, so unknown, naming what was skipped.
    writeFileSync(path.join(dir, 'queue.edn'), [
      '{:type :invoke, :f :enqueue, :value 1, :process 0, :time 1}',
      '{:type :ok, :f :enqueue, :value 1, :process 0, :time 2}',
      '{:type :invoke, :f :dequeue, :value nil, :process 1, :time 3}',
      '{:type :ok, :f :dequeue, :value 1, :process 1, :time 4}',
    ].join('\n'));
    expect(await main([path.join(dir, 'queue.edn')])).toBe(2);
    expect(out.join('\n')).toMatch(/skipped ops the cas-register model does not know: 1 enqueue, 1 dequeue/);
    expect(out.join('\n')).toMatch(/verdict: unknown/);
  });

  it('checks key-value histories (get, put, append) with the kv model, and says which model fits when another is forced', async () => {
    // Porcupine's kv format: the key in :key. The get sees the put and the append: valid.
    const kvOk = [
      '{:process 0, :type :invoke, :f :put, :key "x", :value "a"}',
      '{:process 0, :type :ok, :f :put, :key "x", :value "a"}',
      '{:process 0, :type :invoke, :f :append, :key "x", :value "b"}',
      '{:process 0, :type :ok, :f :append, :key "x", :value "b"}',
      '{:process 1, :type :invoke, :f :get, :key "x", :value nil}',
    ];
    writeFileSync(path.join(dir, 'kv-ok.txt'), [...kvOk, '{:process 1, :type :ok, :f :get, :key "x", :value "ab"}'].join('\n'));
    expect(await main([path.join(dir, 'kv-ok.txt')])).toBe(0);
    expect(out.join('\n')).toMatch(/workload kv/);
    out = [];
    // The get lost the append: not linearizable, and the partial linearization ends where it breaks.
    writeFileSync(path.join(dir, 'kv-bad.txt'), [...kvOk, '{:process 1, :type :ok, :f :get, :key "x", :value "a"}'].join('\n'));
    expect(await main([path.join(dir, 'kv-bad.txt')])).toBe(1);
    const text = out.join('\n');
    expect(text).toMatch(/longest partial linearization of key "x" \(2 ops\)/);
    expect(text).toMatch(/op +0 +put\("a"\) +→ "a"\n +op +2 +append\("b"\) +→ "ab"\n +✗ op +4 +get\(\) → "a" +cannot be placed next \(the key could only hold "ab"\)/);
    out = [];
    // Forced through a register model, nothing can be judged: unknown, and the message names the fix.
    expect(await main([path.join(dir, 'kv-bad.txt'), '--model', 'cas-register'])).toBe(2);
    expect(out.join('\n')).toMatch(/skipped ops the cas-register model does not know: 2 put|skipped ops the cas-register model does not know: .*pass --model kv/);
  });
});
