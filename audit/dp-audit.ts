/**
 * npm run audit:dp — a one-run privacy audit of the Trainer's DP-SGD (Steinke, Nasr & Jagielski, NeurIPS 2023):
 * m canaries among the 8,000 MNIST training digits, each included with probability 1/2; one training run with
 * noise, one with the noise off and one with a quarter of the noise; the empirical ε lower bound (95 %) of each
 * beside the accountant's ε.
 * audit/canary-audit.ts holds the harness, federated/dp/one-run-audit.ts the bound. Writes audit/results/dp-audit.json.
 *
 *   npm run audit:dp -- [--canaries 1000] [--digits 8000] [--epsilon 2] [--epochs 10] [--seed 20230516]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { useNodeWasm } from '../client-sdk/training/node-backend.ts';
import { type AuditConfig, type AuditRun, type Progress, runDpAudit } from './canary-audit.ts';

const { values } = parseArgs({
  options: {
    canaries: { type: 'string', default: '1000' },
    digits: { type: 'string', default: '8000' },
    epsilon: { type: 'string', default: '2' },
    epochs: { type: 'string', default: '10' },
    seed: { type: 'string', default: '20230516' },
  },
});

const config: AuditConfig = {
  canaries: Number(values.canaries),
  digits: Number(values.digits),
  epochs: Number(values.epochs),
  batchSize: 256,
  learningRate: 0.1,
  l2NormClip: 1,
  epsilon: Number(values.epsilon),
  delta: 1e-5,
  seed: Number(values.seed),
};

for (const [name, v] of Object.entries(config))
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name} must be a positive number, got ${v}`);
if (!Number.isInteger(config.canaries) || config.canaries < 50)
  throw new Error(`--canaries must be an integer ≥ 50, got ${config.canaries}`);

useNodeWasm();
console.log(
  `one-run DP audit: ${config.canaries} canaries (each in with probability 1/2) among ${config.digits} MNIST digits, softmax regression, ` +
    `DP-SGD target ε ${config.epsilon} (δ ${config.delta}), ${config.epochs} epochs, batch ${config.batchSize}, clip ${config.l2NormClip}`,
);
// A live line on a terminal; one line per epoch otherwise (CI logs).
let lastLine = 0;
const progress = (p: Progress) => {
  const done = p.epoch === p.epochs && p.step === p.steps;
  const text = `  ${p.run.padEnd(10)} epoch ${String(p.epoch).padStart(2)}/${p.epochs}  step ${String(p.step).padStart(3)}/${p.steps}  loss ${p.loss.toFixed(3)}`;
  if (!process.stdout.isTTY) {
    if (p.step === p.steps) console.log(text);
    return;
  }
  if (performance.now() - lastLine < 200 && !done) return;
  lastLine = performance.now();
  process.stdout.write(`\r${text}   ${done ? '\n' : ''}`);
};
const report = await runDpAudit(config, progress);

const row = (name: string, r: AuditRun) => {
  const b = r.audit.best;
  return (
    `  ${name.padEnd(14)} σ ${r.noiseMultiplier.toPrecision(3).padEnd(7)} accountant ε ${r.accountantEpsilon.toPrecision(4).padEnd(10)} ` +
    `lower bound ${r.audit.epsilon.toFixed(3)} (k₊ = k₋ = ${String(b.kPlus).padEnd(3)}: ${b.correct}/${b.guesses} correct)  held-out accuracy ${(r.heldOutAccuracy * 100).toFixed(2)} %  ${r.seconds.toFixed(1)} s`
  );
};
console.log(
  `\n${report.included} of ${config.canaries} canaries included; lower bounds at 95 % (δ ${config.delta}), best of ${report.noiseOn.audit.rules.length} guess rules (Bonferroni)`,
);
console.log(row('noise on', report.noiseOn));
console.log(row('noise off', report.noiseOff));
console.log(row('quarter noise', report.quarterNoise));
const on = report.noiseOn.audit;
console.log(
  `accountant ε ${report.claimedEpsilon.toFixed(3)} — empirical lower bound ${on.epsilon.toFixed(3)} (95 %), ${on.best.correct} of ${on.best.guesses} guesses correct; ` +
    `noise off: lower bound ${report.noiseOff.audit.epsilon.toFixed(3)}`,
);

mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(
  join(import.meta.dirname, 'results/dp-audit.json'),
  `${JSON.stringify({ date: new Date().toISOString(), ...report }, null, 2)}\n`,
);
