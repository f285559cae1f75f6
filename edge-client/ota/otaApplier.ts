/**
 * The edge's OTA applier: takes the coordinator's `model_offer`, verifies the manifest's
 * signature with the coordinator key the federation admin certified (against the admin key
 * this site pinned), refuses a release older than the one it runs (no downgrade unless the
 * site's own operator rolls back), fetches the update against a version this edge already
 * holds (resuming a cut download from the bytes it has) — refusing, before writing a byte, an
 * update whose signed length exceeds what the model's size allows —, rebuilds the params,
 * checks them against the signed manifest, stores the version and hands it to `install` (the
 * inference service's hot swap, which may refuse it). Anything unsigned, mis-signed, corrupted,
 * older or mismatching is refused with the reason reported to the coordinator; the current
 * model stays.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { errorMessage } from '../../shared/errors.js';
import { decodeModelUpdate, maxUpdateBytes } from '../../shared/model/modelUpdate.js';
import { parseModelSpec, type ModelSpec } from '../../shared/model/modelSpec.js';
import { specHash } from '../../shared/model/modelHash.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { checkModelAgainstManifest, verifyManifestSignature, verifyUpdate, type SignedManifest } from '../../shared/model/versionManifest.js';
import type { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import type { Message, MessageOf, ModelStatus } from '../../shared/protocol/messages.js';
import { LocalAccuracyError } from '../inference/modelCheckError.js';
import type { StoredVersion, VersionStore } from './versionStore.js';

/** A model this edge holds that an update may be a delta against. */
export interface BaseModel {
  id: string;
  spec: ModelSpec;
  params: Float32Array;
}

export interface OtaApplierOptions {
  store: VersionStore;
  /** The admin key this site pinned: manifests must be signed by a coordinator key it certified. */
  trust: FederationTrust;
  /** The certified key of the coordinator of the current session (signs each update's length and hash). */
  sessionKey: () => KeyObject | null;
  send: (m: Message) => Promise<void>;
  /**
   * Makes a verified version live (hot swap); throws to refuse it. `how`: offered by the
   * coordinator, or chosen by the site's operator (a rollback or an activation by hand).
   */
  install: (v: StoredVersion, how: 'offer' | 'local') => Promise<void>;
  /** Why an offered version must wait for the site's operator (policy: manual deployment), or null. */
  hold?: () => string | null;
  /** The version actually serving (default: the store's active one). */
  serving?: () => string | null;
  /** Other models this edge holds (e.g. the last global model from training) usable as a base. */
  otherBases?: () => BaseModel[];
  log: (event: string, detail?: Record<string, unknown>) => void;
  /** OTA payload bytes received (for metrics). */
  onBytes?: (n: number) => void;
}

interface Download {
  offer: SignedManifest & { spec: ModelSpec };
  base: BaseModel | null;
}

export class OtaApplier {
  private download: Download | null = null;
  /** Serialises installs (an offer arriving during a swap waits for it). */
  private installing: Promise<void> = Promise.resolve();

  constructor(private readonly o: OtaApplierOptions) {}

  /** The version being downloaded, if any. */
  get downloading(): string | null {
    return this.download?.offer.manifest.id ?? null;
  }

  onOffer(m: MessageOf<'model_offer'>): void {
    const id = m.manifest.id;
    const signed: SignedManifest = { manifest: m.manifest, signature: m.signature, certificate: m.certificate };
    this.o.log('ota_offered', { version: id, release: m.manifest.release });
    let spec: ModelSpec;
    try {
      verifyManifestSignature(this.o.trust, signed);
      spec = parseModelSpec(m.spec, `spec of offered version ${id.slice(0, 12)}`);
      if (specHash(spec) !== m.manifest.specHash) throw new Error(`the offered spec does not match the signed manifest's specHash`);
    } catch (err) {
      return this.refuse(id, errorMessage(err), false);
    }
    const store = this.o.store;
    // Anti-downgrade: never an older release than the one running (only the site's own rollback goes back).
    const running = store.activeRelease();
    if (running && m.manifest.release < running.release) {
      return this.refuse(id, `release ${m.manifest.release} is older than release ${running.release} (version ${running.id.slice(0, 12)}…) that this site runs: a downgrade is refused (a local "fedmed edge rollback" can go back)`, false);
    }
    if (store.active === id) {
      // The same model released again (a promotion, a canary's rollback, a re-signature after a
      // key rotation): keep the newer manifest; and if it does not serve (its old manifest no
      // longer verified at start), install it now from the stored params under this one.
      const servingNow = (this.o.serving ?? (() => store.active))();
      if (servingNow !== id) {
        this.download = null;
        return this.enqueueInstall(id, () => {
          store.putManifest(signed);
          return store.load(id);
        });
      }
      if (running && m.manifest.release > running.release) store.putManifest(signed);
      return this.report(id, 'active');
    }
    const refused = store.refusal(id);
    if (refused) return this.report(id, refused === 'rolled back by hand' ? 'rolled_back' : 'refused', `not re-installed: ${refused}`);
    if (store.has(id)) {
      this.download = null;
      return this.enqueueInstall(id, () => {
        store.putManifest(signed); // installed under the release it is offered at now
        return store.load(id);
      });
    }
    const base = this.pickBase(spec);
    this.download = { offer: { ...signed, spec }, base };
    const partial = store.partial();
    let resume = partial && partial.version === id && partial.base === (base?.id ?? null) ? partial.bytes : 0;
    if (resume && resume >= partial!.totalBytes) {
      // Every byte arrived before a crash stopped the edge short of finishing the download: there
      // is nothing left to fetch (a fetch from the end would get no chunk, and the download would
      // hang). Finished from disk if the bytes hash as the signed update does; else fetched anew.
      const bytes = resume === partial!.totalBytes ? store.readPartial() : null;
      if (bytes && createHash('sha256').update(bytes).digest('hex') === partial!.sha256) {
        this.o.log('ota_resumed_complete', { version: id, bytes: bytes.length });
        this.report(id, 'downloading');
        return this.complete(this.download, id, bytes, partial!.sha256, base?.id ?? null);
      }
      resume = 0;
    }
    if (!resume) store.dropPartial();
    this.o.log('ota_fetch', { version: id, base: base?.id ?? null, offset: resume });
    this.report(id, 'downloading');
    void this.o.send({ type: 'model_fetch', version: id, base: base?.id ?? null, offset: resume }).catch(() => {});
  }

  onChunk(m: MessageOf<'model_chunk'>, payload: Buffer): void {
    const d = this.download;
    if (!d || d.offer.manifest.id !== m.version) return; // superseded by a newer offer
    const store = this.o.store;
    let partial = store.partial();
    const fresh = !partial || partial.version !== m.version || partial.sha256 !== m.sha256 || partial.totalBytes !== m.totalBytes;
    if (fresh) {
      // The update's length and hash, signed by the session's certified coordinator key, and
      // within what a model of this size can take, before a byte is written.
      const key = this.o.sessionKey();
      if (!key || !verifyUpdate(key, { version: m.version, base: m.base, totalBytes: m.totalBytes, sha256: m.sha256 }, m.signature)) {
        return this.failDownload(m.version, 'the update\'s length and hash are not signed by the certified coordinator key');
      }
      const limit = maxUpdateBytes(layoutOf(d.offer.spec).size);
      if (m.totalBytes > limit) return this.failDownload(m.version, `the update announces ${m.totalBytes} bytes; a model of ${layoutOf(d.offer.spec).size} parameters needs at most ${limit}: refused before writing anything`);
      if (m.offset !== 0) {
        // The update changed since our partial was written (or we have none): start over.
        store.dropPartial();
        void this.o.send({ type: 'model_fetch', version: m.version, base: d.base?.id ?? null, offset: 0 }).catch(() => {});
        return;
      }
      // Keyed by the base this edge asked for (the coordinator may answer with a full model).
      store.startPartial({ version: m.version, base: d.base?.id ?? null, sha256: m.sha256, totalBytes: m.totalBytes });
      partial = store.partial()!;
    }
    if (m.offset !== partial!.bytes) return void this.o.log('ota_chunk_ignored', { version: m.version, offset: m.offset, have: partial!.bytes });
    if (m.offset + payload.length > m.totalBytes) return this.failDownload(m.version, `chunk at ${m.offset} of ${payload.length} bytes runs past the update's ${m.totalBytes} bytes`);
    store.appendPartial(payload);
    this.o.onBytes?.(payload.length);
    if (m.offset + payload.length < m.totalBytes) return;
    this.complete(d, m.version, store.readPartial(), m.sha256, m.base);
  }

  /** A download's bytes are all there: checked against the signed hash, then rebuilt, verified, stored and installed. */
  private complete(d: Download, version: string, bytes: Buffer, sha256: string, base: string | null): void {
    this.o.store.dropPartial();
    this.download = null;
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== sha256) return this.failDownload(version, `update bytes hash ${sha.slice(0, 12)}… differ from the announced ${sha256.slice(0, 12)}… (corrupted or truncated chunks)`);
    this.o.log('ota_downloaded', { version, base, bytes: bytes.length });
    this.enqueueInstall(version, () => this.rebuild(d, bytes, base));
  }

  /**
   * After `fedmed edge rollback` or `activate` changed the active version on disk: makes that
   * version live and tells the coordinator (the abandoned one was rolled back, if it was).
   */
  applyLocalRollback(servingNow: () => string | null): void {
    this.installing = this.installing.then(async () => {
      const target = this.o.store.active;
      const serving = servingNow();
      if (!target || target === serving) return;
      try {
        await this.o.install(this.o.store.load(target), 'local');
      } catch (err) {
        return void this.o.log('rollback_failed', { version: target, reason: errorMessage(err) });
      }
      const abandoned = serving ? this.o.store.refusal(serving) : undefined; // set by a rollback, not by an activation
      this.o.log(abandoned ? 'ota_rolled_back' : 'ota_activated_by_hand', { from: serving, to: target });
      if (serving && abandoned) this.report(serving, 'rolled_back', abandoned);
      this.report(target, 'active');
    });
  }

  /** Decodes the update against its base and checks the result against the signed manifest. */
  private rebuild(d: Download, bytes: Buffer, base: string | null): StoredVersion {
    if (base !== null && base !== d.base?.id) throw new Error(`the update is a delta against ${base.slice(0, 12)}…, a version this edge did not ask for`);
    const { params } = decodeModelUpdate(bytes, base ? d.base!.params : null, layoutOf(d.offer.spec).size);
    checkModelAgainstManifest(d.offer.manifest, d.offer.spec, params);
    const v = { signed: { manifest: d.offer.manifest, signature: d.offer.signature, certificate: d.offer.certificate }, spec: d.offer.spec, params };
    this.o.store.put(v);
    return v;
  }

  private enqueueInstall(id: string, get: () => StoredVersion): void {
    this.installing = this.installing.then(async () => {
      let v: StoredVersion;
      try {
        v = get();
      } catch (err) {
        return this.refuse(id, errorMessage(err), true);
      }
      const held = this.o.hold?.() ?? null;
      if (held) {
        // Stored and verified; it serves when the operator says so ("fedmed edge activate").
        this.o.log('ota_held', { version: id, reason: held });
        return this.report(id, 'held', held);
      }
      try {
        await this.o.install(v, 'offer');
      } catch (err) {
        return this.refuse(id, `failed its checks: ${errorMessage(err)}`, true, err instanceof LocalAccuracyError ? `failed its checks: ${err.publicReason}` : undefined);
      }
      this.o.store.setActive(id, v.signed.manifest.release);
      this.o.log('ota_active', { version: id });
      this.report(id, 'active');
    });
  }

  private failDownload(version: string, reason: string): void {
    this.o.store.dropPartial();
    this.download = null;
    this.refuse(version, reason, false);
  }

  /** Refuses a version: the current model keeps serving. `remember`: do not try it again. `shown`: what the coordinator is told, if not the reason. */
  private refuse(version: string, reason: string, remember: boolean, shown = reason): void {
    if (remember && /^[0-9a-f]{64}$/.test(version)) this.o.store.refuse(version, shown); // (re-offers are answered with it)
    this.o.log('ota_refused', { version, reason });
    this.report(version, 'refused', shown);
  }

  private report(version: string, status: ModelStatus, reason?: string): void {
    if (!/^[0-9a-f]{64}$/.test(version)) return;
    void this.o.send({ type: 'model_status', version, status, ...(reason ? { reason: reason.slice(0, 2000) } : {}) }).catch(() => {});
  }

  /** The best base for a delta: the active version, else another held model of the same spec. */
  private pickBase(spec: ModelSpec): BaseModel | null {
    const hash = specHash(spec);
    const store = this.o.store;
    const candidates: (() => BaseModel | null)[] = [
      () => {
        const id = store.active;
        if (!id) return null;
        const v = store.load(id);
        return { id, spec: v.spec, params: v.params };
      },
      ...(this.o.otherBases?.() ?? []).map((b) => () => b),
    ];
    for (const c of candidates) {
      try {
        const b = c();
        if (b && specHash(b.spec) === hash) return b;
      } catch {
        // an unreadable stored version is simply not a base
      }
    }
    return null;
  }
}
