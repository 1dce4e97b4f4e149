/**
 * Who may enrol in a task, beyond holding its enrollment token (which every browser participant holds, so anyone can
 * read it from the page): an app's own backend vouches for each device with an enrolment credential — its Ed25519
 * signature over (task, device, the device's identity key, expiry) — so the app decides how many identities a user
 * gets (one, keyed to its account) and a script cannot mint thousands. The task holds the backend's public key only.
 * Caps bound what a token holder without credentials can do: devices per task, devices per address.
 * Pure: the app's backend mints with `mintEnrollmentCredential`; the task's object checks with `credentialProblem`.
 */
import { framed, fromBase64, toBase64 } from '../bytes.ts';
import { sign, verify } from '../secagg/primitives.ts';

/** A task's enrolment rules (TaskSettings.enrollment). */
export interface EnrollmentPolicy {
  /** The app backend's Ed25519 public key (32 bytes, base64): every enrolment needs a credential it signed. */
  issuerKey?: string | undefined;
  /** Most devices the task enrols. */
  maxDevices?: number | undefined;
  /** Most devices enrolled from one client address. */
  maxPerAddress?: number | undefined;
}

/** What a device presents with its enrolment when the task names an issuer. */
export interface EnrollmentCredential {
  /** Unix seconds after which the credential is refused. */
  expires: number;
  /** The issuer's Ed25519 signature over credentialBytes, base64. */
  signature: string;
}

/** The bytes an issuer signs: bound to the task, the device id and its identity key, and the expiry. */
export function credentialBytes(o: { task: string; device: string; identityKey: Uint8Array; expires: number }) {
  return framed('fedge-enrollment/v1', o.task, o.device, o.identityKey, String(o.expires));
}

/** The app backend's side: a credential for `device` with `identityKey` in `task`, valid until `expires`. */
export async function mintEnrollmentCredential(
  issuerSeed: Uint8Array,
  o: { task: string; device: string; identityKey: Uint8Array; expires: number },
): Promise<EnrollmentCredential> {
  return { expires: o.expires, signature: toBase64(await sign(issuerSeed, credentialBytes(o))) };
}

/** Why `credential` does not admit `device` to `task` under `issuerKey` at `now` (ms), or undefined when it does. */
export async function credentialProblem(
  issuerKey: string,
  o: { task: string; device: string; identityKey: Uint8Array },
  credential: EnrollmentCredential | undefined,
  now = Date.now(),
): Promise<string | undefined> {
  if (!credential) return "this task enrols devices with a credential from the app's backend: send credential";
  if (!(credential.expires * 1000 > now)) return 'the enrolment credential has expired';
  let signature: Uint8Array;
  try {
    signature = fromBase64(credential.signature);
  } catch {
    return 'the enrolment credential is not valid';
  }
  const ok = await verify(fromBase64(issuerKey), credentialBytes({ ...o, expires: credential.expires }), signature);
  return ok ? undefined : 'the enrolment credential is not valid for this task, device and identity key';
}
