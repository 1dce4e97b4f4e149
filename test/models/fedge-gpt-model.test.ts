/**
 * The committed default language model (models/fedge-gpt/model.int8.onnx) is the pretrained PyTorch model: with its
 * key/value cache, prefill and each cached greedy step pick the same next token as PyTorch's float model did
 * (test/fixtures/lm/reference-logits.json, written by pretrain.py), within int8's error on the logits — the float
 * export matched within 1e-4 when models/fedge-gpt/export.ts made the file (it refuses otherwise). Its card is this
 * file's, and its tokenizer is the committed one.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDecoderSpec } from '../../federated/model/decoder-spec.ts';
import { readMetadataProps } from '../../federated/model/onnx-metadata.ts';
import { FP32_COMPUTE, type ReferenceLogits, checkOnnx } from '../../models/fedge-gpt/reference-check.ts';

const bytes = new Uint8Array(readFileSync('models/fedge-gpt/model.int8.onnx'));
const props = readMetadataProps(bytes);
const card = JSON.parse(readFileSync('models/fedge-gpt/card.json', 'utf8'));

describe('models/fedge-gpt/model.int8.onnx', () => {
  it("gives PyTorch's next tokens, prefill and cached steps, within int8's error", async () => {
    const reference = JSON.parse(readFileSync('test/fixtures/lm/reference-logits.json', 'utf8')) as ReferenceLogits;
    const r = await checkOnnx(parseDecoderSpec(JSON.parse(props['fedge.spec']!)), bytes, reference, FP32_COMPUTE);
    expect(r.rows).toBeGreaterThanOrEqual(8);
    expect(r.argmaxAgreement).toBe(1);
    expect(r.maxAbsDiff).toBeLessThan(0.15);
  });

  it('carries the committed tokenizer and generation config; the card describes these bytes', () => {
    expect(props['tokenizer.json']).toBe(readFileSync('models/fedge-gpt/tokenizer.json', 'utf8'));
    expect(JSON.parse(props['generation_config.json']!)).toEqual(
      JSON.parse(readFileSync('models/fedge-gpt/generation_config.json', 'utf8')),
    );
    expect(card.int8.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(bytes.byteLength).toBeLessThanOrEqual(5_000_000);
    expect(card.int8.heldOut.tokens).toBeGreaterThan(300_000);
  });
});
