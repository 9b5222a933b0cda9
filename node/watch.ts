// Watch streams: every change applied on this node is offered to each watcher whose prefix matches.
// A watcher has a bounded buffer; when the client reads too slowly and the buffer is full, the event
// is dropped and counted, and the next delivered event says how many were lost (dropped_before), so a
// slow watcher can never make the node buffer without bound.
//
// The bound is on bytes and holds for the node as a whole, not per watcher: every event a watcher holds
// counts against one budget (maxBytes), whether it waits in our queue or was handed to gRPC and sits in
// grpc-js's and node:http2's buffers (a client that stops reading fills its HTTP/2 window and then those
// buffers; an event counts until its write callback says the data went to the socket). An event that
// would take the node past the budget, or one watcher past its fair share of it (maxBytes / watchers,
// at least MIN_SHARE_BYTES), is dropped and counted exactly like an event that finds a full queue, so
// 200 watchers that never read cost at most the budget. Sizes are estimates: the event's wire size plus
// a fixed overhead for the objects and buffers that carry it.
import type { WatchEvent } from '../proto/gen/faultline.ts';

export const DEFAULT_WATCH_BUFFER = 1024;
export const MAX_WATCH_BUFFER = 65_536;
/** Total bytes all watchers of a node may hold (config: --watch-buffer-bytes). */
export const DEFAULT_WATCH_BYTES = 64 * 1024 * 1024;
/** Watch streams a node serves at once; more are RESOURCE_EXHAUSTED. */
export const MAX_WATCHERS = 1000;
/** A watcher may always hold this much, however many watchers share the budget. */
export const MIN_SHARE_BYTES = 256 * 1024;
/** Fixed cost of one held event beyond its wire bytes: the WatchEvent object or the framed buffer. */
const EVENT_OVERHEAD_BYTES = 160;

/** Where a watcher's events go: a gRPC server stream in production. */
export interface WatchSink {
  /** Returns false when the sink is backed up; it then emits 'drain' when ready again. `done` runs once the event has left the sink's buffers. */
  write(event: WatchEvent, done: () => void): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

interface Watcher {
  readonly prefix: string;
  readonly capacity: number;
  readonly sink: WatchSink;
  readonly queue: { event: WatchEvent; bytes: number }[];
  blocked: boolean;
  dropped: number;
  /** Bytes held for this watcher: queued plus handed to the sink and not yet written out. */
  bytes: number;
  removed: boolean;
}

export interface WatchHubOptions {
  /** @default DEFAULT_WATCH_BYTES */
  readonly maxBytes?: number;
  /** @default MAX_WATCHERS */
  readonly maxWatchers?: number;
}

/** The estimated bytes one event costs a watcher while it holds it. */
export function eventBytes(e: Omit<WatchEvent, 'droppedBefore'>): number {
  // String lengths stand in for UTF-8 bytes (exact for ASCII, within 3x otherwise); ids are bounded.
  return EVENT_OVERHEAD_BYTES + e.entity.length + e.component.length + e.value.length + e.ts.length + e.kind.length + e.origin.length;
}

export class WatchHub {
  drops = 0;
  /** Bytes held for all watchers (see the module comment); never above maxBytes. */
  bytes = 0;
  readonly maxBytes: number;
  readonly maxWatchers: number;
  private readonly watchers = new Set<Watcher>();

  constructor(options: WatchHubOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_WATCH_BYTES;
    this.maxWatchers = options.maxWatchers ?? MAX_WATCHERS;
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Registers a watcher; returns the function that removes it, or undefined when the node serves maxWatchers already. */
  add(prefix: string, buffer: number, sink: WatchSink): (() => void) | undefined {
    if (this.watchers.size >= this.maxWatchers) return undefined;
    const capacity = buffer === 0 ? DEFAULT_WATCH_BUFFER : Math.min(buffer, MAX_WATCH_BUFFER);
    const w: Watcher = { prefix, capacity, sink, queue: [], blocked: false, dropped: 0, bytes: 0, removed: false };
    this.watchers.add(w);
    return () => {
      if (w.removed) return;
      w.removed = true;
      this.watchers.delete(w);
      // Its queue goes with it, and gRPC frees what it buffered for the stream when the stream closes.
      this.bytes -= w.bytes;
      w.bytes = 0;
      w.queue.length = 0;
    };
  }

  publish(event: Omit<WatchEvent, 'droppedBefore'>): void {
    let size = -1;
    for (const w of this.watchers) {
      if (!event.entity.startsWith(w.prefix)) continue;
      if (size < 0) size = eventBytes(event);
      const share = Math.max(this.maxBytes / this.watchers.size, MIN_SHARE_BYTES);
      if (this.bytes + size > this.maxBytes || w.bytes + size > share || (w.blocked && w.queue.length >= w.capacity)) {
        w.dropped += 1;
        this.drops += 1;
        continue;
      }
      w.bytes += size;
      this.bytes += size;
      const out = { ...event, droppedBefore: this.takeDropped(w) };
      if (w.blocked) w.queue.push({ event: out, bytes: size });
      else this.deliver(w, out, size);
    }
  }

  private takeDropped(w: Watcher): number {
    const d = w.dropped;
    w.dropped = 0;
    return d;
  }

  private deliver(w: Watcher, event: WatchEvent, size: number): void {
    const written = () => {
      if (w.removed) return;
      w.bytes -= size;
      this.bytes -= size;
    };
    if (!w.sink.write(event, written)) {
      w.blocked = true;
      w.sink.once('drain', () => this.resume(w));
    }
  }

  private resume(w: Watcher): void {
    w.blocked = false;
    while (w.queue.length > 0 && !w.blocked && !w.removed) {
      const { event, bytes } = w.queue.shift()!;
      this.deliver(w, event, bytes);
    }
  }
}
