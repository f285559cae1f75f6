/**
 * SecAgg+ cost with every site in this process (the same client and server code the edges and
 * the coordinator run; see shared/secure/secagg/inProcessRound.ts): client milliseconds per
 * phase (mean per site), server milliseconds per phase with 0% and 10% dropout (the dropped
 * sites vanish after sharing their keys, the expensive case: their mask keys are reconstructed
 * and their pairwise masks removed), and bytes per site against the raw float32 update.
 */
import { generateIdentity } from '../shared/secure/identity.js';
import { generateEncryptionKey } from '../shared/secure/ckks/siteEncryptionKey.js';
import { ephemeralAdminKey } from '../shared/secure/trust/adminKey.js';
import { issueSiteCertificate } from '../shared/secure/trust/adminSigning.js';
import { FederationTrust } from '../shared/secure/trust/federationTrust.js';
import { encodeUpdate } from '../shared/secure/secagg/fixedPoint.js';
import { runInProcessRound, type DropPhase, type InProcessSite } from '../shared/secure/secagg/inProcessRound.js';
import { maxWeightFor, thresholdFor } from '../shared/secure/secagg/secaggParams.js';
import { median, round } from './stats.js';

export interface SecAggBenchCase {
  sites: number;
  parameters: number;
  dropout: number;
  neighbours: number;
  threshold: number;
  clientMsPerSite: Record<DropPhase, number>;
  serverMs: Record<DropPhase, number> & { total: number };
  bytesPerSite: { sent: number; received: number; rawFloat32: number; sentOverRaw: number };
}

export async function benchSecAgg(o: { sites: number[]; parameters: number[]; dropouts: number[]; repeats: number }): Promise<{ cases: SecAggBenchCase[]; peakRssMB: number }> {
  const cases: SecAggBenchCase[] = [];
  // Certified sites, as in a real federation (every roster member's certificate is checked).
  const admin = ephemeralAdminKey();
  const trust = new FederationTrust(admin.publicKeyB64);
  const identities = Array.from({ length: Math.max(...o.sites) }, () => generateIdentity());
  const certificates = identities.map((id, i) => issueSiteCertificate(admin, { site: `site-${String(i).padStart(3, '0')}`, identityKey: id.publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 }));
  for (const d of o.parameters) {
    const values = new Float32Array(d).map((_, i) => Math.sin(i) * 0.01);
    const encoded = encodeUpdate(values, 10, { bits: 16, range: 1 }).words;
    for (const n of o.sites) {
      for (const dropout of o.dropouts) {
        const runs: Awaited<ReturnType<typeof runInProcessRound>>[] = [];
        for (let r = 0; r < o.repeats; r++) {
          const dropped = Math.round(n * dropout);
          const sites: InProcessSite[] = identities.slice(0, n).map((identity, i) => ({ name: `site-${String(i).padStart(3, '0')}`, identity, certificate: certificates[i], encoded: encoded.slice(), dropBefore: i < dropped ? ('masked' as DropPhase) : undefined }));
          runs.push(await runInProcessRound({ sites, trust, params: { mode: 'secagg', bits: 16, range: 1, maxWeight: maxWeightFor(n, 16), noiseStddev: 0 } }));
        }
        const alive = n - Math.round(n * dropout);
        const med = (f: (x: (typeof runs)[number]) => number) => round(median(runs.map(f)), 2);
        const phases: DropPhase[] = ['keys', 'shares', 'masked', 'consistency', 'unmask'];
        const k = n <= 21 ? n - 1 : 2 * Math.ceil(1.5 * Math.log2(n));
        cases.push({
          sites: n,
          parameters: d,
          dropout,
          neighbours: k,
          threshold: thresholdFor(k + 1),
          clientMsPerSite: Object.fromEntries(phases.map((p) => [p, med((x) => x.times.client[p] / (p === 'keys' || p === 'shares' ? n : alive))])) as Record<DropPhase, number>,
          serverMs: { ...(Object.fromEntries(phases.map((p) => [p, med((x) => x.times.server[p])])) as Record<DropPhase, number>), total: med((x) => phases.reduce((a, p) => a + x.times.server[p], 0)) },
          bytesPerSite: { sent: Math.round(med((x) => x.bytesPerSite.sent)), received: Math.round(med((x) => x.bytesPerSite.received)), rawFloat32: 4 * d, sentOverRaw: round(med((x) => x.bytesPerSite.sent) / (4 * d), 4) },
        });
      }
    }
  }
  return { cases, peakRssMB: round(process.resourceUsage().maxRSS / 1024, 1) };
}
