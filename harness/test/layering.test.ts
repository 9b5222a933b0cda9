// The import direction of shared/DESIGN.md, read from the sources: checkers and nemeses import only the
// contracts (the history op, the rng, the System and role interfaces) and never the engine; the engine
// (lifecycle, interpreter, cluster, generators, history writer, results) imports no system under test;
// and a system never imports another system.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const rel = path.join(dir, name);
    if (name === 'test' || name === 'node_modules') return [];
    if (statSync(path.join(root, rel)).isDirectory()) return sources(rel);
    return /\.(ts|mjs)$/.test(name) && !name.endsWith('.test.ts') ? [rel] : [];
  });
}

/** Every relative import of a file, resolved to a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:import|export)\s[^'";]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) => m[1] ?? m[2]);
  return specs.map((s) => path.normalize(path.join(path.dirname(file), s)));
}

/** The contracts under everyone: what checkers and nemeses may import from harness/. */
const CONTRACTS = new Set(['harness/history.ts', 'harness/rng.ts', 'harness/system.ts']);
/** The engine: names no system and imports none. */
const ENGINE = ['harness/cluster.ts', 'harness/interpreter.ts', 'harness/lifecycle.ts', 'harness/generator.ts', 'harness/history-writer.ts', 'harness/results.ts', 'harness/system.ts'];

describe('layering', () => {
  it('checkers and nemeses import nothing from harness/ but the contracts', () => {
    const bad = [...sources('checkers'), ...sources('nemesis')].flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('harness/') && !CONTRACTS.has(target))
        .map((target) => `${file} → ${target}`),
    );
    expect(bad).toEqual([]);
  });

  it('the engine imports no system under test and names none', () => {
    const systems = readdirSync(path.join(root, 'harness', 'systems')).filter((n) => statSync(path.join(root, 'harness', 'systems', n)).isDirectory() && n !== 'test');
    expect(systems).toEqual(expect.arrayContaining(['store-mesh', 'etcd']));
    const bad = ENGINE.flatMap((file) => [
      ...importsOf(file)
        .filter((target) => target.startsWith('harness/systems/') || target.startsWith('node/'))
        .map((target) => `${file} imports ${target}`),
      ...systems.filter((name) => readFileSync(path.join(root, file), 'utf8').includes(name)).map((name) => `${file} names ${name}`),
    ]);
    expect(bad).toEqual([]);
  });

  it('a system imports no other system', () => {
    // harness/systems/<name>/... may import from its own folder only; the registry (index.ts) imports them all.
    const systemOf = (file: string): string | undefined => (file.split(path.sep).length > 3 ? file.split(path.sep)[2] : undefined);
    const bad = sources('harness/systems').flatMap((file) => {
      const own = systemOf(file);
      if (own === undefined) return [];
      return importsOf(file)
        .filter((t) => t.startsWith('harness/systems/') && systemOf(t) !== own)
        .map((t) => `${file} → ${t}`);
    });
    expect(bad).toEqual([]);
  });
});
