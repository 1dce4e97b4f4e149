/** The header list is stated once in code; the HTTP API doc must name every header in it, so docs and CORS agree. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUEST_HEADERS, RESPONSE_HEADERS } from '../../../federated/http/headers.ts';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/http-api.md'), 'utf8');

describe('the headers pages on other origins send and read', () => {
  it('docs/http-api.md lists every one in its CORS paragraph', () => {
    const paragraph = doc.slice(
      doc.indexOf('Pages on other origins may send'),
      doc.indexOf('federated/http/headers.ts'),
    );
    const [send, read] = paragraph.split(', and read ');
    for (const h of REQUEST_HEADERS) expect(send, h).toContain(`\`${h}\``);
    for (const h of RESPONSE_HEADERS) expect(read, h).toContain(`\`${h}\``);
  });
});
