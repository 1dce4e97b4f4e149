import { describe, expect, it } from 'vitest';
import { ResolutionCache } from '../../../functions/registry/resolution-cache.ts';
import type { VersionRecord } from '../../../functions/registry/model-record.ts';

const record = (version: string): VersionRecord => ({
  model: 'm',
  version,
  sha256: version.repeat(64).slice(0, 64),
  bytes: 1,
  inputs: [],
  outputs: [],
  createdAt: '',
});

describe('ResolutionCache', () => {
  it('answers within the bound, forgets after it, and keeps model and model@ref apart', () => {
    let now = 1000;
    const cache = new ResolutionCache(500, () => now);
    cache.set('m', undefined, record('1'));
    cache.set('m', 'stable', record('2'));
    expect(cache.get('m', undefined)?.version).toBe('1');
    expect(cache.get('m', 'stable')?.version).toBe('2');
    expect(cache.get('m', 'other')).toBeUndefined();
    now += 499;
    expect(cache.get('m', undefined)?.version).toBe('1');
    now += 1;
    expect(cache.get('m', undefined)).toBeUndefined();
  });

  it('stores nothing when the bound is 0, and clear() forgets everything', () => {
    const off = new ResolutionCache(0);
    off.set('m', undefined, record('1'));
    expect(off.get('m', undefined)).toBeUndefined();
    const on = new ResolutionCache(60_000);
    on.set('m', undefined, record('1'));
    on.clear();
    expect(on.get('m', undefined)).toBeUndefined();
  });

  it('stays bounded in size, dropping the oldest entry first', () => {
    const cache = new ResolutionCache(60_000);
    for (let i = 0; i < 1025; i++) cache.set(`m${i}`, undefined, record(String(i)));
    expect(cache.get('m0', undefined)).toBeUndefined();
    expect(cache.get('m1', undefined)?.version).toBe('1');
    expect(cache.get('m1024', undefined)?.version).toBe('1024');
  });
});
