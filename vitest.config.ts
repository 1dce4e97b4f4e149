/**
 * Two projects: `workers` runs inside workerd through Cloudflare's Vitest integration (routes, registry,
 * Durable Objects, with real local R2 and SQLite); `node` runs the pure core, model toolchain and the
 * end-to-end tests that start the real local server.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    // Stops any server a test left running, whatever happened to the worker that started it.
    globalSetup: ['./test/global-setup.ts'],
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                FEDGE_ADMIN_TOKEN: 'test-admin-token',
                FEDGE_MAX_INFER_BYTES: '1048576',
                FEDGE_MAX_MODEL_BYTES: '4194304',
                FEDGE_MAX_TENSOR_ELEMENTS: '300000',
                FEDGE_MAX_WASM_BYTES: '268435456',
              },
            },
          }),
        ],
        test: { name: 'workers', include: ['test/functions/**/*.test.ts'], testTimeout: 30_000 },
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
