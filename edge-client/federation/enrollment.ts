/**
 * `fedmed edge enroll`: joins a federation without trusting anything on first use. The join
 * token carries the fingerprint of the federation admin's key; the edge fetches the admin key
 * and the coordinator's certificate, checks the key against the fingerprint and the
 * certificate against the key (and that it names the URL being enrolled with), and only then
 * sends the token. It registers its new Ed25519 identity key and X25519 encryption key and
 * checks the coordinator's signed receipt. The admin then certifies the
 * keys (`fedmed site certify`), comparing the fingerprint printed here out of band. The
 * enrolment is the first entry of the site's audit log (STATE_DIR/audit.jsonl).
 */
import { mkdirSync } from 'node:fs';
import { AuditLog, EDGE_OWNER } from '../../shared/audit/auditLog.js';
import { FedmedError } from '../../shared/errors.js';
import { generateIdentity, publicKeyFromB64, saveIdentity } from '../../shared/secure/identity.js';
import { generateEncryptionKey, saveEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import type { CoordinatorCertificate, RevocationList } from '../../shared/secure/trust/certificates.js';
import { verifyEnrolmentReceipt } from '../../shared/secure/trust/enrolmentReceipt.js';
import { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import { keyFingerprint, showFingerprint, siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { parseJoinToken } from '../../shared/secure/trust/joinToken.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import { EdgeState, SITE_CONFIG_FORMAT } from './edgeState.js';
import { EdgeTrust } from './edgeTrust.js';
import { checkCoordinatorUrl } from './transportSecurity.js';

export class EnrollError extends FedmedError {
  constructor(message: string) {
    super('ENROLL_FAILED', message);
  }
}

export interface EnrolmentResult {
  site: string;
  adminFingerprint: string;
  coordinatorCertificateSerial: string;
  identityKey: string;
  encryptionKey: string;
  /** What the admin compares before `fedmed site certify NAME --fingerprint ...`. */
  siteFingerprint: string;
  warning: string | null;
}

async function getJson(url: URL, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new EnrollError(`cannot reach the coordinator at ${url.origin}: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body };
}

export async function enrollSite(coordinator: string, token: string, stateDir: string, o: { insecureTransport?: boolean } = {}): Promise<EnrolmentResult> {
  const { warning } = checkCoordinatorUrl(coordinator, o.insecureTransport);
  const join = parseJoinToken(token);
  const state = new EdgeState(stateDir);
  if (state.isEnrolled()) throw new EnrollError(`${stateDir} already holds an enrolled site; use another --state-dir`);

  // 1. Who is this coordinator? Checked against the admin key named by the token before the token is sent.
  const fed = await getJson(new URL('/v1/federation', coordinator));
  if (fed.status !== 200) throw new EnrollError(`the coordinator did not describe its federation (${fed.status}): ${String(fed.body.message ?? 'no reason given')}`);
  const adminPublicKey = fed.body.adminPublicKey;
  if (typeof adminPublicKey !== 'string') throw new EnrollError('the coordinator is not certified by a federation admin yet; ask the admin to run "fedmed federation certify-coordinator"');
  try {
    publicKeyFromB64(adminPublicKey);
  } catch {
    throw new EnrollError('the coordinator sent a malformed federation admin key');
  }
  if (keyFingerprint(adminPublicKey) !== join.adminFingerprint) {
    throw new EnrollError(`the coordinator's federation admin key (${showFingerprint(keyFingerprint(adminPublicKey))}) is not the one this join token names (${showFingerprint(join.adminFingerprint)}): an impostor, or a token for another federation. Nothing was sent.`);
  }
  let coordinatorKey: string;
  let serial: string;
  const probe = new FederationTrust(adminPublicKey);
  try {
    if (fed.body.revocations) probe.acceptRevocations(fed.body.revocations);
    const cert = probe.coordinator(fed.body.coordinatorCertificate as CoordinatorCertificate, { url: coordinator });
    coordinatorKey = cert.publicKey;
    serial = cert.serial;
  } catch (err) {
    if (err instanceof TrustError) throw new EnrollError(`the coordinator's certificate is refused: ${err.message}. Nothing was sent.`);
    throw err;
  }

  // 2. Register this site's keys with the one-time secret.
  const identity = generateIdentity();
  const encryption = generateEncryptionKey();
  const res = await getJson(new URL('/v1/enroll', coordinator), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: join.secret, publicKey: identity.publicKeyB64, encryptionKey: encryption.publicB64 }),
  });
  const site = res.body.site;
  if (res.status !== 200 || typeof site !== 'string') throw new EnrollError(`enrolment refused (${res.status}): ${String(res.body.message ?? 'no reason given')}`);
  const receipt = res.body.receipt;
  if (typeof receipt !== 'string' || !verifyEnrolmentReceipt(publicKeyFromB64(coordinatorKey), { site, identityKey: identity.publicKeyB64, encryptionKey: encryption.publicB64 }, receipt)) {
    throw new EnrollError('the enrolment answer is not signed by the certified coordinator key (a relay or an impostor answered); nothing was saved');
  }

  // 3. Keys first, then the config: a site.json always has its keys beside it.
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  saveIdentity(state.keyPath, identity);
  saveEncryptionKey(state.encryptionKeyPath, encryption);
  if (fed.body.revocations) new EdgeTrust(stateDir, adminPublicKey).acceptRevocations(fed.body.revocations as RevocationList);
  state.saveConfig({ format: SITE_CONFIG_FORMAT, site, coordinator, adminPublicKey, ...(o.insecureTransport ? { insecureTransport: true } : {}), enrolledAt: new Date().toISOString() });
  // The first entry of the site's audit log (identifiers and fingerprints only: no key, no token).
  const audit = AuditLog.open(stateDir, { warn: () => {}, error: (_d, msg) => process.stderr.write(`fedmed: warning: ${msg}\n`) }, EDGE_OWNER);
  await audit.append({ actor: { kind: 'operator' }, action: 'site.enrolled', subject: site, details: { coordinator, coordinatorCertificate: serial, federation: join.adminFingerprint, fingerprint: siteKeysFingerprint(identity.publicKeyB64, encryption.publicB64) } });
  await audit.close();
  return { site, adminFingerprint: join.adminFingerprint, coordinatorCertificateSerial: serial, identityKey: identity.publicKeyB64, encryptionKey: encryption.publicB64, siteFingerprint: siteKeysFingerprint(identity.publicKeyB64, encryption.publicB64), warning };
}
