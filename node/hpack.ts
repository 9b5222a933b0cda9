// HPACK (RFC 7541), the header compression of HTTP/2: a complete decoder and the few encoder pieces the
// benchmark's raw gRPC client (node/bench-client.ts) needs. The decoder keeps the dynamic table in step
// with the peer's encoder, so it must see every header block of a connection, in order.
//
// The Huffman code of RFC 7541 Appendix B is canonical (codes of one length are consecutive and follow
// symbol order), so it is fully described by each symbol's code length; the decoder rebuilds the codes
// from HUFFMAN_LENGTHS. node/test/hpack.test.ts checks this against the RFC's examples and against
// header blocks that Node's own HTTP/2 stack (nghttp2) encodes.

export class HpackError extends Error {}

/** RFC 7541 Appendix A: index 1..61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Code length in bits of symbols 0..256 (256 is EOS), one base-32 digit each (RFC 7541 Appendix B). */
const HUFFMAN_LENGTHS =
  'dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6cad67777777777777777777777878djde6f565656665776665676556777' +
  '77fbedskmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmnqqkjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqq' +
  'rrrrrsrrrrrqu';
const EOS = 256;
const MAX_CODE_BITS = 30;

/** Canonical decoding tables: for each length, the first code, how many codes, and where their symbols start. */
const huffman = (() => {
  const lengths = [...HUFFMAN_LENGTHS].map((c) => parseInt(c, 32));
  if (lengths.length !== 257) throw new Error(`HPACK Huffman table has ${lengths.length} lengths, expected 257`);
  const symbols = lengths.map((_, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const first = new Int32Array(MAX_CODE_BITS + 1);
  const count = new Int32Array(MAX_CODE_BITS + 1);
  const offset = new Int32Array(MAX_CODE_BITS + 1);
  const codes = new Int32Array(257);
  let code = 0;
  let len = lengths[symbols[0]];
  symbols.forEach((s, i) => {
    if (i > 0) code = (code + 1) << (lengths[s] - len);
    len = lengths[s];
    if (count[len] === 0) {
      first[len] = code;
      offset[len] = i;
    }
    count[len] += 1;
    codes[s] = code;
  });
  return { lengths, symbols: Int32Array.from(symbols), first, count, offset, codes };
})();

/** The Huffman code of a symbol (for tests): [code, bits]. */
export function huffmanCode(symbol: number): [number, number] {
  return [huffman.codes[symbol], huffman.lengths[symbol]];
}

export function huffmanDecode(data: Uint8Array): string {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len += 1;
      const d = code - huffman.first[len];
      if (d >= 0 && d < huffman.count[len]) {
        const symbol = huffman.symbols[huffman.offset[len] + d];
        if (symbol === EOS) throw new HpackError('Huffman string contains EOS');
        out.push(symbol);
        code = 0;
        len = 0;
      } else if (len >= MAX_CODE_BITS) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  // Padding: at most 7 bits, all ones (the most significant bits of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

export type HeaderList = [string, string][];
const EMPTY = new Uint8Array(0);

/** A decoder for one direction of one connection. */
export class HpackDecoder {
  /** Newest entry first; index 62 is entries[0]. */
  readonly #entries: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  /** The SETTINGS_HEADER_TABLE_SIZE we announced: the encoder may not go above it. */
  readonly #limit: number;

  constructor(tableSizeLimit = 4096) {
    this.#limit = tableSizeLimit;
    this.#maxSize = tableSizeLimit;
  }

  get tableSize(): number {
    return this.#size;
  }

  decode(block: Uint8Array): HeaderList {
    const headers: HeaderList = [];
    this.decodeEach(block, (name, value) => headers.push([name, value]));
    return headers;
  }

  /** Decodes a block, calling onHeader for each field in order (no list is built). */
  decodeEach(block: Uint8Array, onHeader: (name: string, value: string) => void): void {
    this.#block = block;
    this.#pos = 0;
    let fields = 0;
    try {
      while (this.#pos < block.length) {
        const b = block[this.#pos];
        if (b & 0x80) {
          const e = this.#entry(this.#integer(7));
          onHeader(e[0], e[1]);
          fields += 1;
        } else if (b & 0x40) {
          const index = this.#integer(6);
          const name = index === 0 ? this.#string() : this.#entry(index)[0];
          const value = this.#string();
          this.#add(name, value);
          onHeader(name, value);
          fields += 1;
        } else if (b & 0x20) {
          if (fields > 0) throw new HpackError('dynamic table size update after a header field');
          const size = this.#integer(5);
          if (size > this.#limit) throw new HpackError(`dynamic table size update to ${size} exceeds the announced ${this.#limit}`);
          this.#maxSize = size;
          this.#evict();
        } else {
          // Literal without indexing (0000) or never indexed (0001): the table is untouched.
          const index = this.#integer(4);
          const name = index === 0 ? this.#string() : this.#entry(index)[0];
          onHeader(name, this.#string());
          fields += 1;
        }
      }
    } finally {
      this.#block = EMPTY;
    }
  }

  #block: Uint8Array = EMPTY;
  #pos = 0;

  #integer(prefixBits: number): number {
    const block = this.#block;
    if (this.#pos >= block.length) throw new HpackError('header block ends inside an integer');
    const mask = (1 << prefixBits) - 1;
    let value = block[this.#pos++] & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.#pos >= block.length) throw new HpackError('header block ends inside an integer');
      const b = block[this.#pos++];
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return value;
      if (shift > 28) throw new HpackError('integer too large');
    }
  }

  #string(): string {
    const block = this.#block;
    if (this.#pos >= block.length) throw new HpackError('header block ends before a string');
    const huffmanCoded = (block[this.#pos] & 0x80) !== 0;
    const length = this.#integer(7);
    const start = this.#pos;
    if (start + length > block.length) throw new HpackError('string runs past the end of the header block');
    this.#pos += length;
    const bytes = block.subarray(start, start + length);
    return huffmanCoded ? huffmanDecode(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  }

  #entry(index: number): readonly [string, string] {
    if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const e = this.#entries[index - STATIC_TABLE.length - 1];
    if (index === 0 || !e) throw new HpackError(`header index ${index} is not in the table`);
    return e;
  }

  #add(name: string, value: string): void {
    this.#entries.unshift([name, value]);
    this.#size += name.length + value.length + 32;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#maxSize) {
      const [name, value] = this.#entries.pop()!;
      this.#size -= name.length + value.length + 32;
    }
  }
}

function encodeInteger(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return [firstByteFlags | value];
  const out = [firstByteFlags | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

/**
 * Encodes a header list without touching the peer's dynamic table: static-table matches are indexed,
 * everything else is a literal without indexing, strings raw (no Huffman). The result is the same
 * block every time, so a client can encode its constant request headers once.
 */
export function encodeHeadersWithoutIndexing(headers: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  const raw = (s: string) => {
    const bytes = Buffer.from(s, 'latin1');
    out.push(...encodeInteger(bytes.length, 7, 0), ...bytes);
  };
  for (const [name, value] of headers) {
    const full = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (full >= 0) {
      out.push(...encodeInteger(full + 1, 7, 0x80));
      continue;
    }
    const byName = STATIC_TABLE.findIndex(([n]) => n === name);
    out.push(...encodeInteger(byName + 1, 4, 0));
    if (byName < 0) raw(name);
    raw(value);
  }
  return Buffer.from(out);
}
