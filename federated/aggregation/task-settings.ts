/**
 * Whether a federated task's settings can run, checked once when the task is created, with the same functions the
 * rounds use later (fixedPointFor, ddgaussFor, neighbourGraph's rule for k, the devices' round policy) — so a
 * setting that would break a round (a 500 on every GET …/round, a stage that never closes, an alarm loop) or void
 * the privacy guarantee is refused before anything is stored, never discovered in round one.
 *  - 400: the settings cannot work (fixed point overflows, k odd below n − 1, a stage shorter than a second, …);
 *  - 422: they would work but leave a device's input unprotected (round-policy.ts, ddgaussProblem): every device
 *    would refuse such a round anyway.
 * Pure: no I/O.
 */
import { ddgaussProblem } from '../dp/distributed-dp.ts';
import { fixedPointFor } from '../secagg/fixed-point.ts';
import { roundParametersProblem } from '../secagg/round-policy.ts';
import { type TaskSettings, ddgaussFor, updateLength } from './task-protocol.ts';

export class TaskSettingsError extends Error {
  override name = 'TaskSettingsError';
  readonly status: 400 | 422;
  constructor(status: 400 | 422, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Devices per SecAgg+ instance when a task does not say (`shardSize`): one aggregator object's budget. At
 * d = 203,530 (mnist-mlp) one instance of 100 devices held at most 46 MiB live in its isolate (JS heap + ArrayBuffers,
 * routes included; `npm run simulate -- --devices 100 --per-round 100 --shard-size 100`) against Cloudflare's 128 MB,
 * and its server unmask at 30 % dropout (complete graph) takes ~1–3 s of one core at d = 10⁵ (`npm run
 * bench:secagg:sharded`). Memory grows with d and with n·k (keys and shares), unmask CPU with dropped·k·d.
 */
export const DEFAULT_SHARD_SIZE = 100;

/** Shortest stage: each stage is at least one alarm, and the alarm loop must not spin (1e-9 s did). */
export const MIN_STAGE_SECONDS = 1;
/** Check-in that waits this long for enough devices expires and pauses the task, unless the task says otherwise. */
export const DEFAULT_IDLE_SECONDS = 3600;
/** Longest a task may let check-in wait for devices (30 days). */
export const MAX_IDLE_SECONDS = 30 * 24 * 3600;
/** Largest stored settings (JSON): one SQLite row, and a spec is a few KB. */
export const MAX_SETTINGS_BYTES = 256 * 1024;
/** Deepest nesting of a JSON value in the settings (a spec is ~4 deep). */
export const MAX_JSON_DEPTH = 32;
/** Largest distributed-DP clip and noise multiplier: beyond these the lattice arithmetic stops being meaningful. */
export const MAX_DP_CLIP = 1e6;
export const MAX_DP_NOISE = 1e3;
/** Most words in one masked input (4 bytes each): what one task's message cap is sized from. */
export const MAX_UPDATE_WORDS = 16 * 1024 * 1024;

/** Nesting depth of a JSON value, iteratively (a recursive walk is what overflowed the stack at 20,000 deep). */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** Throws TaskSettingsError when `s` cannot run or would void the privacy guarantee. */
export function validateTaskSettings(s: TaskSettings): void {
  const bad = (message: string): never => {
    throw new TaskSettingsError(400, message);
  };
  const unsafe = (message: string): never => {
    throw new TaskSettingsError(422, message);
  };
  if (jsonDepth(s, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) bad(`settings are nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (JSON.stringify(s).length > MAX_SETTINGS_BYTES)
    bad(`settings (with the spec) are larger than ${MAX_SETTINGS_BYTES} bytes`);
  if (!(s.stageSeconds >= MIN_STAGE_SECONDS && s.stageSeconds <= 3600))
    bad(`stageSeconds must be from ${MIN_STAGE_SECONDS} to 3600, got ${s.stageSeconds}`);
  if (s.idleSeconds !== undefined && !(s.idleSeconds >= s.stageSeconds && s.idleSeconds <= MAX_IDLE_SECONDS))
    bad(`idleSeconds must be from stageSeconds (${s.stageSeconds}) to ${MAX_IDLE_SECONDS}, got ${s.idleSeconds}`);
  if (s.gate?.promote !== undefined && (s.gate.promote === s.alias || s.gate.promote.startsWith('task.')))
    bad(
      `gate.promote must be another alias than the task's own and not a task's base pin (task.*), got ${s.gate.promote}`,
    );
  if (s.cohort !== undefined) {
    if (!(s.cohort.sampleRate > 0 && s.cohort.sampleRate < 1))
      bad(`cohort.sampleRate must be above 0 and below 1, got ${s.cohort.sampleRate}`);
    if (s.shardSize !== undefined && s.devicesPerRound > s.shardSize)
      bad('cohort sampling is not available for sharded rounds (devicesPerRound above shardSize) yet');
  }
  const issuer = s.enrollment?.issuerKey;
  if (issuer !== undefined && !/^[A-Za-z0-9+/]{43}=$/.test(issuer))
    bad('enrollment.issuerKey must be an Ed25519 public key: 32 bytes, base64');
  if (s.shardSize !== undefined && !(Number.isInteger(s.shardSize) && s.shardSize >= 3))
    bad(`shardSize must be an integer of at least 3, got ${s.shardSize}`);
  // One SecAgg+ instance holds at most shardSize devices: the graph, threshold and minimum apply per shard.
  const n = Math.min(s.devicesPerRound, s.shardSize ?? Infinity);
  const { neighbours: k, threshold: t } = s.secagg;
  if (!Number.isInteger(k) || k < 1 || k > 254)
    bad(`secagg: neighbours must be an integer from 1 to 254 (Shamir over GF(2^8)), got ${k}`);
  if (!Number.isInteger(t) || t > k) bad(`secagg: threshold ${t} is larger than neighbours ${k}`);
  // The graph is a Harary graph: k must be even unless everyone is everyone's neighbour, for every roster size up
  // to devicesPerRound (neighbourGraph throws otherwise, at the close of advertise-keys).
  if (k % 2 !== 0 && k < n - 1)
    bad(
      `secagg: neighbours ${k} must be even when it is below ${n < s.devicesPerRound ? 'shardSize' : 'devicesPerRound'} − 1 (${n - 1})`,
    );
  if (s.minDevices > n)
    bad(`minDevices ${s.minDevices} is larger than ${n < s.devicesPerRound ? 'shardSize' : 'devicesPerRound'} ${n}`);
  // advertise-keys waits for max(minDevices, t + 1) devices and takes at most devicesPerRound: both must fit.
  if (t + 1 > n)
    bad(
      `secagg: threshold ${t} needs ${t + 1} devices per round, ${n < s.devicesPerRound ? 'shardSize' : 'devicesPerRound'} is ${n}`,
    );
  try {
    fixedPointFor({ maxDevices: s.devicesPerRound, clip: s.update.clip, maxExamples: s.update.maxExamples });
  } catch (e) {
    if (e instanceof RangeError) bad(`update: ${e.message}`);
    throw e;
  }
  if (!(s.update.maxExamples <= 1e9)) bad(`update: maxExamples must be at most 1e9, got ${s.update.maxExamples}`);
  const dp = s.distributedDp;
  if (
    dp &&
    !(
      dp.clip > 0 &&
      dp.clip <= MAX_DP_CLIP &&
      dp.noiseMultiplier > 0 &&
      dp.noiseMultiplier <= MAX_DP_NOISE &&
      dp.delta > 0 &&
      dp.delta < 1
    )
  ) {
    bad(
      `distributedDp: clip must be in (0, ${MAX_DP_CLIP}], noiseMultiplier in (0, ${MAX_DP_NOISE}] and delta in (0, 1)`,
    );
  }
  let words: number;
  try {
    words = updateLength(s);
  } catch (e) {
    if (e instanceof RangeError) bad(`distributedDp: ${e.message}`);
    throw e;
  }
  if (words! > MAX_UPDATE_WORDS) bad(`the update has ${words!} words; at most ${MAX_UPDATE_WORDS} fit one message`);
  const policy = roundParametersProblem({ neighbours: k, threshold: t, minContributors: s.minDevices });
  if (policy) unsafe(`secagg: ${policy}`);
  const dd = ddgaussFor(s);
  if (dd) {
    const problem = ddgaussProblem(dd, s.minDevices);
    if (problem) unsafe(`distributedDp: ${problem}`);
  }
}
