/** Share of rows whose most probable class is the label: `probabilities` is n × k row-major, `labels` has n entries. */
export function accuracy(probabilities: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length,
    k = probabilities.length / n;
  if (!Number.isInteger(k) || k < 1)
    throw new RangeError(`${probabilities.length} probabilities do not split into ${n} rows`);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probabilities[i * k + c]! > probabilities[i * k + best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct / n;
}
