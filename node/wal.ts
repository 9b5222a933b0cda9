// The node's durable storage: an append-only log of CRC-framed JSON records with group commit, plus
// periodic compaction into a snapshot. We use our own log instead of an embedded store because the
// service's state is already an in-memory CRDT whose records are idempotent (each record is a state to
// merge, never a delta), so the log needs only append, fdatasync and replay; a native embedded store
// would also break the single-file esbuild bundle the containers run.
//
// Frame: u32 LE payload length, u32 LE CRC-32 of the payload, payload (UTF-8 JSON). Replay stops at the
// first frame that is short or fails its CRC (a torn tail after a crash) and truncates the file there,
// so later appends never follow garbage.
//
// Group commit: appends queue their frames; a group writes everything queued, calls fdatasync once and
// then resolves every append in it. Appends that arrive meanwhile form the next group; up to
// MAX_INFLIGHT_SYNCS groups may be syncing at once (see kick() for why that is safe).
//
// Files in the data dir: log-<gen>.dat and snapshot-<gen>.dat. Compaction opens log-<gen+1>, writes the
// in-memory state (which contains everything logged so far) to snapshot-<gen+1> via a temp file, fsync
// and rename, then deletes older files. Opening loads the newest snapshot and replays the logs from its
// generation on; records are idempotent, so a record found in both is harmless.
import { closeSync, fdatasync, fsyncSync, writeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

const HEADER_BYTES = 8;
/** fdatasyncs allowed to overlap (see kick()). */
const MAX_INFLIGHT_SYNCS = 2;
/** Longest a record nobody waits for (a replicated write) stays unsynced while the log is otherwise idle. */
const LATER_SYNC_MS = 20;
/** Largest accepted payload; a length above this in a frame header means corruption. */
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Frames JSON payloads into one buffer (one allocation for a whole commit group). */
export function encodeFrames(payloads: readonly string[]): Buffer {
  let total = 0;
  for (const p of payloads) total += HEADER_BYTES + Buffer.byteLength(p, 'utf8');
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const p of payloads) {
    const length = out.write(p, off + HEADER_BYTES, 'utf8');
    out.writeUInt32LE(length, off);
    out.writeUInt32LE(crc32(out.subarray(off + HEADER_BYTES, off + HEADER_BYTES + length)), off + 4);
    off += HEADER_BYTES + length;
  }
  return out;
}

export function encodeFrame(record: unknown): Buffer {
  return encodeFrames([JSON.stringify(record)]);
}

export interface DecodeResult {
  readonly records: unknown[];
  /** Bytes of valid frames; anything after this is a torn or corrupt tail. */
  readonly validBytes: number;
}

export function decodeFrames(data: Buffer): DecodeResult {
  const records: unknown[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= data.length) {
    const length = data.readUInt32LE(offset);
    if (length > MAX_RECORD_BYTES || offset + HEADER_BYTES + length > data.length) break;
    const payload = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
    if (crc32(payload) !== data.readUInt32LE(offset + 4)) break;
    let record: unknown;
    try {
      record = JSON.parse(payload.toString('utf8'));
    } catch {
      break;
    }
    records.push(record);
    offset += HEADER_BYTES + length;
  }
  return { records, validBytes: offset };
}

export type WalMode = 'sync' | 'deferred';

export interface WalOptions {
  readonly dir: string;
  /**
   * 'sync': append() resolves only after the record is fdatasync'ed (group commit).
   * 'deferred': the planted bug `ack-before-fsync`: append() resolves at once and frames wait in a
   * user-space buffer that is written and synced only every deferredFlushMs, so SIGKILL loses the tail.
   */
  readonly mode: WalMode;
  /** @default 2000 */
  readonly deferredFlushMs?: number;
  /** Called once when a write or fsync fails; the node must stop rather than acknowledge more writes. */
  readonly onFatal: (error: Error) => void;
}

export interface ReplayInfo {
  readonly records: number;
  readonly snapshotGen: number;
  readonly logs: number;
  /** Bytes dropped from torn or corrupt log tails. */
  readonly discardedBytes: number;
}

/** Called once the record is durable (no argument) or can never be (the error). */
export type Durable = (error?: Error) => void;

const fileName = (kind: 'log' | 'snapshot', gen: number) => `${kind}-${String(gen).padStart(8, '0')}.dat`;
const FILE_RE = /^(log|snapshot)-(\d{8})\.dat$/;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class Wal {
  fsyncs = 0;
  private readonly options: WalOptions;
  private fh: FileHandle;
  private gen: number;
  private logBytes: number;
  /** JSON payloads of records not yet written, in order. */
  private pending: string[] = [];
  private waiters: Durable[] = [];
  private inflight = 0;
  private idle: (() => void)[] = [];
  /** Set while compaction switches files (no group starts meanwhile); resolves when the switch is done. */
  private switching: Promise<void> | undefined;
  private laterTimer: NodeJS.Timeout | undefined;
  private failed: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private compacting = false;
  private closed = false;

  private constructor(options: WalOptions, fh: FileHandle, gen: number, logBytes: number) {
    this.options = options;
    this.fh = fh;
    this.gen = gen;
    this.logBytes = logBytes;
    if (options.mode === 'deferred') {
      this.timer = setInterval(() => this.kick(), options.deferredFlushMs ?? 2000);
      this.timer.unref();
    }
  }

  /** Opens (creating if needed) the log in options.dir, replaying every stored record into onRecord first. */
  static async open(options: WalOptions, onRecord: (record: unknown) => void): Promise<{ wal: Wal; replay: ReplayInfo }> {
    mkdirSync(options.dir, { recursive: true });
    const files = readdirSync(options.dir)
      .map((name) => ({ name, m: FILE_RE.exec(name) }))
      .filter((f) => f.m !== null)
      .map((f) => ({ name: f.name, kind: f.m![1] as 'log' | 'snapshot', gen: Number(f.m![2]) }));
    const snapshotGen = Math.max(0, ...files.filter((f) => f.kind === 'snapshot').map((f) => f.gen));
    let records = 0;
    let discardedBytes = 0;
    if (snapshotGen > 0) {
      const data = readFileSync(join(options.dir, fileName('snapshot', snapshotGen)));
      const { records: recs, validBytes } = decodeFrames(data);
      // Snapshots are written to a temp file, synced and renamed, so a bad one means the disk lied.
      if (validBytes !== data.length) throw new Error(`snapshot ${fileName('snapshot', snapshotGen)} in ${options.dir} is corrupt at byte ${validBytes}`);
      for (const r of recs) onRecord(r);
      records += recs.length;
    }
    const logs = files.filter((f) => f.kind === 'log' && f.gen >= snapshotGen).sort((a, b) => a.gen - b.gen);
    let lastGen = Math.max(snapshotGen, 1);
    let lastBytes = 0;
    for (const log of logs) {
      const path = join(options.dir, log.name);
      const data = readFileSync(path);
      const { records: recs, validBytes } = decodeFrames(data);
      for (const r of recs) onRecord(r);
      records += recs.length;
      if (validBytes < data.length) {
        discardedBytes += data.length - validBytes;
        truncateSync(path, validBytes);
      }
      lastGen = log.gen;
      lastBytes = validBytes;
    }
    // Leftovers of an interrupted compaction or files a newer snapshot covers.
    for (const f of files) {
      if (f.gen < snapshotGen) rmSync(join(options.dir, f.name), { force: true });
    }
    for (const name of readdirSync(options.dir)) if (name.endsWith('.tmp')) rmSync(join(options.dir, name), { force: true });
    const fh = await open(join(options.dir, fileName('log', lastGen)), 'a');
    fsyncDir(options.dir);
    const wal = new Wal(options, fh, lastGen, lastBytes);
    return { wal, replay: { records, snapshotGen, logs: logs.length, discardedBytes } };
  }

  /** Bytes in the current log generation (what compaction would reclaim). */
  get sizeBytes(): number {
    return this.logBytes;
  }

  /** Appends a record; resolves once it is durable (in 'sync' mode). */
  append(record: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => this.appendThen(record, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * Appends a record and calls `done` once it is durable (in 'sync' mode; at once in 'deferred' mode),
   * or with the error if it never will be. The hot path of every client write: no promise per record.
   */
  appendThen(record: unknown, done: Durable): void {
    if (this.failed) return done(this.failed);
    if (this.closed) return done(new Error('the log is closed (node shutting down)'));
    this.pending.push(JSON.stringify(record));
    if (this.options.mode === 'deferred') return done();
    this.waiters.push(done);
    this.kickSoon();
  }

  /** Appends a record nobody waits for (e.g. a replicated write): it rides along with the next group. */
  appendLater(record: unknown): void {
    if (this.failed || this.closed) return;
    this.pending.push(JSON.stringify(record));
    // Nobody waits for these, so let them ride with the next acknowledged group or, failing that, sync
    // them within LATER_SYNC_MS: a stream of replicated writes then costs a few fsyncs, not one per batch.
    if (this.options.mode === 'sync' && !this.laterTimer) {
      this.laterTimer = setTimeout(() => {
        this.laterTimer = undefined;
        this.kick();
      }, LATER_SYNC_MS);
    }
  }

  /**
   * Starts groups while there is something queued and fewer than MAX_INFLIGHT_SYNCS fdatasyncs are
   * running. Each group's frames are written synchronously, in order (they only go to the page cache),
   * then its fdatasync runs on the thread pool. Overlapping syncs are safe to acknowledge in any order:
   * fdatasync waits for all of the file's dirty pages and pages under writeback, so when a later group's
   * sync returns, every earlier group's bytes are durable too. Overlap matters because the virtual disk
   * completes parallel flushes much faster than serial ones.
   */
  private kickScheduled = false;
  private kickSoon(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.kick();
    });
  }

  private kick(): void {
    while (this.pending.length > 0 && this.inflight < MAX_INFLIGHT_SYNCS && !this.failed && !this.switching) this.startGroup();
  }

  private startGroup(): void {
    const payloads = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    const fh = this.fh;
    let data: Buffer;
    try {
      data = encodeFrames(payloads);
      for (let off = 0; off < data.length; ) off += writeSync(fh.fd, data, off);
    } catch (error) {
      this.fail(error as Error, waiters);
      return;
    }
    this.logBytes += data.length;
    this.inflight += 1;
    fdatasync(fh.fd, (error) => {
      this.inflight -= 1;
      if (error || this.failed) {
        // Once one sync has failed, a later one that succeeds proves nothing about earlier pages.
        this.fail(error ?? this.failed!, waiters);
      } else {
        this.fsyncs += 1;
        for (const done of waiters) {
          try {
            done();
          } catch (thrown) {
            // A caller's callback must not throw (StoreNode's do not). If one does, that is a bug: let it
            // surface as an uncaught exception once the log's own bookkeeping below is consistent.
            queueMicrotask(() => {
              throw thrown;
            });
          }
        }
      }
      if (this.inflight === 0) for (const resolve of this.idle.splice(0)) resolve();
      this.kick();
    });
  }

  private fail(error: Error, waiters: Durable[]): void {
    // After a failed write or fsync the page cache may have dropped our data; nothing more can be promised.
    if (!this.failed) {
      this.failed = new Error(`write/fdatasync of the log in ${this.options.dir} failed: ${error.message}`, { cause: error });
      this.options.onFatal(this.failed);
    }
    for (const done of waiters) done(this.failed);
    for (const done of this.waiters.splice(0)) done(this.failed);
  }

  private whenIdle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  /** Waits until everything appended so far is durable (also in 'deferred' mode). */
  async flush(): Promise<void> {
    for (;;) {
      this.kick();
      if (this.failed) throw this.failed;
      if (this.pending.length === 0 && this.inflight === 0) return;
      // During a compaction's file switch no group starts, so wait for the switch, not just for syncs.
      await (this.switching ?? this.whenIdle());
    }
  }

  /**
   * Compacts: switches to a new log generation, then writes snapshot() — which must return the full
   * current state as records, taken synchronously when called — and removes the older files.
   */
  async compact(snapshot: () => Iterable<unknown>): Promise<void> {
    if (this.compacting || this.failed || this.closed) return;
    this.compacting = true;
    try {
      const nextGen = this.gen + 1;
      // Hold new groups back (appends keep queueing) until the old file's syncs are done, then switch,
      // so no group is split across files.
      let switched!: () => void;
      this.switching = new Promise((resolve) => (switched = resolve));
      let records: unknown[];
      try {
        await this.whenIdle();
        const fresh = await open(join(this.options.dir, fileName('log', nextGen)), 'a');
        // Writes are acknowledged in the new file from now on, so its name must be durable first.
        fsyncDir(this.options.dir);
        const old = this.fh;
        this.fh = fresh;
        this.gen = nextGen;
        this.logBytes = 0;
        // Taken now, after the switch: the state holds every record of the old generations.
        records = [...snapshot()];
        await old.close();
      } finally {
        this.switching = undefined;
        switched();
        this.kick();
      }
      const tmp = join(this.options.dir, `${fileName('snapshot', nextGen)}.tmp`);
      const out = await open(tmp, 'w');
      try {
        // Framed in batches of about 1 MB of JSON, each into one buffer (as a commit group is).
        let batch: string[] = [];
        let chars = 0;
        for (const r of records) {
          const payload = JSON.stringify(r);
          batch.push(payload);
          chars += payload.length;
          if (chars > 1 << 20) {
            await out.write(encodeFrames(batch));
            batch = [];
            chars = 0;
          }
        }
        if (batch.length > 0) await out.write(encodeFrames(batch));
        await out.sync();
      } finally {
        await out.close();
      }
      renameSync(tmp, join(this.options.dir, fileName('snapshot', nextGen)));
      fsyncDir(this.options.dir);
      for (const name of readdirSync(this.options.dir)) {
        const m = FILE_RE.exec(name);
        if (m && Number(m[2]) < nextGen) rmSync(join(this.options.dir, name), { force: true });
      }
    } finally {
      this.compacting = false;
    }
  }

  /** Flushes everything (also the deferred buffer) and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (this.laterTimer) clearTimeout(this.laterTimer);
    await this.flush();
    this.closed = true;
    await this.fh.close();
  }
}
