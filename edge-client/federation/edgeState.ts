/**
 * An edge's state folder: its Ed25519 key (site-key.pem, 0600), its X25519 encryption key
 * (site-encryption-key.pem, 0600), what enrolment pinned (site.json: site name, coordinator
 * URL, the federation admin's public key), the newest revocation list (trust/), the last
 * global model (models/<version>.fmp) and CKKS state (ckks/).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import { loadIdentity, publicKeyFromB64, type Identity } from '../../shared/secure/identity.js';
import { isStaleTempFile } from '../ota/versionStore.js';
import { EdgeTrust } from './edgeTrust.js';

export const SITE_CONFIG_FORMAT = 'fedmed.site/2';

export interface SiteConfig {
  format: typeof SITE_CONFIG_FORMAT;
  site: string;
  coordinator: string;
  /** The federation admin's Ed25519 public key (base64url), pinned at enrolment from the join token's fingerprint. */
  adminPublicKey: string;
  /** The operator allowed plain http/ws to a non-loopback coordinator at enrolment. */
  insecureTransport?: boolean;
  enrolledAt: string;
}

export class EdgeState {
  constructor(
    readonly dir: string,
    readonly modelDir = join(dir, 'models'),
  ) {}

  get keyPath(): string {
    return join(this.dir, 'site-key.pem');
  }

  /** X25519 key the site receives wrapped secrets with (CKKS keys). */
  get encryptionKeyPath(): string {
    return join(this.dir, 'site-encryption-key.pem');
  }

  /** CKKS: wrapped secret keys and this site's decrypted copies of encrypted models. */
  get ckksDir(): string {
    return join(this.dir, 'ckks');
  }

  get configPath(): string {
    return join(this.dir, 'site.json');
  }

  isEnrolled(): boolean {
    return existsSync(this.configPath) && existsSync(this.keyPath);
  }

  load(): { config: SiteConfig; identity: Identity } {
    if (!this.isEnrolled()) throw new UsageError(`${this.dir}: this site is not enrolled; run "fedmed edge enroll --coordinator URL --token T --state-dir ${this.dir}" first`);
    const config = JSON.parse(readFileSync(this.configPath, 'utf8')) as SiteConfig;
    if (config.format !== SITE_CONFIG_FORMAT || typeof config.adminPublicKey !== 'string') {
      throw new UsageError(`${this.configPath} was written before federation certificates (it pins a coordinator key, not the federation admin key); enrol this site again with a new join token`);
    }
    publicKeyFromB64(config.adminPublicKey);
    return { config, identity: loadIdentity(this.keyPath) };
  }

  /** The admin key this site pinned and the revocation list it holds. */
  trust(): EdgeTrust {
    return new EdgeTrust(this.dir, this.load().config.adminPublicKey);
  }

  saveConfig(config: SiteConfig): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.configPath, Buffer.from(`${JSON.stringify(config, null, 2)}\n`), 0o600);
  }

  /** Keeps the latest global model on disk (and only that one). */
  saveGlobalModel(versionId: string, spec: ModelSpec, params: Float32Array): void {
    mkdirSync(this.modelDir, { recursive: true, mode: 0o700 });
    saveParamsFile(join(this.modelDir, `${versionId}.fmp`), spec, params);
    for (const f of readdirSync(this.modelDir)) if (f.endsWith('.fmp') && f !== `${versionId}.fmp`) rmSync(join(this.modelDir, f), { force: true });
  }

  /**
   * At the edge's start: removes the temporary files of atomic writes a crash cut short (in the
   * state dir and the model cache; never read as state, see shared/atomicFile.ts). Returns their names.
   */
  removeStaleTempFiles(): string[] {
    const removed: string[] = [];
    for (const dir of [this.dir, this.modelDir]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (!isStaleTempFile(f)) continue;
        rmSync(join(dir, f), { force: true });
        removed.push(dir === this.dir ? f : join('models', f));
      }
    }
    return removed;
  }

  /** The latest global model on disk, if any. */
  lastGlobalModel(): { versionId: string; spec: ModelSpec; params: Float32Array } | null {
    if (!existsSync(this.modelDir)) return null;
    const f = readdirSync(this.modelDir).find((x) => /^[0-9a-f]{64}\.fmp$/.test(x));
    if (!f) return null;
    const { spec, params } = loadParamsFile(join(this.modelDir, f));
    return { versionId: f.slice(0, 64), spec, params };
  }
}
