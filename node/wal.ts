// The node's durable storage: an append-only log of CRC-framed JSON records with group commit, plus
// periodic compaction into a snapshot. We use our own log instead of an embedded store because the
// service's state is already an in-memory CRDT whose records are idempotent (each record is a state to
// merge, never a delta), so the log needs only append, fdatasync and replay; a native embedded store
// would also break the single-file esbuild bundle the containers run.
//
// Frame: u32 LE payload length, u32 LE CRC-32 of the payload, payload (UTF-8 JSON). Replay stops at the
// first frame that is short or fails its CRC. If nothing intact follows, that is a torn tail (a crash
// in the middle of a group's write): it was never acknowledged, and the file is truncated there so
// later appends never follow garbage. If intact frames follow, the damage is in the middle of records
// that were acknowledged, so the node refuses to start (LogDamagedError, naming the file, the offset
// and what follows) rather than silently drop them, as etcd refuses a corrupt WAL; `salvage` (the
// node's --salvage-log 1) instead keeps a copy of the file, replays every intact frame, drops only the
// damaged bytes and rewrites the file. A payload is JSON text, in which bytes 0x00 and 0x01 are always
// escaped, so a frame header (its length's high byte is one of them) never appears inside a payload:
// an intact frame found after damage is a real record, not a fragment of the torn one. A record that
// the caller cannot use (onRecord throws LogRecordError) is damage of the same kind.
//
// Group commit: appends queue their frames; a group writes everything queued, calls fdatasync once and
// then resolves every append in it. Appends that arrive meanwhile form the next group; up to
// MAX_INFLIGHT_SYNCS groups may be syncing at once (see kick() for why that is safe).
//
// Files in the data dir: log-<gen>.dat and snapshot-<gen>.dat. Compaction opens log-<gen+1>, writes the
// in-memory state (which contains everything logged so far) to snapshot-<gen+1> via a temp file, fsync
// and rename, then deletes older files. Opening loads the newest snapshot and replays the logs from its
// generation on; records are idempotent, so a record found in both is harmless.
import { closeSync, copyFileSync, fdatasync, fsyncSync, writeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
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
  /** Where each record's frame starts, in step with records. */
  readonly offsets: number[];
  /** Bytes of valid frames; anything after this is a torn or damaged tail. */
  readonly validBytes: number;
  /** Why decoding stopped before the end, if it did. */
  readonly stop?: string;
}

/** The record of the frame at `offset`, or why there is none. */
function frameAt(data: Buffer, offset: number): { record: unknown; length: number } | string {
  if (offset + HEADER_BYTES > data.length) return `only ${data.length - offset} bytes left, short of a frame header`;
  const length = data.readUInt32LE(offset);
  if (length > MAX_RECORD_BYTES) return `a frame length of ${length} bytes, beyond the ${MAX_RECORD_BYTES}-byte limit`;
  if (offset + HEADER_BYTES + length > data.length) return `a frame of ${length} bytes that the file ends within`;
  const payload = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
  if (crc32(payload) !== data.readUInt32LE(offset + 4)) return 'a frame whose CRC-32 does not match';
  try {
    return { record: JSON.parse(payload.toString('utf8')), length };
  } catch {
    return 'a frame whose payload is not JSON';
  }
}

export function decodeFrames(data: Buffer, from = 0): DecodeResult {
  const records: unknown[] = [];
  const offsets: number[] = [];
  let offset = from;
  while (offset < data.length) {
    const frame = frameAt(data, offset);
    if (typeof frame === 'string') return { records, offsets, validBytes: offset, stop: frame };
    records.push(frame.record);
    offsets.push(offset);
    offset += HEADER_BYTES + frame.length;
  }
  return { records, offsets, validBytes: offset };
}

/**
 * The offset of the first intact frame after `from` (see the module comment: one cannot start inside
 * a payload), or undefined when none follows, i.e. the damage is a torn tail. Cheap checks first, so
 * scanning a large file costs little more than reading it.
 */
export function nextIntactFrame(data: Buffer, from: number): number | undefined {
  for (let off = from + 1; off + HEADER_BYTES + 2 <= data.length; off++) {
    const length = data.readUInt32LE(off);
    if (length < 2 || length > MAX_RECORD_BYTES || off + HEADER_BYTES + length > data.length) continue;
    // Every record is a JSON object.
    if (data[off + HEADER_BYTES] !== 0x7b || data[off + HEADER_BYTES + length - 1] !== 0x7d) continue;
    if (typeof frameAt(data, off) !== 'string') return off;
  }
  return undefined;
}

/** Thrown by a record handler for a well-framed record it cannot use (wrong shape, bad field). */
export class LogRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogRecordError';
  }
}

/** The log or snapshot is damaged before its tail: the node must not start on it (see the module comment). */
export class LogDamagedError extends Error {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, message: string) {
    super(message);
    this.name = 'LogDamagedError';
    this.file = file;
    this.offset = offset;
  }
}

/**
 * The log cannot take writes now: `definite` when the record was refused before anything was written
 * (the log had already failed and is recovering), otherwise its group failed after it may have reached
 * the disk, so whether it is durable is unknown.
 */
export class LogUnavailableError extends Error {
  readonly definite: boolean;
  constructor(message: string, definite: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LogUnavailableError';
    this.definite = definite;
  }
}

/** The data dir cannot be used (not a directory, no permission): bad configuration, not damage. */
export class DataDirError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DataDirError';
  }
}

const RECOVERY_HINT =
  'To start anyway, run the node once with --salvage-log 1 (FAULTLINE_SALVAGE_LOG=1): it keeps a copy of the damaged file (<name>.damaged-<time>), ' +
  'replays every intact record, drops only the damaged bytes and rewrites the file; writes that peers hold come back through anti-entropy. ' +
  'Or replace the data dir with a copy of a healthy one.';

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
  /**
   * Called once when a write or fsync fails and there is no `recovery`: the node must stop rather than
   * acknowledge more writes.
   */
  readonly onFatal: (error: Error) => void;
  /**
   * Recover from a failed write or fsync in place instead of stopping (see recover()): the log refuses
   * appends until a fresh generation, started from `snapshot()` (the state, which holds only what was
   * durable), is durable. The planted bug `log-dirent-unsynced` acts here too.
   */
  readonly recovery?: {
    readonly snapshot: () => Iterable<unknown>;
    readonly onFailed: (error: Error) => void;
    readonly onRecovered: (info: { readonly gen: number; readonly failedMs: number; readonly attempts: number }) => void;
    /** Between recovery attempts. @default 250 */
    readonly retryMs?: number;
  };
  /** Planted bug `log-dirent-unsynced`: a new log generation's directory entry is never synced before writes are acknowledged in it. @default false */
  readonly skipLogDirSync?: boolean;

  /** Replay a log or snapshot damaged before its tail by dropping only the damaged bytes (see the module comment). @default false */
  readonly salvage?: boolean;
}

/** What salvaging one file dropped. */
export interface Salvaged {
  readonly file: string;
  /** Where the file's original bytes were kept. */
  readonly copy: string;
  /** [offset, bytes] of each damaged range or unusable record dropped. */
  readonly dropped: readonly (readonly [number, number])[];
  readonly records: number;
}

export interface ReplayInfo {
  readonly records: number;
  readonly snapshotGen: number;
  readonly logs: number;
  /** Bytes dropped from torn log tails. */
  readonly discardedBytes: number;
  /** Files salvaged (only with the salvage option). */
  readonly salvaged: readonly Salvaged[];
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

/**
 * Replays the frames of one file into onRecord. Damage with nothing intact after it is a torn tail
 * (validBytes says where the intact part ends) when tornTailAllowed; any other damage, and a record
 * onRecord refuses, throws LogDamagedError, or with `salvage` is skipped and listed in `dropped` (then
 * `kept` holds the payloads to rewrite the file with).
 */
function replayFrames(
  data: Buffer,
  path: string,
  onRecord: (record: unknown) => void,
  tornTailAllowed: boolean,
  salvage: boolean,
): { records: number; validBytes: number; dropped: [number, number][]; kept: string[] } {
  const dropped: [number, number][] = [];
  const kept: string[] = [];
  let records = 0;
  let frames = 0;
  let from = 0;
  for (;;) {
    const decoded = decodeFrames(data, from);
    for (let i = 0; i < decoded.records.length; i++) {
      const offset = decoded.offsets[i];
      frames += 1;
      try {
        onRecord(decoded.records[i]);
      } catch (error) {
        if (!(error instanceof LogRecordError)) throw error;
        const frameBytes = (i + 1 < decoded.offsets.length ? decoded.offsets[i + 1] : decoded.validBytes) - offset;
        if (salvage) {
          dropped.push([offset, frameBytes]);
          continue;
        }
        throw new LogDamagedError(path, offset, `${path}: the record at byte ${offset} (record ${frames} of the file) is well framed but unusable: ${error.message}. ${RECOVERY_HINT}`);
      }
      records += 1;
      if (salvage) kept.push(JSON.stringify(decoded.records[i]));
    }
    if (decoded.stop === undefined) return { records, validBytes: decoded.validBytes, dropped, kept };
    const at = decoded.validBytes;
    const next = nextIntactFrame(data, at);
    if (next === undefined && tornTailAllowed) {
      // A torn tail: with salvage the file is rewritten without it anyway.
      if (salvage && dropped.length > 0) dropped.push([at, data.length - at]);
      return { records, validBytes: at, dropped, kept };
    }
    if (salvage) {
      dropped.push([at, (next ?? data.length) - at]);
      if (next === undefined) return { records, validBytes: data.length, dropped, kept };
      from = next;
      continue;
    }
    const follows = next === undefined ? 'nothing intact follows, but this file must not end torn (a snapshot, or a log older than the newest)' : describeFollowing(data, next);
    throw new LogDamagedError(path, at, `${path} is damaged at byte ${at} of ${data.length} (${decoded.stop}) after ${records} intact records; ${follows}. The node stops rather than drop acknowledged writes. ${RECOVERY_HINT}`);
  }
}

function describeFollowing(data: Buffer, next: number): string {
  const after = decodeFrames(data, next);
  return `${after.records.length} intact records (${after.validBytes - next} bytes) follow from byte ${next}${after.stop ? ', and more damage after them' : ''}, so this is not a torn tail left by a crash`;
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
    const dir = options.dir;
    try {
      mkdirSync(dir, { recursive: true });
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      readdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'is not a directory (a file is in the way)' : code === 'EACCES' || code === 'EPERM' ? 'cannot be used: permission denied' : `cannot be used: ${(error as Error).message}`;
      throw new DataDirError(`--data-dir ${dir} ${why}; pass a directory this node may write (it is created if missing)`, { cause: error });
    }
    const files = readdirSync(dir)
      .map((name) => ({ name, m: FILE_RE.exec(name) }))
      .filter((f) => f.m !== null)
      .map((f) => ({ name: f.name, kind: f.m![1] as 'log' | 'snapshot', gen: Number(f.m![2]) }));
    const snapshotGen = Math.max(0, ...files.filter((f) => f.kind === 'snapshot').map((f) => f.gen));
    const logs = files.filter((f) => f.kind === 'log' && f.gen >= snapshotGen).sort((a, b) => a.gen - b.gen);
    let records = 0;
    let discardedBytes = 0;
    const salvaged: Salvaged[] = [];
    // Replays one file; returns the bytes of its intact prefix (what a torn tail is cut back to).
    const replayFile = (name: string, tornTailAllowed: boolean): number => {
      const path = join(dir, name);
      const data = readFileSync(path);
      const replayed = replayFrames(data, path, onRecord, tornTailAllowed, options.salvage ?? false);
      records += replayed.records;
      if (replayed.dropped.length > 0) {
        // Salvage: keep the original, then rewrite the file with the intact records only.
        const copy = `${path}.damaged-${Date.now()}`;
        copyFileSync(path, copy);
        const tmp = `${path}.tmp`;
        writeFileSync(tmp, encodeFrames(replayed.kept));
        const fd = openSync(tmp, 'r+');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
        fsyncDir(dir);
        salvaged.push({ file: path, copy, dropped: replayed.dropped, records: replayed.records });
        return statSync(path).size;
      }
      if (replayed.validBytes < data.length) {
        discardedBytes += data.length - replayed.validBytes;
        truncateSync(path, replayed.validBytes);
      }
      return replayed.validBytes;
    };
    // Snapshots are written to a temp file, synced and renamed, so any damage in one means the disk lied.
    if (snapshotGen > 0) replayFile(fileName('snapshot', snapshotGen), false);
    let lastGen = Math.max(snapshotGen, 1);
    let lastBytes = 0;
    logs.forEach((log, i) => {
      // Only the newest log can end in a torn write: an older one was synced before the next began.
      lastBytes = replayFile(log.name, i === logs.length - 1);
      lastGen = log.gen;
    });
    // Leftovers of an interrupted compaction or files a newer snapshot covers.
    for (const f of files) {
      if (f.gen < snapshotGen) rmSync(join(dir, f.name), { force: true });
    }
    for (const name of readdirSync(dir)) if (name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
    const fh = await open(join(dir, fileName('log', lastGen)), 'a');
    // Writes are acknowledged in this file from now on, so its name must be durable first.
    if (!options.skipLogDirSync) fsyncDir(dir);
    const wal = new Wal(options, fh, lastGen, lastBytes);
    return { wal, replay: { records, snapshotGen, logs: logs.length, discardedBytes, salvaged } };
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
    if (this.failed) return done(this.refused());
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

  /**
   * After a failed write or fsync nothing written since the last good sync can be trusted: Linux marks
   * the pages of a failed writeback clean (a retried fsync then succeeds without writing them), and a
   * failed write may have written part of a frame. So the groups in flight fail (their outcome is
   * unknown: the data may or may not be on the disk), the log refuses appends, and, with `recovery`,
   * recover() retries until a fresh generation holds the state; without it the node must stop (onFatal).
   * Retrying the fsync and acknowledging would be the fsyncgate bug: the data a failed fsync dropped is
   * then lost at the next crash, and the later synced frames leave a hole that replay refuses.
   */
  private fail(error: Error, waiters: Durable[]): void {
    if (!this.failed) {
      this.failed = new LogUnavailableError(`write/fdatasync of the log in ${this.options.dir} failed: ${error.message}`, false, { cause: error });
      this.failedAt = performance.now();
      // Records not yet written are refused with the rest: none of them is acknowledged.
      this.pending = [];
      if (this.options.recovery) {
        this.options.recovery.onFailed(this.failed);
        this.scheduleRecovery();
      } else {
        this.options.onFatal(this.failed);
      }
    }
    for (const done of waiters) done(this.failed);
    for (const done of this.waiters.splice(0)) done(this.failed);
  }

  private refused(): LogUnavailableError {
    return new LogUnavailableError(`the log refuses writes until it recovers (${this.failed!.message})`, true, { cause: this.failed });
  }

  private failedAt = 0;
  private recoveryAttempts = 0;
  private recoveryTimer: NodeJS.Timeout | undefined;

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.closed) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      this.recover().catch(() => this.scheduleRecovery());
    }, this.options.recovery?.retryMs ?? 250);
    this.recoveryTimer.unref();
  }

  /**
   * One attempt to recover from a failed write or fsync: once no sync is in flight, start log generation
   * gen + 1 (its name made durable), write the whole state into snapshot gen + 1 (synced, renamed, the
   * rename made durable), and only then switch to it and remove the older files. The state holds only
   * what was durable (a write is applied once its record is synced), so nothing acknowledged is lost and
   * nothing from a failed group comes back; a record of a failed group that did reach the disk is
   * dropped with the old files, which its client, told the outcome is unknown, must allow. An attempt
   * that fails (the disk is still full or failing) leaves everything as it was and is retried.
   */
  private async recover(): Promise<void> {
    if (!this.failed || this.closed) return;
    if (this.inflight > 0 || this.compacting) return this.scheduleRecovery();
    this.recoveryAttempts += 1;
    this.compacting = true;
    const dir = this.options.dir;
    const nextGen = this.gen + 1;
    let fresh: FileHandle | undefined;
    try {
      fresh = await open(join(dir, fileName('log', nextGen)), 'a');
      if (!this.options.skipLogDirSync) fsyncDir(dir);
      await this.writeSnapshot(nextGen, [...this.options.recovery!.snapshot()]);
      const old = this.fh;
      this.fh = fresh;
      fresh = undefined;
      this.gen = nextGen;
      this.logBytes = 0;
      await old.close().catch(() => {});
      this.removeOlder(nextGen);
      const failedMs = Math.round(performance.now() - this.failedAt);
      const attempts = this.recoveryAttempts;
      this.failed = undefined;
      this.recoveryAttempts = 0;
      this.options.recovery!.onRecovered({ gen: nextGen, failedMs, attempts });
    } catch {
      await fresh?.close().catch(() => {});
      rmSync(join(dir, `${fileName('snapshot', nextGen)}.tmp`), { force: true });
      this.scheduleRecovery();
    } finally {
      this.compacting = false;
    }
    this.kick();
  }

  private async writeSnapshot(gen: number, records: readonly unknown[]): Promise<void> {
    const tmp = join(this.options.dir, `${fileName('snapshot', gen)}.tmp`);
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
    renameSync(tmp, join(this.options.dir, fileName('snapshot', gen)));
    fsyncDir(this.options.dir);
  }

  private removeOlder(gen: number): void {
    for (const name of readdirSync(this.options.dir)) {
      const m = FILE_RE.exec(name);
      if (m && Number(m[2]) < gen) rmSync(join(this.options.dir, name), { force: true });
    }
  }

  /** Why the log refuses writes now, or undefined when it takes them. */
  get failure(): Error | undefined {
    return this.failed;
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
        if (!this.options.skipLogDirSync) fsyncDir(this.options.dir);
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
      await this.writeSnapshot(nextGen, records);
      this.removeOlder(nextGen);
    } finally {
      this.compacting = false;
    }
  }

  /** Flushes everything (also the deferred buffer) and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (this.laterTimer) clearTimeout(this.laterTimer);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    await this.flush();
    this.closed = true;
    await this.fh.close();
  }
}
