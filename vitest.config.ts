/**
 * Two kinds of project: `workers` (and `workers-isolated`) run inside workerd through Cloudflare's Vitest integration
 * (routes, registry, Durable Objects, with real local R2 and SQLite); `node` runs the pure core, the round engine,
 * the model toolchain and the end-to-end tests that start the real local server.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

/** The Worker as wrangler.toml declares it, with the test limits (and `vars` over them): real workerd, Durable Objects, SQLite and R2. */
const workerd = (vars: Record<string, string> = {}, o: { sharedIsolate?: boolean } = {}) =>
  cloudflareTest({
    wrangler: { configPath: './wrangler.toml' },
    miniflare: {
      // Every file of the shared isolate counts against one admin and one address of the edge's per-client limit
      // (1,200 a minute), which their sum outruns: there the limit is raised. The files that test the limit itself
      // run in an isolate of their own with wrangler.toml's (RATE_LIMITED).
      ...(o.sharedIsolate && {
        ratelimits: { RATE_LIMITER: { namespace_id: '1001', simple: { limit: 1_000_000, period: 60 as const } } },
      }),
      bindings: {
        FEDGE_ADMIN_TOKEN: 'test-admin-token',
        FEDGE_MAX_INFER_BYTES: '1048576',
        FEDGE_MAX_MODEL_BYTES: '4194304',
        FEDGE_MAX_TENSOR_ELEMENTS: '300000',
        FEDGE_MAX_WASM_BYTES: '268435456',
        ...vars,
      },
    },
  });
/** A deployed isolate's size: the WASM heap bound at 128 MiB, the default session count, 48 MiB models. */
const ISOLATE_128MIB = ['test/functions/inference/isolate-128mib.test.ts'];
/** Tests of the edge's rate limits: the limit wrangler.toml sets, not the shared isolate's. */
const RATE_LIMITED = ['test/functions/middleware/edge-guards.test.ts'];
const ISOLATED = ['test/functions/inference/inference-memory.test.ts', ...RATE_LIMITED, ...ISOLATE_128MIB];

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    // Stops any server a test left running, whatever happened to the worker that started it.
    globalSetup: ['./test/global-setup.ts'],
    projects: [
      // One workerd for all of the route and Durable Object tests (`isolate: false`): starting one per file was most
      // of the project's time. Each file names its own models and tasks, so the files do not see each other's.
      {
        plugins: [workerd({}, { sharedIsolate: true })],
        test: {
          name: 'workers',
          include: ['test/functions/**/*.test.ts'],
          exclude: ISOLATED,
          testTimeout: 30_000,
          isolate: false,
        },
      },
      // Files that need an isolate of their own: one whose ORT has not started yet (its WASM heap is created with their
      // bound), and the rate-limit tests.
      {
        plugins: [workerd()],
        test: { name: 'workers-isolated', include: ISOLATED, exclude: ISOLATE_128MIB, testTimeout: 30_000 },
      },
      {
        plugins: [workerd({ FEDGE_MAX_WASM_BYTES: '134217728', FEDGE_MAX_MODEL_BYTES: '50331648' })],
        test: { name: 'workers-128mib', include: ISOLATE_128MIB, testTimeout: 120_000 },
      },
      {
        test: {
          name: 'node',
          include: [
            'test/federated/**/*.test.ts',
            'test/rounds/**/*.test.ts',
            'test/models/**/*.test.ts',
            'test/client/**/*.test.ts',
            'test/e2e/**/*.test.ts',
            'test/browser/**/*.test.ts',
            'test/package/**/*.test.ts',
            'test/simulate/**/*.test.ts',
            'test/audit/**/*.test.ts',
            'test/docs/**/*.test.ts',
          ],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
