// The benchmark's load generator: a gRPC client that speaks HTTP/2 itself over one TCP socket, against
// the real grpc-js server. On a 2-core machine the load generator shares the cores with the server it
// measures, so whatever CPU the client spends per call is taken from the server: grpc-js's own client
// costs more per call than the server does, and node:http2's client (a Duplex stream object per call)
// about as much. This one writes each call as two prebuilt frames and parses replies with a small
// HPACK decoder, so nearly all of the machine is left to the node under test. bench.ts reports the
// grpc-js client's figure beside it.
//
// It is a real gRPC client (application/grpc, 5-byte message prefix, grpc-status and grpc-message from
// the trailers or a trailers-only reply) and a real HTTP/2 endpoint: it honours the server's SETTINGS,
// connection and stream flow control and MAX_CONCURRENT_STREAMS, answers PINGs, and fails every open call
// on RST_STREAM, GOAWAY or a closed socket. It only supports unary calls without compression, and a
// request body must fit the server's initial stream window (65,535 bytes by default; a larger one is
// refused with a clear error instead of waiting for stream WINDOW_UPDATEs).
import { connect, type Socket } from 'node:net';
import { PutReply, PutRequest } from '../proto/gen/faultline.ts';
import { HpackDecoder, encodeHeadersWithoutIndexing } from './hpack.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const SETTING = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 } as const;
/** Our receive windows: generous, and topped up once half is used. */
const RECEIVE_WINDOW = 1 << 30;
const MAX_STREAM_ID = 2 ** 31 - 1;

/** A call that ended with a gRPC status other than OK, or failed at the HTTP/2 level. */
export class GrpcCallError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}
const UNAVAILABLE = 14;
const INTERNAL = 13;

interface Call {
  readonly path: string;
  readonly message: Uint8Array;
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (error: Error) => void;
  id: number;
  /** The response headers have arrived (what follows a DATA frame are trailers). */
  answered: boolean;
  httpStatus: string | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string;
  chunks: Buffer[];
  received: number;
}

/** gRPC body: a 5-byte prefix (not compressed, length) and the message. */
const bodyLength = (call: Call) => 5 + call.message.length;

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  writeFrameHeader(h, 0, length, type, flags, streamId);
  return h;
}

/** A call's HEADERS frame and its DATA frames (the body split at maxFrame) in one buffer. */
function encodeCall(call: Call, block: Buffer, maxFrame: number): Buffer {
  const length = bodyLength(call);
  const dataFrames = Math.max(1, Math.ceil(length / maxFrame));
  const out = Buffer.allocUnsafe(9 + block.length + 9 * dataFrames + length);
  writeFrameHeader(out, 0, block.length, FRAME.HEADERS, FLAG.END_HEADERS, call.id);
  block.copy(out, 9);
  // The body is the 5-byte prefix (not compressed, message length) and the message, cut into frames.
  const prefix = [0, (call.message.length >>> 24) & 0xff, (call.message.length >>> 16) & 0xff, (call.message.length >>> 8) & 0xff, call.message.length & 0xff];
  let at = 9 + block.length;
  for (let from = 0, i = 0; i < dataFrames; i++, from += maxFrame) {
    const to = Math.min(length, from + maxFrame);
    writeFrameHeader(out, at, to - from, FRAME.DATA, i === dataFrames - 1 ? FLAG.END_STREAM : 0, call.id);
    at += 9;
    for (let b = from; b < Math.min(to, 5); b++) out[at++] = prefix[b];
    if (to > 5) {
      const part = call.message.subarray(Math.max(from, 5) - 5, to - 5);
      out.set(part, at);
      at += part.length;
    }
  }
  return out;
}

function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, at, 3);
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export class RawGrpcClient {
  readonly #socket: Socket;
  readonly #authority: string;
  readonly #decoder = new HpackDecoder();
  /** Encoded request header blocks by method path (constant per client). */
  readonly #blocks = new Map<string, Buffer>();
  readonly #open = new Map<number, Call>();
  readonly #queue: Call[] = [];
  #nextId = 1;
  #in: Buffer = Buffer.alloc(0);
  #out: Buffer[] = [];
  #flushScheduled = false;
  /** A header block being continued by CONTINUATION frames. */
  #continuing: { id: number; flags: number; parts: Buffer[] } | undefined;
  #failure: Error | undefined;
  // What the server allows us (its SETTINGS and WINDOW_UPDATEs).
  #peerMaxStreams = Infinity;
  #peerInitialWindow = 65_535;
  #peerMaxFrame = 16_384;
  #sendWindow = 65_535;
  #connReceived = 0;

  constructor(port: number, host = '127.0.0.1') {
    this.#authority = `${host}:${port}`;
    this.#socket = connect({ port, host, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (error) => this.#fail(new GrpcCallError(UNAVAILABLE, `connection to ${this.#authority} failed: ${error.message}`)));
    this.#socket.on('close', () => this.#fail(new GrpcCallError(UNAVAILABLE, `connection to ${this.#authority} closed`)));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTING.ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(SETTING.INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(RECEIVE_WINDOW, 8);
    this.#send(PREFACE, frameHeader(12, FRAME.SETTINGS, 0, 0), settings, this.#windowUpdate(0, RECEIVE_WINDOW - 65_535));
  }

  /** One unary call: the serialized request message in, the serialized reply message out. */
  unary(path: string, message: Uint8Array): Promise<Buffer> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#queue.push({ path, message, resolve, reject, id: 0, answered: false, httpStatus: undefined, grpcStatus: undefined, grpcMessage: '', chunks: [], received: 0 });
      this.#pump();
    });
  }

  async put(entity: string, component: string, value: string, requestId: string, kind = ''): Promise<PutReply> {
    return PutReply.decode(await this.unary('/faultline.v1.Store/Put', PutRequest.encode({ entity, component, value, requestId, kind }).finish()));
  }

  close(): void {
    this.#fail(new GrpcCallError(UNAVAILABLE, 'client closed'));
    this.#socket.end();
  }

  /** Starts queued calls while the server's stream limit and send window allow. */
  #pump(): void {
    while (this.#queue.length > 0 && this.#open.size < this.#peerMaxStreams) {
      const call = this.#queue[0];
      const length = bodyLength(call);
      if (length > this.#peerInitialWindow) {
        this.#queue.shift();
        call.reject(new GrpcCallError(INTERNAL, `request of ${length} bytes exceeds the server's stream window of ${this.#peerInitialWindow}`));
        continue;
      }
      if (length > this.#sendWindow) return; // wait for a WINDOW_UPDATE
      if (this.#nextId > MAX_STREAM_ID) {
        this.#fail(new GrpcCallError(UNAVAILABLE, 'stream ids exhausted on this connection; open a new client'));
        return;
      }
      this.#queue.shift();
      call.id = this.#nextId;
      this.#nextId += 2;
      this.#open.set(call.id, call);
      this.#sendWindow -= length;
      let block = this.#blocks.get(call.path);
      if (!block) {
        block = encodeHeadersWithoutIndexing([
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', call.path],
          [':authority', this.#authority],
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
        ]);
        this.#blocks.set(call.path, block);
      }
      this.#send(encodeCall(call, block, this.#peerMaxFrame));
    }
  }

  /** Queues bytes and writes everything queued in this turn of the event loop with one syscall. */
  #send(...buffers: Buffer[]): void {
    this.#out.push(...buffers);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      const out = this.#out;
      this.#out = [];
      if (!this.#socket.destroyed) this.#socket.write(Buffer.concat(out));
    });
  }

  #windowUpdate(streamId: number, increment: number): Buffer {
    const f = Buffer.allocUnsafe(13);
    writeFrameHeader(f, 0, 4, FRAME.WINDOW_UPDATE, 0, streamId);
    f.writeUInt32BE(increment, 9);
    return f;
  }

  #onData(chunk: Buffer): void {
    let data = this.#in.length === 0 ? chunk : Buffer.concat([this.#in, chunk]);
    let pos = 0;
    try {
      while (data.length - pos >= 9) {
        const length = data.readUIntBE(pos, 3);
        if (data.length - pos < 9 + length) break;
        const type = data[pos + 3];
        const flags = data[pos + 4];
        const id = data.readUInt32BE(pos + 5) & 0x7fffffff;
        const payload = data.subarray(pos + 9, pos + 9 + length);
        pos += 9 + length;
        this.#onFrame(type, flags, id, payload);
      }
    } catch (error) {
      this.#fail(new GrpcCallError(INTERNAL, `HTTP/2 protocol error from ${this.#authority}: ${(error as Error).message}`));
      this.#socket.destroy();
      return;
    }
    data = data.subarray(pos);
    this.#in = data.length === 0 ? Buffer.alloc(0) : Buffer.from(data);
  }

  #onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#continuing && type !== FRAME.CONTINUATION) throw new Error(`expected CONTINUATION, got frame type ${type}`);
    switch (type) {
      case FRAME.DATA: {
        this.#connReceived += payload.length;
        if (this.#connReceived >= RECEIVE_WINDOW / 2) {
          this.#send(this.#windowUpdate(0, this.#connReceived));
          this.#connReceived = 0;
        }
        const call = this.#open.get(id);
        if (!call) return;
        const data = flags & FLAG.PADDED ? payload.subarray(1, payload.length - payload[0]) : payload;
        call.chunks.push(data);
        call.received += payload.length;
        if (call.received >= RECEIVE_WINDOW / 2 && !(flags & FLAG.END_STREAM)) {
          this.#send(this.#windowUpdate(id, call.received));
          call.received = 0;
        }
        if (flags & FLAG.END_STREAM) this.#finish(call);
        return;
      }
      case FRAME.HEADERS: {
        let block = payload;
        if (flags & FLAG.PADDED) block = block.subarray(1, block.length - block[0]);
        if (flags & FLAG.PRIORITY) block = block.subarray(5);
        if (flags & FLAG.END_HEADERS) this.#onHeaders(id, flags, block);
        else this.#continuing = { id, flags, parts: [Buffer.from(block)] };
        return;
      }
      case FRAME.CONTINUATION: {
        const c = this.#continuing;
        if (!c || c.id !== id) throw new Error('CONTINUATION without a header block to continue');
        c.parts.push(Buffer.from(payload));
        if (flags & FLAG.END_HEADERS) {
          this.#continuing = undefined;
          this.#onHeaders(id, c.flags, Buffer.concat(c.parts));
        }
        return;
      }
      case FRAME.RST_STREAM: {
        const call = this.#open.get(id);
        if (!call) return;
        this.#open.delete(id);
        call.reject(new GrpcCallError(INTERNAL, `server reset the stream (HTTP/2 error ${payload.readUInt32BE(0)})`));
        this.#pump();
        return;
      }
      case FRAME.SETTINGS: {
        if (flags & FLAG.ACK) return;
        for (let i = 0; i + 6 <= payload.length; i += 6) {
          const key = payload.readUInt16BE(i);
          const value = payload.readUInt32BE(i + 2);
          if (key === SETTING.MAX_CONCURRENT_STREAMS) this.#peerMaxStreams = value;
          else if (key === SETTING.INITIAL_WINDOW_SIZE) this.#peerInitialWindow = value;
          else if (key === SETTING.MAX_FRAME_SIZE) this.#peerMaxFrame = value;
        }
        this.#send(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
        this.#pump();
        return;
      }
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) this.#send(frameHeader(8, FRAME.PING, FLAG.ACK, 0), Buffer.from(payload));
        return;
      case FRAME.GOAWAY: {
        const last = payload.readUInt32BE(0) & 0x7fffffff;
        const error = new GrpcCallError(UNAVAILABLE, `server sent GOAWAY (HTTP/2 error ${payload.readUInt32BE(4)})`);
        for (const [sid, call] of this.#open) {
          if (sid > last) {
            this.#open.delete(sid);
            call.reject(error);
          }
        }
        this.#failure ??= error;
        for (const call of this.#queue.splice(0)) call.reject(error);
        return;
      }
      case FRAME.WINDOW_UPDATE:
        if (id === 0) {
          this.#sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          this.#pump();
        }
        return;
      case FRAME.PUSH_PROMISE:
        throw new Error('PUSH_PROMISE although push is disabled');
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #onHeaders(id: number, flags: number, block: Buffer): void {
    // Decode every block, even of a stream we no longer track, to keep the dynamic table in step.
    const call = this.#open.get(id);
    this.#decoding = call;
    this.#decoder.decodeEach(block, this.#onHeader);
    if (!call) return;
    if (!call.answered) {
      call.answered = true;
      if (call.httpStatus !== '200') {
        this.#open.delete(id);
        call.reject(new GrpcCallError(UNAVAILABLE, `HTTP status ${call.httpStatus ?? 'missing'} instead of 200`));
        this.#pump();
        return;
      }
      if (flags & FLAG.END_STREAM) this.#finish(call); // trailers-only reply
      return;
    }
    this.#finish(call);
  }

  /** The call whose header block is being decoded (undefined: one we no longer track). */
  #decoding: Call | undefined;
  readonly #onHeader = (name: string, value: string): void => {
    const call = this.#decoding;
    if (!call) return;
    if (name === ':status') call.httpStatus = value;
    else if (name === 'grpc-status') call.grpcStatus = value;
    else if (name === 'grpc-message') call.grpcMessage = value;
  };

  #finish(call: Call): void {
    this.#open.delete(call.id);
    this.#pump();
    const grpcStatus = call.grpcStatus;
    if (grpcStatus === undefined) return call.reject(new GrpcCallError(INTERNAL, 'the reply ended without grpc-status'));
    if (grpcStatus !== '0') return call.reject(new GrpcCallError(Number(grpcStatus), percentDecode(call.grpcMessage)));
    const reply = call.chunks.length === 1 ? call.chunks[0] : Buffer.concat(call.chunks);
    if (reply.length < 5 || reply[0] !== 0 || reply.readUInt32BE(1) !== reply.length - 5) {
      return call.reject(new GrpcCallError(INTERNAL, `reply is not one uncompressed gRPC message (${reply.length} bytes)`));
    }
    call.resolve(reply.subarray(5));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const call of this.#open.values()) call.reject(error);
    this.#open.clear();
    for (const call of this.#queue.splice(0)) call.reject(error);
  }
}
