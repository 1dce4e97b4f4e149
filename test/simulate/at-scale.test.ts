/**
 * The scale simulation end to end, small (issue 20, point 4): real Participants over worker threads, a sharded round
 * on the deployable bundle with the aggregators in an isolate of their own, each isolate's heap read through
 * workerd's inspector. The 1,000-device run is `npm run simulate -- --devices 1000 --per-round 1000 --shard-size 100`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAtScale } from '../../simulate/at-scale.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedge-at-scale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run simulate -- --shard-size', () => {
  it("runs a sharded round of 24 devices in shards of ≤ 8, publishes it, and measures the aggregators' isolate apart", async () => {
    const r = await runAtScale({
      devices: 24,
      perRound: 24,
      shardSize: 8,
      rounds: 1,
      dropout: 0,
      stageSeconds: 5,
      threads: 2,
      resultsDir: dir,
    });
    const round = r.rounds[0]!;
    expect(round.record.status, round.record.reason).toBe('published');
    expect(round.record.shards!.length).toBeGreaterThanOrEqual(3);
    expect(round.record.shards!.some((x) => x.status === 'published')).toBe(true);
    expect(round.accuracy).toBeGreaterThan(0.9);
    const names = round.isolates.map((i) => i.name).sort();
    expect(names).toEqual(['fedge', 'fedge-aggregators']);
    for (const i of round.isolates) expect(i.peakSampledMiB).toBeGreaterThan(0);
  }, 300_000);
});
