/**
 * A chart's SVG as a PNG, rendered by Chromium (playwright-core, Debian's package): for READMEs and viewers that do
 * not show SVG. Returns false, with the reason printed, where no Chromium is installed — the SVG is still written.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { CHROMIUM, launchChromium } from '../dev/harness/chromium.ts';

export async function writePng(svg: string, path: string): Promise<boolean> {
  if (!existsSync(CHROMIUM)) {
    console.log(`(no PNG: Chromium is not at ${CHROMIUM}; the SVG has the same chart)`);
    return false;
  }
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.setContent(`<!doctype html><body style="margin:0">${svg}</body>`);
    writeFileSync(path, await page.locator('svg').screenshot());
    return true;
  } finally {
    await browser.close();
  }
}
