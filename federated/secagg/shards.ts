/**
 * Sharded SecAgg+ (Bonawitz et al., "Towards Federated Learning at Scale", SysML 2019, §4: Aggregators under a
 * Master Aggregator). A round too large for one aggregator (one Durable Object) is split into shards of at most
 * `shardSize` devices; each shard is a complete SecAgg+ instance with its own k, t and dropout recovery, and the
 * coordinator adds the shards' unmasked sums (mod 2^32). The coordinator therefore learns each shard's sum, not
 * only the round's: a shard is the unit of privacy (its sum hides one device among that shard's survivors).
 * A device's shard is a public function of the round's seed and its id, so every device — and anyone auditing —
 * can check where it was put; the seed must be fixed only after devices have checked in (or come from public
 * randomness), so that neither the server nor colluding devices can steer chosen ids into one shard.
 * Pure: no I/O; hashing through Web Crypto (primitives.ts).
 */
import { concat, dataView, utf8 } from '../bytes.ts';
import { type SecAggParameters, secAggParameters } from './parameters.ts';
import { sha256 } from './primitives.ts';

export interface ShardPlan {
  /** Number of shards. */
  count: number;
  /** Most devices one shard takes (the shard size); a full shard turns further devices away. */
  capacity: number;
}

/**
 * Fraction of a shard's capacity the expected load fills. Devices land in shards by hash, so a shard's load is
 * Binomial(devicesPerRound, 1/count): with expected load L = devicesPerRound / count its std is ≈ √L. Aiming at
 * L ≤ 0.8·capacity leaves 0.2·capacity of headroom, ≈ 2.2 std at capacity 100 (L = 80, √L ≈ 8.9) and more for
 * larger shards (the headroom grows like capacity, the spread like √capacity); smaller shards overfill more often
 * (capacity 20: L = 16, 1 std). E.g. 1,000 devices, shard size 100: 13 shards of expected load 76.9 (std ≈ 8.4);
 * P(a given shard overfills) ≈ 0.35 %, so P(some shard does) ≈ 4.4 % per round, by 3.3 devices on average when it
 * does — 0.15 devices per round expected, who check in next round. Overflow is rare, not impossible: no fill
 * target below 1 rules it out for hash-assigned devices.
 */
const TARGET_FILL = 0.8;

const positiveInteger = (name: string, v: number) => {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
};

/** How many shards a round of `devicesPerRound` needs so that shards of `shardSize` rarely overfill. */
export function shardPlan(devicesPerRound: number, shardSize: number): ShardPlan {
  positiveInteger('devicesPerRound', devicesPerRound);
  positiveInteger('shardSize', shardSize);
  return { count: Math.ceil(devicesPerRound / (TARGET_FILL * shardSize)), capacity: shardSize };
}

/** Shortest seed accepted: the seed's job is to be unguessable before check-in (the round uses 32 bytes). */
const MIN_SEED_BYTES = 16;

/**
 * The shard of `device`: SHA-256(seed ‖ UTF-8(device)), first 8 bytes as a big-endian unsigned integer, mod count.
 * No framing is needed: within a round the seed is one fixed string, so distinct ids give distinct inputs. Modulo
 * bias: 2^64 is not a multiple of count, so some shards get one more of the 2^64 values than others — each
 * shard's probability is off 1/count by less than 2^-64 (< 10^-13 relative for a million shards), negligible next
 * to the binomial spread of the loads.
 */
export async function shardOf(seed: Uint8Array, device: string, count: number): Promise<number> {
  positiveInteger('count', count);
  if (!(seed instanceof Uint8Array) || seed.byteLength < MIN_SEED_BYTES)
    throw new RangeError(`seed must be at least ${MIN_SEED_BYTES} bytes`);
  if (typeof device !== 'string' || device.length === 0) throw new RangeError('device id must be a non-empty string');
  const digest = await sha256(concat(seed, utf8(device)));
  return Number(dataView(digest).getBigUint64(0, false) % BigInt(count));
}

export interface ShardAssignment {
  /** Devices of each shard, in input order; shards[i].length ≤ plan.capacity. */
  shards: string[][];
  /** Devices whose shard was already full: they sit this round out and check in next round. */
  overflow: string[];
}

/**
 * Puts each device in its shard (shardOf), in input order — check-in order, so the earliest devices of a shard get
 * its places; once a shard holds `capacity` devices, further ones for it go to overflow. Throws RangeError on a
 * repeated device id (a device takes one place in one round) or a malformed plan.
 */
export async function assignShards(
  devices: readonly string[],
  seed: Uint8Array,
  plan: ShardPlan,
): Promise<ShardAssignment> {
  positiveInteger('plan.count', plan.count);
  positiveInteger('plan.capacity', plan.capacity);
  if (new Set(devices).size !== devices.length) throw new RangeError('device ids must be distinct');
  const where = await Promise.all(devices.map((d) => shardOf(seed, d, plan.count)));
  const shards: string[][] = Array.from({ length: plan.count }, () => []);
  const overflow: string[] = [];
  devices.forEach((d, i) => {
    const shard = shards[where[i]!]!;
    if (shard.length < plan.capacity) shard.push(d);
    else overflow.push(d);
  });
  return { shards, overflow };
}

/**
 * SecAgg+ parameters for the shards of a round of `devicesPerRound` in shards of at most `shardSize`: sized for a
 * shard's expected load (⌈n / count⌉, not its capacity, which would ask for a threshold most shards cannot reach
 * at the expected dropout), with k even unless every shard is a complete graph — a Harary graph needs an even k for
 * every roster between k + 2 and shardSize devices (the task-settings rule). Rounds that are not sharded get
 * secAggParameters for devicesPerRound.
 */
export function shardSecAggParameters(o: {
  devicesPerRound: number;
  shardSize?: number | undefined;
  dropoutRate: number;
}): SecAggParameters {
  if (o.shardSize === undefined || o.devicesPerRound <= o.shardSize)
    return secAggParameters({ devices: o.devicesPerRound, dropoutRate: o.dropoutRate });
  const load = Math.ceil(o.devicesPerRound / shardPlan(o.devicesPerRound, o.shardSize).count);
  const p = secAggParameters({ devices: Math.max(2, load), dropoutRate: o.dropoutRate });
  if (p.neighbours % 2 === 0 || p.neighbours >= o.shardSize - 1) return p;
  const k = p.neighbours - 1;
  return { ...p, neighbours: k, threshold: Math.floor(k / 2) + 1 };
}
