/**
 * Sites of the federation: the admin creates a site with a one-time join token; the site
 * enrols once with that token and its Ed25519 public key; the admin may revoke it. Only token
 * hashes are stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FedmedError } from '../shared/errors.js';
import { publicKeyFromB64 } from '../shared/secure/identity.js';
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
  constructor(private readonly store: CoordinatorStore) {}

  /** Creates a site and returns its one-time join token (shown once, never stored). */
  async add(name: string): Promise<{ site: SiteRecord; token: string }> {
    if (!SITE_NAME.test(name)) throw new EnrolmentError(`site name "${name}" must be 1-64 letters, digits, ".", "_" or "-"`);
    if (this.find(name)) throw new EnrolmentError(`site "${name}" already exists`, 409);
    const token = newSecret('fmj');
    const site: SiteRecord = { name, tokenSha256: sha256Hex(token), tokenUsedAt: null, publicKey: null, createdAt: new Date().toISOString(), enrolledAt: null, revokedAt: null, lastSeen: null, roundsJoined: 0 };
    await this.store.update((d) => void d.sites.push(site));
    return { site, token };
  }

  /** Enrols the site that owns `token` with `publicKey`; the token cannot be used again. */
  async enroll(token: string, publicKey: string): Promise<SiteRecord> {
    if (typeof token !== 'string' || !token.startsWith('fmj_')) throw new EnrolmentError('not a join token (expected fmj_...)', 401);
    const hash = sha256Hex(token);
    const site = this.store.data.sites.find((s) => s.tokenSha256 === hash);
    if (!site) throw new EnrolmentError('unknown join token', 401);
    if (site.revokedAt) throw new EnrolmentError(`site "${site.name}" is revoked`, 403);
    if (site.tokenUsedAt) throw new EnrolmentError(`this join token was already used (site "${site.name}" enrolled at ${site.tokenUsedAt}); ask the federation admin for a new site`, 409);
    publicKeyFromB64(publicKey); // throws IdentityError on a malformed key
    const now = new Date().toISOString();
    await this.store.update(() => {
      site.tokenUsedAt = now;
      site.enrolledAt = now;
      site.publicKey = publicKey;
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
