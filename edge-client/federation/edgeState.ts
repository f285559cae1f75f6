/**
 * An edge's state folder: its Ed25519 key (site-key.pem, 0600), its X25519 encryption key
 * (site-encryption-key.pem, 0600), what enrolment pinned (site.json: site name, coordinator
 * URL and public key), the last global model (models/<version>.fmp) and CKKS state (ckks/).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import { loadIdentity, publicKeyFromB64, type Identity } from '../../shared/secure/identity.js';
import type { KeyObject } from 'node:crypto';

export interface SiteConfig {
  site: string;
  coordinator: string;
  coordinatorPublicKey: string;
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

  load(): { config: SiteConfig; identity: Identity; coordinatorKey: KeyObject } {
    if (!this.isEnrolled()) throw new UsageError(`${this.dir}: this site is not enrolled; run "fedmed edge enroll --coordinator URL --token T --state-dir ${this.dir}" first`);
    const config = JSON.parse(readFileSync(this.configPath, 'utf8')) as SiteConfig;
    return { config, identity: loadIdentity(this.keyPath), coordinatorKey: publicKeyFromB64(config.coordinatorPublicKey) };
  }

  saveConfig(config: SiteConfig): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.configPath, Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
  }

  /** Keeps the latest global model on disk (and only that one). */
  saveGlobalModel(versionId: string, spec: ModelSpec, params: Float32Array): void {
    mkdirSync(this.modelDir, { recursive: true });
    saveParamsFile(join(this.modelDir, `${versionId}.fmp`), spec, params);
    for (const f of readdirSync(this.modelDir)) if (f.endsWith('.fmp') && f !== `${versionId}.fmp`) rmSync(join(this.modelDir, f), { force: true });
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
