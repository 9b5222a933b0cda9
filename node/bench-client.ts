// A lean gRPC load generator for the benchmark: it speaks the gRPC wire protocol (HTTP/2 POST to
// /faultline.v1.Store/Put, content-type application/grpc, a 5-byte length prefix before the protobuf,
// grpc-status in the trailers) straight over node:http2, against the real grpc-js server. On a 2-core
// machine the load generator shares the cores with the server, and the grpc-js client spends more
// CPU per call than the server does, so a benchmark driven by it measures the client. This one does
// the same protocol work with far less overhead; bench.ts reports the grpc-js client's figure beside it.
import http2 from 'node:http2';
import { PutReply, PutRequest } from '../proto/gen/faultline.ts';

export class LeanPutClient {
  readonly #session: http2.ClientHttp2Session;

  constructor(port: number) {
    this.#session = http2.connect(`http://127.0.0.1:${port}`);
    this.#session.on('error', () => undefined);
  }

  put(entity: string, component: string, value: string, requestId: string): Promise<PutReply> {
    const message = PutRequest.encode({ entity, component, value, requestId, kind: '' }).finish();
    const body = Buffer.allocUnsafe(5 + message.length);
    body[0] = 0; // not compressed
    body.writeUInt32BE(message.length, 1);
    body.set(message, 5);
    return new Promise((resolve, reject) => {
      const req = this.#session.request({ ':method': 'POST', ':path': '/faultline.v1.Store/Put', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let detail = '';
      // A failed call may answer "trailers-only": grpc-status in the response headers.
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) [status, detail] = [String(h['grpc-status']), String(h['grpc-message'] ?? '')];
      });
      req.on('trailers', (h) => {
        [status, detail] = [String(h['grpc-status']), String(h['grpc-message'] ?? '')];
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        if (status !== '0') return reject(new Error(`Put failed: grpc-status ${status ?? 'missing'} ${decodeURIComponent(detail)}`));
        const reply = Buffer.concat(chunks);
        if (reply.length < 5 || reply.readUInt32BE(1) !== reply.length - 5) return reject(new Error(`Put reply is not one gRPC message (${reply.length} bytes)`));
        resolve(PutReply.decode(reply.subarray(5)));
      });
      req.end(body);
    });
  }

  close(): void {
    this.#session.close();
  }
}
