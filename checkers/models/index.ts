// The linearizability models by name: the one list the checker, the CLI and the docs read.
import { kv } from './kv.ts';
import type { ModelFactory } from './model.ts';
import { casRegister, register } from './register.ts';

export const MODELS = { register, 'cas-register': casRegister, kv } as const satisfies Record<string, ModelFactory>;
export type ModelName = keyof typeof MODELS;
export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];
export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(MODELS, name);
}
