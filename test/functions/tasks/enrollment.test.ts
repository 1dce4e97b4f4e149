/**
 * Who may enrol (issue 31, point 3): the enrollment token is in every browser participant's page, so a task can ask
 * for more — a credential from the app's own backend per device (one identity per user, as the app decides), a cap
 * on devices and on devices per address — and the operator can revoke a device. Against the real FederatedTask.
 */
import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { toBase64 } from '../../../federated/bytes.ts';
import { mintEnrollmentCredential } from '../../../federated/aggregation/enrollment.ts';
import { createIdentity } from '../../../federated/secagg/client.ts';
import { ed25519PublicKey } from '../../../federated/secagg/primitives.ts';
import { randomBytes } from '../../../federated/random.ts';
import { ADMIN, uniqueName } from '../helpers.ts';
import { SecAggDevice } from '../../drivers/secagg-device.ts';
import { TOKEN, edge, expectError, post, taskBody } from './fixtures.ts';

const enroll = (task: string, body: unknown, headers: Record<string, string> = {}) =>
  post(`/v1/tasks/${task}/devices`, body, { Authorization: `Bearer ${TOKEN}`, ...headers });

async function createTask(enrollment: Record<string, unknown>): Promise<string> {
  const task = uniqueName('enrol');
  const res = await post('/v1/tasks', taskBody(task, { enrollment }));
  expect(res.status, await res.clone().text()).toBe(201);
  return task;
}

describe('enrolment policy', () => {
  it("with an issuer, a device enrols only with the app backend's credential for that task, device and key", async () => {
    const issuerSeed = randomBytes(32);
    const task = await createTask({ issuerKey: toBase64(await ed25519PublicKey(issuerSeed)) });
    const { publicKey } = await createIdentity('alice');
    const body = { device: 'alice', identityKey: toBase64(publicKey) };
    const expires = Math.floor(Date.now() / 1000) + 600;
    const credential = await mintEnrollmentCredential(issuerSeed, {
      task,
      device: 'alice',
      identityKey: publicKey,
      expires,
    });
    await expectError(enroll(task, body), 403, /credential from the app's backend/);
    await expectError(enroll(task, { ...body, device: 'mallory', credential }), 403, /not valid for this task, device/);
    const other = await mintEnrollmentCredential(randomBytes(32), {
      task,
      device: 'alice',
      identityKey: publicKey,
      expires,
    });
    await expectError(enroll(task, { ...body, credential: other }), 403, /not valid/);
    const old = await mintEnrollmentCredential(issuerSeed, {
      task,
      device: 'alice',
      identityKey: publicKey,
      expires: Math.floor(Date.now() / 1000) - 1,
    });
    await expectError(enroll(task, { ...body, credential: old }), 403, /expired/);
    expect((await enroll(task, { ...body, credential })).status).toBe(201);
    expect((await (await SELF.fetch(`http://edge/v1/tasks/${task}`)).json()) as object).toMatchObject({
      enrolledDevices: 1,
    });
  });

  it('caps devices per task (409) and per address (429), whoever holds the token', async () => {
    const task = await createTask({ maxDevices: 4, maxPerAddress: 2 });
    const key = async (id: string) => toBase64((await createIdentity(id)).publicKey);
    const from = (ip: string) => ({ 'CF-Connecting-IP': ip });
    expect((await enroll(task, { device: 'a', identityKey: await key('a') }, from('198.51.100.1'))).status).toBe(201);
    expect((await enroll(task, { device: 'b', identityKey: await key('b') }, from('198.51.100.1'))).status).toBe(201);
    await expectError(
      enroll(task, { device: 'c', identityKey: await key('c') }, from('198.51.100.1')),
      429,
      /2 devices have enrolled from this address/,
    );
    expect((await enroll(task, { device: 'c', identityKey: await key('c') }, from('198.51.100.2'))).status).toBe(201);
    expect((await enroll(task, { device: 'd', identityKey: await key('d') }, from('198.51.100.3'))).status).toBe(201);
    await expectError(
      enroll(task, { device: 'e', identityKey: await key('e') }, from('198.51.100.4')),
      409,
      /enrolled its 4 devices/,
    );
  });

  it('the operator revokes a device: its messages are refused from then on; only the admin may, and only an enrolled one', async () => {
    const task = uniqueName('revoke');
    expect((await post('/v1/tasks', taskBody(task))).status).toBe(201);
    const d = await SecAggDevice.enrolled(edge, task, 'dev-0', TOKEN);
    const revoke = (device: string, headers: Record<string, string> = ADMIN) =>
      SELF.fetch(`http://edge/v1/tasks/${task}/devices/${device}`, { method: 'DELETE', headers });
    expect((await revoke('dev-0', {})).status).toBe(401);
    const res = await revoke('dev-0');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ task, device: 'dev-0', revoked: true });
    await expectError(d.send(await d.advertise()), 403, /not enrolled/);
    await expectError(revoke('dev-0'), 404, /no device 'dev-0'/);
  });

  it('an issuerKey that is not an Ed25519 public key is refused at creation', async () => {
    await expectError(
      post('/v1/tasks', taskBody(uniqueName('enrol'), { enrollment: { issuerKey: 'not-a-key' } })),
      400,
      /enrollment.issuerKey must be an Ed25519 public key/,
    );
  });
});
