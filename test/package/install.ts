/**
 * Packs this repository (`npm pack`, which runs the build through `prepack`) and installs the tarball into a
 * throwaway app, offline: npm's cache holds the tarballs `npm ci` fetched but not the registry's package lists, so
 * the app gets a lockfile pinning each package to the version this repository's package-lock.json installs (the
 * closure of what the app needs, found the way Node resolves it in our node_modules).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = join(import.meta.dirname, '../..');

type LockEntry = {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
};
const repoLock = () =>
  JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** `npm pack` into `dir`; the tarball's path. */
export async function packFedge(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    maxBuffer: 64 << 20,
  });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    size: number;
    entryCount: number;
  }[];
  return join(dir, info!.filename);
}

/** The lock path Node would load `name` from when required by the package at lock path `from` ('' = the root). */
function resolveIn(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dir.includes('/node_modules/') ? dir.slice(0, dir.lastIndexOf('/node_modules/')) : '') {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
  }
}

/** Lock entries for `names` and everything they need at run time, as laid out in this repository's node_modules. */
function closure(names: string[]): Record<string, LockEntry> {
  const { packages } = repoLock();
  const out: Record<string, LockEntry> = {};
  const visit = (from: string, name: string, optional: boolean) => {
    const path = resolveIn(packages, from, name);
    if (!path) {
      if (optional) return;
      throw new Error(`${name} (needed by ${from || 'the app'}) is not in package-lock.json`);
    }
    if (out[path]) return;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = packages[path]!;
    out[path] = entry;
    for (const dep of Object.keys(entry.dependencies ?? {})) visit(path, dep, false);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(path, dep, true);
    for (const [dep] of Object.entries(entry.peerDependencies ?? {}))
      if (!entry.peerDependenciesMeta?.[dep]?.optional) visit(path, dep, false);
  };
  for (const n of names) visit('', n, false);
  return out;
}

/**
 * An app in `dir` depending on the tarball and on `extra` packages (at this repository's versions), installed with
 * `npm ci --offline`; install scripts off, as this repository installs.
 */
export async function installApp(dir: string, tarball: string, extra: string[] = []): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as LockEntry & { name: string };
  const spec = `file:${relative(dir, tarball)}`;
  const versions = Object.fromEntries(extra.map((n) => [n, repoLock().packages[`node_modules/${n}`]!.version!]));
  const dependencies = { fedge: spec, ...versions };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `consumer-${basename(dir)}`, private: true, type: 'module', dependencies }, null, 2),
  );
  const deps = closure([...Object.keys(own.dependencies ?? {}), ...extra]);
  const fedge: LockEntry = {
    version: own.version,
    resolved: spec,
    integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
    license: own.license,
    dependencies: own.dependencies,
    bin: own.bin,
    engines: own.engines,
    peerDependencies: own.peerDependencies,
    peerDependenciesMeta: own.peerDependenciesMeta,
  };
  const lock = {
    name: `consumer-${basename(dir)}`,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: `consumer-${basename(dir)}`, dependencies }, 'node_modules/fedge': fedge, ...deps },
  };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    maxBuffer: 64 << 20,
  });
}

/** Bytes under `dir` (files as stored, not blocks). */
export function treeBytes(dir: string): Promise<number> {
  return run('du', ['-sb', dir]).then(({ stdout }) => Number(stdout.split('\t')[0]));
}
