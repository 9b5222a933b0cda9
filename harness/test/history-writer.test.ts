import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HistoryWriter } from '../history-writer.ts';

describe('HistoryWriter', () => {
  it('writes one JSON op per line with dense indexes and monotonic times', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fl-hist-')), 'history.jsonl');
    const h = new HistoryWriter(file);
    for (let i = 0; i < 1500; i++) h.append({ process: i % 3, node: 'n1', type: i % 2 ? 'ok' : 'invoke', f: 'write', value: { i } });
    h.append({ process: 'nemesis', type: 'info', f: 'start-partition', value: { grudge: { n1: ['n2'] } } });
    // 1501 ops: the first 1024 were flushed by size before close.
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(1024);
    h.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(1501);
    expect(lines.map((l) => l.index)).toEqual(lines.map((_, i) => i));
    for (let i = 1; i < lines.length; i++) expect(lines[i].time).toBeGreaterThanOrEqual(lines[i - 1].time);
    expect(lines[1500]).toMatchObject({ process: 'nemesis', type: 'info', f: 'start-partition' });
    expect('node' in lines[1500]).toBe(false);
    expect(h.ops.length).toBe(1501);
  });
});
