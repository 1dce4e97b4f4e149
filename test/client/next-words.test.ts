/**
 * The web app's next-word suggestions (web/src/next-words.ts): the likeliest word-starting tokens, each extended
 * greedily to a whole word, on a toy model whose logits are written out; and fedge-gpt's own tokenizer read into
 * pieces and special ids.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../federated/text/tokenizer.ts';
import { endsWord, nextWords, topIds, type Vocabulary, vocabularyOf } from '../../web/src/next-words.ts';

const pieces = ['<pad>', '</s>', '▁the', '▁wh', 'ale', 's', '▁sea', ',', '▁', 'Ahab', '▁ship', '<0x0A>', '<0xC3>'];
const toy: Vocabulary = {
  pieces,
  special: new Set([0, 1]),
  decode: (ids) => ids.map((i) => pieces[i]!.replaceAll('▁', ' ')).join(''),
};
const id = (p: string) => pieces.indexOf(p);

/** A toy model: after the context, what each last token is followed by (logit 5, 4, … for the listed ids in order, else -1). */
function model(follows: Record<string, string[]>, calls: number[][][] = []) {
  return async (rows: number[][]) => {
    calls.push(rows);
    return rows.map((r) => {
      const row = new Float32Array(pieces.length).fill(-1);
      (follows[pieces[r.at(-1)!]!] ?? []).forEach((p, rank) => (row[id(p)] = 5 - rank));
      return row;
    });
  };
}

describe('next-word suggestions', () => {
  it('extends the likeliest word starts greedily to whole words, best first', async () => {
    const calls: number[][][] = [];
    const next = model(
      {
        '▁the': ['</s>', '▁wh', 'ale', '▁sea', '▁', '▁ship', ','],
        '▁wh': ['ale', '▁sea'],
        ale: ['s', '▁the'],
        s: [','],
        '▁sea': ['▁the'],
        '▁': ['Ahab'],
        Ahab: ['<0x0A>'],
        '▁ship': ['</s>'],
      },
      calls,
    );
    // Special and non-initial tokens are skipped as starts; "▁wh" + "ale" + "s" stops at ","; "▁" + "Ahab" stops at
    // a newline byte.
    expect(await nextWords([id('▁the')], next, toy)).toEqual(['whales', 'sea', 'Ahab']);
    expect(await nextWords([id('▁the')], next, toy, { count: 4 })).toEqual(['whales', 'sea', 'Ahab', 'ship']);
    // One batch a step, of equal-length rows: the context plus each open word.
    expect(calls[1]!.map((r) => r.length)).toEqual([2, 2, 2, 2, 2]);
    expect(calls[2]!).toEqual([
      [id('▁the'), id('▁wh'), id('ale')],
      [id('▁the'), id('▁'), id('Ahab')],
    ]);
  });

  it('stops at maxTokens, reads only the last tokens of the context, and answers nothing for no text', async () => {
    const calls: number[][][] = [];
    const next = model({ '▁sea': ['▁wh'], '▁wh': ['ale'], ale: ['s'], s: ['ale'] }, calls);
    expect(await nextWords([id('▁the'), id('▁sea')], next, toy, { maxTokens: 2, context: 1, count: 1 })).toEqual([
      'whale',
    ]);
    expect(calls[0]).toEqual([[id('▁sea')]]);
    expect(await nextWords([], next, toy)).toEqual([]);
  });

  it('word ends: another word, punctuation, an ASCII byte; a non-ASCII byte continues the word', () => {
    expect(['▁x', ',', '<0x0A>', '.'].map(endsWord)).toEqual([true, true, true, true]);
    expect(['ale', '<0xC3>', 's'].map(endsWord)).toEqual([false, false, false]);
    expect(topIds(Float32Array.of(1, 3, 2, 3), 2, () => true)).toEqual([1, 3]);
    expect(topIds(Float32Array.of(1, 3, 2, 3), 3, (i) => i !== 1)).toEqual([3, 2, 0]);
  });

  it("reads fedge-gpt's tokenizer: pieces by id, the control tokens special", () => {
    const json = readFileSync('models/fedge-gpt/tokenizer.json', 'utf8');
    const tokenizer = loadTokenizer(json);
    const vocab = vocabularyOf(json, (ids) => tokenizer.decode(ids));
    expect(vocab.pieces.length).toBe(4096);
    expect([...vocab.special].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    const ids = tokenizer.encode('The whale');
    expect(vocab.pieces[ids[0]!]).toBe('▁The');
    expect(vocab.decode(ids)).toBe('The whale');
  });
});
