/**
 * The edge's side of CKKS: fetches its wrapped copy of a key set's secret key once (kept
 * wrapped on disk, unwrapped in memory) and accepts it only with the federation admin's
 * signatures on the key set and on this very wrapped copy for this site's own encryption key
 * (a coordinator cannot slip in a key set of its own, under which it could decrypt the site's
 * updates); keeps its own decrypted copy of each CKKS
 * experiment's model and brings it up to the version a round names by applying the encrypted
 * aggregates since (every link checked against its version id), and encrypts its updates.
 * Nobody else can do this: the coordinator only ever holds ciphertexts.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { modelVersionId } from '../../shared/model/modelHash.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { CkksError } from '../../shared/secure/ckks/ckksErrors.js';
import { checkCkksParameters, type CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import { CkksSecretKey } from '../../shared/secure/ckks/ckksSecretKey.js';
import { applyEncryptedVersion, encodeCkksUpdate } from '../../shared/secure/ckks/ckksUpdate.js';
import { unwrapSecretKey } from '../../shared/secure/ckks/keyWrap.js';
import type { SiteEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { canonicalJson } from '../../shared/model/canonicalJson.js';
import type { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';

type Reply = { message: MessageOf<'ckks_key' | 'ckks_chain' | 'ckks_refused'>; payload: Buffer };

/** How long the edge waits for the coordinator to answer a key or chain request. */
const REPLY_TIMEOUT_MS = 120_000;

export class EdgeCkks {
  private readonly keys = new Map<string, Promise<CkksSecretKey>>();
  private readonly waiting = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** One model update at a time per experiment (a fit and an evaluation may ask together). */
  private readonly updating = new Map<string, Promise<unknown>>();

  constructor(
    private readonly dir: string,
    private readonly site: string,
    private readonly trust: FederationTrust,
    private readonly encryptionKey: () => SiteEncryptionKey,
    private readonly send: (m: Message) => Promise<void>,
  ) {}

  /** A reply from the coordinator (the payload is copied: it is only valid until the next message). */
  onReply(m: Reply['message'], payload: Buffer): void {
    // A refusal names the key set (key requests) or the experiment (chain requests).
    const key = m.type === 'ckks_key' ? `key:${m.keySet}` : m.type === 'ckks_chain' ? `chain:${m.experiment}` : `${m.request}:${m.id}`;
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    clearTimeout(w.timer);
    if (m.type === 'ckks_refused') w.reject(new CkksError(`the coordinator refused: ${m.reason}`));
    else w.resolve({ message: m, payload: Buffer.from(payload) });
  }

  /** The connection is gone: requests in flight fail (the round they serve is lost anyway). */
  disconnected(): void {
    for (const [k, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new CkksError('connection lost while waiting for the coordinator'));
      this.waiting.delete(k);
    }
  }

  private request(key: string, m: Message): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new CkksError(`the coordinator did not answer ${m.type} within ${REPLY_TIMEOUT_MS / 1000} s`));
      }, REPLY_TIMEOUT_MS);
      this.waiting.set(key, { resolve, reject, timer });
      this.send(m).catch((err: Error) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        reject(err);
      });
    });
  }

  /** The key set's secret key: from memory, else unwrapped from disk, else fetched. */
  secretKey(keySet: string): Promise<CkksSecretKey> {
    let k = this.keys.get(keySet);
    if (!k) {
      k = this.loadKey(keySet);
      this.keys.set(keySet, k);
      k.catch(() => this.keys.delete(keySet)); // retry on the next round
    }
    return k;
  }

  private async loadKey(keySet: string): Promise<CkksSecretKey> {
    const path = join(this.dir, 'keys', `${keySet}.fmkw`);
    const signedPath = join(this.dir, 'keys', `${keySet}.json`);
    let wrapped: Buffer;
    if (existsSync(path) && existsSync(signedPath)) {
      wrapped = readFileSync(path);
      // Checked again on every load: a key file swapped on disk is refused too.
      this.checkSigned(keySet, JSON.parse(readFileSync(signedPath, 'utf8')) as Pick<MessageOf<'ckks_key'>, 'certificate' | 'grant' | 'parameters'>, wrapped);
    } else {
      const { message, payload } = await this.request(`key:${keySet}`, { type: 'ckks_key_req', keySet });
      const m = message as MessageOf<'ckks_key'>;
      wrapped = payload;
      this.checkSigned(keySet, m, wrapped);
      // Check it opens before keeping it.
      unwrapSecretKey(wrapped, this.encryptionKey().privateKey, keySet, this.site).fill(0);
      mkdirSync(join(this.dir, 'keys'), { recursive: true, mode: 0o700 });
      writeFileAtomic(path, wrapped, 0o600);
      writeFileAtomic(signedPath, Buffer.from(JSON.stringify({ parameters: m.parameters, certificate: m.certificate, grant: m.grant })), 0o600);
    }
    const raw = unwrapSecretKey(wrapped, this.encryptionKey().privateKey, keySet, this.site);
    try {
      return await CkksSecretKey.load(raw);
    } finally {
      raw.fill(0);
    }
  }

  /** The admin signed this key set (with these parameters) and granted these wrapped bytes to this site's encryption key. */
  private checkSigned(keySet: string, m: Pick<MessageOf<'ckks_key'>, 'certificate' | 'grant' | 'parameters'>, wrapped: Uint8Array): void {
    try {
      const set = this.trust.keySet(m.certificate, keySet);
      if (canonicalJson(set.parameters) !== canonicalJson(m.parameters)) throw new CkksError(`the parameters sent for key set ${keySet} are not the ones the federation admin signed`);
      checkCkksParameters(set.parameters, `key set ${keySet}`);
      this.trust.keyGrant(m.grant, { keySet, site: this.site, encryptionKey: this.encryptionKey().publicB64, wrapped });
    } catch (err) {
      if (err instanceof TrustError) throw new CkksError(`CKKS key set ${keySet} refused: ${err.message}`);
      throw err;
    }
  }

  /**
   * Experiments this site stopped decrypting for: an "aggregate" that failed its checks after
   * decryption means the coordinator sent something that is not a sum of updates — possibly a
   * single site's ciphertext, shifted to probe it. Refusing from then on (kept in
   * STATE_DIR/ckks/refused.json, until the operator deletes the entry) leaves such a probe one
   * bit per experiment instead of a decryption oracle.
   */
  private refusedExperiments(): Record<string, string> {
    const f = join(this.dir, 'refused.json');
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>) : {};
  }

  private refuseExperiment(experiment: string, reason: string): void {
    const all = { ...this.refusedExperiments(), [experiment]: `${new Date().toISOString()}: ${reason}` };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dir, 'refused.json'), Buffer.from(JSON.stringify(all, null, 2)), 0o600);
  }

  /** This site's decrypted copy of `experiment`'s model at version `want`. */
  model(experiment: string, want: string, spec: ModelSpec, keySet: string): Promise<Float32Array> {
    const refused = this.refusedExperiments()[experiment];
    if (refused) return Promise.reject(new CkksError(`this site no longer decrypts for experiment ${experiment}: an aggregate failed its checks (${refused}); see STATE_DIR/ckks/refused.json`));
    const previous = this.updating.get(experiment) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.bringUpTo(experiment, want, spec, keySet));
    this.updating.set(experiment, next);
    return next;
  }

  private modelPath(experiment: string): { params: string; meta: string } {
    if (!/^[A-Za-z0-9._-]+$/.test(experiment)) throw new CkksError(`not an experiment id: ${experiment}`);
    return { params: join(this.dir, 'models', `${experiment}.fmp`), meta: join(this.dir, 'models', `${experiment}.json`) };
  }

  private async bringUpTo(experiment: string, want: string, spec: ModelSpec, keySet: string): Promise<Float32Array> {
    const paths = this.modelPath(experiment);
    let have: string | null = null;
    let params: Float32Array | null = null;
    if (existsSync(paths.meta) && existsSync(paths.params)) {
      have = (JSON.parse(readFileSync(paths.meta, 'utf8')) as { version: string }).version;
      params = loadParamsFile(paths.params, spec).params;
    }
    const size = layoutOf(spec).size;
    while (have !== want) {
      const { message, payload } = await this.request(`chain:${experiment}`, { type: 'ckks_fetch', experiment, have, want });
      const chain = message as MessageOf<'ckks_chain'>;
      let at = 0;
      if (chain.base === null) {
        if (chain.initialBytes !== size * 4) throw new CkksError(`the initial model has ${chain.initialBytes} bytes; the spec needs ${size * 4}`);
        params = new Float32Array(size);
        new Uint8Array(params.buffer).set(payload.subarray(0, chain.initialBytes));
        have = modelVersionId(spec, params);
        at = chain.initialBytes;
      } else if (chain.base !== have) throw new CkksError(`the coordinator sent a chain from ${chain.base}, but this site holds ${have}`);
      const key = chain.links.length > 0 ? await this.secretKey(keySet) : null;
      for (const link of chain.links) {
        const bytes = payload.subarray(at, at + link.bytes);
        at += link.bytes;
        if (bytes.byteLength !== link.bytes) throw new CkksError('the chain payload is shorter than its links');
        if (link.parent !== have) throw new CkksError(`chain link ${link.version} is not built on ${have}`);
        try {
          params = applyEncryptedVersion(key!, spec, params!, have, link.version, bytes);
        } catch (err) {
          this.refuseExperiment(experiment, `link ${link.version}: ${(err as Error).message}`);
          throw err;
        }
        have = link.version;
      }
      if (at !== payload.byteLength) throw new CkksError('the chain payload is longer than its links');
      // Every reply must get closer: one without links has to end where the edge wants to be.
      if (chain.links.length === 0 && have !== want) throw new CkksError(`the coordinator's chain ends at ${have}, not at ${want}`);
    }
    mkdirSync(join(this.dir, 'models'), { recursive: true, mode: 0o700 });
    saveParamsFile(paths.params, spec, params!);
    writeFileAtomic(paths.meta, Buffer.from(JSON.stringify({ version: want })));
    return params!;
  }

  /** Encrypts [w * clip(delta), w] with the round's key set. */
  async encryptUpdate(delta: Float32Array, numExamples: number, p: CkksRoundParams): Promise<{ payload: Uint8Array; clipped: number }> {
    const key = await this.secretKey(p.keySet);
    const { values, clipped } = encodeCkksUpdate(delta, numExamples, p);
    return { payload: key.encrypt(values), clipped };
  }

  close(): void {
    this.disconnected();
    for (const k of this.keys.values()) void k.then((key) => key.dispose(), () => {});
    this.keys.clear();
  }
}
