/**
 * ShardAggregator: the Durable Object that runs one shard of one sharded round — a complete SecAgg+ instance
 * (share-keys → masked-input → unmask, its own dropout recovery and deadlines) over the devices the task's
 * coordinator assigned to it, in parallel with the round's other shards (Bonawitz et al., SysML 2019, §4: an
 * Aggregator under the Master Aggregator). It is the FederatedTask's round code, holding a `shard` role: started by
 * `startShard`, it reports its unmasked sum (`shardReport`) instead of publishing, and deletes its storage a while
 * after its round. A separate class and binding, so that one round's memory and CPU are spread over objects each
 * holding at most shardSize devices.
 */
import { FederatedTask } from './federated-task.ts';

export class ShardAggregator extends FederatedTask {}
