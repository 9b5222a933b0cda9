import { describe, expect, it } from 'vitest';
import { JepsenLogError, looksLikeJepsenLog, parseJepsenLog } from '../jepsen-log.ts';
import { linearizable } from '../linearizable.ts';

const LOG = `2014-04-10 INFO  jepsen.core - Running test
INFO  jepsen.util - 0	:invoke	:write	1
INFO  jepsen.util - 0	:ok	:write	1
INFO  jepsen.util - 1	:invoke	:cas	[1 2]
INFO  jepsen.util - 1	:fail	:cas	[1 2]
INFO  jepsen.util - 2	:invoke	:read	nil
INFO  jepsen.util - 2	:ok	:read	1
INFO  jepsen.util - :nemesis	:info	:start	nil
INFO  jepsen.util - 3	:invoke	:read	nil
INFO  jepsen.util - 3	:fail	:read	:timed-out
`;

describe('Jepsen logs', () => {
  it('reads the op lines (process, type, f, value) and leaves other log lines out', () => {
    expect(looksLikeJepsenLog(LOG)).toBe(true);
    const ops = parseJepsenLog(LOG);
    expect(ops).toHaveLength(9);
    expect(ops[2]).toEqual({ index: 2, time: 2, process: 1, type: 'invoke', f: 'cas', value: [1, 2] });
    expect(ops[6]).toMatchObject({ process: 'nemesis', type: 'info', f: 'start', value: null });
    expect(ops[8]).toMatchObject({ type: 'fail', f: 'read', value: 'timed-out' });
    // The failed cas did not happen, so the read of 1 is fine.
    expect(linearizable({ model: 'cas-register' })(ops, { nodes: [], workload: 'cas-register' }).valid).toBe(true);
    const stale = parseJepsenLog(LOG.replace(':ok\t:read\t1', ':ok\t:read\t2'));
    expect(linearizable({ model: 'cas-register' })(stale, { nodes: [], workload: 'cas-register' }).valid).toBe(false);
  });

  it('names the line of a value it cannot read', () => {
    expect(() => parseJepsenLog('INFO  jepsen.util - 0\t:invoke\t:write\t{:a 1}\n')).toThrow(JepsenLogError);
    expect(() => parseJepsenLog('INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t#{1}\n')).toThrow(/Line 2 of the Jepsen log has a value that is not/);
  });
});
