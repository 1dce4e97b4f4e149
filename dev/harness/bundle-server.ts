/**
 * Serves the deployable Worker bundle straight on workerd (dev/worker-server.ts), without static assets: the
 * Worker alone, as the benchmarks measure it and the scale simulation (and its test) run it; started as a process
 * by local-server.ts's startBundleServer.
 *   node dev/harness/bundle-server.ts <port> <state-dir> [NAME=value …]
 * FEDGE_BENCH_INSPECTOR=1: with the V8 inspector on (the isolate's heap and CPU profile); FEDGE_BUNDLE_AGGREGATOR_ISOLATE=1:
 * the ShardAggregator objects in an isolate of their own (the scale simulation reads their memory apart).
 * Prints "ready <url>" once listening; stops on SIGTERM/SIGINT.
 */
import { serveWorker } from '../worker-server.ts';

const [port, state, ...assignments] = process.argv.slice(2);
if (!port || !state) throw new Error('usage: node dev/harness/bundle-server.ts <port> <state-dir> [NAME=value …]');
const vars = Object.fromEntries(assignments.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));

const server = await serveWorker({
  port: Number(port),
  persistTo: state,
  vars,
  inspector: process.env.FEDGE_BENCH_INSPECTOR === '1',
  aggregatorsApart: process.env.FEDGE_BUNDLE_AGGREGATOR_ISOLATE === '1',
});
console.log(`ready ${server.url}`);

const stop = async () => {
  await server.dispose();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
