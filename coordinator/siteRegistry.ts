/**
 * Sites of the federation: the admin creates a site with a one-time join token (which carries
 * the admin key's fingerprint, so the site pins the admin key and trusts nothing on first use);
 * the site enrols once with that token, its Ed25519 identity key and its X25519 encryption key
 * (signed by the identity); the admin then certifies those keys (coordinatorFederation.ts) or
 * revokes the site. Only token hashes are stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FedmedError } from '../shared/errors.js';
import { publicKeyFromB64 } from '../shared/secure/identity.js';
import { x25519FromB64 } from '../shared/secure/ckks/siteEncryptionKey.js';
import { formatJoinToken } from '../shared/secure/trust/joinToken.js';
import type { CoordinatorStore } from './store/coordinatorStore.js';
import type { SiteRecord } from './store/storeSchema.js';

export class EnrolmentError extends FedmedError {
  constructor(
    message: string,
    readonly status: 400 | 401 | 403 | 404 | 409 = 400,
  ) {
    super('ENROLMENT', message);
  }
}

const SITE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export class SiteRegistry {
  constructor(
    private readonly store: CoordinatorStore,
    /** Fingerprint of the federation admin's key (null until the coordinator is certified). */
    private readonly adminFingerprint: () => string | null,
  ) {}

  /** Creates a site and returns its one-time join token (shown once, never stored). */
  async add(name: string): Promise<{ site: SiteRecord; token: string }> {
    if (!SITE_NAME.test(name)) throw new EnrolmentError(`site name "${name}" must be 1-64 letters, digits, ".", "_" or "-"`);
    if (this.find(name)) throw new EnrolmentError(`site "${name}" already exists`, 409);
    const fingerprint = this.adminFingerprint();
    if (!fingerprint) throw new EnrolmentError('certify this coordinator first (fedmed federation certify-coordinator): a join token carries the federation admin key\'s fingerprint', 409);
    const secret = newSecret('fmj');
    const site: SiteRecord = { name, tokenSha256: sha256Hex(secret), tokenUsedAt: null, publicKey: null, createdAt: new Date().toISOString(), enrolledAt: null, revokedAt: null, lastSeen: null, roundsJoined: 0 };
    await this.store.update((d) => void d.sites.push(site));
    return { site, token: formatJoinToken(secret, fingerprint) };
  }

  /**
   * Enrols the site that owns `token` with its identity key and its encryption key; the token
   * cannot be used again. (What binds the keys to the site is the admin's certificate, issued
   * after comparing their fingerprint out of band.)
   */
  async enroll(token: string, keys: { publicKey: string; encryptionKey: string }): Promise<SiteRecord> {
    if (typeof token !== 'string' || !token.startsWith('fmj_')) throw new EnrolmentError('not a join token (expected fmj_...)', 401);
    // Sites send the secret part (the fingerprint is what they checked us against).
    const secret = token.split('.')[0];
    const hash = sha256Hex(secret);
    const site = this.store.data.sites.find((s) => s.tokenSha256 === hash);
    if (!site) throw new EnrolmentError('unknown join token', 401);
    if (site.revokedAt) throw new EnrolmentError(`site "${site.name}" is revoked`, 403);
    if (site.tokenUsedAt) throw new EnrolmentError(`this join token was already used (site "${site.name}" enrolled at ${site.tokenUsedAt}); ask the federation admin for a new site`, 409);
    publicKeyFromB64(keys.publicKey); // throws IdentityError on a malformed key
    x25519FromB64(keys.encryptionKey, 'encryption key');
    const now = new Date().toISOString();
    await this.store.update(() => {
      site.tokenUsedAt = now;
      site.enrolledAt = now;
      site.publicKey = keys.publicKey;
      site.encryptionKey = keys.encryptionKey;
    });
    return site;
  }

  async revoke(name: string): Promise<SiteRecord> {
    const site = this.find(name);
    if (!site) throw new EnrolmentError(`no site named "${name}"`, 404);
    if (!site.revokedAt) await this.store.update(() => void (site.revokedAt = new Date().toISOString()));
    return site;
  }

  find(name: string): SiteRecord | undefined {
    return this.store.data.sites.find((s) => s.name === name);
  }

  list(): SiteRecord[] {
    return this.store.data.sites;
  }
}
