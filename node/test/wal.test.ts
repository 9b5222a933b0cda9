// Tests of the append-only log (node/wal.ts) on a real temp directory with real fdatasync: framing and
// CRC, torn tails, group commit, compaction, the deferred (ack-before-fsync) mode, and recovery after a
// failed write.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { LogDamagedError, LogUnavailableError, Wal, decodeFrames, encodeFrame, encodeFrames } from '../wal.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'faultline-wal-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openWal(dir: string, mode: 'sync' | 'deferred' = 'sync', salvage = false) {
  const seen: unknown[] = [];
  const { wal, replay } = await Wal.open({ dir, mode, onFatal: (e) => { throw e; }, salvage }, (r) => seen.push(r));
  return { wal, replay, seen };
}

/** A log of `count` records {i}; returns its path and each record's frame offset. */
function writeLog(dir: string, count: number): { path: string; offsets: number[]; data: Buffer } {
  const data = encodeFrames(Array.from({ length: count }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(20) })));
  const path = join(dir, 'log-00000001.dat');
  writeFileSync(path, data);
  return { path, offsets: decodeFrames(data).offsets, data };
}

describe('frames', () => {
  it('round-trip and stop at any truncation or flipped byte', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 10 }), fc.nat(), (records, cut) => {
        const data = Buffer.concat(records.map(encodeFrame));
        expect(decodeFrames(data).records).toEqual(records.map((r) => JSON.parse(JSON.stringify(r))));
        const at = cut % data.length;
        const torn = decodeFrames(data.subarray(0, at));
        expect(torn.records.length).toBeLessThan(records.length);
        const flipped = Buffer.from(data);
        flipped[at] ^= 0xff;
        expect(decodeFrames(flipped).records.length).toBeLessThan(records.length);
      }),
    );
  });
});

describe('Wal', () => {
  it('replays acknowledged records after reopening, in order', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await Promise.all(Array.from({ length: 100 }, (_, i) => wal.append({ i })));
    // Many concurrent appends share fdatasync calls (group commit).
    expect(wal.fsyncs).toBeLessThan(100);
    await wal.close();
    const again = await openWal(dir);
    expect(again.seen).toEqual(Array.from({ length: 100 }, (_, i) => ({ i })));
    await again.wal.close();
  });

  it('syncs records nobody waits for with the next acknowledged group, in order', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    wal.appendLater({ replicated: 1 });
    await wal.append({ local: 2 });
    const log = join(dir, readdirSync(dir).find((f) => f.startsWith('log-'))!);
    expect(decodeFrames(readFileSync(log)).records).toEqual([{ replicated: 1 }, { local: 2 }]);
    wal.appendLater({ replicated: 3 });
    await wal.close();
    const again = await openWal(dir);
    expect(again.seen).toEqual([{ replicated: 1 }, { local: 2 }, { replicated: 3 }]);
    await again.wal.close();
  });

  it('ignores and truncates a torn tail, then appends cleanly after it', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await wal.append({ a: 1 });
    await wal.append({ a: 2 });
    await wal.close();
    const log = readdirSync(dir).find((f) => f.startsWith('log-'))!;
    const half = encodeFrame({ a: 3, padding: 'x'.repeat(50) }).subarray(0, 20);
    appendFileSync(join(dir, log), half);
    const second = await openWal(dir);
    expect(second.seen).toEqual([{ a: 1 }, { a: 2 }]);
    expect(second.replay.discardedBytes).toBe(20);
    await second.wal.append({ a: 4 });
    await second.wal.close();
    const third = await openWal(dir);
    expect(third.seen).toEqual([{ a: 1 }, { a: 2 }, { a: 4 }]);
    await third.wal.close();
  });

  it('stops at a record whose CRC does not match', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await wal.append({ keep: true });
    await wal.append({ corrupt: 'me' });
    await wal.close();
    const log = join(dir, readdirSync(dir).find((f) => f.startsWith('log-'))!);
    const data = readFileSync(log);
    data[data.length - 3] ^= 0x01;
    writeFileSync(log, data);
    const again = await openWal(dir);
    expect(again.seen).toEqual([{ keep: true }]);
    await again.wal.close();
  });

  it('compacts into a snapshot and keeps appending to a new generation', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    for (let i = 0; i < 50; i++) await wal.append({ i });
    await wal.compact(() => [{ snapshot: 'state' }]);
    await wal.append({ after: true });
    await wal.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['log-00000002.dat', 'snapshot-00000002.dat']);
    const again = await openWal(dir);
    expect(again.seen).toEqual([{ snapshot: 'state' }, { after: true }]);
    await again.wal.close();
  });

  it('flushes and closes while a compaction is switching files, without spinning', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir);
    await wal.append({ before: true });
    // compact() holds new groups back until its switch is done; a flush() (as close() does) meanwhile
    // must wait for the switch rather than loop on microtasks, which would starve the switch's own I/O.
    const compaction = wal.compact(() => [{ snapshot: 'state' }]);
    const appended = wal.append({ during: true });
    const flushed = wal.flush();
    await Promise.all([compaction, appended, flushed]);
    await wal.close();
    expect(readdirSync(dir).sort()).toEqual(['log-00000002.dat', 'snapshot-00000002.dat']);
    const again = await openWal(dir);
    expect(again.seen).toEqual([{ snapshot: 'state' }, { during: true }]);
    await again.wal.close();
  });

  it('in deferred mode acknowledges before anything reaches the file', async () => {
    const dir = tempDir();
    const { wal } = await openWal(dir, 'deferred');
    await wal.append({ unsynced: 1 });
    const log = join(dir, readdirSync(dir).find((f) => f.startsWith('log-'))!);
    expect(statSync(log).size).toBe(0);
    await wal.close();
    expect(statSync(log).size).toBeGreaterThan(0);
  });

  it('refuses a log damaged before intact records, naming the file, the offset and what follows, and leaves it as it is', async () => {
    const dir = tempDir();
    const { path, offsets, data } = writeLog(dir, 502);
    const damaged = Buffer.from(data);
    damaged[offsets[250] + 20] ^= 0x01; // inside record 250's payload
    writeFileSync(path, damaged);
    const error = await openWal(dir).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(LogDamagedError);
    expect((error as LogDamagedError).message).toMatch(
      new RegExp(`^${path} is damaged at byte ${offsets[250]} of ${data.length} \\(a frame whose CRC-32 does not match\\) after 250 intact records; 251 intact records \\(${data.length - offsets[251]} bytes\\) follow from byte ${offsets[251]}, so this is not a torn tail left by a crash`),
    );
    expect((error as Error).message).toMatch(/--salvage-log 1/);
    expect(readFileSync(path)).toEqual(damaged);
  });

  it('refuses a log whose first record is damaged (all later records intact)', async () => {
    const dir = tempDir();
    const { path, data } = writeLog(dir, 500);
    const damaged = Buffer.from(data);
    damaged[2] ^= 0xff; // the first frame's length
    writeFileSync(path, damaged);
    await expect(openWal(dir)).rejects.toThrow(/damaged at byte 0 of \d+ \(a frame of \d+ bytes that the file ends within\) after 0 intact records; 499 intact records/);
  });

  it('salvages a damaged log on request: every intact record, a copy of the original, a clean file', async () => {
    const dir = tempDir();
    const { path, offsets, data } = writeLog(dir, 502);
    const damaged = Buffer.from(data);
    damaged[offsets[250] + 20] ^= 0x01;
    writeFileSync(path, damaged);
    const salvaged = await openWal(dir, 'sync', true);
    expect(salvaged.seen).toHaveLength(501);
    expect(salvaged.seen.some((r) => (r as { i: number }).i === 250)).toBe(false);
    expect(salvaged.replay.salvaged).toMatchObject([{ file: path, dropped: [[offsets[250], offsets[251] - offsets[250]]], records: 501 }]);
    expect(readFileSync(salvaged.replay.salvaged[0].copy)).toEqual(damaged);
    await salvaged.wal.append({ after: true });
    await salvaged.wal.close();
    const again = await openWal(dir);
    expect(again.seen).toHaveLength(502);
    await again.wal.close();
  });
});

describe('Wal after a failed write or fsync', () => {
  it('fails the group in flight (outcome unknown), refuses later appends (definite), recovers into a fresh generation holding only the durable state', async () => {
    const dir = tempDir();
    const state: unknown[] = [];
    const events: string[] = [];
    const { wal } = await Wal.open(
      {
        dir,
        mode: 'sync',
        onFatal: (e) => events.push(`fatal ${e.message}`),
        recovery: { snapshot: () => state, onFailed: (e) => events.push(`failed ${e.message}`), onRecovered: ({ gen }) => events.push(`recovered ${gen}`), retryMs: 20 },
      },
      () => {},
    );
    await wal.append({ i: 1 });
    state.push({ i: 1 });
    // The disk fails under the log: its file is swapped for a read-only handle, so the next write fails (EBADF).
    const inner = wal as unknown as { fh: import('node:fs/promises').FileHandle };
    await inner.fh.close();
    inner.fh = await open(join(dir, 'log-00000001.dat'), 'r');
    const inFlight = await wal.append({ i: 2 }).then(() => undefined, (e: unknown) => e);
    expect(inFlight).toBeInstanceOf(LogUnavailableError);
    expect((inFlight as LogUnavailableError).definite).toBe(false);
    const refused = await wal.append({ i: 3 }).then(() => undefined, (e: unknown) => e);
    // Refused at once, or taken after recovery if it already happened: never acknowledged while failed.
    if (refused !== undefined) expect((refused as LogUnavailableError).definite).toBe(true);
    for (let i = 0; i < 100 && !events.some((e) => e.startsWith('recovered')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(events[0]).toMatch(/^failed write\/fdatasync of the log in .* failed: EBADF/);
    expect(events).toContain('recovered 2');
    expect(events.some((e) => e.startsWith('fatal'))).toBe(false);
    await wal.append({ i: 4 });
    await wal.close();
    expect(readdirSync(dir).sort()).toEqual(['log-00000002.dat', 'snapshot-00000002.dat']);
    const { seen } = await openWal(dir);
    // The snapshot (the durable state) and what came after; the failed record never comes back.
    expect(seen).toEqual(refused === undefined ? [{ i: 1 }, { i: 3 }, { i: 4 }] : [{ i: 1 }, { i: 4 }]);
  });

  it('without recovery, a failed write stops the node (onFatal)', async () => {
    const dir = tempDir();
    const fatal: string[] = [];
    const { wal } = await Wal.open({ dir, mode: 'sync', onFatal: (e) => fatal.push(e.message) }, () => {});
    const inner = wal as unknown as { fh: import('node:fs/promises').FileHandle };
    await inner.fh.close();
    inner.fh = await open(join(dir, 'log-00000001.dat'), 'r');
    await expect(wal.append({ i: 1 })).rejects.toThrow(/EBADF/);
    await inner.fh.close();
    expect(fatal).toHaveLength(1);
  });
});
