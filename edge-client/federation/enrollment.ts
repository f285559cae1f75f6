/**
 * `fedmed edge enroll`: creates the site's Ed25519 key pair (mode 0600), registers the public
 * key with the coordinator using the one-time join token, and pins the coordinator's public key.
 * Also creates the site's X25519 encryption key (registered, signed, on its first connection).
 */
import { mkdirSync } from 'node:fs';
import { FedmedError } from '../../shared/errors.js';
import { generateIdentity, saveIdentity } from '../../shared/secure/identity.js';
import { EdgeState } from './edgeState.js';
import { loadOrCreateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';

export class EnrollError extends FedmedError {
  constructor(message: string) {
    super('ENROLL_FAILED', message);
  }
}

export async function enrollSite(coordinator: string, token: string, stateDir: string): Promise<{ site: string; coordinatorPublicKey: string }> {
  const state = new EdgeState(stateDir);
  if (state.isEnrolled()) throw new EnrollError(`${stateDir} already holds an enrolled site (${state.load().config.site}); use another --state-dir`);
  const identity = generateIdentity();
  let res: Response;
  try {
    res = await fetch(new URL('/v1/enroll', coordinator), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, publicKey: identity.publicKeyB64 }) });
  } catch (err) {
    throw new EnrollError(`cannot reach the coordinator at ${coordinator}: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { site?: string; coordinatorPublicKey?: string; message?: string };
  if (!res.ok || !body.site || !body.coordinatorPublicKey) throw new EnrollError(`enrolment refused (${res.status}): ${body.message ?? 'no reason given'}`);
  // Key first, then config: a site.json always has its key beside it.
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  saveIdentity(state.keyPath, identity);
  loadOrCreateEncryptionKey(state.encryptionKeyPath);
  state.saveConfig({ site: body.site, coordinator, coordinatorPublicKey: body.coordinatorPublicKey, enrolledAt: new Date().toISOString() });
  return { site: body.site, coordinatorPublicKey: body.coordinatorPublicKey };
}
