// Limits on what a caller can make the node hold before a handler even runs. gRPC buffers a whole
// request message (and decompresses it) before it is decoded, so the largest accepted message is what
// a caller can cost us per call: it is MAX_REQUEST_BYTES, a little more than the largest valid
// request (a Put of a 64 KiB value with four 256-byte ids, or a relayed write of one), and it holds for
// the decompressed size too. Mesh traffic is cut to fit: relay batches and repair pushes are bounded
// by bytes (mesh.ts). A caller that starts a request and stalls would still pin its partial message
// and the stream, so a request must arrive whole within REQUEST_TIMEOUT_MS of the call's start (a
// client stream, Relay, must send a message at least every STREAM_IDLE_MS); otherwise the call ends
// with DEADLINE_EXCEEDED. One sweep timer checks all calls, so the hot path pays no timer per call.
import { status, type ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import { MAX_ID_BYTES, MAX_VALUE_BYTES } from './validate.ts';

/** The largest request message (before and after decompression) a node accepts, from clients and peers. */
export const MAX_REQUEST_BYTES = 128 * 1024;
/** Estimated bytes one mesh message (relay batch, repair push) may carry; below MAX_REQUEST_BYTES with room for framing. */
export const MESH_BATCH_BYTES = 96 * 1024;
/** A unary or server-streaming call's request must arrive whole within this. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A client stream (Relay) must deliver a message at least this often, or end. */
export const STREAM_IDLE_MS = 30_000;
const SWEEP_MS = 1000;

// The largest valid request must fit (node/test/hostile-input.cluster.test.ts sends one).
if (MAX_VALUE_BYTES + 4 * MAX_ID_BYTES + 1024 > MESH_BATCH_BYTES) throw new Error('MESH_BATCH_BYTES is below the largest valid write');

type CallListener = Parameters<ServerInterceptingCallInterface['start']>[0];

interface Pending {
  readonly call: ServerInterceptingCallInterface;
  readonly path: string;
  readonly limitMs: number;
  sinceMs: number;
}

/**
 * A server interceptor that ends calls whose request stalls (see above), and the sweep that does it.
 * It does not wrap the call in a ServerInterceptingCall (whose per-call objects and closures measured
 * about 4 µs per Put): it only wraps the listener the server starts the call with, and reads the time
 * from a clock the sweep advances once a second. `close()` stops the sweep.
 */
export function stalledRequestGuard(onStall: (path: string, limitMs: number) => void): { interceptor: ServerInterceptor; close(): void } {
  const pending = new Set<Pending>();
  let nowMs = performance.now();
  const sweep = setInterval(() => {
    nowMs = performance.now();
    for (const p of pending) {
      if (nowMs - p.sinceMs < p.limitMs) continue;
      pending.delete(p);
      onStall(p.path, p.limitMs);
      p.call.sendStatus({
        code: status.DEADLINE_EXCEEDED,
        details: `no complete request message within ${p.limitMs} ms of ${p.limitMs === STREAM_IDLE_MS ? 'the last one' : 'the call starting'}; send the whole request promptly (requests are at most ${MAX_REQUEST_BYTES} bytes)`,
      });
    }
  }, SWEEP_MS);
  sweep.unref();
  const interceptor: ServerInterceptor = (method, call) => {
    const streaming = method.requestStream;
    const entry: Pending = { call, path: method.path, limitMs: streaming ? STREAM_IDLE_MS : REQUEST_TIMEOUT_MS, sinceMs: nowMs };
    const start = call.start;
    call.start = (listener: CallListener) => {
      pending.add(entry);
      const watched: CallListener = {
        onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
        onReceiveMessage: (message) => {
          if (streaming) entry.sinceMs = nowMs;
          else pending.delete(entry);
          listener.onReceiveMessage(message);
        },
        onReceiveHalfClose: () => {
          pending.delete(entry);
          listener.onReceiveHalfClose();
        },
        onCancel: () => {
          pending.delete(entry);
          listener.onCancel();
        },
      };
      start.call(call, watched);
    };
    return call as ServerInterceptingCall;
  };
  return { interceptor, close: () => clearInterval(sweep) };
}
