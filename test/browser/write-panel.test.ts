/**
 * "Write with the model" in Chromium (playwright-core), served from the real local server with the bundled fedge-gpt:
 * greedy decoding writes the same text on the edge (EdgeClient.generateStream, SSE) and on the device
 * (LocalModel.generateStream), streamed piece by piece, with tokens per second for both, and the edge's text equals its
 * non-streaming /generate answer; Stop ends both mid-generation; a refused prompt is said in words on both sides; the
 * model card shows the metadata and the pretraining report; from the keyboard alone; nothing wider than a phone;
 * axe-core clean. Screenshots (desktop 1280×900, phone 390×844) in test-results/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../dev/harness/local-server.ts';
import { type WebAppPage, openWebApp } from './web-app-page.ts';

const artifacts = join(import.meta.dirname, '../../test-results');
const models = join(import.meta.dirname, '../../models/fedge-gpt');
let server: LocalServer;
let page: Page;
let problems: string[] = [];
let app: WebAppPage;

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  app = await openWebApp({ name: 'write', height: 900 });
  ({ server, page, problems } = app);
});
afterAll(() => app?.close());

/** Generations the panel has finished (either way). */
const finished = () =>
  page.evaluate(
    () => (globalThis as unknown as { fedgeApp: { writePanel: { finished: number } } }).fedgeApp.writePanel.finished,
  );

/** One side's state as the page shows it. */
const side = (where: 'edge' | 'device') =>
  page.evaluate((w) => {
    const box = document.getElementById(`write-${w}`)!;
    return {
      state: box.dataset.state,
      text: box.querySelector('.write-completion')!.textContent!,
      echo: box.querySelector('.write-echo')!.textContent!,
      pieces: box.querySelector('.write-completion')!.childNodes.length,
      tokensPerSecond: Number(box.dataset.tokensPerSecond ?? Number.NaN),
      ranOn: box.querySelector('.write-ranon')!.textContent!,
      stats: box.querySelector('.write-stats')!.textContent!,
    };
  }, where);

async function generate(o: { prompt?: string; maxTokens: number; temperature?: number }): Promise<number> {
  if (o.prompt !== undefined) await page.fill('#write-prompt', o.prompt);
  await page.fill('#write-max-tokens', String(o.maxTokens));
  await page.fill('#write-temperature', String(o.temperature ?? 0));
  const before = await finished();
  await page.click('#write-generate');
  return before;
}

/** What sticks out sideways in the write panel at the current viewport (web-app.test.ts checks the whole page). */
const overflow = () =>
  page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const out: string[] = [];
    if (document.documentElement.scrollWidth > innerWidth) out.push('the page scrolls sideways');
    for (const e of document.querySelectorAll('#write, #write *')) {
      const r = e.getBoundingClientRect();
      if (r.width && r.right > vw + 1) out.push(`${e.tagName}#${e.id}.${e.className} reaches ${Math.round(r.right)}`);
      if (
        !/^(INPUT|SELECT|TEXTAREA)$/.test(e.tagName) &&
        getComputedStyle(e).display !== 'inline' &&
        e.scrollWidth > e.clientWidth + 1 &&
        e.clientWidth > 0
      )
        out.push(`${e.tagName}#${e.id}.${e.className}: content ${e.scrollWidth} px in ${e.clientWidth} px`);
    }
    return out;
  });

/** The keys of the bundled card and report this test looks for (either may lack any of them while being written). */
interface Facts {
  int8?: { heldOut?: { perplexity?: number } };
  pretraining?: { float32HeldOut?: { heldout_perplexity?: number } };
  final?: { heldout_perplexity?: number };
  corpus?: { sources?: string[] };
  architecture?: { parameters?: number };
}

describe('Write with the model', () => {
  it('the model card: the version, its metadata and the pretraining report', async () => {
    await expect.poll(() => page.locator('#write-card').innerText(), { timeout: 15_000 }).toMatch(/Model card/);
    const card = await page.locator('#write-card').innerText();
    expect(card).toMatch(/fedge-gpt version 1; sha256 [0-9a-f]{64}/);
    expect(card).toContain('4 layers');
    expect(card).toContain('vocabulary 4,096 tokens');
    expect(card).toContain('context 256 tokens');
    // From models/fedge-gpt/card.json and pretrain-report.json (via web/build.ts), where they say it: held-out
    // perplexity and top-1 accuracy of the served file and of the float32 model, and what it was trained on.
    const read = (file: string): Facts =>
      existsSync(join(models, file)) ? (JSON.parse(readFileSync(join(models, file), 'utf8')) as Facts) : {};
    const [bundled, report] = [read('card.json'), read('pretrain-report.json')];
    if (bundled.int8?.heldOut?.perplexity !== undefined)
      expect(card).toMatch(
        /Held out, this file \(int8\): perplexity \d+\.\d, next-token top-1 accuracy \d+\.\d\d % on [\d,]+ held-out tokens/,
      );
    if ((bundled.pretraining?.float32HeldOut ?? report.final)?.heldout_perplexity !== undefined)
      expect(card).toMatch(
        /Held out, float32 at the end of pretraining: perplexity \d+\.\d, next-token top-1 accuracy/,
      );
    if (report.corpus?.sources) expect(card).toMatch(/Trained on State of the Union addresses[^;]*; Moby-Dick — /);
    if (report.architecture?.parameters) expect(card).toMatch(/[\d.]+ M parameters/);
    expect(await page.locator('#write-model').inputValue()).toBe('fedge-gpt');
    expect(await page.locator('#write-prompt').inputValue()).toBe('The Congress of the United States');
    // "Try a model" sends a language model here rather than offering it inputs to classify.
    const tryModel = (model: string) =>
      page.evaluate(
        (m) =>
          (
            globalThis as unknown as { fedgeApp: { tryPanel: { refresh(s: { model: string }): Promise<void> } } }
          ).fedgeApp.tryPanel.refresh({ model: m }),
        model,
      );
    await tryModel('fedge-gpt');
    expect(await page.locator('#try-writes').isVisible()).toBe(true);
    for (const id of ['#try-digit', '#try-text', '#try-generic']) expect(await page.locator(id).isHidden()).toBe(true);
    await tryModel('mnist-mlp');
    expect(await page.locator('#try-writes').isHidden()).toBe(true);
    expect(problems).toEqual([]);
  });

  it('greedy: the edge and this device write the same text, piece by piece, each with tokens/s and time to first token', async () => {
    const before = await generate({ maxTokens: 16 });
    expect(await page.locator('#write-stop').isVisible()).toBe(true);
    await expect.poll(finished, { timeout: 90_000 }).toBeGreaterThan(before);
    const [edge, device] = [await side('edge'), await side('device')];
    console.log(`edge: ${edge.stats}\ndevice (${device.ranOn}): ${device.stats}\ntext: ${JSON.stringify(edge.text)}`);
    for (const s of [edge, device]) {
      expect(s.state).toBe('done');
      expect(s.text.length).toBeGreaterThan(0);
      expect(s.echo).toBe('The Congress of the United States');
      expect(s.tokensPerSecond).toBeGreaterThan(0);
      expect(s.stats).toMatch(
        /^16 tokens in \d+\.\d\d s · \d+\.\d tokens\/s · first token after \d+ ms · hit the length limit \(max tokens or the context\)$/,
      );
    }
    expect(device.text).toBe(edge.text);
    expect(device.ranOn).toMatch(/^(WebGPU|WASM) in this browser · model downloaded and loaded in \d+\.\d s$/);
    expect(edge.ranOn).toBe('Cloudflare Worker · streamed over SSE');
    expect(await page.locator('#write-match').getAttribute('data-match')).toBe('same');
    expect(await page.locator('#write-match').innerText()).toBe('✓ Same text on the edge and on this device');
    expect(await page.locator('#write-status').innerText()).toBe('Done: the same text from the edge and this device.');
    expect(await page.locator('#write-generate').isVisible()).toBe(true);
    expect(await page.locator('#write-stop').isHidden()).toBe(true);
    // Streamed: the text came in more than one piece on each side (one text node a piece).
    expect(edge.pieces).toBeGreaterThan(1);
    expect(device.pieces).toBeGreaterThan(1);
    // The same text the edge's one-shot /generate answers.
    const res = await fetch(`${server.url}/v2/models/fedge-gpt/generate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        text_input: 'The Congress of the United States',
        parameters: { max_tokens: 16, temperature: 0 },
      }),
    });
    expect(((await res.json()) as { text_output: string }).text_output).toBe(edge.text);
    await page.locator('#write').screenshot({ path: join(artifacts, 'write-panel-desktop.png') });
    expect(problems).toEqual([]);
  }, 120_000);

  it('Stop ends both generations mid-way: the button comes back and the texts stop growing', async () => {
    const before = await generate({ prompt: 'Call me Ishmael.', maxTokens: 250 });
    // Some text on the device (the slower side) first: stopped mid-way, not before it began.
    await expect.poll(async () => (await side('device')).text.length, { timeout: 60_000 }).toBeGreaterThan(0);
    await page.locator('#write').screenshot({ path: join(artifacts, 'write-panel-running.png') });
    await page.click('#write-stop');
    await expect.poll(finished, { timeout: 15_000 }).toBeGreaterThan(before);
    expect(await page.locator('#write-generate').isVisible()).toBe(true);
    expect(await page.locator('#write-stop').isHidden()).toBe(true);
    const at = [await side('edge'), await side('device')];
    await new Promise((r) => setTimeout(r, 1500));
    const later = [await side('edge'), await side('device')];
    expect(later.map((s) => s.text)).toEqual(at.map((s) => s.text));
    console.log(`stopped: edge ${at[0]!.state} (${at[0]!.stats}), device ${at[1]!.state} (${at[1]!.stats})`);
    for (const s of at) expect(['stopped', 'done']).toContain(s.state);
    expect(at.map((s) => s.state)).toContain('stopped');
    expect(at[1]!.state).toBe('stopped');
    expect(at[1]!.stats).toMatch(/ · stopped$/);
    expect(await page.locator('#write-status').innerText()).toBe('Stopped.');
    // What both wrote agrees as far as both got.
    const [a, b] = at.map((s) => s.text) as [string, string];
    expect(a.startsWith(b) || b.startsWith(a)).toBe(true);
    // A new generation runs after a stop.
    const again = await generate({ prompt: 'The Congress of the United States', maxTokens: 8 });
    await expect.poll(finished, { timeout: 60_000 }).toBeGreaterThan(again);
    expect(await page.locator('#write-match').getAttribute('data-match')).toBe('same');
    expect(problems).toEqual([]);
  }, 120_000);

  it('a prompt the model cannot take: each side says why in words, no stack', async () => {
    const before = await generate({ prompt: 'The whale. '.repeat(300), maxTokens: 8 });
    await expect.poll(finished, { timeout: 60_000 }).toBeGreaterThan(before);
    const [edge, device] = [await side('edge'), await side('device')];
    console.log(`refused: edge "${edge.stats}"; device "${device.stats}"`);
    expect(edge.state).toBe('error');
    expect(edge.stats).toMatch(/^EdgeError: \S/);
    expect(device.state).toBe('error');
    expect(device.stats).toMatch(/^LocalModelError: \S/);
    for (const s of [edge, device]) expect(s.stats).not.toMatch(/\n\s*at |\.ts:\d+|\.js:\d+/);
    expect(await page.locator('#write-status').innerText()).toBe(
      'Could not write on the edge or this device (see below).',
    );
    expect(await page.locator('#write-match').isHidden()).toBe(true);
    // The edge's refusal is the one expected answer ≥ 400 (the console logs it too).
    const refused = `HTTP 400 POST ${server.url}/v2/models/fedge-gpt/versions/1/generate_stream`;
    expect(problems).toContain(refused);
    problems.splice(
      0,
      problems.length,
      ...problems.filter((p) => p !== refused && !/^console: Failed to load resource: .*400/.test(p)),
    );
    expect(problems).toEqual([]);
    // A bad number is said before anything is sent.
    await page.fill('#write-max-tokens', '0');
    await page.click('#write-generate');
    expect(await page.locator('#write-status').innerText()).toBe('Max tokens: a whole number from 1 to 256.');
  }, 90_000);

  it('from the keyboard alone; every control labelled; on a phone the outputs stack; axe-core clean', async () => {
    await page.fill('#write-prompt', 'The Congress of the United States');
    await page.fill('#write-max-tokens', '8');
    await page.locator('#write-prompt').focus();
    // Tab through max tokens, temperature and seed to Generate, then Enter.
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement?.id ?? ''));
    }
    expect(order).toEqual(['write-max-tokens', 'write-temperature', 'write-seed', 'write-generate']);
    let before = await finished();
    await page.keyboard.press('Enter');
    // Focus follows to Stop while running (Generate is hidden), and back when done.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('write-stop');
    await expect.poll(finished, { timeout: 60_000 }).toBeGreaterThan(before);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('write-generate');
    expect(await page.locator('#write-match').getAttribute('data-match')).toBe('same');
    // Ctrl+Enter in the prompt writes too. Sampling with a seed: both sides draw the same sample (the hint says so).
    await page.fill('#write-temperature', '0.9');
    await page.fill('#write-seed', '7');
    before = await finished();
    await page.locator('#write-prompt').focus();
    await page.keyboard.press('Control+Enter');
    await expect.poll(finished, { timeout: 60_000 }).toBeGreaterThan(before);
    expect(await page.locator('#write-match').getAttribute('data-match')).toBe('same');
    expect((await side('edge')).text).not.toBe('');
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('#write button, #write select, #write input, #write textarea')]
        .filter(
          (e) => !(e.textContent?.trim() || e.getAttribute('aria-label') || (e as HTMLInputElement).labels?.length),
        )
        .map((e) => e.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    await page.locator('#write').screenshot({ path: join(artifacts, 'write-panel-desktop-done.png') });
    await page.locator('#write').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(artifacts, 'write-panel-desktop-viewport.png') });

    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(overflow, { timeout: 5_000 }).toEqual([]);
    const boxes = await page.evaluate(() =>
      ['write-edge', 'write-device'].map((id) => {
        const r = document.getElementById(id)!.getBoundingClientRect();
        return { top: r.top, bottom: r.bottom, left: r.left };
      }),
    );
    expect(boxes[1]!.top).toBeGreaterThanOrEqual(boxes[0]!.bottom); // stacked, edge first
    expect(boxes[1]!.left).toBe(boxes[0]!.left);
    await page.locator('#write').screenshot({ path: join(artifacts, 'write-panel-phone.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.locator('#write').screenshot({ path: join(artifacts, 'write-panel-phone-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });

    await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    for (const viewport of [
      { width: 390, height: 844 },
      { width: 1280, height: 900 },
    ]) {
      await page.setViewportSize(viewport);
      const violations = await page.evaluate(async () => {
        const axe = (
          globalThis as unknown as {
            axe: { run(ctx: Document): Promise<{ violations: { id: string; impact: string; help: string }[] }> };
          }
        ).axe;
        return (await axe.run(document)).violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => `${v.impact} ${v.id}: ${v.help}`);
      });
      expect(violations, `at ${viewport.width}×${viewport.height}`).toEqual([]);
    }
    await page.fill('#write-temperature', '0');
    await page.fill('#write-seed', '');
    expect(problems).toEqual([]);
  }, 150_000);
});
