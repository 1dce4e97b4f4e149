/**
 * A real browser for the browser tests, the browser benchmarks and the simulation's PNG charts: Debian's Chromium
 * (FEDGE_CHROMIUM overrides the path) driven by playwright-core, headless. Each launch gets a fresh temporary
 * profile; close() stops the browser and removes it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.FEDGE_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(
  opts: { webgpu?: boolean } = {},
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `browser tests need Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set FEDGE_CHROMIUM`,
    );
  const profile = mkdtempSync(join(tmpdir(), 'fedge-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...(opts.webgpu
        ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader']
        : []),
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
