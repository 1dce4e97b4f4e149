/** A device driven stage by stage with the SecAgg+ client functions over the task routes (workers-pool tests). */
import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { fromBase64, toBase64 } from '../../../federated/secagg/bytes.ts';
import { type ClientState, type DeviceIdentity, clientAdvertiseKeys, clientMaskedInput, clientShareKeys, clientUnmask, createIdentity } from '../../../federated/secagg/client.ts';
import { type DeviceMessage, type RoundConfig, signingBytes } from '../../../federated/secagg/messages.ts';
import { sign } from '../../../federated/secagg/primitives.ts';
import { encodeMessage } from '../../../federated/secagg/wire.ts';
import { encodeUpdate } from '../../../federated/secagg/fixed-point.ts';
import { DEVICE_SIGNATURE_HEADER, type RoundInfo, relayFromJson, relaySigningBytes } from '../../../federated/aggregation/task-protocol.ts';
import { D, TOKEN, post } from './fixtures.ts';

/** A device driven stage by stage with the SecAgg+ client functions over the routes. */
export class Device {
  state?: ClientState;
  readonly task: string;
  readonly identity: DeviceIdentity;
  constructor(task: string, identity: DeviceIdentity) {
    this.task = task;
    this.identity = identity;
  }
  static async enrolled(task: string, id: string): Promise<Device> {
    const d = new Device(task, await createIdentity(id));
    expect((await post(`/v1/tasks/${task}/devices`, { device: id, identityKey: toBase64(d.identity.publicKey) }, { Authorization: `Bearer ${TOKEN}` })).status).toBe(201);
    return d;
  }
  async info(): Promise<RoundInfo> {
    return (await (await SELF.fetch(`http://edge/v1/tasks/${this.task}/round`)).json()) as RoundInfo;
  }
  send(m: DeviceMessage | Uint8Array): Promise<Response> {
    return SELF.fetch(`http://edge/v1/tasks/${this.task}/messages`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: m instanceof Uint8Array ? m : encodeMessage(m) });
  }
  async relayRes(kind: string, round = 1, signature?: string): Promise<Response> {
    const proof = signature ?? toBase64(await sign(this.identity.seed, relaySigningBytes(this.task, round, kind, this.identity.id)));
    return SELF.fetch(`http://edge/v1/tasks/${this.task}/rounds/${round}/${kind}?device=${this.identity.id}`, { headers: { [DEVICE_SIGNATURE_HEADER]: proof } });
  }
  async relay(kind: string): Promise<never> {
    const res = await this.relayRes(kind);
    expect(res.status).toBe(200);
    return (await res.json()) as never;
  }
  async advertise() {
    const i = await this.info();
    const config: RoundConfig = { roundId: i.roundId, neighbours: i.neighbours, threshold: i.threshold, graphSeed: fromBase64(i.graphSeed), length: i.length, minContributors: i.minDevices };
    const { state, message } = await clientAdvertiseKeys(config, this.identity);
    this.state = state;
    return message;
  }
  async share() {
    const { state, message } = await clientShareKeys(this.state!, relayFromJson.broadcast(await this.relay('broadcast')));
    this.state = state;
    return message;
  }
  async masked(update: Uint32Array) {
    const { state, message } = await clientMaskedInput(this.state!, relayFromJson.delivery(await this.relay('delivery')), update);
    this.state = state;
    return message;
  }
  async unmask() {
    const { state, message } = await clientUnmask(this.state!, await this.relay('unmask'));
    this.state = state;
    return message;
  }
  async resign<M extends DeviceMessage>(m: M): Promise<M> {
    return { ...m, signature: await sign(this.identity.seed, await signingBytes(m)) };
  }
}

/** Runs a round up to the unmask messages; returns the devices and each one's unmask message. */
export async function upToUnmask(task: string, n: number) {
  const devices = await Promise.all(Array.from({ length: n }, (_, i) => Device.enrolled(task, `dev-${i}`)));
  for (const d of devices) expect((await d.send(await d.advertise())).status).toBe(202);
  for (const d of devices) expect((await d.send(await d.share())).status).toBe(202);
  const info = await devices[0]!.info();
  for (const [i, d] of devices.entries()) expect((await d.send(await d.masked(encodeUpdate(new Float32Array(D).fill(0.01 * (i + 1)), 10, info.fixedPoint)))).status).toBe(202);
  const unmasks = await Promise.all(devices.map((d) => d.unmask()));
  return { devices, unmasks };
}

