// Decoding requests so that bad bytes get INVALID_ARGUMENT naming the field, not grpc-js's INTERNAL
// "Error deserializing request". The generated decoders (proto/gen, ts-proto with forceLong=number)
// throw on an int64 beyond ±(2^53 − 1), and their default UTF-8 decoding replaces invalid bytes with
// U+FFFD, so that "f\xFF" and "f\xFE" would silently become the same id. Here every request is decoded
// with a strict UTF-8 decoder, and a request that fails to decode is not thrown out of grpc-js but
// handed to the handler as an InvalidRequest, whose reason names the field: the bytes are walked once
// more with REQUEST_FIELDS (only on that failure path) to find the first string that is not UTF-8 or
// the first integer beyond the exact range. node/test/wire.test.ts checks REQUEST_FIELDS against
// proto/faultline.proto, so the two cannot drift apart.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

type FieldType = 'string' | 'int64' | 'uint64' | 'uint32' | 'bool' | { readonly message: string };
export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly repeated?: boolean;
}

/** The fields of every message a node decodes from a client or a peer, by field number. */
export const REQUEST_FIELDS: Readonly<Record<string, Readonly<Record<number, FieldSpec>>>> = {
  PutRequest: { 1: { name: 'entity', type: 'string' }, 2: { name: 'component', type: 'string' }, 3: { name: 'value', type: 'string' }, 4: { name: 'request_id', type: 'string' }, 5: { name: 'kind', type: 'string' } },
  IncrRequest: { 1: { name: 'entity', type: 'string' }, 2: { name: 'counter', type: 'string' }, 3: { name: 'delta', type: 'int64' }, 4: { name: 'request_id', type: 'string' } },
  DeleteRequest: { 1: { name: 'entity', type: 'string' }, 2: { name: 'component', type: 'string' }, 3: { name: 'request_id', type: 'string' } },
  GetRequest: { 1: { name: 'entity', type: 'string' } },
  ScanRequest: {},
  WatchRequest: { 1: { name: 'entity_prefix', type: 'string' }, 2: { name: 'buffer', type: 'uint32' } },
  HealthRequest: {},
  StatsRequest: {},
  Hlc: { 1: { name: 'wall_ms', type: 'uint64' }, 2: { name: 'logical', type: 'uint32' }, 3: { name: 'node', type: 'string' } },
  CounterShare: { 1: { name: 'origin', type: 'string' }, 2: { name: 'p', type: 'int64' }, 3: { name: 'n', type: 'int64' } },
  MeshWrite: {
    1: { name: 'origin', type: 'string' },
    2: { name: 'seq', type: 'uint64' },
    3: { name: 'entity', type: 'string' },
    4: { name: 'component', type: 'string' },
    5: { name: 'value', type: 'string' },
    6: { name: 'kind', type: 'string' },
    7: { name: 'ts', type: { message: 'Hlc' } },
    8: { name: 'deleted', type: 'bool' },
    9: { name: 'counter', type: 'string' },
    10: { name: 'share', type: { message: 'CounterShare' } },
    11: { name: 'hops', type: 'uint32' },
    12: { name: 'incarnation', type: 'string' },
  },
  RelayBatch: { 1: { name: 'sender', type: 'string' }, 2: { name: 'writes', type: { message: 'MeshWrite' }, repeated: true } },
  DigestRequest: { 1: { name: 'sender', type: 'string' }, 2: { name: 'buckets', type: 'uint32' } },
  RepairRequest: {
    1: { name: 'sender', type: 'string' },
    2: { name: 'buckets', type: 'uint32', repeated: true },
    3: { name: 'bucket_count', type: 'uint32' },
    4: { name: 'writes', type: { message: 'MeshWrite' }, repeated: true },
  },
};

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** The UTF-8 decoding every request string goes through: invalid bytes throw instead of becoming U+FFFD. */
export const strictUtf8 = (bytes: Uint8Array): string => strictDecoder.decode(bytes);

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** Marks a request that could not be decoded; handlers answer it with INVALID_ARGUMENT and `reason`. */
export class InvalidRequest {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/**
 * A grpc-js requestDeserialize for `type` that never throws: the decoded message, or an
 * InvalidRequest whose reason names the offending field.
 */
export function strictDeserializer<T>(type: string, decode: (reader: BinaryReader) => T): (bytes: Buffer) => T | InvalidRequest {
  return (bytes) => {
    try {
      return decode(new BinaryReader(bytes, strictUtf8));
    } catch (error) {
      return new InvalidRequest(describeInvalid(type, bytes, error as Error));
    }
  };
}

/** Why `bytes` is not a valid `type`, naming the field where the walk finds it, else the decoder's own message. */
export function describeInvalid(type: string, bytes: Uint8Array, error: Error): string {
  let found: string | undefined;
  try {
    const reader = new BinaryReader(bytes, strictUtf8);
    found = findProblem(type, reader, bytes.length, '');
  } catch {
    found = undefined;
  }
  return found ?? `the request is not a valid ${type} message (${String(error?.message ?? error).slice(0, 200)}); it must be encoded as proto/faultline.proto says`;
}

function findProblem(type: string, reader: BinaryReader, end: number, path: string): string | undefined {
  const fields = REQUEST_FIELDS[type] ?? {};
  const seen = new Map<number, number>();
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    const spec = fields[no];
    if (!spec) {
      reader.skip(wireType, no);
      continue;
    }
    const index = seen.get(no) ?? 0;
    seen.set(no, index + 1);
    const at = `${path}${spec.name}${spec.repeated ? `[${index}]` : ''}`;
    const t = spec.type;
    if (typeof t === 'object') {
      if (wireType !== WireType.LengthDelimited) return `${at} has the wire type of a scalar; it must be a ${t.message} message`;
      const length = reader.uint32();
      const subEnd = reader.pos + length;
      const inner = findProblem(t.message, reader, subEnd, `${at}.`);
      if (inner) return inner;
      reader.pos = subEnd;
    } else if (t === 'string') {
      if (wireType !== WireType.LengthDelimited) return `${at} has the wire type of a number; it must be a string`;
      const bytes = reader.bytes();
      try {
        strictUtf8(bytes);
      } catch {
        return `${at} is not valid UTF-8; strings (ids, values) must be UTF-8 text`;
      }
    } else if ((t === 'int64' || t === 'uint64') && wireType === WireType.Varint) {
      const raw = t === 'int64' ? reader.int64() : reader.uint64();
      const value = BigInt(raw);
      if (value > MAX_EXACT || value < -MAX_EXACT) {
        return `${at} is ${value}, beyond ±${Number.MAX_SAFE_INTEGER} (2^53 − 1), the largest integer this service handles exactly; send a smaller value`;
      }
    } else {
      reader.skip(wireType, no);
    }
  }
  return undefined;
}
