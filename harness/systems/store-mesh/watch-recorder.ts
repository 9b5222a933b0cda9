// Watch streams alongside every workload: one Watch of every change per node, recorded in the history so
// the watch and lag checkers can judge them (checkers/watch.ts). A stream that breaks (its node was
// killed) is opened again every 250 ms until it is back, as a real watcher would.
//
// Each stream is one process (above every worker's and the final readers'), with strictly sequential ops:
//   watch-open   invoke when the stream is opened; ok once the node has registered the watcher (it sends
//                headers right after), fail when the stream ended before that. value: { stream }.
//   watch-events invoke + ok, one pair per batch (every 100 ms while events arrive). The ok value:
//                { stream, events: [atNs, entity, component, value, ts, kind, deleted, droppedBefore][] }
//                with atNs the arrival time on the history's clock and kind "lww", "max" or "counter"
//                (counter events carry the counter's value and an empty ts).
//   watch-close  invoke + ok when the stream ended: value { stream, reason } (reason "end of run" when the
//                harness closed it after the final reads, "harness reconnected" when it closed it to open
//                a new one on the fresh client of a restarted node; otherwise the error).
import type { WatchEvent } from '../../../proto/gen/faultline.ts';
import type { StoreMeshClient } from './client.ts';
import type { HistoryWriter } from '../../history-writer.ts';

/** One event as recorded: [atNs, entity, component, value, ts, kind, deleted, droppedBefore]. */
export type RecordedEvent = [number, string, string, string, string, string, boolean, number];

const FLUSH_MS = 100;
/** A broken stream is opened again after 250 ms, doubling to 1 s while its node stays down. */
const REOPEN_MS = 250;
const REOPEN_MAX_MS = 1000;

export class WatchRecorder {
  readonly #node: string;
  readonly #client: () => StoreMeshClient;
  readonly #history: HistoryWriter;
  readonly #processBase: number;
  #streams = 0;
  #failures = 0;
  #stopped = false;
  /** Why the harness itself closes the current stream: "end of run", or "harness reconnected". */
  #closeReason: string | undefined;
  #current: { cancel: () => void } | undefined;
  #process = 0;
  #stream = '';
  #buffer: RecordedEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reopen: NodeJS.Timeout | undefined;
  #opened!: Promise<void>;
  #markOpen: () => void = () => {};

  /** `client` gives the node's current client; `processBase`: this node's first process number (each stream takes the next). */
  constructor(node: string, client: () => StoreMeshClient, history: HistoryWriter, processBase: number) {
    this.#node = node;
    this.#client = client;
    this.#history = history;
    this.#processBase = processBase;
  }

  /** Opens the first stream; resolves once it is registered, or after timeoutMs (the node may be down). */
  start(timeoutMs = 3000): Promise<void> {
    this.#open();
    return Promise.race([this.#opened, new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  #open(): void {
    if (this.#stopped) return;
    this.#process = this.#processBase + this.#streams;
    this.#stream = `${this.#node}#${this.#streams}`;
    this.#streams++;
    const process = this.#process;
    const stream = this.#stream;
    const node = this.#node;
    let open = false;
    this.#opened = new Promise((resolve) => (this.#markOpen = resolve));
    this.#history.append({ process, node, type: 'invoke', f: 'watch-open', value: { stream } });
    this.#current = this.#client().watch({
      onOpen: () => {
        open = true;
        this.#failures = 0;
        this.#history.append({ process, node, type: 'ok', f: 'watch-open', value: { stream } });
        this.#markOpen();
      },
      onEvent: (e) => this.#event(e),
      onEnd: (error) => {
        this.#current = undefined;
        if (!open) {
          this.#history.append({ process, node, type: 'fail', f: 'watch-open', value: { stream }, error: error ?? 'closed before it opened' });
        } else {
          this.#flush();
          this.#history.append({ process, node, type: 'invoke', f: 'watch-close', value: { stream } });
          this.#history.append({ process, node, type: 'ok', f: 'watch-close', value: { stream, reason: error ?? this.#closeReason ?? 'end of run' } });
        }
        const reconnected = this.#closeReason === 'harness reconnected';
        this.#closeReason = undefined;
        if (reconnected && !this.#stopped) {
          this.#open();
          return;
        }
        if (!open) this.#failures++;
        if (!this.#stopped) {
          this.#reopen = setTimeout(() => {
            this.#reopen = undefined;
            this.#open();
          }, Math.min(REOPEN_MAX_MS, REOPEN_MS * 2 ** Math.max(0, this.#failures - 1)));
        }
      },
    });
  }

  #event(e: WatchEvent): void {
    this.#buffer.push([this.#history.now(), e.entity, e.component, e.value, e.ts, e.kind, e.deleted, e.droppedBefore]);
    if (!this.#timer) this.#timer = setTimeout(() => this.#flush(), FLUSH_MS);
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0) return;
    const events = this.#buffer;
    this.#buffer = [];
    const value = { stream: this.#stream };
    this.#history.append({ process: this.#process, node: this.#node, type: 'invoke', f: 'watch-events', value });
    this.#history.append({ process: this.#process, node: this.#node, type: 'ok', f: 'watch-events', value: { ...value, events } });
  }

  /**
   * The node's client was replaced (its node was restarted): a stream still on the old client is closed
   * on purpose (recorded as "harness reconnected", not as an error), and a new one opens at once on the
   * new client, so what the node applies from now on (anti-entropy repairs) is seen.
   */
  clientReplaced(): void {
    if (this.#stopped) return;
    if (this.#current) {
      this.#closeReason = 'harness reconnected';
      this.#current.cancel();
      return; // onEnd schedules the reopen; make it immediate
    }
    if (this.#reopen) {
      clearTimeout(this.#reopen);
      this.#reopen = undefined;
      this.#open();
    }
  }

  /** Closes the stream for good (recorded as watch-close "end of run"). */
  stop(): void {
    this.#stopped = true;
    this.#closeReason = 'end of run';
    if (this.#reopen) clearTimeout(this.#reopen);
    this.#current?.cancel();
  }
}
