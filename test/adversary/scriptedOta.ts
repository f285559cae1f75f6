/**
 * Model OTA as the scripted coordinator does it for one site: signed manifests of the test
 * model, offers, the honest update for each fetch (or whatever a test puts in `answer`), and
 * the statuses the site reports. Tests deviate from it by replacing `answer` or the manifest.
 */
import { createHash } from 'node:crypto';
import { modelVersionId, paramsSha256, specHash } from '../../shared/model/modelHash.js';
import { encodeModelUpdate, readUpdateHeader } from '../../shared/model/modelUpdate.js';
import { signManifest, signUpdate, type SignedManifest, type VersionManifest } from '../../shared/model/versionManifest.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import type { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { waitFor } from '../helpers/federation.js';
import { SPEC } from './harness.js';

export class ScriptedOta {
  readonly params = new Map<string, Float32Array>();
  private release = 0;
  /** How the next model_fetch is answered (null: the honest update). */
  answer: ((m: MessageOf<'model_fetch'>) => Promise<void>) | null = null;

  constructor(
    private readonly fake: FakeCoordinator,
    private readonly site = 'hosp',
  ) {
    fake.onMessage = (m) => {
      if (m.type === 'model_fetch') void (this.answer ?? ((x) => this.honestUpdate(x)))(m);
    };
  }

  /** The manifest of `p` (release: the next one, or as given), unsigned. */
  body(p: Float32Array, release = ++this.release): VersionManifest {
    const id = modelVersionId(SPEC, p);
    this.params.set(id, p);
    const now = new Date().toISOString();
    return { id, parent: null, experiment: 'exp', round: 1, specHash: specHash(SPEC), paramsSha256: paramsSha256(p), metrics: {}, createdAt: now, release, releasedAt: now };
  }

  /** Signed with the coordinator's current key and certificate. */
  sign(m: VersionManifest): SignedManifest {
    return signManifest(this.fake.identity.privateKey, this.fake.certificate, m);
  }

  manifest(p: Float32Array, o: { release?: number } = {}): SignedManifest {
    return this.sign(this.body(p, o.release));
  }

  offer(s: SignedManifest): Promise<void> {
    return this.fake.sendTo(this.site, { type: 'model_offer', ...s, spec: SPEC });
  }

  /** The n-th status other than `downloading` the site reported for a version (default: the latest one, once there is one). */
  status(version: string, n?: number): Promise<MessageOf<'model_status'>> {
    return waitFor(`a status for ${version.slice(0, 8)}`, () => {
      const all = this.fake.of('model_status', this.site).filter((s) => s.version === version && s.status !== 'downloading');
      return n === undefined ? all.at(-1) : all[n - 1];
    }, 30_000, 20);
  }

  async honestUpdate(m: MessageOf<'model_fetch'>): Promise<void> {
    const bytes = encodeModelUpdate(this.params.get(m.version)!, m.base ? (this.params.get(m.base) ?? null) : null);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const base = readUpdateHeader(bytes).header.kind === 'delta' ? m.base : null;
    await this.fake.sendTo(this.site, { type: 'model_chunk', version: m.version, base, offset: 0, totalBytes: bytes.length, sha256, signature: signUpdate(this.fake.identity.privateKey, { version: m.version, base, totalBytes: bytes.length, sha256 }) }, bytes);
  }
}

/**
 * Another version of the same model (one weight nudged by 1e-6: another id, the same
 * predictions): it passes the site's relative accuracy floor (site policy
 * deployment.maxAccuracyDrop, 0.05 by default), which random initialisations need not.
 */
export function sibling(p: Float32Array, k = 0): Float32Array {
  const out = p.slice();
  out[k] += 1e-6;
  return out;
}

/** The version the site's inference service says it serves. */
export async function servingVersion(port: number): Promise<string | null> {
  return ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { version: string | null }).version;
}
