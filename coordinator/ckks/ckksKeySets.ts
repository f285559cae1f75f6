/**
 * The CKKS key sets the federation admin registered: public parameters signed by the admin
 * and, per site, a copy of the secret key wrapped to that site's certified encryption key with
 * the admin's signed grant (stored as a file the coordinator cannot open). The admin tool
 * (`fedmed federation keys`) creates them; sites fetch their copy and check both signatures.
 */
import { canonicalJson } from '../../shared/model/canonicalJson.js';
import { FedmedError } from '../../shared/errors.js';
import { checkCkksParameters, type CkksParameters } from '../../shared/secure/ckks/ckksParams.js';
import type { CkksKeyGrant, CkksKeySetCertificate } from '../../shared/secure/trust/certificates.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { CkksKeySetRecord } from '../store/storeSchema.js';

export class KeySetError extends FedmedError {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super('CKKS_KEYSET', message);
  }
}

/** A wrapped secret key is a few hundred KB; anything much larger is not one. */
export const MAX_WRAPPED_KEY_BYTES = 1024 * 1024;

export class CkksKeySets {
  constructor(
    private readonly store: CoordinatorStore,
    private readonly federation: CoordinatorFederation,
  ) {}

  /** Checks an admin-signed document; a TrustError becomes a 400 naming it. */
  private verify<T>(check: () => T): T {
    const trust = this.federation.trust;
    if (!trust) throw new KeySetError('this coordinator is not certified by a federation admin yet', 409);
    try {
      return check();
    } catch (err) {
      if (err instanceof TrustError) throw new KeySetError(err.message);
      throw err;
    }
  }

  list(): CkksKeySetRecord[] {
    return this.store.data.ckksKeySets ?? [];
  }

  find(id: string): CkksKeySetRecord | undefined {
    return this.list().find((k) => k.id === id);
  }

  /** The key set an experiment uses when its config names none. */
  newest(): CkksKeySetRecord | undefined {
    const all = this.list();
    return all[all.length - 1];
  }

  async create(id: string, parameters: CkksParameters, certificate: unknown): Promise<CkksKeySetRecord> {
    if (!/^[0-9a-f]{32}$/.test(id)) throw new KeySetError(`key set id "${id}" must be 32 hex digits`);
    if (this.find(id)) throw new KeySetError(`key set ${id} already exists`, 409);
    checkCkksParameters(parameters); // a CkksError: answered 400 naming the supported set
    const signed = this.verify(() => this.federation.trust!.keySet(certificate, id));
    if (canonicalJson(signed.parameters) !== canonicalJson(parameters)) throw new KeySetError(`the admin signed other parameters for key set ${id}`);
    const record: CkksKeySetRecord = { id, parameters, createdAt: new Date().toISOString(), certificate: certificate as CkksKeySetCertificate, sites: [] };
    await this.store.update((d) => void (d.ckksKeySets ??= []).push(record));
    return record;
  }

  /**
   * Stores `site`'s wrapped copy with the admin's grant. `encryptionKey` is the key the admin
   * wrapped to: it must be the one the site registered (else the site could not open it).
   */
  async grant(id: string, site: string, encryptionKey: string, wrapped: Uint8Array, grant: unknown): Promise<CkksKeySetRecord> {
    const set = this.find(id);
    if (!set) throw new KeySetError(`no key set ${id}`, 404);
    const s = this.store.data.sites.find((x) => x.name === site);
    if (!s || !s.enrolledAt) throw new KeySetError(`no enrolled site "${site}"`, 404);
    if (s.revokedAt) throw new KeySetError(`site "${site}" is revoked`, 409);
    if (!s.encryptionKey) throw new KeySetError(`site "${site}" has not registered an encryption key yet (it does on its first connection)`, 409);
    if (s.encryptionKey !== encryptionKey) throw new KeySetError(`the key was wrapped to ${encryptionKey}, but site "${site}" now has encryption key ${s.encryptionKey}; wrap it again`, 409);
    if (wrapped.byteLength < 70 || wrapped.byteLength > MAX_WRAPPED_KEY_BYTES) throw new KeySetError(`a wrapped key of ${wrapped.byteLength} bytes is not one (expected 70 B to 1 MiB)`);
    this.verify(() => this.federation.trust!.keyGrant(grant, { keySet: id, site, encryptionKey, wrapped }));
    this.store.saveWrappedKey(id, site, wrapped);
    await this.store.update(() => {
      set.sites = set.sites.filter((x) => x.site !== site);
      set.sites.push({ site, encryptionKey, at: new Date().toISOString(), grant: grant as CkksKeyGrant });
    });
    return set;
  }
}
