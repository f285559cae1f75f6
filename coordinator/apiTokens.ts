/**
 * API tokens with roles. `admin` manages sites and tokens; `researcher` manages experiments and
 * rounds; `deployer` publishes, promotes and rolls back clinical deployments; all can read. Only
 * the SHA-256 of a token is stored; a token may expire, and an admin lists and revokes them. The
 * first start of a coordinator creates an admin token in DATA_DIR/admin.token (mode 0600).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeFileAtomic } from '../shared/atomicFile.js';
import { UsageError } from '../shared/errors.js';
import { newSecret, sha256Hex } from './siteRegistry.js';
import type { CoordinatorStore } from './store/coordinatorStore.js';
import type { ApiTokenRecord, Role } from './store/storeSchema.js';

/** A token as the admin's list shows it (never its secret or hash). */
export type TokenView = Pick<ApiTokenRecord, 'id' | 'role' | 'createdAt' | 'name' | 'expiresAt' | 'revokedAt'> & { active: boolean };

export class ApiTokens {
  constructor(private readonly store: CoordinatorStore) {}

  async create(role: Role, o: { name?: string; expiresDays?: number } = {}): Promise<{ id: string; token: string; expiresAt?: string }> {
    const token = newSecret('fma');
    const id = randomUUID();
    const expiresAt = o.expiresDays !== undefined ? new Date(Date.now() + o.expiresDays * 86_400_000).toISOString() : undefined;
    await this.store.update((d) => void d.apiTokens.push({ id, sha256: sha256Hex(token), role, createdAt: new Date().toISOString(), ...(o.name ? { name: o.name } : {}), ...(expiresAt ? { expiresAt } : {}) }));
    return { id, token, ...(expiresAt ? { expiresAt } : {}) };
  }

  /** The role of a bearer token that is neither revoked nor expired, or null. */
  roleOf(token: string | undefined): Role | null {
    if (!token || !token.startsWith('fma_')) return null;
    const hash = sha256Hex(token);
    const t = this.store.data.apiTokens.find((x) => x.sha256 === hash);
    return t && active(t) ? t.role : null;
  }

  list(): TokenView[] {
    return this.store.data.apiTokens.map((t) => ({ id: t.id, role: t.role, createdAt: t.createdAt, name: t.name, expiresAt: t.expiresAt, revokedAt: t.revokedAt, active: active(t) }));
  }

  /** Revokes a token by id; the last active admin token cannot be revoked (nobody could manage the coordinator). */
  async revoke(id: string): Promise<TokenView> {
    const t = this.store.data.apiTokens.find((x) => x.id === id);
    if (!t) throw new UsageError(`no API token ${id} (see "fedmed token list")`);
    if (t.role === 'admin' && active(t) && this.store.data.apiTokens.filter((x) => x.role === 'admin' && active(x)).length === 1) throw new UsageError(`token ${id} is the last active admin token; create another admin token first`);
    if (!t.revokedAt) await this.store.update(() => void (t.revokedAt = new Date().toISOString()));
    return this.list().find((x) => x.id === id)!;
  }

  /** Ensures an admin token exists in DATA_DIR/admin.token; returns it. */
  async ensureAdminToken(): Promise<string> {
    const file = join(this.store.dataDir, 'admin.token');
    if (existsSync(file)) {
      const token = readFileSync(file, 'utf8').trim();
      if (this.roleOf(token) === 'admin') return token;
    }
    const { token } = await this.create('admin', { name: 'admin.token' });
    writeFileAtomic(file, Buffer.from(`${token}\n`), 0o600);
    return token;
  }
}

function active(t: ApiTokenRecord): boolean {
  return !t.revokedAt && (!t.expiresAt || Date.parse(t.expiresAt) > Date.now());
}
