/**
 * API tokens with roles. `admin` manages sites and tokens; `researcher` manages experiments and
 * rounds; both can read. The first start of a coordinator creates an admin token in
 * DATA_DIR/admin.token (mode 0600).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeFileAtomic } from '../shared/atomicFile.js';
import { newSecret, sha256Hex } from './siteRegistry.js';
import type { CoordinatorStore } from './store/coordinatorStore.js';
import type { Role } from './store/storeSchema.js';

export class ApiTokens {
  constructor(private readonly store: CoordinatorStore) {}

  async create(role: Role): Promise<string> {
    const token = newSecret('fma');
    await this.store.update((d) => void d.apiTokens.push({ id: randomUUID(), sha256: sha256Hex(token), role, createdAt: new Date().toISOString() }));
    return token;
  }

  /** The role of a bearer token, or null. */
  roleOf(token: string | undefined): Role | null {
    if (!token || !token.startsWith('fma_')) return null;
    const hash = sha256Hex(token);
    return this.store.data.apiTokens.find((t) => t.sha256 === hash)?.role ?? null;
  }

  /** Ensures an admin token exists in DATA_DIR/admin.token; returns it. */
  async ensureAdminToken(): Promise<string> {
    const file = join(this.store.dataDir, 'admin.token');
    if (existsSync(file)) {
      const token = readFileSync(file, 'utf8').trim();
      if (this.roleOf(token) === 'admin') return token;
    }
    const token = await this.create('admin');
    writeFileAtomic(file, Buffer.from(`${token}\n`), 0o600);
    return token;
  }
}
