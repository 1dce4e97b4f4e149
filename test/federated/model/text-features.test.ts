/** The hashed bag-of-words featurizer that devices, callers and the trainer share (federated/model/text-features.ts). */
import { describe, expect, it } from 'vitest';
import { type HashedBagOfWords, fnv1a, hashText, hashTexts, tokenize } from '../../../federated/model/text-features.ts';

const F: HashedBagOfWords = { kind: 'hashedBagOfWords', buckets: 64, ngrams: 2, maxChars: 1000 };
const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe('text features', () => {
  it('FNV-1a matches the published 32-bit test vectors', () => {
    // Fowler/Noll/Vo reference test suite (FNV-1a, 32 bit): "", "a", "foobar".
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });

  it('tokenizes case-insensitively, keeps $ and !, drops punctuation, reads at most maxChars', () => {
    expect(tokenize('FREE $$$ money!!! (click) here.', 100)).toEqual(['free', '$$$', 'money!!!', 'click', 'here']);
    expect(tokenize('Grüße aus Köln 2024', 100)).toEqual(['grüße', 'aus', 'köln', '2024']);
    expect(tokenize('abcdef ghij', 4)).toEqual(['abcd']);
  });

  it('gives unit-length, deterministic vectors; empty text is all zeros', () => {
    const a = hashText('Win a FREE cruise now', F);
    expect(norm(a)).toBeCloseTo(1, 6);
    expect(hashText('win a free cruise NOW', F)).toEqual(a);
    expect(Array.from(hashText('', F))).toEqual(new Array(64).fill(0));
    expect(Array.from(hashText('?!.,', { ...F, ngrams: 1 })).some((v) => v !== 0)).toBe(true); // "!" is a token
  });

  it('word order matters only through bigrams', () => {
    const uni = { ...F, ngrams: 1 as const, buckets: 4096 };
    expect(hashText('dog bites man', uni)).toEqual(hashText('man bites dog', uni));
    const bi = { ...F, buckets: 4096 };
    expect(hashText('dog bites man', bi)).not.toEqual(hashText('man bites dog', bi));
  });

  it('repeated words grow sublinearly (log 1 + count) before normalisation', () => {
    const f = { ...F, ngrams: 1 as const, buckets: 4096 };
    const once = hashText('alpha beta', f),
      many = hashText('alpha alpha alpha beta', f);
    const [ia, ib] = [fnv1a('alpha') % 4096, fnv1a('beta') % 4096];
    expect(Math.abs(many[ia]! / many[ib]!)).toBeCloseTo(Math.log1p(3) / Math.log1p(1), 5);
    expect(Math.abs(once[ia]! / once[ib]!)).toBeCloseTo(1, 6);
  });

  it('hashTexts stacks rows in order', () => {
    const rows = hashTexts(['one', 'two'], F);
    expect(rows.length).toBe(128);
    expect(rows.subarray(64)).toEqual(hashText('two', F));
  });
});
