/**
 * Access tokens for the edge inference service (`fedmed edge token create|list|revoke`).
 * A token is `fmi_<id>.<secret>`: `id` (8 random bytes, hex) names it, `secret` is 32 random
 * bytes (base64url). Only SHA-256(secret) is stored, in STATE_DIR/inference-tokens.json (mode
 * 0600, written atomically); the token itself is shown once, when it is created. Roles:
 * `clinician` may call POST /v1/infer, /healthz and /metrics; `monitor` only /healthz and
 * /metrics. The running service re-reads the file whenever it changes (checked by stat on each
 * request), so a revocation or a new token applies to the next request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';

export const SERVICE_ROLES = ['clinician', 'monitor'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

export interface ServiceTokenRecord {
  id: string;
  name: string;
  role: ServiceRole;
  /** SHA-256 of the secret, hex. */
  sha256: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

interface TokenFile {
  format: 1;
  tokens: ServiceTokenRecord[];
}

const TOKEN_RE = /^fmi_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

export function serviceTokensPath(stateDir: string): string {
  return join(stateDir, 'inference-tokens.json');
}

function readTokenFile(path: string): TokenFile {
  if (!existsSync(path)) return { format: 1, tokens: [] };
  const f = JSON.parse(readFileSync(path, 'utf8')) as TokenFile;
  if (f?.format !== 1 || !Array.isArray(f.tokens)) throw new UsageError(`${path} is not an inference token file (format 1)`);
  return f;
}

function writeTokenFile(path: string, f: TokenFile): void {
  writeFileAtomic(path, Buffer.from(`${JSON.stringify(f, null, 2)}\n`), 0o600);
  chmodSync(path, 0o600); // whatever the umask
}

/** Creates a token; returns it (to show once) and what is stored. */
export function createServiceToken(stateDir: string, o: { role: ServiceRole; name?: string; expiresDays?: number; now?: Date }): { token: string; record: ServiceTokenRecord } {
  if (!SERVICE_ROLES.includes(o.role)) throw new UsageError(`--role must be one of ${SERVICE_ROLES.join(', ')}`);
  if (o.expiresDays !== undefined && !(o.expiresDays > 0)) throw new UsageError('--expires-days must be > 0');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = serviceTokensPath(stateDir);
  const f = readTokenFile(path);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const now = o.now ?? new Date();
  const name = o.name ?? `${o.role}-${id.slice(0, 6)}`;
  if (f.tokens.some((t) => t.name === name && !t.revokedAt)) throw new UsageError(`a token named "${name}" exists; revoke it first or choose another --name`);
  const record: ServiceTokenRecord = {
    id,
    name,
    role: o.role,
    sha256: createHash('sha256').update(secret).digest('hex'),
    createdAt: now.toISOString(),
    expiresAt: o.expiresDays !== undefined ? new Date(now.getTime() + o.expiresDays * 86_400_000).toISOString() : null,
    revokedAt: null,
  };
  f.tokens.push(record);
  writeTokenFile(path, f);
  return { token: `fmi_${id}.${secret}`, record };
}

export function listServiceTokens(stateDir: string): ServiceTokenRecord[] {
  return readTokenFile(serviceTokensPath(stateDir)).tokens;
}

/** Revokes the token with this id (or unique id prefix, or name). */
export function revokeServiceToken(stateDir: string, which: string, now = new Date()): ServiceTokenRecord {
  const path = serviceTokensPath(stateDir);
  const f = readTokenFile(path);
  const live = f.tokens.filter((t) => !t.revokedAt);
  const byName = live.filter((t) => t.name === which);
  const byId = live.filter((t) => t.id.startsWith(which.replace(/^fmi_/, '')));
  const hits = byName.length ? byName : which.length >= 4 ? byId : [];
  if (hits.length === 0) throw new UsageError(`no live token with id or name "${which}" (see "fedmed edge token list")`);
  if (hits.length > 1) throw new UsageError(`"${which}" names ${hits.length} tokens; give more of the id`);
  hits[0].revokedAt = now.toISOString();
  writeTokenFile(path, f);
  return hits[0];
}

export type TokenCheck = { ok: true; role: ServiceRole; id: string; name: string } | { ok: false; reason: string };

/** Checks bearer tokens against the token file, re-reading it whenever it changes. */
export class ServiceTokens {
  private records = new Map<string, ServiceTokenRecord>();
  private seen = '';

  constructor(readonly path: string) {
    this.refresh();
  }

  static forStateDir(stateDir: string): ServiceTokens {
    return new ServiceTokens(serviceTokensPath(stateDir));
  }

  /** Number of live (unrevoked, unexpired) tokens. */
  live(now = Date.now()): number {
    this.refresh();
    return [...this.records.values()].filter((r) => !r.revokedAt && (!r.expiresAt || Date.parse(r.expiresAt) > now)).length;
  }

  /** `header`: the Authorization header's value. */
  check(header: string | undefined, now = Date.now()): TokenCheck {
    if (!header) return { ok: false, reason: 'an access token is required: send "Authorization: Bearer fmi_..." (fedmed edge token create)' };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const t = m ? TOKEN_RE.exec(m[1]) : null;
    if (!t) return { ok: false, reason: 'malformed access token' };
    this.refresh();
    const r = this.records.get(t[1]);
    const given = createHash('sha256').update(t[2]).digest();
    // Constant-time compare against the stored hash (or a dummy, so unknown ids take as long).
    const stored = r ? Buffer.from(r.sha256, 'hex') : Buffer.alloc(32);
    const equal = stored.length === 32 && timingSafeEqual(given, stored);
    if (!r || !equal) return { ok: false, reason: 'invalid access token' };
    if (r.revokedAt) return { ok: false, reason: 'this access token was revoked' };
    if (r.expiresAt && Date.parse(r.expiresAt) <= now) return { ok: false, reason: 'this access token has expired' };
    return { ok: true, role: r.role, id: r.id, name: r.name };
  }

  private refresh(): void {
    let key: string;
    try {
      const s = statSync(this.path);
      key = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      key = 'absent';
    }
    if (key === this.seen) return;
    try {
      this.records = new Map(readTokenFile(this.path).tokens.map((r) => [r.id, r]));
      this.seen = key;
    } catch {
      // A file being replaced or unreadable: no token passes until it reads again.
      this.records = new Map();
      this.seen = '';
    }
  }
}
