/** The privacy ledger: RDP adds up per source, the budget holds, the file store is atomic and survives restarts. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileLedgerStore } from '../../../client-sdk/privacy/file-ledger-store.ts';
import { PrivacyBudgetError, PrivacyLedger } from '../../../client-sdk/privacy/ledger.ts';
import { DEFAULT_ORDERS, RdpAccountant, computeRdp } from '../../../federated/dp/rdp.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedge-ledger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = () => computeRdp(0.01, 1.1, 500, DEFAULT_ORDERS);

describe('PrivacyLedger on a file', () => {
  it('sums RDP across runs (ε of the total, not the sum of ε) and persists across instances', async () => {
    const path = join(dir, 'a.json');
    const ledger = new PrivacyLedger(new FileLedgerStore(path), { epsilon: 10, delta: 1e-5 });
    const one = await ledger.charge('camera', run());
    const two = await new PrivacyLedger(new FileLedgerStore(path), { epsilon: 10, delta: 1e-5 }).charge(
      'camera',
      run(),
    );
    const direct = new RdpAccountant().step({ noiseMultiplier: 1.1, sampleRate: 0.01, steps: 1000 }).getEpsilon(1e-5);
    expect(two.spent).toBeCloseTo(direct, 9);
    expect(two.spent).toBeLessThan(2 * one.spent);
    expect(JSON.parse(readFileSync(path, 'utf8')).sources.camera.runs).toBe(2);
  });

  it('refuses a run over budget and writes nothing; concurrent charges are serialised', async () => {
    const path = join(dir, 'b.json');
    const ledger = new PrivacyLedger(new FileLedgerStore(path), { epsilon: 1.5, delta: 1e-5 });
    const results = await Promise.allSettled([
      ledger.charge('s', run()),
      ledger.charge('s', run()),
      ledger.charge('s', run()),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(refused.length).toBeGreaterThanOrEqual(1);
    refused.forEach((r) => expect(r.reason).toBeInstanceOf(PrivacyBudgetError));
    const before = readFileSync(path, 'utf8');
    await expect(ledger.charge('s', run())).rejects.toThrow(/is left/);
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(await ledger.remaining('s')).toBeLessThan(1.5);
  });

  it('a corrupt ledger file is an error, not a fresh budget', async () => {
    const path = join(dir, 'c.json');
    writeFileSync(path, '{"version": 7}');
    const ledger = new PrivacyLedger(new FileLedgerStore(path), { epsilon: 1, delta: 1e-5 });
    await expect(ledger.spent('x')).rejects.toThrow(/not a version-1 ledger/);
    await expect(ledger.charge('x', run())).rejects.toThrow(/not a version-1 ledger/);
    expect(() => new PrivacyLedger(new FileLedgerStore(path), { epsilon: 0, delta: 1e-5 })).toThrow(RangeError);
  });

  it('a reservation counts against the budget until released (given back) or committed (spent), also across instances', async () => {
    const path = join(dir, 'r.json');
    const open = () => new PrivacyLedger(new FileLedgerStore(path), { epsilon: 1.5, delta: 1e-5 });
    const ledger = open();
    const held = await ledger.reserve('s', run());
    expect(held.spent).toBeGreaterThan(0);
    // Held: another run does not fit, and another instance (a restarted page) sees it held too.
    await expect(open().charge('s', run())).rejects.toBeInstanceOf(PrivacyBudgetError);
    expect(await open().spent('s')).toBeCloseTo(held.spent, 9);
    await held.release();
    await held.release();
    expect(await ledger.spent('s')).toBe(0);
    expect(JSON.parse(readFileSync(path, 'utf8')).sources.s).toMatchObject({ runs: 0 });
    const kept = await ledger.reserve('s', run());
    await kept.commit();
    await kept.release(); // after commit: nothing
    expect(await open().spent('s')).toBeCloseTo(kept.spent, 9);
    expect(JSON.parse(readFileSync(path, 'utf8')).sources.s).toMatchObject({ runs: 1 });
    expect(JSON.parse(readFileSync(path, 'utf8')).sources.s.pending).toBeUndefined();
  });
});
