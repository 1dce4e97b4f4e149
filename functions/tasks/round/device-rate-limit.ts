/**
 * Per-device token buckets for one task (kept by its FederatedTask in memory). One IP can front many devices
 * (carrier NAT, an office, the simulator), so device traffic is limited per device here rather than per IP at the
 * edge. A device runs four stages per round and waits on each relay with a long poll, so an honest device needs a
 * handful of requests per round; the bucket allows bursts of `capacity` and `refillPerSecond` after that.
 * Buckets are in memory: a restart of the object forgives everyone, which errs on the side of availability.
 */
export interface BucketOptions {
  capacity: number;
  refillPerSecond: number;
}

/** A device's SecAgg+ messages: four a round, with retries — 12 at once, then one every 2 s. */
export const MESSAGE_LIMIT: BucketOptions = { capacity: 12, refillPerSecond: 0.5 };
/** A device's relay requests (long polls): 30 at once, then 2 a second. */
export const RELAY_LIMIT: BucketOptions = { capacity: 30, refillPerSecond: 2 };

export class DeviceRateLimit {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #o: BucketOptions;

  constructor(o: BucketOptions) {
    this.#o = o;
  }

  /** Takes one token for `key`; when none is left, the seconds until one is. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const b = this.#buckets.get(key) ?? { tokens: this.#o.capacity, at: now };
    b.tokens = Math.min(this.#o.capacity, b.tokens + ((now - b.at) / 1000) * this.#o.refillPerSecond);
    b.at = now;
    this.#buckets.set(key, b);
    if (this.#buckets.size > 100_000) this.#buckets.delete(this.#buckets.keys().next().value!); // bound memory
    if (b.tokens < 1) return { ok: false, retryAfterSeconds: Math.ceil((1 - b.tokens) / this.#o.refillPerSecond) };
    b.tokens -= 1;
    return { ok: true };
  }
}
