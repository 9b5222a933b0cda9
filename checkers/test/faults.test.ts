// The faults coverage checker on hand-built histories: which named packages ran, which starts were not
// proven in force, and a deferred start proven when its nodes came back.
import { describe, expect, it } from 'vitest';
import { faultOp, faults } from '../faults.ts';
import { HistoryBuilder } from './builder.ts';

const ctx = (nemesis: string[]) => ({ nodes: ['n1', 'n2', 'n3'], workload: 'lww', nemesis });
const ok = { verified: true };

describe('faults', () => {
  it('is true with packages: {} when no package is named and no fault ran', () => {
    const b = new HistoryBuilder();
    b.call(0, 'n1', 'read', {}, 'ok');
    expect(faults(b.ops, ctx([]))).toMatchObject({ valid: true, packages: {}, notRan: [], unverifiedStarts: [] });
    expect(faults(b.ops, { nodes: ['n1'], workload: 'lww' }).packages).toEqual({});
  });

  it('counts starts and stops per package and calls a package run after a verified start and a good stop', () => {
    const b = new HistoryBuilder();
    const s1 = b.nemesis('start-partition', { grudge: { n1: ['n2'] }, ...ok });
    b.nemesis('start-kill', { nodes: ['n3'], ...ok });
    b.nemesis('stop-partition', { grudge: {}, ...ok });
    b.nemesis('bump-clock', { nodes: ['n1'], ...ok });
    b.nemesis('stop-kill', { nodes: ['n3'], ...ok });
    b.nemesis('stop-clock', { nodes: ['n1'], verified: false, unverified: 'n1 read back 300 ms off' });
    b.nemesis('heal', {});
    const r = faults(b.ops, ctx(['partition', 'kill', 'clock']));
    expect(r.valid).toBe(true);
    expect(Object.keys(r.packages)).toEqual(['partition', 'kill', 'clock']);
    expect(r.packages.partition).toEqual({
      named: true,
      starts: { total: 1, errors: 0, verified: 1 },
      stops: { total: 1, errors: 0, verified: 1 },
      firstStartMs: b.ops[s1].time / 1e6,
      firstStopMs: b.ops[s1 + 2].time / 1e6,
      ran: true,
    });
    // A stop that is not verified is still a stop without error (the fault was proven on at start).
    expect(r.packages.clock).toMatchObject({ ran: true, starts: { total: 1, verified: 1 }, stops: { total: 1, verified: 0 } });
  });

  it('is unknown when a named package never ran, and says why for each', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-partition', { ...ok });
    b.nemesis('stop-partition', { ...ok });
    b.nemesis('start-pause', { nodes: ['n1'], verified: false }, );
    b.ops[b.ops.length - 1] = { ...b.ops[b.ops.length - 1], error: 'n1: docker pause failed: boom' };
    b.nemesis('stop-pause', { nodes: ['n1'] });
    b.nemesis('start-kill', { nodes: ['n2'], ...ok });
    b.nemesis('heal', {});
    // After the final heal nothing counts.
    b.nemesis('stop-kill', { nodes: ['n2'], ...ok });
    const r = faults(b.ops, ctx(['partition', 'clock', 'pause', 'kill']));
    expect(r.valid).toBe('unknown');
    expect(r.notRan).toEqual(['clock', 'pause', 'kill']);
    expect(r.packages.clock.why).toBe('never drawn: no start op before the final heal');
    expect(r.packages.pause.why).toMatch(/^its ops failed: every start \(1\) had an error, the first: n1: docker pause failed: boom/);
    expect(r.packages.kill.why).toBe('never stopped before the final heal: a verified start, but no stop op');
    expect(r.anomalies?.filter((a) => a.type === 'not-ran').map((a) => a.package)).toEqual(['clock', 'pause', 'kill']);
    expect(r.anomalies?.find((a) => a.package === 'clock')?.message).toContain('was named but did not run: never drawn');
  });

  it('is unknown when a start was not verified, even if the package ran in another round', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-partition', { grudge: { n1: ['n2'] }, verified: false, unverified: 'the probe does not match the grudge: n2→n1 got through, the grudge cuts it' });
    b.nemesis('stop-partition', { ...ok });
    b.nemesis('start-partition', { ...ok });
    b.nemesis('stop-partition', { ...ok });
    b.nemesis('heal', {});
    const r = faults(b.ops, ctx(['partition']));
    expect(r.valid).toBe('unknown');
    expect(r.notRan).toEqual([]);
    expect(r.packages.partition).toMatchObject({ ran: true, starts: { total: 2, verified: 1 } });
    expect(r.unverifiedStarts).toEqual([0]);
    expect(r.anomalies).toEqual([
      { type: 'unverified-start', ops: [0], package: 'partition', message: 'start-partition (op 0) was not proven in force: the probe does not match the grudge: n2→n1 got through, the grudge cuts it.' },
    ]);
  });

  it('calls a package not run when none of its starts was verified', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-clock', { verified: false, unverified: "n2's clock is 5 ms off, 2000 ms was set" });
    b.nemesis('stop-clock', { ...ok });
    b.nemesis('heal', {});
    const r = faults(b.ops, ctx(['clock']));
    expect(r.packages.clock.why).toBe("not verified: none of its 1 start(s) was proven in force, the first because n2's clock is 5 ms off, 2000 ms was set");
    expect(r.valid).toBe('unknown');
  });

  it('takes a deferred start as verified once the nodes it waited for came back and it was re-applied and verified there', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-kill', { nodes: ['n1', 'n2'], ...ok });
    b.nemesis('start-partition', { grudge: { n1: ['n3'] }, deferred: { n1: 'stopped', n2: 'stopped' }, verified: false, unverified: 'fewer than two nodes are running' });
    b.nemesis('stop-kill', { nodes: ['n1', 'n2'], ...ok, reapplied: { n1: { partition: { verified: true, probe: {} } }, n2: { clock: { verified: true } } } });
    b.nemesis('stop-partition', { ...ok });
    b.nemesis('heal', {});
    const r = faults(b.ops, ctx(['kill', 'partition']));
    expect(r.valid).toBe(true);
    expect(r.packages.partition).toMatchObject({ ran: true, starts: { total: 1, verified: 1 } });
  });

  it('leaves a deferred start unverified when its stop came before the nodes did', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-pause', { nodes: ['n1'], deferred: { n1: 'stopped' }, verified: false, unverified: 'n1 is stopped: paused when restarted' });
    b.nemesis('stop-pause', { nodes: ['n1'], ...ok });
    b.nemesis('stop-kill', { nodes: ['n1'], ...ok, reapplied: { n1: { pause: { verified: true } } } });
    b.nemesis('heal', {});
    const r = faults(b.ops, ctx(['pause']));
    expect(r.valid).toBe('unknown');
    expect(r.unverifiedStarts).toEqual([0]);
    expect(r.notRan).toEqual(['pause']);
  });

  it('does not count a start that does not say it was verified (an old history), without making it unknown by itself', () => {
    const b = new HistoryBuilder();
    b.nemesis('start-partition', { grudge: { n1: ['n2'] } });
    b.nemesis('stop-partition', {});
    b.nemesis('heal', {});
    expect(faults(b.ops, ctx([])).valid).toBe(true);
    expect(faults(b.ops, ctx([])).packages.partition).toMatchObject({ named: false, ran: false });
    expect(faults(b.ops, ctx(['partition'])).valid).toBe('unknown');
  });

  it('tells packet from netem ops by their behaviour, and clock bumps and strobes are starts', () => {
    const b = new HistoryBuilder();
    const ops = [
      b.nemesis('start-packet', { behaviour: 'loss' }),
      b.nemesis('stop-packet', { behaviour: 'delay' }),
      b.nemesis('strobe-clock', {}),
      b.nemesis('heal', {}),
    ].map((i) => faultOp(b.ops[i]));
    expect(ops).toEqual([{ pkg: 'packet', start: true }, { pkg: 'netem', start: false }, { pkg: 'clock', start: true }, undefined]);
    expect(faultOp({ ...b.ops[0], process: 3 })).toBeUndefined();
  });
});
