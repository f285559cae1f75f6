/**
 * A whole SecAgg+ round with every site in this process and messages passed as objects: the
 * same client and server halves the coordinator and edges run, without sockets. Used by the
 * benchmark (N = 100 sites) and by tests that need to inject dropouts or tampering at a precise
 * point; a large-scale simulation can use it as its in-memory transport.
 */
import type { KeyObject } from 'node:crypto';
import type { MessageOf } from '../../protocol/messages.js';
import type { SiteCertificate } from '../trust/certificates.js';
import type { FederationTrust } from '../trust/federationTrust.js';
import { SecAggClient } from './secaggClient.js';
import { newSession, SecAggServer, type VectorObserver } from './secaggServer.js';
import type { SecAggConfig, SecAggRoundParams } from './secaggParams.js';

export type DropPhase = 'keys' | 'shares' | 'masked' | 'consistency' | 'unmask';

export interface InProcessSite {
  name: string;
  identity: { privateKey: KeyObject; publicKeyB64: string };
  /** The federation admin's certificate of the site (identity key = identity.publicKeyB64). */
  certificate: SiteCertificate;
  /** Encoded update (d + 1 words; see fixedPoint.ts). Consumed by masking. */
  encoded: Uint32Array;
  /** Vanish before sending this phase's message. */
  dropBefore?: DropPhase;
}

export interface PhaseTimes {
  /** Client milliseconds per phase, summed over all sites. */
  client: Record<DropPhase, number>;
  /** Server milliseconds per phase (unmask = closing the masked phase + reconstruction). */
  server: Record<DropPhase, number>;
}

export interface InProcessRoundResult {
  sum: Uint32Array;
  contributors: string[];
  times: PhaseTimes;
  /** Bytes each site sent and received in protocol messages (headers as JSON + payload). */
  bytesPerSite: { sent: number; received: number };
}

const size = (m: object) => Buffer.byteLength(JSON.stringify(m));

export async function runInProcessRound(o: { sites: InProcessSite[]; trust: FederationTrust; params: Omit<SecAggRoundParams, 'session'> & { session?: string }; config?: SecAggConfig; experiment?: string; round?: number; observe?: VectorObserver; tamper?: (phase: DropPhase, site: string, m: object) => void }): Promise<InProcessRoundResult> {
  const experiment = o.experiment ?? 'exp';
  const round = o.round ?? 1;
  const params: SecAggRoundParams = { ...o.params, session: o.params.session ?? newSession() };
  const certificates = new Map(o.sites.map((s) => [s.name, s.certificate]));
  const vectorLength = o.sites[0].encoded.length;
  const server = new SecAggServer({ experiment, round, params, config: o.config, sites: o.sites.map((s) => s.name), certificate: (s) => certificates.get(s)!, vectorLength, observe: o.observe });
  const clients = new Map(o.sites.map((s) => [s.name, new SecAggClient(s.name, { experiment, round }, params, s.identity.privateKey, o.trust)]));
  const alive = (phase: DropPhase) => o.sites.filter((s) => {
    const order: DropPhase[] = ['keys', 'shares', 'masked', 'consistency', 'unmask'];
    return s.dropBefore === undefined || order.indexOf(s.dropBefore) > order.indexOf(phase);
  });
  const times: PhaseTimes = { client: { keys: 0, shares: 0, masked: 0, consistency: 0, unmask: 0 }, server: { keys: 0, shares: 0, masked: 0, consistency: 0, unmask: 0 } };
  let sent = 0;
  let received = 0;
  const timed = async <T>(bucket: Record<DropPhase, number>, phase: DropPhase, f: () => T | Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    bucket[phase] += performance.now() - t;
    return r;
  };

  for (const s of alive('keys')) {
    const m = await timed(times.client, 'keys', () => clients.get(s.name)!.keys());
    o.tamper?.('keys', s.name, m);
    sent += size(m);
    await timed(times.server, 'keys', () => server.receiveKeys(s.name, m));
  }
  const rosters = await timed(times.server, 'keys', () => server.closeKeys());
  for (const s of alive('shares')) {
    const roster = rosters.get(s.name);
    if (!roster) continue;
    received += size(roster);
    const m = await timed(times.client, 'shares', () => clients.get(s.name)!.shares(roster));
    o.tamper?.('shares', s.name, m);
    sent += size(m);
    await timed(times.server, 'shares', () => server.receiveShares(s.name, m));
  }
  const relays = await timed(times.server, 'shares', () => server.closeShares());
  for (const s of alive('masked')) {
    const relay = relays.get(s.name);
    if (!relay) continue;
    received += size(relay);
    const client = clients.get(s.name)!;
    const payload = await timed(times.client, 'masked', () => {
      client.receive(relay);
      return client.mask(s.encoded);
    });
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    const header: MessageOf<'fit_res'> = { type: 'fit_res', experiment, round, numExamples: 1, metrics: { loss: 0, accuracy: 0 } };
    header.signature = await timed(times.client, 'masked', () => client.signResult(header, bytes));
    o.tamper?.('masked', s.name, header);
    sent += size(header) + bytes.byteLength;
    await timed(times.server, 'masked', () => server.receiveMasked(s.name, header, bytes));
  }
  const survivorSets = await timed(times.server, 'consistency', () => server.closeMasked());
  for (const s of alive('consistency')) {
    const set = survivorSets.get(s.name);
    if (!set) continue;
    received += size(set);
    const m = await timed(times.client, 'consistency', () => clients.get(s.name)!.consistency(set));
    o.tamper?.('consistency', s.name, m);
    sent += size(m);
    await timed(times.server, 'consistency', () => server.receiveConsistency(s.name, m));
  }
  const requests = await timed(times.server, 'unmask', () => server.closeConsistency());
  for (const s of alive('unmask')) {
    const req = requests.get(s.name);
    if (!req) continue;
    received += size(req);
    const m = await timed(times.client, 'unmask', () => clients.get(s.name)!.unmask(req));
    o.tamper?.('unmask', s.name, m);
    sent += size(m);
    await timed(times.server, 'unmask', () => server.receiveUnmask(s.name, m));
  }
  const sum = await timed(times.server, 'unmask', () => server.finish());
  const n = o.sites.length;
  return { sum, contributors: server.contributors(), times, bytesPerSite: { sent: sent / n, received: received / n } };
}
