/**
 * Where the federation admin's commands act: a running coordinator through its REST API (admin
 * API token), or a stopped coordinator's data dir (`--data-dir`). Both expose the same
 * operations; everything they receive is admin-signed, and the coordinator checks it again.
 */
import { CoordinatorKeys } from '../../coordinator/coordinatorIdentity.js';
import { CoordinatorFederation, type FederationView } from '../../coordinator/federation/coordinatorFederation.js';
import { SiteRegistry } from '../../coordinator/siteRegistry.js';
import { CoordinatorStore } from '../../coordinator/store/coordinatorStore.js';
import { runningCoordinatorPid } from '../../coordinator/store/dataDirLock.js';
import { UsageError } from '../../shared/errors.js';
import type { SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { api, resolveTarget, type ApiTarget } from '../apiClient.js';

export interface AdminSiteView {
  name: string;
  enrolled: boolean;
  revoked: boolean;
  publicKey: string | null;
  encryptionKey: string | null;
  certificate: SiteCertificate | null;
}

export interface AdminTarget {
  /** Where (for messages and the default certificate URL). */
  readonly url: string | null;
  federation(): Promise<FederationView>;
  installCoordinatorCertificate(certificate: unknown, adminPublicKey: string): Promise<{ rotated: boolean }>;
  rotateCoordinatorKey(): Promise<FederationView>;
  sites(): Promise<AdminSiteView[]>;
  /** One site, or null. */
  site(name: string): Promise<AdminSiteView | null>;
  addSite(name: string): Promise<{ name: string; token: string }>;
  certifySite(name: string, certificate: unknown): Promise<void>;
  installRevocations(list: unknown): Promise<string[]>;
  revokeSite(name: string): Promise<void>;
}

export class ApiAdminTarget implements AdminTarget {
  constructor(private readonly target: { url: string; token: string }) {}

  get url(): string {
    return this.target.url;
  }

  federation(): Promise<FederationView> {
    return api<FederationView>(this.target, 'GET', '/v1/federation');
  }

  installCoordinatorCertificate(certificate: unknown, adminPublicKey: string): Promise<{ rotated: boolean }> {
    return api<{ rotated: boolean }>(this.target, 'PUT', '/v1/federation/coordinator-certificate', { certificate, adminPublicKey });
  }

  rotateCoordinatorKey(): Promise<FederationView> {
    return api<FederationView>(this.target, 'POST', '/v1/federation/coordinator-key/rotate');
  }

  sites(): Promise<AdminSiteView[]> {
    return api<AdminSiteView[]>(this.target, 'GET', '/v1/sites');
  }

  async site(name: string): Promise<AdminSiteView | null> {
    try {
      return await api<AdminSiteView>(this.target, 'GET', `/v1/sites/${encodeURIComponent(name)}`);
    } catch (err) {
      if ((err as { status?: number }).status === 404) return null;
      throw err;
    }
  }

  addSite(name: string): Promise<{ name: string; token: string }> {
    return api<{ name: string; token: string }>(this.target, 'POST', '/v1/sites', { name });
  }

  async certifySite(name: string, certificate: unknown): Promise<void> {
    await api(this.target, 'PUT', `/v1/sites/${encodeURIComponent(name)}/certificate`, { certificate });
  }

  async installRevocations(list: unknown): Promise<string[]> {
    return (await api<{ revokedSites: string[] }>(this.target, 'PUT', '/v1/federation/revocations', { list })).revokedSites;
  }

  async revokeSite(name: string): Promise<void> {
    await api(this.target, 'POST', `/v1/sites/${encodeURIComponent(name)}/revoke`);
  }
}

/** A stopped coordinator's data dir, edited in place (refused while a coordinator runs on it). */
export class OfflineAdminTarget implements AdminTarget {
  readonly url = null;

  private constructor(
    private readonly store: CoordinatorStore,
    private readonly fed: CoordinatorFederation,
    private readonly registry: SiteRegistry,
  ) {}

  static async open(dataDir: string): Promise<OfflineAdminTarget> {
    const pid = runningCoordinatorPid(dataDir);
    if (pid) throw new UsageError(`a coordinator (pid ${pid}) is running on ${dataDir}; use --coordinator URL --token ADMIN_TOKEN instead of --data-dir`);
    const store = await CoordinatorStore.open(dataDir);
    const fed = new CoordinatorFederation(store, new CoordinatorKeys(dataDir));
    return new OfflineAdminTarget(store, fed, new SiteRegistry(store, () => fed.adminFingerprint));
  }

  async federation(): Promise<FederationView> {
    return this.fed.view();
  }

  installCoordinatorCertificate(certificate: unknown, adminPublicKey: string): Promise<{ rotated: boolean }> {
    return this.fed.installCertificate(certificate, adminPublicKey);
  }

  async rotateCoordinatorKey(): Promise<FederationView> {
    this.fed.keys.rotate();
    return this.fed.view();
  }

  async sites(): Promise<AdminSiteView[]> {
    return this.registry.list().map((s) => ({ name: s.name, enrolled: !!s.enrolledAt, revoked: !!s.revokedAt, publicKey: s.publicKey, encryptionKey: s.encryptionKey ?? null, certificate: s.certificate ?? null }));
  }

  async site(name: string): Promise<AdminSiteView | null> {
    return (await this.sites()).find((s) => s.name === name) ?? null;
  }

  async addSite(name: string): Promise<{ name: string; token: string }> {
    const r = await this.registry.add(name);
    return { name: r.site.name, token: r.token };
  }

  async certifySite(name: string, certificate: unknown): Promise<void> {
    const site = this.registry.find(name);
    if (!site) throw new UsageError(`no site named "${name}"`);
    await this.fed.certifySite(site, certificate);
  }

  installRevocations(list: unknown): Promise<string[]> {
    return this.fed.acceptRevocations(list);
  }

  async revokeSite(name: string): Promise<void> {
    await this.registry.revoke(name);
  }

  /** The store, for offline commands that read more (site list). */
  get data() {
    return this.store.data;
  }
}

/** `--data-dir` (offline) or `--coordinator/--token` (API). */
export async function adminTarget(flags: ApiTarget & { dataDir?: string }): Promise<AdminTarget> {
  return flags.dataDir ? OfflineAdminTarget.open(flags.dataDir) : new ApiAdminTarget(resolveTarget(flags));
}
