// Tests of the HPACK decoder (node/hpack.ts): the worked examples of RFC 7541 Appendix C byte for byte,
// the Huffman code's shape, every malformed input the decoder must refuse, and a whole connection's
// response header blocks as Node's own HTTP/2 stack (nghttp2) encodes them, Huffman and evictions included.
import { describe, expect, it } from 'vitest';
import { createServer, type OutgoingHttpHeaders } from 'node:http2';
import { connect } from 'node:net';
import { HpackDecoder, HpackError, encodeHeadersWithoutIndexing, huffmanCode, huffmanDecode, type HeaderList } from '../hpack.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('huffmanDecode', () => {
  // RFC 7541 C.4 and C.6: the Huffman-coded strings of the examples.
  it.each([
    ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
    ['a8eb 1064 9cbf', 'no-cache'],
    ['25a8 49e9 5ba9 7d7f', 'custom-key'],
    ['25a8 49e9 5bb8 e8b4 bf', 'custom-value'],
    ['6402', '302'],
    ['640e ff', '307'],
    ['aec3 771a 4b', 'private'],
    ['9bd9 ab', 'gzip'],
    ['d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', 'https://www.example.com'],
    ['', ''],
  ])('decodes %s to "%s"', (coded, text) => {
    expect(huffmanDecode(hex(coded))).toBe(text);
  });

  it('accepts up to 7 bits of all-ones padding and nothing else', () => {
    // '0' is 00000, so 0x07 is '0' plus three padding bits of 1.
    expect(huffmanDecode(Buffer.from([0x07]))).toBe('0');
    expect(() => huffmanDecode(Buffer.from([0x00]))).toThrow(HpackError); // padding with zero bits
    expect(() => huffmanDecode(Buffer.from([0x07, 0xff]))).toThrow(HpackError); // 11 bits of padding
    expect(() => huffmanDecode(Buffer.from([0xff]))).toThrow(HpackError); // 8 bits of padding
    const last = hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe'); // www.example.com with its last padding bit cleared
    expect(() => huffmanDecode(last)).toThrow(HpackError);
  });

  it('refuses EOS inside a string', () => {
    expect(() => huffmanDecode(hex('ffff fffc'))).toThrow(HpackError); // EOS, then 2 bits of padding
    expect(() => huffmanDecode(Buffer.concat([hex('07'), hex('ffff ffff')]))).toThrow(HpackError);
  });
});

describe('huffmanCode', () => {
  it('matches codes of RFC 7541 Appendix B', () => {
    expect(huffmanCode('0'.charCodeAt(0))).toEqual([0x0, 5]);
    expect(huffmanCode(' '.charCodeAt(0))).toEqual([0x14, 6]);
    expect(huffmanCode(':'.charCodeAt(0))).toEqual([0x5c, 7]);
    expect(huffmanCode('z'.charCodeAt(0))).toEqual([0x7b, 7]);
    expect(huffmanCode('&'.charCodeAt(0))).toEqual([0xf8, 8]);
    expect(huffmanCode(0)).toEqual([0x1ff8, 13]);
    expect(huffmanCode(256)).toEqual([0x3fffffff, 30]); // EOS
  });

  it('is a complete prefix-free code', () => {
    const codes = Array.from({ length: 257 }, (_, s) => huffmanCode(s));
    // Kraft: a complete prefix code has sum(2^-bits) = 1 exactly (in units of 2^-30).
    expect(codes.reduce((sum, [, bits]) => sum + 2 ** (30 - bits), 0)).toBe(2 ** 30);
    for (let a = 0; a < codes.length; a++) {
      for (let b = 0; b < codes.length; b++) {
        const [ca, la] = codes[a];
        const [cb, lb] = codes[b];
        if (a === b || la > lb) continue;
        // a's code must not be the first la bits of b's code.
        expect(cb >>> (lb - la), `code of ${a} is a prefix of the code of ${b}`).not.toBe(ca);
      }
    }
  });

  it('decodes every symbol from its own code', () => {
    for (let s = 0; s < 256; s++) {
      const [code, bits] = huffmanCode(s);
      const padded = bits + ((8 - (bits % 8)) % 8);
      // The code followed by all-ones padding to a byte boundary, as a big-endian bit string.
      const value = BigInt(code) * 2n ** BigInt(padded - bits) + (2n ** BigInt(padded - bits) - 1n);
      const bytes = Buffer.from(value.toString(16).padStart(padded / 4, '0'), 'hex');
      expect(huffmanDecode(bytes), `symbol ${s}`).toBe(String.fromCharCode(s));
    }
  });
});

/** Decodes a sequence of header blocks with one decoder; returns each list and the table size after it. */
function decodeAll(blocks: string[], tableSizeLimit?: number) {
  const decoder = new HpackDecoder(tableSizeLimit);
  return blocks.map((b) => {
    const headers = decoder.decode(hex(b));
    return { headers, tableSize: decoder.tableSize };
  });
}

const REQUESTS: HeaderList[] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];
// Entry sizes are name + value + 32 octets: 10+15+32 = 57, then 13+8+32 = 53, then 10+12+32 = 54.
const REQUEST_TABLE_SIZES = [57, 57 + 53, 57 + 53 + 54];

const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSES: HeaderList[] = [
  [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [
    [':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'], ['set-cookie', COOKIE],
  ],
];
// With a 256-octet table: 42+52+65+63 = 222; ":status: 302" (42) makes room for ":status: 307" (42);
// then the third response leaves set-cookie (10+56+32 = 98), content-encoding (16+4+32 = 52) and the
// new date (4+29+32 = 65).
const RESPONSE_TABLE_SIZES = [42 + 52 + 65 + 63, 42 + 63 + 65 + 52, 98 + 52 + 65];

describe('HpackDecoder on the examples of RFC 7541 Appendix C', () => {
  it('C.2: one field of each literal kind and an indexed one', () => {
    expect(decodeAll(['400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'])).toEqual([
      { headers: [['custom-key', 'custom-header']], tableSize: 55 },
    ]);
    expect(decodeAll(['040c 2f73 616d 706c 652f 7061 7468'])).toEqual([{ headers: [[':path', '/sample/path']], tableSize: 0 }]);
    expect(decodeAll(['1008 7061 7373 776f 7264 0673 6563 7265 74'])).toEqual([{ headers: [['password', 'secret']], tableSize: 0 }]);
    expect(decodeAll(['82'])).toEqual([{ headers: [[':method', 'GET']], tableSize: 0 }]);
  });

  it('C.3: three requests without Huffman coding', () => {
    const decoded = decodeAll([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]);
    expect(decoded.map((d) => d.headers)).toEqual(REQUESTS);
    expect(decoded.map((d) => d.tableSize)).toEqual([57, 110, 164]);
    expect(REQUEST_TABLE_SIZES).toEqual([57, 110, 164]);
  });

  it('C.4: the same requests with Huffman coding', () => {
    const decoded = decodeAll([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]);
    expect(decoded.map((d) => d.headers)).toEqual(REQUESTS);
    expect(decoded.map((d) => d.tableSize)).toEqual(REQUEST_TABLE_SIZES);
  });

  it('C.5: three responses without Huffman coding, evicting from a 256-octet table', () => {
    const decoded = decodeAll(
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073' +
          '3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48' +
          '514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
      256,
    );
    expect(decoded.map((d) => d.headers)).toEqual(RESPONSES);
    expect(decoded.map((d) => d.tableSize)).toEqual([222, 222, 215]);
    expect(RESPONSE_TABLE_SIZES).toEqual([222, 222, 215]);
  });

  it('C.6: the same responses with Huffman coding', () => {
    const decoded = decodeAll(
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b' +
          '3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
      256,
    );
    expect(decoded.map((d) => d.headers)).toEqual(RESPONSES);
    expect(decoded.map((d) => d.tableSize)).toEqual(RESPONSE_TABLE_SIZES);
  });
});

describe('HpackDecoder', () => {
  it('shrinks the table on a size update, evicting the oldest entries first', () => {
    const decoder = new HpackDecoder();
    decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')); // :authority (57)
    decoder.decode(hex('5808 6e6f 2d63 6163 6865')); // cache-control: no-cache (53)
    // A size update to 100 (5-bit prefix: 31, then 69) drops :authority, the oldest; 62 is now cache-control.
    expect(decoder.decode(hex('3f45 be'))).toEqual([['cache-control', 'no-cache']]);
    expect(decoder.tableSize).toBe(53);
    expect(() => decoder.decode(hex('bf'))).toThrow(HpackError);
    // A size update to 0 empties it.
    expect(decoder.decode(hex('20 82'))).toEqual([[':method', 'GET']]);
    expect(decoder.tableSize).toBe(0);
  });

  it('empties the table for an entry larger than the whole table, and still returns the field', () => {
    const decoder = new HpackDecoder(100);
    decoder.decode(hex('5808 6e6f 2d63 6163 6865')); // 53 octets
    const value = 'v'.repeat(69); // 1 + 69 + 32 = 102 > 100
    const block = Buffer.concat([hex('40 01 78 45'), Buffer.from(value)]);
    expect(decoder.decode(block)).toEqual([['x', value]]);
    expect(decoder.tableSize).toBe(0);
  });

  it('decodes multi-byte integers (RFC 7541 C.1.2: 1337 with a 5-bit prefix)', () => {
    // A size update to 1337 (1f 9a 0a), then a literal whose value length 200 needs two bytes (7f 49).
    const value = 'y'.repeat(200);
    const block = Buffer.concat([hex('3f9a0a 0001 7a 7f49'), Buffer.from(value)]);
    expect(new HpackDecoder().decode(block)).toEqual([['z', value]]);
  });

  it.each([
    ['index 0', '80'],
    ['an index past the static table with an empty dynamic table', 'be'],
    ['an index far past the table', 'ff 8001'],
    ['a literal whose name index is past the table', '7f 00 01 61'],
    ['a table size update above the announced limit (4097 > 4096)', '3fe2 1f'],
    ['a table size update after a header field', '82 20'],
    ['a block that ends inside an integer', 'ff'],
    ['a block that ends inside a continued integer', 'ff 80'],
    ['an integer that does not fit', 'ff ffff ffff ff01'],
    ['a block that ends before a literal name', '40'],
    ['a block that ends before a literal value', '40 0161'],
    ['a block that ends inside a string', '40 0a63'],
    ['a Huffman string with zero padding', '41 8100'],
    ['a Huffman string containing EOS', '41 84ffff fffc'],
  ])('refuses %s', (_, block) => {
    expect(() => new HpackDecoder().decode(hex(block))).toThrow(HpackError);
  });

  it('accepts a table size update to exactly the announced limit', () => {
    const decoder = new HpackDecoder(4096);
    expect(decoder.decode(hex('3fe1 1f 82'))).toEqual([[':method', 'GET']]);
  });
});

describe('encodeHeadersWithoutIndexing', () => {
  it('round-trips through the decoder and leaves its table empty', () => {
    const headers: HeaderList = [
      [':method', 'POST'], // the whole field is in the static table
      [':scheme', 'http'],
      [':path', '/faultline.v1.Store/Put'], // the name is in the static table
      [':authority', '127.0.0.1:50051'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'], // a new name
      ['x-long-name-'.repeat(20), 'v'.repeat(300)], // lengths that need multi-byte integers
      ['x-empty', ''],
    ];
    const block = encodeHeadersWithoutIndexing(headers);
    expect(block.subarray(0, 2)).toEqual(Buffer.from([0x83, 0x86])); // indexed :method POST, :scheme http
    const decoder = new HpackDecoder();
    expect(decoder.decode(block)).toEqual(headers);
    expect(decoder.tableSize).toBe(0);
    // The same block is valid again on the same connection, since it never touched the table.
    expect(decoder.decode(block)).toEqual(headers);
    expect(encodeHeadersWithoutIndexing(headers)).toEqual(block);
  });
});

/** A small seeded generator (mulberry32), so the header values are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('HpackDecoder against nghttp2 (node:http2)', () => {
  it('decodes every response header block of a connection, with Huffman codes, evictions and CONTINUATION', async () => {
    const random = seeded(7541);
    // Printable ASCII without space, so the values include symbols with long Huffman codes.
    const text = (length: number) => Array.from({ length }, () => String.fromCharCode(0x21 + Math.floor(random() * 94))).join('');
    const value = () => text(100 + Math.floor(random() * 200));
    // Shared fields repeat in every response (nghttp2 refers to them in its dynamic table); the fresh
    // ones, ~2 KB a response, push older entries out of the 4,096-octet table.
    const shared: HeaderList = Array.from({ length: 6 }, (_, j) => [`x-shared-${j}`, value()]);
    const responses: HeaderList[] = Array.from({ length: 12 }, (_, i) => [
      [':status', '200'],
      ['date', `day ${i % 3}`],
      ...shared,
      ...Array.from({ length: 8 }, (_, j): [string, string] => [`x-fresh-${j}`, value()]),
    ]);
    // Over 16,384 octets even Huffman-coded: nghttp2 must continue it in CONTINUATION frames.
    responses.push([[':status', '200'], ['date', 'big'], ...Array.from({ length: 100 }, (_, j): [string, string] => [`x-big-${j}`, text(300)])]);

    const server = createServer();
    server.on('stream', (stream, headers) => {
      const fields: OutgoingHttpHeaders = {};
      for (const [name, v] of responses[Number(String(headers[':path']).slice(1))]) fields[name] = v;
      stream.respond(fields, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
    try {
      const decoder = new HpackDecoder();
      const decoded = new Map<number, HeaderList>();
      const blockBytes = new Map<number, number>();
      const continuationFrames: number[] = [];
      const done = new Promise<void>((resolve, reject) => {
        let input = Buffer.alloc(0);
        let partial: { id: number; parts: Buffer[] } | undefined;
        const onBlock = (id: number, block: Buffer) => {
          decoded.set(id, decoder.decode(block));
          blockBytes.set(id, block.length);
          if (decoded.size === responses.length) resolve();
        };
        socket.on('data', (chunk: Buffer) => {
          input = Buffer.concat([input, chunk]);
          try {
            while (input.length >= 9 && input.length >= 9 + input.readUIntBE(0, 3)) {
              const [length, type, flags, id] = [input.readUIntBE(0, 3), input[3], input[4], input.readUInt32BE(5) & 0x7fffffff];
              let payload = input.subarray(9, 9 + length);
              input = input.subarray(9 + length);
              if (type === 4 && !(flags & 1)) socket.write(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])); // SETTINGS: ACK it
              if (type === 1) {
                if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]); // PADDED
                if (flags & 0x20) payload = payload.subarray(5); // PRIORITY
                partial = { id, parts: [Buffer.from(payload)] };
              } else if (type === 9) {
                if (partial?.id !== id) throw new Error(`CONTINUATION on stream ${id} continues no header block`);
                continuationFrames.push(id);
                partial.parts.push(Buffer.from(payload));
              } else continue;
              if (flags & 0x4) onBlock(id, Buffer.concat(partial.parts)); // END_HEADERS
            }
          } catch (error) {
            reject(error as Error);
          }
        });
        socket.on('close', () => reject(new Error(`connection closed after ${decoded.size} of ${responses.length} responses`)));
      });
      const requests = responses.map((_, i) => {
        const block = encodeHeadersWithoutIndexing([[':method', 'GET'], [':scheme', 'http'], [':path', `/${i}`], [':authority', 'localhost']]);
        const frame = Buffer.alloc(9);
        frame.writeUIntBE(block.length, 0, 3);
        frame[3] = 1; // HEADERS
        frame[4] = 0x5; // END_STREAM | END_HEADERS
        frame.writeUInt32BE(2 * i + 1, 5);
        return Buffer.concat([frame, block]);
      });
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), ...requests]));
      await done;

      for (const [i, expected] of responses.entries()) expect(decoded.get(2 * i + 1), `response ${i}`).toEqual(expected);
      expect(decoder.tableSize).toBeLessThanOrEqual(4096);
      // Fewer octets than the literal text of the first response's fields: only Huffman coding does that.
      const rawBytes = responses[0].reduce((n, [name, v]) => n + name.length + v.length, 0);
      expect(blockBytes.get(1)).toBeLessThan(rawBytes);
      // A later response refers to the shared fields instead of repeating them.
      expect(blockBytes.get(3)).toBeLessThan(blockBytes.get(1)! - 500);
      expect(continuationFrames).toContain(2 * (responses.length - 1) + 1);
    } finally {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
