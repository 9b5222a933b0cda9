// The README is the user's first contact: its quick start and option table must match the code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText } from '../options.ts';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it('shows every option exactly as --help prints it', () => {
    const options = helpText().split('\n').filter((l) => l.startsWith('  --')).map((l) => l.slice(2));
    expect(options.length).toBeGreaterThan(15);
    for (const line of options) expect(readme).toContain(line);
  });

  it('starts with the two-command quick start: a partition test and the tests', () => {
    const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## What a run does'));
    expect(quick).toContain('npm run jepsen -- --nemesis partition');
    expect(quick).toContain('npm test');
    expect(readme.match(/^## .*/m)?.[0]).toBe('## Quick start');
  });
});
