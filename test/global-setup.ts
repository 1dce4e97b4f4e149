/**
 * Runs once around the whole vitest run: gives the workers a folder to record the process groups they start
 * (dev/harness/server-registry.ts), and at the end stops any group still listed — a server whose test failed before it
 * could keep a handle on it (e.g. `Promise.all([startLocalServer(), launchChromium()])` rejecting) is stopped too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordedGroups } from '../dev/harness/server-registry.ts';

export default function setup(): () => Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'fedge-test-processes-'));
  process.env.FEDGE_TEST_PROCESS_DIR = folder;
  return async () => {
    const left = recordedGroups(folder);
    for (const pgid of left) {
      try {
        process.kill(-pgid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    if (left.length) {
      await new Promise((r) => setTimeout(r, 2000));
      for (const pgid of left) {
        try {
          process.kill(-pgid, 'SIGKILL');
          console.warn(`test teardown: stopped process group ${pgid}, which a test had left running`);
        } catch {
          /* it ended on SIGTERM */
        }
      }
    }
    rmSync(folder, { recursive: true, force: true });
  };
}
