/**
 * Choosing k (neighbours) and t (reconstruction threshold) for a round of n devices with an expected dropout
 * rate. t = ⌊k/2⌋ + 1 so that a server lying about who dropped cannot collect both kinds of shares of one device
 * (each honest neighbour reveals only one kind, and two disjoint sets of ≥ t among k cannot exist; Bell et al.
 * 2020, §4). k is the smallest even number for which the chance that some device keeps fewer than t surviving
 * neighbours — which aborts the round — is at most `failureProbability` (union bound over n devices, binomial
 * survival of each neighbour), and at least 2⌈log₂ n⌉ (Bell et al.'s k = O(log n): below that the graph of honest
 * survivors risks falling apart, and a device's privacy rests on very few neighbours).
 */
export interface SecAggParameters {
  neighbours: number;
  threshold: number;
  /** Bound on the probability that the round aborts for lack of shares. */
  abortProbability: number;
}

function binomialCdfBelow(t: number, k: number, p: number): number {
  // P(Bin(k, p) < t), in log space for stability
  let total = 0;
  const logP = Math.log(p),
    logQ = Math.log1p(-p);
  let logChoose = 0; // log C(k, 0)
  for (let i = 0; i < t; i++) {
    total += Math.exp(logChoose + i * logP + (k - i) * logQ);
    logChoose += Math.log(k - i) - Math.log(i + 1);
  }
  return total;
}

export function secAggParameters(opts: {
  devices: number;
  dropoutRate: number;
  failureProbability?: number;
}): SecAggParameters {
  const n = opts.devices;
  const drop = opts.dropoutRate;
  const target = opts.failureProbability ?? 1e-3;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`devices must be an integer ≥ 2, got ${n}`);
  if (!(drop >= 0 && drop < 1)) throw new RangeError(`dropoutRate must be in [0, 1), got ${drop}`);
  const floor = 2 * Math.ceil(Math.log2(n));
  for (let k = floor; k < n - 1 && k <= 254; k += 2) {
    const t = Math.floor(k / 2) + 1;
    const abort = Math.min(1, n * binomialCdfBelow(t, k, 1 - drop));
    if (abort <= target) return { neighbours: k, threshold: t, abortProbability: abort };
  }
  const k = Math.min(n - 1, 254);
  const t = Math.floor(k / 2) + 1;
  return { neighbours: k, threshold: t, abortProbability: Math.min(1, n * binomialCdfBelow(t, k, 1 - drop)) };
}
