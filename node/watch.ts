// Watch streams: every change applied on this node is offered to each watcher whose prefix matches.
// A watcher has a bounded buffer; when the client reads too slowly and the buffer is full, the event
// is dropped and counted, and the next delivered event says how many were lost (dropped_before), so a
// slow watcher can never make the node buffer without bound.
import type { WatchEvent } from '../proto/gen/faultline.ts';

export const DEFAULT_WATCH_BUFFER = 1024;
export const MAX_WATCH_BUFFER = 65_536;

/** Where a watcher's events go: a gRPC server stream in production. */
export interface WatchSink {
  /** Returns false when the sink is backed up; it then emits 'drain' when ready again. */
  write(event: WatchEvent): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

interface Watcher {
  readonly prefix: string;
  readonly capacity: number;
  readonly sink: WatchSink;
  readonly queue: WatchEvent[];
  blocked: boolean;
  dropped: number;
}

export class WatchHub {
  drops = 0;
  private readonly watchers = new Set<Watcher>();

  get size(): number {
    return this.watchers.size;
  }

  /** Registers a watcher; returns the function that removes it. */
  add(prefix: string, buffer: number, sink: WatchSink): () => void {
    const capacity = buffer === 0 ? DEFAULT_WATCH_BUFFER : Math.min(buffer, MAX_WATCH_BUFFER);
    const w: Watcher = { prefix, capacity, sink, queue: [], blocked: false, dropped: 0 };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  publish(event: Omit<WatchEvent, 'droppedBefore'>): void {
    for (const w of this.watchers) {
      if (!event.entity.startsWith(w.prefix)) continue;
      if (w.blocked) {
        if (w.queue.length >= w.capacity) {
          w.dropped += 1;
          this.drops += 1;
          continue;
        }
        w.queue.push({ ...event, droppedBefore: this.takeDropped(w) });
        continue;
      }
      this.deliver(w, { ...event, droppedBefore: this.takeDropped(w) });
    }
  }

  private takeDropped(w: Watcher): number {
    const d = w.dropped;
    w.dropped = 0;
    return d;
  }

  private deliver(w: Watcher, event: WatchEvent): void {
    if (!w.sink.write(event)) {
      w.blocked = true;
      w.sink.once('drain', () => this.resume(w));
    }
  }

  private resume(w: Watcher): void {
    w.blocked = false;
    while (w.queue.length > 0 && !w.blocked && this.watchers.has(w)) this.deliver(w, w.queue.shift()!);
  }
}
