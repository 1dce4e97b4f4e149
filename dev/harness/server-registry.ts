/**
 * Which process groups the tests started (local-server.ts records each server it starts), kept as one empty file
 * per group in a folder the vitest run owns (FEDGE_TEST_PROCESS_DIR, set by test/global-setup.ts and inherited by
 * every test worker). A worker that dies or is torn down without running its hooks cannot stop its servers itself;
 * the run's teardown stops what is listed. Outside a vitest run (benchmarks, simulations) it records nothing.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = () => process.env.FEDGE_TEST_PROCESS_DIR;

export function recordGroup(pgid: number): void {
  const d = dir();
  if (!d) return;
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, String(pgid)), '');
}

export function forgetGroup(pgid: number): void {
  const d = dir();
  if (d) rmSync(join(d, String(pgid)), { force: true });
}

/** Every group still listed in `folder` (the teardown's view). */
export function recordedGroups(folder: string): number[] {
  try {
    return readdirSync(folder)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 1);
  } catch {
    return [];
  }
}
