/**
 * "Help train the language model" in Chromium (playwright-core), served from the real local server with the bundled
 * fedge-gpt: typing a few words shows the three likeliest next words from the edge's model (OIP infer) and from this
 * device's (LocalModel on the same file), and a picked word is added; then the demo (a language-model task, two
 * simulated devices in a Web Worker) and Help train run one round to publication, the visitor's browser being its
 * third device — ε spent and left, the masked update's size; afterwards the edge's column suggests from the published
 * r1 and the device's from the visitor's own fine-tuned copy. axe-core clean; on a phone the columns stack.
 * Screenshots (1280 and 390 wide) in test-results/.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../dev/harness/local-server.ts';
import { type WebAppPage, openWebApp } from './web-app-page.ts';

const artifacts = join(import.meta.dirname, '../../test-results');
let page: Page;
let problems: string[] = [];
let app: WebAppPage;

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  app = await openWebApp({ name: 'lm-train', height: 900 });
  ({ page, problems } = app);
});
afterAll(() => app?.close());

interface LmPanelView {
  suggested: number;
  published: string | undefined;
  last: { status: string; maskedBytes?: number; epsilon?: number } | undefined;
}
const panel = () =>
  page.evaluate(() => {
    const p = (globalThis as unknown as { fedgeApp: { lmPanel: LmPanelView } }).fedgeApp.lmPanel;
    return { suggested: p.suggested, published: p.published, last: p.last };
  });

/** Each column's words, the model it names, and its state. */
const columns = () =>
  page.evaluate(
    () =>
      Object.fromEntries(
        ['edge', 'device'].map((w) => {
          const box = document.getElementById(`lm-suggest-${w}`)!;
          return [
            w,
            {
              words: [...box.querySelectorAll('.lm-word')].map((b) => b.textContent!),
              model: box.querySelector('.lm-model')!.textContent!,
              state: box.dataset.state,
              stats: box.querySelector('.write-stats')!.textContent!,
            },
          ];
        }),
      ) as Record<'edge' | 'device', { words: string[]; model: string; state: string; stats: string }>,
  );

async function typeAndWait(text: string): Promise<void> {
  const before = (await panel()).suggested;
  await page.locator('#lm-typing').press('End');
  await page.keyboard.type(text, { delay: 30 });
  await expect.poll(async () => (await panel()).suggested, { timeout: 90_000 }).toBeGreaterThan(before);
}

describe('Help train the language model', () => {
  it('next-word suggestions from the edge and from this device as the visitor types; a picked word is added', async () => {
    await page.fill('#lm-typing', '');
    await typeAndWait('The whale ');
    const first = await columns();
    expect(first.edge.state).toBe('done');
    expect(first.device.state).toBe('done');
    for (const c of [first.edge, first.device]) {
      expect(c.words).toHaveLength(3);
      for (const w of c.words) expect(w).toMatch(/^[\p{L}\p{N}'’-]+$/u);
      expect(c.stats).toMatch(/^\d+ ms$/);
    }
    expect(first.edge.model).toMatch(/fedge-gpt 1, pretrained · Cloudflare Worker/);
    expect(first.device.model).toMatch(/fedge-gpt 1, pretrained · (WASM|WebGPU) in this browser/);
    // The same file, the same search: the same words, in the same order (the two runtimes' logits agree closely).
    expect(first.device.words).toEqual(first.edge.words);
    console.log(`after "The whale": edge ${first.edge.words.join(', ')}; device ${first.device.words.join(', ')}`);

    // More words: suggestions follow each finished word.
    await typeAndWait('is ');
    const second = await columns();
    expect(second.edge.words).toHaveLength(3);
    expect(second.edge.words).not.toEqual(first.edge.words);
    // Picking a suggestion adds it and a space, and asks again.
    const before = (await panel()).suggested;
    const pick = second.edge.words[0]!;
    await page.locator('#lm-suggest-edge .lm-word').first().click();
    expect(await page.inputValue('#lm-typing')).toBe(`The whale is ${pick} `);
    await expect.poll(async () => (await panel()).suggested, { timeout: 60_000 }).toBeGreaterThan(before);
    await page.locator('#lm').screenshot({ path: join(artifacts, 'lm-train-panel-suggestions.png') });
    expect(problems).toEqual([]);
  }, 180_000);

  it('the demo and Help train: one round published with this browser as the third device; then r1 and its own copy suggest', async () => {
    // Served from 127.0.0.1: the admin token is filled in, so the demo can create its task.
    expect(await page.inputValue('#admin-token')).not.toBe('');
    await page.click('#lm-demo-start');
    await expect.poll(() => page.inputValue('#lm-task'), { timeout: 30_000 }).toMatch(/^lm-demo-/);
    expect(await page.inputValue('#lm-token')).toMatch(/^enroll-/);
    // The visitor need not wait for the simulated devices: the round waits for all three.
    const started = Date.now();
    await page.click('#lm-join');
    await expect
      .poll(() => page.locator('#lm-status').innerText(), { timeout: 120_000 })
      .toMatch(/fine-tuning the LoRA adapters|sending|waiting/);
    await expect.poll(async () => (await panel()).published, { timeout: 300_000, interval: 1000 }).toBe('r1');
    console.log(`Help train to a published round: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const { last } = await panel();
    expect(last?.status).toBe('unmasked');
    expect(last?.epsilon).toBeGreaterThan(0);
    const facts = await page.locator('#lm-facts').innerText();
    expect(facts).toMatch(/ε spent \d+\.\d\d of 10 \(δ 0\.00001\); \d+\.\d\d left/);
    expect(facts).toMatch(/your masked update: \d+\.\d KiB/);
    expect(facts).toMatch(/your own copy: \d+ steps in [\d.]+ s; perplexity on your sentences [\d.]+ → [\d.]+/);
    console.log(facts);
    expect(await page.locator('#lm-status').innerText()).toMatch(/round 1 published lm-demo-\w+ r1/);
    expect(await page.locator('#lm-progress').evaluate((p: HTMLProgressElement) => p.value)).toBe(10);
    await expect.poll(() => page.locator('#lm-demo-status').innerText(), { timeout: 30_000 }).toMatch(/in the sum/);

    // The suggestions now come from the published version on the edge and from the visitor's own copy here.
    await page.fill('#lm-typing', '');
    await typeAndWait('The whale ');
    const after = await columns();
    expect(after.edge.model).toMatch(/^lm-demo-\w+ r1: published by the round/);
    expect(after.device.model).toMatch(/your own fine-tuned copy of fedge-gpt/);
    expect(after.edge.words).toHaveLength(3);
    expect(after.device.words).toHaveLength(3);
    console.log(`after training: edge ${after.edge.words.join(', ')}; device ${after.device.words.join(', ')}`);
    await page.locator('#lm').screenshot({ path: join(artifacts, 'lm-train-panel-desktop.png') });
    expect(problems).toEqual([]);
  }, 480_000);

  it('on a phone the columns stack and nothing is wider than the screen; axe-core clean', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const layout = await page.evaluate(() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('#lm, #lm *')]
        .filter((e) => e.getBoundingClientRect().right > vw + 1)
        .map((e) => `${e.tagName}#${e.id}`);
      const [edge, device] = ['edge', 'device'].map((w) =>
        document.getElementById(`lm-suggest-${w}`)!.getBoundingClientRect(),
      );
      return {
        wide,
        stacked: device!.top >= edge!.bottom,
        sideways: document.documentElement.scrollWidth > innerWidth,
      };
    });
    expect(layout).toEqual({ wide: [], stacked: true, sideways: false });
    await page.locator('#lm').screenshot({ path: join(artifacts, 'lm-train-panel-phone.png') });
    await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 900 },
    ]) {
      await page.setViewportSize(viewport);
      const violations = await page.evaluate(async () => {
        const axe = (
          globalThis as unknown as {
            axe: {
              run(ctx: { include: string[] }): Promise<{ violations: { id: string; impact: string; help: string }[] }>;
            };
          }
        ).axe;
        return (await axe.run({ include: ['#lm'] })).violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => `${v.impact} ${v.id}: ${v.help}`);
      });
      expect(violations, `at ${viewport.width}×${viewport.height}`).toEqual([]);
    }
    expect(problems).toEqual([]);
  }, 120_000);
});
