// The systems under test, by name (`--system`): the one place that lists them. Adding a system is one
// folder under harness/systems/ plus one line here; the engine takes the System it is given and never
// imports this file (the entry points and the option table do).
import type { System } from '../system.ts';
import { etcd } from './etcd/index.ts';
import { storeMesh } from './store-mesh/index.ts';

export const SYSTEMS: readonly System[] = [storeMesh, etcd];

export const DEFAULT_SYSTEM = storeMesh.name;

/** The system of that name; throws naming the valid ones. */
export function systemNamed(name: string): System {
  const system = SYSTEMS.find((s) => s.name === name);
  if (!system) throw new Error(`Unknown system "${name}": expected one of ${SYSTEMS.map((s) => s.name).join(', ')}`);
  return system;
}
