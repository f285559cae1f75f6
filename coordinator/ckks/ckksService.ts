/**
 * The coordinator's side of CKKS outside the rounds: hands a site its wrapped secret key with
 * the admin's signatures (`ckks_key_req`), and serves the chain of encrypted aggregates an edge
 * needs to bring its copy of a model up to a version (`ckks_fetch`). It serves ciphertexts and
 * the public initial model only. (Sites' encryption keys are registered at enrolment and
 * certified by the admin.)
 */
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { float32Bytes } from '../../shared/model/modelHash.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { VersionRecord } from '../store/storeSchema.js';
import type { CkksKeySets } from './ckksKeySets.js';

type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void };

/** A chain reply stops adding links past this many bytes (the edge asks again for the rest). */
export const CHAIN_REPLY_BYTES = 256 * 1024 * 1024;

export class CkksService {
  constructor(
    private readonly store: CoordinatorStore,
    private readonly keySets: CkksKeySets,
    private readonly gateway: EdgeGateway,
    private readonly log: Log,
    private readonly chainReplyBytes = CHAIN_REPLY_BYTES,
  ) {}

  onMessage(site: string, m: Message): void {
    if (m.type === 'ckks_key_req') return void this.sendKey(site, m);
    if (m.type === 'ckks_fetch') return void this.sendChain(site, m).catch((err: Error) => this.refuse(site, 'chain', m.experiment, `could not read the chain: ${err.message}`));
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unexpected ${m.type} message from an edge`);
  }

  private refuse(site: string, request: 'key' | 'chain', id: string, reason: string): void {
    this.log.warn({ site, request, id, reason }, 'CKKS request refused');
    void this.gateway.send(site, { type: 'ckks_refused', request, id, reason }).catch(() => {});
  }

  private sendKey(site: string, m: MessageOf<'ckks_key_req'>): void {
    const set = this.keySets.find(m.keySet);
    if (!set) return this.refuse(site, 'key', m.keySet, `no CKKS key set ${m.keySet}`);
    const wrapped = this.store.loadWrappedKey(m.keySet, site);
    const grant = set.sites.find((g) => g.site === site)?.grant;
    if (!wrapped || !grant) return this.refuse(site, 'key', m.keySet, `key set ${m.keySet} has no key for site "${site}"; the federation admin must run "fedmed federation keys grant"`);
    void this.gateway.send(site, { type: 'ckks_key', keySet: set.id, parameters: set.parameters, certificate: set.certificate, grant }, wrapped).catch((err: Error) => this.log.warn({ site, err: err.message }, 'could not send the wrapped key'));
  }

  /**
   * The links from the version the edge has (or from the initial model) to `want`, oldest
   * first, cut after `chainReplyBytes`.
   */
  private async sendChain(site: string, m: MessageOf<'ckks_fetch'>): Promise<void> {
    const exp = this.store.data.experiments.find((e) => e.id === m.experiment);
    if (!exp || (exp.config.security ?? 'plain') !== 'ckks') return this.refuse(site, 'chain', m.experiment, `no CKKS experiment ${m.experiment}`);
    // Versions of this experiment only, looked up by id along the parent links.
    const byId = async (id: string) => {
      const v = await this.store.version(id);
      return v?.experiment === exp.id ? v : undefined;
    };
    const path: VersionRecord[] = [];
    const wanted = await byId(m.want);
    if (!wanted) return this.refuse(site, 'chain', m.experiment, `experiment ${exp.id} has no version ${m.want}`);
    let v: VersionRecord = wanted;
    while (v.encrypted && v.id !== m.have) {
      path.push(v);
      const parent: VersionRecord | undefined = v.parent ? await byId(v.parent) : undefined;
      if (!parent) return this.refuse(site, 'chain', m.experiment, `version ${v.id} has lost its parent ${v.parent}`);
      v = parent;
    }
    const fromInitial = v.id !== m.have;
    path.reverse();
    const parts: Uint8Array[] = [];
    let initialBytes = 0;
    if (fromInitial) {
      const initial = float32Bytes(this.store.loadParams(v.id, exp.spec));
      parts.push(initial);
      initialBytes = initial.byteLength;
    }
    const links: { version: string; parent: string; bytes: number }[] = [];
    let total = initialBytes;
    for (const link of path) {
      if (links.length > 0 && total + link.encrypted!.bytes > this.chainReplyBytes) break;
      const bytes = this.store.loadEncryptedVersion(link.id);
      parts.push(bytes);
      links.push({ version: link.id, parent: link.parent!, bytes: bytes.byteLength });
      total += bytes.byteLength;
    }
    const want = links.length > 0 ? links[links.length - 1].version : v.id;
    const payload = Buffer.concat(parts);
    void this.gateway.send(site, { type: 'ckks_chain', experiment: exp.id, want, base: fromInitial ? null : v.id, initialBytes, links }, payload).catch((err: Error) => this.log.warn({ site, err: err.message }, 'could not send the CKKS chain'));
  }
}
