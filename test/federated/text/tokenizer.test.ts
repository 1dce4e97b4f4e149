/**
 * The tokenizer module: the default model's tokenizer.json (a SentencePiece unigram model converted to Hugging Face's
 * format) encodes 4,000 held-out sentences exactly as SentencePiece itself did (ids recorded by the pretraining
 * recipe) and decodes them back; BPE and WordPiece files load too; what is not a tokenizer.json is a TokenizerError.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TokenizerError, loadTokenizer } from '../../../federated/text/tokenizer.ts';

const fixture = JSON.parse(readFileSync('test/fixtures/lm/tokenizer-parity.json', 'utf8')) as {
  tokenizer: string;
  sentences: { text: string; ids: number[] }[];
};

describe('tokenizer parity with SentencePiece', () => {
  const tokenizer = loadTokenizer(readFileSync(fixture.tokenizer, 'utf8'));
  it(`encodes ${fixture.sentences.length} held-out sentences to SentencePiece's ids and decodes them back`, () => {
    expect(fixture.sentences.length).toBeGreaterThanOrEqual(4000);
    const wrong = fixture.sentences.filter((s) => JSON.stringify(tokenizer.encode(s.text)) !== JSON.stringify(s.ids));
    expect(wrong.slice(0, 3)).toEqual([]);
    const unround = fixture.sentences.filter((s) => tokenizer.decode(s.ids) !== s.text);
    expect(unround.slice(0, 3)).toEqual([]);
  });
  it('knows its size and its special tokens', () => {
    expect(tokenizer.vocabSize).toBe(4096);
    expect(tokenizer.tokenId('</s>')).toBe(2);
    expect(tokenizer.decode([2], { keepSpecialTokens: true })).toBe('</s>');
    expect(tokenizer.decode([2])).toBe('');
  });
});

describe('other model types', () => {
  it('loads a byte-level BPE and a WordPiece tokenizer.json', () => {
    const bpe = loadTokenizer(
      JSON.stringify({
        model: {
          type: 'BPE',
          vocab: { h: 0, e: 1, l: 2, o: 3, he: 4, ll: 5, hell: 6, hello: 7, Ġ: 8 },
          merges: ['h e', 'l l', 'he ll', 'hell o'],
        },
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        added_tokens: [],
      }),
    );
    expect(bpe.encode('hello')).toEqual([7]);
    expect(bpe.decode([7])).toBe('hello');
    const wordPiece = loadTokenizer(
      JSON.stringify({
        model: {
          type: 'WordPiece',
          unk_token: '[UNK]',
          continuing_subword_prefix: '##',
          vocab: { '[UNK]': 0, un: 1, '##able': 2 },
        },
        normalizer: { type: 'BertNormalizer', lowercase: true, clean_text: true, handle_chinese_chars: true },
        pre_tokenizer: { type: 'BertPreTokenizer' },
        decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
        added_tokens: [],
      }),
    );
    expect(wordPiece.encode('Unable')).toEqual([1, 2]);
  });

  it('refuses what is not a tokenizer.json', () => {
    for (const bad of [
      '',
      'null',
      '[]',
      '{"model": 3}',
      '{"model": {"type": "WordLevel", "vocab": {}}}',
      '{"model": {"type": "BPE"}}',
    ])
      expect(() => loadTokenizer(bad), bad).toThrow(TokenizerError);
  });
});
