// Interning of HLC timestamp strings without hashing strings. A history of a million ops carries two to
// three million timestamps (every write's acknowledgement, every read, every watch event), most of them
// repeats of a few hundred thousand distinct ones. A Map<string, number> hashes each 27-character string
// and compares it on a hit; here a canonical HLC (15 digits of ms, ':', 5 digits of logical counter,
// ':', the node id) is read as numbers instead and looked up in an open-addressing table of doubles.
// That packed number is also its order: (ms, logical, node rank), so the table gives the order numbers
// for free once the node names are ranked. Anything else (another clock's format, a huge ms range, more
// than MAX_NODES node ids) falls back to a Map and to sorting the strings, exactly as before.

/** Node ids packed into the low digits of a key: more than this, and the strings are ranked by sorting. */
const MAX_NODES = 256;
/** Keys are exact integers below 2^53: |ms - first ms| * 1e5 * MAX_NODES must stay below it (about ±4 days). */
const MAX_MS_SPAN = Math.floor(Number.MAX_SAFE_INTEGER / (1e5 * MAX_NODES)) - 1;

/** Whether ts's node id (from position 22) is `name`, compared code by code (no substring, no call into the runtime). */
function suffixIs(ts: string, name: string): boolean {
  const n = name.length;
  if (ts.length - 22 !== n) return false;
  for (let j = 0; j < n; j++) if (ts.charCodeAt(22 + j) !== name.charCodeAt(j)) return false;
  return true;
}

export class HlcInterner {
  /** The distinct strings, by id (the first string seen with each value). */
  readonly str: string[] = [];
  /** Packed key by id (NaN for an id interned through the fallback map). */
  #keyOf = new Float64Array(1024);
  #table = new Float64Array(1 << 12).fill(NaN);
  #ids = new Int32Array(1 << 12);
  #mask = (1 << 12) - 1;
  #shift = 32 - 12;
  #used = 0;
  #names: string[] = [];
  #lastRank = -1;
  #ms0 = NaN;
  /** Strings that are not canonical, or out of the packed range. */
  #fallback = new Map<string, number>();

  /** The id of `ts`, interned when new. */
  id(ts: string): number {
    const key = this.#key(ts);
    if (key !== key) {
      let t = this.#fallback.get(ts);
      if (t === undefined) this.#fallback.set(ts, (t = this.#add(ts, NaN)));
      return t;
    }
    let slot = this.#slot(key);
    for (;;) {
      const k = this.#table[slot];
      if (k === key) return this.#ids[slot];
      if (k !== k) break;
      slot = (slot + 1) & this.#mask;
    }
    const t = this.#add(ts, key);
    this.#table[slot] = key;
    this.#ids[slot] = t;
    if (++this.#used * 2 > this.#mask) this.#grow();
    return t;
  }

  /** The id of `ts`, or -1 when it was never interned. */
  find(ts: string): number {
    const key = this.#key(ts, false);
    if (key !== key) return this.#fallback.get(ts) ?? -1;
    for (let slot = this.#slot(key); ; slot = (slot + 1) & this.#mask) {
      const k = this.#table[slot];
      if (k === key) return this.#ids[slot];
      if (k !== k) return -1;
    }
  }

  /**
   * Order numbers by id: order[a] < order[b] exactly when string a sorts before string b, equal only for
   * the same string.
   */
  order(): Float64Array {
    const n = this.str.length;
    const order = new Float64Array(n);
    if (this.#fallback.size === 0) {
      // Keys carry the node's rank in order of first sight; re-rank by the names' string order, so that
      // ties on (ms, logical) break as the strings do.
      const sorted = this.#names.map((name, r) => [name, r] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      const rank = new Float64Array(this.#names.length);
      sorted.forEach(([, r], s) => (rank[r] = s));
      for (let i = 0; i < n; i++) {
        const key = this.#keyOf[i];
        const seen = key - Math.floor(key / MAX_NODES) * MAX_NODES;
        order[i] = key - seen + rank[seen];
      }
      return order;
    }
    const ids = Array.from({ length: n }, (_, i) => i);
    ids.sort((a, b) => (this.str[a] < this.str[b] ? -1 : this.str[a] > this.str[b] ? 1 : 0));
    for (let r = 0; r < n; r++) order[ids[r]] = r;
    return order;
  }

  /** The packed key of a canonical timestamp, or NaN. `learn`: a new node id may be given a rank. */
  #key(ts: string, learn = true): number {
    // One pass that checks the fixed-width digits and reads them.
    if (ts.length < 23 || ts.charCodeAt(15) !== 58 || ts.charCodeAt(21) !== 58) return NaN;
    let ms = 0;
    for (let j = 0; j < 15; j++) {
      const c = ts.charCodeAt(j) - 48;
      if (c < 0 || c > 9) return NaN;
      ms = ms * 10 + c;
    }
    let logical = 0;
    for (let j = 16; j < 21; j++) {
      const c = ts.charCodeAt(j) - 48;
      if (c < 0 || c > 9) return NaN;
      logical = logical * 10 + c;
    }
    if (this.#ms0 !== this.#ms0) {
      if (!learn) return NaN;
      this.#ms0 = ms;
    }
    const span = ms - this.#ms0;
    if (span > MAX_MS_SPAN || span < -MAX_MS_SPAN) return NaN;
    const rank = this.#rank(ts, learn);
    if (rank < 0) return NaN;
    return (span * 1e5 + logical) * MAX_NODES + rank;
  }

  #rank(ts: string, learn: boolean): number {
    const names = this.#names;
    const last = this.#lastRank;
    if (last >= 0 && suffixIs(ts, names[last])) return last;
    for (let r = 0; r < names.length; r++) if (suffixIs(ts, names[r])) return (this.#lastRank = r);
    if (!learn || names.length >= MAX_NODES) return -1;
    names.push(ts.slice(22));
    return (this.#lastRank = names.length - 1);
  }

  #slot(key: number): number {
    // The key is an integer below 2^53: mix its low and high 32 bits.
    const lo = key >>> 0;
    const hi = Math.floor(key / 4294967296) | 0;
    // The high bits of a multiplicative hash (its low bits depend only on the key's low bits).
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> this.#shift;
  }

  #add(ts: string, key: number): number {
    const t = this.str.length;
    this.str.push(ts);
    if (t === this.#keyOf.length) {
      const grown = new Float64Array(t * 2);
      grown.set(this.#keyOf);
      this.#keyOf = grown;
    }
    this.#keyOf[t] = key;
    return t;
  }

  #grow(): void {
    const oldTable = this.#table;
    const oldIds = this.#ids;
    const size = oldTable.length * 2;
    this.#table = new Float64Array(size).fill(NaN);
    this.#ids = new Int32Array(size);
    this.#mask = size - 1;
    this.#shift -= 1;
    for (let i = 0; i < oldTable.length; i++) {
      const key = oldTable[i];
      if (key !== key) continue;
      let slot = this.#slot(key);
      while (this.#table[slot] === this.#table[slot]) slot = (slot + 1) & this.#mask;
      this.#table[slot] = key;
      this.#ids[slot] = oldIds[i];
    }
  }
}
