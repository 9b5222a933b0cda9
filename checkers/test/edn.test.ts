import { describe, expect, it } from 'vitest';
import { parseEdnHistory, EdnHistoryError } from '../edn.ts';
import { linearizable } from '../linearizable.ts';

const JEPSEN = `; A cas-register history as Jepsen writes it: one op map per line.
{:type :invoke, :f :write, :value 3, :process 0, :time 100, :index 0}
{:type :invoke, :f :read, :value nil, :process 1, :time 150, :index 1}
{:type :ok, :f :write, :value 3, :process 0, :time 200, :index 2}
{:type :ok, :f :read, :value 3, :process 1, :time 250, :index 3}
{:type :info, :f :start, :value nil, :process :nemesis, :time 260, :index 4}
{:type :invoke, :f :cas, :value [3 4], :process 0, :time 300, :index 5}
{:type :fail, :f :cas, :value [3 4], :process 0, :time 350, :index 6, :error :timeout}
{:type :invoke, :f :cas, :value [3 5], :process 1, :time 400, :index 7}
{:type :ok, :f :cas, :value [3 5], :process 1, :time 450, :index 8}
{:type :invoke, :f :read, :value nil, :process 1, :time 500, :index 9}
{:type :ok, :f :read, :value 5, :process 1, :time 550, :index 10}
`;

describe('EDN histories', () => {
  it('converts Jepsen op maps into ops, keeping the register values and the nemesis', () => {
    const ops = parseEdnHistory(JEPSEN);
    expect(ops).toHaveLength(11);
    expect(ops[1]).toEqual({ index: 1, time: 150, process: 1, type: 'invoke', f: 'read', value: null });
    expect(ops[4]).toMatchObject({ process: 'nemesis', type: 'info', f: 'start' });
    expect(ops[5].value).toEqual([3, 4]);
    expect(ops[6].error).toBe('timeout');
    expect(linearizable({ model: 'cas-register' })(ops, { nodes: [], workload: 'cas-register' }).valid).toBe(true);
  });

  it('reads a single vector of ops and independent [key value] tuples', () => {
    const ops = parseEdnHistory(`[{:process 0 :type :invoke :f :write :value [:x 1]}
      {:process 0 :type :ok :f :write :value [:x 1]}
      {:process 1 :type :invoke :f :read :value [:y nil]}
      {:process 1 :type :ok :f :read :value [:y 2]}]`);
    expect(ops.map((o) => o.value)).toEqual([{ key: 'x', value: 1 }, { key: 'x', value: 1 }, { key: 'y', value: null }, { key: 'y', value: 2 }]);
    const r = linearizable({ model: 'register' })(ops, { nodes: [], workload: 'register' });
    expect(r.valid).toBe(false);
    expect(r.failedKeys).toEqual(['y']);
  });

  it('names the malformed line and the bad field', () => {
    const bad = JEPSEN.replace('{:type :ok, :f :read, :value 3,', '{:type :ok, :f :read, :value 3 "unterminated,');
    expect(() => parseEdnHistory(bad)).toThrow(EdnHistoryError);
    expect(() => parseEdnHistory(bad)).toThrow(/form starting on line 5 is never closed: "\{:type :ok, :f :read, :value 3 \\"unterminated/);
    expect(() => parseEdnHistory('{:type :ok :f :read :value 1 :process 0}\n{:type :ok :f :read :value [1 2 :process 0}\n')).toThrow(/line 2/);
    expect(() => parseEdnHistory('{:type :done :f :read :process 0}')).toThrow(/:type "done"/);
    expect(() => parseEdnHistory('{:type :ok :f :read :process "p"}')).toThrow(/:process "p"/);
  });
});
