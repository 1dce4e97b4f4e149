/**
 * The SDK's request and answer types (client-sdk/edge/contract.ts) are what the route contract declares: the file is
 * written from the contract's schemas (functions/contract/sdk-types.ts) and formatted as Biome formats the tree.
 * Stale after a change to the contract: `npx vitest run --project node test/client/contract-types.test.ts -u`.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { sdkTypes } from '../../functions/contract/sdk-types.ts';

const ROOT = join(import.meta.dirname, '../..');
const FILE = 'client-sdk/edge/contract.ts';

it('client-sdk/edge/contract.ts is generated from the route contract', async () => {
  const formatted = execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/@biomejs/biome/bin/biome'), 'format', `--stdin-file-path=${FILE}`],
    { cwd: ROOT, input: sdkTypes(), encoding: 'utf8' },
  );
  await expect(formatted).toMatchFileSnapshot(join(ROOT, FILE));
});
