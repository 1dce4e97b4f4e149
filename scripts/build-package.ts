/**
 * `npm run build` (and `prepack`): the published package in dist/ — fedge/client, fedge/client/node and
 * fedge/federated as ES modules with .d.ts and source maps (tsconfig.build.json), and the `fedge` CLI
 * (tsconfig.build-cli.json). Starts from an empty dist/ so nothing stale is packed (package.json `files` is dist/),
 * rewrites the declarations' .ts import paths to .js, then checks that no emitted module still imports a .ts path
 * (Node refuses those inside node_modules) and that no server code (functions/) was pulled in.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const tsc = join(root, 'node_modules/typescript/bin/tsc'); // not in typescript's exports map

rmSync(dist, { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.build-cli.json']) {
  execFileSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit', cwd: root });
}
chmodSync(join(dist, 'cli/fedge.js'), 0o755);

// tsc rewrites .ts import paths in the JavaScript but not in declarations: do the same there.
for (const f of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
  if (!f.endsWith('.d.ts')) continue;
  const path = join(dist, f);
  writeFileSync(
    path,
    readFileSync(path, 'utf8').replace(/((?:from\s*|import\s*\(\s*)['"]\.\.?\/[^'"]*)\.ts(['"])/g, '$1.js$2'),
  );
}

// The Worker is not part of the package: a client or CLI module that reaches into functions/ would ship it.
if (existsSync(join(dist, 'functions')))
  throw new Error('build: dist/functions exists — a shipped module imports server code from functions/');

const tsImport = /(?:from\s*|import\s*\(\s*)['"][^'"]+\.ts['"]/;
const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter(
  (f) => f.endsWith('.js') || f.endsWith('.d.ts'),
);
const bad = files.filter((f) => tsImport.test(readFileSync(join(dist, f), 'utf8')));
if (bad.length) throw new Error(`build: .ts import paths left in ${bad.join(', ')}`);
console.log(`build: ${files.length} modules and declarations in dist/`);
