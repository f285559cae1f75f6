/**
 * The OTA publisher: offers each site the version its inference service should run (on connect
 * and whenever its deployment target changes) with the coordinator-signed manifest of that
 * release and the coordinator's admin-signed certificate, and serves
 * the site's fetch as a lossless update against the version the site already holds — only if that
 * version was offered to it — (or the full model when that is smaller), in chunks from the byte offset the site asks for, so a download
 * cut by a lost connection resumes where it stopped. Updates are deterministic, so a resumed
 * fetch gets the same bytes; recent ones are cached. Every chunk names the update's exact length
 * and hash under the coordinator's signature, so an edge can refuse bytes beyond them before it
 * writes any.
 */
import { createHash } from 'node:crypto';
import { encodeModelUpdate, readUpdateHeader } from '../../shared/model/modelUpdate.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { signManifest, signUpdate, type SignedManifest } from '../../shared/model/versionManifest.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { VersionRecord } from '../store/storeSchema.js';
import type { Deployment } from './deployment.js';

type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void };

export const DEFAULT_OTA_CHUNK_BYTES = 256 * 1024;
const CACHE_ENTRIES = 8;

interface EncodedUpdate {
  bytes: Buffer;
  sha256: string;
  /** The base the update is against (null: a full model). */
  base: string | null;
  /** The coordinator's signature over (version, base, length, sha256). */
  signature: string;
}

export class OtaPublisher {
  private readonly cache = new Map<string, EncodedUpdate>();
  private readonly signing = new Map<string, Promise<SignedManifest>>();
  /** The fetch each site is being served (a newer fetch or offer supersedes it). */
  private readonly serving = new Map<string, { version: string; cancelled: boolean }>();
  /** OTA bytes sent per site since start (payload bytes of model_chunk frames). */
  readonly bytesSent = new Map<string, number>();
  /** Told when a site was sent a whole model update (metrics; must not throw). */
  onDelivered: (site: string, version: string, bytes: number) => void = () => {};

  constructor(
    private readonly store: CoordinatorStore,
    private readonly gateway: EdgeGateway,
    private readonly federation: CoordinatorFederation,
    private readonly deployment: Deployment,
    private readonly log: Log,
    private readonly chunkBytes = DEFAULT_OTA_CHUNK_BYTES,
  ) {}

  /**
   * The version's manifest signed for `release`, made (and persisted) when first needed; made
   * again with the current key after a key rotation.
   */
  signedManifest(versionId: string, release: number): Promise<SignedManifest> {
    // Offers to many sites at once share one signing (and one manifest, one releasedAt).
    const key = `${versionId}:${release}:${this.federation.certificate?.body.serial ?? '-'}`;
    let signing = this.signing.get(key);
    if (!signing) {
      signing = this.sign(versionId, release).finally(() => this.signing.delete(key));
      this.signing.set(key, signing);
    }
    return signing;
  }

  private async sign(versionId: string, release: number): Promise<SignedManifest> {
    const v = await this.version(versionId);
    const certificate = this.federation.certificate;
    if (!certificate) throw new Error('this coordinator is not certified by the federation admin: it signs no manifests');
    if (v.signed && v.signed.manifest.release === release && v.signed.certificate?.body.serial === certificate.body.serial) return v.signed;
    if (v.paramsSha256 === null) throw new Error(`version ${v.id} is encrypted (CKKS) and cannot be signed by the coordinator`);
    const published = await this.store.roundOfVersion(v.id);
    const round = published?.experiment === v.experiment ? published : null;
    const m = round?.evalMetrics ?? round?.fitMetrics;
    const metrics: Record<string, number> = {};
    if (m) for (const [k, x] of Object.entries(m)) if (typeof x === 'number' && Number.isFinite(x)) metrics[k] = x;
    const releasedAt = v.signed?.manifest.release === release ? v.signed.manifest.releasedAt : new Date().toISOString();
    const signed = signManifest(this.federation.signingKey, certificate, { id: v.id, parent: v.parent, experiment: v.experiment, round: v.round, specHash: v.specHash, paramsSha256: v.paramsSha256, metrics, createdAt: v.createdAt, release, releasedAt });
    v.signed = signed;
    await this.store.writeHistory({ versions: [v] });
    return signed;
  }

  /** Offers the given sites (default: all online) their deployment target. */
  offer(sites: string[] = this.gateway.readySites()): void {
    for (const site of sites) {
      const target = this.deployment.releaseFor(site);
      if (!target || !this.gateway.isOnline(site)) continue;
      void this.signedManifest(target.version, target.release)
        .then(async (signed) => {
          await this.deployment.noteOffered(site, target.version);
          await this.gateway.send(site, { type: 'model_offer', ...signed, spec: this.specOf(await this.version(target.version)) });
        })
        .catch((err: Error) => this.log.warn({ site, version: target.version, err: err.message }, 'model offer failed'));
    }
  }

  onConnect(site: string): void {
    this.offer([site]);
  }

  onDisconnect(site: string): void {
    const s = this.serving.get(site);
    if (s) s.cancelled = true;
  }

  onMessage(site: string, m: Message): void {
    if (m.type === 'model_fetch') return void this.serve(site, m).catch((err: Error) => this.log.warn({ site, version: m.version, err: err.message }, 'model update not sent'));
    if (m.type === 'model_status') {
      const log = m.status === 'refused' || m.status === 'rolled_back' ? this.log.warn.bind(this.log) : this.log.info.bind(this.log);
      log({ site, version: m.version, status: m.status, reason: m.reason }, `site model ${m.status}`);
      return void this.deployment.report(site, m);
    }
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unexpected ${m.type} message from an edge`);
  }

  /** The update from `base` to `version` (cached; deterministic, so a resumed fetch gets the same bytes). */
  async update(version: string, base: string | null): Promise<EncodedUpdate> {
    // (signed with the current key: after a rotation the cached signatures are stale)
    const key = `${this.federation.certificate?.body.serial ?? '-'}:${base ?? '-'}>${version}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit); // most recently used last
      return hit;
    }
    const target = await this.version(version);
    const targetParams = this.store.loadParams(version, this.specOf(target));
    const b = base ? await this.store.version(base) : null;
    // A delta only against a version of the same model (and one the coordinator still has).
    const baseParams = b && b.specHash === target.specHash ? this.store.loadParams(b.id, this.specOf(b)) : null;
    const bytes = encodeModelUpdate(targetParams, baseParams, { codec: 'deflate', targetSha256: target.paramsSha256 ?? undefined, baseSha256: b?.paramsSha256 ?? undefined });
    const isDelta = readUpdateHeader(bytes).header.kind === 'delta';
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const updateBase = isDelta ? b!.id : null;
    const encoded = { bytes, sha256, base: updateBase, signature: signUpdate(this.federation.signingKey, { version, base: updateBase, totalBytes: bytes.length, sha256 }) };
    this.cache.set(key, encoded);
    if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return encoded;
  }

  private async serve(site: string, m: MessageOf<'model_fetch'>): Promise<void> {
    const target = this.deployment.targetFor(site);
    if (m.version !== target) {
      // A fetch for a version the site is no longer meant to run: offer the current target.
      this.log.info({ site, asked: m.version, target }, 'model fetch for a superseded version; re-offering');
      return this.offer([site]);
    }
    const previous = this.serving.get(site);
    if (previous) previous.cancelled = true;
    const job = { version: m.version, cancelled: false };
    this.serving.set(site, job);
    // A delta only against a version this site was offered: a delta against any other version
    // would let it reconstruct a model it was never sent (target − delta). Otherwise the full model.
    const base = m.base !== null && this.deployment.wasOffered(site, m.base) ? m.base : null;
    if (m.base !== null && base === null) this.log.warn({ site, version: m.version, base: m.base }, 'model fetch against a version never offered to this site: sending the full model');
    const u = await this.update(m.version, base);
    if (m.offset > u.bytes.length) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `model_fetch offset ${m.offset} beyond the update's ${u.bytes.length} bytes`);
    this.log.info({ site, version: m.version, base: u.base, offset: m.offset, totalBytes: u.bytes.length }, m.offset > 0 ? 'model update resumed' : 'model update sending');
    for (let offset = m.offset; offset < u.bytes.length && !job.cancelled; offset += this.chunkBytes) {
      const chunk = u.bytes.subarray(offset, Math.min(offset + this.chunkBytes, u.bytes.length));
      await this.gateway.send(site, { type: 'model_chunk', version: m.version, base: u.base, offset, totalBytes: u.bytes.length, sha256: u.sha256, signature: u.signature }, chunk);
      this.bytesSent.set(site, (this.bytesSent.get(site) ?? 0) + chunk.length);
    }
    if (this.serving.get(site) === job) this.serving.delete(site);
    if (!job.cancelled) this.onDelivered(site, m.version, u.bytes.length - m.offset);
  }

  private async version(id: string): Promise<VersionRecord> {
    const v = await this.store.version(id);
    if (!v) throw new Error(`unknown model version ${id}`);
    return v;
  }

  private specOf(v: VersionRecord): ModelSpec {
    const exp = this.store.data.experiments.find((e) => e.id === v.experiment);
    if (!exp) throw new Error(`version ${v.id} belongs to an unknown experiment ${v.experiment}`);
    return exp.spec;
  }
}
