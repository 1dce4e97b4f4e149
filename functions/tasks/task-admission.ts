/**
 * Who a task admits (FederatedTask.enroll): the enrollment token, then the task's enrolment policy
 * (federated/aggregation/enrollment.ts) — a credential from the app's issuer, the device cap, the cap per address.
 * Reads only; the task's object writes the device once this says nothing against it.
 */
import { type EnrollmentCredential, credentialProblem } from '../../federated/aggregation/enrollment.ts';
import type { TaskSettings } from '../../federated/aggregation/task-protocol.ts';
import { equal } from '../../federated/bytes.ts';
import { type Refusal, refuse } from './task-answers.ts';
import type { TaskStore } from './task-store.ts';

export interface Admission {
  /** SHA-256 (hex) of the enrollment token the request presented. */
  tokenDigest: string;
  device: string;
  identityKey: Uint8Array;
  /** A salted digest of the client's address (the route's): the per-address cap counts it. */
  address?: string | undefined;
  credential?: EnrollmentCredential | undefined;
}

/** Why `a` may not enrol, or undefined — also for a device enrolled already with this very key (a no-op). */
export async function admissionProblem(store: TaskStore, s: TaskSettings, a: Admission): Promise<Refusal | undefined> {
  const expected = new TextEncoder().encode(store.meta<string>('enrollment')!),
    given = new TextEncoder().encode(a.tokenDigest);
  if (expected.byteLength !== given.byteLength || !crypto.subtle.timingSafeEqual(expected, given))
    return refuse(403, 'enrollment token is not valid for this task');
  const known = store.identityKey(a.device);
  if (known)
    return equal(known, a.identityKey)
      ? undefined
      : refuse(409, `device '${a.device}' is enrolled with another identity key`);
  const policy = s.enrollment ?? {};
  if (policy.issuerKey) {
    const problem = await credentialProblem(
      policy.issuerKey,
      { task: s.task, device: a.device, identityKey: a.identityKey },
      a.credential,
    );
    if (problem) return refuse(403, problem);
  }
  if (policy.maxDevices !== undefined && store.deviceCount() >= policy.maxDevices)
    return refuse(409, `the task has enrolled its ${policy.maxDevices} devices`);
  if (policy.maxPerAddress !== undefined && a.address && store.addressCount(a.address) >= policy.maxPerAddress)
    return refuse(429, `${policy.maxPerAddress} devices have enrolled from this address already`);
  return undefined;
}
