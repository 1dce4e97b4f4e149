/**
 * A device driven stage by stage with the SecAgg+ client functions over the task routes — the one driver of the
 * workers-pool route tests (test/functions/tasks: `SELF.fetch.bind(SELF)` and http://edge) and of the end-to-end test
 * against the local server (test/e2e/federated.test.ts: global fetch and the server's URL). Each stage returns its
 * message without sending it, so a test can send it, send it twice, hold it across a restart or tamper with it.
 */
import { expect } from 'vitest';
import { fromBase64, toBase64 } from '../../federated/bytes.ts';
import {
  type ClientState,
  type DeviceIdentity,
  clientAdvertiseKeys,
  clientMaskedInput,
  clientShareKeys,
  clientUnmask,
  createIdentity,
} from '../../federated/secagg/client.ts';
import { type DeviceMessage, type RoundConfig, signingBytes } from '../../federated/secagg/messages.ts';
import { sign } from '../../federated/secagg/primitives.ts';
import { encodeMessage } from '../../federated/secagg/wire.ts';
import {
  DEVICE_SIGNATURE_HEADER,
  type RoundInfo,
  relayFromJson,
  relaySigningBytes,
} from '../../federated/aggregation/task-protocol.ts';

/** Where a device talks to: a fetch function and the edge's base URL (no trailing slash). */
export interface Edge {
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
  readonly url: string;
}

export class SecAggDevice {
  state?: ClientState;
  /** The round this device checked in for (advertise): its relays ask for that round. */
  round = 1;
  readonly edge: Edge;
  readonly task: string;
  readonly identity: DeviceIdentity;
  constructor(edge: Edge, task: string, identity: DeviceIdentity) {
    this.edge = edge;
    this.task = task;
    this.identity = identity;
  }

  /** A new identity `id`, enrolled in `task` with its enrollment token (the enrollment must answer 201). */
  static async enrolled(edge: Edge, task: string, id: string, enrollmentToken: string): Promise<SecAggDevice> {
    const d = new SecAggDevice(edge, task, await createIdentity(id));
    const res = await edge.fetch(`${edge.url}/v1/tasks/${task}/devices`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${enrollmentToken}` },
      body: JSON.stringify({ device: id, identityKey: toBase64(d.identity.publicKey) }),
    });
    expect(res.status).toBe(201);
    return d;
  }

  async info(): Promise<RoundInfo> {
    return (await (await this.edge.fetch(`${this.edge.url}/v1/tasks/${this.task}/round`)).json()) as RoundInfo;
  }

  /** Posts a message (encoded here) or raw bytes (sent as they are) to the task's message route. */
  send(m: DeviceMessage | Uint8Array): Promise<Response> {
    return this.edge.fetch(`${this.edge.url}/v1/tasks/${this.task}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: m instanceof Uint8Array ? m : encodeMessage(m),
    });
  }

  /** A relay's response (kind: broadcast, delivery, unmask), signed by this device unless `signature` is given. */
  async relayRes(kind: string, round = this.round, signature?: string): Promise<Response> {
    const proof =
      signature ??
      toBase64(await sign(this.identity.seed, relaySigningBytes(this.task, round, kind, this.identity.id)));
    return this.edge.fetch(
      `${this.edge.url}/v1/tasks/${this.task}/rounds/${round}/${kind}?device=${this.identity.id}`,
      { headers: { [DEVICE_SIGNATURE_HEADER]: proof } },
    );
  }

  /** The relay of `kind` in this device's round, which must answer 200. */
  async relay(kind: string): Promise<never> {
    const res = await this.relayRes(kind);
    expect(res.status).toBe(200);
    return (await res.json()) as never;
  }

  async advertise() {
    const i = await this.info();
    this.round = i.round;
    const config: RoundConfig = {
      roundId: i.roundId,
      neighbours: i.neighbours,
      threshold: i.threshold,
      graphSeed: fromBase64(i.graphSeed),
      length: i.length,
      minContributors: i.minDevices,
    };
    const { state, message } = await clientAdvertiseKeys(config, this.identity);
    this.state = state;
    return message;
  }

  async share() {
    const { state, message } = await clientShareKeys(
      this.state!,
      relayFromJson.broadcast(await this.relay('broadcast')),
    );
    this.state = state;
    return message;
  }

  async masked(update: Uint32Array) {
    const { state, message } = await clientMaskedInput(
      this.state!,
      relayFromJson.delivery(await this.relay('delivery')),
      update,
    );
    this.state = state;
    return message;
  }

  async unmask() {
    const { state, message } = await clientUnmask(this.state!, await this.relay('unmask'));
    this.state = state;
    return message;
  }

  /** `m` signed again by this device (a cheating device signs whatever it sends). */
  async resign<M extends DeviceMessage>(m: M): Promise<M> {
    return { ...m, signature: await sign(this.identity.seed, await signingBytes(m)) };
  }
}
