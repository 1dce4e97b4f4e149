/**
 * The privacy ledger in a real browser (Chromium): IndexedDB keeps what was spent across reloads, refuses runs over
 * budget without writing, serialises charges from two tabs, and treats a corrupt store as an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium } from '../../dev/harness/chromium.ts';
import { servePage } from '../../dev/harness/page-server.ts';

type Charge = { ok: true; spent: number; remaining: number } | { ok: false; name: string; message: string };
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Awaited<ReturnType<typeof servePage>>;

beforeAll(async () => {
  page = await servePage(new URL('./pages/ledger-page.ts', import.meta.url).pathname);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await page?.close();
});

async function open(): Promise<Page> {
  const p = await browser.context.newPage();
  await p.goto(page.url);
  await p.waitForFunction(() => document.title === 'ready');
  return p;
}
const charge = (p: Page, epsilon: number, source: string) =>
  p.evaluate(([e, s]) => (globalThis as any).ledger.charge(e, s), [epsilon, source] as const) as Promise<Charge>;
const spent = (p: Page, source: string) =>
  p.evaluate((s) => (globalThis as any).ledger.spent(s), source) as Promise<number>;

describe('IndexedDbLedgerStore in Chromium', () => {
  it('keeps what was spent across a reload; budgets are per source', async () => {
    const tab = await open();
    const first = await charge(tab, 10, 'camera');
    expect(first.ok).toBe(true);
    await tab.reload();
    await tab.waitForFunction(() => document.title === 'ready');
    const second = await charge(tab, 10, 'camera');
    expect(second.ok && first.ok && second.spent > first.spent && second.spent < 2 * first.spent).toBe(true); // RDP adds up, ε does not
    expect(await spent(tab, 'camera')).toBeCloseTo((second as { spent: number }).spent, 9);
    expect(await spent(tab, 'drawings')).toBe(0);
    await tab.close();
  });

  it('refuses a run over budget, says what is left, and stores nothing', async () => {
    const tab = await open();
    const before = await spent(tab, 'camera');
    const refused = await charge(tab, before + 0.01, 'camera');
    expect(refused).toMatchObject({ ok: false, name: 'PrivacyBudgetError' });
    expect((refused as { message: string }).message).toMatch(/'camera' would be exceeded: .*; 0\.01\d is left/);
    expect(await spent(tab, 'camera')).toBe(before);
    await tab.close();
  });

  it('serialises charges from two tabs: the budget holds exactly', async () => {
    const [a, b] = [await open(), await open()];
    const one = await charge(a, 100, 'probe'); // what one run costs on a fresh source
    const budget = 1.8 * (one as { spent: number }).spent; // room for some runs, not for six
    let fits = 0; // how many runs fit, charged one after another
    for (let i = 0; i < 6; i++) if ((await charge(a, budget, 'sequential')).ok) fits++;
    expect(fits).toBeGreaterThan(1);
    expect(fits).toBeLessThan(6);
    const results = await Promise.all([a, b, a, b, a, b].map((t) => charge(t, budget, 'shared')));
    expect(results.filter((r) => r.ok).length).toBe(fits); // concurrent tabs: the same number, none lost or doubled
    results.filter((r) => !r.ok).forEach((r) => expect(r).toMatchObject({ name: 'PrivacyBudgetError' }));
    expect(await spent(a, 'shared')).toBeLessThanOrEqual(budget);
    // Each accepted run was counted once: the stored total is the accepted runs' total.
    const accepted2 = results.filter((r): r is Extract<Charge, { ok: true }> => r.ok).map((r) => r.spent);
    expect(await spent(b, 'shared')).toBeCloseTo(Math.max(...accepted2), 9);
    await Promise.all([a.close(), b.close()]);
  });

  it('a corrupt store is an error, not a fresh budget', async () => {
    const tab = await open();
    await tab.evaluate(() => (globalThis as any).ledger.corrupt());
    expect(await charge(tab, 10, 'camera')).toMatchObject({
      ok: false,
      name: 'LedgerStoreError',
      message: expect.stringMatching(/not a version-1 ledger/),
    });
    await tab.close();
  });
});
