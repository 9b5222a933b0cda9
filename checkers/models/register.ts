// Registers, one per key: `register` (read, write) and `cas-register` (read, write, cas), as Knossos's
// models of the same names. Values: write v, cas [old new], read → the value read. A register starts at
// `initialValue` (default nil, the empty register). An ok read of nil means the key was empty, or, with
// `nilRead: "unknown"` (Knossos's convention), that the value read was not recorded: then it says
// nothing and is counted as not judged. An ok cas found `old` and wrote `new`; an info cas may have
// happened or not: if the register held `old` it may now hold `new`, otherwise it is unchanged.
import { keyed, sameValue, show, valueKey, type HistoryOp, type Model, type ModelFactory, type ModelOptions, type NotJudged, type Prepared } from './model.ts';

type Input = { readonly f: 'read' } | { readonly f: 'write'; readonly value: unknown } | { readonly f: 'cas'; readonly old: unknown; readonly new: unknown };

/** Output: the value read (read), true (an ok cas), undefined (unknown outcome, or a write). */
type Output = unknown;

function registerModel(name: 'register' | 'cas-register', options: ModelOptions = {}): Model<unknown, Input, Output> {
  const withCas = name === 'cas-register';
  const initial = options.initialValue ?? null;
  const nilUnknown = options.nilRead === 'unknown';
  return {
    name,
    fs: withCas ? ['read', 'write', 'cas'] : ['read', 'write'],
    prepare(op: HistoryOp, index: number): Prepared<Input, Output> | NotJudged {
      if (op.f === 'read') {
        if (!op.ok) return { drop: true }; // an info read says nothing
        const [key, v] = keyed(op.okValue);
        if ((v === null || v === undefined) && nilUnknown) return { skip: 'read of nil (--nil-read unknown: value not recorded)' };
        return { key, input: { f: 'read' }, output: v ?? null, shown: v ?? null };
      }
      const [key, v] = keyed(op.invokeValue);
      if (op.f === 'write') return { key, input: { f: 'write', value: v ?? null }, output: undefined, shown: v ?? null };
      if (op.f === 'cas') {
        if (!withCas) throw new Error(`Op ${index} is a cas, which the "register" model does not have; check with model "cas-register".`);
        if (!Array.isArray(v) || v.length !== 2) throw new Error(`Op ${index}: a cas value must be [old, new], got ${JSON.stringify(v)}.`);
        const input = { f: 'cas' as const, old: v[0] ?? null, new: v[1] ?? null };
        return { key, input, output: op.ok ? true : undefined, shown: [input.old, input.new] };
      }
      return { skip: `${op.f}: not an op of the ${name} model` };
    },
    init: () => initial,
    step(state, input, output) {
      if (input.f === 'read') return sameValue(state, output) ? state : undefined;
      if (input.f === 'write') return input.value;
      if (sameValue(state, input.old)) return input.new;
      return output === undefined ? state : undefined;
    },
    stateKey: valueKey,
    describeOperation(input, output) {
      if (input.f === 'read') return `read() → ${show(output)}`;
      if (input.f === 'write') return `write(${show(input.value)})`;
      return `cas(${show(input.old)}, ${show(input.new)})${output === undefined ? ' → ?' : ''}`;
    },
    describeState: show,
  };
}

export const register: ModelFactory = (options) => registerModel('register', options);
export const casRegister: ModelFactory = (options) => registerModel('cas-register', options);
