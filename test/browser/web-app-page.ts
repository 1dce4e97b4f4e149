/**
 * The web app as the browser tests open it: `npm start`'s server with its own state and Chromium (WebGPU on), one page
 * on the app, ready. Every console error, page error and error answer is logged in `problems` — an error answer is a
 * bug, and the entry names the request (the console only says "Failed to load resource"). `close()` stops both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium } from '../../dev/harness/chromium.ts';
import { type LocalServer, startLocalServer } from '../../dev/harness/local-server.ts';

export interface WebAppPage {
  server: LocalServer;
  browser: Awaited<ReturnType<typeof launchChromium>>;
  page: Page;
  problems: string[];
  close(): Promise<void>;
}

export async function openWebApp(o: { name: string; height: number }): Promise<WebAppPage> {
  const state = mkdtempSync(join(tmpdir(), `fedge-${o.name}-`));
  const [server, browser] = await Promise.all([
    startLocalServer({ persistTo: state }),
    launchChromium({ webgpu: true }),
  ]);
  const problems: string[] = [];
  const page = await browser.context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  await page.setViewportSize({ width: 1280, height: o.height });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return {
    server,
    browser,
    page,
    problems,
    close: async () => {
      await browser.close();
      await server.stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
