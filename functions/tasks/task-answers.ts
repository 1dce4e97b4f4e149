/**
 * What a FederatedTask answers its routes (functions/routes/tasks.ts): results, and refusals instead of throws
 * when a request cannot be served — the route turns a refusal into a JSON error with its status.
 */
import type { TaskStage } from '../../federated/aggregation/task-protocol.ts';

/** A refusal the route turns into a JSON error with this status. */
export interface Refusal {
  refused: { status: 400 | 401 | 403 | 404 | 409 | 422 | 425 | 429; error: string; retryAfterSeconds?: number };
}

export const refuse = (status: Refusal['refused']['status'], error: string, retryAfterSeconds?: number): Refusal => ({
  refused: { status, error, retryAfterSeconds },
});

export type ReceiveResult = { accepted: true; duplicate: boolean; stage: TaskStage; published?: string } | Refusal;

export type RelayKind = 'broadcast' | 'delivery' | 'unmask';

/** A relay, or where it is (the aggregator of the device's shard), or a refusal. */
export type RelayResult = { json: object } | { shard: string } | Refusal;

/** A failure that is not the protocol's: logged in full, and the round records only its message. */
export const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
