// Regenerates proto/gen/ from proto/*.proto with buf + ts-proto, both from npm, so no
// system protoc is needed. With --check it generates into a scratch folder and fails
// when the committed code differs, which is how CI proves the generated code is fresh.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, cpSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const scratch = mkdtempSync(join(tmpdir(), 'faultline-proto-'));

try {
  // buf writes relative to the working directory; run it in a copy so --check never touches proto/gen.
  cpSync(join(root, 'proto'), join(scratch, 'proto'), { recursive: true, filter: (src) => !src.includes('/gen') });
  mkdirSync(join(scratch, 'node_modules', '.bin'), { recursive: true });
  const template = readFileSync(join(root, 'proto', 'buf.gen.yaml'), 'utf8').replace(
    './node_modules/.bin/protoc-gen-ts_proto',
    join(root, 'node_modules', '.bin', 'protoc-gen-ts_proto'),
  );
  execFileSync(join(root, 'node_modules', '.bin', 'buf'), ['generate', 'proto', '--template', template], {
    cwd: scratch,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const fresh = join(scratch, 'proto', 'gen');
  if (check) {
    const stale: string[] = [];
    for (const file of readdirSync(fresh)) {
      const committed = join(root, 'proto', 'gen', file);
      if (!existsSync(committed) || readFileSync(committed, 'utf8') !== readFileSync(join(fresh, file), 'utf8')) stale.push(file);
    }
    if (stale.length > 0) {
      console.error(`proto/gen is stale (${stale.join(', ')}): run \`npm run gen:proto\` and commit the result.`);
      process.exit(1);
    }
    console.log('proto/gen is fresh');
  } else {
    rmSync(join(root, 'proto', 'gen'), { recursive: true, force: true });
    cpSync(fresh, join(root, 'proto', 'gen'), { recursive: true });
    console.log('generated proto/gen from proto/*.proto');
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
