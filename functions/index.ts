/** Worker entry: the Hono app serves every request; the Durable Object classes are exported for their bindings. */
import app from './app.ts';

export { ModelCatalog } from './registry/model-catalog.ts';
export { FederatedTask } from './tasks/federated-task.ts';
export { ShardAggregator } from './tasks/shard-aggregator.ts';
export { TaskDirectory } from './tasks/task-directory.ts';

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
