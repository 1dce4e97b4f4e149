/**
 * The SecAgg+ communication graph (Bell et al., CCS 2020, §3.1): a random k-regular graph over the round's
 * participants. Built as a Harary graph — a ring where each node links to the k/2 nearest on either side —
 * over a random permutation of the sorted ids. The permutation comes from the round's public graph seed
 * (AES-CTR keystream, prg.ts), fixed before anyone advertises keys, so every party computes the same graph
 * and the server cannot choose neighbourhoods after seeing who joined.
 */
import { expandMask } from './prg.ts';

export async function neighbourGraph(
  ids: readonly string[],
  seed: Uint8Array,
  k: number,
): Promise<Map<string, string[]>> {
  const sorted = [...new Set(ids)].sort();
  if (sorted.length !== ids.length) throw new Error('participant ids must be distinct');
  const n = sorted.length;
  const graph = new Map<string, string[]>();
  if (n === 0) return graph;
  if (k >= n - 1) {
    // Small rounds: everyone is everyone's neighbour (the original SecAgg of Bonawitz et al.).
    for (const id of sorted)
      graph.set(
        id,
        sorted.filter((o) => o !== id),
      );
    return graph;
  }
  if (k < 2 || k % 2 !== 0) throw new Error(`neighbour count k must be an even number ≥ 2, got ${k}`);
  // Fisher–Yates driven by 32-bit words; modulo bias ≤ n / 2^32 per step, immaterial for a public permutation.
  const words = await expandMask(seed, n);
  const order = [...sorted];
  for (let i = n - 1; i > 0; i--) {
    const j = words[i]! % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  order.forEach((id, p) => {
    const list: string[] = [];
    for (let d = 1; d <= k / 2; d++) list.push(order[(p + d) % n]!, order[(p - d + n) % n]!);
    graph.set(id, list.sort());
  });
  return graph;
}
