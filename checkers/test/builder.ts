// A tiny builder for hand-made histories: ops get dense indexes and increasing times (1 ms apart), so a
// test reads as the sequence of events it describes and can name the indexes it expects.
import type { FinalEntity, FinalState, Op, OpType, Process } from '../../harness/history.ts';

export class HistoryBuilder {
  readonly ops: Op[] = [];
  private clock = 0;

  /** Appends one op and returns its index. */
  add(process: Process, type: OpType, f: string, value: unknown, node?: string): number {
    const index = this.ops.length;
    this.clock += 1_000_000;
    this.ops.push({ index, time: this.clock, process, type, f, value, ...(node !== undefined ? { node } : {}) });
    return index;
  }

  /** An invoke immediately followed by its completion; returns [invoke index, completion index]. */
  call(process: number, node: string, f: string, invoke: unknown, type: OpType, done: unknown = invoke): [number, number] {
    return [this.add(process, 'invoke', f, invoke, node), this.add(process, type, f, done, node)];
  }

  nemesis(f: string, value: unknown = {}): number {
    return this.add('nemesis', 'info', f, value);
  }

  /** Lets time pass (ms) before the next op. */
  wait(ms: number): void {
    this.clock += ms * 1_000_000;
  }

  /** Opens a watch stream on a node (as harness/systems/store-mesh/watch-recorder.ts records it); returns its process. */
  openWatch(node: string, stream = `${node}#0`): number {
    const p = 50_000 + this.ops.length;
    this.add(p, 'invoke', 'watch-open', { stream }, node);
    this.add(p, 'ok', 'watch-open', { stream }, node);
    this.streams.set(p, stream);
    return p;
  }

  /** One batch of events on an open stream: [entity, component, value, ts, kind?, deleted?, droppedBefore?]. */
  watchEvents(process: number, node: string, events: readonly (readonly [string, string, string, string, string?, boolean?, number?])[]): void {
    const stream = this.streams.get(process);
    const at = this.clock + 500_000;
    const recorded = events.map(([e, c, v, ts, kind = 'lww', deleted = false, dropped = 0]) => [at, e, c, v, ts, kind, deleted, dropped]);
    this.add(process, 'invoke', 'watch-events', { stream }, node);
    this.add(process, 'ok', 'watch-events', { stream, events: recorded }, node);
  }

  closeWatch(process: number, node: string, reason = 'end of run'): void {
    const stream = this.streams.get(process);
    this.add(process, 'invoke', 'watch-close', { stream }, node);
    this.add(process, 'ok', 'watch-close', { stream, reason }, node);
  }

  private readonly streams = new Map<number, string>();

  /** Every node's end-of-run Stats, as the runner records them (f "stats"); returns completion indexes by node. */
  stats(perNode: Record<string, { writes: number; relaysSent: number; watcherDrops?: number }>): Record<string, number> {
    const out: Record<string, number> = {};
    let p = 9000;
    for (const [node, s] of Object.entries(perNode)) {
      this.add(p, 'invoke', 'stats', null, node);
      out[node] = this.add(p, 'ok', 'stats', { node, ...s, meshMessages: s.relaysSent, messagesPerWrite: s.writes ? s.relaysSent / s.writes : 0 }, node);
      p++;
    }
    return out;
  }

  /** One round of final reads: every node answers with its state; returns the completion indexes by node. */
  finalRound(round: number, states: Record<string, FinalState>): Record<string, number> {
    const out: Record<string, number> = {};
    let p = 1000 + round * 100;
    for (const [node, state] of Object.entries(states)) {
      this.add(p, 'invoke', 'final-read', { round }, node);
      out[node] = this.add(p, 'ok', 'final-read', { round, state }, node);
      p++;
    }
    return out;
  }
}

/** A final entity from components given as [value, ts] (LWW) and counters. */
export function entity(components: Record<string, [string, string]>, counters: Record<string, number> = {}, kind: 'lww' | 'max' = 'lww'): FinalEntity {
  return {
    components: Object.fromEntries(Object.entries(components).map(([k, [value, ts]]) => [k, { value, ts, kind }])),
    counters,
  };
}

/** A canonical HLC string: 15-digit wall ms, 5-digit logical, node id. */
export function hlc(ms: number, logical = 0, node = 'n1'): string {
  return `${String(ms).padStart(15, '0')}:${String(logical).padStart(5, '0')}:${node}`;
}

export const ctx = (nodes: string[] = ['n1', 'n2']) => ({ nodes, workload: 'test' });
