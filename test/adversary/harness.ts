/**
 * The adversarial suite's common parts: real `fedmed edge start` processes enrolled in a
 * federation whose admin key the test holds, facing a scripted coordinator (FakeCoordinator:
 * a real WebSocket server speaking fedmed's protocol) that is either the certified coordinator
 * turned malicious or an impostor. Helpers read the edge's JSON log and build protocol messages.
 */
import { join } from 'node:path';
import { zooModel } from '../../models/zoo.js';
import { initParams } from '../../shared/model/initParams.js';
import { float32Bytes, modelVersionId } from '../../shared/model/modelHash.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { maxWeightFor } from '../../shared/secure/secagg/secaggParams.js';
import { newSession, SecAggServer } from '../../shared/secure/secagg/secaggServer.js';
import { SecAggClient } from '../../shared/secure/secagg/secaggClient.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import type { SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import type { SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import { FakeCoordinator, type EnrolledFakeSite } from '../helpers/fakeCoordinator.js';
import { spawnCli, waitFor, type Proc } from '../helpers/federation.js';
import { runCli } from '../helpers/runCli.js';

export const SPEC: ModelSpec = zooModel('cnn-28', { numClasses: 2 });
export const PARAMS = initParams(SPEC, 1);
export const VERSION = modelVersionId(SPEC, PARAMS);

/** A small synthetic data file (made once per directory). */
export async function dataFile(dir: string, seed = 1, n = 60): Promise<string> {
  const file = join(dir, `data-${seed}-${n}.npz`);
  const r = await runCli(['make-synthetic', '--out', file, '--n', String(n), '--seed', String(seed)]);
  if (r.code !== 0) throw new Error(r.stderr);
  return file;
}

export interface EdgeUnderTest extends Proc {
  site: EnrolledFakeSite;
  /** The edge's JSON log events. */
  events(): Record<string, unknown>[];
  event(name: string): Record<string, unknown>[];
}

/** Enrols a state dir in the fake's federation and starts a real edge process on it. */
export async function startEdge(fake: FakeCoordinator, dir: string, name: string, o: { args?: string[]; env?: NodeJS.ProcessEnv; seed?: number; n?: number; beforeStart?: (stateDir: string) => void } = {}): Promise<EdgeUnderTest> {
  const stateDir = join(dir, name);
  const site = fake.enrolEdge(stateDir, name);
  o.beforeStart?.(stateDir);
  const p = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(dir, o.seed ?? 1, o.n), ...(o.args ?? [])], o.env);
  const events = () =>
    p
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"time"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...p, site, events, event: (n) => events().filter((e) => e.event === n) };
}

export function waitEvent(edge: EdgeUnderTest, name: string, match: (e: Record<string, unknown>) => boolean = () => true, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return waitFor(`${edge.site.site} to log ${name}`, () => edge.event(name).find(match), timeoutMs, 50);
}

/** Waits until the edge's fit for `experiment` has ended one way or another (its trainer runs one fit at a time). */
export function settled(edge: EdgeUnderTest, experiment: string): Promise<unknown> {
  return waitFor(`${edge.site.site} to finish with ${experiment}`, () => edge.events().find((e) => e.experiment === experiment && ['fit_done', 'fit_failed', 'fit_refused', 'result_discarded'].includes(String(e.event))), 60_000, 50);
}

/** What the fake has received from the edge of type T (the fake records every message). */
export function sent<T extends Message['type']>(fake: FakeCoordinator, type: T): MessageOf<T>[] {
  return fake.of(type);
}

export function secaggParams(n: number): SecAggRoundParams {
  return { mode: 'secagg', session: newSession(), bits: 16, range: 1, maxWeight: maxWeightFor(n, 16), noiseStddev: 0 };
}

/** A fit_ins for the test model (payload: the model). */
export function fitIns(experiment: string, round: number, extra: Partial<MessageOf<'fit_ins'>> = {}): { message: MessageOf<'fit_ins'>; payload: Uint8Array } {
  return {
    message: { type: 'fit_ins', experiment, round, modelVersion: VERSION, spec: SPEC, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, ...extra },
    payload: float32Bytes(PARAMS),
  };
}

/**
 * A SecAgg+ round the scripted coordinator runs for real edge processes and for certified
 * peers that live in the test (honest peers, or colluders): the coordinator's bookkeeping is
 * the real SecAggServer, so a test can follow the protocol honestly up to the point where it
 * deviates, and forge or alter exactly one message.
 */
export class ScriptedSecureRound {
  readonly params: SecAggRoundParams;
  readonly server: SecAggServer;
  readonly peers: Map<string, SecAggClient>;
  readonly sites: string[];
  private readonly fitExtra: Partial<MessageOf<'fit_ins'>>;

  constructor(
    private readonly fake: FakeCoordinator,
    readonly experiment: string,
    readonly round: number,
    readonly edges: string[],
    readonly peerSites: EnrolledFakeSite[],
    config?: { neighbours?: number; threshold?: number },
    o: { params?: Partial<SecAggRoundParams>; fit?: Partial<MessageOf<'fit_ins'>> } = {},
  ) {
    this.sites = [...edges, ...peerSites.map((p) => p.site)];
    this.params = { ...secaggParams(this.sites.length), ...o.params };
    this.fitExtra = o.fit ?? {};
    const certs = new Map<string, SiteCertificate>(peerSites.map((p) => [p.site, p.certificate]));
    for (const e of edges) certs.set(e, fake.siteCertificates.get(e)!);
    this.server = new SecAggServer({ experiment, round, params: this.params, config, sites: this.sites, certificate: (s) => certs.get(s)!, vectorLength: layoutOf(SPEC).size + 1 });
    const trust = new FederationTrust(fake.admin.publicKeyB64);
    this.peers = new Map(peerSites.map((p) => [p.site, new SecAggClient(p.site, { experiment, round }, this.params, p.identity.privateKey, trust)]));
  }

  /** Sends fit_ins to the edges and waits for every key advertisement; returns the honest rosters. */
  async keys(): Promise<Map<string, MessageOf<'secagg_roster'>>> {
    const { message, payload } = fitIns(this.experiment, this.round, { ...this.fitExtra, security: this.params });
    for (const e of this.edges) await this.fake.sendTo(e, message, payload);
    for (const [site, c] of this.peers) this.server.receiveKeys(site, c.keys());
    for (const e of this.edges) this.server.receiveKeys(e, await this.from(e, 'secagg_keys'));
    return this.server.closeKeys();
  }

  /** The next message of `type` an edge sent in this round. */
  async from<T extends 'secagg_keys' | 'secagg_shares' | 'fit_res' | 'fit_failed' | 'secagg_consistency_sig' | 'secagg_unmask_res'>(site: string, type: T, timeoutMs = 60_000): Promise<MessageOf<T>> {
    return waitFor(`${site}'s ${type}`, () => this.fake.of(type, site).find((m) => (m as { round: number }).round === this.round && (m as { experiment: string }).experiment === this.experiment), timeoutMs, 20) as Promise<MessageOf<T>>;
  }

  payloadOf(site: string, type: 'fit_res'): Buffer {
    return this.fake.receivedFrom.find((r) => r.site === site && r.m.type === type && (r.m as { round: number }).round === this.round && (r.m as { experiment: string }).experiment === this.experiment)!.payload;
  }

  /** Honest phases 1–2: rosters out, shares in, relays out; peers mask zero vectors. */
  async sharesAndMasks(rosters: Map<string, MessageOf<'secagg_roster'>>): Promise<void> {
    for (const e of this.edges) await this.fake.sendTo(e, rosters.get(e)!);
    for (const [site, c] of this.peers) this.server.receiveShares(site, await c.shares(rosters.get(site)!));
    for (const e of this.edges) this.server.receiveShares(e, await this.from(e, 'secagg_shares'));
    const relays = this.server.closeShares();
    for (const e of this.edges) await this.fake.sendTo(e, relays.get(e)!);
    for (const [site, c] of this.peers) {
      c.receive(relays.get(site)!);
      const masked = c.mask(new Uint32Array(layoutOf(SPEC).size + 1));
      const bytes = new Uint8Array(masked.buffer);
      const header: MessageOf<'fit_res'> = { type: 'fit_res', experiment: this.experiment, round: this.round, numExamples: 1, metrics: { loss: 0, accuracy: 0 } };
      header.signature = c.signResult(header, bytes);
      this.server.receiveMasked(site, header, bytes);
    }
    for (const e of this.edges) this.server.receiveMasked(e, await this.from(e, 'fit_res'), this.payloadOf(e, 'fit_res'));
  }

  /** Honest phases 3–4 (consistency round, unmasking) after sharesAndMasks(): the unmasked sum. */
  async unmask(): Promise<Uint32Array> {
    const sets = this.server.closeMasked();
    for (const e of this.edges) await this.fake.sendTo(e, sets.get(e)!);
    for (const [site, c] of this.peers) this.server.receiveConsistency(site, c.consistency(sets.get(site)!));
    for (const e of this.edges) this.server.receiveConsistency(e, await this.from(e, 'secagg_consistency_sig'));
    const requests = this.server.closeConsistency();
    for (const e of this.edges) await this.fake.sendTo(e, requests.get(e)!);
    for (const [site, c] of this.peers) this.server.receiveUnmask(site, c.unmask(requests.get(site)!));
    for (const e of this.edges) this.server.receiveUnmask(e, await this.from(e, 'secagg_unmask_res'));
    return this.server.finish();
  }
}
