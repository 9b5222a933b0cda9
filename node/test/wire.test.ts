// Tests of strict request decoding (node/wire.ts): the field table matches proto/faultline.proto, and
// a request that cannot be decoded is described by the field at fault, never thrown.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { IncrRequest, PutRequest, RelayBatch } from '../../proto/gen/faultline.ts';
import { InvalidRequest, REQUEST_FIELDS, strictDeserializer } from '../wire.ts';

const PROTO_TYPES: Record<string, string> = { string: 'string', int64: 'int64', uint64: 'uint64', uint32: 'uint32', bool: 'bool' };

describe('REQUEST_FIELDS', () => {
  it('lists exactly the fields of each request message in proto/faultline.proto', () => {
    const proto = readFileSync(new URL('../../proto/faultline.proto', import.meta.url), 'utf8');
    for (const [message, fields] of Object.entries(REQUEST_FIELDS)) {
      const body = new RegExp(`message ${message} \\{([^}]*)\\}`).exec(proto)?.[1];
      expect(body, message).toBeDefined();
      const declared = [...body!.matchAll(/^\s*(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+);/gm)].map((m) => ({
        no: Number(m[4]),
        name: m[3],
        type: PROTO_TYPES[m[2]] ?? { message: m[2] },
        repeated: m[1] !== undefined,
      }));
      const listed = Object.entries(fields).map(([no, f]) => ({ no: Number(no), name: f.name, type: f.type, repeated: f.repeated ?? false }));
      expect(listed, message).toEqual(declared);
    }
  });
});

const incr = strictDeserializer('IncrRequest', (r) => IncrRequest.decode(r));
const put = strictDeserializer('PutRequest', (r) => PutRequest.decode(r));
const relay = strictDeserializer('RelayBatch', (r) => RelayBatch.decode(r));
const reason = (x: unknown) => (x instanceof InvalidRequest ? x.reason : undefined);

describe('strictDeserializer', () => {
  it('decodes a valid request as the generated decoder does', () => {
    const bytes = Buffer.from(IncrRequest.encode({ entity: 'e', counter: 'c', delta: -5, requestId: 'r' }).finish());
    expect(incr(bytes)).toEqual({ entity: 'e', counter: 'c', delta: -5, requestId: 'r' });
    expect(put(Buffer.from(PutRequest.encode({ entity: 'fü', component: 'c', value: '✓', requestId: '', kind: '' }).finish()))).toMatchObject({ entity: 'fü', value: '✓' });
  });

  it('names an integer beyond ±(2^53 − 1), also nested in a repeated message', () => {
    const big = new BinaryWriter().tag(1, 2).string('e').tag(3, 0).int64('9007199254740993').finish();
    expect(reason(incr(Buffer.from(big)))).toBe('delta is 9007199254740993, beyond ±9007199254740991 (2^53 − 1), the largest integer this service handles exactly; send a smaller value');
    const negative = new BinaryWriter().tag(3, 0).int64('-9007199254740993').finish();
    expect(reason(incr(Buffer.from(negative)))).toMatch(/^delta is -9007199254740993, beyond/);
    const share = new BinaryWriter().tag(1, 2).string('n2').tag(2, 0).int64(1).tag(3, 0).int64('99999999999999999').finish();
    const write = (extra: Uint8Array) => new BinaryWriter().tag(1, 2).string('n2').tag(10, 2).bytes(extra).finish();
    const batch = new BinaryWriter().tag(1, 2).string('n2').tag(2, 2).bytes(write(new BinaryWriter().finish())).tag(2, 2).bytes(write(share)).finish();
    expect(reason(relay(Buffer.from(batch)))).toMatch(/^writes\[1\]\.share\.n is 99999999999999999, beyond ±9007199254740991/);
    const seq = new BinaryWriter().tag(1, 2).string('n2').tag(2, 2).bytes(new BinaryWriter().tag(2, 0).uint64('18446744073709551615').finish()).finish();
    expect(reason(relay(Buffer.from(seq)))).toMatch(/^writes\[0\]\.seq is 18446744073709551615, beyond/);
  });

  it('rejects invalid UTF-8 instead of replacing it, so 66 FF and 66 FE are not the same id', () => {
    const entity = (bytes: number[]) => Buffer.from(new BinaryWriter().tag(1, 2).bytes(new Uint8Array(bytes)).tag(2, 2).string('c').tag(3, 2).string('v').finish());
    expect(reason(put(entity([0x66, 0xff])))).toBe('entity is not valid UTF-8; strings (ids, values) must be UTF-8 text');
    expect(reason(put(entity([0x66, 0xfe])))).toBe('entity is not valid UTF-8; strings (ids, values) must be UTF-8 text');
    expect(reason(put(entity([0x66, 0xc3, 0xbc])))).toBeUndefined();
  });

  it('describes bytes that are no message at all without throwing', () => {
    expect(reason(put(Buffer.from([0x0a, 0x7f])))).toMatch(/^the request is not a valid PutRequest message \(premature EOF\)/);
  });
});
