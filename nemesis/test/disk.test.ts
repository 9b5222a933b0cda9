// The disk package without Docker: which runs get the layer's privileges, its seeded schedule, the
// layer's status line, and how the checkers read its ops (a power loss is a kill; a full or failing
// disk is down for availability, a slow one is not).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { availability } from '../../checkers/availability.ts';
import { isKillOp, killWindows } from '../../checkers/windows.ts';
import type { History } from '../../harness/history.ts';
import { createRng } from '../../harness/rng.ts';
import { crashTargets, DISK_FAULTS, diskPackage, parseLayerStatus } from '../disk.ts';
import { containerNeeds } from '../index.ts';

const nodes = ['n1', 'n2', 'n3'];

describe('containerNeeds', () => {
  it('grants /dev/fuse and SYS_ADMIN only to runs that name disk or all, and never for a system that refuses disk', () => {
    const none = { devices: [], capAdd: [], env: {} };
    expect(containerNeeds('none')).toEqual(none);
    expect(containerNeeds(['partition', 'kill'])).toEqual(none);
    const disk = existsSync('/dev/fuse') ? { devices: ['/dev/fuse'], capAdd: ['SYS_ADMIN'], env: { FAULTLINE_DISK_LAYER: '1' } } : none;
    expect(containerNeeds(['partition', 'disk'])).toEqual(disk);
    expect(containerNeeds('all')).toEqual(disk);
    expect(containerNeeds('all', { disk: 'no layer in this image' })).toEqual(none);
    expect(containerNeeds(['disk'], { disk: 'no layer in this image' })).toEqual(none);
  });
});

describe('the disk schedule', () => {
  it('draws each start from --disk-faults, and each stop ends the fault it started', () => {
    const ops = [];
    const it_ = diskPackage({ nodes, diskFaults: ['full', 'slow'] }).ops(createRng(4));
    for (let i = 0; i < 40; i++) ops.push(it_.next().value!);
    for (let i = 0; i < ops.length; i += 2) {
      expect(ops[i].f).toBe('start-disk');
      expect(['full', 'slow']).toContain(ops[i].value.fault);
      expect(ops[i + 1]).toEqual({ f: 'stop-disk', value: { fault: ops[i].value.fault, nodes: ops[i].value.nodes } });
    }
    expect(new Set(ops.map((o) => o.value.fault))).toEqual(new Set(['full', 'slow']));
  });

  it('gives every listed fault its turn in each round of starts, and ends every other fault with a power loss', () => {
    const orders = new Set<string>();
    const firsts = new Set<string>();
    // A single target is crashed or left to recover in place by a seeded coin.
    const singles = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const it_ = diskPackage({ nodes }).ops(createRng(seed));
      const faults: string[] = [];
      for (let i = 0; i < 4 * DISK_FAULTS.length; i++) {
        const op = it_.next().value!;
        if (op.f === 'start-disk') faults.push(op.value.fault as string);
        // The power loss itself is the start; every other fault's start and stop name the targets the stop crashes.
        const targets = op.value.nodes as string[];
        if (op.value.fault === 'lose-unsynced') expect(op.value.crashAtStop).toBeUndefined();
        else if (targets.length > 1) expect(op.value.crashAtStop).toEqual(targets.filter((_, j) => j % 2 === 1));
        else singles.add(JSON.stringify(op.value.crashAtStop));
      }
      for (const round of [faults.slice(0, DISK_FAULTS.length), faults.slice(DISK_FAULTS.length)]) expect([...round].sort()).toEqual([...DISK_FAULTS].sort());
      orders.add(faults.join(','));
      firsts.add(faults[0]);
    }
    // Seeded: rounds differ between seeds, and a short run's one turn is not always the same fault.
    expect(orders.size).toBeGreaterThan(1);
    expect(firsts.size).toBeGreaterThan(1);
    expect([...singles].sort()).toEqual(['["n1"]', '["n2"]', '["n3"]', '[]'].filter((x) => singles.has(x)));
    expect(singles.has('[]')).toBe(true);
    expect(singles.size).toBeGreaterThan(1);
    expect(crashTargets(['n3', 'n1', 'n2'], createRng(1))).toEqual(['n2']);
    // Without the power loss in the list nothing crashes; the power loss alone is its own start.
    for (const diskFaults of [['full', 'slow'], ['lose-unsynced']] as const) {
      const only = diskPackage({ nodes, diskFaults: [...diskFaults] }).ops(createRng(3));
      for (let i = 0; i < 8; i++) expect(only.next().value!.value.crashAtStop).toBeUndefined();
    }
    // Without the power loss in the list, the rounds are just seeded orders of what was listed.
    const it_ = diskPackage({ nodes, diskFaults: ['slow', 'full', 'eio-write'] }).ops(createRng(9));
    const starts = Array.from({ length: 12 }, () => it_.next().value!).filter((op) => op.f === 'start-disk').map((op) => op.value.fault as string);
    expect([...starts.slice(0, 3)].sort()).toEqual(['eio-write', 'full', 'slow']);
    expect([...starts.slice(3)].sort()).toEqual(['eio-write', 'full', 'slow']);
  });

  it('refuses an empty fault list and names the faults', () => {
    expect(() => diskPackage({ nodes, diskFaults: [] })).toThrow(`Expected at least one disk fault of: ${DISK_FAULTS.join(', ')}`);
  });
});

describe('the layer status line', () => {
  it('parses every key=number', () => {
    expect(parseLayerStatus('ok enospc=1 eio_write=0 eio_fsync=0 delay_fsync_ms=100 delay_write_ms=0 dirty_bytes=42 fsyncs=7\n')).toEqual({
      enospc: 1,
      eio_write: 0,
      eio_fsync: 0,
      delay_fsync_ms: 100,
      delay_write_ms: 0,
      dirty_bytes: 42,
      fsyncs: 7,
    });
  });
});

describe('checkers and disk ops', () => {
  const nemesis = (index: number, time: number, f: string, fault: string) => ({ index, time, process: 'nemesis' as const, type: 'info' as const, f, value: { fault, nodes: ['n1'], invokedAt: time - 1e6 } });

  it('counts a power loss as a kill of its nodes, and no other disk fault', () => {
    expect(isKillOp({ f: 'start-disk', value: { fault: 'lose-unsynced' } })).toBe(true);
    expect(isKillOp({ f: 'start-disk', value: { fault: 'full' } })).toBe(false);
    expect(isKillOp({ f: 'start-disk', value: { fault: 'full', crashAtStop: ['n1'] } })).toBe(false);
    expect(isKillOp({ f: 'stop-disk', value: { fault: 'full' } })).toBe(false);
    expect(isKillOp({ f: 'stop-disk', value: { fault: 'full', crashAtStop: [] } })).toBe(false);
    expect(isKillOp({ f: 'stop-disk', value: { fault: 'full', crashAtStop: ['n1'] } })).toBe(true);
    expect(isKillOp({ f: 'start-kill', value: {} })).toBe(true);
    // A stop that crashed only some of its nodes (another was paused) names those.
    const crash = { index: 3, time: 20e9, process: 'nemesis' as const, type: 'info' as const, f: 'stop-disk', value: { fault: 'eio-fsync', crashAtStop: ['n1', 'n2'], nodes: ['n1', 'n2'], crashed: ['n2'], invokedAt: 18e9 } };
    const crashKills = killWindows([crash]);
    expect(crashKills.between('n2', 17e9, 19e9)).toBe(3);
    expect(crashKills.between('n1', 17e9, 19e9)).toBeUndefined();
    const h = [nemesis(0, 5e9, 'start-disk', 'lose-unsynced'), nemesis(1, 9e9, 'stop-disk', 'lose-unsynced'), nemesis(2, 12e9, 'start-disk', 'full')];
    const kills = killWindows(h);
    expect(kills.count).toBe(1);
    expect(kills.between('n1', 4e9, 6e9)).toBe(0);
    expect(kills.between('n1', 11e9, 13e9)).toBeUndefined();
  });

  it('does not judge availability of a node while its disk is full, but does while it is slow', () => {
    const ops = (fault: string): History => {
      const h: unknown[] = [nemesis(0, 1e9, 'start-disk', fault)];
      // Ten writes on n1 during the fault, all failed.
      for (let i = 0; i < 10; i++) {
        h.push({ index: h.length, time: 2e9 + i * 1e8, process: i, node: 'n1', type: 'invoke', f: 'write', value: { entity: 'e', component: 'c', value: `v${i}` } });
        h.push({ index: h.length, time: 2e9 + i * 1e8 + 1e6, process: i, node: 'n1', type: 'fail', f: 'write', value: { entity: 'e', component: 'c', value: `v${i}` }, error: 'FAILED_PRECONDITION' });
      }
      h.push({ ...nemesis(h.length, 9e9, 'stop-disk', fault) });
      return h as History;
    };
    expect(availability(ops('full'), { nodes, workload: 'lww' }).judged).toBe(0);
    const slow = availability(ops('slow'), { nodes, workload: 'lww' });
    expect(slow.judged).toBe(10);
    expect(slow.valid).toBe(false);
  });

  it('does not judge availability while a stop ends a slow disk with a power loss, but does before it', () => {
    const h: unknown[] = [nemesis(0, 1e9, 'start-disk', 'slow')];
    const op = (time: number, ok: boolean) => {
      h.push({ index: h.length, time, process: h.length, node: 'n1', type: 'invoke', f: 'write', value: { entity: 'e', component: 'c', value: `v${h.length}` } });
      h.push({ index: h.length, time: time + 1e6, process: h.length - 1, node: 'n1', type: ok ? 'ok' : 'fail', f: 'write', value: { entity: 'e', component: 'c', value: 'v', ts: `000000000000001:00000:n1` }, ...(ok ? {} : { error: 'UNAVAILABLE' }) });
    };
    for (let i = 0; i < 5; i++) op(2e9 + i * 1e8, true);
    // The stop runs from 5 s (invokedAt) to 8 s: the node is down and every op then fails.
    for (let i = 0; i < 10; i++) op(5.5e9 + i * 2e8, false);
    h.push({ index: h.length, time: 8e9, process: 'nemesis', type: 'info', f: 'stop-disk', value: { fault: 'slow', crashAtStop: ['n1'], nodes: ['n1'], crashed: ['n1'], invokedAt: 5e9 } });
    const r = availability(h as History, { nodes, workload: 'lww' });
    expect(r.judged).toBe(5);
    expect(r.valid).toBe(true);
    // Without the crash the same failures count against the node.
    const plain = (h as { f: string; value: Record<string, unknown> }[]).map((o) => (o.f === 'stop-disk' ? { ...o, value: { fault: 'slow', nodes: ['n1'], invokedAt: 5e9 } } : o));
    expect(availability(plain as unknown as History, { nodes, workload: 'lww' })).toMatchObject({ judged: 15, valid: false });
  });
});
