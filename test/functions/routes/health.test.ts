import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('OIP v2 health and server metadata', () => {
  it('is live and ready with the bundled default model loaded', async () => {
    expect((await SELF.fetch('http://edge/v2/health/live')).status).toBe(200);
    const ready = await SELF.fetch('http://edge/v2/health/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, default_model: 'mnist-mlp', execution_provider: 'wasm' });
  });

  it('describes the server and its extensions', async () => {
    const res = await SELF.fetch('http://edge/v2');
    expect(await res.json()).toEqual({
      name: 'fedge',
      version: expect.any(String),
      extensions: ['binary_tensor_data', 'statistics', 'model_repository'],
    });
    expect(res.headers.get('X-Request-Id')).toBeTruthy();
  });
});
