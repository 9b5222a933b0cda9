// A key-value store with get, put and append, one string per key (the model of Porcupine's kv tests):
// every key starts as "" (or `initialValue`), put replaces it, append concatenates, get returns it.
// Ops carry their key: {key, value} (Jepsen's :key field, kept by edn.ts). A get of nil reads the empty
// string (an absent key), or with `nilRead: "unknown"` is counted as not judged.
import { keyed, show, type HistoryOp, type Model, type ModelFactory, type NotJudged, type Prepared } from './model.ts';

type Input = { readonly f: 'get' } | { readonly f: 'put' | 'append'; readonly value: string };

function text(v: unknown, index: number, f: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`Op ${index}: a ${f} of the kv model needs a string value, got ${JSON.stringify(v)}.`);
}

export const kv: ModelFactory = (options = {}) => {
  const initial = options.initialValue === undefined || options.initialValue === null ? '' : String(options.initialValue);
  const model: Model<string, Input, string> = {
    name: 'kv',
    fs: ['get', 'put', 'append'],
    prepare(op: HistoryOp, index: number): Prepared<Input, string> | NotJudged {
      const f = op.f;
      if (f !== 'get' && f !== 'put' && f !== 'append') return { skip: `${f}: not an op of the kv model` };
      const source = f === 'get' ? op.okValue : op.invokeValue;
      if (f === 'get' && !op.ok) return { drop: true };
      if (source === null || typeof source !== 'object' || !('key' in source)) {
        throw new Error(`Op ${index}: a ${f} of the kv model needs a key ({key, value}, or :key in EDN), got ${JSON.stringify(source)}.`);
      }
      const [key, v] = keyed(source);
      if (f === 'get') {
        if (v === null || v === undefined) {
          if (options.nilRead === 'unknown') return { skip: 'get of nil (--nil-read unknown: value not recorded)' };
          return { key, input: { f }, output: '', shown: '' };
        }
        const out = text(v, index, f);
        return { key, input: { f }, output: out, shown: out };
      }
      const value = text(v, index, f);
      return { key, input: { f, value }, output: undefined, shown: value };
    },
    init: () => initial,
    step(state, input, output) {
      if (input.f === 'get') return state === output ? state : undefined;
      return input.f === 'put' ? input.value : state + input.value;
    },
    stateKey: (s) => s,
    describeOperation(input, output) {
      return input.f === 'get' ? `get() → ${show(output)}` : `${input.f}(${show(input.value)})`;
    },
    describeState: show,
  };
  return model;
};
